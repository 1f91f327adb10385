package engine

import (
	"strconv"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// usageLimitWarningJourney warns a contact nearing a plan limit, at most
// once per 30 days, and again if they hit the limit within the week. Any
// plan change exits it (the limits changed).
var usageLimitWarningJourney = journey.MustDefine(journey.Meta{
	ID: "usage-limit-warning", Name: "Usage-limit warning",
	Description: "Warns at 80% or more of a plan limit (once per 30 days) and again if the limit is hit within 7 days.",
	Trigger:     journey.OnEvent("usage_threshold_reached", condition.Prop("percent").Gte(80)),
	EntryLimit:  journey.OncePerPeriod,
	EntryPeriod: 30 * day,
	ExitOn:      []journey.Exit{{Event: "plan_changed"}, {Event: "account_deleted"}},
}, func(ctx *journey.Ctx, u journey.User) error {
	percent := propInt(u, "percent", 80)
	resource := propString(u, "resource", "usage")
	url := exampleAppURL + "/billing/upgrade"

	ctx.Identify(map[string]any{"usage_warning_percent": percent})
	if err := ctx.SendEmail(journey.Email{
		Template: "nudge", Subject: "You've used " + strconv.Itoa(percent) + "% of your " + resource,
		Props: map[string]any{"percent": percent, "resource": resource, "url": url},
	}); err != nil {
		return err
	}
	if percent >= 100 {
		return nil // already at the limit: the warning said it all
	}

	hit, err := ctx.WaitForEvent("usage_limit_reached", 7*day)
	if err != nil {
		return err
	}
	if hit.TimedOut {
		return nil // stayed under the limit
	}
	return ctx.SendEmail(journey.Email{
		Template: "nudge", Subject: "You've reached your " + resource + " limit",
		Props: map[string]any{"percent": 100, "resource": resource, "url": url},
	})
})
