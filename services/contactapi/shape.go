package contactapi

import (
	"encoding/json"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// Contact is the public contact shape (spec 10 §2.5).
type Contact struct {
	ID          string          `json:"id"`
	ExternalID  *string         `json:"externalId"`
	Email       *string         `json:"email"`
	Properties  json.RawMessage `json:"properties"`
	FirstSeenAt httpapi.Time    `json:"firstSeenAt"`
	LastSeenAt  httpapi.Time    `json:"lastSeenAt"`
	CreatedAt   httpapi.Time    `json:"createdAt"`
	UpdatedAt   httpapi.Time    `json:"updatedAt"`
}

// AdminContact adds the anonymous id.
type AdminContact struct {
	Contact
	AnonymousID *string `json:"anonymousId"`
}

func publicContact(c dbsqlc.Contact) Contact {
	props := c.Properties
	if len(props) == 0 {
		props = json.RawMessage("{}")
	}
	return Contact{
		ID: c.ID.String(), ExternalID: c.ExternalID, Email: c.Email, Properties: props,
		FirstSeenAt: httpapi.NewTime(c.FirstSeenAt), LastSeenAt: httpapi.NewTime(c.LastSeenAt),
		CreatedAt: httpapi.NewTime(c.CreatedAt), UpdatedAt: httpapi.NewTime(c.UpdatedAt),
	}
}

func adminContact(c dbsqlc.Contact) AdminContact {
	return AdminContact{Contact: publicContact(c), AnonymousID: c.AnonymousID}
}

// Event is a stored history row.
type Event struct {
	ID             string          `json:"id"`
	UserID         string          `json:"userId"`
	Event          string          `json:"event"`
	Properties     json.RawMessage `json:"properties"`
	IdempotencyKey *string         `json:"idempotencyKey"`
	OccurredAt     httpapi.Time    `json:"occurredAt"`
}

func eventShape(e dbsqlc.UserEvent) Event {
	props := e.Properties
	if len(props) == 0 {
		props = json.RawMessage("{}")
	}
	return Event{ID: e.ID.String(), UserID: e.UserID, Event: e.Event, Properties: props, IdempotencyKey: e.IdempotencyKey, OccurredAt: httpapi.NewTime(e.OccurredAt)}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// contactKey is the key history rows of c are stored under.
func contactKey(c dbsqlc.Contact) string {
	switch {
	case c.ExternalID != nil:
		return *c.ExternalID
	case c.AnonymousID != nil:
		return *c.AnonymousID
	default:
		return c.ID.String()
	}
}
