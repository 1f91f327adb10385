package httpapi

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Doc describes a route for the OpenAPI document.
type Doc struct {
	Summary     string
	Description string
	Tags        []string
	// Scope is the API key scope the route requires; "" marks a route
	// without key auth (public, token or signature checked).
	Scope string
	Query []QueryParam
	// Request is the JSON Schema of the request body; nil when none.
	Request Schema
	// Responses by status; a missing map documents "200 OK".
	Responses map[int]Response
}

// QueryParam documents one query parameter.
type QueryParam struct {
	Name        string
	Description string
	Schema      Schema
	Required    bool
}

// Response documents one response status.
type Response struct {
	Description string
	Schema      Schema // nil for an empty body
}

// Schema is a JSON Schema (OpenAPI 3.1 uses JSON Schema 2020-12).
type Schema map[string]any

// StringSchema is a string.
func StringSchema() Schema { return Schema{"type": "string"} }

// IntegerSchema is an integer.
func IntegerSchema() Schema { return Schema{"type": "integer"} }

// NumberSchema is a number.
func NumberSchema() Schema { return Schema{"type": "number"} }

// BooleanSchema is a boolean.
func BooleanSchema() Schema { return Schema{"type": "boolean"} }

// DateTimeSchema is an ISO-8601 date-time string.
func DateTimeSchema() Schema { return Schema{"type": "string", "format": "date-time"} }

// UUIDSchema is a UUID string.
func UUIDSchema() Schema { return Schema{"type": "string", "format": "uuid"} }

// AnyObject is an object with arbitrary properties.
func AnyObjectSchema() Schema { return Schema{"type": "object"} }

// ArrayOf is an array of items.
func ArraySchema(items Schema) Schema { return Schema{"type": "array", "items": items} }

// Enum is a string restricted to values.
func EnumSchema(values ...string) Schema { return Schema{"type": "string", "enum": values} }

// Nullable allows null besides s.
func NullableSchema(s Schema) Schema {
	out := Schema{}
	for k, v := range s {
		out[k] = v
	}
	if t, ok := s["type"].(string); ok {
		out["type"] = []string{t, "null"}
	}
	return out
}

// Object is an object with the given properties, of which required must be
// present.
func ObjectSchema(props map[string]Schema, required ...string) Schema {
	s := Schema{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// PaginationQuery documents limit and offset.
func PaginationQuery() []QueryParam {
	return []QueryParam{
		{Name: "limit", Description: "page size (1–100, default 50)", Schema: Schema{"type": "integer", "minimum": 1, "maximum": MaxLimit, "default": DefaultLimit}},
		{Name: "offset", Description: "items to skip (default 0)", Schema: Schema{"type": "integer", "minimum": 0, "default": 0}},
	}
}

// OpenAPIInfo is the document's info object.
type OpenAPIInfo struct {
	Title       string
	Version     string
	Description string
}

// OpenAPIPath converts httprouter syntax (":id", "*path") to OpenAPI
// templates ("{id}", "{path}").
func OpenAPIPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

func pathParams(p string) []string {
	var names []string
	for _, s := range strings.Split(p, "/") {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			names = append(names, s[1:])
		}
	}
	return names
}

// OpenAPI returns the OpenAPI 3.1 document of every registered route.
func (rt *Router) OpenAPI(info OpenAPIInfo) map[string]any {
	paths := map[string]map[string]any{}
	for _, r := range rt.routes {
		p := OpenAPIPath(r.Path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(r.Method)] = operation(r.Route)
	}
	infoObj := map[string]any{"title": info.Title, "version": info.Version}
	if info.Description != "" {
		infoObj["description"] = info.Description
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info":    infoObj,
		"paths":   paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"bearerAuth": map[string]any{"type": "http", "scheme": "bearer", "description": "API key (hsk_…)"},
			},
			"schemas": map[string]any{
				"Error": ObjectSchema(map[string]Schema{
					"error":   StringSchema(),
					"code":    EnumSchema("invalid_request", "not_found", "conflict", "unauthorized", "forbidden", "rate_limited", "payload_too_large", "unavailable", "internal"),
					"details": AnyObjectSchema(),
				}, "error", "code"),
			},
		},
	}
}

func operation(r Route) map[string]any {
	d := r.Doc
	op := map[string]any{
		"operationId": operationID(r),
	}
	if d.Summary != "" {
		op["summary"] = d.Summary
	}
	if d.Description != "" {
		op["description"] = d.Description
	}
	if len(d.Tags) > 0 {
		op["tags"] = d.Tags
	}
	if d.Scope != "" {
		op["security"] = []map[string][]string{{"bearerAuth": {}}}
		op["x-required-scope"] = d.Scope
	} else {
		op["security"] = []map[string][]string{}
	}
	var params []map[string]any
	for _, name := range pathParams(r.Path) {
		params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": StringSchema()})
	}
	for _, q := range d.Query {
		p := map[string]any{"name": q.Name, "in": "query", "required": q.Required}
		if q.Description != "" {
			p["description"] = q.Description
		}
		if q.Schema != nil {
			p["schema"] = q.Schema
		} else {
			p["schema"] = StringSchema()
		}
		params = append(params, p)
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if d.Request != nil {
		op["requestBody"] = map[string]any{
			"required": true,
			"content":  map[string]any{"application/json": map[string]any{"schema": d.Request}},
		}
	}
	responses := map[string]any{}
	statuses := make([]int, 0, len(d.Responses))
	for s := range d.Responses {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	for _, s := range statuses {
		resp := d.Responses[s]
		desc := resp.Description
		if desc == "" {
			desc = http.StatusText(s)
		}
		obj := map[string]any{"description": desc}
		if resp.Schema != nil {
			obj["content"] = map[string]any{"application/json": map[string]any{"schema": resp.Schema}}
		}
		responses[strconv.Itoa(s)] = obj
	}
	if len(responses) == 0 {
		responses["200"] = map[string]any{"description": "OK"}
	}
	responses["default"] = map[string]any{
		"description": "Error",
		"content":     map[string]any{"application/json": map[string]any{"schema": Schema{"$ref": "#/components/schemas/Error"}}},
	}
	op["responses"] = responses
	return op
}

func operationID(r Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.Method))
	for _, s := range strings.Split(strings.Trim(r.Path, "/"), "/") {
		if s == "" {
			continue
		}
		b.WriteByte('_')
		if s[0] == ':' || s[0] == '*' {
			b.WriteString("by_")
			s = s[1:]
		}
		b.WriteString(strings.NewReplacer("-", "_", ".", "_").Replace(s))
	}
	return b.String()
}

// OpenAPIHandler serves rt's OpenAPI document as JSON, built per request
// so routes registered after the handler are included.
func OpenAPIHandler(rt *Router, info OpenAPIInfo) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, rt.OpenAPI(info))
	})
}
