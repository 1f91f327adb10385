// Package streams defines what travels on JetStream: the event envelope,
// the messages derived from it, subject builders and the stream
// definitions. It imports only the standard library so every other package
// can depend on it.
package streams

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// EnvelopeVersion is the current version of Event. Consumers accept every
// version up to it.
const EnvelopeVersion = 1

// Event types. A track event is a product event stored in history; identify
// patches contact properties; delete soft-deletes the contacts it matches.
const (
	TypeTrack    = "track"
	TypeIdentify = "identify"
	TypeAlias    = "alias"
	TypeDelete   = "delete"
)

// Event is the envelope every ingestion path publishes to EVENTS. The field
// names follow the reference HTTP contract (spec 10 §1.1) so the body of
// POST /v1/events maps onto it one to one.
type Event struct {
	V    int    `json:"v"`
	ID   string `json:"id"`
	Type string `json:"type"`
	// Name is the event name (track) or empty.
	Name              string          `json:"name,omitempty"`
	UserID            string          `json:"userId,omitempty"`
	AnonymousID       string          `json:"anonymousId,omitempty"`
	Email             string          `json:"email,omitempty"`
	EventProperties   json.RawMessage `json:"eventProperties,omitempty"`
	ContactProperties json.RawMessage `json:"contactProperties,omitempty"`
	Lists             map[string]bool `json:"lists,omitempty"`
	IdempotencyKey    string          `json:"idempotencyKey,omitempty"`
	// Timestamp is the client's occurrence time; nil means ReceivedAt.
	Timestamp  *time.Time `json:"timestamp,omitempty"`
	ReceivedAt time.Time  `json:"receivedAt"`
	// Source names the ingestion path: api, batch, segment, nats, admin,
	// system, bucket, journey, webhook:<id>.
	Source string `json:"source"`
	// ContactID, when set, addresses one contact by id (admin writes).
	ContactID string `json:"contactId,omitempty"`
	// Notify asks the contacts projection to announce the outcome on
	// AppliedSubject(ID); write routes set it to answer read-your-writes.
	Notify bool `json:"notify,omitempty"`
}

// Engine reports whether the event is one the engine emits (segment and
// journey transitions): such events are never resolved as identity input,
// they are recorded for the contact they name by ContactID.
func (e *Event) Engine() bool {
	return strings.HasPrefix(e.Name, "bucket:") || strings.HasPrefix(e.Name, "journey:")
}

// Lifecycle reports whether the event is a journey lifecycle event
// (journey:completed, journey:failed): it travels to ACTIVITY for the
// outbound webhooks but is never stored in history (spec 10 §5.3.5).
func (e *Event) Lifecycle() bool { return strings.HasPrefix(e.Name, "journey:") }

// MsgID is the JetStream dedupe id of the event: its idempotency key when
// given, else its id.
func (e *Event) MsgID() string {
	if e.IdempotencyKey != "" {
		return "idem:" + e.IdempotencyKey
	}
	return e.ID
}

// OccurredAt is the time the event happened.
func (e *Event) OccurredAt() time.Time {
	if e.Timestamp != nil {
		return *e.Timestamp
	}
	return e.ReceivedAt
}

// PartitionKey is the routing key of the event: userId, else anonymousId,
// else the lower-cased email, else the contact id.
func (e *Event) PartitionKey() string {
	switch {
	case e.UserID != "":
		return "u:" + e.UserID
	case e.AnonymousID != "":
		return "a:" + e.AnonymousID
	case e.Email != "":
		return "e:" + lowerASCII(e.Email)
	default:
		return "c:" + e.ContactID
	}
}

// Contact is the snapshot of a contact carried on ACTIVITY and returned by
// projection notifications.
type Contact struct {
	ID          string          `json:"id"`
	ExternalID  *string         `json:"externalId"`
	Email       *string         `json:"email"`
	AnonymousID *string         `json:"anonymousId,omitempty"`
	Properties  json.RawMessage `json:"properties"`
	FirstSeenAt time.Time       `json:"firstSeenAt"`
	LastSeenAt  time.Time       `json:"lastSeenAt"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	DeletedAt   *time.Time      `json:"deletedAt,omitempty"`
}

// Activity is an EVENTS message after the contacts projection applied it.
type Activity struct {
	V     int   `json:"v"`
	Event Event `json:"event"`
	// Seq is the EVENTS stream sequence of the event.
	Seq       uint64 `json:"seq"`
	ContactID string `json:"contactId"`
	// Key is the contact's resolved key (external id, else anonymous id,
	// else contact id), the user_id of its history rows.
	Key     string  `json:"key"`
	Contact Contact `json:"contact"`
	// Stored is false when the event was a duplicate by idempotency key.
	Stored  bool `json:"stored"`
	Created bool `json:"created"`
	Linked  bool `json:"linked"`
	Merged  bool `json:"merged"`
	// Folds lists history keys this event moved onto the contact's key
	// (links and merges); projections owning keyed history re-key theirs.
	Folds []Fold `json:"folds,omitempty"`
	// MergedIDs are the contacts this event merged into ContactID.
	MergedIDs []string `json:"mergedIds,omitempty"`
}

// Fold moves history from one contact key to another.
type Fold struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Applied is the core-NATS notification the contacts projection sends after
// it committed an event, so a write route can answer with what it caused
// (read-your-writes) without polling.
type Applied struct {
	EventID   string `json:"eventId"`
	ContactID string `json:"contactId,omitempty"`
	Key       string `json:"key,omitempty"`
	Stored    bool   `json:"stored"`
	Created   bool   `json:"created"`
	Linked    bool   `json:"linked"`
	Merged    bool   `json:"merged"`
	// Deleted counts contacts a delete event soft-deleted.
	Deleted int `json:"deleted"`
	// Error is a code (not_found, conflict, invalid_request) when the
	// event could not be applied as asked; nothing was changed then.
	Error string `json:"error,omitempty"`
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return lowerSlow(s)
		}
	}
	return s
}

// DecodeObject decodes a JSON object of event or contact properties,
// numbers kept as json.Number (so 1.0 and 1 compare as the condition
// language says); empty input is an empty map.
func DecodeObject(raw json.RawMessage) (map[string]any, error) {
	out := map[string]any{}
	if len(raw) == 0 {
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}
