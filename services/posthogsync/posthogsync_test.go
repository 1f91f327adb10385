package posthogsync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/posthogsync"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// Every test stops its runs, servers and PostHog clients.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const apiKey = "phc_test"

// registry: vip and pro sync to PostHog (pro under a custom property),
// quiet does not.
func testRegistry(t *testing.T) *buckets.Registry {
	t.Helper()
	crit := func() *condition.Node {
		n := condition.Event("purchase").AtLeast(1)
		return &n
	}
	reg, err := buckets.NewRegistry("",
		buckets.MustDefine(buckets.Meta{ID: "vip", Name: "VIP", Criteria: crit(), SyncToPostHog: true}),
		buckets.MustDefine(buckets.Meta{ID: "pro", Name: "Pro", Criteria: crit(), SyncToPostHog: true, PostHogPropertyKey: "plan_is_pro"}),
		buckets.MustDefine(buckets.Meta{ID: "quiet", Name: "Quiet", Criteria: crit()}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

type env struct {
	js  jetstream.JetStream
	pub *bus.Publisher
	ph  *fakePostHog
	reg *buckets.Registry
}

func newEnv(t *testing.T, phStatus int) *env {
	t.Helper()
	_, _, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Provision(ctx, js, streams.DefaultRetention); err != nil {
		t.Fatalf("provision: %v", err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	return &env{js: js, pub: pub, ph: newFakePostHog(t, phStatus), reg: testRegistry(t)}
}

func (e *env) config(reg prometheus.Registerer) posthogsync.Config {
	return posthogsync.Config{
		APIKey: apiKey, Host: e.ph.srv.URL, Registry: e.reg, JetStream: e.js,
		Registerer: reg, Interval: 20 * time.Millisecond,
		// One worker: the tests compare the exact sequence of updates,
		// which concurrent workers may thin out by dropping superseded
		// ones (TestHandleKeepsOrderPerProperty covers that).
		Workers: 1,
	}
}

// start runs the mirror; the returned stop cancels it and returns Run's
// error, failing the test if Run does not return promptly.
func (e *env) start(t *testing.T, cfg posthogsync.Config) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	last := e.lastSeq(t)
	done := make(chan error, 1)
	go func() { done <- posthogsync.Run(ctx, cfg) }()
	stopped := false
	stop = func() error {
		t.Helper()
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	e.waitReady(t, last, done)
	return stop
}

func (e *env) lastSeq(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, streams.StreamActivity)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}

// waitReady waits until the mirror's durable is positioned at or past
// last, the end of ACTIVITY before Run started. A fresh mirror starts
// after the messages already stored, so a message published before that
// would be skipped, as intended on a real first start.
func (e *env) waitReady(t *testing.T, last uint64, done chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, 10*time.Second, "the mirror's consumer", func() bool {
		select {
		case err := <-done:
			done <- err // for stop
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		c, err := e.js.Consumer(ctx, streams.StreamActivity, posthogsync.ConsumerName)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.Delivered.Stream >= last
	})
}

var eventTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// activity is an ACTIVITY message as the contacts projection publishes it
// after applying event name for the contact with the given key.
func activity(name, key string) streams.Activity {
	props := map[string]any{"userId": key}
	if rest, ok := strings.CutPrefix(name, "bucket:"); ok {
		kind, id, _ := strings.Cut(rest, ":")
		props["bucketId"], props["transition"], props["source"], props["entryCount"] = id, kind, "event", 1
	}
	raw, _ := json.Marshal(props)
	ev := streams.Event{
		V: streams.EnvelopeVersion, ID: uuid.NewString(), Type: streams.TypeTrack, Name: name,
		UserID: key, ContactID: "c-" + key, EventProperties: raw, ReceivedAt: eventTime, Source: "bucket",
	}
	return streams.Activity{
		V: 1, Event: ev, ContactID: "c-" + key, Key: key, Stored: true,
		Contact: streams.Contact{ID: "c-" + key, ExternalID: &key, Properties: json.RawMessage(`{}`)},
	}
}

func (e *env) publish(t *testing.T, acts ...streams.Activity) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, a := range acts {
		data, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.pub.Publish(ctx, streams.ActivitySubject(a.ContactID), a.Event.ID, data, nil); err != nil {
			t.Fatalf("publish activity: %v", err)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// update is what a PostHog message does to a person: set sets the
// properties, unset removes them.
type update struct {
	DistinctID string
	Set        map[string]any
	Unset      []string
}

func (u update) String() string {
	return fmt.Sprintf("%s set=%v unset=%v", u.DistinctID, u.Set, u.Unset)
}

func set(id, prop string) update   { return update{DistinctID: id, Set: map[string]any{prop: true}} }
func unset(id, prop string) update { return update{DistinctID: id, Unset: []string{prop}} }

// updates decodes what the fake received and checks the message shape
// every mirrored transition shares.
func updates(t *testing.T, msgs []phMessage) []update {
	t.Helper()
	out := make([]update, 0, len(msgs))
	uuids := map[string]bool{}
	for _, m := range msgs {
		if m.Type != "capture" || m.Event != "$set" {
			t.Errorf("message type %q event %q, want capture $set", m.Type, m.Event)
		}
		if !m.Timestamp.Equal(eventTime) {
			t.Errorf("timestamp %s, want the transition's %s", m.Timestamp, eventTime)
		}
		if _, err := uuid.Parse(m.UUID); err != nil || uuids[m.UUID] {
			t.Errorf("uuid %q: want a distinct uuid per message (err %v)", m.UUID, err)
		}
		uuids[m.UUID] = true
		u := update{DistinctID: m.DistinctID}
		if s, ok := m.Properties["$set"].(map[string]any); ok {
			u.Set = s
		}
		if us, ok := m.Properties["$unset"].([]any); ok {
			for _, p := range us {
				u.Unset = append(u.Unset, fmt.Sprint(p))
			}
		}
		out = append(out, u)
	}
	return out
}

// checkUpdates compares what PostHog received with want, the updates of
// every transition in ACTIVITY order. Workers run concurrently, so updates
// of different people may interleave, and the mirror may drop an update
// that a later one for the same person property made stale. So per person
// property, got must be want with some of those left out: in order,
// nothing extra, and the same final state.
func checkUpdates(t *testing.T, got, want []update) {
	t.Helper()
	g, w := byProperty(got), byProperty(want)
	for k, gs := range g {
		ws, i := w[k], 0
		for _, u := range gs {
			for i < len(ws) && !reflect.DeepEqual(u, ws[i]) {
				i++
			}
			if i == len(ws) {
				t.Errorf("PostHog got\n%v\nwant (per person property in order, stale ones may be missing)\n%v", got, want)
				return
			}
			i++
		}
	}
	if g, w := finalState(got), finalState(want); !reflect.DeepEqual(g, w) {
		t.Errorf("PostHog person properties end as %v, want %v (got %v)", g, w, got)
	}
}

// byProperty groups updates by distinct id NUL property.
func byProperty(us []update) map[string][]update {
	out := map[string][]update{}
	for _, u := range us {
		for p := range u.Set {
			out[u.DistinctID+"\x00"+p] = append(out[u.DistinctID+"\x00"+p], u)
		}
		for _, p := range u.Unset {
			out[u.DistinctID+"\x00"+p] = append(out[u.DistinctID+"\x00"+p], u)
		}
	}
	return out
}

// finalState applies updates in order: distinct id NUL property → "true"
// or "unset".
func finalState(us []update) map[string]string {
	st := map[string]string{}
	for _, u := range us {
		for p, v := range u.Set {
			st[u.DistinctID+"\x00"+p] = fmt.Sprint(v)
		}
		for _, p := range u.Unset {
			st[u.DistinctID+"\x00"+p] = "unset"
		}
	}
	return st
}

func TestMirror(t *testing.T) {
	t.Parallel()
	notStored := activity("bucket:entered:vip", "dup")
	notStored.Stored = false
	keyless := activity("bucket:entered:vip", "")
	keyless.Event.UserID = ""
	noKeyButUser := activity("bucket:entered:vip", "")
	noKeyButUser.Event.UserID = "from-event"

	tests := []struct {
		name string
		acts []streams.Activity
		want []update
	}{
		{
			name: "entered sets the property true",
			acts: []streams.Activity{activity("bucket:entered:vip", "u1")},
			want: []update{set("u1", "hogsend_bucket_vip")},
		},
		{
			name: "left unsets the property",
			acts: []streams.Activity{activity("bucket:left:vip", "u1")},
			want: []update{unset("u1", "hogsend_bucket_vip")},
		},
		{
			name: "enter then leave keep their order",
			acts: []streams.Activity{
				activity("bucket:entered:vip", "u1"), activity("bucket:left:vip", "u1"),
				activity("bucket:entered:vip", "u1"), activity("bucket:left:vip", "u1"),
			},
			want: []update{
				set("u1", "hogsend_bucket_vip"), unset("u1", "hogsend_bucket_vip"),
				set("u1", "hogsend_bucket_vip"), unset("u1", "hogsend_bucket_vip"),
			},
		},
		{
			name: "custom PostHogPropertyKey",
			acts: []streams.Activity{activity("bucket:entered:pro", "u2"), activity("bucket:left:pro", "u2")},
			want: []update{set("u2", "plan_is_pro"), unset("u2", "plan_is_pro")},
		},
		{
			name: "bucket without SyncToPostHog sends nothing",
			acts: []streams.Activity{activity("bucket:entered:quiet", "u3"), activity("bucket:left:quiet", "u3")},
		},
		{
			name: "non-bucket activity is ignored",
			acts: []streams.Activity{
				activity("signup", "u4"), activity("purchase", "u4"),
				activity("bucket:dwell:vip:1d", "u4"), // dwell ticks are not mirrored
				activity("bucket:entered", "u4"),      // generic copy, no bucket id
				activity("journey:completed:onboarding", "u4"),
			},
		},
		{
			name: "unregistered bucket is ignored",
			acts: []streams.Activity{activity("bucket:entered:gone", "u5")},
		},
		{
			name: "duplicate and keyless transitions are ignored",
			acts: []streams.Activity{notStored, keyless},
		},
		{
			name: "key falls back to the event's userId",
			acts: []streams.Activity{noKeyButUser},
			want: []update{set("from-event", "hogsend_bucket_vip")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, 0)
			stop := e.start(t, e.config(nil))
			// A mirrored sentinel after the case's messages: one worker
			// handles ACTIVITY in order, so once it arrived every earlier
			// message was handled, and stopping flushes what was enqueued.
			e.publish(t, append(tt.acts, activity("bucket:entered:vip", "sentinel"))...)
			waitFor(t, 10*time.Second, "sentinel", func() bool { return e.ph.hasDistinctID("sentinel") })
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			e.ph.check(t, apiKey)
			got := updates(t, e.ph.messages())
			want := append(tt.want, set("sentinel", "hogsend_bucket_vip"))
			checkUpdates(t, got, want)
		})
	}
}

func TestRunOffWithoutAPIKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	cfg := e.config(nil)
	cfg.APIKey = ""
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := posthogsync.Run(ctx, cfg); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Run took %s with no API key, want an immediate return", d)
	}
	// Off means off: no consumer (it would hold ACTIVITY's interest).
	if _, err := e.js.Consumer(ctx, streams.StreamActivity, posthogsync.ConsumerName); err == nil {
		t.Error("consumer created although the mirror is off")
	}
	// Nothing else is required when off.
	if err := posthogsync.Run(ctx, posthogsync.Config{}); err != nil {
		t.Fatalf("Run with zero Config: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for field, mutate := range map[string]func(*posthogsync.Config){
		"Registry":  func(c *posthogsync.Config) { c.Registry = nil },
		"JetStream": func(c *posthogsync.Config) { c.JetStream = nil },
		"Interval":  func(c *posthogsync.Config) { c.Interval = -time.Second },
		"BatchSize": func(c *posthogsync.Config) { c.BatchSize = -1 },
		"Workers":   func(c *posthogsync.Config) { c.Workers = -1 },
	} {
		cfg := e.config(nil)
		mutate(&cfg)
		err := posthogsync.Run(ctx, cfg)
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Run with bad %s: err %v, want one naming the field", field, err)
		}
	}
}

// A fresh install starts at the end of ACTIVITY; a restart continues where
// the durable left off, including what happened while it was down.
func TestFreshInstallSkipsBacklogRestartResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	e.publish(t, activity("bucket:entered:vip", "old1"), activity("signup", "old2"), activity("bucket:left:vip", "old3"))

	stop := e.start(t, e.config(nil))
	e.publish(t, activity("bucket:entered:vip", "new1"))
	waitFor(t, 10*time.Second, "new1", func() bool { return e.ph.hasDistinctID("new1") })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The backlog was skipped by resetting the durable, not by reading
	// and dropping it: only new1 was ever delivered.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.js.Consumer(ctx, streams.StreamActivity, posthogsync.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CachedInfo().Delivered.Consumer; got != 1 {
		t.Errorf("consumer delivered %d messages, want 1 (the backlog skipped by the reset)", got)
	}

	e.publish(t, activity("bucket:left:vip", "down"))
	stop = e.start(t, e.config(nil))
	e.publish(t, activity("bucket:entered:vip", "new2"))
	waitFor(t, 10*time.Second, "new2", func() bool { return e.ph.hasDistinctID("new2") })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	e.ph.check(t, apiKey)
	got := updates(t, e.ph.messages())
	want := []update{set("new1", "hogsend_bucket_vip"), unset("down", "hogsend_bucket_vip"), set("new2", "hogsend_bucket_vip")}
	checkUpdates(t, got, want)
}

// If the durable exists without having been reset (a crash between its
// creation and the reset, or a server without the reset API), messages
// stored before it was created are still not sent; later ones are.
func TestBacklogBeforeConsumerCreationSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.publish(t, activity("bucket:entered:vip", "old"))
	// Timestamps come from the server clock at millisecond-ish resolution
	// or better; make "before" unambiguous.
	time.Sleep(20 * time.Millisecond)
	if _, err := e.js.CreateOrUpdateConsumer(ctx, streams.StreamActivity, jetstream.ConsumerConfig{
		Durable: posthogsync.ConsumerName, FilterSubject: posthogsync.FilterSubject,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 1000,
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	e.publish(t, activity("bucket:entered:vip", "after-create"))

	stop := e.start(t, e.config(nil))
	e.publish(t, activity("bucket:entered:vip", "running"))
	waitFor(t, 10*time.Second, "running", func() bool { return e.ph.hasDistinctID("running") })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := updates(t, e.ph.messages())
	want := []update{set("after-create", "hogsend_bucket_vip"), set("running", "hogsend_bucket_vip")}
	checkUpdates(t, got, want)
}

// A failing PostHog never holds ACTIVITY up: messages are acked once
// enqueued, failures are counted, and shutdown does not wait for retries.
func TestPostHogDownDoesNotBlock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, http.StatusServiceUnavailable)
	reg := prometheus.NewRegistry()
	stop := e.start(t, e.config(reg))
	const n = 20
	acts := make([]streams.Activity, n)
	for i := range acts {
		acts[i] = activity("bucket:entered:vip", fmt.Sprintf("u%d", i))
	}
	e.publish(t, acts...)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, 10*time.Second, "every activity acked", func() bool {
		c, err := e.js.Consumer(ctx, streams.StreamActivity, posthogsync.ConsumerName)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= n
	})
	waitFor(t, 10*time.Second, "a request to PostHog", func() bool { return e.ph.requestCount() > 0 })
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s with PostHog down", d)
	}
	if got := counter(t, reg, "enqueued"); got != n {
		t.Errorf("enqueued = %v, want %d", got, n)
	}
	if got := counter(t, reg, "failed"); got != n {
		t.Errorf("failed = %v, want %d (dropped after the client closed)", got, n)
	}
	if got := counter(t, reg, "sent"); got != 0 {
		t.Errorf("sent = %v, want 0", got)
	}
}

func TestMetricsCountSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	reg := prometheus.NewRegistry()
	stop := e.start(t, e.config(reg))
	// Two contacts: an entered and a left of one contact may be handled by
	// different workers in either order, and the older one is then dropped
	// as stale (see TestHandleKeepsOrderPerProperty), which is not what this
	// test counts.
	e.publish(t, activity("bucket:entered:vip", "a"), activity("bucket:left:vip", "b"), activity("signup", "a"))
	waitFor(t, 10*time.Second, "two messages", func() bool { return len(e.ph.messages()) == 2 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for outcome, want := range map[string]float64{"enqueued": 2, "sent": 2, "failed": 0} {
		if got := counter(t, reg, outcome); got != want {
			t.Errorf("hogsend_posthog_messages_total{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
	// The consumer metrics of the runner land on the same registry.
	if counterVec(t, reg, "hogsend_consumer_handled_total", "outcome", "ack") != 3 {
		t.Error("hogsend_consumer_handled_total{outcome=ack} != 3")
	}
}

func counter(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	return counterVec(t, reg, "hogsend_posthog_messages_total", "outcome", outcome)
}

func counterVec(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
