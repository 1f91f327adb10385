package journey_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// Reactions become journeys named, triggered and tagged as spec 10 §4.10
// says, and their filters run inside the journey.
func TestReactionBinding(t *testing.T) {
	var got []journey.ReactionInfo
	h := func(_ *journey.Ctx, _ journey.User, r journey.ReactionInfo) error { got = append(got, r); return nil }
	for _, tc := range []struct {
		r                journey.Reaction
		id, trigger, tag string
	}{
		{journey.OnEnter("pro", true, h), "bucket-pro-on-enter", "bucket:entered:pro", "enter"},
		{journey.OnLeave("pro", h, "maxDwell"), "bucket-pro-on-leave", "bucket:left:pro", "leave"},
		{journey.OnDwell("pro", journey.DwellSchedule{After: 48 * time.Hour}, h), "bucket-pro-on-dwell-after-172800000", "bucket:dwell:pro:after-172800000", "dwell"},
		{journey.OnDwell("pro", journey.DwellSchedule{Every: 24 * time.Hour}, h), "bucket-pro-on-dwell-every-86400000", "bucket:dwell:pro:every-86400000", "dwell"},
	} {
		j, err := tc.r.Bind("Pro", true)
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		m := j.Meta()
		if j.ID() != tc.id || j.TriggerEvent() != tc.trigger || m.ReactionKind != tc.tag || m.SourceBucketID != "pro" ||
			j.EntryLimit() != journey.Unlimited || j.Name() != "Pro — on "+tc.tag {
			t.Errorf("%s: bound as %s on %s (%+v)", tc.id, j.ID(), j.TriggerEvent(), m)
		}
	}
	if _, err := journey.OnDwell("pro", journey.DwellSchedule{After: time.Hour, Every: time.Hour}, h).Bind("Pro", true); err == nil {
		t.Error("a dwell with both after and every was accepted")
	}
	if _, err := journey.OnEnter("pro", false, nil).Bind("Pro", true); err == nil {
		t.Error("a reaction without a handler was accepted")
	}

	run := func(r journey.Reaction, props string) {
		j, _ := r.Bind("Pro", true)
		var p map[string]any
		_ = json.Unmarshal([]byte(props), &p)
		if err := j.Func()(journey.NewCtx(nil), journey.User{Key: "u1", Properties: p}); err != nil {
			t.Fatal(err)
		}
	}
	got = nil
	run(journey.OnEnter("pro", true, h), `{"entryCount":2}`) // filtered: not the first entry
	run(journey.OnEnter("pro", true, h), `{}`)               // a missing count is 1
	run(journey.OnLeave("pro", h, "maxDwell"), `{"reason":"criteria"}`)
	run(journey.OnLeave("pro", h, "maxDwell"), `{"reason":"maxDwell"}`)
	run(journey.OnDwell("pro", journey.DwellSchedule{Every: time.Hour}, h), `{"dwellCount":3}`)
	if len(got) != 3 || !got[0].IsFirstEntry || got[1].Reason != "maxDwell" || got[2].DwellCount != 3 {
		t.Errorf("handlers saw %+v", got)
	}
}
