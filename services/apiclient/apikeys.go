package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// APIKey is an item of the API key list.
type APIKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	KeyPrefix  string     `json:"keyPrefix"`
	Scopes     []string   `json:"scopes"`
	CreatedBy  *string    `json:"createdBy"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	RevokedAt  *time.Time `json:"revokedAt"`
	ExpiresAt  *time.Time `json:"expiresAt"`
	CreatedAt  time.Time  `json:"createdAt"`
}

// APIKeyList is a page of keys.
type APIKeyList struct {
	Keys   []APIKey `json:"keys"`
	Total  int      `json:"total"`
	Limit  int      `json:"limit"`
	Offset int      `json:"offset"`
}

// ListAPIKeysParams filters the list; zero values use the server defaults.
type ListAPIKeysParams struct {
	IncludeRevoked bool
	Limit, Offset  int
}

// CreateAPIKey is the create request. ExpiresAt is sent in UTC.
type CreateAPIKey struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// CreatedAPIKey is the create response, the only place the key appears.
type CreatedAPIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Key       string     `json:"key"`
	KeyPrefix string     `json:"keyPrefix"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expiresAt"`
	CreatedAt time.Time  `json:"createdAt"`
}

// ListAPIKeys calls GET /v1/admin/api-keys.
func (c *Client) ListAPIKeys(ctx context.Context, p ListAPIKeysParams) (APIKeyList, error) {
	var out APIKeyList
	q := query(
		"includeRevoked", map[bool]string{true: "true"}[p.IncludeRevoked],
		"limit", intOrEmpty(p.Limit),
		"offset", intOrEmpty(p.Offset),
	)
	err := c.Do(ctx, http.MethodGet, "/v1/admin/api-keys"+q, nil, &out)
	return out, err
}

// CreateAPIKey calls POST /v1/admin/api-keys.
func (c *Client) CreateAPIKey(ctx context.Context, req CreateAPIKey) (CreatedAPIKey, error) {
	if req.ExpiresAt != nil {
		t := req.ExpiresAt.UTC()
		req.ExpiresAt = &t
	}
	var out CreatedAPIKey
	err := c.Do(ctx, http.MethodPost, "/v1/admin/api-keys", req, &out)
	return out, err
}

// RevokeAPIKey calls DELETE /v1/admin/api-keys/{id}.
func (c *Client) RevokeAPIKey(ctx context.Context, id string) error {
	var out struct {
		Revoked bool `json:"revoked"`
	}
	return c.Do(ctx, http.MethodDelete, "/v1/admin/api-keys/"+url.PathEscape(id), nil, &out)
}

func intOrEmpty(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}
