package emailapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/apiclient"
	"github.com/seed-eeb360f6/hogsend/services/emailapi"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/streams"
)

const (
	adminToken = "admin-token"
	writeToken = "journey-admin-token"
	readToken  = "read-token"
)

// now is the service's clock.
var now = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

var authenticator = httpapi.AuthenticatorFunc(func(_ context.Context, bearer string) (httpapi.Principal, error) {
	switch bearer {
	case adminToken:
		return httpapi.Principal{KeyID: "admin", Name: "admin", Scopes: []string{httpapi.ScopeFullAdmin}}, nil
	case writeToken:
		return httpapi.Principal{KeyID: "operator", Name: "operator", Scopes: []string{httpapi.ScopeJourneyAdmin}}, nil
	case readToken:
		return httpapi.Principal{KeyID: "reader", Name: "reader", Scopes: []string{httpapi.ScopeRead}}, nil
	default:
		return httpapi.Principal{}, errcode.Unauthorized("")
	}
})

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func tp(s string) *time.Time { t := at(s); return &t }

func ptr[T any](v T) *T { return &v }

// sid is a fixed send id, ordered by n.
func sid(n int) uuid.UUID {
	return uuid.MustParse(fmt.Sprintf("00000000-0000-7000-8000-%012d", n))
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serve runs the routes over pool on an httptest server and returns an
// admin client.
func serve(t *testing.T, pool *pgxpool.Pool, d emailapi.Dispatcher) *apiclient.Client {
	t.Helper()
	router := httpapi.NewRouter()
	emailapi.NewWithOptions(pool, d, emailapi.Options{Now: func() time.Time { return now }}).Routes(router, authenticator)
	srv := httptest.NewServer(httpapi.Stack(router, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return apiclient.New(srv.URL, adminToken)
}

// sendRow is an email_sends row for test setup.
type sendRow struct {
	id                                                    uuid.UUID
	state                                                 *uuid.UUID
	user, userEmail                                       *string
	contact                                               *uuid.UUID
	template                                              *string
	from, to, subject                                     string
	category                                              *string
	status                                                string
	sent, delivered, opened, clicked, bounced, complained *time.Time
	bounceType                                            *string
	created, updated                                      time.Time // a zero updated is created
}

func insertSends(t *testing.T, pool *pgxpool.Pool, rows ...sendRow) {
	t.Helper()
	for _, r := range rows {
		if r.status == "" {
			r.status = "sent"
		}
		if r.to == "" {
			r.to = "someone@example.com"
		}
		if r.from == "" {
			r.from = "noreply@hogsend.com"
		}
		if r.updated.IsZero() {
			r.updated = r.created
		}
		_, err := pool.Exec(context.Background(), `
			INSERT INTO email_sends (id, journey_state_id, user_id, user_email, contact_id, template_key, from_email, to_email, subject,
			                         category, status, sent_at, delivered_at, opened_at, clicked_at, bounced_at, complained_at,
			                         bounce_type, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
			r.id, r.state, r.user, r.userEmail, r.contact, r.template, r.from, r.to, r.subject,
			r.category, r.status, r.sent, r.delivered, r.opened, r.clicked, r.bounced, r.complained,
			r.bounceType, r.created, r.updated)
		if err != nil {
			t.Fatalf("insert send %+v: %v", r, err)
		}
	}
}

// insertState inserts a journey state and returns its id.
func insertState(t *testing.T, pool *pgxpool.Pool, journey, user, status, node string, deleted bool) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	var deletedAt *time.Time
	if deleted {
		deletedAt = &now
	}
	_, err := pool.Exec(context.Background(), `
		INSERT INTO journey_states (id, user_id, journey_id, current_node_id, status, trigger_event_id, deleted_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, user, journey, node, status, uuid.NewString(), deletedAt)
	if err != nil {
		t.Fatalf("insert state: %v", err)
	}
	return id
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// get decodes a 2xx answer of GET path into out.
func get(t *testing.T, c *apiclient.Client, path string, out any) {
	t.Helper()
	if err := c.Do(ctxT(t), http.MethodGet, path, nil, out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// send returns the answer whatever its status, with the body decoded.
func send(t *testing.T, c *apiclient.Client, method, path string, body any) (int, map[string]any) {
	t.Helper()
	resp, err := c.Send(ctxT(t), method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(resp.Body, &decoded); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, resp.Body)
	}
	return resp.Status, decoded
}

// wantBody checks status and the exact body.
func wantBody(t *testing.T, c *apiclient.Client, method, path string, body any, status int, want map[string]any) {
	t.Helper()
	got, decoded := send(t, c, method, path, body)
	if got != status || !reflect.DeepEqual(decoded, want) {
		t.Errorf("%s %s: HTTP %d %v, want %d %v", method, path, got, decoded, status, want)
	}
}

// wantInvalid checks a 400 invalid_request naming field.
func wantInvalid(t *testing.T, c *apiclient.Client, method, path string, body any, field string) {
	t.Helper()
	got, decoded := send(t, c, method, path, body)
	details, _ := decoded["details"].(map[string]any)
	if got != http.StatusBadRequest || decoded["code"] != "invalid_request" || details["field"] != field {
		t.Errorf("%s %s: HTTP %d %v, want 400 invalid_request about %s", method, path, got, decoded, field)
	}
}

func ids(emails []emailapi.Email) []string {
	out := make([]string, len(emails))
	for i, e := range emails {
		out[i] = e.ID
	}
	return out
}

func sids(ns ...int) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = sid(n).String()
	}
	return out
}

func TestDocumented(t *testing.T) {
	t.Parallel()
	router := httpapi.NewRouter()
	// No pool or dispatcher: registering routes touches neither.
	emailapi.New(nil, nil).Routes(router, authenticator)
	want := map[string]string{
		"GET /v1/admin/emails":                           "read",
		"GET /v1/admin/emails/{id}":                      "read",
		"POST /v1/admin/emails/{id}/resend":              "journey-admin",
		"GET /v1/admin/metrics/emails":                   "read",
		"GET /v1/admin/metrics/emails/deliverability":    "read",
		"GET /v1/admin/metrics/overview":                 "read",
		"GET /v1/admin/reporting/templates/{key}":        "read",
		"GET /v1/admin/reporting/contacts/{id}/activity": "read",
		"GET /v1/admin/reporting/sends/export":           "read",
	}
	got := map[string]string{}
	for _, r := range router.Routes() {
		got[r.Method+" "+httpapi.OpenAPIPath(r.Path)] = r.Doc.Scope
		if r.Doc.Summary == "" || len(r.Doc.Tags) == 0 {
			t.Errorf("%s %s: summary %q tags %v", r.Method, r.Path, r.Doc.Summary, r.Doc.Tags)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
	if _, err := json.Marshal(router.OpenAPI(httpapi.OpenAPIInfo{Title: "t", Version: "v"})); err != nil {
		t.Errorf("encode OpenAPI: %v", err)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	insertSends(t, pool, sendRow{id: sid(1), template: ptr("welcome"), status: "failed", created: at("2025-03-01T00:00:00Z")})
	reads := []string{
		"/v1/admin/emails", "/v1/admin/emails/" + sid(1).String(), "/v1/admin/metrics/emails", "/v1/admin/metrics/emails/deliverability",
		"/v1/admin/metrics/overview", "/v1/admin/reporting/templates/welcome", "/v1/admin/reporting/sends/export",
	}
	ctx := ctxT(t)
	for _, p := range reads {
		wantBody(t, c.WithKey(""), http.MethodGet, p, nil, http.StatusUnauthorized, map[string]any{"error": "Unauthorized", "code": "unauthorized"})
		if resp, err := c.WithKey(readToken).Send(ctx, http.MethodGet, p, nil); err != nil || resp.Status != http.StatusOK {
			t.Errorf("GET %s with a read key: %v %+v", p, err, resp)
		}
	}
	resend := "/v1/admin/emails/" + sid(1).String() + "/resend"
	wantBody(t, c.WithKey(""), http.MethodPost, resend, map[string]any{}, http.StatusUnauthorized, map[string]any{"error": "Unauthorized", "code": "unauthorized"})
	wantBody(t, c.WithKey(readToken), http.MethodPost, resend, map[string]any{}, http.StatusForbidden,
		map[string]any{"error": "Forbidden: insufficient scope", "code": "forbidden"})
}

// seedList inserts the send list fixture:
//
//	1 welcome a@x.io u1, onboarding state of u1, opened           created 03-01
//	2 welcome b@x.io (no user), onboarding state of u2, delivered created 03-02
//	3 digest  c@x.io u3 transactional bounced                     created 03-03
//	4 (none)  d@x.io failed, never sent                           created 03-04
//	5 welcome a@x.io u1, soft-deleted state of u9, clicked        created 03-05
//	6 digest  e@x.io (no user), retention state of u4, complained created 03-06
func seedList(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	s1 := insertState(t, pool, "onboarding", "u1", "active", "start", false)
	s2 := insertState(t, pool, "onboarding", "u2", "completed", "done", false)
	s5 := insertState(t, pool, "onboarding", "u9", "active", "start", true)
	s6 := insertState(t, pool, "retention", "u4", "waiting", "wait", false)
	insertSends(t, pool,
		sendRow{id: sid(1), state: &s1, user: ptr("u1"), template: ptr("welcome"), to: "a@x.io", subject: "Hi", category: ptr("journey"), status: "opened",
			sent: tp("2025-03-01T00:00:01Z"), opened: tp("2025-03-02T00:00:00Z"), created: at("2025-03-01T00:00:00Z")},
		sendRow{id: sid(2), state: &s2, template: ptr("welcome"), to: "b@x.io", category: ptr("journey"), status: "delivered",
			sent: tp("2025-03-02T00:00:01Z"), delivered: tp("2025-03-02T00:01:00Z"), created: at("2025-03-02T00:00:00Z")},
		sendRow{id: sid(3), user: ptr("u3"), template: ptr("digest"), to: "c@x.io", category: ptr("transactional"), status: "bounced",
			sent: tp("2025-03-03T00:00:01Z"), bounced: tp("2025-03-03T00:05:00Z"), bounceType: ptr("hard"), created: at("2025-03-03T00:00:00Z")},
		sendRow{id: sid(4), to: "d@x.io", status: "failed", created: at("2025-03-04T00:00:00Z"), updated: at("2025-03-04T00:00:02Z")},
		sendRow{id: sid(5), state: &s5, user: ptr("u1"), template: ptr("welcome"), to: "a@x.io", category: ptr("journey"), status: "sent",
			sent: tp("2025-03-05T00:00:01Z"), opened: tp("2025-03-05T01:00:00Z"), clicked: tp("2025-03-05T01:00:05Z"), created: at("2025-03-05T00:00:00Z")},
		sendRow{id: sid(6), state: &s6, template: ptr("digest"), to: "e@x.io", status: "complained",
			sent: tp("2025-03-06T00:00:01Z"), complained: tp("2025-03-06T02:00:00Z"), created: at("2025-03-06T00:00:00Z")},
	)
}

func TestListEmails(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, nil)
	seedList(t, pool)

	cases := []struct {
		name, query string
		want        []int
		total       int
	}{
		{"default newest first", "", []int{6, 5, 4, 3, 2, 1}, 6},
		{"page", "?limit=2&offset=1", []int{5, 4}, 6},
		{"page past the end", "?offset=10", []int{}, 6},
		{"toEmail", "?toEmail=a@x.io", []int{5, 1}, 2},
		{"toEmail is exact", "?toEmail=A@x.io", []int{}, 0},
		{"templateKey", "?templateKey=digest", []int{6, 3}, 2},
		{"status", "?status=bounced", []int{3}, 1},
		{"category", "?category=transactional", []int{3}, 1},
		{"journeyId skips soft-deleted states", "?journeyId=onboarding", []int{2, 1}, 2},
		{"userId through the journey state", "?userId=u2", []int{2}, 1},
		{"userId on the send", "?userId=u1", []int{5, 1}, 2},
		{"userId of a soft-deleted state", "?userId=u9", []int{}, 0},
		{"engagement opened", "?engagement=opened", []int{5, 1}, 2},
		{"engagement clicked", "?engagement=clicked", []int{5}, 1},
		{"engagement bounced", "?engagement=bounced", []int{3}, 1},
		{"engagement complained", "?engagement=complained", []int{6}, 1},
		{"window inclusive", "?from=2025-03-02T00:00:00Z&to=2025-03-04T00:00:00Z", []int{4, 3, 2}, 3},
		{"from only", "?from=2025-03-05T00:00:00.000Z", []int{6, 5}, 2},
		{"createdAt asc", "?order=asc", []int{1, 2, 3, 4, 5, 6}, 6},
		{"sentAt desc puts never-sent first", "?sort=sentAt", []int{4, 6, 5, 3, 2, 1}, 6},
		{"sentAt asc puts never-sent last", "?sort=sentAt&order=asc", []int{1, 2, 3, 5, 6, 4}, 6},
		{"openedAt asc, ties by id", "?sort=openedAt&order=asc", []int{1, 5, 2, 3, 4, 6}, 6},
		{"clickedAt desc, ties by id", "?sort=clickedAt&order=desc", []int{6, 4, 3, 2, 1, 5}, 6},
		{"combined", "?templateKey=welcome&engagement=opened&sort=openedAt&order=asc&limit=1", []int{1}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got emailapi.EmailList
			get(t, c, "/v1/admin/emails"+tc.query, &got)
			if !reflect.DeepEqual(ids(got.Emails), sids(tc.want...)) || got.Total != tc.total {
				t.Errorf("emails %v total %d, want %v total %d", ids(got.Emails), got.Total, sids(tc.want...), tc.total)
			}
		})
	}

	t.Run("shape", func(t *testing.T) {
		var got struct {
			Emails               []map[string]any
			Total, Limit, Offset int
		}
		get(t, c, "/v1/admin/emails?toEmail=b@x.io", &got)
		if got.Limit != 50 || got.Offset != 0 || got.Total != 1 || len(got.Emails) != 1 {
			t.Fatalf("page %+v", got)
		}
		e := got.Emails[0]
		want := map[string]any{
			"id": sid(2).String(), "templateKey": "welcome", "resendId": nil, "fromEmail": "noreply@hogsend.com", "toEmail": "b@x.io",
			"subject": "", "category": "journey", "status": "delivered", "userId": "u2", "journeyId": "onboarding",
			"sentAt": "2025-03-02T00:00:01.000Z", "deliveredAt": "2025-03-02T00:01:00.000Z", "openedAt": nil, "clickedAt": nil,
			"bouncedAt": nil, "complainedAt": nil, "createdAt": "2025-03-02T00:00:00.000Z", "updatedAt": "2025-03-02T00:00:00.000Z",
		}
		stateID, _ := e["journeyStateId"].(string)
		delete(e, "journeyStateId")
		if !reflect.DeepEqual(e, want) || stateID == "" {
			t.Errorf("email %v (state %q), want %v", e, stateID, want)
		}
		// A soft-deleted state leaves the journey empty and the send's
		// own user.
		var five emailapi.EmailList
		get(t, c, "/v1/admin/emails?templateKey=welcome&engagement=clicked", &five)
		if e := five.Emails[0]; e.JourneyID != nil || e.UserID == nil || *e.UserID != "u1" || e.JourneyStateID == nil {
			t.Errorf("send 5: %+v", e)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for q, field := range map[string]string{
			"?status=nope": "status", "?engagement=sent": "engagement", "?sort=subject": "sort", "?order=up": "order",
			"?from=2025-03-01": "from", "?to=yesterday": "to", "?from=2025-03-01T00:00:00+01:00": "from",
			"?limit=0": "limit", "?limit=101": "limit", "?offset=-1": "offset", "?limit=x": "limit",
		} {
			wantInvalid(t, c, http.MethodGet, "/v1/admin/emails"+q, nil, field)
		}
	})
}

func TestGetEmail(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, nil)
	state := insertState(t, pool, "onboarding", "u1", "waiting", "wait:1d", false)
	insertSends(t, pool,
		sendRow{id: sid(1), state: &state, template: ptr("welcome"), to: "a@x.io", subject: "Hi", status: "bounced",
			// sent at the creation instant: queued stays first.
			sent: tp("2025-03-01T10:00:00Z"), delivered: tp("2025-03-01T10:02:00Z"), opened: tp("2025-03-01T10:05:00Z"),
			clicked: tp("2025-03-01T10:03:00Z"), bounced: tp("2025-03-01T10:07:00Z"),
			created: at("2025-03-01T10:00:00Z"), updated: at("2025-03-01T10:07:00Z")},
		sendRow{id: sid(2), template: ptr("welcome"), to: "b@x.io", status: "failed",
			created: at("2025-03-01T09:00:00Z"), updated: at("2025-03-01T09:00:01.5Z")},
	)
	link1, link2 := sid(101), sid(102)
	exec(t, pool, `INSERT INTO tracked_links (id, email_send_id, url, created_at) VALUES ($1, $2, $3, $4), ($5, $2, $6, $7)`,
		link1, sid(1), "https://app.example.com/a?x=1&y=2", at("2025-03-01T10:00:00Z"), link2, "https://app.example.com/b", at("2025-03-01T10:00:00.001Z"))
	exec(t, pool, `INSERT INTO link_clicks (id, link_id, email_send_id, ip_address, user_agent, automated, created_at)
		VALUES ($1, $2, $3, '1.1.1.1', 'Mozilla', false, $4), ($5, $6, $3, NULL, NULL, true, $7), ($8, $2, $3, '2.2.2.2', 'Safari', false, $9)`,
		sid(201), link1, sid(1), at("2025-03-01T10:03:00Z"), sid(202), link2, at("2025-03-01T10:04:00Z"), sid(203), at("2025-03-01T10:06:00Z"))

	var raw map[string]any
	get(t, c, "/v1/admin/emails/"+sid(1).String(), &raw)
	wantEvents := []any{
		map[string]any{"type": "queued", "timestamp": "2025-03-01T10:00:00.000Z"},
		map[string]any{"type": "sent", "timestamp": "2025-03-01T10:00:00.000Z"},
		map[string]any{"type": "delivered", "timestamp": "2025-03-01T10:02:00.000Z"},
		map[string]any{"type": "clicked", "timestamp": "2025-03-01T10:03:00.000Z", "url": "https://app.example.com/a?x=1&y=2",
			"ipAddress": "1.1.1.1", "userAgent": "Mozilla", "automated": false},
		map[string]any{"type": "clicked", "timestamp": "2025-03-01T10:04:00.000Z", "url": "https://app.example.com/b",
			"ipAddress": nil, "userAgent": nil, "automated": true},
		map[string]any{"type": "opened", "timestamp": "2025-03-01T10:05:00.000Z"},
		map[string]any{"type": "clicked", "timestamp": "2025-03-01T10:06:00.000Z", "url": "https://app.example.com/a?x=1&y=2",
			"ipAddress": "2.2.2.2", "userAgent": "Safari", "automated": false},
		map[string]any{"type": "bounced", "timestamp": "2025-03-01T10:07:00.000Z"},
	}
	if !reflect.DeepEqual(raw["events"], wantEvents) {
		t.Errorf("events\n%v\nwant\n%v", raw["events"], wantEvents)
	}
	wantLinks := []any{
		map[string]any{"id": link1.String(), "originalUrl": "https://app.example.com/a?x=1&y=2", "clickCount": float64(2), "clicks": []any{
			map[string]any{"id": sid(201).String(), "clickedAt": "2025-03-01T10:03:00.000Z", "ipAddress": "1.1.1.1", "userAgent": "Mozilla", "automated": false},
			map[string]any{"id": sid(203).String(), "clickedAt": "2025-03-01T10:06:00.000Z", "ipAddress": "2.2.2.2", "userAgent": "Safari", "automated": false},
		}},
		map[string]any{"id": link2.String(), "originalUrl": "https://app.example.com/b", "clickCount": float64(1), "clicks": []any{
			map[string]any{"id": sid(202).String(), "clickedAt": "2025-03-01T10:04:00.000Z", "ipAddress": nil, "userAgent": nil, "automated": true},
		}},
	}
	if !reflect.DeepEqual(raw["trackedLinks"], wantLinks) {
		t.Errorf("trackedLinks\n%v\nwant\n%v", raw["trackedLinks"], wantLinks)
	}
	wantJourney := map[string]any{"journeyId": "onboarding", "userId": "u1", "status": "waiting", "currentNodeId": "wait:1d"}
	if !reflect.DeepEqual(raw["journeyContext"], wantJourney) {
		t.Errorf("journeyContext %v, want %v", raw["journeyContext"], wantJourney)
	}
	email, _ := raw["email"].(map[string]any)
	if email["id"] != sid(1).String() || email["userId"] != "u1" || email["journeyId"] != "onboarding" || email["journeyStateId"] != state.String() {
		t.Errorf("email %v", email)
	}

	// A failed send: queued, then failed at its last update; no links, no
	// journey.
	var failed emailapi.Detail
	get(t, c, "/v1/admin/emails/"+sid(2).String(), &failed)
	if len(failed.Events) != 2 || failed.Events[0].Type != "queued" || failed.Events[1].Type != "failed" ||
		!failed.Events[1].Timestamp.Equal(at("2025-03-01T09:00:01.5Z")) || len(failed.TrackedLinks) != 0 || failed.JourneyContext != nil {
		t.Errorf("failed detail %+v", failed)
	}
	var failedRaw map[string]any
	get(t, c, "/v1/admin/emails/"+sid(2).String(), &failedRaw)
	if failedRaw["journeyContext"] != nil || !reflect.DeepEqual(failedRaw["trackedLinks"], []any{}) {
		t.Errorf("failed detail %v", failedRaw)
	}

	wantBody(t, c, http.MethodGet, "/v1/admin/emails/"+uuid.NewString(), nil, http.StatusNotFound, map[string]any{"error": "Email not found", "code": "not_found"})
	wantInvalid(t, c, http.MethodGet, "/v1/admin/emails/abc", nil, "id")
}

// seedMetrics inserts spec 20 scenario 36 (welcome: 4 sent, 0 delivered, 2
// opened, 1 clicked) plus digest sends, an untemplated one and a welcome
// send outside the 03-01..03-09 window.
func seedMetrics(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	day := func(d int) time.Time { return time.Date(2025, 3, d, 9, 0, 0, 0, time.UTC) }
	insertSends(t, pool,
		sendRow{id: sid(1), template: ptr("welcome"), status: "sent", sent: ptr(day(2)), opened: ptr(day(2)), clicked: ptr(day(2)), created: day(2)},
		sendRow{id: sid(2), template: ptr("welcome"), status: "sent", sent: ptr(day(2)), opened: ptr(day(3)), created: day(2)},
		sendRow{id: sid(3), template: ptr("welcome"), status: "sent", sent: ptr(day(3)), created: day(3)},
		sendRow{id: sid(4), template: ptr("welcome"), status: "sent", sent: ptr(day(4)), created: day(4)},
		// Never sent: counts nowhere but in totals of the deliverability.
		sendRow{id: sid(5), template: ptr("welcome"), status: "failed", created: day(4)},
		// digest: 3 sent; delivered by status only and by timestamp only;
		// one bounced by status (bounced_at set too).
		sendRow{id: sid(6), template: ptr("digest"), status: "delivered", sent: ptr(day(5)), created: day(5)},
		sendRow{id: sid(7), template: ptr("digest"), status: "opened", sent: ptr(day(5)), delivered: ptr(day(5)), opened: ptr(day(6)), created: day(5)},
		sendRow{id: sid(8), template: ptr("digest"), status: "bounced", sent: ptr(day(6)), bounced: ptr(day(6)), created: day(6)},
		sendRow{id: sid(9), status: "complained", sent: ptr(day(6)), complained: ptr(day(7)), created: day(6)},
		// Outside the window.
		sendRow{id: sid(10), template: ptr("welcome"), status: "sent", sent: ptr(time.Date(2025, 2, 20, 9, 0, 0, 0, time.UTC)),
			created: time.Date(2025, 2, 20, 9, 0, 0, 0, time.UTC)},
	)
}

func TestEmailMetrics(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, nil)
	seedMetrics(t, pool)

	var got struct{ Templates []emailapi.TemplateMetrics }
	get(t, c, "/v1/admin/metrics/emails?from=2025-03-01T00:00:00Z&to=2025-03-09T00:00:00Z", &got)
	want := []emailapi.TemplateMetrics{
		{TemplateKey: "digest", Sent: 3, Delivered: 2, Opened: 1, Clicked: 0, Bounced: 1,
			DeliveryRate: 0.6667, OpenRate: 0.5, ClickRate: 0, ClickToDeliveryRate: 0},
		// Scenario 36: the open rate falls back to sent without deliveries.
		{TemplateKey: "welcome", Sent: 4, Delivered: 0, Opened: 2, Clicked: 1, Bounced: 0,
			DeliveryRate: 0, OpenRate: 0.5, ClickRate: 0.5, ClickToDeliveryRate: 0},
	}
	if !reflect.DeepEqual(got.Templates, want) {
		t.Errorf("templates %+v, want %+v", got.Templates, want)
	}

	get(t, c, "/v1/admin/metrics/emails?includeUntemplated=true", &got)
	keys := []string{}
	for _, m := range got.Templates {
		keys = append(keys, m.TemplateKey)
	}
	if !reflect.DeepEqual(keys, []string{"digest", "welcome", "(none)"}) || got.Templates[1].Sent != 5 ||
		got.Templates[2] != (emailapi.TemplateMetrics{TemplateKey: "(none)", Sent: 1}) {
		t.Errorf("with untemplated: %+v", got.Templates)
	}

	var raw map[string]any
	get(t, c, "/v1/admin/metrics/emails?to=2025-03-02T09:00:00Z", &raw)
	wantRaw := map[string]any{"templates": []any{map[string]any{
		"templateKey": "welcome", "sent": float64(3), "delivered": float64(0), "opened": float64(2), "clicked": float64(1), "bounced": float64(0),
		"deliveryRate": float64(0), "openRate": 0.6667, "clickRate": 0.5, "clickToDeliveryRate": float64(0),
	}}}
	if !reflect.DeepEqual(raw, wantRaw) {
		t.Errorf("up to 03-02 09:00: %v, want %v", raw, wantRaw)
	}
	get(t, c, "/v1/admin/metrics/emails?from=2030-01-01T00:00:00Z", &raw)
	if !reflect.DeepEqual(raw, map[string]any{"templates": []any{}}) {
		t.Errorf("empty window: %v", raw)
	}

	wantInvalid(t, c, http.MethodGet, "/v1/admin/metrics/emails?includeUntemplated=yes", nil, "includeUntemplated")
	wantInvalid(t, c, http.MethodGet, "/v1/admin/metrics/emails?from=2025-03-01", nil, "from")
	wantInvalid(t, c, http.MethodGet, "/v1/admin/metrics/emails?to=x", nil, "to")
}

func TestDeliverability(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, nil)
	insertSends(t, pool,
		sendRow{id: sid(1), status: "delivered", created: at("2025-03-03T08:00:00Z")},
		sendRow{id: sid(2), status: "opened", delivered: tp("2025-03-03T09:00:00Z"), created: at("2025-03-03T23:59:59Z")},
		sendRow{id: sid(3), status: "bounced", created: at("2025-03-03T12:00:00Z")},
		sendRow{id: sid(4), status: "complained", delivered: tp("2025-03-08T01:00:00Z"), created: at("2025-03-08T00:00:00Z")},
		sendRow{id: sid(5), status: "sent", created: at("2025-03-10T11:00:00Z")},
		// 40 days before now: outside the default window.
		sendRow{id: sid(6), status: "delivered", created: at("2025-01-29T12:00:00Z")},
	)
	var got struct{ Points []emailapi.Point }
	get(t, c, "/v1/admin/metrics/emails/deliverability", &got)
	want := []emailapi.Point{
		{Date: "2025-03-03 00:00:00+00", Total: 3, Delivered: 2, Bounced: 1, DeliveryRate: 0.6667},
		{Date: "2025-03-08 00:00:00+00", Total: 1, Delivered: 1, Complained: 1, DeliveryRate: 1},
		{Date: "2025-03-10 00:00:00+00", Total: 1, DeliveryRate: 0},
	}
	if !reflect.DeepEqual(got.Points, want) {
		t.Errorf("day points %+v, want %+v", got.Points, want)
	}
	// Weeks start on Monday (2025-03-03 and 2025-03-10).
	get(t, c, "/v1/admin/metrics/emails/deliverability?period=week&from=2025-01-01T00:00:00Z", &got)
	want = []emailapi.Point{
		{Date: "2025-01-27 00:00:00+00", Total: 1, Delivered: 1, DeliveryRate: 1},
		{Date: "2025-03-03 00:00:00+00", Total: 4, Delivered: 3, Bounced: 1, Complained: 1, DeliveryRate: 0.75},
		{Date: "2025-03-10 00:00:00+00", Total: 1},
	}
	if !reflect.DeepEqual(got.Points, want) {
		t.Errorf("week points %+v, want %+v", got.Points, want)
	}
	get(t, c, "/v1/admin/metrics/emails/deliverability?period=month&from=2025-01-01T00:00:00Z&to=2025-03-08T00:00:00Z", &got)
	want = []emailapi.Point{
		{Date: "2025-01-01 00:00:00+00", Total: 1, Delivered: 1, DeliveryRate: 1},
		{Date: "2025-03-01 00:00:00+00", Total: 4, Delivered: 3, Bounced: 1, Complained: 1, DeliveryRate: 0.75},
	}
	if !reflect.DeepEqual(got.Points, want) {
		t.Errorf("month points %+v, want %+v", got.Points, want)
	}
	var raw map[string]any
	get(t, c, "/v1/admin/metrics/emails/deliverability?from=2026-01-01T00:00:00Z", &raw)
	if !reflect.DeepEqual(raw, map[string]any{"points": []any{}}) {
		t.Errorf("empty: %v", raw)
	}
	wantInvalid(t, c, http.MethodGet, "/v1/admin/metrics/emails/deliverability?period=year", nil, "period")
	wantInvalid(t, c, http.MethodGet, "/v1/admin/metrics/emails/deliverability?to=2025-13-01T00:00:00Z", nil, "to")
}

func TestOverview(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, nil)

	// Empty: every count and rate is 0.
	wantBody(t, c, http.MethodGet, "/v1/admin/metrics/overview", nil, http.StatusOK, map[string]any{
		"totalContacts": float64(0), "activeJourneys": float64(0), "activeBuckets": float64(0), "bucketMembers": float64(0),
		"emailsSent24h": float64(0), "emailsSent7d": float64(0), "emailsSent30d": float64(0), "bounceRate30d": float64(0), "unsubscribeRate": float64(0),
	})

	exec(t, pool, `INSERT INTO contacts (id, external_id, deleted_at) VALUES ($1, 'c1', NULL), ($2, 'c2', NULL), ($3, 'c3', now())`,
		uuid.New(), uuid.New(), uuid.New())
	insertState(t, pool, "j", "u1", "active", "start", false)
	insertState(t, pool, "j", "u2", "waiting", "start", false)
	insertState(t, pool, "j", "u3", "completed", "start", false)
	insertState(t, pool, "j", "u4", "active", "start", true)
	for _, m := range []struct {
		user, bucket, status string
		deleted              bool
	}{
		{"u1", "a", "active", false}, {"u2", "a", "active", false}, {"u1", "b", "active", false},
		{"u2", "b", "left", false}, {"u3", "c", "active", true},
	} {
		var deletedAt *time.Time
		if m.deleted {
			deletedAt = &now
		}
		exec(t, pool, `INSERT INTO bucket_memberships (id, user_id, bucket_id, status, deleted_at) VALUES ($1, $2, $3, $4, $5)`,
			uuid.New(), m.user, m.bucket, m.status, deletedAt)
	}
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	insertSends(t, pool,
		sendRow{id: sid(1), sent: ago(time.Hour), created: *ago(time.Hour)},
		sendRow{id: sid(2), sent: ago(48 * time.Hour), created: *ago(48 * time.Hour)},
		sendRow{id: sid(3), status: "bounced", sent: ago(10 * 24 * time.Hour), created: *ago(10 * 24 * time.Hour)},
		sendRow{id: sid(4), status: "bounced", sent: ago(40 * 24 * time.Hour), created: *ago(40 * 24 * time.Hour)},
		sendRow{id: sid(5), status: "failed", created: *ago(time.Hour)},
	)
	exec(t, pool, `INSERT INTO email_preferences (id, user_id, email, unsubscribed_all) VALUES
		($1, 'u1', 'a@x.io', true), ($2, 'u2', 'b@x.io', false), ($3, 'u3', 'c@x.io', false)`, uuid.New(), uuid.New(), uuid.New())

	var got emailapi.Overview
	get(t, c, "/v1/admin/metrics/overview", &got)
	want := emailapi.Overview{
		TotalContacts: 2, ActiveJourneys: 2, ActiveBuckets: 2, BucketMembers: 3,
		EmailsSent24h: 1, EmailsSent7d: 2, EmailsSent30d: 3, BounceRate30d: 0.3333, UnsubscribeRate: 0.3333,
	}
	if got != want {
		t.Errorf("overview %+v, want %+v", got, want)
	}
}

func TestTemplateReport(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, nil)
	seedMetrics(t, pool)
	// digest has a complaint by timestamp.
	exec(t, pool, `UPDATE email_sends SET complained_at = $2 WHERE id = $1`, sid(7), at("2025-03-07T00:00:00Z"))

	wantBody(t, c, http.MethodGet, "/v1/admin/reporting/templates/ghost", nil, http.StatusNotFound,
		map[string]any{"error": "Template has never been sent", "code": "not_found"})
	// A sent template outside the window is 200 with zeros.
	var empty emailapi.TemplateReport
	get(t, c, "/v1/admin/reporting/templates/digest?from=2030-01-01T00:00:00Z", &empty)
	if empty.Totals != (emailapi.TemplateTotals{}) || len(empty.Series) != 0 || empty.Window.From == nil || *empty.Window.From != "2030-01-01T00:00:00Z" || empty.Window.To != nil {
		t.Errorf("empty window report %+v", empty)
	}

	var raw map[string]any
	get(t, c, "/v1/admin/reporting/templates/welcome?from=2025-03-01T00:00:00Z&to=2025-03-09T00:00:00Z", &raw)
	want := map[string]any{
		"templateKey": "welcome",
		"window":      map[string]any{"from": "2025-03-01T00:00:00Z", "to": "2025-03-09T00:00:00Z"},
		"totals": map[string]any{
			"sent": float64(4), "delivered": float64(0), "opened": float64(2), "clicked": float64(1), "bounced": float64(0), "complained": float64(0),
			"deliveryRate": float64(0), "openRate": 0.5, "clickRate": 0.5, "clickToDeliveryRate": float64(0),
		},
		"series": []any{
			map[string]any{"date": "2025-03-02 00:00:00+00", "sent": float64(2), "delivered": float64(0), "opened": float64(2), "clicked": float64(1), "bounced": float64(0)},
			map[string]any{"date": "2025-03-03 00:00:00+00", "sent": float64(1), "delivered": float64(0), "opened": float64(0), "clicked": float64(0), "bounced": float64(0)},
			map[string]any{"date": "2025-03-04 00:00:00+00", "sent": float64(1), "delivered": float64(0), "opened": float64(0), "clicked": float64(0), "bounced": float64(0)},
		},
	}
	if !reflect.DeepEqual(raw, want) {
		t.Errorf("welcome report\n%v\nwant\n%v", raw, want)
	}

	var digest emailapi.TemplateReport
	get(t, c, "/v1/admin/reporting/templates/digest?granularity=month", &digest)
	wantTotals := emailapi.TemplateTotals{Sent: 3, Delivered: 2, Opened: 1, Bounced: 1, Complained: 1,
		Rates: emailapi.Rates{DeliveryRate: 0.6667, OpenRate: 0.5}}
	if digest.Totals != wantTotals || digest.Window != (emailapi.Window{}) ||
		!reflect.DeepEqual(digest.Series, []emailapi.SeriesPoint{{Date: "2025-03-01 00:00:00+00", Sent: 3, Delivered: 2, Opened: 1, Bounced: 1}}) {
		t.Errorf("digest report %+v", digest)
	}
	wantInvalid(t, c, http.MethodGet, "/v1/admin/reporting/templates/welcome?granularity=hour", nil, "granularity")
	wantInvalid(t, c, http.MethodGet, "/v1/admin/reporting/templates/welcome?from=soon", nil, "from")
}

func TestContactActivity(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, nil)
	ada, anon, gone := uuid.New(), uuid.New(), uuid.New()
	exec(t, pool, `INSERT INTO contacts (id, external_id, email, anonymous_id, deleted_at) VALUES
		($1, 'ext-ada', 'Ada@X.io', NULL, NULL), ($2, NULL, NULL, 'anon-1', NULL), ($3, 'ext-gone', 'gone@x.io', NULL, now())`, ada, anon, gone)
	insertSends(t, pool,
		sendRow{id: sid(1), user: ptr("ext-ada"), template: ptr("welcome"), subject: "Welcome", status: "opened",
			sent: tp("2025-03-01T00:00:01Z"), opened: tp("2025-03-01T01:00:00Z"), created: at("2025-03-01T00:00:00Z")},
		// By user_email only (case-insensitively).
		sendRow{id: sid(2), userEmail: ptr("ada@x.io"), to: "ada@x.io", template: ptr("digest"), status: "bounced",
			sent: tp("2025-03-02T00:00:01Z"), bounced: tp("2025-03-02T00:01:00Z"), bounceType: ptr("hard"), created: at("2025-03-02T00:00:00Z")},
		// By contact_id only.
		sendRow{id: sid(3), user: ptr("old-key"), contact: &ada, status: "sent", created: at("2025-03-03T00:00:00Z")},
		// Someone else's.
		sendRow{id: sid(4), user: ptr("ext-bob"), userEmail: ptr("bob@x.io"), created: at("2025-03-04T00:00:00Z")},
		sendRow{id: sid(5), user: ptr("anon-1"), created: at("2025-03-05T00:00:00Z")},
	)

	var got emailapi.Activity
	for _, ref := range []string{ada.String(), "ext-ada"} {
		get(t, c, "/v1/admin/reporting/contacts/"+ref+"/activity", &got)
		gotIDs := []string{}
		for _, s := range got.Sends {
			gotIDs = append(gotIDs, s.ID)
		}
		if !reflect.DeepEqual(gotIDs, sids(3, 2, 1)) || got.Total != 3 || got.Limit != 50 || got.Offset != 0 ||
			got.Contact.ExternalID == nil || *got.Contact.ExternalID != "ext-ada" || got.Contact.Email == nil || *got.Contact.Email != "Ada@X.io" {
			t.Errorf("activity of %s: %+v (%v)", ref, got, gotIDs)
		}
	}
	var raw map[string]any
	get(t, c, "/v1/admin/reporting/contacts/ext-ada/activity?limit=1&offset=1", &raw)
	want := map[string]any{
		"contact": map[string]any{"externalId": "ext-ada", "email": "Ada@X.io"},
		"sends": []any{map[string]any{
			"id": sid(2).String(), "templateKey": "digest", "subject": "", "status": "bounced",
			"sentAt": "2025-03-02T00:00:01.000Z", "deliveredAt": nil, "openedAt": nil, "clickedAt": nil,
			"bouncedAt": "2025-03-02T00:01:00.000Z", "complainedAt": nil, "bounceType": "hard", "createdAt": "2025-03-02T00:00:00.000Z",
		}},
		"total": float64(3), "limit": float64(1), "offset": float64(1),
	}
	if !reflect.DeepEqual(raw, want) {
		t.Errorf("page\n%v\nwant\n%v", raw, want)
	}

	// A contact without external id is keyed by its anonymous id.
	get(t, c, "/v1/admin/reporting/contacts/"+anon.String()+"/activity", &got)
	if len(got.Sends) != 1 || got.Sends[0].ID != sid(5).String() || got.Contact.ExternalID != nil || got.Contact.Email != nil {
		t.Errorf("anonymous activity %+v", got)
	}
	notFound := map[string]any{"error": "Contact not found", "code": "not_found"}
	for _, ref := range []string{gone.String(), "ext-gone", uuid.NewString(), "nobody"} {
		wantBody(t, c, http.MethodGet, "/v1/admin/reporting/contacts/"+ref+"/activity", nil, http.StatusNotFound, notFound)
	}
	wantInvalid(t, c, http.MethodGet, "/v1/admin/reporting/contacts/ext-ada/activity?limit=500", nil, "limit")
}

func TestExport(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, nil)
	state := insertState(t, pool, "onboarding", "journey-user", "active", "start", false)
	insertSends(t, pool,
		sendRow{id: sid(1), user: ptr("u1"), template: ptr("welcome"), to: "a@x.io", subject: `Hello, "friend"`, status: "opened",
			sent: tp("2025-03-01T00:00:01Z"), opened: tp("2025-03-01T01:00:00.123Z"), created: at("2025-03-01T00:00:00Z")},
		sendRow{id: sid(2), template: ptr("digest"), to: "b@x.io", subject: "line one\nline two", status: "bounced", state: &state,
			sent: tp("2025-03-02T00:00:01Z"), bounced: tp("2025-03-02T00:01:00Z"), bounceType: ptr("hard"), created: at("2025-03-02T00:00:00Z")},
		sendRow{id: sid(3), to: "c@x.io", subject: " plain; text", category: ptr("transactional"), status: "failed", created: at("2025-03-03T00:00:00Z")},
		// Scenario 36: a comma alone is enough to quote.
		sendRow{id: sid(4), template: ptr("weekly"), to: "d@x.io", subject: "Hi, there", status: "sent", created: at("2025-02-28T00:00:00Z")},
	)
	header := "id,createdAt,templateKey,status,toEmail,userId,subject,sentAt,deliveredAt,openedAt,clickedAt,bouncedAt,complainedAt,bounceType"
	row1 := sid(1).String() + `,2025-03-01T00:00:00.000Z,welcome,opened,a@x.io,u1,"Hello, ""friend""",2025-03-01T00:00:01.000Z,,2025-03-01T01:00:00.123Z,,,,`
	row2 := sid(2).String() + ",2025-03-02T00:00:00.000Z,digest,bounced,b@x.io,,\"line one\nline two\",2025-03-02T00:00:01.000Z,,,,2025-03-02T00:01:00.000Z,,hard"
	// A leading space alone is not quoted (encoding/csv would).
	row3 := sid(3).String() + ",2025-03-03T00:00:00.000Z,,failed,c@x.io,, plain; text,,,,,,,"
	row4 := sid(4).String() + `,2025-02-28T00:00:00.000Z,weekly,sent,d@x.io,,"Hi, there",,,,,,,`

	ctx := ctxT(t)
	cases := []struct {
		name, query string
		want        []string
	}{
		{"all, newest first", "", []string{header, row3, row2, row1, row4}},
		{"comma", "?templateKey=weekly", []string{header, row4}},
		{"status", "?status=bounced", []string{header, row2}},
		{"templateKey", "?templateKey=welcome", []string{header, row1}},
		{"category", "?category=transactional", []string{header, row3}},
		{"userId is the send column only", "?userId=journey-user", []string{header}},
		{"userId", "?userId=u1", []string{header, row1}},
		{"engagement", "?engagement=bounced", []string{header, row2}},
		{"unknown engagement does not filter", "?engagement=whatever", []string{header, row3, row2, row1, row4}},
		{"window", "?from=2025-03-02T00:00:00Z&to=2025-03-03T00:00:00Z", []string{header, row3, row2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Send(ctx, http.MethodGet, "/v1/admin/reporting/sends/export"+tc.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusOK || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
				resp.Header.Get("Content-Disposition") != `attachment; filename="email-sends.csv"` {
				t.Fatalf("HTTP %d %v", resp.Status, resp.Header)
			}
			if want := strings.Join(tc.want, "\n"); string(resp.Body) != want {
				t.Errorf("body\n%q\nwant\n%q", resp.Body, want)
			}
		})
	}
	wantInvalid(t, c, http.MethodGet, "/v1/admin/reporting/sends/export?status=lost", nil, "status")
	wantInvalid(t, c, http.MethodGet, "/v1/admin/reporting/sends/export?from=2025-03-01", nil, "from")
	wantInvalid(t, c, http.MethodGet, "/v1/admin/reporting/sends/export?to=x", nil, "to")
}

// recorder is a Dispatcher that records its calls and answers with res,
// ok and err. Like the mailer it names the command's row after the key.
type recorder struct {
	mu    sync.Mutex
	calls []dispatchCall
	res   streams.EmailResult
	ok    bool
	err   error
}

type dispatchCall struct {
	cmd streams.EmailCommand
	key string
}

func (r *recorder) Dispatch(_ context.Context, cmd *streams.EmailCommand, key string) (streams.EmailResult, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd.IdempotencyKey = key
	cmd.ID = uuid.NewSHA1(uuid.NameSpaceOID, []byte(key)).String()
	r.calls = append(r.calls, dispatchCall{*cmd, key})
	return r.res, r.ok, r.err
}

func (r *recorder) answer(res streams.EmailResult, ok bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res, r.ok, r.err = res, ok, err
}

func (r *recorder) recorded() []dispatchCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dispatchCall(nil), r.calls...)
}

func TestResend(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	rec := &recorder{}
	c := serve(t, pool, rec).WithKey(writeToken)
	state := insertState(t, pool, "onboarding", "u1", "active", "start", false)
	contact := uuid.New()
	insertSends(t, pool,
		sendRow{id: sid(1), state: &state, user: ptr("u1"), userEmail: ptr("ada@x.io"), contact: &contact, template: ptr("welcome"),
			from: "team@app.io", to: "ada@x.io", subject: "Welcome!", category: ptr("journey"), status: "failed", created: at("2025-03-01T00:00:00Z")},
		sendRow{id: sid(2), template: ptr("digest"), to: "b@x.io", status: "bounced", created: at("2025-03-01T00:00:00Z")},
		sendRow{id: sid(3), template: ptr("welcome"), to: "c@x.io", status: "sent", created: at("2025-03-01T00:00:00Z")},
		sendRow{id: sid(4), to: "d@x.io", status: "failed", created: at("2025-03-01T00:00:00Z")},
		sendRow{id: sid(5), template: ptr("welcome"), to: "e@x.io", status: "delivered", created: at("2025-03-01T00:00:00Z")},
	)
	path := func(id uuid.UUID) string { return "/v1/admin/emails/" + id.String() + "/resend" }

	wantBody(t, c, http.MethodPost, path(uuid.New()), map[string]any{}, http.StatusNotFound, map[string]any{"error": "Email not found", "code": "not_found"})
	notResendable := map[string]any{"error": "Email is not in a resendable state", "code": "conflict"}
	wantBody(t, c, http.MethodPost, path(sid(3)), map[string]any{}, http.StatusConflict, notResendable)
	wantBody(t, c, http.MethodPost, path(sid(5)), map[string]any{}, http.StatusConflict, notResendable)
	wantBody(t, c, http.MethodPost, path(sid(4)), map[string]any{}, http.StatusConflict,
		map[string]any{"error": "Cannot resend: no template key to re-render from", "code": "conflict"})
	wantInvalid(t, c, http.MethodPost, "/v1/admin/emails/abc/resend", map[string]any{}, "id")
	wantInvalid(t, c, http.MethodPost, path(sid(1)), map[string]any{"props": []int{1}}, "props")
	wantInvalid(t, c, http.MethodPost, path(sid(1)), map[string]any{"props": "x"}, "props")
	if n := len(rec.recorded()); n != 0 {
		t.Fatalf("%d dispatches before a valid resend", n)
	}

	// A real tracked send of the row's template with the given props.
	rec.answer(streams.EmailResult{EmailSendID: "new-send", Status: "sent"}, true, nil)
	wantBody(t, c, http.MethodPost, path(sid(1)), map[string]any{"props": map[string]any{"name": "Ada"}}, http.StatusAccepted,
		map[string]any{"emailId": "new-send", "status": "sent"})
	calls := rec.recorded()
	if len(calls) != 1 {
		t.Fatalf("dispatches %+v", calls)
	}
	call := calls[0]
	prefix := "resend:" + sid(1).String() + ":"
	suffix, err := uuid.Parse(strings.TrimPrefix(call.key, prefix))
	if !strings.HasPrefix(call.key, prefix) || err != nil || suffix.Version() != 7 {
		t.Errorf("key %q", call.key)
	}
	wantCmd := streams.EmailCommand{
		V: 1, ID: call.cmd.ID, IdempotencyKey: call.key, To: "ada@x.io", From: "team@app.io", UserID: "u1", ContactID: contact.String(),
		Template: "welcome", Subject: "Welcome!", Props: json.RawMessage(`{"name":"Ada"}`), Category: "journey",
		JourneyID: "onboarding", JourneyStateID: state.String(), RequestedAt: now,
	}
	if !reflect.DeepEqual(call.cmd, wantCmd) {
		t.Errorf("command\n%+v\nwant\n%+v", call.cmd, wantCmd)
	}

	// Bounced sends are resendable; no body means no props; every resend
	// has its own key.
	resp, err := c.Send(ctxT(t), http.MethodPost, path(sid(2)), nil)
	if err != nil || resp.Status != http.StatusAccepted {
		t.Fatalf("resend without body: %v %+v", err, resp)
	}
	wantBody(t, c, http.MethodPost, path(sid(2)), map[string]any{"props": nil}, http.StatusAccepted, map[string]any{"emailId": "new-send", "status": "sent"})
	calls = rec.recorded()
	if len(calls) != 3 || calls[1].cmd.Props != nil || calls[2].cmd.Props != nil || calls[1].key == calls[2].key ||
		calls[1].cmd.Template != "digest" || calls[1].cmd.UserID != "" || calls[1].cmd.JourneyStateID != "" || calls[1].cmd.Category != "" {
		t.Errorf("resends of 2: %+v", calls[1:])
	}

	// A withheld send passes its reason through.
	rec.answer(streams.EmailResult{EmailSendID: "withheld", Status: "suppressed", Reason: "suppressed"}, true, nil)
	wantBody(t, c, http.MethodPost, path(sid(1)), map[string]any{}, http.StatusAccepted,
		map[string]any{"emailId": "withheld", "status": "suppressed", "reason": "suppressed"})
	// The mailer did not answer in time: queued under the command's id.
	rec.answer(streams.EmailResult{}, false, nil)
	_, body := send(t, c, http.MethodPost, path(sid(1)), map[string]any{})
	calls = rec.recorded()
	if last := calls[len(calls)-1]; !reflect.DeepEqual(body, map[string]any{"emailId": last.cmd.ID, "status": "queued"}) || last.cmd.ID == "" {
		t.Errorf("queued answer %v (command id %q)", body, last.cmd.ID)
	}
	// The provider refused it.
	rec.answer(streams.EmailResult{EmailSendID: "x", Status: "failed", Error: "Failed to send email: 422"}, true, nil)
	wantBody(t, c, http.MethodPost, path(sid(1)), map[string]any{}, http.StatusInternalServerError,
		map[string]any{"error": "Internal Server Error", "code": "internal"})
	// The bus is down.
	rec.answer(streams.EmailResult{}, false, errcode.Unavailable("the message bus is unavailable", errors.New("nats: closed")))
	wantBody(t, c, http.MethodPost, path(sid(1)), map[string]any{}, http.StatusServiceUnavailable,
		map[string]any{"error": "the message bus is unavailable", "code": "unavailable"})

	// Without a dispatcher the route cannot send.
	none := serve(t, pool, nil).WithKey(writeToken)
	wantBody(t, none, http.MethodPost, path(sid(1)), map[string]any{}, http.StatusServiceUnavailable,
		map[string]any{"error": "Email sending unavailable", "code": "unavailable"})
}
