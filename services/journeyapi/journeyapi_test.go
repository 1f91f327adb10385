package journeyapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/apiclient"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/ingest"
	"github.com/seed-eeb360f6/hogsend/services/journeyapi"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

const (
	adminToken = "admin-token"
	writeToken = "journey-admin-token"
	readToken  = "read-token"
)

// now is the service's clock, the time of the writes.
var now = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr[T any](v T) *T { return &v }

func noop(*journey.Ctx, journey.User) error { return nil }

// registry registers welcome, trial, legacy (statically disabled), a bucket
// reaction and empty (no states); "hidden" is defined but left out by the
// enabled set.
func registry(t *testing.T) *journey.Registry {
	t.Helper()
	reg, err := journey.NewRegistry("welcome,trial,legacy,empty",
		journey.MustDefine(journey.Meta{
			ID: "welcome", Name: "Welcome", Description: "Greets new pro users.",
			Trigger:    journey.OnEvent("signup", condition.Prop("plan").Eq("pro")),
			EntryLimit: journey.Once,
			ExitOn: []journey.Exit{
				{Event: "user_deleted"},
				{Event: "plan_changed", Where: []condition.Node{condition.Prop("plan").Neq("pro")}},
			},
			Suppress: 90 * time.Minute,
		}, noop),
		journey.MustDefine(journey.Meta{
			ID: "trial", Name: "Trial", Trigger: journey.OnEvent("trial_started"),
			EntryLimit: journey.OncePerPeriod, EntryPeriod: 36 * time.Hour,
		}, noop),
		journey.MustDefine(journey.Meta{
			ID: "hidden", Name: "Hidden", Trigger: journey.OnEvent("signup"), EntryLimit: journey.Unlimited,
		}, noop),
		journey.MustDefine(journey.Meta{
			ID: "legacy", Name: "Legacy", Enabled: ptr(false), Trigger: journey.OnEvent("old_signup"), EntryLimit: journey.Unlimited,
		}, noop),
		journey.MustDefine(journey.Meta{
			ID: "bucket-vip-on-dwell-after-3600000", Name: "VIP — on dwell", Trigger: journey.OnEvent("bucket:dwell:vip:after-3600000"),
			EntryLimit: journey.Unlimited, SourceBucketID: "vip", ReactionKind: journey.ReactionDwell,
			DwellSchedule: &journey.DwellSchedule{Label: "after-3600000", After: time.Hour},
		}, noop),
		journey.MustDefine(journey.Meta{
			ID: "empty", Name: "Empty", Trigger: journey.OnEvent("never"), EntryLimit: journey.Unlimited,
		}, noop),
	)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

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

// recorder is an Enroller that records its calls and answers err.
type recorder struct {
	mu    sync.Mutex
	calls []enrollCall
	err   error
}

type enrollCall struct {
	req       ingest.EventRequest
	headerKey *string
	source    string
}

func (r *recorder) Ingest(_ context.Context, req *ingest.EventRequest, headerKey *string, source string) (ingest.EventResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, enrollCall{*req, headerKey, source})
	if r.err != nil {
		return ingest.EventResult{}, r.err
	}
	return ingest.EventResult{ID: uuid.Must(uuid.NewV7()).String(), Stored: true}, nil
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

func (r *recorder) recorded() []enrollCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// serve runs the routes over pool on an httptest server and returns an
// admin client.
func serve(t *testing.T, pool *pgxpool.Pool, enroller journeyapi.Enroller) *apiclient.Client {
	t.Helper()
	router := httpapi.NewRouter()
	journeyapi.NewWithOptions(pool, registry(t), enroller, journeyapi.Options{Now: func() time.Time { return now }}).Routes(router, authenticator)
	srv := httptest.NewServer(httpapi.Stack(router, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return apiclient.New(srv.URL, adminToken)
}

// state is a journey_states row for test setup.
type state struct {
	name             string // fixture key
	journey, user    string
	status           string
	node             string // "" is the column default, "start"
	context          string // jsonb literal; "" is the column default
	errorMessage     *string
	noRunID          bool
	created, updated time.Time // a zero updated is created
	completed        *time.Time
	exited           *time.Time
	deleted          bool
}

func insertStates(t *testing.T, pool *pgxpool.Pool, rows ...state) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, r := range rows {
		id := uuid.New()
		node := r.node
		if node == "" {
			node = "start"
		}
		ctxJSON := r.context
		if ctxJSON == "" {
			ctxJSON = "{}"
		}
		var runID *string
		if !r.noRunID {
			runID = ptr(id.String())
		}
		updated := r.updated
		if updated.IsZero() {
			updated = r.created
		}
		var deleted *time.Time
		if r.deleted {
			deleted = &now
		}
		_, err := pool.Exec(context.Background(), `
			INSERT INTO journey_states (id, user_id, user_email, journey_id, current_node_id, status, hatchet_run_id, context,
			                            error_message, trigger_event_id, completed_at, exited_at, deleted_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15)`,
			id, r.user, r.user+"@example.com", r.journey, node, r.status, runID, ctxJSON,
			r.errorMessage, uuid.NewString(), r.completed, r.exited, deleted, r.created, updated)
		if err != nil {
			t.Fatalf("insert %+v: %v", r, err)
		}
		ids[r.name] = id.String()
	}
	return ids
}

// logRow is a journey_logs row for test setup.
type logRow struct {
	state    string // state id
	from, to *string
	action   string
	detail   *string // jsonb literal; nil is NULL
	created  time.Time
}

func insertLogs(t *testing.T, pool *pgxpool.Pool, rows ...logRow) {
	t.Helper()
	for _, r := range rows {
		_, err := pool.Exec(context.Background(), `
			INSERT INTO journey_logs (id, journey_state_id, from_node_id, to_node_id, action, detail, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $7)`,
			uuid.Must(uuid.NewV7()), r.state, r.from, r.to, r.action, r.detail, r.created)
		if err != nil {
			t.Fatalf("insert log %+v: %v", r, err)
		}
	}
}

// seed inserts the fixture states. Run times of the ended live welcome
// states: w-u3 3601.5 s, w-u4 7200 s, w-u1-old 1800 s, a mean of 4200.5 s,
// rounded to 4201. trial: 86400 s.
func seed(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	return insertStates(t, pool,
		state{name: "w-u1", journey: "welcome", user: "u1", status: "active", context: `{"plan": "pro"}`,
			created: at("2025-03-09T10:00:00Z"), updated: at("2025-03-09T11:00:00Z")},
		state{name: "w-u2", journey: "welcome", user: "u2", status: "waiting", node: "wait:{\"hours\":24}", context: "null", noRunID: true,
			created: at("2025-03-08T00:00:00Z"), updated: at("2025-03-10T00:00:00Z")},
		state{name: "w-u3", journey: "welcome", user: "u3", status: "completed",
			created: at("2025-03-01T00:00:00Z"), completed: ptr(at("2025-03-01T01:00:01.5Z"))},
		state{name: "w-u4", journey: "welcome", user: "u4", status: "exited",
			created: at("2025-03-02T00:00:00Z"), exited: ptr(at("2025-03-02T02:00:00Z"))},
		state{name: "w-u5", journey: "welcome", user: "u5", status: "failed", errorMessage: ptr("boom"),
			created: at("2025-03-03T00:00:00Z"), updated: at("2025-03-03T00:05:00Z")},
		state{name: "w-u1-old", journey: "welcome", user: "u1", status: "completed",
			created: at("2025-02-01T00:00:00Z"), completed: ptr(at("2025-02-01T00:30:00Z"))},
		// Soft-deleted states count nowhere and cannot be read or cancelled.
		state{name: "w-u6-deleted", journey: "welcome", user: "u6", status: "active", deleted: true,
			created: at("2025-03-09T00:00:00Z"), updated: at("2025-03-10T11:00:00Z")},
		state{name: "w-u7-deleted", journey: "welcome", user: "u7", status: "completed", deleted: true,
			created: at("2025-03-04T00:00:00Z"), completed: ptr(at("2025-03-09T00:00:00Z"))},
		state{name: "t-u1", journey: "trial", user: "u1", status: "completed",
			created: at("2025-03-05T00:00:00Z"), completed: ptr(at("2025-03-06T00:00:00Z"))},
		state{name: "t-u2", journey: "trial", user: "u2", status: "active", created: at("2025-03-07T00:00:00Z")},
		state{name: "l-u1", journey: "legacy", user: "u1", status: "failed", created: at("2025-03-07T00:00:00Z")},
		// States of journeys that are not registered.
		state{name: "ghost-u1", journey: "ghost", user: "u1", status: "active", created: at("2025-03-09T00:00:00Z")},
		state{name: "hidden-u1", journey: "hidden", user: "u1", status: "completed",
			created: at("2025-03-09T00:00:00Z"), completed: ptr(at("2025-03-09T01:00:00Z"))},
	)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Wire shapes, decoded from the JSON the routes answer.

type wireCounts struct {
	Active, Waiting, Completed, Failed, Exited int64
}

type wireJourney struct {
	ID, Name, Description string
	Enabled               bool
	Trigger               struct{ Event string }
	EntryLimit            string
	Counts                wireCounts
}

type wireJourneyList struct {
	Journeys             []wireJourney
	Total, Limit, Offset int
}

type wireState struct {
	ID, UserID, UserEmail, JourneyID, CurrentNodeID, Status string
	HatchetRunID, ErrorMessage                              *string
	Context                                                 map[string]any
	EntryCount                                              int
	CompletedAt, ExitedAt                                   *time.Time
	CreatedAt, UpdatedAt                                    time.Time
}

type wireStateList struct {
	States               []wireState
	Total, Limit, Offset int
}

type wireLog struct {
	ID         string
	FromNodeID *string
	ToNodeID   *string
	Action     string
	Detail     json.RawMessage
	CreatedAt  time.Time
}

type wireStateWithLogs struct {
	State wireState
	Logs  []wireLog
}

// do sends a request as key and decodes a 2xx answer into out.
func do(t *testing.T, c *apiclient.Client, method, path string, body, out any) error {
	t.Helper()
	return c.Do(ctxT(t), method, path, body, out)
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

// wantInvalid checks a 400 invalid_request whose message starts with
// prefix.
func wantInvalid(t *testing.T, c *apiclient.Client, method, path string, body any, prefix string) {
	t.Helper()
	got, decoded := send(t, c, method, path, body)
	if msg, _ := decoded["error"].(string); got != http.StatusBadRequest || decoded["code"] != "invalid_request" || !strings.HasPrefix(msg, prefix) {
		t.Errorf("%s %s: HTTP %d %v, want 400 invalid_request %q…", method, path, got, decoded, prefix)
	}
}

func notFound(msg string) map[string]any { return map[string]any{"error": msg, "code": "not_found"} }

func journeyIDs(js []wireJourney) []string {
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return ids
}

func stateNames(ids map[string]string, states []wireState) []string {
	byID := map[string]string{}
	for name, id := range ids {
		byID[id] = name
	}
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = byID[s.ID]
	}
	return out
}

func TestAuth(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	ids := seed(t, pool)
	ctx := ctxT(t)
	state := ids["w-u1"]
	reads := []string{
		"/v1/admin/journeys", "/v1/admin/journeys/welcome", "/v1/admin/journeys/welcome/states",
		"/v1/admin/journeys/welcome/states/" + state, "/v1/admin/journey-logs/" + state,
		"/v1/admin/metrics/journeys", "/v1/admin/metrics/journeys/welcome",
	}
	for _, p := range reads {
		for _, key := range []string{"", "wrong"} {
			resp, err := c.WithKey(key).Send(ctx, http.MethodGet, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusUnauthorized || !strings.Contains(string(resp.Body), `"error":"Unauthorized"`) {
				t.Errorf("GET %s with key %q: HTTP %d %s, want 401", p, key, resp.Status, resp.Body)
			}
		}
		if resp, err := c.WithKey(readToken).Send(ctx, http.MethodGet, p, nil); err != nil || resp.Status != http.StatusOK {
			t.Errorf("GET %s with a read key: %v %+v", p, err, resp)
		}
	}
	writes := []struct {
		method, path string
		body         any
	}{
		{http.MethodPatch, "/v1/admin/journeys/welcome", map[string]any{"enabled": false}},
		{http.MethodDelete, "/v1/admin/journeys/welcome/states/" + state, nil},
		{http.MethodPost, "/v1/admin/journeys/welcome/enroll", map[string]any{"userId": "u9"}},
	}
	for _, w := range writes {
		wantBody(t, c.WithKey(""), w.method, w.path, w.body, http.StatusUnauthorized, map[string]any{"error": "Unauthorized", "code": "unauthorized"})
		wantBody(t, c.WithKey(readToken), w.method, w.path, w.body, http.StatusForbidden,
			map[string]any{"error": "Forbidden: insufficient scope", "code": "forbidden"})
	}
	// The refused writes changed nothing.
	var j struct{ Journey wireJourney }
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys/welcome", nil, &j); err != nil || !j.Journey.Enabled || j.Journey.Counts.Active != 1 {
		t.Errorf("welcome after refused writes: %v %+v", err, j.Journey)
	}
	// journey-admin is enough for the writes.
	var patched struct{ Journey struct{ Enabled bool } }
	if err := do(t, c.WithKey(writeToken), http.MethodPatch, "/v1/admin/journeys/welcome", map[string]any{"enabled": false}, &patched); err != nil || patched.Journey.Enabled {
		t.Errorf("PATCH with a journey-admin key: %v %+v", err, patched)
	}
}

func TestListJourneys(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	seed(t, pool)

	var all wireJourneyList
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys", nil, &all); err != nil {
		t.Fatal(err)
	}
	reaction := "bucket-vip-on-dwell-after-3600000"
	if got := journeyIDs(all.Journeys); !slices.Equal(got, []string{"welcome", "trial", "legacy", reaction, "empty"}) ||
		all.Total != 5 || all.Limit != 50 || all.Offset != 0 {
		t.Fatalf("list %v total %d limit %d offset %d", got, all.Total, all.Limit, all.Offset)
	}
	want := []wireJourney{
		{ID: "welcome", Name: "Welcome", Description: "Greets new pro users.", Enabled: true, EntryLimit: "once",
			Counts: wireCounts{Active: 1, Waiting: 1, Completed: 2, Failed: 1, Exited: 1}},
		{ID: "trial", Name: "Trial", Enabled: true, EntryLimit: "once_per_period", Counts: wireCounts{Active: 1, Completed: 1}},
		{ID: "legacy", Name: "Legacy", Enabled: false, EntryLimit: "unlimited", Counts: wireCounts{Failed: 1}},
		{ID: reaction, Name: "VIP — on dwell", Enabled: true, EntryLimit: "unlimited"},
		{ID: "empty", Name: "Empty", Enabled: true, EntryLimit: "unlimited"},
	}
	for i, ev := range []string{"signup", "trial_started", "old_signup", "bucket:dwell:vip:after-3600000", "never"} {
		want[i].Trigger.Event = ev
	}
	if !reflect.DeepEqual(all.Journeys, want) {
		t.Errorf("journeys\n got %+v\nwant %+v", all.Journeys, want)
	}
	// The list's trigger is {event} only, and description is left out
	// when the definition has none.
	_, raw := send(t, c, http.MethodGet, "/v1/admin/journeys", nil)
	items := raw["journeys"].([]any)
	if tr := items[0].(map[string]any)["trigger"]; !reflect.DeepEqual(tr, map[string]any{"event": "signup"}) {
		t.Errorf("welcome trigger %v", tr)
	}
	for _, k := range []string{"description", "exitOn", "suppress", "recentStates"} {
		if v, ok := items[1].(map[string]any)[k]; ok {
			t.Errorf("trial has %s: %v", k, v)
		}
	}

	tests := []struct {
		name  string
		query string
		ids   []string
		total int
	}{
		{"disabled", "?enabled=false", []string{"legacy"}, 1},
		{"enabled", "?enabled=true", []string{"welcome", "trial", reaction, "empty"}, 4},
		{"enabled page", "?enabled=true&limit=2&offset=1", []string{"trial", reaction}, 4},
		{"page", "?limit=2&offset=2", []string{"legacy", reaction}, 5},
		{"past the end", "?offset=10", []string{}, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got wireJourneyList
			if err := do(t, c, http.MethodGet, "/v1/admin/journeys"+tc.query, nil, &got); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(journeyIDs(got.Journeys), tc.ids) || got.Total != tc.total {
				t.Errorf("got %v total %d, want %v total %d", journeyIDs(got.Journeys), got.Total, tc.ids, tc.total)
			}
		})
	}
	if _, raw := send(t, c, http.MethodGet, "/v1/admin/journeys?offset=10", nil); raw["journeys"] == nil {
		t.Errorf("an empty page is %v, want []", raw["journeys"])
	}
	for _, q := range []string{"enabled=yes", "limit=0", "limit=101", "offset=-1", "limit=x"} {
		wantInvalid(t, c, http.MethodGet, "/v1/admin/journeys?"+q, nil, strings.SplitN(q, "=", 2)[0]+":")
	}
}

func TestGetJourney(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	ids := seed(t, pool)

	var got struct {
		Journey struct {
			wireJourney
			RecentStates []wireState
		}
	}
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys/welcome", nil, &got); err != nil {
		t.Fatal(err)
	}
	w := got.Journey
	if w.ID != "welcome" || !w.Enabled || w.EntryLimit != "once" || w.Counts != (wireCounts{1, 1, 2, 1, 1}) {
		t.Errorf("welcome %+v", w.wireJourney)
	}
	// Most recently updated first; deleted states are left out.
	if names := stateNames(ids, w.RecentStates); !slices.Equal(names, []string{"w-u2", "w-u1", "w-u5", "w-u4", "w-u3", "w-u1-old"}) {
		t.Errorf("recentStates %v", names)
	}

	_, raw := send(t, c, http.MethodGet, "/v1/admin/journeys/welcome", nil)
	detail := raw["journey"].(map[string]any)
	wantJSON := func(name string, v any, want string) {
		t.Helper()
		var w any
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, w) {
			t.Errorf("%s = %#v, want %s", name, v, want)
		}
	}
	wantJSON("trigger", detail["trigger"], `{"event":"signup","where":[{"type":"property","property":"plan","operator":"eq","value":"pro"}]}`)
	wantJSON("exitOn", detail["exitOn"], `[{"event":"user_deleted"},{"event":"plan_changed","where":[{"type":"property","property":"plan","operator":"neq","value":"pro"}]}]`)
	wantJSON("suppress", detail["suppress"], `{"hours":1,"minutes":30}`)
	for _, k := range []string{"entryPeriod", "sourceBucketId", "reactionKind", "dwellSchedule"} {
		if v, ok := detail[k]; ok {
			t.Errorf("welcome has %s: %v", k, v)
		}
	}

	_, raw = send(t, c, http.MethodGet, "/v1/admin/journeys/trial", nil)
	trial := raw["journey"].(map[string]any)
	wantJSON("trial trigger", trial["trigger"], `{"event":"trial_started"}`)
	wantJSON("trial entryPeriod", trial["entryPeriod"], `{"hours":36}`)
	wantJSON("trial suppress", trial["suppress"], `{}`)
	if _, ok := trial["exitOn"]; ok {
		t.Errorf("trial has exitOn: %v", trial["exitOn"])
	}

	_, raw = send(t, c, http.MethodGet, "/v1/admin/journeys/bucket-vip-on-dwell-after-3600000", nil)
	reaction := raw["journey"].(map[string]any)
	if reaction["sourceBucketId"] != "vip" || reaction["reactionKind"] != "dwell" {
		t.Errorf("reaction tags %v", reaction)
	}
	wantJSON("dwellSchedule", reaction["dwellSchedule"], `{"label":"after-3600000","after":3600000}`)

	_, raw = send(t, c, http.MethodGet, "/v1/admin/journeys/empty", nil)
	if rs, ok := raw["journey"].(map[string]any)["recentStates"].([]any); !ok || len(rs) != 0 {
		t.Errorf("empty recentStates = %#v, want []", raw["journey"].(map[string]any)["recentStates"])
	}

	for _, id := range []string{"hidden", "ghost", "nope"} {
		wantBody(t, c, http.MethodGet, "/v1/admin/journeys/"+id, nil, http.StatusNotFound, notFound("Journey not found"))
	}
}

func TestRecentStatesAreTheTenMostRecentlyUpdated(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	var rows []state
	for i := range 12 {
		rows = append(rows, state{name: string(rune('a' + i)), journey: "empty", user: "m" + string(rune('a'+i)), status: "completed",
			created: now.Add(-48 * time.Hour), updated: now.Add(-time.Duration(i) * time.Hour)})
	}
	ids := insertStates(t, pool, rows...)
	var got struct {
		Journey struct{ RecentStates []wireState }
	}
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys/empty", nil, &got); err != nil {
		t.Fatal(err)
	}
	if names := stateNames(ids, got.Journey.RecentStates); !slices.Equal(names, strings.Split("abcdefghij", "")) {
		t.Errorf("recentStates %v", names)
	}
}

func TestSetJourneyEnabled(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	ctx := ctxT(t)

	type enabled struct {
		Journey struct {
			ID, Name  string
			Enabled   bool
			UpdatedAt time.Time
		}
	}
	var got enabled
	if err := do(t, c, http.MethodPatch, "/v1/admin/journeys/legacy", map[string]any{"enabled": true}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Journey.ID != "legacy" || got.Journey.Name != "Legacy" || !got.Journey.Enabled || !got.Journey.UpdatedAt.Equal(now) {
		t.Errorf("PATCH legacy: %+v", got)
	}
	// The override wins over the static false in the admin.
	var detail struct{ Journey wireJourney }
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys/legacy", nil, &detail); err != nil || !detail.Journey.Enabled {
		t.Errorf("legacy after enabling: %v %+v", err, detail.Journey)
	}
	if err := do(t, c, http.MethodPatch, "/v1/admin/journeys/welcome", map[string]any{"enabled": false}, &got); err != nil || got.Journey.Enabled {
		t.Fatalf("disable welcome: %v %+v", err, got)
	}
	var off wireJourneyList
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys?enabled=false", nil, &off); err != nil {
		t.Fatal(err)
	}
	if ids := journeyIDs(off.Journeys); !slices.Equal(ids, []string{"welcome"}) || off.Total != 1 {
		t.Errorf("disabled after the overrides: %v total %d", ids, off.Total)
	}
	// A second PATCH updates the same row.
	if err := do(t, c, http.MethodPatch, "/v1/admin/journeys/welcome", map[string]any{"enabled": true}, &got); err != nil || !got.Journey.Enabled {
		t.Fatalf("re-enable welcome: %v %+v", err, got)
	}
	var rows, welcomeOn int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE journey_id = 'welcome' AND enabled) FROM journey_configs`).Scan(&rows, &welcomeOn); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || welcomeOn != 1 {
		t.Errorf("journey_configs: %d rows, welcome enabled %d", rows, welcomeOn)
	}

	tests := []struct {
		name   string
		id     string
		body   any
		status int
		msg    string
	}{
		{"missing", "welcome", map[string]any{}, http.StatusBadRequest, "enabled: is required"},
		{"null", "welcome", map[string]any{"enabled": nil}, http.StatusBadRequest, "enabled: must be a boolean"},
		{"string", "welcome", map[string]any{"enabled": "false"}, http.StatusBadRequest, "enabled: must be a boolean"},
		{"malformed", "welcome", apiclient.RawBody(`{"enabled":`), http.StatusBadRequest, "Malformed JSON"},
		{"unregistered", "hidden", map[string]any{"enabled": true}, http.StatusNotFound, "Journey not found"},
		{"unknown", "nope", map[string]any{"enabled": false}, http.StatusNotFound, "Journey not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Send(ctx, http.MethodPatch, "/v1/admin/journeys/"+tc.id, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status || !strings.Contains(string(resp.Body), tc.msg) {
				t.Errorf("HTTP %d %s, want %d %q", resp.Status, resp.Body, tc.status, tc.msg)
			}
		})
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM journey_configs`).Scan(&rows); err != nil || rows != 2 {
		t.Errorf("the refused PATCHes wrote configs: %v %d rows", err, rows)
	}
}

func TestJourneyStates(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	ids := seed(t, pool)

	var all wireStateList
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys/welcome/states", nil, &all); err != nil {
		t.Fatal(err)
	}
	// Newest created first, deleted states left out.
	if names := stateNames(ids, all.States); !slices.Equal(names, []string{"w-u1", "w-u2", "w-u5", "w-u4", "w-u3", "w-u1-old"}) ||
		all.Total != 6 || all.Limit != 50 || all.Offset != 0 {
		t.Errorf("states %v total %d limit %d offset %d", names, all.Total, all.Limit, all.Offset)
	}
	u1 := all.States[0]
	if u1.ID != ids["w-u1"] || u1.UserID != "u1" || u1.UserEmail != "u1@example.com" || u1.JourneyID != "welcome" ||
		u1.CurrentNodeID != "start" || u1.Status != "active" || u1.HatchetRunID == nil || *u1.HatchetRunID != ids["w-u1"] ||
		!reflect.DeepEqual(u1.Context, map[string]any{"plan": "pro"}) || u1.ErrorMessage != nil || u1.EntryCount != 1 ||
		u1.CompletedAt != nil || u1.ExitedAt != nil || !u1.CreatedAt.Equal(at("2025-03-09T10:00:00Z")) || !u1.UpdatedAt.Equal(at("2025-03-09T11:00:00Z")) {
		t.Errorf("w-u1 %+v", u1)
	}
	if u5 := all.States[2]; u5.ErrorMessage == nil || *u5.ErrorMessage != "boom" || u5.Status != "failed" {
		t.Errorf("w-u5 %+v", u5)
	}
	if u4 := all.States[3]; u4.ExitedAt == nil || !u4.ExitedAt.Equal(at("2025-03-02T02:00:00Z")) {
		t.Errorf("w-u4 %+v", u4)
	}

	// The nullable fields are null, a null context is {}, and the
	// always-null reference leftovers are not sent.
	_, raw := send(t, c, http.MethodGet, "/v1/admin/journeys/welcome/states?status=waiting", nil)
	u2 := raw["states"].([]any)[0].(map[string]any)
	for k, want := range map[string]any{
		"hatchetRunId": nil, "errorMessage": nil, "completedAt": nil, "exitedAt": nil, "context": map[string]any{},
		"currentNodeId": `wait:{"hours":24}`, "createdAt": "2025-03-08T00:00:00.000Z", "entryCount": float64(1),
	} {
		if v, ok := u2[k]; !ok || !reflect.DeepEqual(v, want) {
			t.Errorf("w-u2.%s = %#v (present %v), want %#v", k, v, ok, want)
		}
	}
	for _, k := range []string{"organizationId", "deletedAt", "triggerEventId", "contactId"} {
		if _, ok := u2[k]; ok {
			t.Errorf("state exposes %s", k)
		}
	}

	tests := []struct {
		name  string
		query string
		names []string
		total int
	}{
		{"status", "?status=completed", []string{"w-u3", "w-u1-old"}, 2},
		{"user", "?userId=u1", []string{"w-u1", "w-u1-old"}, 2},
		{"user and status", "?userId=u1&status=completed", []string{"w-u1-old"}, 1},
		{"deleted user", "?userId=u6", []string{}, 0},
		{"page", "?limit=2&offset=1", []string{"w-u2", "w-u5"}, 6},
		{"past the end", "?offset=100", []string{}, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got wireStateList
			if err := do(t, c, http.MethodGet, "/v1/admin/journeys/welcome/states"+tc.query, nil, &got); err != nil {
				t.Fatal(err)
			}
			if names := stateNames(ids, got.States); !slices.Equal(names, tc.names) || got.Total != tc.total {
				t.Errorf("got %v total %d, want %v total %d", names, got.Total, tc.names, tc.total)
			}
		})
	}
	var trial wireStateList
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys/trial/states", nil, &trial); err != nil || !slices.Equal(stateNames(ids, trial.States), []string{"t-u2", "t-u1"}) {
		t.Errorf("trial states: %v %v", err, stateNames(ids, trial.States))
	}

	for _, q := range []string{"status=left", "limit=0", "offset=-1"} {
		wantInvalid(t, c, http.MethodGet, "/v1/admin/journeys/welcome/states?"+q, nil, strings.SplitN(q, "=", 2)[0]+":")
	}
	for _, id := range []string{"hidden", "ghost", "nope"} {
		wantBody(t, c, http.MethodGet, "/v1/admin/journeys/"+id+"/states", nil, http.StatusNotFound, notFound("Journey not found"))
	}
}

func TestJourneyState(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	ids := seed(t, pool)
	s1 := ids["w-u1"]
	// Inserted out of order: the route sorts oldest first.
	insertLogs(t, pool,
		logRow{state: s1, from: ptr("start"), to: ptr("wait:x"), action: "waiting", detail: ptr(`{"dueAt": "2025-03-09T11:00:00.000Z"}`), created: at("2025-03-09T10:00:01Z")},
		logRow{state: s1, to: ptr("start"), action: "enrolled", detail: ptr(`{"event": "signup"}`), created: at("2025-03-09T10:00:00Z")},
		logRow{state: s1, from: ptr("wait:x"), to: ptr("wait:x"), action: "resumed", created: at("2025-03-09T11:00:00Z")},
		logRow{state: ids["w-u2"], action: "enrolled", created: at("2025-03-08T00:00:00Z")},
	)

	var got wireStateWithLogs
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys/welcome/states/"+s1, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.State.ID != s1 || got.State.Status != "active" || got.State.UserID != "u1" {
		t.Errorf("state %+v", got.State)
	}
	var actions []string
	for _, l := range got.Logs {
		actions = append(actions, l.Action)
	}
	if !slices.Equal(actions, []string{"enrolled", "waiting", "resumed"}) {
		t.Fatalf("log actions %v", actions)
	}
	if l := got.Logs[0]; l.FromNodeID != nil || l.ToNodeID == nil || *l.ToNodeID != "start" || !l.CreatedAt.Equal(at("2025-03-09T10:00:00Z")) {
		t.Errorf("enrolled log %+v", l)
	}

	_, raw := send(t, c, http.MethodGet, "/v1/admin/journeys/welcome/states/"+s1, nil)
	logs := raw["logs"].([]any)
	if d := logs[1].(map[string]any)["detail"]; !reflect.DeepEqual(d, map[string]any{"dueAt": "2025-03-09T11:00:00.000Z"}) {
		t.Errorf("waiting detail %#v", d)
	}
	if d, ok := logs[2].(map[string]any)["detail"]; !ok || d != nil {
		t.Errorf("resumed detail %#v (present %v), want null", d, ok)
	}

	// A state without logs has an empty list.
	_, raw = send(t, c, http.MethodGet, "/v1/admin/journeys/trial/states/"+ids["t-u1"], nil)
	if l, ok := raw["logs"].([]any); !ok || len(l) != 0 {
		t.Errorf("t-u1 logs %#v, want []", raw["logs"])
	}
	// The journey need not be registered.
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys/ghost/states/"+ids["ghost-u1"], nil, &got); err != nil || got.State.JourneyID != "ghost" {
		t.Errorf("ghost state: %v %+v", err, got.State)
	}

	for name, path := range map[string]string{
		"unknown":       "/v1/admin/journeys/welcome/states/" + uuid.NewString(),
		"other journey": "/v1/admin/journeys/trial/states/" + s1,
		"deleted":       "/v1/admin/journeys/welcome/states/" + ids["w-u6-deleted"],
	} {
		t.Run(name, func(t *testing.T) {
			wantBody(t, c, http.MethodGet, path, nil, http.StatusNotFound, notFound("State not found"))
		})
	}
	for _, bad := range []string{"nope", "123", strings.ReplaceAll(s1, "-", "")} {
		wantInvalid(t, c, http.MethodGet, "/v1/admin/journeys/welcome/states/"+bad, nil, "stateId:")
	}
}

func TestJourneyLogs(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	ids := seed(t, pool)
	insertLogs(t, pool,
		logRow{state: ids["ghost-u1"], to: ptr("start"), action: "enrolled", created: at("2025-03-09T00:00:00Z")},
		logRow{state: ids["ghost-u1"], from: ptr("start"), action: "checkpoint", detail: ptr(`{"n": 1}`), created: at("2025-03-09T00:00:00Z")},
	)
	// Any live state, of a registered journey or not.
	var got wireStateWithLogs
	if err := do(t, c, http.MethodGet, "/v1/admin/journey-logs/"+ids["ghost-u1"], nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.State.ID != ids["ghost-u1"] || got.State.JourneyID != "ghost" || len(got.Logs) != 2 ||
		got.Logs[0].Action != "enrolled" || got.Logs[1].Action != "checkpoint" || string(got.Logs[1].Detail) != `{"n":1}` {
		t.Errorf("journey-logs %+v", got)
	}
	if err := do(t, c, http.MethodGet, "/v1/admin/journey-logs/"+ids["t-u1"], nil, &got); err != nil || got.State.JourneyID != "trial" || len(got.Logs) != 0 {
		t.Errorf("t-u1: %v %+v", err, got)
	}
	for _, id := range []string{uuid.NewString(), ids["w-u6-deleted"]} {
		wantBody(t, c, http.MethodGet, "/v1/admin/journey-logs/"+id, nil, http.StatusNotFound, notFound("Journey state not found"))
	}
	wantInvalid(t, c, http.MethodGet, "/v1/admin/journey-logs/not-a-uuid", nil, "stateId:")
}

// TestCancelState is spec 10 scenario 33, plus the cancel's edges.
func TestCancelState(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	ids := seed(t, pool)
	ctx := ctxT(t)
	path := func(journeyID, name string) string { return "/v1/admin/journeys/" + journeyID + "/states/" + ids[name] }

	for name, status := range map[string]string{"w-u3": "completed", "w-u4": "exited", "w-u5": "failed"} {
		wantBody(t, c, http.MethodDelete, path("welcome", name), nil, http.StatusConflict,
			map[string]any{"error": "Cannot cancel journey in '" + status + "' status", "code": "conflict"})
	}

	wantBody(t, c, http.MethodDelete, path("welcome", "w-u1"), nil, http.StatusOK, map[string]any{
		"state":            map[string]any{"id": ids["w-u1"], "status": "exited", "exitedAt": "2025-03-10T12:00:00.000Z"},
		"hatchetCancelled": true,
	})
	var (
		status            string
		exitedAt, updated *time.Time
	)
	if err := pool.QueryRow(ctx, `SELECT status, exited_at, updated_at FROM journey_states WHERE id = $1`, ids["w-u1"]).Scan(&status, &exitedAt, &updated); err != nil {
		t.Fatal(err)
	}
	if status != "exited" || exitedAt == nil || !exitedAt.Equal(now) || !updated.Equal(now) {
		t.Errorf("w-u1 after cancel: %s exited %v updated %v", status, exitedAt, updated)
	}
	var got wireStateWithLogs
	if err := do(t, c, http.MethodGet, path("welcome", "w-u1"), nil, &got); err != nil {
		t.Fatal(err)
	}
	if n := len(got.Logs); n != 1 {
		t.Fatalf("logs %+v, want the cancel", got.Logs)
	}
	if l := got.Logs[0]; l.Action != "cancelled" || l.FromNodeID == nil || *l.FromNodeID != "start" || l.ToNodeID != nil ||
		!l.CreatedAt.Equal(now) || string(l.Detail) != `{"keyId":"admin","source":"admin"}` {
		t.Errorf("cancel log %+v detail %s", l, l.Detail)
	}
	// Cancelling again is a conflict: the state is exited now.
	wantBody(t, c, http.MethodDelete, path("welcome", "w-u1"), nil, http.StatusConflict,
		map[string]any{"error": "Cannot cancel journey in 'exited' status", "code": "conflict"})

	// A waiting state, and one of a journey that is no longer registered.
	for _, tc := range []struct{ journey, name string }{{"welcome", "w-u2"}, {"ghost", "ghost-u1"}} {
		var out struct {
			State struct {
				ID, Status string
				ExitedAt   time.Time
			}
			HatchetCancelled bool
		}
		if err := do(t, c.WithKey(writeToken), http.MethodDelete, path(tc.journey, tc.name), nil, &out); err != nil {
			t.Fatalf("cancel %s: %v", tc.name, err)
		}
		if out.State.ID != ids[tc.name] || out.State.Status != "exited" || !out.State.ExitedAt.Equal(now) || !out.HatchetCancelled {
			t.Errorf("cancel %s: %+v", tc.name, out)
		}
	}
	var counts struct{ Journey wireJourney }
	if err := do(t, c, http.MethodGet, "/v1/admin/journeys/welcome", nil, &counts); err != nil {
		t.Fatal(err)
	}
	if counts.Journey.Counts != (wireCounts{Completed: 2, Failed: 1, Exited: 3}) {
		t.Errorf("welcome counts after the cancels %+v", counts.Journey.Counts)
	}

	for name, p := range map[string]string{
		"unknown":       "/v1/admin/journeys/welcome/states/" + uuid.NewString(),
		"other journey": path("trial", "w-u5"),
		"deleted":       path("welcome", "w-u6-deleted"),
	} {
		t.Run(name, func(t *testing.T) {
			wantBody(t, c, http.MethodDelete, p, nil, http.StatusNotFound, notFound("State not found"))
		})
	}
	wantInvalid(t, c, http.MethodDelete, "/v1/admin/journeys/welcome/states/nope", nil, "stateId:")
	if err := pool.QueryRow(ctx, `SELECT status FROM journey_states WHERE id = $1`, ids["w-u6-deleted"]).Scan(&status); err != nil || status != "active" {
		t.Errorf("the deleted state was changed: %v %s", err, status)
	}
}

func TestEnroll(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	rec := &recorder{}
	c := serve(t, pool, rec)

	wantBody(t, c, http.MethodPost, "/v1/admin/journeys/welcome/enroll",
		map[string]any{"userId": "u9", "userEmail": "u9@example.com", "properties": map[string]any{"plan": "pro", "seats": 3}},
		http.StatusAccepted, map[string]any{"enrolled": true, "event": "signup", "userId": "u9"})
	// Only userId is required; a statically disabled journey is still
	// enrolled through (its guard skips the event downstream).
	wantBody(t, c.WithKey(writeToken), http.MethodPost, "/v1/admin/journeys/legacy/enroll", map[string]any{"userId": "u8", "properties": nil},
		http.StatusAccepted, map[string]any{"enrolled": true, "event": "old_signup", "userId": "u8"})

	calls := rec.recorded()
	if len(calls) != 2 {
		t.Fatalf("enroller calls %+v", calls)
	}
	first := calls[0]
	if first.source != "admin" || first.headerKey != nil || first.req.Name == nil || *first.req.Name != "signup" ||
		first.req.UserID == nil || *first.req.UserID != "u9" || first.req.Email == nil || *first.req.Email != "u9@example.com" ||
		first.req.IdempotencyKey != nil || first.req.ContactProperties != nil || first.req.Timestamp != nil {
		t.Errorf("first call %+v", first)
	}
	var props map[string]any
	if err := json.Unmarshal(first.req.EventProperties, &props); err != nil || !reflect.DeepEqual(props, map[string]any{"plan": "pro", "seats": float64(3)}) {
		t.Errorf("eventProperties %s: %v", first.req.EventProperties, err)
	}
	if second := calls[1]; *second.req.Name != "old_signup" || *second.req.UserID != "u8" || second.req.Email != nil || second.req.EventProperties != nil {
		t.Errorf("second call %+v", second)
	}

	tests := []struct {
		name   string
		id     string
		body   any
		status int
		msg    string
	}{
		{"missing user", "welcome", map[string]any{"userEmail": "a@example.com"}, http.StatusBadRequest, "userId: is required"},
		{"empty user", "welcome", map[string]any{"userId": ""}, http.StatusBadRequest, "userId: must not be empty"},
		{"numeric user", "welcome", map[string]any{"userId": 7}, http.StatusBadRequest, "userId: must be a string"},
		{"bad email", "welcome", map[string]any{"userId": "u1", "userEmail": "nope"}, http.StatusBadRequest, "userEmail: must be a valid email address"},
		{"array properties", "welcome", map[string]any{"userId": "u1", "properties": []int{1}}, http.StatusBadRequest, "properties: must be an object"},
		{"string properties", "welcome", map[string]any{"userId": "u1", "properties": "x"}, http.StatusBadRequest, "properties: must be an object"},
		{"malformed", "welcome", apiclient.RawBody(`{"userId":`), http.StatusBadRequest, "Malformed JSON"},
		{"unregistered", "hidden", map[string]any{"userId": "u1"}, http.StatusNotFound, "Journey not found"},
		{"unknown", "nope", map[string]any{"userId": "u1"}, http.StatusNotFound, "Journey not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Send(ctxT(t), http.MethodPost, "/v1/admin/journeys/"+tc.id+"/enroll", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status || !strings.Contains(string(resp.Body), tc.msg) {
				t.Errorf("HTTP %d %s, want %d %q", resp.Status, resp.Body, tc.status, tc.msg)
			}
		})
	}
	if n := len(rec.recorded()); n != 2 {
		t.Errorf("refused enrolments reached the enroller: %d calls", n)
	}

	// The enroller's errors are rendered by their code: a refusal keeps
	// its message, anything else is a 500.
	rec.fail(errcode.InvalidField("name", "reserved"))
	wantBody(t, c, http.MethodPost, "/v1/admin/journeys/welcome/enroll", map[string]any{"userId": "u1"}, http.StatusBadRequest,
		map[string]any{"error": "name: reserved", "code": "invalid_request", "details": map[string]any{"field": "name"}})
	rec.fail(errors.New("nats: timeout"))
	wantBody(t, c, http.MethodPost, "/v1/admin/journeys/welcome/enroll", map[string]any{"userId": "u1"}, http.StatusInternalServerError,
		map[string]any{"error": "Internal Server Error", "code": "internal"})
}

func TestEnrollWithoutEnroller(t *testing.T) {
	t.Parallel()
	c := serve(t, schematest.NewPool(t), nil)
	status, body := send(t, c, http.MethodPost, "/v1/admin/journeys/welcome/enroll", map[string]any{"userId": "u1"})
	if status != http.StatusServiceUnavailable || body["code"] != "unavailable" {
		t.Errorf("HTTP %d %v, want 503", status, body)
	}
}

func TestJourneyMetrics(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, &recorder{})
	seed(t, pool)

	_, raw := send(t, c, http.MethodGet, "/v1/admin/metrics/journeys", nil)
	want := map[string]any{"journeys": []any{
		// 2 completed of 6; run times 3601.5, 7200 and 1800 s.
		map[string]any{"journeyId": "welcome", "name": "Welcome", "enrolled": 6.0, "completed": 2.0, "failed": 1.0, "exited": 1.0,
			"active": 2.0, "completionRate": 0.3333, "avgDurationSecs": 4201.0},
		map[string]any{"journeyId": "trial", "name": "Trial", "enrolled": 2.0, "completed": 1.0, "failed": 0.0, "exited": 0.0,
			"active": 1.0, "completionRate": 0.5, "avgDurationSecs": 86400.0},
		// Rows but none ended: no mean.
		map[string]any{"journeyId": "legacy", "name": "Legacy", "enrolled": 1.0, "completed": 0.0, "failed": 1.0, "exited": 0.0,
			"active": 0.0, "completionRate": 0.0, "avgDurationSecs": nil},
		map[string]any{"journeyId": "bucket-vip-on-dwell-after-3600000", "name": "VIP — on dwell", "enrolled": 0.0, "completed": 0.0,
			"failed": 0.0, "exited": 0.0, "active": 0.0, "completionRate": 0.0, "avgDurationSecs": nil},
		map[string]any{"journeyId": "empty", "name": "Empty", "enrolled": 0.0, "completed": 0.0, "failed": 0.0, "exited": 0.0,
			"active": 0.0, "completionRate": 0.0, "avgDurationSecs": nil},
	}}
	if !reflect.DeepEqual(raw, want) {
		t.Errorf("metrics\n got %v\nwant %v", raw, want)
	}

	wantBody(t, c, http.MethodGet, "/v1/admin/metrics/journeys/welcome", nil, http.StatusOK, map[string]any{
		"journeyId": "welcome", "enrolled": 6.0, "emailSent": 0.0, "emailOpened": 0.0, "emailClicked": 0.0,
		"completed": 2.0, "failed": 1.0, "exited": 1.0,
	})
	wantBody(t, c, http.MethodGet, "/v1/admin/metrics/journeys/empty", nil, http.StatusOK, map[string]any{
		"journeyId": "empty", "enrolled": 0.0, "emailSent": 0.0, "emailOpened": 0.0, "emailClicked": 0.0,
		"completed": 0.0, "failed": 0.0, "exited": 0.0,
	})
	for _, id := range []string{"hidden", "ghost", "nope"} {
		wantBody(t, c, http.MethodGet, "/v1/admin/metrics/journeys/"+id, nil, http.StatusNotFound, notFound("Journey not found"))
	}
}

// TestDocumented checks every route carries the documentation the OpenAPI
// document is built from, with the scope it enforces.
func TestDocumented(t *testing.T) {
	t.Parallel()
	router := httpapi.NewRouter()
	// No pool, registry or enroller: registering routes touches none.
	journeyapi.New(nil, nil, nil).Routes(router, authenticator)
	want := map[string]string{
		"GET /v1/admin/journeys":                          "read",
		"GET /v1/admin/journeys/{id}":                     "read",
		"PATCH /v1/admin/journeys/{id}":                   "journey-admin",
		"GET /v1/admin/journeys/{id}/states":              "read",
		"GET /v1/admin/journeys/{id}/states/{stateId}":    "read",
		"DELETE /v1/admin/journeys/{id}/states/{stateId}": "journey-admin",
		"POST /v1/admin/journeys/{id}/enroll":             "journey-admin",
		"POST /v1/admin/journeys/{id}/enroll/batch":       "journey-admin",
		"GET /v1/admin/journey-logs/{stateId}":            "read",
		"GET /v1/admin/metrics/journeys":                  "read",
		"GET /v1/admin/metrics/journeys/{id}":             "read",
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
	doc := router.OpenAPI(httpapi.OpenAPIInfo{Title: "t", Version: "v"})
	if _, err := json.Marshal(doc); err != nil {
		t.Errorf("encode OpenAPI: %v", err)
	}
}

// Batch enrolment ingests the trigger event for each valid user; invalid
// entries are skipped with their reason and do not hold the others back.
func TestEnrollBatch(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	c := serve(t, schematest.NewPool(t), rec)
	status, body := send(t, c, http.MethodPost, "/v1/admin/journeys/welcome/enroll/batch", map[string]any{"users": []any{
		map[string]any{"userId": "b1", "userEmail": "b1@example.com"},
		map[string]any{"userId": ""},
		map[string]any{"userId": "b3", "properties": map[string]any{"plan": "pro"}},
		map[string]any{"userId": "b4", "userEmail": "not-an-address"},
	}})
	if status != http.StatusOK || body["enrolled"] != float64(2) || body["skipped"] != float64(2) {
		t.Fatalf("HTTP %d %v", status, body)
	}
	results := body["results"].([]any)
	if r := results[1].(map[string]any); r["enrolled"] != false || !strings.Contains(r["error"].(string), "userId") {
		t.Errorf("invalid entry %v", r)
	}
	calls := rec.recorded()
	if len(calls) != 2 {
		t.Fatalf("%d enroller calls, want 2", len(calls))
	}
	for _, call := range calls {
		if *call.req.Name != "signup" || call.source != "admin" {
			t.Errorf("call %+v", call)
		}
	}
	for _, bad := range []any{map[string]any{}, map[string]any{"users": []any{}}} {
		if status, _ := send(t, c, http.MethodPost, "/v1/admin/journeys/welcome/enroll/batch", bad); status != http.StatusBadRequest {
			t.Errorf("body %v: HTTP %d, want 400", bad, status)
		}
	}
	if status, _ := send(t, c, http.MethodPost, "/v1/admin/journeys/nope/enroll/batch", map[string]any{"users": []any{map[string]any{"userId": "x"}}}); status != http.StatusNotFound {
		t.Errorf("unknown journey: HTTP %d, want 404", status)
	}
}
