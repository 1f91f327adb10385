package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"time"
)

// TimeLayout is the wire format of times: ISO-8601 UTC with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Time is a time.Time that encodes as TimeLayout in UTC and decodes only
// what ParseTime accepts (bad input names the field in DecodeJSON errors).
// Use *Time for nullable fields.
type Time struct{ time.Time }

// NewTime wraps t.
func NewTime(t time.Time) Time { return Time{t} }

// TimePtr wraps t, keeping nil as nil (for nullable JSON fields).
func TimePtr(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	return &Time{*t}
}

// Std returns the wrapped time, or nil for a nil *Time.
func (t *Time) Std() *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

// FormatTime formats t as TimeLayout in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

var utcTimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z$`)

// ParseTime parses an ISO-8601 date-time in UTC with a trailing Z
// (seconds optional, any number of fraction digits), the form Zod's
// datetime() accepts; offsets and zone-less or date-only forms fail.
func ParseTime(s string) (time.Time, bool) {
	if !utcTimeRE.MatchString(s) {
		return time.Time{}, false
	}
	if len(s) == len("2006-01-02T15:04Z") {
		s = s[:len(s)-1] + ":00Z"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// UnmarshalJSON implements json.Unmarshaler. Bad input is reported as a
// *json.UnmarshalTypeError so DecodeJSON can name the field.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if v, ok := ParseTime(s); ok {
			t.Time = v
			return nil
		}
	}
	return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[Time]()}
}
