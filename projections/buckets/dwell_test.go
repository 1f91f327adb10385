package buckets_test

import (
	"context"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/condition"
)

// Scenario 25: an after-2-days dwell schedule fires once for a 3-day-old
// member however many sweeps run, with dwellCount 1; an every-day schedule
// after a 5-day outage fires one catch-up, then again a day later.
func TestDwellFiresOncePerSchedule(t *testing.T) {
	t.Parallel()
	b := buckets.MustDefine(buckets.Meta{ID: "pro", Name: "Pro", Criteria: crit(condition.Prop("plan").Eq("pro"))})
	e := startEngine(t, b)
	reg, err := buckets.NewRegistry("", b)
	if err != nil {
		t.Fatal(err)
	}
	reg.AddDwell("pro", buckets.DwellSchedule{Label: "after-172800000", After: 48 * time.Hour})
	reg.AddDwell("pro", buckets.DwellSchedule{Label: "every-86400000", Every: 24 * time.Hour})
	now := e.clock
	r := buckets.NewReconciler(e.pool, e.pub, reg, nil, func() time.Time { return now })
	start := e.clock
	e.send("u1", "upgraded", nil, map[string]any{"plan": "pro"})

	// Backfill not complete (no stored criteria hash): the pass waits.
	now = start.Add(72 * time.Hour)
	if res := e.sweep(r); res.Dwelled != 0 {
		t.Fatalf("dwell before the backfill completed: %+v", res)
	}
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO bucket_configs (id, bucket_id, enabled, criteria_hash) VALUES (gen_random_uuid(), 'pro', true, 'h')`); err != nil {
		t.Fatal(err)
	}
	// Day 3: after-2d fires (ordinal 1), every-1d catches up once
	// (ordinal 3, not three fires).
	if res := e.sweep(r); res.Dwelled != 2 {
		t.Fatalf("first sweep fired %d, want 2", res.Dwelled)
	}
	now = now.Add(time.Hour)
	if res := e.sweep(r); res.Dwelled != 0 {
		t.Fatalf("second sweep fired %d, want 0", res.Dwelled)
	}
	now = now.Add(24 * time.Hour)
	if res := e.sweep(r); res.Dwelled != 1 {
		t.Fatalf("a day later fired %d, want 1 (every only)", res.Dwelled)
	}
	got := map[string][]any{}
	for _, tr := range e.transitions("u1") {
		if tr.Props["transition"] == "dwell" {
			got[tr.Name] = append(got[tr.Name], tr.Props["dwellCount"])
		}
	}
	if a := got["bucket:dwell:pro:after-172800000"]; len(a) != 1 || a[0] != float64(1) {
		t.Errorf("after fires %v, want one with dwellCount 1", a)
	}
	if ev := got["bucket:dwell:pro:every-86400000"]; len(ev) != 2 || ev[0] != float64(3) || ev[1] != float64(4) {
		t.Errorf("every fires %v, want dwellCount 3 then 4", ev)
	}
}
