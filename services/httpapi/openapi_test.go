package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

func TestOpenAPIListsEveryRoute(t *testing.T) {
	t.Parallel()
	rt := httpapi.NewRouter()
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	rt.Handle("GET", "/v1/admin/api-keys", noop, httpapi.Doc{Summary: "List API keys", Scope: httpapi.ScopeFullAdmin, Query: httpapi.PaginationQuery()})
	rt.Handle("POST", "/v1/admin/api-keys", noop, httpapi.Doc{
		Summary: "Create an API key", Scope: httpapi.ScopeFullAdmin,
		Request:   httpapi.ObjectSchema(map[string]httpapi.Schema{"name": httpapi.StringSchema()}, "name"),
		Responses: map[int]httpapi.Response{201: {Schema: httpapi.AnyObjectSchema()}},
	})
	rt.Handle("DELETE", "/v1/admin/api-keys/:id", noop, httpapi.Doc{Scope: httpapi.ScopeFullAdmin})
	rt.Handle("GET", "/v1/admin/contacts/:contactId/preferences", noop, httpapi.Doc{})
	rt.Handle("GET", "/studio/*filepath", noop, httpapi.Doc{})
	rt.Handle("GET", "/v1/openapi.json", httpapi.OpenAPIHandler(rt, httpapi.OpenAPIInfo{Title: "Hogsend", Version: "test"}), httpapi.Doc{Summary: "This document"})

	rec := do(t, rt, "GET", "/v1/openapi.json", "", nil)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
		Comps   struct {
			SecuritySchemes map[string]map[string]string `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	if doc.Comps.SecuritySchemes["bearerAuth"]["scheme"] != "bearer" {
		t.Errorf("security schemes = %v", doc.Comps.SecuritySchemes)
	}
	for _, r := range rt.Routes() {
		ops, ok := doc.Paths[httpapi.OpenAPIPath(r.Path)]
		if !ok {
			t.Errorf("path %s missing", httpapi.OpenAPIPath(r.Path))
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok {
			t.Errorf("%s %s missing", r.Method, r.Path)
		}
	}
	if _, ok := doc.Paths["/v1/admin/api-keys/{id}"]; !ok {
		t.Error("path parameters not converted")
	}
	if _, ok := doc.Paths["/studio/{filepath}"]; !ok {
		t.Error("catch-all not converted")
	}

	var del struct {
		Parameters []struct {
			Name, In string
			Required bool
		} `json:"parameters"`
		Security []map[string][]string `json:"security"`
		Scope    string                `json:"x-required-scope"`
	}
	if err := json.Unmarshal(doc.Paths["/v1/admin/api-keys/{id}"]["delete"], &del); err != nil {
		t.Fatal(err)
	}
	if len(del.Parameters) != 1 || del.Parameters[0].Name != "id" || del.Parameters[0].In != "path" || !del.Parameters[0].Required {
		t.Errorf("parameters = %+v", del.Parameters)
	}
	if len(del.Security) != 1 || del.Scope != "full-admin" {
		t.Errorf("security = %v scope %q", del.Security, del.Scope)
	}
}
