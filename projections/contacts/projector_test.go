package contacts_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/projections"
	"github.com/seed-eeb360f6/hogsend/projections/contacts"
	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// harness applies events through the real runner (checkpoint, outbox,
// publish to ACTIVITY) without a consumer, so each call is one batch.
type harness struct {
	t      *testing.T
	pool   *pgxpool.Pool
	nc     *nats.Conn
	js     jetstream.JetStream
	runner *projections.Runner
	seq    atomic.Uint64
	clock  time.Time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	pool := schematest.NewPool(t)
	_, nc, js := natstest.Start(t)
	if err := bus.Provision(context.Background(), js, streams.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	proj := contacts.New(contacts.Options{Notifier: nc})
	return &harness{
		t: t, pool: pool, nc: nc, js: js,
		runner: projections.NewRunner(contacts.Name, pool, pub, proj, nil),
		clock:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// ev builds a track event; mutate the result for other shapes.
func (h *harness) ev(name, userID, email string) *streams.Event {
	h.clock = h.clock.Add(time.Second)
	return &streams.Event{
		V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeTrack,
		Name: name, UserID: userID, Email: email, ReceivedAt: h.clock, Source: "test",
	}
}

func (h *harness) apply(events ...*streams.Event) {
	h.t.Helper()
	msgs := make([]bus.Msg, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			h.t.Fatal(err)
		}
		msgs[i] = bus.Msg{Subject: streams.EventSubject(e), Seq: h.seq.Add(1), Data: data, NumDelivered: 1, Timestamp: e.ReceivedAt}
	}
	if err := h.runner.HandleBatch(context.Background(), 0, msgs); err != nil {
		h.t.Fatalf("apply batch: %v", err)
	}
}

type row struct {
	ID         uuid.UUID
	ExternalID *string
	Email      *string
	Props      map[string]any
	Deleted    bool
}

func (h *harness) contacts() []row {
	h.t.Helper()
	rows, err := h.pool.Query(context.Background(), `SELECT id, external_id, email, properties, deleted_at IS NOT NULL FROM contacts ORDER BY created_at, id`)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var r row
		var raw []byte
		if err := rows.Scan(&r.ID, &r.ExternalID, &r.Email, &raw, &r.Deleted); err != nil {
			h.t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &r.Props); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func (h *harness) live() []row {
	var out []row
	for _, r := range h.contacts() {
		if !r.Deleted {
			out = append(out, r)
		}
	}
	return out
}

func (h *harness) eventKeys() map[string]string {
	h.t.Helper()
	rows, err := h.pool.Query(context.Background(), `SELECT id::text, user_id FROM user_events`)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, uid string
		if err := rows.Scan(&id, &uid); err != nil {
			h.t.Fatal(err)
		}
		out[id] = uid
	}
	return out
}

func (h *harness) count(sql string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestCreateSplitsContactAndEventProperties(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	e := h.ev("signup", "u1", " A@X.com ")
	e.EventProperties = json.RawMessage(`{"src":"web"}`)
	e.ContactProperties = json.RawMessage(`{"plan":"pro","gone":null}`)
	h.apply(e)

	cs := h.contacts()
	if len(cs) != 1 {
		t.Fatalf("want 1 contact, got %d", len(cs))
	}
	c := cs[0]
	if str(c.ExternalID) != "u1" || str(c.Email) != "a@x.com" {
		t.Fatalf("keys: external %s email %s", str(c.ExternalID), str(c.Email))
	}
	if len(c.Props) != 1 || c.Props["plan"] != "pro" {
		t.Fatalf("contact properties %v, want {plan:pro} (nulls dropped on create)", c.Props)
	}
	if c.ID.String() != e.ID {
		t.Fatalf("contact id %s, want the creating event's id %s (replay determinism)", c.ID, e.ID)
	}
	var props string
	if err := h.pool.QueryRow(context.Background(), `SELECT properties::text FROM user_events WHERE id = $1`, e.ID).Scan(&props); err != nil {
		t.Fatal(err)
	}
	if props != `{"src": "web"}` {
		t.Fatalf("event properties %s", props)
	}
}

func TestLinkPromotesEmailOnlyContactAndRekeysHistory(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	first := h.ev("visit", "", "e@x.com")
	h.apply(first)
	emailOnly := h.live()[0]
	if h.eventKeys()[first.ID] != emailOnly.ID.String() {
		t.Fatalf("email-only history should be keyed by the contact id")
	}
	h.apply(h.ev("signup", "u9", "E@x.com"))

	live := h.live()
	if len(live) != 1 {
		t.Fatalf("want exactly one contact, got %d", len(live))
	}
	if str(live[0].ExternalID) != "u9" || live[0].ID != emailOnly.ID {
		t.Fatalf("contact did not gain external id: %+v", live[0])
	}
	for id, key := range h.eventKeys() {
		if key != "u9" {
			t.Fatalf("event %s keyed %q, want u9", id, key)
		}
	}
	if n := h.count(`SELECT count(*) FROM contact_aliases WHERE alias_kind='external' AND alias_value='u9' AND reason='promote' AND contact_id=$1`, emailOnly.ID); n != 1 {
		t.Fatalf("want a promote alias for u9, got %d", n)
	}
}

func TestLinkInSameBatchRekeysPendingHistory(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.ev("visit", "", "e@x.com")
	b := h.ev("signup", "u9", "e@x.com")
	c := h.ev("login", "u9", "")
	h.apply(a, b, c)
	if len(h.live()) != 1 {
		t.Fatalf("want one contact")
	}
	for id, key := range h.eventKeys() {
		if key != "u9" {
			t.Fatalf("event %s keyed %q, want u9", id, key)
		}
	}
}

func TestMergeSurvivorRuleFoldsHistoryAndAliases(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	x := h.ev("signup", "a", "")
	x.ContactProperties = json.RawMessage(`{"plan":"pro","seats":1}`)
	y := h.ev("visit", "", "y@x.com")
	y.ContactProperties = json.RawMessage(`{"plan":"free","color":"red"}`)
	h.apply(x)
	h.apply(y)
	loser := h.live()[1]

	m := h.ev("identify", "a", "y@x.com")
	m.Type = streams.TypeIdentify
	m.Name = ""
	m.ContactProperties = json.RawMessage(`{"seats":null,"new":true}`)
	h.apply(m)

	live := h.live()
	if len(live) != 1 {
		t.Fatalf("want one live contact after merge, got %d", len(live))
	}
	s := live[0]
	if s.ID.String() != x.ID || str(s.Email) != "y@x.com" || str(s.ExternalID) != "a" {
		t.Fatalf("survivor should be the contact with an external id and gain the email: %+v", s)
	}
	want := map[string]any{"plan": "pro", "color": "red", "new": true}
	if len(s.Props) != len(want) {
		t.Fatalf("merged properties %v, want %v", s.Props, want)
	}
	for k, v := range want {
		if s.Props[k] != v {
			t.Fatalf("merged properties %v, want %v", s.Props, want)
		}
	}
	for id, key := range h.eventKeys() {
		if key != "a" {
			t.Fatalf("event %s keyed %q after merge, want a", id, key)
		}
	}
	if n := h.count(`SELECT count(*) FROM contact_aliases WHERE alias_kind='email' AND alias_value='y@x.com' AND reason='merge' AND from_contact_id=$1`, loser.ID); n != 1 {
		t.Fatalf("want a merge alias for the loser's email")
	}
}

func TestMergeBetweenTwoExternalIDsAndThreeWay(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.apply(h.ev("a", "A", ""))
	h.apply(h.ev("b", "B", "b@x.com"))
	anon := h.ev("c", "", "")
	anon.AnonymousID = "anon-1"
	h.apply(anon)
	// userId A + email owned by B + anonymous id of the third: one survivor.
	m := h.ev("merge", "A", "b@x.com")
	m.AnonymousID = "anon-1"
	h.apply(m)
	live := h.live()
	if len(live) != 1 || str(live[0].ExternalID) != "A" {
		t.Fatalf("want survivor A, got %+v", live)
	}
	if n := h.count(`SELECT count(*) FROM contacts WHERE deleted_at IS NOT NULL`); n != 2 {
		t.Fatalf("want 2 soft-deleted losers, got %d", n)
	}
	for _, key := range h.eventKeys() {
		if key != "A" {
			t.Fatalf("history not folded onto A: %v", h.eventKeys())
		}
	}
	// B's external id now resolves to the survivor through its alias.
	h.apply(h.ev("later", "B", ""))
	if len(h.live()) != 1 {
		t.Fatalf("an aliased external id must not create a contact")
	}
	if h.eventKeys()[h.lastID()] != "A" {
		t.Fatalf("event via alias should be stored under the survivor key")
	}
}

func (h *harness) lastID() string {
	var id string
	if err := h.pool.QueryRow(context.Background(), `SELECT id::text FROM user_events ORDER BY stream_seq DESC LIMIT 1`).Scan(&id); err != nil {
		h.t.Fatal(err)
	}
	return id
}

func TestMergedAwayEmailResolvesToSurvivorKeepingItsOwnEmail(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.apply(h.ev("a", "s", "s@x.com"))
	h.apply(h.ev("b", "", "l@x.com"))
	// Merge through anonymous id: the survivor keeps its own email.
	anon := h.ev("c", "", "l@x.com")
	anon.AnonymousID = "z"
	h.apply(anon)
	m := h.ev("d", "s", "")
	m.AnonymousID = "z"
	h.apply(m)
	if len(h.live()) != 1 {
		t.Fatalf("want one contact after merge, got %+v", h.live())
	}
	h.apply(h.ev("e", "", "l@x.com"))
	live := h.live()
	if len(live) != 1 || str(live[0].Email) != "s@x.com" {
		t.Fatalf("email-only event must resolve through the merge alias: %+v", live)
	}
}

func TestNullPatchDeletesProperty(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	e := h.ev("a", "u1", "")
	e.ContactProperties = json.RawMessage(`{"plan":"pro","seats":3,"nested":{"a":1,"b":null}}`)
	h.apply(e)
	e2 := h.ev("b", "u1", "")
	e2.ContactProperties = json.RawMessage(`{"plan":null}`)
	h.apply(e2)
	p := h.live()[0].Props
	if _, ok := p["plan"]; ok || p["seats"] != float64(3) {
		t.Fatalf("properties %v, want seats kept and plan removed", p)
	}
	if nested := p["nested"].(map[string]any); len(nested) != 1 {
		t.Fatalf("a non-empty link patch strips nested nulls: %v", nested)
	}
	// An empty patch leaves the bag untouched.
	h.apply(h.ev("c", "u1", ""))
	if len(h.live()[0].Props) != 2 {
		t.Fatalf("empty patch changed properties: %v", h.live()[0].Props)
	}
}

func TestDuplicateIdempotencyKeyStoresOneRowButStillResolves(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.ev("pay", "u1", "")
	a.IdempotencyKey = "k1"
	h.apply(a)
	b := h.ev("pay", "u1", "")
	b.IdempotencyKey = "k1"
	b.ContactProperties = json.RawMessage(`{"paid":true}`)
	h.apply(b)
	if n := h.count(`SELECT count(*) FROM user_events WHERE idempotency_key = 'k1'`); n != 1 {
		t.Fatalf("want one row for the key, got %d", n)
	}
	if h.live()[0].Props["paid"] != true {
		t.Fatalf("a duplicate still applies its contact properties")
	}
	// Only the stored event reached ACTIVITY.
	if n := activityCount(t, h.js); n != 1 {
		t.Fatalf("want 1 ACTIVITY message, got %d", n)
	}
}

func activityCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), streams.StreamActivity)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestDeleteThenNewEventCreatesNewContact(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.apply(h.ev("a", "u1", "u1@x.com"))
	del := h.ev("", "u1", "")
	del.Type = streams.TypeDelete
	h.apply(del)
	if len(h.live()) != 0 {
		t.Fatalf("delete left a live contact")
	}
	again := h.ev("", "u1", "")
	again.Type = streams.TypeDelete
	h.apply(again) // nothing matches: not_found, nothing changes
	h.apply(h.ev("b", "u1", ""))
	live := h.live()
	if len(live) != 1 || str(live[0].Email) != "<nil>" {
		t.Fatalf("want a new contact without the old email, got %+v", live)
	}
	if n := h.count(`SELECT count(*) FROM user_events WHERE user_id = 'u1'`); n != 2 {
		t.Fatalf("history keyed by external id is inherited: got %d rows", n)
	}
}

func TestAdminEditReplacesEmailAndRefusesConflict(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.apply(h.ev("a", "u1", "old@x.com"))
	h.apply(h.ev("b", "u2", "taken@x.com"))
	id := h.live()[0].ID.String()

	sub, err := h.nc.SubscribeSync(streams.AppliedRoot + ".>")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(email, props string) streams.Applied {
		e := h.ev("", "", email)
		e.Type, e.ContactID, e.Notify = streams.TypeIdentify, id, true
		if props != "" {
			e.ContactProperties = json.RawMessage(props)
		}
		h.apply(e)
		m, err := sub.NextMsg(2 * time.Second)
		if err != nil {
			t.Fatalf("no applied notification: %v", err)
		}
		var a streams.Applied
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatal(err)
		}
		if a.EventID != e.ID {
			t.Fatalf("notification for %s, want %s", a.EventID, e.ID)
		}
		return a
	}
	if a := edit("taken@x.com", `{"x":1}`); a.Error != "conflict" {
		t.Fatalf("want conflict, got %+v", a)
	}
	if len(h.live()) != 2 || h.live()[0].Props["x"] != nil {
		t.Fatalf("a conflicting edit changed something: %+v", h.live())
	}
	if a := edit("New@x.com", `{"x":1}`); a.Error != "" || a.ContactID != id {
		t.Fatalf("edit failed: %+v", a)
	}
	c := h.live()[0]
	if str(c.Email) != "new@x.com" || c.Props["x"] != float64(1) || len(h.live()) != 2 {
		t.Fatalf("edit not applied: %+v", h.live())
	}
}

func TestRedeliveredBatchAtOrBelowCheckpointChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	e := h.ev("a", "u1", "")
	e.ContactProperties = json.RawMessage(`{"n":1}`)
	data, _ := json.Marshal(e)
	msg := bus.Msg{Subject: streams.EventSubject(e), Seq: 7, Data: data, NumDelivered: 1}
	for i := 0; i < 3; i++ {
		msg.NumDelivered = uint64(i + 1)
		if err := h.runner.HandleBatch(context.Background(), 3, []bus.Msg{msg}); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.count(`SELECT count(*) FROM user_events`); n != 1 {
		t.Fatalf("redelivery applied twice: %d rows", n)
	}
	if n := activityCount(t, h.js); n != 1 {
		t.Fatalf("redelivery republished: %d ACTIVITY messages", n)
	}
	if !strings.Contains(h.live()[0].ID.String(), "-") {
		t.Fatal("contact missing")
	}
}

// failingPublisher injects a publish failure in front of the real
// publisher: the batch commits, then the process "dies" before ACTIVITY.
type failingPublisher struct {
	next projections.Publisher
	fail atomic.Bool
}

func (f *failingPublisher) PublishAsyncBatch(ctx context.Context, msgs []bus.OutMsg) error {
	if f.fail.Load() {
		return errors.New("injected: connection lost before publish")
	}
	return f.next.PublishAsyncBatch(ctx, msgs)
}

func TestOutboxSurvivesCrashBetweenCommitAndPublish(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	real, err := bus.NewPublisher(bus.PublisherConfig{JetStream: h.js})
	if err != nil {
		t.Fatal(err)
	}
	fp := &failingPublisher{next: real}
	fp.fail.Store(true)
	first := projections.NewRunner(contacts.Name, h.pool, fp, contacts.New(contacts.Options{}), nil)

	evs := []*streams.Event{h.ev("a", "u1", ""), h.ev("b", "u2", ""), h.ev("c", "u1", "")}
	msgs := make([]bus.Msg, len(evs))
	for i, e := range evs {
		data, _ := json.Marshal(e)
		msgs[i] = bus.Msg{Subject: streams.EventSubject(e), Seq: uint64(i + 1), Data: data, NumDelivered: 1}
	}
	if err := first.HandleBatch(context.Background(), 5, msgs); err == nil {
		t.Fatal("want the injected publish failure")
	}
	if n := h.count(`SELECT count(*) FROM user_events`); n != 3 {
		t.Fatalf("the batch should have committed: %d rows", n)
	}
	if n := activityCount(t, h.js); n != 0 {
		t.Fatalf("nothing should be on ACTIVITY yet, got %d", n)
	}
	// Another instance takes the partition over and gets the same messages
	// redelivered plus a new one: it publishes the leftovers, then its own.
	second := projections.NewRunner(contacts.Name, h.pool, real, contacts.New(contacts.Options{}), nil)
	next := h.ev("d", "u2", "")
	data, _ := json.Marshal(next)
	msgs = append(msgs, bus.Msg{Subject: streams.EventSubject(next), Seq: 4, Data: data, NumDelivered: 1})
	if err := second.HandleBatch(context.Background(), 5, msgs); err != nil {
		t.Fatal(err)
	}
	if n := activityCount(t, h.js); n != 4 {
		t.Fatalf("want 4 ACTIVITY messages after takeover, got %d", n)
	}
	if n := h.count(`SELECT count(*) FROM user_events`); n != 4 {
		t.Fatalf("redelivered events applied twice: %d rows", n)
	}
	// The first instance comes back (stale state) and sees a redelivery:
	// nothing changes, nothing is published again.
	fp.fail.Store(false)
	if err := first.HandleBatch(context.Background(), 5, msgs); err != nil {
		t.Fatal(err)
	}
	if n := activityCount(t, h.js); n != 4 {
		t.Fatalf("stale instance republished: %d ACTIVITY messages", n)
	}
	// The last published row is deleted by the partition's next batch.
	if n := h.count(`SELECT count(*) FROM projection_outbox`); n > 1 {
		t.Fatalf("outbox rows accumulate: %d", n)
	}
}
