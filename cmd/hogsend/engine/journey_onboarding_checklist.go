package engine

import (
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// onboardingSteps is the checklist, in order: the event that completes a
// step and the page the nudge links to.
var onboardingSteps = []struct{ event, title, path string }{
	{"profile_completed", "Complete your profile", "/settings/profile"},
	{"teammate_invited", "Invite a teammate", "/settings/team"},
	{"integration_connected", "Connect an integration", "/integrations"},
}

// onboardingChecklistJourney walks a new workspace through the checklist.
// Each step is a checkpoint (the admin shows where a contact is); a step
// not done within three days gets one nudge and the journey moves on.
var onboardingChecklistJourney = journey.MustDefine(journey.Meta{
	ID: "onboarding-checklist", Name: "Onboarding checklist",
	Description: "Walks a new workspace through three setup steps, nudging once for each step not done within 3 days.",
	Trigger:     journey.OnEvent("workspace_created"),
	EntryLimit:  journey.Once,
	ExitOn:      []journey.Exit{{Event: "account_deleted"}},
}, func(ctx *journey.Ctx, u journey.User) error {
	done := 0
	for i, s := range onboardingSteps {
		ctx.Checkpoint("checklist:" + s.event)
		if ctx.HasEvent(s.event, 0).Found {
			done++
			continue
		}
		w, err := ctx.WaitForEvent(s.event, 3*day, "checklist:wait:"+s.event)
		if err != nil {
			return err
		}
		if !w.TimedOut {
			done++
			continue
		}
		if err := ctx.SendEmail(journey.Email{
			Template: "nudge", Subject: "Next step: " + s.title,
			Props: map[string]any{"step": i + 1, "steps": len(onboardingSteps), "title": s.title, "url": exampleAppURL + s.path},
		}); err != nil {
			return err
		}
	}
	ctx.Checkpoint("checklist:done")
	ctx.Capture("onboarding_checklist_finished", map[string]any{"completed": done, "steps": len(onboardingSteps)})
	return nil
})
