package engine

import (
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// powerUserTrialJourney offers a pro trial to contacts who enter the
// power-users bucket and never had one. It sends no email itself: it
// publishes trial_started, which enrols the contact in trial-conversion
// (a journey starting another journey through the full event pipeline).
var powerUserTrialJourney = journey.MustDefine(journey.Meta{
	ID: "power-user-trial", Name: "Power-user trial offer",
	Description: "Starts a 14-day pro trial (and so trial-conversion) for new power users who never had a trial or a subscription.",
	Trigger:     journey.OnEvent("bucket:entered:power-users"),
	EntryLimit:  journey.Once,
	ExitOn:      []journey.Exit{{Event: "account_deleted"}},
}, func(ctx *journey.Ctx, u journey.User) error {
	if ctx.JourneyHistory(trialConversionJourney.ID()).EntryCount > 0 {
		return nil // they already had a trial
	}
	if ctx.HasEvent("subscription_started", 0).Found {
		return nil // already paying
	}
	ctx.Identify(map[string]any{"trial_source": "power-user-offer"})
	return ctx.Trigger(journey.Event{
		Name:       "trial_started",
		Properties: map[string]any{"trialDays": 14, "plan": "pro", "source": "power-user-offer"},
	})
})
