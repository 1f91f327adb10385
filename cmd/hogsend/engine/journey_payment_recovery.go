package engine

import (
	"maps"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// paymentReminders is the dunning sequence: each reminder waits `after`
// since the previous one (the first goes out at once).
var paymentReminders = []struct {
	after   time.Duration
	subject string
}{
	{0, "Your payment didn't go through"},
	{3 * day, "Reminder: please update your payment details"},
	{4 * day, "Final notice: your subscription is at risk"},
}

// paymentRecoveryJourney chases a failed payment with three reminders over
// a week. A successful payment exits it wherever it waits.
var paymentRecoveryJourney = journey.MustDefine(journey.Meta{
	ID: "payment-recovery", Name: "Payment failure recovery",
	Description: "Three payment-failed reminders over a week after a failed charge; stops when a payment succeeds.",
	Trigger:     journey.OnEvent("payment_failed"),
	// Every failure may start a recovery; already_active keeps it to one
	// at a time.
	EntryLimit: journey.Unlimited,
	ExitOn:     []journey.Exit{{Event: "payment_succeeded"}, {Event: "account_deleted"}},
}, func(ctx *journey.Ctx, u journey.User) error {
	// The amount and currency are passed as the billing event sent them.
	props := map[string]any{
		"amount":   u.Properties["amount"],
		"currency": u.Properties["currency"],
		"url":      propString(u, "updateUrl", exampleAppURL+"/billing"),
	}
	for i, r := range paymentReminders {
		if r.after > 0 {
			ctx.Sleep(r.after)
		}
		p := map[string]any{"attempt": i + 1, "final": i == len(paymentReminders)-1}
		maps.Copy(p, props)
		if err := ctx.SendEmail(journey.Email{Template: "payment-failed", Subject: r.subject, Props: p}); err != nil {
			return err
		}
	}
	ctx.Capture("payment_recovery_exhausted", map[string]any{"reminders": len(paymentReminders)})
	return nil
})
