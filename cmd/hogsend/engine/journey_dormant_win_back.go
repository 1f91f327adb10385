package engine

import (
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// dormantWinBackJourney reacts to a contact entering the went-dormant
// bucket (no app_open for 14 days): a win-back email, then, if they still
// have not come back a week later, a second one with an offer.
var dormantWinBackJourney = journey.MustDefine(journey.Meta{
	ID: "dormant-win-back", Name: "Dormancy win-back",
	Description: "Win-back email when a contact goes dormant; a second one with an offer if they are still away a week later.",
	Trigger:     journey.OnEvent("bucket:entered:went-dormant"),
	EntryLimit:  journey.OncePerPeriod,
	EntryPeriod: 60 * day,
	ExitOn:      []journey.Exit{{Event: "account_deleted"}},
}, func(ctx *journey.Ctx, u journey.User) error {
	if err := ctx.SendEmail(journey.Email{
		Template: "win-back", Subject: "We miss you",
		Props: map[string]any{"url": exampleAppURL},
	}); err != nil {
		return err
	}

	back, err := ctx.WaitForEvent("app_open", 7*day)
	if err != nil {
		return err
	}
	if !back.TimedOut {
		ctx.Capture("win_back_returned", map[string]any{"step": 1})
		return nil
	}
	return ctx.SendEmail(journey.Email{
		Template: "win-back", Subject: "Come back: 20% off your next month",
		Props: map[string]any{"url": exampleAppURL + "/billing?coupon=COMEBACK20", "offer": "20% off"},
	})
})
