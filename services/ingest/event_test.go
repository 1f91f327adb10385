package ingest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/streams"
)

func TestEventRequestValidation(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name    string
		body    string
		header  *string
		field   string // expected Details["field"], "" for a body-level error
		message string // substring of the error message
		check   func(t *testing.T, e *streams.Event)
	}{
		{name: "minimal", body: `{"name":"signup","userId":" u1 "}`, check: func(t *testing.T, e *streams.Event) {
			if e.UserID != "u1" || e.Type != streams.TypeTrack || !e.ReceivedAt.Equal(now) || e.ID == "" {
				t.Fatalf("got %+v", e)
			}
		}},
		{name: "missing name", body: `{"userId":"u1"}`, field: "name", message: "required"},
		{name: "empty name", body: `{"name":"","userId":"u1"}`, field: "name"},
		{name: "reserved bucket name", body: `{"name":"bucket:entered:x","userId":"u1"}`, field: "name", message: "emitted by the engine"},
		{name: "reserved journey name", body: `{"name":"journey:failed","userId":"u1"}`, field: "name"},
		{name: "no identity", body: `{"name":"x"}`, message: "email or userId is required"},
		{name: "blank userId", body: `{"name":"x","userId":"   "}`, message: "email or userId is required"},
		{name: "empty userId", body: `{"name":"x","userId":""}`, field: "userId"},
		{name: "invalid email", body: `{"name":"x","email":"not-an-email"}`, field: "email"},
		{name: "event properties array", body: `{"name":"x","userId":"u","eventProperties":[1]}`, field: "eventProperties", message: "must be an object"},
		{name: "contact properties null", body: `{"name":"x","userId":"u","contactProperties":null}`, field: "contactProperties"},
		{name: "timestamp with offset", body: `{"name":"x","userId":"u","timestamp":"2024-01-01T00:00:00+02:00"}`, field: "timestamp"},
		{name: "date-only timestamp", body: `{"name":"x","userId":"u","timestamp":"2024-01-01"}`, field: "timestamp"},
		{name: "utc timestamp", body: `{"name":"x","userId":"u","timestamp":"2024-01-01T00:00:00.123456Z"}`, check: func(t *testing.T, e *streams.Event) {
			if e.Timestamp == nil || !e.Timestamp.Equal(time.Date(2024, 1, 1, 0, 0, 0, 123456000, time.UTC)) {
				t.Fatalf("timestamp %v", e.Timestamp)
			}
		}},
		{name: "header key wins even empty", body: `{"name":"x","userId":"u","idempotencyKey":"body"}`, header: new(string), check: func(t *testing.T, e *streams.Event) {
			if e.IdempotencyKey != "" || e.MsgID() != e.ID {
				t.Fatalf("an empty header must cancel the body key: %q", e.IdempotencyKey)
			}
		}},
		{name: "body key", body: `{"name":"x","userId":"u","idempotencyKey":"k1"}`, check: func(t *testing.T, e *streams.Event) {
			if e.MsgID() != "idem:k1" {
				t.Fatalf("msg id %q", e.MsgID())
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var req EventRequest
			if err := json.Unmarshal([]byte(tc.body), &req); err != nil {
				t.Fatal(err)
			}
			e, err := req.ToEvent(tc.header, now, "api")
			if tc.check != nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tc.check(t, e)
				return
			}
			if err == nil {
				t.Fatalf("want an error, got %+v", e)
			}
			if errcode.Code(err) != errcode.CodeInvalidRequest {
				t.Fatalf("code %q", errcode.Code(err))
			}
			if got, _ := errcode.Details(err)["field"].(string); got != tc.field {
				t.Fatalf("field %q, want %q (%v)", got, tc.field, err)
			}
			if !strings.Contains(errcode.Message(err), tc.message) {
				t.Fatalf("message %q lacks %q", errcode.Message(err), tc.message)
			}
		})
	}
}

func TestSegmentMapping(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var m SegmentMessage
	_ = json.Unmarshal([]byte(`{"type":"track","userId":"u1","event":"Signed Up","messageId":"m1","properties":{"plan":"pro"},"context":{"traits":{"email":"a@x.com","name":"A"}},"timestamp":"2024-01-01T02:00:00+02:00"}`), &m)
	e, err := m.toEvent("", now)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "Signed Up" || e.Email != "a@x.com" || e.IdempotencyKey != "segment:m1" || string(e.EventProperties) != `{"plan":"pro"}` {
		t.Fatalf("got %+v", e)
	}
	if !e.Timestamp.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("timestamp %v", e.Timestamp)
	}
	var id SegmentMessage
	_ = json.Unmarshal([]byte(`{"type":"identify","anonymousId":"an1","traits":{"plan":"free"}}`), &id)
	e, err = id.toEvent("", now)
	if err != nil || e.Type != streams.TypeIdentify || e.AnonymousID != "an1" || string(e.ContactProperties) != `{"plan":"free"}` {
		t.Fatalf("identify: %+v %v", e, err)
	}
	var page SegmentMessage
	_ = json.Unmarshal([]byte(`{"type":"page","userId":"u1","name":"Pricing"}`), &page)
	if e, err = page.toEvent("", now); err != nil || e.Name != "page" || string(e.EventProperties) != `{"name":"Pricing"}` {
		t.Fatalf("page: %+v %v", e, err)
	}
	var bad SegmentMessage
	_ = json.Unmarshal([]byte(`{"type":"group","userId":"u1"}`), &bad)
	if _, err := bad.toEvent("", now); errcode.Code(err) != errcode.CodeInvalidRequest {
		t.Fatalf("unsupported type: %v", err)
	}
}
