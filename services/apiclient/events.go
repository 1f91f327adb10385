package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Event is the body of POST /v1/events. Timestamp is sent as given: an
// ISO-8601 UTC date-time ending in Z (see FormatTime); the server rejects
// other forms.
type Event struct {
	Name              string          `json:"name"`
	Email             string          `json:"email,omitempty"`
	UserID            string          `json:"userId,omitempty"`
	EventProperties   map[string]any  `json:"eventProperties,omitempty"`
	ContactProperties map[string]any  `json:"contactProperties,omitempty"`
	Lists             map[string]bool `json:"lists,omitempty"`
	IdempotencyKey    string          `json:"idempotencyKey,omitempty"`
	Timestamp         string          `json:"timestamp,omitempty"`
}

// FormatTime formats t the way the API expects times: UTC, milliseconds,
// trailing Z.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Accepted answers an ingested event: its id and whether the event store
// kept it (false for a duplicate idempotency key).
type Accepted struct {
	ID     string `json:"id"`
	Stored bool   `json:"stored"`
}

// SendEvent calls POST /v1/events (202). Contacts and history are updated
// asynchronously. Use WithIdempotencyKey to send the header.
func (c *Client) SendEvent(ctx context.Context, e Event, opts ...RequestOption) (Accepted, error) {
	var out Accepted
	_, err := c.DoRequest(ctx, http.MethodPost, "/v1/events", e, &out, opts...)
	return out, err
}

// BatchItem is the outcome of one event of a batch, by its index.
type BatchItem struct {
	Index  int    `json:"index"`
	ID     string `json:"id"`
	Stored bool   `json:"stored"`
	Error  string `json:"error"`
	Code   string `json:"code"`
}

// BatchResult answers POST /v1/events/batch.
type BatchResult struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Results  []BatchItem `json:"results"`
}

// SendEvents calls POST /v1/events/batch (at most 500 events; a bad event
// is reported in its item and does not reject the others).
func (c *Client) SendEvents(ctx context.Context, events []Event) (BatchResult, error) {
	var out BatchResult
	err := c.Do(ctx, http.MethodPost, "/v1/events/batch", map[string]any{"events": events}, &out)
	return out, err
}

// StoredEvent is a row of the event history.
type StoredEvent struct {
	ID             string         `json:"id"`
	UserID         string         `json:"userId"`
	Event          string         `json:"event"`
	Properties     map[string]any `json:"properties"`
	IdempotencyKey *string        `json:"idempotencyKey"`
	OccurredAt     time.Time      `json:"occurredAt"`
}

// EventList is a page of stored events, newest first.
type EventList struct {
	Events []StoredEvent `json:"events"`
	Total  int           `json:"total"`
	Limit  int           `json:"limit"`
	Offset int           `json:"offset"`
}

// ListEventsParams filters GET /v1/admin/events; zero values are unset.
type ListEventsParams struct {
	Event, UserID string
	Limit, Offset int
}

// ListEvents calls GET /v1/admin/events.
func (c *Client) ListEvents(ctx context.Context, p ListEventsParams) (EventList, error) {
	var out EventList
	q := query("event", p.Event, "userId", p.UserID, "limit", intOrEmpty(p.Limit), "offset", intOrEmpty(p.Offset))
	err := c.Do(ctx, http.MethodGet, "/v1/admin/events"+q, nil, &out)
	return out, err
}

// GetEvent calls GET /v1/admin/events/{id}.
func (c *Client) GetEvent(ctx context.Context, id string) (StoredEvent, error) {
	var out struct {
		Event StoredEvent `json:"event"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/admin/events/"+url.PathEscape(id), nil, &out)
	return out.Event, err
}

// TestEvent is the body of the admin test ingest.
type TestEvent struct {
	Event      string         `json:"event"`
	UserID     string         `json:"userId,omitempty"`
	UserEmail  string         `json:"userEmail,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// SendTestEvent calls POST /v1/admin/events (202).
func (c *Client) SendTestEvent(ctx context.Context, e TestEvent) (Accepted, error) {
	var out Accepted
	err := c.Do(ctx, http.MethodPost, "/v1/admin/events", e, &out)
	return out, err
}
