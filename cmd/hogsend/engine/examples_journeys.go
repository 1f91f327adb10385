package engine

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// exampleJourneys are the journeys the stock binary ships, one per
// journey_<name>.go file: ten short lifecycle journeys written as a user of
// the journey package would write them. A program embedding the engine
// passes its own in Options.Journeys instead.
//
// They send only the stock templates (welcome, nudge, trial-ending,
// payment-failed, win-back, nps) and read what they need from the trigger
// event's properties, with defaults when a property is missing.
func exampleJourneys() []*journey.Journey {
	return []*journey.Journey{
		welcomeJourney,
		trialConversionJourney,
		paymentRecoveryJourney,
		dormantWinBackJourney,
		npsSurveyJourney,
		abandonedCheckoutJourney,
		powerUserTrialJourney,
		onboardingChecklistJourney,
		downgradeReengagementJourney,
		usageLimitWarningJourney,
	}
}

// day is a calendar-free 24 hours, the unit the example schedules use.
const day = 24 * time.Hour

// exampleAppURL is the base of the links the example emails carry when the trigger
// event names none.
const exampleAppURL = "https://app.example.com"

// propString is the trigger property key as a string, or def when it is
// missing or not a non-empty string.
func propString(u journey.User, key, def string) string {
	if s, ok := u.Properties[key].(string); ok && s != "" {
		return s
	}
	return def
}

// propInt is the trigger property key as an integer (a JSON number or a
// numeric string, truncated), or def when it is missing or not a finite
// number.
func propInt(u journey.User, key string, def int) int {
	var f float64
	switch v := u.Properties[key].(type) {
	case float64:
		f = v
	case int:
		return v
	case int64:
		return int(v)
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return def
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(v, 64); err != nil {
			return def
		}
	default:
		return def
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt32 {
		return def
	}
	return int(f)
}
