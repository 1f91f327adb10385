package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
	"github.com/seed-eeb360f6/hogsend/streams"
)

// TestIngestion covers the ingestion scenarios of spec 10 §7 (1–5) and the
// batch and Segment routes against one process.
func TestIngestion(t *testing.T) {
	t.Parallel()
	_, admin := startApp(t)
	ingest := admin.WithKey(newKey(t, admin, "ingest"))

	// Scenario 1 runs first, on the empty database.
	t.Run("1 property split", func(t *testing.T) {
		ctx := ctxT(t)
		res, err := ingest.SendEvent(ctx, apiclient.Event{
			Name: "signup", Email: "A@X.com", UserID: "u1",
			EventProperties:   map[string]any{"src": "web"},
			ContactProperties: map[string]any{"plan": "pro"},
		})
		if err != nil || !res.Stored || res.ID == "" {
			t.Fatalf("send = %+v, %v; want stored", res, err)
		}
		events := waitEvents(t, admin, "u1", 1)
		ev := events[0]
		if ev.ID != res.ID || ev.Event != "signup" || !reflect.DeepEqual(ev.Properties, map[string]any{"src": "web"}) || ev.IdempotencyKey != nil {
			t.Errorf("event row = %+v", ev)
		}
		got, err := admin.GetEvent(ctx, res.ID)
		if err != nil || !reflect.DeepEqual(got, ev) {
			t.Errorf("GetEvent = %+v, %v; want %+v", got, err, ev)
		}
		list, err := admin.ListContacts(ctx, apiclient.ListContactsParams{})
		if err != nil {
			t.Fatal(err)
		}
		if list.Total != 1 || len(list.Contacts) != 1 {
			t.Fatalf("contacts = %+v, want exactly one", list)
		}
		c := list.Contacts[0]
		if str(c.ExternalID) != "u1" || str(c.Email) != "a@x.com" || !reflect.DeepEqual(c.Properties, map[string]any{"plan": "pro"}) {
			t.Errorf("contact = %+v", c)
		}
		// The contact was created by the event: its id is the event id
		// and its clock the event's receive time.
		if c.ID != res.ID || !c.FirstSeenAt.Equal(ev.OccurredAt) {
			t.Errorf("contact id %s first seen %s; event %s at %s", c.ID, c.FirstSeenAt, res.ID, ev.OccurredAt)
		}
		tl, err := admin.ContactTimeline(ctx, "u1", apiclient.TimelineParams{Type: "event"})
		if err != nil {
			t.Fatal(err)
		}
		if tl.Total != 1 || len(tl.Timeline) != 1 || tl.Timeline[0].Type != "event" ||
			!reflect.DeepEqual(tl.Timeline[0].Data["properties"], map[string]any{"src": "web"}) {
			t.Errorf("timeline = %+v", tl)
		}
	})

	t.Run("2 identity and auth", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		_, err := ingest.SendEvent(ctx, apiclient.Event{Name: "x"})
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "email or userId is required")
		if e := err.(*apiclient.Error); e.Message != "email or userId is required" {
			t.Errorf("message = %q", e.Message)
		}

		ev := apiclient.Event{Name: "x", UserID: "u2"}
		reader := admin.WithKey(newKey(t, admin, "read"))
		_, err = reader.SendEvent(ctx, ev)
		wantAPIError(t, err, http.StatusForbidden, "forbidden", "Forbidden: insufficient scope")
		// journey-admin is on the ladder, ingest is not.
		_, err = admin.WithKey(newKey(t, admin, "journey-admin")).SendEvent(ctx, ev)
		wantAPIError(t, err, http.StatusForbidden, "forbidden", "")
		_, err = admin.WithKey("").SendEvent(ctx, ev)
		wantAPIError(t, err, http.StatusUnauthorized, "unauthorized", "Unauthorized")
		_, err = admin.WithKey("hsk_unknown").SendEvent(ctx, ev)
		wantAPIError(t, err, http.StatusUnauthorized, "unauthorized", "Unauthorized")
		// An ingest key does not open the admin API; full-admin opens both.
		_, err = ingest.ListContacts(ctx, apiclient.ListContactsParams{})
		wantAPIError(t, err, http.StatusForbidden, "forbidden", "")
		if res, err := admin.SendEvent(ctx, ev); err != nil || !res.Stored {
			t.Errorf("full-admin send = %+v, %v", res, err)
		}
		waitEvents(t, admin, "u2", 1)
	})

	t.Run("3 header key wins", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		first, err := ingest.SendEvent(ctx, apiclient.Event{Name: "paid", UserID: "u3", IdempotencyKey: "s3-k2"}, apiclient.WithIdempotencyKey("s3-k1"))
		if err != nil || !first.Stored {
			t.Fatalf("first = %+v, %v", first, err)
		}
		second, err := ingest.SendEvent(ctx, apiclient.Event{Name: "paid", UserID: "u3", IdempotencyKey: "s3-k1"})
		if err != nil || second.Stored || second.ID != first.ID {
			t.Fatalf("second = %+v, %v; want stored:false with the first event's id %s", second, err, first.ID)
		}
		rows := waitEvents(t, admin, "u3", 1)
		if rows[0].ID != first.ID || str(rows[0].IdempotencyKey) != "s3-k1" {
			t.Errorf("row = %+v, want the first event keyed s3-k1", rows[0])
		}
		// The body key of the first request was overridden, so it is
		// free; an empty header cancels a body key altogether.
		third, err := ingest.SendEvent(ctx, apiclient.Event{Name: "paid", UserID: "u3", IdempotencyKey: "s3-k2"})
		if err != nil || !third.Stored {
			t.Fatalf("third = %+v, %v; want stored", third, err)
		}
		for range 2 {
			r, err := ingest.SendEvent(ctx, apiclient.Event{Name: "paid", UserID: "u3", IdempotencyKey: "s3-k2"}, apiclient.WithIdempotencyKey(""))
			if err != nil || !r.Stored {
				t.Fatalf("empty header = %+v, %v; want stored (no key)", r, err)
			}
		}
		rows = waitEvents(t, admin, "u3", 4)
		keys := map[string]int{}
		for _, r := range rows {
			keys[str(r.IdempotencyKey)]++
		}
		if !reflect.DeepEqual(keys, map[string]int{"s3-k1": 1, "s3-k2": 1, "<nil>": 2}) {
			t.Errorf("idempotency keys = %v", keys)
		}
	})

	t.Run("4 concurrent same key", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		var wg sync.WaitGroup
		results := make([]apiclient.Accepted, 10)
		errs := make([]error, 10)
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = ingest.SendEvent(ctx, apiclient.Event{Name: "race", UserID: "u4", IdempotencyKey: "s4-key",
					EventProperties: map[string]any{"i": i}})
			}()
		}
		wg.Wait()
		stored := 0
		var storedID string
		for i := range 10 {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			if results[i].Stored {
				stored++
				storedID = results[i].ID
			}
		}
		if stored != 1 {
			t.Fatalf("%d requests got stored:true, want exactly 1", stored)
		}
		// Every duplicate answers with the stored event's id.
		for i, r := range results {
			if r.ID != storedID {
				t.Errorf("request %d answered id %s, want %s", i, r.ID, storedID)
			}
		}
		rows := waitEvents(t, admin, "u4", 1)
		if rows[0].ID != storedID {
			t.Errorf("row %s, want the stored request's event %s", rows[0].ID, storedID)
		}
		waitCaughtUp(t, admin)
		if n := len(eventsOf(t, admin, "u4")); n != 1 {
			t.Errorf("%d rows after catching up", n)
		}
	})

	t.Run("5 timestamp", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		res, err := ingest.SendEvent(ctx, apiclient.Event{Name: "old", UserID: "u5", Timestamp: "2024-01-01T00:00:00Z"})
		if err != nil {
			t.Fatal(err)
		}
		rows := waitEvents(t, admin, "u5", 1)
		if want := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); rows[0].ID != res.ID || !rows[0].OccurredAt.Equal(want) {
			t.Errorf("row = %+v, want occurredAt %s", rows[0], want)
		}
		// The contact's clock is the receive time, not the client's.
		c := waitContact(t, admin, "u5", nil)
		if time.Since(c.FirstSeenAt) > time.Minute {
			t.Errorf("firstSeenAt = %s, want about now", c.FirstSeenAt)
		}
		_, err = ingest.SendEvent(ctx, apiclient.Event{Name: "old", UserID: "u5", Timestamp: "2024-01-01T00:00:00+02:00"})
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "timestamp")
		// Seconds are optional, fraction digits unlimited.
		for _, ts := range []string{"2024-01-01T10:20Z", "2024-01-01T10:20:30.123456789Z"} {
			if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "ts", UserID: "u5", Timestamp: ts}); err != nil {
				t.Errorf("timestamp %s: %v", ts, err)
			}
		}
		waitEvents(t, admin, "u5", 3)
	})

	t.Run("batch", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		res, err := ingest.SendEvents(ctx, []apiclient.Event{
			{Name: "b1", UserID: "ub", EventProperties: map[string]any{"n": 1}},
			{Name: "b2"},
			{Name: "b3", UserID: "ub", IdempotencyKey: "batch-k3"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted != 2 || res.Rejected != 1 || len(res.Results) != 3 {
			t.Fatalf("batch = %+v", res)
		}
		for i, it := range res.Results {
			if it.Index != i {
				t.Errorf("result %d has index %d", i, it.Index)
			}
		}
		if r := res.Results[1]; r.Code != "invalid_request" || r.Error != "email or userId is required" || r.Stored || r.ID != "" {
			t.Errorf("invalid item = %+v", r)
		}
		if !res.Results[0].Stored || !res.Results[2].Stored {
			t.Errorf("valid items = %+v", res.Results)
		}
		rows := waitEvents(t, admin, "ub", 2)
		names := map[string]string{}
		for _, r := range rows {
			names[r.ID] = r.Event
		}
		if names[res.Results[0].ID] != "b1" || names[res.Results[2].ID] != "b3" {
			t.Errorf("rows = %+v", rows)
		}
		// Re-sending a keyed event in a batch is a duplicate.
		again, err := ingest.SendEvents(ctx, []apiclient.Event{{Name: "b3", UserID: "ub", IdempotencyKey: "batch-k3"}})
		if err != nil || again.Accepted != 1 || again.Results[0].Stored || again.Results[0].ID != res.Results[2].ID {
			t.Errorf("repeat = %+v, %v; want accepted, not stored, id %s", again, err, res.Results[2].ID)
		}

		many := make([]apiclient.Event, 501)
		for i := range many {
			many[i] = apiclient.Event{Name: "many", UserID: "ub-many"}
		}
		_, err = ingest.SendEvents(ctx, many)
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "events")
		full, err := ingest.SendEvents(ctx, many[:500])
		if err != nil || full.Accepted != 500 {
			t.Fatalf("500 events = %d accepted, %v", full.Accepted, err)
		}
		waitCaughtUp(t, admin)
		if l, err := admin.ListEvents(ctx, apiclient.ListEventsParams{UserID: "ub-many", Limit: 1}); err != nil || l.Total != 500 {
			t.Errorf("ub-many rows = %d, %v; want 500 (the 501 batch stores nothing)", l.Total, err)
		}
		_, err = ingest.SendEvents(ctx, nil)
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "events")
	})

	t.Run("segment", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		track := apiclient.SegmentMessage{UserID: "seg-1", Event: "Order Completed", Properties: map[string]any{"total": 9.5}, MessageID: "m-1"}
		// Segment libraries send the write key as the Basic user name.
		first, err := ingest.SegmentTrack(ctx, track, apiclient.WithBasicAuth())
		if err != nil || !first.Success || !first.Stored {
			t.Fatalf("track = %+v, %v", first, err)
		}
		again, err := ingest.SegmentTrack(ctx, track, apiclient.WithBasicAuth())
		if err != nil || !again.Success || again.Stored || again.ID != first.ID {
			t.Fatalf("same messageId = %+v, %v; want stored:false with id %s", again, err, first.ID)
		}
		_, err = admin.WithKey("hsk_nope").SegmentTrack(ctx, track, apiclient.WithBasicAuth())
		wantAPIError(t, err, http.StatusUnauthorized, "unauthorized", "")
		_, err = admin.WithKey(newKey(t, admin, "read")).SegmentTrack(ctx, track, apiclient.WithBasicAuth())
		wantAPIError(t, err, http.StatusForbidden, "forbidden", "")

		id, err := ingest.SegmentIdentify(ctx, apiclient.SegmentMessage{UserID: "seg-1", Traits: map[string]any{"email": "Seg1@Example.com", "plan": "team"}, MessageID: "m-2"})
		if err != nil || !id.Stored {
			t.Fatalf("identify = %+v, %v", id, err)
		}
		c := waitContact(t, admin, "seg-1", func(c apiclient.Contact) bool { return c.Email != nil })
		if str(c.Email) != "seg1@example.com" || c.Properties["plan"] != "team" {
			t.Errorf("contact = %+v", c)
		}

		batch, err := ingest.SegmentBatch(ctx, []apiclient.SegmentMessage{
			{Type: "track", UserID: "seg-1", Event: "Viewed", MessageID: "m-3"},
			{Type: "track", UserID: "seg-1", Event: "Viewed", MessageID: "m-3"},
			{Type: "group", UserID: "seg-1", MessageID: "m-4"},
			{Type: "track", AnonymousID: "anon-1", Event: "Viewed", MessageID: "m-5", Timestamp: "2024-05-01T12:00:00+02:00"},
			{Type: "track", UserID: "seg-1", Event: "Viewed", MessageID: "m-1"},
			{Type: "page", UserID: "seg-1", Name: "Home", Properties: map[string]any{"path": "/"}, MessageID: "m-6"},
		}, apiclient.WithBasicAuth())
		if err != nil {
			t.Fatal(err)
		}
		stored := []bool{}
		for _, r := range batch.Results {
			stored = append(stored, r.Stored)
		}
		if batch.Success || batch.Accepted != 5 || batch.Rejected != 1 || !reflect.DeepEqual(stored, []bool{true, false, false, true, false, true}) ||
			batch.Results[2].Code != "invalid_request" || !strings.Contains(batch.Results[2].Error, "type") ||
			batch.Results[1].ID != batch.Results[0].ID || batch.Results[4].ID != first.ID {
			t.Errorf("batch = %+v", batch)
		}
		rows := waitEvents(t, admin, "seg-1", 3)
		byName := map[string]apiclient.StoredEvent{}
		for _, r := range rows {
			byName[r.Event] = r
		}
		if len(byName) != 3 || byName["Order Completed"].Properties["total"] != 9.5 ||
			!reflect.DeepEqual(byName["page"].Properties, map[string]any{"name": "Home", "path": "/"}) ||
			str(byName["Viewed"].IdempotencyKey) != "segment:m-3" {
			t.Errorf("seg-1 rows = %+v", rows)
		}
		anon := waitEvents(t, admin, "anon-1", 1)
		if want := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC); !anon[0].OccurredAt.Equal(want) {
			t.Errorf("segment timestamp with offset stored as %s, want %s", anon[0].OccurredAt, want)
		}
	})

	t.Run("admin test event", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		res, err := admin.SendTestEvent(ctx, apiclient.TestEvent{Event: "tested", UserID: "ut", Properties: map[string]any{"a": "b"}})
		if err != nil || !res.Stored || res.ID == "" {
			t.Fatalf("test event = %+v, %v", res, err)
		}
		rows := waitEvents(t, admin, "ut", 1)
		if rows[0].ID != res.ID || rows[0].Properties["a"] != "b" {
			t.Errorf("row = %+v", rows[0])
		}
		_, err = admin.SendTestEvent(ctx, apiclient.TestEvent{Event: "tested"})
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "email or userId is required")
		_, err = admin.SendTestEvent(ctx, apiclient.TestEvent{Event: "bucket:entered:b", UserID: "ut"})
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "event")
		_, err = admin.WithKey(newKey(t, admin, "read")).SendTestEvent(ctx, apiclient.TestEvent{Event: "tested", UserID: "ut"})
		wantAPIError(t, err, http.StatusForbidden, "forbidden", "")
	})
}

// TestNATSIngest publishes events over core NATS request-reply, the way
// `hogsend send` does.
func TestNATSIngest(t *testing.T) {
	t.Parallel()
	m, admin := startApp(t, withNATSListen("127.0.0.1:0"))
	if m.NATSURL() == "" {
		t.Fatal("NATSURL is empty with a listener configured")
	}
	nc, err := nats.Connect(m.NATSURL(), nats.Timeout(3*time.Second))
	if err != nil {
		t.Fatalf("connect to %s: %v", m.NATSURL(), err)
	}
	t.Cleanup(nc.Close)
	ctx := ctxT(t)

	// Run returns before the ingest subscription reaches the server (it
	// is made in a background goroutine), so the first request can meet
	// "no responders". Reported as a bug; until it is fixed the first
	// request waits for the responder instead of failing at random.
	eventually(t, 5*time.Second, func() bool {
		_, err := nc.RequestWithContext(ctx, streams.IngestSubject, []byte(`{}`))
		if errors.Is(err, nats.ErrNoResponders) {
			t.Log("NATS ingest not subscribed yet after Run returned")
			return false
		}
		return true
	}, func() string { return "a responder on " + streams.IngestSubject })

	request := func(body []byte, header nats.Header) map[string]any {
		t.Helper()
		msg, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: streams.IngestSubject, Data: body, Header: header})
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		var out map[string]any
		if err := json.Unmarshal(msg.Data, &out); err != nil {
			t.Fatalf("reply %q: %v", msg.Data, err)
		}
		return out
	}

	body := []byte(`{"name":"nats-signup","userId":"n1","email":"N1@x.com","eventProperties":{"via":"nats"},"contactProperties":{"plan":"pro"}}`)
	reply := request(body, nil)
	id, _ := reply["id"].(string)
	if id == "" || reply["stored"] != true || len(reply) != 2 {
		t.Fatalf("reply = %v, want {id, stored:true}", reply)
	}
	rows := waitEvents(t, admin, "n1", 1)
	if rows[0].ID != id || rows[0].Properties["via"] != "nats" {
		t.Errorf("row = %+v", rows[0])
	}
	c := waitContact(t, admin, "n1", nil)
	if str(c.Email) != "n1@x.com" || c.Properties["plan"] != "pro" {
		t.Errorf("contact = %+v", c)
	}

	// The Idempotency-Key header dedupes like the HTTP header.
	hdr := nats.Header{"Idempotency-Key": []string{"nats-k1"}}
	if r := request([]byte(`{"name":"keyed","userId":"n1"}`), hdr); r["stored"] != true {
		t.Errorf("keyed = %v", r)
	}
	if r := request([]byte(`{"name":"keyed","userId":"n1","idempotencyKey":"nats-k1"}`), nil); r["stored"] != false {
		t.Errorf("duplicate = %v, want stored:false", r)
	}

	for name, tc := range map[string]struct {
		body, field string
	}{
		"malformed":      {body: `{"name":`},
		"not an object":  {body: `[1,2]`},
		"no identity":    {body: `{"name":"x"}`},
		"bad email":      {body: `{"name":"x","email":"nope"}`, field: "email"},
		"reserved name":  {body: `{"name":"journey:x","userId":"n1"}`, field: "name"},
		"bad timestamp":  {body: `{"name":"x","userId":"n1","timestamp":"2024-01-01"}`, field: "timestamp"},
		"props as array": {body: `{"name":"x","userId":"n1","eventProperties":[]}`, field: "eventProperties"},
	} {
		r := request([]byte(tc.body), nil)
		if r["code"] != "invalid_request" || r["status"] != float64(400) || !strings.Contains(fmt.Sprint(r["error"]), tc.field) {
			t.Errorf("%s: reply = %v, want code invalid_request naming %q", name, r, tc.field)
		}
	}
	waitCaughtUp(t, admin)
	if rows := eventsOf(t, admin, "n1"); len(rows) != 2 {
		t.Errorf("n1 has %d rows, want 2 (rejected requests store nothing)", len(rows))
	}
}
