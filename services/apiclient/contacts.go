package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Contact is a contact as the admin routes show it; the public routes
// leave AnonymousID out.
type Contact struct {
	ID          string         `json:"id"`
	ExternalID  *string        `json:"externalId"`
	Email       *string        `json:"email"`
	AnonymousID *string        `json:"anonymousId,omitempty"`
	Properties  map[string]any `json:"properties"`
	FirstSeenAt time.Time      `json:"firstSeenAt"`
	LastSeenAt  time.Time      `json:"lastSeenAt"`
	CreatedAt   time.Time      `json:"createdAt"`
	UpdatedAt   time.Time      `json:"updatedAt"`
}

// PendingError is the 202 a write route answers when its change is stored
// but was not applied within the server's wait time; it will be applied.
type PendingError struct {
	ID string // the event id of the change
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("change %s accepted but not yet applied", e.ID)
}

// write is Do for the read-your-writes routes: a 202 "pending" answer
// becomes a *PendingError.
func (c *Client) write(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.Send(ctx, method, path, body)
	if err != nil {
		return err
	}
	if err := resp.Err(); err != nil {
		return err
	}
	if resp.Status == http.StatusAccepted {
		var p struct {
			ID   string `json:"id"`
			Code string `json:"code"`
		}
		if json.Unmarshal(resp.Body, &p) == nil && p.Code == "pending" {
			return &PendingError{ID: p.ID}
		}
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return fmt.Errorf("decode response %q: %w", resp.Body, err)
		}
	}
	return nil
}

// UpsertContact is the body of PUT /v1/contacts.
type UpsertContact struct {
	Email      string          `json:"email,omitempty"`
	UserID     string          `json:"userId,omitempty"`
	Properties map[string]any  `json:"properties,omitempty"`
	Lists      map[string]bool `json:"lists,omitempty"`
}

// Upserted answers PUT /v1/contacts.
type Upserted struct {
	ID      string `json:"id"`
	Created bool   `json:"created"`
	Linked  bool   `json:"linked"`
}

// UpsertContact calls PUT /v1/contacts and returns once the change is
// applied (or a *PendingError).
func (c *Client) UpsertContact(ctx context.Context, req UpsertContact) (Upserted, error) {
	var out Upserted
	err := c.write(ctx, http.MethodPut, "/v1/contacts", req, &out)
	return out, err
}

// FindContacts calls GET /v1/contacts/find: live contacts whose email or
// external id matches (empty arguments are left out).
func (c *Client) FindContacts(ctx context.Context, email, userID string) ([]Contact, error) {
	var out struct {
		Contacts []Contact `json:"contacts"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/contacts/find"+query("email", email, "userId", userID), nil, &out)
	return out.Contacts, err
}

// DeleteContacts calls DELETE /v1/contacts: soft-deletes the live
// contacts matching email or userId (empty arguments are left out).
func (c *Client) DeleteContacts(ctx context.Context, email, userID string) error {
	body := map[string]string{}
	if email != "" {
		body["email"] = email
	}
	if userID != "" {
		body["userId"] = userID
	}
	return c.write(ctx, http.MethodDelete, "/v1/contacts", body, nil)
}

// ContactList is a page of contacts.
type ContactList struct {
	Contacts []Contact `json:"contacts"`
	Total    int       `json:"total"`
	Limit    int       `json:"limit"`
	Offset   int       `json:"offset"`
}

// ListContactsParams filters GET /v1/admin/contacts; zero values are unset.
type ListContactsParams struct {
	Search        string
	Limit, Offset int
}

// ListContacts calls GET /v1/admin/contacts (live contacts, newest
// last_seen_at first).
func (c *Client) ListContacts(ctx context.Context, p ListContactsParams) (ContactList, error) {
	var out ContactList
	q := query("search", p.Search, "limit", intOrEmpty(p.Limit), "offset", intOrEmpty(p.Offset))
	err := c.Do(ctx, http.MethodGet, "/v1/admin/contacts"+q, nil, &out)
	return out, err
}

// ContactDetail answers GET /v1/admin/contacts/{id}.
type ContactDetail struct {
	Contact     Contact         `json:"contact"`
	Preferences json.RawMessage `json:"preferences"`
}

// GetContact calls GET /v1/admin/contacts/{id}; id is a contact id or an
// external id.
func (c *Client) GetContact(ctx context.Context, id string) (ContactDetail, error) {
	var out ContactDetail
	err := c.Do(ctx, http.MethodGet, "/v1/admin/contacts/"+url.PathEscape(id), nil, &out)
	return out, err
}

// CreateContact is the body of POST /v1/admin/contacts.
type CreateContact struct {
	ExternalID string         `json:"externalId,omitempty"`
	Email      string         `json:"email,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// CreateContact calls POST /v1/admin/contacts (201, also for a contact
// that existed).
func (c *Client) CreateContact(ctx context.Context, req CreateContact) (Contact, error) {
	var out struct {
		Contact Contact `json:"contact"`
	}
	err := c.write(ctx, http.MethodPost, "/v1/admin/contacts", req, &out)
	return out.Contact, err
}

// UpdateContact is the body of PATCH /v1/admin/contacts/{id}: an email
// replaces the stored one, properties merge (a nil value deletes a key).
type UpdateContact struct {
	Email      string         `json:"email,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// UpdateContact calls PATCH /v1/admin/contacts/{id}.
func (c *Client) UpdateContact(ctx context.Context, id string, req UpdateContact) (Contact, error) {
	var out struct {
		Contact Contact `json:"contact"`
	}
	err := c.write(ctx, http.MethodPatch, "/v1/admin/contacts/"+url.PathEscape(id), req, &out)
	return out.Contact, err
}

// DeleteContact calls DELETE /v1/admin/contacts/{id} (soft delete).
func (c *Client) DeleteContact(ctx context.Context, id string) error {
	var out struct {
		Deleted bool `json:"deleted"`
	}
	if err := c.write(ctx, http.MethodDelete, "/v1/admin/contacts/"+url.PathEscape(id), nil, &out); err != nil {
		return err
	}
	if !out.Deleted {
		return fmt.Errorf("delete contact %s: answer without deleted:true", id)
	}
	return nil
}

// ExportParams filter an export; zero values use the server defaults.
type ExportParams struct {
	Search string
	Limit  int
}

// ExportedContact is one contact of a JSON export.
type ExportedContact struct {
	ID          string         `json:"id"`
	ExternalID  *string        `json:"externalId"`
	Email       *string        `json:"email"`
	Properties  map[string]any `json:"properties"`
	FirstSeenAt time.Time      `json:"firstSeenAt"`
	LastSeenAt  time.Time      `json:"lastSeenAt"`
	CreatedAt   time.Time      `json:"createdAt"`
}

// ExportContacts calls GET /v1/admin/contacts/export?format=json.
func (c *Client) ExportContacts(ctx context.Context, p ExportParams) ([]ExportedContact, error) {
	var out struct {
		Contacts []ExportedContact `json:"contacts"`
	}
	q := query("format", "json", "search", p.Search, "limit", intOrEmpty(p.Limit))
	err := c.Do(ctx, http.MethodGet, "/v1/admin/contacts/export"+q, nil, &out)
	return out.Contacts, err
}

// ExportContactsCSV calls GET /v1/admin/contacts/export?format=csv and
// returns the raw answer (body and headers).
func (c *Client) ExportContactsCSV(ctx context.Context, p ExportParams) (*Response, error) {
	q := query("format", "csv", "search", p.Search, "limit", intOrEmpty(p.Limit))
	resp, err := c.Send(ctx, http.MethodGet, "/v1/admin/contacts/export"+q, nil)
	if err != nil {
		return nil, err
	}
	return resp, resp.Err()
}

// TimelineEntry is one item of a contact's timeline.
type TimelineEntry struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// Timeline is a page of a contact's timeline, newest first.
type Timeline struct {
	Timeline []TimelineEntry `json:"timeline"`
	Total    int             `json:"total"`
	Limit    int             `json:"limit"`
	Offset   int             `json:"offset"`
}

// TimelineParams page and filter a timeline; zero values are unset.
type TimelineParams struct {
	Type          string // event, journey or email
	Limit, Offset int
}

// ContactTimeline calls GET /v1/admin/contacts/{id}/timeline.
func (c *Client) ContactTimeline(ctx context.Context, id string, p TimelineParams) (Timeline, error) {
	var out Timeline
	q := query("type", p.Type, "limit", intOrEmpty(p.Limit), "offset", intOrEmpty(p.Offset))
	err := c.Do(ctx, http.MethodGet, "/v1/admin/contacts/"+url.PathEscape(id)+"/timeline"+q, nil, &out)
	return out, err
}
