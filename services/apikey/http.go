package apikey

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

// keyJSON is a key in API responses.
type keyJSON struct {
	ID         uuid.UUID     `json:"id"`
	Name       string        `json:"name"`
	KeyPrefix  string        `json:"keyPrefix"`
	Scopes     []string      `json:"scopes"`
	CreatedBy  *string       `json:"createdBy"`
	LastUsedAt *httpapi.Time `json:"lastUsedAt"`
	RevokedAt  *httpapi.Time `json:"revokedAt"`
	ExpiresAt  *httpapi.Time `json:"expiresAt"`
	CreatedAt  httpapi.Time  `json:"createdAt"`
}

func toJSON(k APIKey) keyJSON {
	return keyJSON{
		ID:         k.ID,
		Name:       k.Name,
		KeyPrefix:  k.KeyPrefix,
		Scopes:     k.Scopes,
		CreatedBy:  k.CreatedBy,
		LastUsedAt: httpapi.TimePtr(k.LastUsedAt),
		RevokedAt:  httpapi.TimePtr(k.RevokedAt),
		ExpiresAt:  httpapi.TimePtr(k.ExpiresAt),
		CreatedAt:  httpapi.NewTime(k.CreatedAt),
	}
}

type listResponse struct {
	Keys []keyJSON `json:"keys"`
	httpapi.Page
}

type createRequest struct {
	Name      *string       `json:"name"`
	Scopes    []string      `json:"scopes"`
	ExpiresAt *httpapi.Time `json:"expiresAt"`
}

type createResponse struct {
	ID        uuid.UUID     `json:"id"`
	Name      string        `json:"name"`
	Key       string        `json:"key"`
	KeyPrefix string        `json:"keyPrefix"`
	Scopes    []string      `json:"scopes"`
	ExpiresAt *httpapi.Time `json:"expiresAt"`
	CreatedAt httpapi.Time  `json:"createdAt"`
}

// Routes registers /v1/admin/api-keys (list, create, revoke), all
// requiring full-admin through auth (usually the Store itself, or an
// authenticator that also knows login cookies).
func (s *Store) Routes(r *httpapi.Router, auth httpapi.Authenticator) {
	guard := httpapi.RequireScope(auth, httpapi.ScopeFullAdmin)
	tags := []string{"API keys"}
	keySchema := httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id":         httpapi.UUIDSchema(),
		"name":       httpapi.StringSchema(),
		"keyPrefix":  httpapi.StringSchema(),
		"scopes":     httpapi.ArraySchema(scopeSchema()),
		"createdBy":  httpapi.NullableSchema(httpapi.StringSchema()),
		"lastUsedAt": httpapi.NullableSchema(httpapi.DateTimeSchema()),
		"revokedAt":  httpapi.NullableSchema(httpapi.DateTimeSchema()),
		"expiresAt":  httpapi.NullableSchema(httpapi.DateTimeSchema()),
		"createdAt":  httpapi.DateTimeSchema(),
	})

	r.Handle(http.MethodGet, "/v1/admin/api-keys", guard(http.HandlerFunc(s.handleList)), httpapi.Doc{
		Summary: "List API keys", Tags: tags, Scope: httpapi.ScopeFullAdmin,
		Query: append(httpapi.PaginationQuery(), httpapi.QueryParam{
			Name: "includeRevoked", Description: `"true" to include revoked keys (default "false")`,
			Schema: httpapi.EnumSchema("true", "false"),
		}),
		Responses: map[int]httpapi.Response{200: {Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"keys":   httpapi.ArraySchema(keySchema),
			"total":  httpapi.IntegerSchema(),
			"limit":  httpapi.IntegerSchema(),
			"offset": httpapi.IntegerSchema(),
		}, "keys", "total", "limit", "offset")}},
	})
	r.Handle(http.MethodPost, "/v1/admin/api-keys", guard(http.HandlerFunc(s.handleCreate)), httpapi.Doc{
		Summary: "Create an API key", Tags: tags, Scope: httpapi.ScopeFullAdmin,
		Description: "The plaintext key is returned once, in this response.",
		Request: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"name":      {"type": "string", "minLength": 1, "maxLength": 100},
			"scopes":    {"type": "array", "items": scopeSchema(), "minItems": 1, "default": []string{"read"}},
			"expiresAt": {"type": "string", "format": "date-time", "description": "UTC, ending in Z"},
		}, "name"),
		Responses: map[int]httpapi.Response{201: {Description: "Created", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"id":        httpapi.UUIDSchema(),
			"name":      httpapi.StringSchema(),
			"key":       httpapi.StringSchema(),
			"keyPrefix": httpapi.StringSchema(),
			"scopes":    httpapi.ArraySchema(scopeSchema()),
			"expiresAt": httpapi.NullableSchema(httpapi.DateTimeSchema()),
			"createdAt": httpapi.DateTimeSchema(),
		})}},
	})
	r.Handle(http.MethodDelete, "/v1/admin/api-keys/:id", guard(http.HandlerFunc(s.handleRevoke)), httpapi.Doc{
		Summary: "Revoke an API key", Tags: tags, Scope: httpapi.ScopeFullAdmin,
		Responses: map[int]httpapi.Response{200: {Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{"revoked": httpapi.BooleanSchema()})}},
	})
}

func scopeSchema() httpapi.Schema { return httpapi.EnumSchema(httpapi.Scopes()...) }

func (s *Store) handleList(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	includeRevoked, err := httpapi.QueryBool(r, "includeRevoked", false)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	keys, total, err := s.List(r.Context(), ListParams{IncludeRevoked: includeRevoked, Limit: limit, Offset: offset})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := listResponse{Keys: make([]keyJSON, len(keys)), Page: httpapi.Page{Total: total, Limit: limit, Offset: offset}}
	for i, k := range keys {
		out.Keys[i] = toJSON(k)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (s *Store) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := httpapi.DecodeJSON(w, r, &req, 0); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if req.Name == nil {
		httpapi.WriteError(w, r, errcode.InvalidField("name", "is required"))
		return
	}
	params := CreateParams{Name: *req.Name, Scopes: req.Scopes, ExpiresAt: req.ExpiresAt.Std()}
	// The creator is recorded by key name; logins without a key leave it
	// null.
	if p, ok := httpapi.PrincipalFrom(r.Context()); ok && p.KeyID != "" {
		name := p.Name
		params.CreatedBy = &name
	}
	created, err := s.Create(r.Context(), params)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	k := created.Key
	httpapi.WriteJSON(w, http.StatusCreated, createResponse{
		ID:        k.ID,
		Name:      k.Name,
		Key:       created.Plaintext,
		KeyPrefix: k.KeyPrefix,
		Scopes:    k.Scopes,
		ExpiresAt: httpapi.TimePtr(k.ExpiresAt),
		CreatedAt: httpapi.NewTime(k.CreatedAt),
	})
}

func (s *Store) handleRevoke(w http.ResponseWriter, r *http.Request) {
	id, err := httpapi.ParamUUID(r, "id")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := s.Revoke(r.Context(), id); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]bool{"revoked": true})
}
