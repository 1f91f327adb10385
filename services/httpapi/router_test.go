package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

// echo answers with its name and the given route parameters.
func echo(name string, params ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := map[string]string{"route": name}
		for _, p := range params {
			out[p] = httpapi.Param(r, p)
		}
		httpapi.WriteJSON(w, http.StatusOK, out)
	})
}

func do(t *testing.T, h http.Handler, method, target string, body string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("decode body %q: %v", rec.Body.String(), err)
	}
	return m
}

func TestRouterDispatch(t *testing.T) {
	t.Parallel()
	rt := httpapi.NewRouter()
	// Registration order is deliberately unfriendly: parameters first.
	rt.Handle("GET", "/v1/admin/contacts/:id", echo("contact", "id"), httpapi.Doc{})
	rt.Handle("GET", "/v1/admin/contacts/export", echo("export"), httpapi.Doc{})
	rt.Handle("POST", "/v1/admin/contacts/import", echo("import"), httpapi.Doc{})
	rt.Handle("GET", "/v1/admin/contacts/import/:jobId", echo("importStatus", "jobId"), httpapi.Doc{})
	rt.Handle("GET", "/v1/admin/contacts/:contactId/preferences", echo("prefs", "contactId"), httpapi.Doc{})
	rt.Handle("GET", "/v1/admin/contacts/:id/timeline", echo("timeline", "id"), httpapi.Doc{})
	rt.Handle("POST", "/v1/webhooks/:sourceId", echo("source", "sourceId"), httpapi.Doc{})
	rt.Handle("POST", "/v1/webhooks/resend", echo("resend"), httpapi.Doc{})
	rt.Handle("GET", "/v1/admin/contacts", echo("contacts"), httpapi.Doc{})

	tests := []struct {
		name, method, path string
		status             int
		want               map[string]any
	}{
		{"param", "GET", "/v1/admin/contacts/abc", 200, map[string]any{"route": "contact", "id": "abc"}},
		{"static beats param", "GET", "/v1/admin/contacts/export", 200, map[string]any{"route": "export"}},
		{"static other method", "POST", "/v1/admin/contacts/import", 200, map[string]any{"route": "import"}},
		{"static then param", "GET", "/v1/admin/contacts/import/j1", 200, map[string]any{"route": "importStatus", "jobId": "j1"}},
		{"other param name", "GET", "/v1/admin/contacts/c9/preferences", 200, map[string]any{"route": "prefs", "contactId": "c9"}},
		{"param subpath", "GET", "/v1/admin/contacts/c9/timeline", 200, map[string]any{"route": "timeline", "id": "c9"}},
		{"static wins when registered later", "POST", "/v1/webhooks/resend", 200, map[string]any{"route": "resend"}},
		{"param sibling", "POST", "/v1/webhooks/stripe", 200, map[string]any{"route": "source", "sourceId": "stripe"}},
		{"bare", "GET", "/v1/admin/contacts", 200, map[string]any{"route": "contacts"}},
		{"head falls back to get", "HEAD", "/v1/admin/contacts", 200, nil},
		{"unknown path", "GET", "/nope", 404, map[string]any{"error": "Not Found", "code": "not_found"}},
		{"trailing slash is not redirected", "GET", "/v1/admin/contacts/", 404, map[string]any{"error": "Not Found", "code": "not_found"}},
		{"method not allowed is 404", "DELETE", "/v1/admin/contacts", 404, map[string]any{"error": "Not Found", "code": "not_found"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := do(t, rt, tc.method, tc.path, "", nil)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if tc.want == nil {
				return
			}
			got := decodeBody(t, rec)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (body %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestRouterRejectsDuplicatesAndBadPaths(t *testing.T) {
	t.Parallel()
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	rt := httpapi.NewRouter()
	rt.Handle("GET", "/a/:id", echo("a"), httpapi.Doc{})
	mustPanic("duplicate", func() { rt.Handle("GET", "/a/:id", echo("a"), httpapi.Doc{}) })
	mustPanic("same shape", func() { rt.Handle("GET", "/a/:other", echo("a"), httpapi.Doc{}) })
	mustPanic("no leading slash", func() { rt.Handle("GET", "a", echo("a"), httpapi.Doc{}) })
	if n := len(rt.Routes()); n != 1 {
		t.Errorf("routes = %d, want 1", n)
	}
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	rt := httpapi.NewRouter()
	called := false
	rt.Use("/v1/admin", func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true; next.ServeHTTP(w, r) })
	})
	for _, path := range []string{"/v1/admin/api-keys", "/anything/at/all"} {
		rec := do(t, rt, "OPTIONS", path, "", map[string]string{"Access-Control-Request-Headers": "authorization,content-type"})
		if rec.Code != http.StatusNoContent {
			t.Errorf("%s: status = %d, want 204", path, rec.Code)
		}
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("%s: Allow-Origin = %q", path, got)
		}
		if got := rec.Header().Get("Access-Control-Allow-Headers"); got != "authorization,content-type" {
			t.Errorf("%s: Allow-Headers = %q", path, got)
		}
		if rec.Header().Get("Access-Control-Allow-Methods") == "" {
			t.Errorf("%s: no Allow-Methods", path)
		}
	}
	if called {
		t.Error("prefix middleware ran for a preflight")
	}
	rec := do(t, rt, "GET", "/nope", "", nil)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("plain response Allow-Origin = %q", got)
	}
}

func TestUsePrefix(t *testing.T) {
	t.Parallel()
	rt := httpapi.NewRouter()
	rt.Handle("GET", "/v1/admin/x", echo("x"), httpapi.Doc{})
	rt.Handle("GET", "/v1/administrator", echo("other"), httpapi.Doc{})
	deny := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	}
	rt.Use("/v1/admin/", deny)
	tests := []struct {
		path   string
		status int
	}{
		{"/v1/admin/x", http.StatusTeapot},
		{"/v1/admin/unknown", http.StatusTeapot}, // before routing: unknown paths too
		{"/v1/admin", http.StatusTeapot},
		{"/v1/administrator", http.StatusOK},
	}
	for _, tc := range tests {
		if rec := do(t, rt, "GET", tc.path, "", nil); rec.Code != tc.status {
			t.Errorf("%s: status = %d, want %d", tc.path, rec.Code, tc.status)
		}
	}
}
