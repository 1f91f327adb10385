package buckets_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

func (e *engine) reconciler(defs ...*buckets.Bucket) (*buckets.Reconciler, *time.Time) {
	e.t.Helper()
	reg, err := buckets.NewRegistry("", defs...)
	if err != nil {
		e.t.Fatal(err)
	}
	now := new(time.Time)
	return buckets.NewReconciler(e.pool, e.pub, reg, nil, func() time.Time { return *now }), now
}

func (e *engine) sweep(r *buckets.Reconciler) buckets.SweepResult {
	e.t.Helper()
	res, err := r.Sweep(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	e.settle()
	return res
}

func (e *engine) count(name string, user string) int {
	n := 0
	for _, tr := range e.transitions(user) {
		if tr.Name == name {
			n++
		}
	}
	return n
}

// Scenario 23: a time-based member idle past the window leaves with
// source reconcile; a member past maxDwell leaves with reason maxDwell.
func TestReconcileLeavesExpiredAndMaxDwell(t *testing.T) {
	t.Parallel()
	active := buckets.MustDefine(buckets.Meta{ID: "active", Name: "Active", Criteria: crit(condition.Event("app_open").Within(condition.Days(7)).Exists())})
	capped := buckets.MustDefine(buckets.Meta{ID: "capped", Name: "Capped", MaxDwell: 24 * time.Hour, Criteria: crit(condition.Prop("plan").Eq("pro"))})
	e := startEngine(t, active, capped)
	r, now := e.reconciler(active, capped)
	start := e.clock
	e.send("u1", "app_open", nil, map[string]any{"plan": "pro"})
	if len(e.memberships("u1", "active")) != 1 || len(e.memberships("u1", "capped")) != 1 {
		t.Fatal("did not join")
	}
	*now = start.Add(23 * time.Hour)
	if res := e.sweep(r); !res.Ran || res.Left != 0 {
		t.Fatalf("sweep inside the window and maxDwell left someone: %+v", res)
	}
	*now = start.Add(25 * time.Hour)
	if res := e.sweep(r); res.Left != 1 {
		t.Fatalf("sweep after maxDwell: %+v", res)
	}
	if m := e.memberships("u1", "capped"); m[0].Status != "left" {
		t.Fatalf("maxDwell: %+v", m)
	}
	if m := e.memberships("u1", "active"); m[0].Status != "active" {
		t.Fatalf("left inside its window: %+v", m)
	}
	*now = start.Add(8 * 24 * time.Hour)
	e.sweep(r)
	if m := e.memberships("u1", "active"); m[0].Status != "left" {
		t.Fatalf("window: %+v", m)
	}
	for _, tr := range e.transitions("u1") {
		switch tr.Name {
		case "bucket:left:active":
			if tr.Props["source"] != "reconcile" || tr.Props["reason"] != "criteria" {
				t.Fatalf("window leave %v", tr.Props)
			}
		case "bucket:left:capped":
			if tr.Props["source"] != "reconcile" || tr.Props["reason"] != "maxDwell" {
				t.Fatalf("maxDwell leave %v", tr.Props)
			}
		}
	}
	// A second sweep changes nothing.
	if res := e.sweep(r); res.Left != 0 {
		t.Fatalf("second sweep left again: %+v", res)
	}
}

// The leave minDwell deferred completes in the sweep once its deadline
// passed, without waiting for another event (spec 10 §4.4 flaw fixed).
func TestReconcileCompletesDeferredLeave(t *testing.T) {
	t.Parallel()
	b := buckets.MustDefine(buckets.Meta{ID: "sticky", Name: "Sticky", MinDwell: time.Hour, Criteria: crit(condition.Prop("plan").Eq("pro"))})
	e := startEngine(t, b)
	r, now := e.reconciler(b)
	start := e.clock
	e.send("u1", "a", nil, map[string]any{"plan": "pro"})
	e.clock = e.clock.Add(5 * time.Minute)
	e.send("u1", "b", nil, map[string]any{"plan": "free"})
	*now = start.Add(30 * time.Minute)
	e.sweep(r)
	if m := e.memberships("u1", "sticky"); m[0].Status != "active" {
		t.Fatal("left before minDwell")
	}
	*now = start.Add(61 * time.Minute)
	e.sweep(r)
	if m := e.memberships("u1", "sticky"); m[0].Status != "left" {
		t.Fatalf("deferred leave not completed: %+v", m)
	}
	if e.count("bucket:left:sticky", "u1") != 1 {
		t.Fatal("want exactly one leave")
	}
}

// Acceptance: real-time evaluation and the sweep racing on the same
// members store exactly one bucket:left per epoch.
func TestRealtimeAndSweepRaceEmitOneLeavePerEpoch(t *testing.T) {
	t.Parallel()
	raceWriters(t, false)
}

// Acceptance: with fast-expiry timers as a third writer (armed at each
// join; the engine's clock is in the past, so they fire at once), still
// exactly one bucket:entered and one bucket:left per epoch.
func TestRealtimeSweepAndExpiryTimerRaceEmitOnePerEpoch(t *testing.T) {
	t.Parallel()
	raceWriters(t, true)
}

func raceWriters(t *testing.T, fastExpiry bool) {
	b := buckets.MustDefine(buckets.Meta{ID: "racy", Name: "Racy", FastExpiry: fastExpiry, Criteria: crit(condition.All(
		condition.Event("app_open").Within(condition.Days(1)).Exists(),
		condition.Prop("plan").Eq("pro"),
	))})
	e := startEngine(t, b)
	r, now := e.reconciler(b)
	if fastExpiry {
		reg, _ := buckets.NewRegistry("", b)
		h := buckets.NewExpiryHandler(e.pool, e.pub, reg, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- bus.RunWorkQueue(ctx, bus.WorkQueueConfig{JetStream: e.js, Stream: streams.StreamTimers, Name: "bucket-expiry",
				FilterSubject: buckets.ExpiryDueSubject}, h.Handle)
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	const users = 20
	for round := 0; round < 3; round++ {
		for u := 0; u < users; u++ {
			e.send(userName(u), "app_open", nil, map[string]any{"plan": "pro"})
		}
		// Both writers now see a reason to leave: the window ran out for
		// the sweep, and the plan changes for real-time evaluation.
		e.clock = e.clock.Add(25 * time.Hour)
		*now = e.clock
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := r.Sweep(context.Background()); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			for u := 0; u < users; u++ {
				e.publishOnly(userName(u), "downgrade", map[string]any{"plan": "free"})
			}
		}()
		wg.Wait()
		e.settle()
		e.clock = e.clock.Add(time.Minute)
	}
	for u := 0; u < users; u++ {
		m := e.memberships(userName(u), "racy")
		if len(m) != 3 {
			t.Fatalf("%s: %d rows, want 3 epochs: %+v", userName(u), len(m), m)
		}
		for _, row := range m {
			if row.Status != "left" {
				t.Fatalf("%s: %+v", userName(u), m)
			}
		}
		if n := e.count("bucket:left:racy", userName(u)); n != 3 {
			t.Fatalf("%s: %d leaves for 3 epochs: rows %+v, transitions %+v", userName(u), n, m, e.transitions(userName(u)))
		}
		if n := e.count("bucket:entered:racy", userName(u)); n != 3 {
			t.Fatalf("%s: %d entries for 3 epochs", userName(u), n)
		}
	}
}

func userName(i int) string { return "racer-" + string(rune('a'+i)) }

// Fast expiry: a member of a fastExpiry bucket leaves when its timer fires
// on TIMERS, without an event or a sweep.
func TestFastExpiryTimerEndsMembership(t *testing.T) {
	t.Parallel()
	b := buckets.MustDefine(buckets.Meta{ID: "flash", Name: "Flash", FastExpiry: true,
		Criteria: crit(condition.Event("ping").Within(condition.Seconds(1)).Exists())})
	e := startEngine(t, b)
	reg, err := buckets.NewRegistry("", b)
	if err != nil {
		t.Fatal(err)
	}
	h := buckets.NewExpiryHandler(e.pool, e.pub, reg, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.RunWorkQueue(ctx, bus.WorkQueueConfig{JetStream: e.js, Stream: streams.StreamTimers, Name: "bucket-expiry",
			FilterSubject: buckets.ExpiryDueSubject}, h.Handle)
	}()
	defer func() { cancel(); <-done }()
	// The engine clock is in the past, so the window has already run out
	// by wall-clock time: the timer fires at once.
	e.send("u1", "ping", nil, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := e.memberships("u1", "flash")
		if len(m) == 1 && m[0].Status == "left" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timer did not end the membership: %+v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.settle()
	var left []transition
	for _, tr := range e.transitions("u1") {
		if tr.Name == "bucket:left:flash" {
			left = append(left, tr)
		}
	}
	if len(left) != 1 || left[0].Props["source"] != "reconcile" || left[0].Props["reason"] != "criteria" {
		t.Fatalf("leaves %+v", left)
	}
}

// Scenario 24: an absence bucket is joined by the sweep once the first
// backfill is done (criteria hash stored): a contact active 10 days ago
// joins and emits, one never active does not; without a hash nobody joins.
func TestReconcileAbsenceJoins(t *testing.T) {
	t.Parallel()
	b := buckets.MustDefine(buckets.Meta{ID: "lapsed", Name: "Lapsed", Criteria: crit(condition.Event("app_open").Within(condition.Days(7)).NotExists())})
	e := startEngine(t, b)
	r, now := e.reconciler(b)
	start := e.clock
	e.send("active-once", "app_open", nil, nil)
	e.send("never", "signup", nil, nil)
	*now = start.Add(10 * 24 * time.Hour)
	if res := e.sweep(r); res.Joined != 0 {
		t.Fatalf("joined before the backfill stored a hash: %+v", res)
	}
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO bucket_configs (id, bucket_id, criteria_hash) VALUES (gen_random_uuid(), 'lapsed', $1)`, b.Hash()); err != nil {
		t.Fatal(err)
	}
	if res := e.sweep(r); res.Joined != 1 {
		t.Fatalf("sweep joins: %+v", res)
	}
	m := e.memberships("active-once", "lapsed")
	if len(m) != 1 || m[0].Status != "active" || m[0].Source != "reconcile" {
		t.Fatalf("memberships %+v", m)
	}
	if e.count("bucket:entered:lapsed", "active-once") != 1 {
		t.Fatal("the absence join did not emit")
	}
	if len(e.memberships("never", "lapsed")) != 0 {
		t.Fatal("a never-active contact joined")
	}
	if res := e.sweep(r); res.Joined != 0 {
		t.Fatalf("second sweep joined again: %+v", res)
	}
}
