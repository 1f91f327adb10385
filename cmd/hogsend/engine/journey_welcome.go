package engine

import (
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// welcomeJourney greets a new signup, then nudges them two days later
// unless they used a feature meanwhile.
var welcomeJourney = journey.MustDefine(journey.Meta{
	ID: "welcome", Name: "Welcome series",
	Description: "Welcome email on signup; a nudge two days later unless a feature was used.",
	Trigger:     journey.OnEvent("signup"),
	EntryLimit:  journey.Once,
	ExitOn:      []journey.Exit{{Event: "account_deleted"}},
}, func(ctx *journey.Ctx, u journey.User) error {
	name := propString(u, "name", "there")
	if err := ctx.SendEmail(journey.Email{
		Template: "welcome", Subject: "Welcome aboard",
		Props: map[string]any{"name": name, "url": exampleAppURL + "/start"},
	}); err != nil {
		return err
	}

	ctx.Sleep(2*day, "wait:2d")
	if ctx.HasEvent("feature_used", 0).Found {
		return nil // they found their way around; no nudge needed
	}
	return ctx.SendEmail(journey.Email{
		Template: "nudge", Subject: "Getting started",
		Props: map[string]any{"name": name, "url": exampleAppURL + "/features"},
	})
})
