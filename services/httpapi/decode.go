package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// DefaultMaxBodyBytes is the body limit DecodeJSON applies when given 0.
const DefaultMaxBodyBytes int64 = 1 << 20

// DecodeJSON decodes the request body into dst. The body must carry a JSON
// Content-Type (application/json, parameters allowed) and at most maxBytes
// bytes (DefaultMaxBodyBytes when maxBytes ≤ 0), and hold exactly one JSON
// value. Unknown fields are ignored. Failures are errcode errors:
// payload_too_large, or invalid_request with a message naming the field
// whose value has the wrong type ("eventProperties: must be an object").
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, maxBytes int64) error {
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return errcode.Invalid("Content-Type must be application/json")
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	body := http.MaxBytesReader(w, r.Body, maxBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, maxBytes)
	}
	// Exactly one value: anything but whitespace after it is an error.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return tooLarge(maxBytes)
		}
		return errcode.Invalid("Request body must contain a single JSON value")
	}
	return nil
}

func isJSONContentType(v string) bool {
	if v == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(v)
	return err == nil && mt == "application/json"
}

func tooLarge(limit int64) error {
	return &errcode.Error{
		Code:    errcode.CodePayloadTooLarge,
		Message: fmt.Sprintf("Request body too large (limit %d bytes)", limit),
		Details: map[string]any{"limit": limit},
	}
}

func decodeError(err error, limit int64) error {
	var (
		tooBig    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return tooLarge(limit)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return errcode.InvalidField("", "request body must be "+describeType(typeErr.Type))
		}
		return errcode.InvalidField(field, "must be "+describeType(typeErr.Type))
	case errors.As(err, &syntaxErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errcode.Invalid("Malformed JSON in request body")
	default:
		// Errors from custom unmarshalers and invalid UTF-8 land here.
		return &errcode.Error{Code: errcode.CodeInvalidRequest, Message: "Malformed JSON in request body", Err: err}
	}
}

var timeType = reflect.TypeFor[Time]()

// describeType names what a JSON value must be to decode into t.
func describeType(t reflect.Type) string {
	if t == nil {
		return "a valid value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return "an ISO-8601 UTC date-time ending in Z"
	}
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "a valid value"
	}
}

// QueryInt reads the integer query parameter name: absent or empty → def;
// not an integer or outside [min, max] → invalid_request naming the
// parameter.
func QueryInt(r *http.Request, name string, def, min, max int) (int, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return 0, errcode.InvalidField(name, "must be an integer")
	}
	if v < min || v > max {
		switch {
		case max == math.MaxInt:
			return 0, errcode.InvalidField(name, fmt.Sprintf("must be at least %d", min))
		default:
			return 0, errcode.InvalidField(name, fmt.Sprintf("must be between %d and %d", min, max))
		}
	}
	return v, nil
}

// QueryBool reads a "true"/"false" query parameter: absent or empty → def,
// anything else → invalid_request naming the parameter.
func QueryBool(r *http.Request, name string, def bool) (bool, error) {
	switch r.URL.Query().Get(name) {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, errcode.InvalidField(name, `must be "true" or "false"`)
	}
}

// QueryFilterBool reads an optional boolean filter: nil when the
// parameter is absent, else its value (the admin lists' enabled filter).
func QueryFilterBool(r *http.Request, name string) (*bool, error) {
	if r.URL.Query().Get(name) == "" {
		return nil, nil
	}
	v, err := QueryBool(r, name, false)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// Pagination limits: admin lists take limit 1–100 (default 50) and
// offset ≥ 0 (default 0).
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// Pagination reads the limit and offset query parameters.
func Pagination(r *http.Request) (limit, offset int, err error) {
	if limit, err = QueryInt(r, "limit", DefaultLimit, 1, MaxLimit); err != nil {
		return 0, 0, err
	}
	if offset, err = QueryInt(r, "offset", 0, 0, math.MaxInt); err != nil {
		return 0, 0, err
	}
	return limit, offset, nil
}

// Page is the envelope fields every paginated list carries beside its
// items.
type Page struct {
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// ParamUUID reads the route parameter name as a UUID in its canonical
// 36-character form; anything else is invalid_request naming it.
func ParamUUID(r *http.Request, name string) (uuid.UUID, error) {
	raw := Param(r, name)
	if len(raw) != 36 {
		return uuid.Nil, errcode.InvalidField(name, "must be a UUID")
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, errcode.InvalidField(name, "must be a UUID")
	}
	return id, nil
}

// DecodeEnabled decodes a switch body, {"enabled": true|false}: a missing
// or null field and a wrong type are 400s naming the field (the admin
// PATCH routes of buckets and journeys).
func DecodeEnabled(w http.ResponseWriter, r *http.Request, maxBytes int64) (bool, error) {
	var req struct {
		// Raw, so that a missing field and null are told apart from a
		// wrong type.
		Enabled json.RawMessage `json:"enabled"`
	}
	if err := DecodeJSON(w, r, &req, maxBytes); err != nil {
		return false, err
	}
	switch string(bytes.TrimSpace(req.Enabled)) {
	case "":
		return false, errcode.InvalidField("enabled", "is required")
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errcode.InvalidField("enabled", "must be a boolean")
}

// PageOf is the slice of items that limit and offset (as Pagination reads
// them) select, for routes that page over in-memory registries.
func PageOf[T any](items []T, limit, offset int) []T {
	if offset >= len(items) {
		return nil
	}
	return items[offset:min(offset+limit, len(items))]
}
