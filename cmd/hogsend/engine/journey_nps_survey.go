package engine

import (
	"maps"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// npsSurveyJourney asks for an NPS score once a contact has created ten
// projects (the app sends its running count as projectCount), with one
// reminder if no answer comes within a week.
var npsSurveyJourney = journey.MustDefine(journey.Meta{
	ID: "nps-survey", Name: "NPS after a milestone",
	Description: "NPS survey after the 10th project; one reminder if it is not answered within 7 days.",
	Trigger:     journey.OnEvent("project_created", condition.Prop("projectCount").Gte(10)),
	EntryLimit:  journey.Once,
	ExitOn:      []journey.Exit{{Event: "account_deleted"}},
}, func(ctx *journey.Ctx, u journey.User) error {
	// Survey fatigue: skip contacts another flow surveyed in the last 90
	// days.
	if h := ctx.EmailHistory("nps"); h.LastSentAt != nil && ctx.Now().Sub(*h.LastSentAt) < 90*day {
		return nil
	}
	props := map[string]any{"url": exampleAppURL + "/nps", "projects": propInt(u, "projectCount", 10)}
	if err := ctx.SendEmail(journey.Email{Template: "nps", Subject: "How likely are you to recommend us?", Props: props}); err != nil {
		return err
	}

	answer, err := ctx.WaitForEvent("nps_submitted", 7*day)
	if err != nil {
		return err
	}
	if !answer.TimedOut {
		return nil // answered
	}
	reminder := maps.Clone(props) // the first send keeps its own props
	reminder["reminder"] = true
	return ctx.SendEmail(journey.Email{Template: "nps", Subject: "One quick question (reminder)", Props: reminder})
})
