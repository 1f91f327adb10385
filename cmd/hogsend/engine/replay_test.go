package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
)

// tableSnapshot is every row of a table, all columns, by primary key.
type tableSnapshot map[string]map[string]any

// snapshotTables reads contacts (deleted rows included), contact_aliases
// and user_events.
func snapshotTables(t *testing.T, dsn string) map[string]tableSnapshot {
	t.Helper()
	conn := dbConn(t, dsn)
	ctx := ctxT(t)
	out := map[string]tableSnapshot{}
	for _, table := range []string{"contacts", "contact_aliases", "user_events"} {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT id::text, to_jsonb(t)::text FROM %s t`, table))
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		snap := tableSnapshot{}
		for rows.Next() {
			var id, data string
			if err := rows.Scan(&id, &data); err != nil {
				t.Fatal(err)
			}
			var row map[string]any
			if err := json.Unmarshal([]byte(data), &row); err != nil {
				t.Fatal(err)
			}
			snap[id] = row
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		out[table] = snap
	}
	return out
}

// diffSnapshots lists rows missing on either side and, for rows on both,
// the columns that differ.
func diffSnapshots(before, after map[string]tableSnapshot) []string {
	var diffs []string
	for table, b := range before {
		a := after[table]
		for id, brow := range b {
			arow, ok := a[id]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s: missing after replay (was %v)", table, id, brow))
				continue
			}
			for col, bv := range brow {
				if av := arow[col]; !reflect.DeepEqual(av, bv) {
					diffs = append(diffs, fmt.Sprintf("%s %s: column %s = %v after replay, %v before", table, id, col, av, bv))
				}
			}
		}
		for id, arow := range a {
			if _, ok := b[id]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s: new after replay: %v", table, id, arow))
			}
		}
	}
	sort.Strings(diffs)
	return diffs
}

// TestReplayEquality runs workloads through the API, then rebuilds the
// contacts projection with `hogsend replay contacts --from-start` and
// expects every row of contacts (deleted ones included), contact_aliases
// and user_events back exactly: contact and alias ids derive from event
// ids and every time from an event's receive time.
//
// Not parallel: the replay command reads its configuration from the
// environment.
func TestReplayEquality(t *testing.T) {
	// Every event of a contact carries the same partition key (its user
	// id): creates, fill-in links, property patches and nulls, upserts,
	// duplicates, deletes and re-creates, batch and Segment calls.
	t.Run("one partition key per contact", func(t *testing.T) {
		cfg := testConfig(t)
		m, admin := startMain(t, cfg)
		w := newReplayLoad(t, admin)
		for i := 1; i <= 4; i++ {
			u := fmt.Sprintf("rs-%d", i)
			w.send(apiclient.Event{Name: "signup", UserID: u, EventProperties: map[string]any{"i": i}, ContactProperties: map[string]any{"plan": "free", "n": i}})
			w.send(apiclient.Event{Name: "visit", UserID: u, Timestamp: "2024-06-01T00:00:00.5Z"})
		}
		w.send(apiclient.Event{Name: "verify", UserID: "rs-1", Email: "RS1@x.com", ContactProperties: map[string]any{"n": nil, "nested": map[string]any{"a": 1, "b": nil}}})
		w.upsert(apiclient.UpsertContact{UserID: "rs-2", Email: "rs2@x.com", Properties: map[string]any{"plan": "pro"}})
		w.send(apiclient.Event{Name: "paid", UserID: "rs-2", IdempotencyKey: "rs-dup-1"})
		w.dup(apiclient.Event{Name: "paid", UserID: "rs-2"}, apiclient.WithIdempotencyKey("rs-dup-1"))
		w.dup(apiclient.Event{Name: "paid", UserID: "rs-2", IdempotencyKey: "rs-dup-1"})
		w.wait()
		if err := w.ingest.DeleteContacts(w.ctx, "", "rs-3"); err != nil {
			t.Fatal(err)
		}
		w.send(apiclient.Event{Name: "back", UserID: "rs-3", Email: "rs3@x.com"})
		if b, err := w.ingest.SendEvents(w.ctx, []apiclient.Event{
			{Name: "bulk", UserID: "rs-5", ContactProperties: map[string]any{"src": "batch"}},
			{Name: "bulk", UserID: "rs-4", IdempotencyKey: "rs-dup-2"},
			{Name: "bulk", UserID: "rs-4", IdempotencyKey: "rs-dup-2"},
		}); err != nil || b.Accepted != 3 {
			t.Fatalf("batch = %+v, %v", b, err)
		}
		w.total += 2
		if _, err := admin.SendTestEvent(w.ctx, apiclient.TestEvent{Event: "tested", UserID: "rs-4"}); err != nil {
			t.Fatal(err)
		}
		w.total++
		if _, err := w.ingest.SegmentTrack(w.ctx, apiclient.SegmentMessage{UserID: "rs-6", Event: "Viewed", MessageID: "rs-seg-1"}); err != nil {
			t.Fatal(err)
		}
		w.total++
		if _, err := w.ingest.SegmentIdentify(w.ctx, apiclient.SegmentMessage{UserID: "rs-6", Traits: map[string]any{"email": "rs6@x.com"}}); err != nil {
			t.Fatal(err)
		}
		w.wait()
		waitContact(t, admin, "rs-6", func(c apiclient.Contact) bool { return c.Email != nil })
		waitCaughtUp(t, admin)
		w.wantLive("rs-1/rs1@x.com/", "rs-2/rs2@x.com/", "rs-3/rs3@x.com/", "rs-4//", "rs-5//", "rs-6/rs6@x.com/")
		if c := waitContact(t, admin, "rs-1", nil); !reflect.DeepEqual(c.Properties, map[string]any{"plan": "free", "nested": map[string]any{"a": float64(1)}}) {
			t.Errorf("rs-1 properties = %v", c.Properties)
		}
		replayAndCompare(t, m, cfg)
	})

	// Events of one contact arrive on several partitions: an email-only
	// contact that gains a user id, merges, a Segment anonymous id linked
	// to a user id, and admin edits and deletes (addressed by contact id).
	// The live run waits between dependent steps, so its order is well
	// defined.
	t.Run("keys across partitions", func(t *testing.T) {
		cfg := testConfig(t)
		m, admin := startMain(t, cfg)
		w := newReplayLoad(t, admin)
		for i := 1; i <= 4; i++ {
			w.send(apiclient.Event{Name: "signup", UserID: fmt.Sprintf("rp-%d", i), ContactProperties: map[string]any{"plan": "free", "n": i}})
		}
		w.send(apiclient.Event{Name: "visit", Email: "RE-1@x.com"})
		w.send(apiclient.Event{Name: "visit", Email: "re-2@x.com", ContactProperties: map[string]any{"from": "re-2"}})
		w.send(apiclient.Event{Name: "visit", Email: "re-3@x.com"})
		w.wait()
		// Link: the email-only contact gains a user id; its history moves.
		w.send(apiclient.Event{Name: "login", Email: "re-1@x.com", UserID: "rl-1"})
		w.wait()
		// Merges: rp-1 takes re-2's email; re-3 merges into rp-3 as an
		// alias (rp-3 keeps its own email) and then resolves to it.
		w.upsert(apiclient.UpsertContact{UserID: "rp-1", Email: "re-2@x.com", Properties: map[string]any{"merged": true}})
		w.upsert(apiclient.UpsertContact{UserID: "rp-3", Email: "rp3@x.com"})
		w.upsert(apiclient.UpsertContact{UserID: "rp-3", Email: "re-3@x.com"})
		w.send(apiclient.Event{Name: "via-alias", Email: "re-3@x.com"})
		w.wait()
		// Admin edits, then an event of the same contact.
		if _, err := admin.UpdateContact(w.ctx, "rp-4", apiclient.UpdateContact{Properties: map[string]any{"plan": "pro", "n": nil}}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.UpdateContact(w.ctx, "rl-1", apiclient.UpdateContact{Email: "rl-1@x.com"}); err != nil {
			t.Fatal(err)
		}
		w.send(apiclient.Event{Name: "seen", UserID: "rp-4", ContactProperties: map[string]any{"seats": 5}})
		w.wait()
		if err := admin.DeleteContact(w.ctx, "rl-1"); err != nil {
			t.Fatal(err)
		}
		// Segment: anonymous first, then linked to a user id.
		if _, err := w.ingest.SegmentTrack(w.ctx, apiclient.SegmentMessage{AnonymousID: "anon-r", Event: "Viewed", MessageID: "rseg-1"}); err != nil {
			t.Fatal(err)
		}
		w.total++
		w.wait()
		if _, err := w.ingest.SegmentIdentify(w.ctx, apiclient.SegmentMessage{AnonymousID: "anon-r", UserID: "ra-1", Traits: map[string]any{"plan": "team"}}); err != nil {
			t.Fatal(err)
		}
		waitContact(t, admin, "ra-1", nil)
		waitCaughtUp(t, admin)
		w.wantLive("ra-1//anon-r", "rp-1/re-2@x.com/", "rp-2//", "rp-3/rp3@x.com/", "rp-4//")
		if c := waitContact(t, admin, "rp-4", nil); !reflect.DeepEqual(c.Properties, map[string]any{"plan": "pro", "seats": float64(5)}) {
			t.Errorf("rp-4 properties = %v", c.Properties)
		}
		if rows := eventsOf(t, admin, "rp-3"); len(rows) != 3 {
			t.Errorf("rp-3 history = %+v, want signup, re-3's visit and via-alias", rows)
		}
		replayAndCompare(t, m, cfg)
	})
}

// replayLoad sends events and keeps count of the history rows to expect.
type replayLoad struct {
	t      *testing.T
	ctx    context.Context
	admin  *apiclient.Client
	ingest *apiclient.Client
	total  int
}

func newReplayLoad(t *testing.T, admin *apiclient.Client) *replayLoad {
	return &replayLoad{t: t, ctx: ctxT(t), admin: admin, ingest: admin.WithKey(newKey(t, admin, "ingest"))}
}

// send ingests an event that must be stored.
func (w *replayLoad) send(e apiclient.Event, opts ...apiclient.RequestOption) {
	w.t.Helper()
	res, err := w.ingest.SendEvent(w.ctx, e, opts...)
	if err != nil || !res.Stored {
		w.t.Fatalf("send %+v = %+v, %v", e, res, err)
	}
	w.total++
}

// dup ingests an event that must be a duplicate.
func (w *replayLoad) dup(e apiclient.Event, opts ...apiclient.RequestOption) {
	w.t.Helper()
	res, err := w.ingest.SendEvent(w.ctx, e, opts...)
	if err != nil || res.Stored {
		w.t.Fatalf("send duplicate %+v = %+v, %v", e, res, err)
	}
}

func (w *replayLoad) upsert(req apiclient.UpsertContact) {
	w.t.Helper()
	if _, err := w.ingest.UpsertContact(w.ctx, req); err != nil {
		w.t.Fatalf("upsert %+v: %v", req, err)
	}
}

// wait waits until every stored event is in the history.
func (w *replayLoad) wait() {
	w.t.Helper()
	var got int
	eventually(w.t, 5*time.Second, func() bool {
		l, err := w.admin.ListEvents(w.ctx, apiclient.ListEventsParams{Limit: 1})
		got = l.Total
		return err == nil && l.Total == w.total
	}, func() string { return fmt.Sprintf("%d history rows, have %d", w.total, got) })
}

// wantLive checks the live contacts as "externalId/email/anonymousId".
func (w *replayLoad) wantLive(want ...string) {
	w.t.Helper()
	w.wait()
	live, err := w.admin.ListContacts(w.ctx, apiclient.ListContactsParams{})
	if err != nil {
		w.t.Fatal(err)
	}
	var keys []string
	for _, c := range live.Contacts {
		keys = append(keys, strOr(c.ExternalID, "")+"/"+strOr(c.Email, "")+"/"+strOr(c.AnonymousID, ""))
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, want) {
		w.t.Fatalf("live contacts = %v, want %v", keys, want)
	}
}

// replayAndCompare snapshots the tables, closes m, runs the replay
// command on its database and data directory, and compares.
func replayAndCompare(t *testing.T, m *Main, cfg Config) {
	t.Helper()
	before := snapshotTables(t, cfg.DatabaseURL)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABASE_URL", cfg.DatabaseURL)
	t.Setenv("HOGSEND_DATA_DIR", cfg.DataDir)
	t.Setenv("HOGSEND_NATS_LISTEN", "off")
	t.Setenv("LOG_LEVEL", "warn")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, []string{"replay", "contacts", "--from-start"}, &stdout, &stderr); err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "replayed ") {
		t.Errorf("replay printed %q", stdout.String())
	}
	after := snapshotTables(t, cfg.DatabaseURL)
	for _, table := range []string{"contacts", "contact_aliases", "user_events"} {
		t.Logf("%s: %d rows before, %d after", table, len(before[table]), len(after[table]))
	}
	if diffs := diffSnapshots(before, after); len(diffs) > 0 {
		t.Errorf("replay rebuilt different rows (%d differences):\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}

func strOr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}
