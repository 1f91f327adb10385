package engine

import (
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// downgradeReengagementJourney follows a downgrade to the free plan: a
// reminder of what the paid plan offered three days later, then a win-back
// offer after two weeks. Moving back to a paid plan exits it.
var downgradeReengagementJourney = journey.MustDefine(journey.Meta{
	ID: "downgrade-reengagement", Name: "Re-engagement after a downgrade",
	Description: "After a downgrade to free: a what-you're-missing nudge at 3 days and a win-back offer at 14 days; stops on re-upgrade.",
	Trigger:     journey.OnEvent("plan_changed", condition.Prop("plan").Eq("free")),
	EntryLimit:  journey.OncePerPeriod,
	EntryPeriod: 90 * day,
	ExitOn: []journey.Exit{
		{Event: "plan_changed", Where: []condition.Node{condition.Prop("plan").Neq("free")}},
		{Event: "account_deleted"},
	},
}, func(ctx *journey.Ctx, u journey.User) error {
	previous := propString(u, "previousPlan", "pro")

	ctx.Sleep(3*day, "downgrade:wait:3d")
	if err := ctx.SendEmail(journey.Email{
		Template: "nudge", Subject: "What you're missing on " + previous,
		Props: map[string]any{"plan": previous, "url": exampleAppURL + "/pricing"},
	}); err != nil {
		return err
	}

	ctx.Sleep(11*day, "downgrade:wait:14d")
	if !ctx.IsSubscribed() {
		return nil // unsubscribed since: do not even try the offer
	}
	return ctx.SendEmail(journey.Email{
		Template: "win-back", Subject: "Come back to " + previous + " at half price",
		Props: map[string]any{"plan": previous, "offer": "50% off for 2 months", "url": exampleAppURL + "/billing/upgrade?coupon=HALFBACK"},
	})
})
