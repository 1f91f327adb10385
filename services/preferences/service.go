// Package preferences owns email_preferences (spec 20 §3): the one write
// primitive (Store.Set), the suppression check the mailer runs before every
// send (Store.Check), bounce and complaint handling, the signed
// unsubscribe / preferences tokens, the public unsubscribe page (with RFC
// 8058 one-click POST), the preference center, the lists API and the admin
// preferences and suppression routes.
package preferences

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/lists/list"
)

// DefaultPublicURL is the link base when none is configured
// (API_PUBLIC_URL's default).
const DefaultPublicURL = "http://localhost:3002"

// Public paths of the token pages.
const (
	PathUnsubscribe = "/v1/email/unsubscribe"
	PathPreferences = "/v1/email/preferences"
)

// Config configures the service.
type Config struct {
	// Secret is the token HMAC key (BETTER_AUTH_SECRET). Required.
	Secret []byte
	// PublicURL is the base of the links in emails and pages
	// (API_PUBLIC_URL). Default DefaultPublicURL.
	PublicURL string
	// Lists is the list registry; nil takes the store's.
	Lists *list.Registry
	// Store reads and writes the rows. Required.
	Store *Store
	// Now is the clock for token expiry and issue. Default time.Now.
	Now func() time.Time
	// TokenLifetime is the lifetime of the tokens the service issues.
	// Default TokenLifetime (30 days).
	TokenLifetime time.Duration
}

// Service serves the routes and issues the links.
type Service struct {
	secret   []byte
	base     string
	lists    *list.Registry
	store    *Store
	now      func() time.Time
	lifetime time.Duration
}

// New validates cfg and returns the service.
func New(cfg Config) (*Service, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("preferences config: Secret: must not be empty")
	}
	if cfg.Store == nil {
		return nil, errors.New("preferences config: Store: is required")
	}
	base := strings.TrimRight(strings.TrimSpace(cfg.PublicURL), "/")
	if base == "" {
		base = DefaultPublicURL
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("preferences config: PublicURL: must be an absolute http(s) URL")
	}
	s := &Service{
		secret: append([]byte(nil), cfg.Secret...), base: base, lists: cfg.Lists, store: cfg.Store,
		now: cfg.Now, lifetime: cfg.TokenLifetime,
	}
	if s.lists == nil {
		s.lists = cfg.Store.Lists()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.lifetime <= 0 {
		s.lifetime = TokenLifetime
	}
	return s, nil
}

// token signs a fresh token. A blank userID falls back to the address,
// the key of sends to addresses without a contact (§3.1); a token without
// externalId would not verify.
func (s *Service) token(action, userID, email, category string) string {
	return s.tokenAt(action, userID, email, category, s.now())
}

// tokenAt signs a token issued at issued: the same inputs give the same
// token, so an email re-rendered after a crash is byte for byte the same.
func (s *Service) tokenAt(action, userID, email, category string, issued time.Time) string {
	email = NormalizeEmail(email)
	if strings.TrimSpace(userID) == "" {
		userID = email
	}
	return Sign(s.secret, Claims{
		ExternalID: userID, Email: email, Action: action,
		Exp: issued.Add(s.lifetime), Category: category,
	})
}

func (s *Service) link(path, token string) string {
	return s.base + path + "?token=" + url.QueryEscape(token)
}

// UnsubscribeURL is the one-click unsubscribe link of a send to email
// under user id userID, for category ("" unsubscribes from all mail). It
// also serves as the List-Unsubscribe header's URL (POST one-click works on
// it).
func (s *Service) UnsubscribeURL(userID, email, category string) string {
	return s.link(PathUnsubscribe, s.token(ActionUnsubscribe, userID, email, category))
}

// UnsubscribeURLAt is UnsubscribeURL issued at issued (the mailer signs a
// send's links as of the send's creation).
func (s *Service) UnsubscribeURLAt(userID, email, category string, issued time.Time) string {
	return s.link(PathUnsubscribe, s.tokenAt(ActionUnsubscribe, userID, email, category, issued))
}

// PreferencesURLAt is PreferencesURL issued at issued.
func (s *Service) PreferencesURLAt(userID, email string, issued time.Time) string {
	return s.link(PathPreferences, s.tokenAt(ActionManage, userID, email, "", issued))
}

// ResubscribeURL is the link that undoes UnsubscribeURL.
func (s *Service) ResubscribeURL(userID, email, category string) string {
	return s.link(PathUnsubscribe, s.token(ActionResubscribe, userID, email, category))
}

// PreferencesURL is the preference center link of (userID, email).
func (s *Service) PreferencesURL(userID, email string) string {
	return s.link(PathPreferences, s.token(ActionManage, userID, email, ""))
}

// Routes registers the routes: the token pages are public, the lists API
// needs the ingest scope, the admin reads read and the admin write
// journey-admin.
func (s *Service) Routes(r *httpapi.Router, auth httpapi.Authenticator) {
	ingest := httpapi.RequireScope(auth, httpapi.ScopeIngest)
	read := httpapi.RequireScope(auth, httpapi.ScopeRead)
	write := httpapi.RequireScope(auth, httpapi.ScopeJourneyAdmin)

	tokenQuery := []httpapi.QueryParam{{Name: "token", Required: true, Description: "signed token from an email link", Schema: httpapi.StringSchema()}}
	html := func(desc string) httpapi.Response {
		return httpapi.Response{Description: desc + " (text/html)"}
	}
	pageResponses := map[int]httpapi.Response{
		200: html("Confirmation page"),
		400: {Description: `Missing token: {"error","code"}; invalid token or category: "Invalid Link" page (text/html)`},
	}
	public := []string{"email", "preferences"}
	r.Handle(http.MethodGet, PathUnsubscribe, http.HandlerFunc(s.unsubscribe), httpapi.Doc{
		Summary: "Unsubscribe (or resubscribe) through a signed link", Tags: public,
		Description: "Applies the token's action: unsubscribe sets categories[category] = false, or unsubscribed_all without a category; " +
			"resubscribe sets categories[category] = true and clears unsubscribed_all. A manage token redirects (303) to the preference center. " +
			"HEAD requests change nothing.",
		Query:     tokenQuery,
		Responses: map[int]httpapi.Response{200: pageResponses[200], 303: {Description: "manage token: to the preference center"}, 400: pageResponses[400]},
	})
	r.Handle(http.MethodPost, PathUnsubscribe, http.HandlerFunc(s.unsubscribe), httpapi.Doc{
		Summary: "RFC 8058 one-click unsubscribe", Tags: public,
		Description: "Same effect as GET (a manage token unsubscribes too). The optional form body is List-Unsubscribe=One-Click.",
		Query:       tokenQuery,
		Request: httpapi.Schema{"type": "object", "description": "application/x-www-form-urlencoded",
			"properties": map[string]httpapi.Schema{"List-Unsubscribe": httpapi.EnumSchema("One-Click")}},
		Responses: pageResponses,
	})
	r.Handle(http.MethodGet, PathPreferences, http.HandlerFunc(s.center), httpapi.Doc{
		Summary: "The preference center", Tags: public,
		Description: "Lists journey emails, the enabled lists and all emails with their state for the token's contact and address; any valid token works.",
		Query:       tokenQuery,
		Responses:   map[int]httpapi.Response{200: html("Preference center"), 400: pageResponses[400]},
	})
	r.Handle(http.MethodPost, PathPreferences, http.HandlerFunc(s.centerPost), httpapi.Doc{
		Summary: "Change one preference from the preference center form", Tags: public,
		Description: "Form fields: category (empty for all emails) and subscribed (true|false). Subscribing also clears unsubscribed_all, " +
			"as a resubscribe link does. Answers with the re-rendered preference center.",
		Query: tokenQuery,
		Request: httpapi.Schema{"type": "object", "description": "application/x-www-form-urlencoded",
			"properties": map[string]httpapi.Schema{"category": httpapi.StringSchema(), "subscribed": httpapi.EnumSchema("true", "false")}},
		Responses: map[int]httpapi.Response{200: html("Preference center"), 400: pageResponses[400]},
	})

	listTags := []string{"lists"}
	r.Handle(http.MethodGet, "/v1/lists", ingest(http.HandlerFunc(s.listLists)), httpapi.Doc{
		Summary: "The enabled lists in definition order", Tags: listTags, Scope: httpapi.ScopeIngest,
		Responses: map[int]httpapi.Response{200: {Description: "{lists}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"lists": httpapi.ArraySchema(httpapi.ObjectSchema(map[string]httpapi.Schema{
				"id": httpapi.StringSchema(), "name": httpapi.StringSchema(), "description": httpapi.StringSchema(), "defaultOptIn": httpapi.BooleanSchema(),
			}, "id", "name", "defaultOptIn")),
		})}},
	})
	membership := httpapi.ObjectSchema(map[string]httpapi.Schema{"email": httpapi.StringSchema(), "userId": httpapi.StringSchema()})
	membershipResponses := map[int]httpapi.Response{
		200: {Description: "{list, subscribed}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{"list": httpapi.StringSchema(), "subscribed": httpapi.BooleanSchema()})},
		400: {Description: "email or userId is required; Contact has no email; cannot manage list membership"},
		404: {Description: "Unknown list: <id>"},
	}
	r.Handle(http.MethodPost, "/v1/lists/:id/subscribe", ingest(http.HandlerFunc(s.subscribe)), httpapi.Doc{
		Summary: "Subscribe a contact to a list", Tags: listTags, Scope: httpapi.ScopeIngest,
		Description: "Sets categories[id] = true on the contact's preferences row; unsubscribed_all is left as it is.",
		Request:     membership, Responses: membershipResponses,
	})
	r.Handle(http.MethodPost, "/v1/lists/:id/unsubscribe", ingest(http.HandlerFunc(s.unsubscribeList)), httpapi.Doc{
		Summary: "Unsubscribe a contact from a list", Tags: listTags, Scope: httpapi.ScopeIngest,
		Description: "Sets categories[id] = false and emits contact.unsubscribed (scope category).",
		Request:     membership, Responses: membershipResponses,
	})

	admin := []string{"admin", "preferences"}
	prefsBody := httpapi.ObjectSchema(map[string]httpapi.Schema{"preferences": preferencesSchema()})
	r.Handle(http.MethodGet, "/v1/admin/contacts/:contactId/preferences", read(http.HandlerFunc(s.adminGet)), httpapi.Doc{
		Summary: "A contact's email preferences", Tags: admin, Scope: httpapi.ScopeRead,
		Description: "contactId is the contact's uuid or external id; the row is looked up by user id (external id, else uuid).",
		Responses: map[int]httpapi.Response{200: {Description: "{preferences}", Schema: prefsBody},
			404: {Description: "Contact not found; No preferences found for this contact"}},
	})
	r.Handle(http.MethodPut, "/v1/admin/contacts/:contactId/preferences", write(http.HandlerFunc(s.adminPut)), httpapi.Doc{
		Summary: "Change a contact's email preferences", Tags: admin, Scope: httpapi.ScopeJourneyAdmin,
		Description: "Upserts the row of the contact's user id and email. Absent fields are kept (false on a new row); " +
			"suppressed also sets suppressedAt (now or null); categories replaces the whole map. Opt-outs emit contact.unsubscribed.",
		Request: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"unsubscribedAll": httpapi.BooleanSchema(), "suppressed": httpapi.BooleanSchema(),
			"categories": {"type": "object", "additionalProperties": httpapi.BooleanSchema()},
		}),
		Responses: map[int]httpapi.Response{200: {Description: "{preferences}", Schema: prefsBody},
			400: {Description: "Contact has no email address"}, 404: {Description: "Contact not found"}},
	})
	r.Handle(http.MethodGet, "/v1/admin/suppressions", read(http.HandlerFunc(s.adminSuppressions)), httpapi.Doc{
		Summary: "Bounced, unsubscribed and complained addresses", Tags: admin, Scope: httpapi.ScopeRead,
		Description: "bounced: bounceCount > 0; unsubscribed: unsubscribedAll; complained: suppressed without bounces (also manual suppression); " +
			"no type: every row. Newest update first.",
		Query: []httpapi.QueryParam{
			{Name: "type", Schema: httpapi.EnumSchema(KindBounced, KindUnsubscribed, KindComplained)},
			{Name: "limit", Description: "page size (1–200, default 50)", Schema: httpapi.Schema{"type": "integer", "minimum": 1, "maximum": maxSuppressionLimit, "default": httpapi.DefaultLimit}},
			{Name: "offset", Description: "items to skip (default 0)", Schema: httpapi.Schema{"type": "integer", "minimum": 0, "default": 0}},
		},
		Responses: map[int]httpapi.Response{200: {Description: "{suppressions, total, limit, offset}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"suppressions": httpapi.ArraySchema(preferencesSchema()), "total": httpapi.IntegerSchema(), "limit": httpapi.IntegerSchema(), "offset": httpapi.IntegerSchema(),
		})}},
	})
}
