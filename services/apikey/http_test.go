package apikey_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
	"github.com/seed-eeb360f6/hogsend/services/apikey"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

const adminKey = "test-admin-key"

// newServer runs the real router with the admin guard the composition root
// uses, and returns a client authenticated with ADMIN_API_KEY.
func newServer(t *testing.T) (*apiclient.Client, *clock) {
	t.Helper()
	store, _, c := newStore(t, apikey.Options{AdminKey: adminKey})
	rt := httpapi.NewRouter()
	rt.Use("/v1/admin", httpapi.Authenticate(store), httpapi.RateLimit(httpapi.NewRateLimiter(httpapi.RateLimitOptions{Disabled: true})))
	store.Routes(rt, store)
	srv := httptest.NewServer(httpapi.Stack(rt, nil))
	t.Cleanup(srv.Close)
	return apiclient.New(srv.URL, adminKey), c
}

func apiErr(t *testing.T, err error, status int, msg string) {
	t.Helper()
	e, ok := err.(*apiclient.Error)
	if !ok {
		t.Fatalf("err = %v, want HTTP %d", err, status)
	}
	if e.Status != status || (msg != "" && e.Message != msg) {
		t.Fatalf("got %d %q, want %d %q", e.Status, e.Message, status, msg)
	}
}

func TestHTTPCreateListRevoke(t *testing.T) {
	t.Parallel()
	admin, c := newServer(t)
	ctx := context.Background()

	expires := c.Now().Add(24 * time.Hour)
	created, err := admin.CreateAPIKey(ctx, apiclient.CreateAPIKey{Name: "ci", Scopes: []string{"full-admin"}, ExpiresAt: &expires})
	if err != nil {
		t.Fatal(err)
	}
	if !keyRE.MatchString(created.Key) || created.KeyPrefix != created.Key[:8] || created.Name != "ci" ||
		len(created.Scopes) != 1 || created.Scopes[0] != "full-admin" || !created.ExpiresAt.Equal(expires) || !created.CreatedAt.Equal(c.Now()) {
		t.Errorf("created = %+v", created)
	}

	// The new full-admin key manages keys too; what it creates records it.
	ci := admin.WithKey(created.Key)
	reader, err := ci.CreateAPIKey(ctx, apiclient.CreateAPIKey{Name: "dashboard"})
	if err != nil {
		t.Fatal(err)
	}
	if len(reader.Scopes) != 1 || reader.Scopes[0] != "read" || reader.ExpiresAt != nil {
		t.Errorf("default scopes = %v, expiresAt %v", reader.Scopes, reader.ExpiresAt)
	}

	list, err := admin.ListAPIKeys(ctx, apiclient.ListAPIKeysParams{})
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != 2 || list.Limit != 50 || list.Offset != 0 || len(list.Keys) != 2 {
		t.Fatalf("list = %+v", list)
	}
	byName := map[string]apiclient.APIKey{}
	for _, k := range list.Keys {
		byName[k.Name] = k
	}
	if cb := byName["ci"].CreatedBy; cb == nil || *cb != "legacy" {
		t.Errorf("ci createdBy = %v, want legacy", cb)
	}
	if cb := byName["dashboard"].CreatedBy; cb == nil || *cb != "ci" {
		t.Errorf("dashboard createdBy = %v, want ci", cb)
	}
	if byName["ci"].LastUsedAt == nil {
		t.Error("ci lastUsedAt not set after use")
	}

	// A read key may not manage keys.
	if _, err := admin.WithKey(reader.Key).ListAPIKeys(ctx, apiclient.ListAPIKeysParams{}); err != nil {
		apiErr(t, err, 403, "Forbidden: insufficient scope")
	} else {
		t.Error("read key listed keys")
	}

	if err := admin.RevokeAPIKey(ctx, reader.ID); err != nil {
		t.Fatal(err)
	}
	apiErr(t, admin.RevokeAPIKey(ctx, reader.ID), 404, "API key not found or already revoked")
	apiErr(t, admin.RevokeAPIKey(ctx, "0195d4c0-0000-7000-8000-000000000001"), 404, "API key not found or already revoked")
	apiErr(t, admin.RevokeAPIKey(ctx, "not-a-uuid"), 400, "id: must be a UUID")
	_, err = admin.WithKey(reader.Key).ListAPIKeys(ctx, apiclient.ListAPIKeysParams{})
	apiErr(t, err, 401, "Unauthorized")

	list, err = admin.ListAPIKeys(ctx, apiclient.ListAPIKeysParams{IncludeRevoked: true, Limit: 1, Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != 2 || list.Limit != 1 || list.Offset != 1 || len(list.Keys) != 1 {
		t.Errorf("page = %+v", list)
	}
	live, _ := admin.ListAPIKeys(ctx, apiclient.ListAPIKeysParams{})
	if live.Total != 1 || live.Keys[0].Name != "ci" {
		t.Errorf("live = %+v", live)
	}

	// Expiry is checked against the server clock.
	c.Advance(25 * time.Hour)
	_, err = ci.ListAPIKeys(ctx, apiclient.ListAPIKeysParams{})
	apiErr(t, err, 401, "API key expired")
}

func TestHTTPWireFormat(t *testing.T) {
	t.Parallel()
	admin, _ := newServer(t)
	ctx := context.Background()
	var created map[string]any
	if err := admin.Do(ctx, "POST", "/v1/admin/api-keys", map[string]any{
		"name": "wire", "expiresAt": "2031-02-03T04:05:06.123456Z", "ignored": true,
	}, &created); err != nil {
		t.Fatal(err)
	}
	if got := sortedKeys(created); got != "createdAt,expiresAt,id,key,keyPrefix,name,scopes" {
		t.Errorf("create keys = %s", got)
	}
	if created["expiresAt"] != "2031-02-03T04:05:06.123Z" || created["createdAt"] != "2030-01-02T03:04:05.000Z" {
		t.Errorf("times = %v, %v", created["expiresAt"], created["createdAt"])
	}
	var list map[string]json.RawMessage
	if err := admin.Do(ctx, "GET", "/v1/admin/api-keys", nil, &list); err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	if err := json.Unmarshal(list["keys"], &items); err != nil || len(items) != 1 {
		t.Fatalf("items = %s, %v", list["keys"], err)
	}
	if got := sortedKeys(items[0]); got != "createdAt,createdBy,expiresAt,id,keyPrefix,lastUsedAt,name,revokedAt,scopes" {
		t.Errorf("item keys = %s", got)
	}
	if items[0]["revokedAt"] != nil || items[0]["lastUsedAt"] != nil {
		t.Errorf("item = %v", items[0])
	}
	if _, ok := items[0]["key"]; ok {
		t.Error("list leaks the key")
	}
}

func sortedKeys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func TestHTTPValidation(t *testing.T) {
	t.Parallel()
	admin, _ := newServer(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		body   any
		status int
		msg    string
	}{
		{"missing name", map[string]any{}, 400, "name: is required"},
		{"empty name", map[string]any{"name": ""}, 400, "name: must be between 1 and 100 characters"},
		{"long name", map[string]any{"name": strings.Repeat("n", 101)}, 400, "name: must be between 1 and 100 characters"},
		{"name not a string", map[string]any{"name": 5}, 400, "name: must be a string"},
		{"empty scopes", map[string]any{"name": "x", "scopes": []string{}}, 400, "scopes: must contain at least one scope"},
		{"bad scope", map[string]any{"name": "x", "scopes": []string{"root"}}, 400, ""},
		{"scopes not an array", map[string]any{"name": "x", "scopes": "read"}, 400, "scopes: must be an array"},
		{"offset", map[string]any{"name": "x", "expiresAt": "2031-01-01T00:00:00+02:00"}, 400, "expiresAt: must be an ISO-8601 UTC date-time ending in Z"},
		{"zone-less", map[string]any{"name": "x", "expiresAt": "2031-01-01T00:00:00"}, 400, "expiresAt: must be an ISO-8601 UTC date-time ending in Z"},
		{"date only", map[string]any{"name": "x", "expiresAt": "2031-01-01"}, 400, "expiresAt: must be an ISO-8601 UTC date-time ending in Z"},
		{"past expiry", map[string]any{"name": "x", "expiresAt": "2001-01-01T00:00:00Z"}, 201, ""},
		{"null expiry", map[string]any{"name": "x", "expiresAt": nil}, 201, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := admin.Do(ctx, "POST", "/v1/admin/api-keys", tc.body, nil)
			if tc.status == 201 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			apiErr(t, err, tc.status, tc.msg)
			if e := err.(*apiclient.Error); e.Code != "invalid_request" {
				t.Errorf("code = %q", e.Code)
			}
		})
	}

	for _, q := range []string{"?limit=0", "?limit=101", "?limit=1.5", "?offset=-1", "?includeRevoked=yes"} {
		err := admin.Do(ctx, "GET", "/v1/admin/api-keys"+q, nil, nil)
		apiErr(t, err, 400, "")
	}
}

func TestHTTPAuth(t *testing.T) {
	t.Parallel()
	admin, _ := newServer(t)
	ctx := context.Background()
	anon := admin.WithKey("")
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/admin/api-keys"},
		{"POST", "/v1/admin/api-keys"},
		{"DELETE", "/v1/admin/api-keys/not-a-uuid"},
		{"GET", "/v1/admin/unknown"},
	} {
		apiErr(t, anon.Do(ctx, tc.method, tc.path, nil, nil), 401, "Unauthorized")
		apiErr(t, admin.WithKey("hsk_wrong").Do(ctx, tc.method, tc.path, nil, nil), 401, "Unauthorized")
	}
	apiErr(t, admin.Do(ctx, "GET", "/v1/admin/unknown", nil, nil), 404, "Not Found")
	apiErr(t, admin.Do(ctx, "PUT", "/v1/admin/api-keys", nil, nil), 404, "Not Found")

	// Bodies without a JSON content type are refused.
	req, _ := http.NewRequest("POST", admin.BaseURL+"/v1/admin/api-keys", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("no content type: %d", resp.StatusCode)
	}
}
