package engine

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
)

// TestBadInput sends malformed events: each is refused with a 4xx, a
// machine-readable code and a message naming the field, and nothing is
// stored.
func TestBadInput(t *testing.T) {
	t.Parallel()
	_, admin := startApp(t)
	ingest := admin.WithKey(newKey(t, admin, "ingest"))
	ctx := ctxT(t)

	// Some state first, so "unchanged" is not just "still empty".
	if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "seed", UserID: "seed", Email: "seed@x.com"}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, admin, "seed", 1)
	totals := func() (events, contacts int) {
		t.Helper()
		waitCaughtUp(t, admin)
		e, err := admin.ListEvents(ctx, apiclient.ListEventsParams{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		c, err := admin.ListContacts(ctx, apiclient.ListContactsParams{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		return e.Total, c.Total
	}
	events0, contacts0 := totals()

	big := `{"name":"big","userId":"u","eventProperties":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`
	for _, tc := range []struct {
		name   string
		body   string
		opts   []apiclient.RequestOption
		status int
		code   string
		field  string // must appear in the message; details.field when set by the server
	}{
		{name: "malformed JSON", body: `{"name":"x","userId":"u"`, status: 400, code: "invalid_request", field: "JSON"},
		{name: "trailing garbage", body: `{"name":"x","userId":"u"} {}`, status: 400, code: "invalid_request", field: "JSON"},
		{name: "not an object", body: `["x"]`, status: 400, code: "invalid_request", field: "object"},
		{name: "name as number", body: `{"name":5,"userId":"u"}`, status: 400, code: "invalid_request", field: "name"},
		{name: "eventProperties as array", body: `{"name":"x","userId":"u","eventProperties":[1]}`, status: 400, code: "invalid_request", field: "eventProperties"},
		{name: "contactProperties as string", body: `{"name":"x","userId":"u","contactProperties":"a"}`, status: 400, code: "invalid_request", field: "contactProperties"},
		{name: "eventProperties null", body: `{"name":"x","userId":"u","eventProperties":null}`, status: 400, code: "invalid_request", field: "eventProperties"},
		{name: "lists not booleans", body: `{"name":"x","userId":"u","lists":{"news":"yes"}}`, status: 400, code: "invalid_request", field: "lists"},
		{name: "missing name", body: `{"userId":"u"}`, status: 400, code: "invalid_request", field: "name"},
		{name: "empty name", body: `{"name":"","userId":"u"}`, status: 400, code: "invalid_request", field: "name"},
		{name: "invalid email", body: `{"name":"x","email":"not-an-email"}`, status: 400, code: "invalid_request", field: "email"},
		{name: "empty userId", body: `{"name":"x","userId":""}`, status: 400, code: "invalid_request", field: "userId"},
		{name: "timestamp with offset", body: `{"name":"x","userId":"u","timestamp":"2024-01-01T00:00:00+02:00"}`, status: 400, code: "invalid_request", field: "timestamp"},
		{name: "date-only timestamp", body: `{"name":"x","userId":"u","timestamp":"2024-01-01"}`, status: 400, code: "invalid_request", field: "timestamp"},
		{name: "timestamp without zone", body: `{"name":"x","userId":"u","timestamp":"2024-01-01T00:00:00"}`, status: 400, code: "invalid_request", field: "timestamp"},
		{name: "body over 1 MiB", body: big, status: 413, code: "payload_too_large", field: "too large"},
		{name: "missing Content-Type", body: `{"name":"x","userId":"u"}`, opts: []apiclient.RequestOption{apiclient.WithHeader("Content-Type", "")}, status: 400, code: "invalid_request", field: "Content-Type"},
		{name: "text/plain", body: `{"name":"x","userId":"u"}`, opts: []apiclient.RequestOption{apiclient.WithHeader("Content-Type", "text/plain")}, status: 400, code: "invalid_request", field: "Content-Type"},
		{name: "bucket name", body: `{"name":"bucket:entered:x","userId":"u"}`, status: 400, code: "invalid_request", field: "name"},
		{name: "journey name", body: `{"name":"journey:x","userId":"u"}`, status: 400, code: "invalid_request", field: "name"},
		{name: "whitespace userId", body: `{"name":"x","userId":"   "}`, status: 400, code: "invalid_request", field: "userId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := ingest.Send(ctx, http.MethodPost, "/v1/events", apiclient.RawBody(tc.body), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			e := wantAPIError(t, resp.Err(), tc.status, tc.code, tc.field)
			if f, ok := e.Details["field"]; ok && !strings.Contains(tc.field, f.(string)) && f != "" {
				t.Errorf("details.field = %v, want %q", f, tc.field)
			}
			// The field is named once: "name: required", not "name: name: required".
			if strings.Count(e.Message, tc.field+":") > 1 {
				t.Errorf("message %q names the field twice", e.Message)
			}
			if !bytes.HasPrefix(bytes.TrimSpace(resp.Body), []byte("{")) {
				t.Errorf("body %q is not JSON", resp.Body)
			}
		})
	}

	if events, contacts := totals(); events != events0 || contacts != contacts0 {
		t.Errorf("after bad input: %d events, %d contacts; before %d, %d", events, contacts, events0, contacts0)
	}
}
