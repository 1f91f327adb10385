package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

func TestHasScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		granted  []string
		required string
		want     bool
	}{
		{[]string{"read"}, "read", true},
		{[]string{"read"}, "journey-admin", false},
		{[]string{"read"}, "full-admin", false},
		{[]string{"read"}, "ingest", false},
		{[]string{"journey-admin"}, "read", true},
		{[]string{"journey-admin"}, "journey-admin", true},
		{[]string{"journey-admin"}, "full-admin", false},
		{[]string{"journey-admin"}, "ingest", false},
		{[]string{"full-admin"}, "read", true},
		{[]string{"full-admin"}, "journey-admin", true},
		{[]string{"full-admin"}, "full-admin", true},
		{[]string{"full-admin"}, "ingest", true},
		{[]string{"ingest"}, "ingest", true},
		{[]string{"ingest"}, "read", false},
		{[]string{"ingest"}, "journey-admin", false},
		{[]string{"ingest", "read"}, "read", true},
		{[]string{"ingest", "journey-admin"}, "full-admin", false},
		{nil, "read", false},
		{[]string{"bogus"}, "read", false},
		{[]string{"full-admin"}, "bogus", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v needs %s", tc.granted, tc.required), func(t *testing.T) {
			t.Parallel()
			if got := httpapi.HasScope(tc.granted, tc.required); got != tc.want {
				t.Errorf("HasScope = %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeAuth knows a few fixed keys.
var fakeAuth = httpapi.AuthenticatorFunc(func(_ context.Context, bearer string) (httpapi.Principal, error) {
	switch bearer {
	case "hsk_read":
		return httpapi.Principal{KeyID: "k1", Name: "reader", Scopes: []string{"read"}}, nil
	case "hsk_admin":
		return httpapi.Principal{KeyID: "k2", Name: "admin", Scopes: []string{"full-admin"}}, nil
	case "hsk_ingest":
		return httpapi.Principal{KeyID: "k3", Name: "ingester", Scopes: []string{"ingest"}}, nil
	case "hsk_expired":
		return httpapi.Principal{}, errcode.Unauthorized("API key expired")
	case "hsk_broken":
		return httpapi.Principal{}, errors.New("database down")
	default:
		return httpapi.Principal{}, errcode.Unauthorized("Unauthorized")
	}
})

func TestRequireScope(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpapi.PrincipalFrom(r.Context())
		httpapi.WriteJSON(w, 200, map[string]string{"name": p.Name})
	})
	rt := httpapi.NewRouter()
	rt.Handle("GET", "/admin", httpapi.RequireScope(fakeAuth, httpapi.ScopeJourneyAdmin)(ok), httpapi.Doc{})
	rt.Handle("POST", "/ingest", httpapi.RequireScope(fakeAuth, httpapi.ScopeIngest)(ok), httpapi.Doc{})

	tests := []struct {
		name, method, path, auth string
		status                   int
		msg, code                string
	}{
		{"no header", "GET", "/admin", "", 401, "Unauthorized", "unauthorized"},
		{"lower-case bearer", "GET", "/admin", "bearer hsk_admin", 401, "Unauthorized", "unauthorized"},
		{"empty bearer", "GET", "/admin", "Bearer ", 401, "Unauthorized", "unauthorized"},
		{"basic", "GET", "/admin", "Basic abc", 401, "Unauthorized", "unauthorized"},
		{"unknown key", "GET", "/admin", "Bearer hsk_nope", 401, "Unauthorized", "unauthorized"},
		{"expired", "GET", "/admin", "Bearer hsk_expired", 401, "API key expired", "unauthorized"},
		{"authenticator failure", "GET", "/admin", "Bearer hsk_broken", 500, "Internal Server Error", "internal"},
		{"insufficient", "GET", "/admin", "Bearer hsk_read", 403, "Forbidden: insufficient scope", "forbidden"},
		{"ingest off the ladder", "GET", "/admin", "Bearer hsk_ingest", 403, "Forbidden: insufficient scope", "forbidden"},
		{"admin", "GET", "/admin", "Bearer hsk_admin", 200, "", ""},
		{"ingest ok", "POST", "/ingest", "Bearer hsk_ingest", 200, "", ""},
		{"full-admin ingests", "POST", "/ingest", "Bearer hsk_admin", 200, "", ""},
		{"read cannot ingest", "POST", "/ingest", "Bearer hsk_read", 403, "Forbidden: insufficient scope", "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hdr := map[string]string{}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			rec := do(t, rt, tc.method, tc.path, "", hdr)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if tc.msg == "" {
				return
			}
			body := decodeBody(t, rec)
			if body["error"] != tc.msg || body["code"] != tc.code {
				t.Errorf("body = %v, want error %q code %q", body, tc.msg, tc.code)
			}
		})
	}
}

func TestAuthenticatePrefixGuardsUnknownPaths(t *testing.T) {
	t.Parallel()
	rt := httpapi.NewRouter()
	rt.Use("/v1/admin", httpapi.Authenticate(fakeAuth))
	rt.Handle("GET", "/v1/admin/things", httpapi.RequireScope(nil, httpapi.ScopeRead)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})), httpapi.Doc{})
	if rec := do(t, rt, "GET", "/v1/admin/unknown", "", nil); rec.Code != 401 {
		t.Errorf("unknown path without key: %d, want 401", rec.Code)
	}
	if rec := do(t, rt, "GET", "/v1/admin/unknown", "", map[string]string{"Authorization": "Bearer hsk_read"}); rec.Code != 404 {
		t.Errorf("unknown path with key: %d, want 404", rec.Code)
	}
	if rec := do(t, rt, "GET", "/v1/admin/things", "", map[string]string{"Authorization": "Bearer hsk_read"}); rec.Code != 204 {
		t.Errorf("known path: %d, want 204", rec.Code)
	}
	if rec := do(t, rt, "GET", "/v1/admin/things", "", map[string]string{"Authorization": "Bearer hsk_ingest"}); rec.Code != 403 {
		t.Errorf("wrong scope: %d, want 403", rec.Code)
	}
}

func TestRequireScopePanicsOnUnknownScope(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	httpapi.RequireScope(fakeAuth, "admin")
}
