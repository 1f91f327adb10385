package engine

import (
	"time"

	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// abandonedCheckoutJourney brings a started checkout back to mind an hour
// later and again the next day. Completing the checkout exits it.
var abandonedCheckoutJourney = journey.MustDefine(journey.Meta{
	ID: "abandoned-checkout", Name: "Abandoned checkout",
	Description: "Cart reminders 1 hour and 24 hours after a checkout starts; stops when the checkout completes.",
	Trigger:     journey.OnEvent("checkout_started"),
	EntryLimit:  journey.OncePerPeriod,
	EntryPeriod: day,
	ExitOn:      []journey.Exit{{Event: "checkout_completed"}, {Event: "account_deleted"}},
}, func(ctx *journey.Ctx, u journey.User) error {
	props := map[string]any{"url": propString(u, "cartUrl", exampleAppURL+"/cart")}

	ctx.Sleep(time.Hour, "checkout:wait:1h")
	if err := ctx.SendEmail(journey.Email{Template: "nudge", Subject: "You left something in your cart", Props: props}); err != nil {
		return err
	}
	ctx.Sleep(23*time.Hour, "checkout:wait:24h")
	return ctx.SendEmail(journey.Email{Template: "nudge", Subject: "Your cart is still waiting", Props: props})
})
