package buckets_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/projections"
	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/projections/contacts"
	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// engine runs the real loop: EVENTS → contacts projection → ACTIVITY →
// bucket evaluation → transitions back into EVENTS.
type engine struct {
	t     *testing.T
	pool  *pgxpool.Pool
	js    jetstream.JetStream
	pub   *bus.Publisher
	clock time.Time
	seq   int
}

func startEngine(t *testing.T, defs ...*buckets.Bucket) *engine {
	t.Helper()
	pool := schematest.NewPool(t)
	srv, _, js := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := bus.Provision(ctx, js, streams.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := buckets.NewRegistry("", defs...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	run := func(stream, root, name string, proj projections.Projector) {
		_, cjs := natstest.Connect(t, srv)
		cpub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: cjs})
		if err != nil {
			t.Fatal(err)
		}
		runner := projections.NewRunner(name, pool, cpub, proj, nil)
		go func() {
			done <- bus.RunPartitioned(ctx, bus.PartitionedConfig{JetStream: cjs, Stream: stream, Root: root, Name: name, PinnedTTL: time.Second}, runner)
		}()
	}
	run(streams.StreamEvents, streams.EventsRoot, contacts.Name, contacts.New(contacts.Options{}))
	run(streams.StreamActivity, streams.ActivityRoot, buckets.Name, buckets.NewProjector(reg, nil))
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("consumer: %v", err)
			}
		}
	})
	return &engine{t: t, pool: pool, js: js, pub: pub, clock: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// send publishes a track event at the engine's clock and waits until the
// whole loop settled (history row stored and ACTIVITY consumed).
func (e *engine) send(userID, name string, eventProps, contactProps map[string]any) {
	e.t.Helper()
	e.seq++
	ev := &streams.Event{V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeTrack,
		Name: name, UserID: userID, ReceivedAt: e.clock, Source: "test"}
	if eventProps != nil {
		ev.EventProperties, _ = json.Marshal(eventProps)
	}
	if contactProps != nil {
		ev.ContactProperties, _ = json.Marshal(contactProps)
	}
	if _, err := e.pub.PublishEvent(context.Background(), ev); err != nil {
		e.t.Fatal(err)
	}
	e.settle()
}

// publishOnly publishes without waiting for the loop to settle.
func (e *engine) publishOnly(userID, name string, contactProps map[string]any) {
	e.t.Helper()
	ev := &streams.Event{V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeTrack,
		Name: name, UserID: userID, ReceivedAt: e.clock, Source: "test"}
	if contactProps != nil {
		ev.ContactProperties, _ = json.Marshal(contactProps)
	}
	if _, err := e.pub.PublishEvent(context.Background(), ev); err != nil {
		e.t.Error(err)
	}
}

// settle waits until both consumers have nothing pending.
func (e *engine) settle() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		idle := true
		for _, c := range []struct{ stream, name string }{{streams.StreamEvents, contacts.Name}, {streams.StreamActivity, buckets.Name}} {
			for p := range streams.Partitions {
				cons, err := e.js.Consumer(context.Background(), c.stream, bus.DurableName(c.name, p))
				if err != nil {
					idle = false
					break
				}
				info := cons.CachedInfo()
				if info.NumPending > 0 || info.NumAckPending > 0 {
					idle = false
				}
			}
		}
		if idle {
			time.Sleep(20 * time.Millisecond) // a transition published just now
			if e.pendingAll() == 0 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("engine did not settle within 10s")
}

func (e *engine) pendingAll() uint64 {
	var n uint64
	for _, c := range []struct{ stream, name string }{{streams.StreamEvents, contacts.Name}, {streams.StreamActivity, buckets.Name}} {
		for p := range streams.Partitions {
			cons, err := e.js.Consumer(context.Background(), c.stream, bus.DurableName(c.name, p))
			if err != nil {
				return 1
			}
			info := cons.CachedInfo()
			n += info.NumPending + uint64(info.NumAckPending)
		}
	}
	return n
}

type membership struct {
	Status     string
	EntryCount int
	Source     string
	ExpiresAt  *time.Time
	EnteredAt  time.Time
}

func (e *engine) memberships(user, bucket string) []membership {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT status, entry_count, coalesce(source,''), expires_at, entered_at FROM bucket_memberships WHERE user_id=$1 AND bucket_id=$2 ORDER BY entry_count`, user, bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []membership
	for rows.Next() {
		var m membership
		if err := rows.Scan(&m.Status, &m.EntryCount, &m.Source, &m.ExpiresAt, &m.EnteredAt); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

type transition struct {
	Name  string
	Key   string
	Props map[string]any
}

func (e *engine) transitions(user string) []transition {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT event, coalesce(idempotency_key,''), properties FROM user_events WHERE user_id=$1 AND event LIKE 'bucket:%' ORDER BY stream_seq`, user)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []transition
	for rows.Next() {
		var tr transition
		var raw []byte
		if err := rows.Scan(&tr.Name, &tr.Key, &raw); err != nil {
			e.t.Fatal(err)
		}
		_ = json.Unmarshal(raw, &tr.Props)
		out = append(out, tr)
	}
	return out
}

func crit(n condition.Node) *condition.Node { return &n }

// Scenario 17: a count bucket joins on the 2nd purchase, once.
func TestJoinOnCountEmitsOnce(t *testing.T) {
	t.Parallel()
	b := buckets.MustDefine(buckets.Meta{ID: "buyers", Name: "Buyers", Criteria: crit(condition.Event("purchase").AtLeast(2))})
	e := startEngine(t, b)
	e.send("u1", "purchase", nil, nil)
	if m := e.memberships("u1", "buyers"); len(m) != 0 {
		t.Fatalf("joined after one purchase: %+v", m)
	}
	e.send("u1", "purchase", nil, nil)
	m := e.memberships("u1", "buyers")
	if len(m) != 1 || m[0].Status != "active" || m[0].EntryCount != 1 || m[0].Source != "event" {
		t.Fatalf("memberships %+v", m)
	}
	tr := e.transitions("u1")
	if len(tr) != 1 || tr[0].Name != "bucket:entered:buyers" || tr[0].Key != "bucket:buyers:u1:entered:1" {
		t.Fatalf("transitions %+v", tr)
	}
	if tr[0].Props["bucketId"] != "buyers" || tr[0].Props["entryCount"] != float64(1) || tr[0].Props["source"] != "event" || tr[0].Props["transition"] != "entered" {
		t.Fatalf("transition properties %v", tr[0].Props)
	}
	e.send("u1", "purchase", nil, nil)
	if tr := e.transitions("u1"); len(tr) != 1 {
		t.Fatalf("a 3rd purchase emitted: %+v", tr)
	}
	// Consumers of ACTIVITY (journeys) see the transition with the
	// contact's snapshot.
	var seen bool
	for _, a := range readActivity(t, e.js) {
		if a.Event.Name == "bucket:entered:buyers" {
			seen = a.Key == "u1" && a.Contact.ExternalID != nil && *a.Contact.ExternalID == "u1" && a.Stored
		}
	}
	if !seen {
		t.Fatal("bucket:entered:buyers is not on ACTIVITY with the contact snapshot")
	}
	// Scenario 27: no generic copy without a journey triggering on it.
	var generic int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM user_events WHERE event = 'bucket:entered'`).Scan(&generic); err != nil || generic != 0 {
		t.Fatalf("generic copies: %d %v", generic, err)
	}
}

// Scenario 18: alternating plan joins and leaves with growing epochs.
func TestPropertyBucketEpochs(t *testing.T) {
	t.Parallel()
	b := buckets.MustDefine(buckets.Meta{ID: "pro", Name: "Pro plan", Criteria: crit(condition.Prop("plan").Eq("pro"))})
	e := startEngine(t, b)
	for i, plan := range []string{"pro", "free", "pro", "free", "pro", "free", "pro"} {
		e.clock = e.clock.Add(time.Minute)
		e.send("u1", fmt.Sprintf("tick-%d", i), nil, map[string]any{"plan": plan})
	}
	m := e.memberships("u1", "pro")
	if len(m) != 4 {
		t.Fatalf("want 4 rows, got %+v", m)
	}
	for i, row := range m {
		want := "left"
		if i == 3 {
			want = "active"
		}
		if row.EntryCount != i+1 || row.Status != want {
			t.Fatalf("row %d: %+v", i, row)
		}
	}
	var left int
	for _, tr := range e.transitions("u1") {
		if tr.Name == "bucket:left:pro" {
			left++
			if tr.Props["reason"] != "criteria" {
				t.Fatalf("leave reason %v", tr.Props["reason"])
			}
		}
	}
	if left != 3 {
		t.Fatalf("want 3 leaves, got %d", left)
	}
	// Scenario 19: event properties never reach the contact.
	e.send("u1", "noise", map[string]any{"plan": "free"}, nil)
	if m := e.memberships("u1", "pro"); m[len(m)-1].Status != "active" {
		t.Fatal("an event property changed membership")
	}
}

// Scenario 20: entry limits gate re-entry emission.
func TestEntryLimits(t *testing.T) {
	t.Parallel()
	once := buckets.MustDefine(buckets.Meta{ID: "once", Name: "Once", EntryLimit: buckets.Once, Criteria: crit(condition.Prop("plan").Eq("pro"))})
	period := buckets.MustDefine(buckets.Meta{ID: "hourly", Name: "Hourly", EntryLimit: buckets.OncePerPeriod, EntryPeriod: time.Hour, Criteria: crit(condition.Prop("plan").Eq("pro"))})
	e := startEngine(t, once, period)
	step := func(d time.Duration, plan string) {
		e.clock = e.clock.Add(d)
		e.send("u1", "plan_changed", nil, map[string]any{"plan": plan})
	}
	step(0, "pro")
	step(time.Minute, "free")
	step(10*time.Minute, "pro") // 10 min after leaving
	count := func(name string) int {
		n := 0
		for _, tr := range e.transitions("u1") {
			if tr.Name == name {
				n++
			}
		}
		return n
	}
	if m := e.memberships("u1", "once"); len(m) != 2 || m[1].EntryCount != 2 || m[1].Status != "active" {
		t.Fatalf("once rows %+v", m)
	}
	if count("bucket:entered:once") != 1 {
		t.Fatal("once re-join emitted")
	}
	if count("bucket:entered:hourly") != 1 {
		t.Fatal("hourly re-join 10 minutes after leaving emitted")
	}
	step(time.Minute, "free")
	step(61*time.Minute, "pro") // 61 min after leaving
	if count("bucket:entered:hourly") != 2 {
		t.Fatalf("hourly re-join after 61 minutes did not emit: %+v", e.transitions("u1"))
	}
}

// Scenario 21: a leave younger than minDwell is deferred.
func TestMinDwellDefersLeave(t *testing.T) {
	t.Parallel()
	b := buckets.MustDefine(buckets.Meta{ID: "sticky", Name: "Sticky", MinDwell: time.Hour, Criteria: crit(condition.Prop("plan").Eq("pro"))})
	e := startEngine(t, b)
	e.send("u1", "a", nil, map[string]any{"plan": "pro"})
	e.clock = e.clock.Add(5 * time.Minute)
	e.send("u1", "b", nil, map[string]any{"plan": "free"})
	m := e.memberships("u1", "sticky")
	if len(m) != 1 || m[0].Status != "active" || m[0].ExpiresAt == nil || !m[0].ExpiresAt.Equal(m[0].EnteredAt.Add(time.Hour)) {
		t.Fatalf("deferred leave: %+v", m)
	}
	for _, tr := range e.transitions("u1") {
		if tr.Name == "bucket:left:sticky" {
			t.Fatal("a deferred leave emitted")
		}
	}
	e.clock = e.clock.Add(time.Hour)
	e.send("u1", "c", nil, map[string]any{"plan": "free"})
	if m := e.memberships("u1", "sticky"); m[0].Status != "left" {
		t.Fatalf("leave after minDwell: %+v", m)
	}
}

// Bucket transitions do not go through identity resolution: an email-only
// contact keeps its uuid key and gains no external id.
func TestTransitionsDoNotTouchTheContact(t *testing.T) {
	t.Parallel()
	b := buckets.MustDefine(buckets.Meta{ID: "visitors", Name: "Visitors", Criteria: crit(condition.Event("visit").Exists())})
	e := startEngine(t, b)
	ev := &streams.Event{V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeTrack,
		Name: "visit", Email: "e@x.com", ReceivedAt: e.clock, Source: "test"}
	if _, err := e.pub.PublishEvent(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	e.settle()
	var id string
	var ext *string
	var lastSeen time.Time
	if err := e.pool.QueryRow(context.Background(), `SELECT id::text, external_id, last_seen_at FROM contacts`).Scan(&id, &ext, &lastSeen); err != nil {
		t.Fatal(err)
	}
	if ext != nil || !lastSeen.Equal(e.clock) {
		t.Fatalf("the transition changed the contact: external %v, last seen %v", *ext, lastSeen)
	}
	if tr := e.transitions(id); len(tr) != 1 || tr[0].Key != "bucket:visitors:"+id+":entered:1" {
		t.Fatalf("transitions under the uuid key: %+v", tr)
	}
}

// Deleting a contact drops its memberships silently; a new contact with
// the same key starts a new epoch.
func TestDeletedContactMembershipsStopCounting(t *testing.T) {
	t.Parallel()
	b := buckets.MustDefine(buckets.Meta{ID: "pro", Name: "Pro", Criteria: crit(condition.Prop("plan").Eq("pro"))})
	e := startEngine(t, b)
	e.send("u1", "a", nil, map[string]any{"plan": "pro"})
	del := &streams.Event{V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeDelete, UserID: "u1", ReceivedAt: e.clock, Source: "test"}
	if _, err := e.pub.PublishEvent(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	e.settle()
	var live int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM bucket_memberships WHERE user_id='u1' AND deleted_at IS NULL`).Scan(&live); err != nil || live != 0 {
		t.Fatalf("live memberships after delete: %d %v", live, err)
	}
	if n := len(e.transitions("u1")); n != 1 {
		t.Fatalf("the delete emitted: %+v", e.transitions("u1"))
	}
	e.send("u1", "b", nil, map[string]any{"plan": "pro"})
	m := e.memberships("u1", "pro")
	if len(m) != 2 || m[1].EntryCount != 2 || m[1].Status != "active" {
		t.Fatalf("re-created contact: %+v", m)
	}
}

// Replaying ACTIVITY through a fresh evaluation (memberships rebuilt from
// nothing) reproduces the same memberships and emits only transitions
// history already holds: no new transitions.
func TestReplayingActivityEmitsNoNewTransitions(t *testing.T) {
	t.Parallel()
	b := buckets.MustDefine(buckets.Meta{ID: "pro", Name: "Pro", Criteria: crit(condition.Prop("plan").Eq("pro"))})
	c := buckets.MustDefine(buckets.Meta{ID: "buyers", Name: "Buyers", Criteria: crit(condition.Event("purchase").AtLeast(2))})
	e := startEngine(t, b, c)
	for i, plan := range []string{"pro", "free", "pro"} {
		e.clock = e.clock.Add(time.Minute)
		e.send(fmt.Sprintf("r%d", i%2), "purchase", nil, map[string]any{"plan": plan})
	}
	e.send("r0", "purchase", nil, nil)
	snapshot := func() (rows []string, transitions int) {
		r, err := e.pool.Query(context.Background(), `SELECT user_id||'/'||bucket_id||'/'||status||'/'||entry_count FROM bucket_memberships ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
			var s string
			_ = r.Scan(&s)
			rows = append(rows, s)
		}
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM user_events WHERE event LIKE 'bucket:%'`).Scan(&transitions); err != nil {
			t.Fatal(err)
		}
		return rows, transitions
	}
	before, beforeN := snapshot()
	if beforeN == 0 {
		t.Fatal("the workload made no transitions")
	}
	if _, err := e.pool.Exec(context.Background(), `TRUNCATE bucket_memberships`); err != nil {
		t.Fatal(err)
	}
	reg, _ := buckets.NewRegistry("", b, c)
	runner := projections.NewRunner("buckets-replay", e.pool, e.pub, buckets.NewProjector(reg, nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.RunPartitioned(ctx, bus.PartitionedConfig{JetStream: e.js, Stream: streams.StreamActivity, Root: streams.ActivityRoot, Name: "buckets-replay", PinnedTTL: time.Second}, runner)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, _ := snapshot()
		if len(rows) == len(before) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.settle()
	after, afterN := snapshot()
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("memberships after replay:\n%v\nbefore:\n%v", after, before)
	}
	if afterN != beforeN {
		t.Fatalf("replay added transitions: %d, was %d", afterN, beforeN)
	}
}

func readActivity(t *testing.T, js jetstream.JetStream) []streams.Activity {
	t.Helper()
	ctx := context.Background()
	c, err := js.OrderedConsumer(ctx, streams.StreamActivity, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []streams.Activity
	for {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var a streams.Activity
			if err := json.Unmarshal(m.Data(), &a); err != nil {
				t.Fatal(err)
			}
			out = append(out, a)
		}
		if n == 0 {
			return out
		}
	}
}
