// Package ingest accepts product events over HTTP (the reference
// POST /v1/events contract, a batch form and Segment-compatible routes) and
// over NATS, validates them, and publishes each to the EVENTS stream. It
// answers once JetStream has stored the event; everything else happens in
// the consumers.
package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/streams"
)

// EventRequest is the body of POST /v1/events (spec 10 §1.1).
type EventRequest struct {
	Name              *string         `json:"name"`
	Email             *string         `json:"email"`
	UserID            *string         `json:"userId"`
	EventProperties   json.RawMessage `json:"eventProperties"`
	ContactProperties json.RawMessage `json:"contactProperties"`
	Lists             map[string]bool `json:"lists"`
	IdempotencyKey    *string         `json:"idempotencyKey"`
	Timestamp         *string         `json:"timestamp"`
}

// EventResult is the 202 answer for one accepted event.
type EventResult struct {
	ID     string `json:"id"`
	Stored bool   `json:"stored"`
}

// maxNameLength bounds event names; the reference has no limit but a
// subject-sized name keeps history indexes sane.
const maxNameLength = 255

// reservedPrefixes are event names only the engine emits; accepting them
// from outside would let callers forge segment and journey transitions.
var reservedPrefixes = []string{"bucket:", "journey:"}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

// objectField validates an optional object field: absent is fine, null or
// any other type is a 400 naming the field.
func objectField(name string, raw json.RawMessage) (json.RawMessage, error) {
	if raw == nil {
		return nil, nil
	}
	if !isObject(raw) {
		return nil, errcode.InvalidField(name, "must be an object")
	}
	// No compaction here: encoding the envelope compacts raw values.
	return raw, nil
}

// ToEvent validates the request and builds the envelope. headerKey is the
// Idempotency-Key header: when present it wins over the body key, even
// when empty.
func (r *EventRequest) ToEvent(headerKey *string, now time.Time, source string) (*streams.Event, error) {
	if r.Name == nil {
		return nil, errcode.InvalidField("name", "required")
	}
	name := *r.Name
	if name == "" {
		return nil, errcode.InvalidField("name", "must not be empty")
	}
	if len(name) > maxNameLength {
		return nil, errcode.InvalidField("name", fmt.Sprintf("must be at most %d characters", maxNameLength))
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	e := &streams.Event{V: streams.EnvelopeVersion, Type: streams.TypeTrack, Name: name, ReceivedAt: now.UTC(), Source: source}
	if r.Email != nil {
		if !httpapi.ValidEmail(*r.Email) {
			return nil, errcode.InvalidField("email", "must be a valid email address")
		}
		e.Email = *r.Email
	}
	if r.UserID != nil {
		if *r.UserID == "" {
			return nil, errcode.InvalidField("userId", "must not be empty")
		}
		e.UserID = strings.TrimSpace(*r.UserID)
	}
	if e.UserID == "" && e.Email == "" {
		// A whitespace-only userId lands here too (the reference answers 500).
		return nil, errcode.Invalid("email or userId is required")
	}
	var err error
	if e.EventProperties, err = objectField("eventProperties", r.EventProperties); err != nil {
		return nil, err
	}
	if e.ContactProperties, err = objectField("contactProperties", r.ContactProperties); err != nil {
		return nil, err
	}
	e.Lists = r.Lists
	switch {
	case headerKey != nil:
		e.IdempotencyKey = *headerKey
	case r.IdempotencyKey != nil:
		e.IdempotencyKey = *r.IdempotencyKey
	}
	if r.Timestamp != nil {
		t, ok := httpapi.ParseTime(*r.Timestamp)
		if !ok {
			return nil, errcode.InvalidField("timestamp", "must be an ISO-8601 UTC date-time ending in Z")
		}
		e.Timestamp = &t
	}
	e.ID = NewID()
	return e, nil
}

// CheckName refuses the event names only the engine may emit.
func CheckName(name string) error {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return errcode.InvalidField("name", fmt.Sprintf("events starting with %q are emitted by the engine and cannot be ingested", p))
		}
	}
	return nil
}

// NewID returns a new event id (UUIDv7, so ids sort by time).
func NewID() string { return uuid.Must(uuid.NewV7()).String() }
