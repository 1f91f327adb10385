package engine

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/services/apikey"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/ingest"
)

// routesOf builds the router the way Run does (health routes, then the API
// routes) without starting anything, and returns its routes. Handlers are
// never called, so the stores get no pool and no bus.
func routesOf(t *testing.T, cfg Config) []httpapi.Route {
	t.Helper()
	m := &Main{Config: cfg, reg: prometheus.NewRegistry()}
	router := httpapi.NewRouter()
	m.healthRoutes(router)
	ing, err := ingest.New(nil, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.apiRoutes(router, apikey.New(nil, apikey.Options{}), ing, nil, nil)
	return router.Routes()
}

// usedRoutes are the routes these end-to-end tests call.
var usedRoutes = []string{
	"POST /v1/events", "POST /v1/events/batch",
	"POST /v1/track", "POST /v1/identify", "POST /v1/batch",
	"PUT /v1/contacts", "GET /v1/contacts/find", "DELETE /v1/contacts",
	"GET /v1/admin/contacts", "POST /v1/admin/contacts", "GET /v1/admin/contacts/export",
	"GET /v1/admin/contacts/{id}", "PATCH /v1/admin/contacts/{id}", "DELETE /v1/admin/contacts/{id}",
	"GET /v1/admin/contacts/{id}/timeline",
	"GET /v1/admin/events", "POST /v1/admin/events", "GET /v1/admin/events/{id}",
	"GET /v1/admin/api-keys", "POST /v1/admin/api-keys",
	"GET /v1/admin/dlq", "GET /v1/admin/dlq/{id}", "POST /v1/admin/dlq/{id}/retry", "DELETE /v1/admin/dlq/{id}",
	"GET /v1/health", "GET /v1/health/ready", "GET /v1/openapi.json",
}

// TestOpenAPI checks that the served document lists every route of the
// process, with the scope each route requires.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	m, admin := startApp(t)
	doc, err := admin.WithKey("").OpenAPI(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Info.Title != "Hogsend API" || doc.Info.Version != Version {
		t.Errorf("openapi %q, info %+v", doc.OpenAPI, doc.Info)
	}
	served := map[string]httpapi.Route{}
	for _, r := range routesOf(t, m.Config) {
		served[r.Method+" "+httpapi.OpenAPIPath(r.Path)] = r
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			r, ok := served[key]
			if !ok {
				t.Errorf("documented %s is not routed", key)
				continue
			}
			if op.RequiredScope != r.Doc.Scope || op.OperationID == "" || op.Summary == "" {
				t.Errorf("%s: scope %q operationId %q summary %q; route scope %q", key, op.RequiredScope, op.OperationID, op.Summary, r.Doc.Scope)
			}
		}
	}
	var missing []string
	for key := range served {
		if !documented[key] {
			missing = append(missing, key)
		}
	}
	for _, key := range usedRoutes {
		if !documented[key] {
			missing = append(missing, key+" (used by the tests)")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes missing from /v1/openapi.json:\n%s", strings.Join(missing, "\n"))
	}
	// The retired open ingest route must not come back (spec 10 §1.1).
	if documented["POST /v1/ingest"] {
		t.Error("POST /v1/ingest is routed")
	}
	for key, want := range map[string]string{
		"POST /v1/events": "ingest", "PUT /v1/contacts": "ingest", "GET /v1/admin/contacts": "read",
		"PATCH /v1/admin/contacts/{id}": "journey-admin", "POST /v1/admin/api-keys": "full-admin", "GET /v1/health": "",
	} {
		if got := doc.Paths[key[strings.Index(key, " ")+1:]][strings.ToLower(key[:strings.Index(key, " ")])].RequiredScope; got != want {
			t.Errorf("%s requires %q, want %q", key, got, want)
		}
	}
}
