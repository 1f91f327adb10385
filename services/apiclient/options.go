package apiclient

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// RequestOption adjusts one request after the client set its defaults
// (Content-Type and the bearer key).
type RequestOption func(*http.Request)

// WithHeader sets a request header; an empty value removes it (e.g.
// WithHeader("Content-Type", "") sends a body without a Content-Type).
func WithHeader(name, value string) RequestOption {
	return func(r *http.Request) {
		if value == "" {
			r.Header.Del(name)
			return
		}
		r.Header.Set(name, value)
	}
}

// WithIdempotencyKey sends the Idempotency-Key header, which wins over a
// body key even when empty.
func WithIdempotencyKey(key string) RequestOption {
	return func(r *http.Request) { r.Header["Idempotency-Key"] = []string{key} }
}

// WithBasicAuth sends the client's key as the HTTP Basic user name with an
// empty password, as Segment libraries send their write key.
func WithBasicAuth() RequestOption {
	return func(r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return
		}
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(key+":")))
	}
}
