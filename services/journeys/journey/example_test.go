package journey_test

import (
	"fmt"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// TrialNudge is written as a user writes a journey: a package-level
// definition that fails at startup if it is invalid.
var TrialNudge = journey.MustDefine(journey.Meta{
	ID:          "trial-nudge",
	Name:        "Trial nudge",
	Description: "Nudges pro trials that have not invited anyone.",
	Trigger:     journey.OnEvent("trial_started", condition.Prop("plan").Eq("pro")),
	EntryLimit:  journey.OncePerPeriod,
	EntryPeriod: 30 * 24 * time.Hour,
	ExitOn: []journey.Exit{
		{Event: "user_deleted"},
		{Event: "plan_changed", Where: []condition.Node{condition.Prop("plan").Neq("pro")}},
	},
	Timezone:   "Europe/Berlin",
	SendWindow: &journey.Window{Start: "09:00", End: "18:00"},
}, func(ctx *journey.Ctx, u journey.User) error {
	// Every call on ctx is a recorded step of the durable run.
	fmt.Printf("%s enrolled %s at %s\n", u.JourneyID, u.Key, ctx.Now().Format(time.DateOnly))
	return nil
})

// exampleRuntime stands in for the durable runtime: only Now is used.
type exampleRuntime struct{ journey.Runtime }

func (exampleRuntime) Now() time.Time { return time.Date(2025, 6, 10, 9, 0, 0, 0, time.UTC) }

func Example() {
	reg, err := journey.NewRegistry("trial-nudge", TrialNudge)
	if err != nil {
		panic(err)
	}
	props := map[string]any{"plan": "pro"}
	for _, j := range reg.Triggered("trial_started") {
		if ok, reason := journey.CheckTrigger(j, nil, props); !ok {
			fmt.Println("skipped:", reason)
			continue
		}
		if ok, reason := journey.EntryAllowed(j, journey.PriorStates{}, time.Now()); !ok {
			fmt.Println("skipped:", reason)
			continue
		}
		u := journey.User{Key: "user-42", Properties: props, JourneyID: j.ID(), JourneyName: j.Name()}
		if err := j.Func()(journey.NewCtx(exampleRuntime{}), u); err != nil {
			panic(err)
		}
	}
	fmt.Println("exits on downgrade:", TrialNudge.ExitMatches("plan_changed", map[string]any{"plan": "free"}))
	// Output:
	// trial-nudge enrolled user-42 at 2025-06-10
	// exits on downgrade: true
}
