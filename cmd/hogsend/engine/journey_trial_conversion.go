package engine

import (
	"fmt"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// trialConversionJourney reminds a trial user that the trial is ending, at
// 09:00 in their own zone three days and one day before it ends. Subscribing
// exits the journey wherever it waits.
var trialConversionJourney = journey.MustDefine(journey.Meta{
	ID: "trial-conversion", Name: "Trial conversion",
	Description: "Trial-ending reminders at 09:00 local time, 3 days and 1 day before the trial ends; stops on subscription.",
	Trigger:     journey.OnEvent("trial_started"),
	EntryLimit:  journey.Once,
	ExitOn:      []journey.Exit{{Event: "subscription_started"}, {Event: "account_deleted"}},
	// ctx.When keeps resolved times inside office hours of the contact's
	// zone (immediate sends ignore it).
	SendWindow: &journey.Window{Start: "08:00", End: "18:00"},
}, func(ctx *journey.Ctx, u journey.User) error {
	trialDays := propInt(u, "trialDays", 14)
	// One builder, bound to the enrolment instant: every reminder is
	// counted from the trial's start, not from the previous wake-up.
	start := ctx.When()
	for _, daysLeft := range []int{3, 1} {
		if daysLeft >= trialDays {
			continue // a short trial: this reminder would precede it
		}
		at, err := start.In(time.Duration(trialDays-daysLeft) * day).At("09:00").Time()
		if err != nil {
			return err
		}
		ctx.SleepUntil(at, fmt.Sprintf("trial-ending:%dd", daysLeft))
		if err := ctx.SendEmail(journey.Email{
			Template: "trial-ending",
			Subject:  fmt.Sprintf("Your trial ends in %d day%s", daysLeft, pluralS(daysLeft)),
			Props:    map[string]any{"daysLeft": daysLeft, "url": exampleAppURL + "/billing/upgrade"},
		}); err != nil {
			return err
		}
	}
	return nil
})

// pluralS is "s" unless n is 1.
func pluralS(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
