package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Readiness answers GET /v1/health/ready.
type Readiness struct {
	Status     string                        `json:"status"`
	Components map[string]ReadinessComponent `json:"components"`
}

// ReadinessComponent is the state of one dependency or consumer.
type ReadinessComponent struct {
	Status string `json:"status"`
	// Lag is the consumer backlog (contacts).
	Lag   *uint64 `json:"lag,omitempty"`
	Error string  `json:"error,omitempty"`
}

// Ready calls GET /v1/health/ready. A 503 returns the decoded body too,
// with an *Error.
func (c *Client) Ready(ctx context.Context) (Readiness, error) {
	var out Readiness
	resp, err := c.Send(ctx, http.MethodGet, "/v1/health/ready", nil)
	if err != nil {
		return out, err
	}
	if jerr := json.Unmarshal(resp.Body, &out); jerr != nil && resp.Err() == nil {
		return out, fmt.Errorf("decode response %q: %w", resp.Body, jerr)
	}
	return out, resp.Err()
}

// OpenAPIOperation is the part of an operation clients check.
type OpenAPIOperation struct {
	OperationID   string `json:"operationId"`
	Summary       string `json:"summary"`
	RequiredScope string `json:"x-required-scope"`
}

// OpenAPIDocument is the part of the OpenAPI document clients check.
type OpenAPIDocument struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	// Paths maps an OpenAPI path template to its operations by lower-case
	// method.
	Paths map[string]map[string]OpenAPIOperation `json:"paths"`
}

// OpenAPI calls GET /v1/openapi.json.
func (c *Client) OpenAPI(ctx context.Context) (OpenAPIDocument, error) {
	var out OpenAPIDocument
	err := c.Do(ctx, http.MethodGet, "/v1/openapi.json", nil, &out)
	return out, err
}
