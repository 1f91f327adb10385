package engine

import (
	"time"

	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// exampleJourneys are the journeys the stock binary ships. A program
// embedding the engine passes its own in Options.Journeys instead.
func exampleJourneys() []*journey.Journey {
	return []*journey.Journey{welcomeJourney}
}

// welcomeJourney greets a new signup, then nudges them two days later
// unless they used a feature meanwhile.
var welcomeJourney = journey.MustDefine(journey.Meta{
	ID: "welcome", Name: "Welcome series",
	Description: "Welcome email on signup; a nudge two days later unless a feature was used.",
	Trigger:     journey.OnEvent("signup"),
	EntryLimit:  journey.Once,
	ExitOn:      []journey.Exit{{Event: "account_deleted"}},
}, func(ctx *journey.Ctx, u journey.User) error {
	if err := ctx.SendEmail(journey.Email{Template: "welcome", Subject: "Welcome aboard"}); err != nil {
		return err
	}
	ctx.Sleep(48 * time.Hour)
	if ctx.HasEvent("feature_used", 0).Found {
		return nil
	}
	return ctx.SendEmail(journey.Email{Template: "nudge", Subject: "Getting started"})
})
