package bucketapi_test

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
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/apiclient"
	"github.com/seed-eeb360f6/hogsend/services/bucketapi"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

const (
	adminToken = "admin-token"
	readToken  = "read-token"
)

// now is the service's clock: active rows dwell until now, and the series
// defaults to the 30 days before it.
var now = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr[T any](v T) *T { return &v }

func criteria(n condition.Node) *condition.Node { return &n }

// registry registers alpha, beta, gamma (statically disabled) and delta
// (no rows); "hidden" is defined but left out by the enabled set.
func registry(t *testing.T) *buckets.Registry {
	t.Helper()
	reg, err := buckets.NewRegistry("alpha,beta,gamma,delta",
		buckets.MustDefine(buckets.Meta{
			ID: "alpha", Name: "Alpha", Description: "Pro plan contacts.",
			Criteria:   criteria(condition.Prop("plan").Eq("pro")),
			EntryLimit: buckets.OncePerPeriod, EntryPeriod: 36 * time.Hour,
			MinDwell: 90 * time.Minute, MaxDwell: 30 * 24 * time.Hour,
			ReconcileEvery: time.Hour + 30*time.Minute + 15500*time.Millisecond,
			TimeBased:      true, FastExpiry: true, SyncToPostHog: true,
		}),
		buckets.MustDefine(buckets.Meta{
			ID: "beta", Name: "Beta",
			// A within makes the bucket time-based for the cron, but the
			// admin shows only the explicit flag.
			Criteria: criteria(condition.Event("feature_used").Within(condition.Days(7)).AtLeast(5)),
		}),
		buckets.MustDefine(buckets.Meta{
			ID: "hidden", Name: "Hidden", Criteria: criteria(condition.Prop("x").Exists()),
		}),
		buckets.MustDefine(buckets.Meta{
			ID: "gamma", Name: "Gamma", Enabled: ptr(false),
			Criteria: criteria(condition.Prop("plan").Eq("free")),
		}),
		buckets.MustDefine(buckets.Meta{
			ID: "delta", Name: "Delta", Criteria: criteria(condition.Event("signup").Exists()),
		}),
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
	case readToken:
		return httpapi.Principal{KeyID: "reader", Name: "reader", Scopes: []string{httpapi.ScopeRead}}, nil
	default:
		return httpapi.Principal{}, errcode.Unauthorized("")
	}
})

// serve runs the routes over pool on an httptest server and returns an
// admin client.
func serve(t *testing.T, pool *pgxpool.Pool, reg *buckets.Registry) *apiclient.Client {
	t.Helper()
	router := httpapi.NewRouter()
	bucketapi.NewWithOptions(pool, reg, bucketapi.Options{Now: func() time.Time { return now }}).Routes(router, authenticator)
	srv := httptest.NewServer(httpapi.Stack(router, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return apiclient.New(srv.URL, adminToken)
}

// row is a bucket_memberships row for test setup.
type row struct {
	bucket, user   string
	email          *string
	status         string
	entered        time.Time
	left           *time.Time
	epoch          int
	source         *string
	context        string // jsonb literal; "" is the column default
	deleted        bool
	lastEvaluation *time.Time
}

func insert(t *testing.T, pool *pgxpool.Pool, rows ...row) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, r := range rows {
		id := uuid.New()
		ctxJSON := r.context
		if ctxJSON == "" {
			ctxJSON = "{}"
		}
		var deleted *time.Time
		if r.deleted {
			deleted = &now
		}
		epoch := r.epoch
		if epoch == 0 {
			epoch = 1
		}
		_, err := pool.Exec(context.Background(), `
			INSERT INTO bucket_memberships (id, user_id, bucket_id, user_email, status, entered_at, left_at,
			                                last_evaluated_at, entry_count, source, context, deleted_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz, $8, $9, $10, $11::jsonb, $12, $6::timestamptz, coalesce($7::timestamptz, $6::timestamptz))`,
			id, r.user, r.bucket, r.email, r.status, r.entered, r.left, r.lastEvaluation, epoch, r.source, ctxJSON, deleted)
		if err != nil {
			t.Fatalf("insert %+v: %v", r, err)
		}
		ids[r.bucket+"/"+r.user+"/"+r.status] = id.String()
	}
	return ids
}

// seed inserts the fixture rows. Dwell per alpha row, up to now for the
// active ones: u1 2d2h (180000 s), u2 1d3h (97200 s), u3 7d12h (648000 s),
// u1's earlier membership 19d (1641600 s): the mean is 641700 s.
func seed(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	return insert(t, pool,
		row{bucket: "alpha", user: "u1", email: ptr("u1@example.com"), status: "left", entered: at("2025-02-01T00:00:00Z"), left: ptr(at("2025-02-20T00:00:00Z")), epoch: 1, source: ptr("event")},
		row{bucket: "alpha", user: "u1", email: ptr("u1@example.com"), status: "active", entered: at("2025-03-08T10:00:00Z"), epoch: 2, source: ptr("event"),
			context: `{"plan": "pro"}`, lastEvaluation: ptr(at("2025-03-09T00:00:00Z"))},
		row{bucket: "alpha", user: "u2", status: "active", entered: at("2025-03-09T09:00:00Z"), context: "null"},
		row{bucket: "alpha", user: "u3", email: ptr("u3@example.com"), status: "left", entered: at("2025-03-01T00:00:00Z"), left: ptr(at("2025-03-08T12:00:00Z")), source: ptr("reconcile")},
		// Soft-deleted rows count nowhere.
		row{bucket: "alpha", user: "u4", status: "active", entered: at("2025-03-09T10:00:00Z"), deleted: true},
		row{bucket: "alpha", user: "u5", status: "left", entered: at("2025-03-02T10:00:00Z"), left: ptr(at("2025-03-03T10:00:00Z")), deleted: true},
		// beta: 5 days and 1.4 seconds of dwell, a mean of 216000.7 s.
		row{bucket: "beta", user: "u1", status: "active", entered: at("2025-03-05T12:00:00Z")},
		row{bucket: "beta", user: "u2", status: "left", entered: at("2025-03-04T00:00:00Z"), left: ptr(at("2025-03-04T00:00:01.4Z"))},
		// Rows of a bucket that is not registered are never shown.
		row{bucket: "ghost", user: "u1", status: "active", entered: at("2025-03-09T00:00:00Z")},
		row{bucket: "hidden", user: "u1", status: "active", entered: at("2025-03-09T00:00:00Z")},
	)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantError checks err is an API error with status, code and a message
// containing msgPart.
func wantError(t *testing.T, err error, status int, code, msgPart string) {
	t.Helper()
	var e *apiclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want HTTP %d", err, status)
	}
	if e.Status != status || e.Code != code || !strings.Contains(e.Message, msgPart) {
		t.Fatalf("HTTP %d %q %q, want %d %q containing %q", e.Status, e.Code, e.Message, status, code, msgPart)
	}
}

// rawGet returns the decoded JSON body of a GET with status want.
func rawGet(t *testing.T, c *apiclient.Client, path string, want int) map[string]any {
	t.Helper()
	resp, err := c.Send(ctxT(t), http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != want {
		t.Fatalf("GET %s: HTTP %d %s, want %d", path, resp.Status, resp.Body, want)
	}
	var body map[string]any
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, resp.Body)
	}
	return body
}

func bucketIDs(bs []apiclient.Bucket) []string {
	ids := make([]string, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
	}
	return ids
}

func memberUsers(ms []apiclient.BucketMember) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.UserID + "/" + m.Status
	}
	return out
}

func TestAuth(t *testing.T) {
	t.Parallel()
	c := serve(t, schematest.NewPool(t), registry(t))
	ctx := ctxT(t)
	reads := []string{
		"/v1/admin/buckets", "/v1/admin/buckets/alpha", "/v1/admin/buckets/alpha/members",
		"/v1/admin/metrics/buckets", "/v1/admin/metrics/buckets/alpha",
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
	_, err := c.WithKey("").SetBucketEnabled(ctx, "alpha", false)
	wantError(t, err, http.StatusUnauthorized, "unauthorized", "Unauthorized")
	_, err = c.WithKey(readToken).SetBucketEnabled(ctx, "alpha", false)
	wantError(t, err, http.StatusForbidden, "forbidden", "Forbidden: insufficient scope")
	if got, err := c.GetBucket(ctx, "alpha"); err != nil || !got.Enabled {
		t.Errorf("the refused PATCH changed alpha: %v %+v", err, got)
	}
}

func TestListBuckets(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, registry(t))
	seed(t, pool)
	ctx := ctxT(t)

	all, err := c.ListBuckets(ctx, apiclient.ListBucketsParams{})
	if err != nil {
		t.Fatal(err)
	}
	if got := bucketIDs(all.Buckets); !slices.Equal(got, []string{"alpha", "beta", "gamma", "delta"}) || all.Total != 4 || all.Limit != 50 || all.Offset != 0 {
		t.Fatalf("list %v total %d limit %d offset %d", got, all.Total, all.Limit, all.Offset)
	}
	want := []apiclient.Bucket{
		{ID: "alpha", Name: "Alpha", Description: "Pro plan contacts.", Enabled: true, Kind: "dynamic", TimeBased: true, EntryLimit: "once_per_period", Counts: apiclient.BucketCounts{Active: 2, Left: 2}},
		{ID: "beta", Name: "Beta", Enabled: true, Kind: "dynamic", TimeBased: false, EntryLimit: "unlimited", Counts: apiclient.BucketCounts{Active: 1, Left: 1}},
		{ID: "gamma", Name: "Gamma", Enabled: false, Kind: "dynamic", EntryLimit: "unlimited"},
		{ID: "delta", Name: "Delta", Enabled: true, Kind: "dynamic", EntryLimit: "unlimited"},
	}
	if !reflect.DeepEqual(all.Buckets, want) {
		t.Errorf("buckets\n got %+v\nwant %+v", all.Buckets, want)
	}
	// description is left out when the definition has none.
	raw := rawGet(t, c, "/v1/admin/buckets", http.StatusOK)
	if _, ok := raw["buckets"].([]any)[1].(map[string]any)["description"]; ok {
		t.Errorf("beta has a description: %v", raw["buckets"])
	}

	tests := []struct {
		name  string
		p     apiclient.ListBucketsParams
		ids   []string
		total int
	}{
		{"disabled", apiclient.ListBucketsParams{Enabled: ptr(false)}, []string{"gamma"}, 1},
		{"enabled", apiclient.ListBucketsParams{Enabled: ptr(true)}, []string{"alpha", "beta", "delta"}, 3},
		{"enabled page", apiclient.ListBucketsParams{Enabled: ptr(true), Limit: 1, Offset: 1}, []string{"beta"}, 3},
		{"page", apiclient.ListBucketsParams{Limit: 2, Offset: 2}, []string{"gamma", "delta"}, 4},
		{"past the end", apiclient.ListBucketsParams{Offset: 10}, []string{}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.ListBuckets(ctx, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(bucketIDs(got.Buckets), tc.ids) || got.Total != tc.total {
				t.Errorf("got %v total %d, want %v total %d", bucketIDs(got.Buckets), got.Total, tc.ids, tc.total)
			}
		})
	}
	if raw := rawGet(t, c, "/v1/admin/buckets?offset=10", http.StatusOK); raw["buckets"] == nil {
		t.Errorf("an empty page is %v, want []", raw["buckets"])
	}

	for _, q := range []string{"enabled=yes", "limit=0", "limit=101", "offset=-1", "limit=x"} {
		field := strings.SplitN(q, "=", 2)[0]
		resp := rawGet(t, c, "/v1/admin/buckets?"+q, http.StatusBadRequest)
		if resp["code"] != "invalid_request" || !strings.HasPrefix(resp["error"].(string), field+":") {
			t.Errorf("?%s: %v", q, resp)
		}
	}
}

func TestGetBucket(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, registry(t))
	ids := seed(t, pool)
	ctx := ctxT(t)

	alpha, err := c.GetBucket(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if alpha.ID != "alpha" || !alpha.Enabled || !alpha.TimeBased || alpha.Counts != (apiclient.BucketCounts{Active: 2, Left: 2}) ||
		!alpha.FastExpiry || !alpha.SyncToPostHog || alpha.EntryLimit != "once_per_period" {
		t.Errorf("alpha %+v", alpha)
	}
	var crit map[string]any
	if err := json.Unmarshal(alpha.Criteria, &crit); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"type": "property", "property": "plan", "operator": "eq", "value": "pro"}; !reflect.DeepEqual(crit, want) {
		t.Errorf("criteria %v, want %v", crit, want)
	}
	for name, tc := range map[string]struct {
		got  *apiclient.BucketDuration
		want apiclient.BucketDuration
	}{
		"entryPeriod":    {alpha.EntryPeriod, apiclient.BucketDuration{Hours: 36}},
		"minDwell":       {alpha.MinDwell, apiclient.BucketDuration{Hours: 1, Minutes: 30}},
		"maxDwell":       {alpha.MaxDwell, apiclient.BucketDuration{Hours: 720}},
		"reconcileEvery": {alpha.ReconcileEvery, apiclient.BucketDuration{Hours: 1, Minutes: 30, Seconds: 15.5}},
	} {
		if tc.got == nil || *tc.got != tc.want {
			t.Errorf("%s = %+v, want %+v", name, tc.got, tc.want)
		}
	}
	if got := memberUsers(alpha.RecentMembers); !slices.Equal(got, []string{"u2/active", "u1/active"}) {
		t.Errorf("recentMembers %v", got)
	}
	u1 := alpha.RecentMembers[1]
	if u1.ID != ids["alpha/u1/active"] || str(u1.UserEmail) != "u1@example.com" || u1.BucketID != "alpha" || u1.EntryCount != 2 ||
		str(u1.Source) != "event" || !u1.EnteredAt.Equal(at("2025-03-08T10:00:00Z")) || u1.LeftAt != nil || u1.ExpiresAt != nil ||
		u1.LastEvaluatedAt == nil || !u1.LastEvaluatedAt.Equal(at("2025-03-09T00:00:00Z")) || !reflect.DeepEqual(u1.Context, map[string]any{"plan": "pro"}) {
		t.Errorf("u1 %+v", u1)
	}

	raw := rawGet(t, c, "/v1/admin/buckets/alpha", http.StatusOK)["bucket"].(map[string]any)
	if j, ok := raw["feedsJourneys"].([]any); !ok || len(j) != 0 {
		t.Errorf("feedsJourneys = %#v, want []", raw["feedsJourneys"])
	}
	u2 := raw["recentMembers"].([]any)[0].(map[string]any)
	for k, want := range map[string]any{"userEmail": nil, "source": nil, "leftAt": nil, "expiresAt": nil, "lastEvaluatedAt": nil, "context": map[string]any{}} {
		if v, ok := u2[k]; !ok || !reflect.DeepEqual(v, want) {
			t.Errorf("u2.%s = %#v (present %v), want %#v", k, v, ok, want)
		}
	}
	for _, k := range []string{"maxDwellAt", "dwellState", "dwellAnchorAt", "deletedAt"} {
		if _, ok := u2[k]; ok {
			t.Errorf("member exposes %s", k)
		}
	}
	if s := u2["enteredAt"]; s != "2025-03-09T09:00:00.000Z" {
		t.Errorf("enteredAt %v", s)
	}

	beta := rawGet(t, c, "/v1/admin/buckets/beta", http.StatusOK)["bucket"].(map[string]any)
	for _, k := range []string{"entryPeriod", "minDwell", "maxDwell", "reconcileEvery", "description"} {
		if _, ok := beta[k]; ok {
			t.Errorf("beta has %s: %v", k, beta[k])
		}
	}
	if beta["timeBased"] != false || beta["fastExpiry"] != false || beta["syncToPostHog"] != false || beta["kind"] != "dynamic" {
		t.Errorf("beta %v", beta)
	}
	if delta, err := c.GetBucket(ctx, "delta"); err != nil || delta.RecentMembers == nil || len(delta.RecentMembers) != 0 {
		t.Errorf("delta: %v %+v", err, delta)
	}

	for _, id := range []string{"hidden", "ghost", "nope"} {
		body := rawGet(t, c, "/v1/admin/buckets/"+id, http.StatusNotFound)
		if !reflect.DeepEqual(body, map[string]any{"error": "Bucket not found", "code": "not_found"}) {
			t.Errorf("%s: %v", id, body)
		}
	}
}

func TestRecentMembersAreTheTenNewest(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, registry(t))
	var rows []row
	for i := range 12 {
		rows = append(rows, row{bucket: "delta", user: "m" + string(rune('a'+i)), status: "active", entered: now.Add(-time.Duration(i) * time.Hour)})
	}
	rows = append(rows, row{bucket: "delta", user: "gone", status: "left", entered: now, left: &now})
	insert(t, pool, rows...)
	d, err := c.GetBucket(ctxT(t), "delta")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ma", "mb", "mc", "md", "me", "mf", "mg", "mh", "mi", "mj"}
	var got []string
	for _, m := range d.RecentMembers {
		got = append(got, m.UserID)
	}
	if !slices.Equal(got, want) || d.Counts != (apiclient.BucketCounts{Active: 12, Left: 1}) {
		t.Errorf("recent %v counts %+v", got, d.Counts)
	}
}

func TestSetBucketEnabled(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, registry(t))
	ctx := ctxT(t)

	before := time.Now().Add(-time.Minute)
	got, err := c.SetBucketEnabled(ctx, "gamma", true)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "gamma" || got.Name != "Gamma" || !got.Enabled || got.UpdatedAt.Before(before) {
		t.Errorf("PATCH gamma: %+v", got)
	}
	if g, err := c.GetBucket(ctx, "gamma"); err != nil || !g.Enabled {
		t.Errorf("gamma after enabling: %v %+v", err, g)
	}
	if _, err := c.SetBucketEnabled(ctx, "alpha", false); err != nil {
		t.Fatal(err)
	}
	off, err := c.ListBuckets(ctx, apiclient.ListBucketsParams{Enabled: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	if ids := bucketIDs(off.Buckets); !slices.Equal(ids, []string{"alpha"}) || off.Total != 1 {
		t.Errorf("disabled after the overrides: %v total %d", ids, off.Total)
	}
	// A second PATCH updates the same row.
	again, err := c.SetBucketEnabled(ctx, "alpha", true)
	if err != nil || !again.Enabled {
		t.Fatalf("re-enable alpha: %v %+v", err, again)
	}
	cfgs, err := buckets.Configs(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 2 || !cfgs["alpha"].Enabled || !cfgs["gamma"].Enabled || cfgs["alpha"].CriteriaHash != nil ||
		!cfgs["alpha"].UpdatedAt.Truncate(time.Millisecond).Equal(again.UpdatedAt) {
		t.Errorf("configs %+v (PATCH said %v)", cfgs, again.UpdatedAt)
	}
	// The hash a backfill stored is kept and reported.
	if _, err := pool.Exec(ctx, `UPDATE bucket_configs SET criteria_hash = 'h1' WHERE bucket_id = 'gamma'`); err != nil {
		t.Fatal(err)
	}
	cfg, err := buckets.SetEnabled(ctx, pool, "gamma", false)
	if err != nil || cfg.Enabled || cfg.CriteriaHash == nil || *cfg.CriteriaHash != "h1" || cfg.BucketID != "gamma" {
		t.Errorf("SetEnabled gamma: %v %+v", err, cfg)
	}

	send := func(key, id string, body any) (*apiclient.Response, error) {
		return c.WithKey(key).Send(ctx, http.MethodPatch, "/v1/admin/buckets/"+id, body)
	}
	tests := []struct {
		name   string
		id     string
		body   any
		status int
		msg    string
	}{
		{"missing", "alpha", map[string]any{}, http.StatusBadRequest, "enabled: is required"},
		{"null", "alpha", map[string]any{"enabled": nil}, http.StatusBadRequest, "enabled: must be a boolean"},
		{"string", "alpha", map[string]any{"enabled": "false"}, http.StatusBadRequest, "enabled: must be a boolean"},
		{"number", "alpha", map[string]any{"enabled": 0}, http.StatusBadRequest, "enabled: must be a boolean"},
		{"malformed", "alpha", apiclient.RawBody(`{"enabled":`), http.StatusBadRequest, "Malformed JSON"},
		{"unregistered", "hidden", map[string]any{"enabled": true}, http.StatusNotFound, "Bucket not found"},
		{"unknown", "nope", map[string]any{"enabled": false}, http.StatusNotFound, "Bucket not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := send(adminToken, tc.id, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status || !strings.Contains(string(resp.Body), tc.msg) {
				t.Errorf("HTTP %d %s, want %d %q", resp.Status, resp.Body, tc.status, tc.msg)
			}
		})
	}
	if cfgs, err := buckets.Configs(ctx, pool); err != nil || len(cfgs) != 2 {
		t.Errorf("the refused PATCHes wrote configs: %v %+v", err, cfgs)
	}
}

func TestBucketMembers(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, registry(t))
	ids := seed(t, pool)
	ctx := ctxT(t)

	tests := []struct {
		name  string
		id    string
		p     apiclient.BucketMembersParams
		want  []string
		total int
	}{
		{"default active", "alpha", apiclient.BucketMembersParams{}, []string{"u2/active", "u1/active"}, 2},
		{"left", "alpha", apiclient.BucketMembersParams{Status: "left"}, []string{"u3/left", "u1/left"}, 2},
		{"user", "alpha", apiclient.BucketMembersParams{Status: "left", UserID: "u1"}, []string{"u1/left"}, 1},
		{"user active", "alpha", apiclient.BucketMembersParams{UserID: "u1"}, []string{"u1/active"}, 1},
		{"user unknown", "alpha", apiclient.BucketMembersParams{UserID: "U1"}, []string{}, 0},
		{"page", "alpha", apiclient.BucketMembersParams{Limit: 1, Offset: 1}, []string{"u1/active"}, 2},
		{"past the end", "alpha", apiclient.BucketMembersParams{Offset: 5}, []string{}, 2},
		{"other bucket", "beta", apiclient.BucketMembersParams{}, []string{"u1/active"}, 1},
		{"no rows", "delta", apiclient.BucketMembersParams{Status: "left"}, []string{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.BucketMembers(ctx, tc.id, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			wantLimit := tc.p.Limit
			if wantLimit == 0 {
				wantLimit = 50
			}
			if u := memberUsers(got.Members); !slices.Equal(u, tc.want) || got.Total != tc.total || got.Limit != wantLimit || got.Offset != tc.p.Offset {
				t.Errorf("got %v total %d limit %d offset %d, want %v total %d", u, got.Total, got.Limit, got.Offset, tc.want, tc.total)
			}
		})
	}

	left, err := c.BucketMembers(ctx, "alpha", apiclient.BucketMembersParams{Status: "left", UserID: "u3"})
	if err != nil || len(left.Members) != 1 {
		t.Fatalf("u3: %v %+v", err, left)
	}
	u3 := left.Members[0]
	if u3.ID != ids["alpha/u3/left"] || u3.LeftAt == nil || !u3.LeftAt.Equal(at("2025-03-08T12:00:00Z")) || str(u3.Source) != "reconcile" ||
		!u3.CreatedAt.Equal(at("2025-03-01T00:00:00Z")) || !u3.UpdatedAt.Equal(at("2025-03-08T12:00:00Z")) || u3.EntryCount != 1 {
		t.Errorf("u3 %+v", u3)
	}
	if raw := rawGet(t, c, "/v1/admin/buckets/delta/members", http.StatusOK); raw["members"] == nil {
		t.Errorf("an empty page is %v, want []", raw["members"])
	}

	_, err = c.BucketMembers(ctx, "alpha", apiclient.BucketMembersParams{Status: "gone"})
	wantError(t, err, http.StatusBadRequest, "invalid_request", "status:")
	_, err = c.BucketMembers(ctx, "alpha", apiclient.BucketMembersParams{Limit: 101})
	wantError(t, err, http.StatusBadRequest, "invalid_request", "limit:")
	for _, id := range []string{"hidden", "ghost"} {
		_, err = c.BucketMembers(ctx, id, apiclient.BucketMembersParams{})
		wantError(t, err, http.StatusNotFound, "not_found", "Bucket not found")
	}
}

func TestBucketMetrics(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, registry(t))
	seed(t, pool)
	got, err := c.BucketMetrics(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []apiclient.BucketMetric{
		{BucketID: "alpha", Name: "Alpha", Size: 2, Entered: 4, Left: 2, AvgDwellSecs: ptr[int64](641700)},
		{BucketID: "beta", Name: "Beta", Size: 1, Entered: 2, Left: 1, AvgDwellSecs: ptr[int64](216001)},
		{BucketID: "gamma", Name: "Gamma"},
		{BucketID: "delta", Name: "Delta"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics\n got %s\nwant %s", jsonOf(got), jsonOf(want))
	}
	raw := rawGet(t, c, "/v1/admin/metrics/buckets", http.StatusOK)
	if g := raw["buckets"].([]any)[2].(map[string]any); g["avgDwellSecs"] != nil || len(g) != 6 {
		t.Errorf("gamma %v, want avgDwellSecs null", g)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestBucketMetricsSeries(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	c := serve(t, pool, registry(t))
	seed(t, pool)
	ctx := ctxT(t)

	tests := []struct {
		name string
		id   string
		p    apiclient.BucketSeriesParams
		want []apiclient.BucketPoint
	}{
		{"day", "alpha", apiclient.BucketSeriesParams{Period: "day", From: at("2025-03-01T00:00:00Z"), To: now}, []apiclient.BucketPoint{
			{Date: "2025-03-01 00:00:00+00", Entered: 1},
			{Date: "2025-03-08 00:00:00+00", Entered: 1, Left: 1},
			{Date: "2025-03-09 00:00:00+00", Entered: 1},
		}},
		// Weeks start on Monday: 2025-03-01 is a Saturday.
		{"week", "alpha", apiclient.BucketSeriesParams{Period: "week", From: at("2025-03-01T00:00:00Z"), To: now}, []apiclient.BucketPoint{
			{Date: "2025-02-24 00:00:00+00", Entered: 1},
			{Date: "2025-03-03 00:00:00+00", Entered: 2, Left: 1},
		}},
		// The default window is the 30 days before now: u1's first leave
		// (02-20) is inside, its join (02-01) is not.
		{"month default window", "alpha", apiclient.BucketSeriesParams{Period: "month"}, []apiclient.BucketPoint{
			{Date: "2025-02-01 00:00:00+00", Left: 1},
			{Date: "2025-03-01 00:00:00+00", Entered: 3, Left: 1},
		}},
		{"default period", "alpha", apiclient.BucketSeriesParams{From: at("2025-03-09T00:00:00Z")}, []apiclient.BucketPoint{
			{Date: "2025-03-09 00:00:00+00", Entered: 1},
		}},
		// Both ends are inclusive.
		{"instant", "alpha", apiclient.BucketSeriesParams{From: at("2025-03-08T10:00:00Z"), To: at("2025-03-08T10:00:00Z")}, []apiclient.BucketPoint{
			{Date: "2025-03-08 00:00:00+00", Entered: 1},
		}},
		{"window before any row", "alpha", apiclient.BucketSeriesParams{From: at("2024-01-01T00:00:00Z"), To: at("2024-02-01T00:00:00Z")}, []apiclient.BucketPoint{}},
		// Without from, the window is the 30 days before to.
		{"to only", "alpha", apiclient.BucketSeriesParams{To: at("2025-03-02T00:00:00Z")}, []apiclient.BucketPoint{
			{Date: "2025-02-01 00:00:00+00", Entered: 1},
			{Date: "2025-02-20 00:00:00+00", Left: 1},
			{Date: "2025-03-01 00:00:00+00", Entered: 1},
		}},
		{"no rows", "delta", apiclient.BucketSeriesParams{}, []apiclient.BucketPoint{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.BucketMetricsSeries(ctx, tc.id, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			wantSize := map[string]int64{"alpha": 2}[tc.id]
			if got.BucketID != tc.id || got.Size != wantSize || !reflect.DeepEqual(got.Points, tc.want) {
				t.Errorf("got %s\nwant points %s size %d", jsonOf(got), jsonOf(tc.want), wantSize)
			}
		})
	}

	// The dates do not depend on the session time zone.
	t.Run("session time zone", func(t *testing.T) {
		cfg := pool.Config()
		cfg.ConnConfig.RuntimeParams["timezone"] = "America/Los_Angeles"
		la, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer la.Close()
		var tz string
		if err := la.QueryRow(ctx, "SHOW TimeZone").Scan(&tz); err != nil || tz != "America/Los_Angeles" {
			t.Fatalf("session time zone %q: %v", tz, err)
		}
		got, err := serve(t, la, registry(t)).BucketMetricsSeries(ctx, "alpha", apiclient.BucketSeriesParams{Period: "day", From: at("2025-03-01T00:00:00Z"), To: now})
		if err != nil {
			t.Fatal(err)
		}
		if got.Points[0].Date != "2025-03-01 00:00:00+00" || len(got.Points) != 3 {
			t.Errorf("points %s", jsonOf(got.Points))
		}
	})

	bad := []struct{ query, field string }{
		{"period=year", "period:"},
		{"period=DAY", "period:"},
		{"from=2025-03-01", "from:"},
		{"from=2025-03-01T00:00:00%2B01:00", "from:"},
		{"to=yesterday", "to:"},
		{"from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", "from:"},
	}
	for _, b := range bad {
		body := rawGet(t, c, "/v1/admin/metrics/buckets/alpha?"+b.query, http.StatusBadRequest)
		if body["code"] != "invalid_request" || !strings.HasPrefix(body["error"].(string), b.field) {
			t.Errorf("?%s: %v", b.query, body)
		}
	}
	for _, id := range []string{"hidden", "nope"} {
		body := rawGet(t, c, "/v1/admin/metrics/buckets/"+id, http.StatusNotFound)
		if !reflect.DeepEqual(body, map[string]any{"error": "Bucket not found", "code": "not_found"}) {
			t.Errorf("%s: %v", id, body)
		}
	}
}

// TestDocumented checks every route carries the documentation the OpenAPI
// document is built from, with the scope it enforces.
func TestDocumented(t *testing.T) {
	t.Parallel()
	router := httpapi.NewRouter()
	// No pool or registry: registering routes touches neither.
	bucketapi.New(nil, nil).Routes(router, authenticator)
	want := map[string]string{
		"GET /v1/admin/buckets":              "read",
		"GET /v1/admin/buckets/{id}":         "read",
		"PATCH /v1/admin/buckets/{id}":       "journey-admin",
		"GET /v1/admin/buckets/{id}/members": "read",
		"GET /v1/admin/metrics/buckets":      "read",
		"GET /v1/admin/metrics/buckets/{id}": "read",
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

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}
