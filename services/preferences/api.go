package preferences

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

const (
	maxBodyBytes        = 64 << 10
	maxSuppressionLimit = 200

	msgNeedIdentity    = "email or userId is required"
	msgListNoEmail     = "Contact has no email; cannot manage list membership"
	msgContactNotFound = "Contact not found"
	msgNoPreferences   = "No preferences found for this contact"
	msgContactNoEmail  = "Contact has no email address"
	msgUnknownList     = "Unknown list: %s"
)

// PreferencesJSON is the wire shape of a preferences row.
type PreferencesJSON struct {
	ID              string          `json:"id"`
	UserID          string          `json:"userId"`
	Email           string          `json:"email"`
	UnsubscribedAll bool            `json:"unsubscribedAll"`
	Suppressed      bool            `json:"suppressed"`
	BounceCount     int             `json:"bounceCount"`
	Categories      map[string]bool `json:"categories"`
	SuppressedAt    *httpapi.Time   `json:"suppressedAt"`
	LastBounceAt    *httpapi.Time   `json:"lastBounceAt"`
	CreatedAt       httpapi.Time    `json:"createdAt"`
	UpdatedAt       httpapi.Time    `json:"updatedAt"`
}

// JSON returns the wire shape of p.
func (p Preferences) JSON() PreferencesJSON {
	cats := p.Categories
	if cats == nil {
		cats = map[string]bool{}
	}
	return PreferencesJSON{
		ID: p.ID.String(), UserID: p.UserID, Email: p.Email, UnsubscribedAll: p.UnsubscribedAll, Suppressed: p.Suppressed,
		BounceCount: p.BounceCount, Categories: cats, SuppressedAt: httpapi.TimePtr(p.SuppressedAt),
		LastBounceAt: httpapi.TimePtr(p.LastBounceAt), CreatedAt: httpapi.NewTime(p.CreatedAt), UpdatedAt: httpapi.NewTime(p.UpdatedAt),
	}
}

func preferencesSchema() httpapi.Schema {
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.UUIDSchema(), "userId": httpapi.StringSchema(), "email": httpapi.StringSchema(),
		"unsubscribedAll": httpapi.BooleanSchema(), "suppressed": httpapi.BooleanSchema(), "bounceCount": httpapi.IntegerSchema(),
		"categories":   {"type": "object", "additionalProperties": httpapi.BooleanSchema()},
		"suppressedAt": httpapi.NullableSchema(httpapi.DateTimeSchema()), "lastBounceAt": httpapi.NullableSchema(httpapi.DateTimeSchema()),
		"createdAt": httpapi.DateTimeSchema(), "updatedAt": httpapi.DateTimeSchema(),
	}, "id", "userId", "email", "unsubscribedAll", "suppressed", "bounceCount", "categories", "suppressedAt", "lastBounceAt")
}

// ListJSON is the wire shape of a list.
type ListJSON struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Description  string `json:"description,omitempty"`
	DefaultOptIn bool   `json:"defaultOptIn"`
}

func (s *Service) listLists(w http.ResponseWriter, r *http.Request) {
	out := []ListJSON{}
	for _, l := range s.lists.Visible() {
		out = append(out, ListJSON{ID: l.ID, Name: l.Name, Description: l.Description, DefaultOptIn: l.DefaultOptIn})
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"lists": out})
}

type membershipRequest struct {
	Email  *string `json:"email"`
	UserID *string `json:"userId"`
}

func (s *Service) subscribe(w http.ResponseWriter, r *http.Request)       { s.membership(w, r, true) }
func (s *Service) unsubscribeList(w http.ResponseWriter, r *http.Request) { s.membership(w, r, false) }

func (s *Service) membership(w http.ResponseWriter, r *http.Request, subscribed bool) {
	id := httpapi.Param(r, "id")
	// The list is checked before the identity (and before the body).
	if _, ok := s.lists.Get(id); !ok {
		httpapi.WriteError(w, r, errcode.NotFound(fmt.Sprintf(msgUnknownList, id)))
		return
	}
	var req membershipRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBodyBytes); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var email, userID string
	if req.Email != nil {
		email = NormalizeEmail(*req.Email)
	}
	if req.UserID != nil {
		userID = strings.TrimSpace(*req.UserID)
	}
	if email == "" && userID == "" {
		httpapi.WriteError(w, r, errcode.Invalid(msgNeedIdentity))
		return
	}
	key, addr, err := s.resolve(r.Context(), userID, email)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if _, err := s.store.Set(r.Context(), key, addr, Change{Category: id, CategoryValue: &subscribed}); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"list": id, "subscribed": subscribed})
}

// resolve returns the preferences key (user id) and address of an
// identity from the contacts projection: by external id, else by email,
// else by a stale key (alias). The contact's own email wins over the
// given one.
//
// Deviation from the reference, which resolves-or-creates the contact
// (emitting contact.created): this service does not write contacts — the
// contacts projection owns them and services meet only through streams —
// so an unknown identity with an email is keyed by the given userId, else
// by the normalised address (§3.1's key for an address without a contact),
// and no contact is created. Without any email it fails as the reference
// does when the created contact has none.
func (s *Service) resolve(ctx context.Context, userID, email string) (key, addr string, err error) {
	c, err := dbsqlc.New(s.store.pool).PrefContactResolve(ctx, dbsqlc.PrefContactResolveParams{ExternalID: userID, Email: email})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		key, addr = userID, email
		if key == "" {
			key = email
		}
	case err != nil:
		return "", "", fmt.Errorf("resolve contact: %w", err)
	default:
		key, addr = contactKey(c.ID, c.ExternalID), email
		if c.Email != nil && *c.Email != "" {
			addr = NormalizeEmail(*c.Email)
		}
	}
	if addr == "" {
		return "", "", errcode.Invalid(msgListNoEmail)
	}
	return key, addr, nil
}

// contactKey is a contact's preferences user id: its external id, else its
// uuid (§3.1).
func contactKey(id uuid.UUID, externalID *string) string {
	if externalID != nil && *externalID != "" {
		return *externalID
	}
	return id.String()
}

// adminContact reads the live contact named by :contactId (uuid or
// external id).
func (s *Service) adminContact(r *http.Request) (dbsqlc.PrefContactGetRow, error) {
	raw := httpapi.Param(r, "contactId")
	p := dbsqlc.PrefContactGetParams{ExternalID: raw}
	if id, err := uuid.Parse(raw); err == nil {
		p.ID = &id
	}
	c, err := dbsqlc.New(s.store.pool).PrefContactGet(r.Context(), p)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, errcode.NotFound(msgContactNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("get contact: %w", err)
	}
	return c, nil
}

func (s *Service) adminGet(w http.ResponseWriter, r *http.Request) {
	c, err := s.adminContact(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var email string
	if c.Email != nil {
		email = *c.Email
	}
	p, err := s.store.ForUser(r.Context(), contactKey(c.ID, c.ExternalID), email)
	if errors.Is(err, ErrNotFound) {
		err = errcode.NotFound(msgNoPreferences)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"preferences": p.JSON()})
}

type adminPutRequest struct {
	UnsubscribedAll *bool           `json:"unsubscribedAll"`
	Suppressed      *bool           `json:"suppressed"`
	Categories      map[string]bool `json:"categories"` // null is "absent"
}

func (s *Service) adminPut(w http.ResponseWriter, r *http.Request) {
	var req adminPutRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBodyBytes); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c, err := s.adminContact(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if c.Email == nil || strings.TrimSpace(*c.Email) == "" {
		httpapi.WriteError(w, r, errcode.Invalid(msgContactNoEmail))
		return
	}
	p, err := s.store.Set(r.Context(), contactKey(c.ID, c.ExternalID), *c.Email, Change{
		UnsubscribedAll: req.UnsubscribedAll, Suppressed: req.Suppressed, ReplaceCategories: req.Categories,
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"preferences": p.JSON()})
}

func (s *Service) adminSuppressions(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("type")
	switch kind {
	case "", KindBounced, KindUnsubscribed, KindComplained:
	default:
		httpapi.WriteError(w, r, errcode.InvalidField("type", `must be "bounced", "unsubscribed" or "complained"`))
		return
	}
	limit, err := httpapi.QueryInt(r, "limit", httpapi.DefaultLimit, 1, maxSuppressionLimit)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	// The statement takes an int32; beyond it the page is empty anyway.
	offset, err := httpapi.QueryInt(r, "offset", 0, 0, math.MaxInt)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	rows, total, err := s.store.Suppressions(r.Context(), kind, limit, min(offset, math.MaxInt32))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]PreferencesJSON, len(rows))
	for i, p := range rows {
		out[i] = p.JSON()
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"suppressions": out, "total": total, "limit": limit, "offset": offset})
}
