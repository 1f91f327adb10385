// Package apiclient is a small typed client for the Hogsend HTTP API, used
// by black-box tests (and usable by tools). It speaks only the wire
// format: it imports no service package.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client calls one Hogsend server with one API key.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:3002, no trailing slash
	Key     string // bearer key; empty sends no Authorization header
	HTTP    *http.Client
}

// New returns a client for baseURL authenticating with key.
func New(baseURL, key string) *Client {
	return &Client{BaseURL: strings.TrimSuffix(baseURL, "/"), Key: key, HTTP: http.DefaultClient}
}

// WithKey returns a copy of c using key.
func (c *Client) WithKey(key string) *Client {
	cp := *c
	cp.Key = key
	return &cp
}

// Error is a non-2xx answer.
type Error struct {
	Status  int
	Message string         `json:"error"`
	Code    string         `json:"code"`
	Details map[string]any `json:"details"`
	Header  http.Header    `json:"-"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Do sends body (JSON-encoded when non-nil) and decodes a 2xx answer into
// out (when non-nil). Other statuses return *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.DoHeader(ctx, method, path, body, out)
	return err
}

// DoHeader is Do that also returns the response headers.
func (c *Client) DoHeader(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	return c.DoRequest(ctx, method, path, body, out)
}

// DoRequest is DoHeader with request options (extra headers, Basic auth).
// A RawBody is sent verbatim; any other non-nil body is JSON-encoded.
func (c *Client) DoRequest(ctx context.Context, method, path string, body, out any, opts ...RequestOption) (http.Header, error) {
	resp, err := c.Send(ctx, method, path, body, opts...)
	if err != nil {
		return nil, err
	}
	if err := resp.Err(); err != nil {
		return resp.Header, err
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return resp.Header, fmt.Errorf("decode response %q: %w", resp.Body, err)
		}
	}
	return resp.Header, nil
}

// RawBody is a request body sent as is (still with a JSON Content-Type
// unless an option removes it), e.g. to exercise malformed input.
type RawBody []byte

// Response is an answer of any status.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Err returns nil for a 2xx answer and an *Error otherwise.
func (r *Response) Err() error {
	if r.Status >= 200 && r.Status <= 299 {
		return nil
	}
	e := &Error{Status: r.Status, Header: r.Header}
	if err := json.Unmarshal(r.Body, e); err != nil {
		e.Message = string(r.Body)
	}
	return e
}

// Send performs one request and returns the answer whatever its status;
// the error is only about transport and encoding.
func (c *Client) Send(ctx context.Context, method, path string, body any, opts ...RequestOption) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case RawBody:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	for _, o := range opts {
		o(req)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// query builds "?a=b&…" from non-empty values.
func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}
