package mailer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// maxSendBody bounds POST /v1/emails (props included).
const maxSendBody = 256 << 10

// API serves POST /v1/emails and the admin template routes. Sends become
// commands on EMAILS like every other send; the route waits for the
// mailer's announcement of the result so it can answer what happened.
type API struct {
	db        dbsqlc.DBTX
	templates *templates.Registry
	pub       Publisher
	nc        *nats.Conn
	limiter   *httpapi.RateLimiter
	wait      time.Duration
	now       func() time.Time
}

// APIOptions configure the API.
type APIOptions struct {
	// RateLimit is POST /v1/emails requests per minute per key (default
	// 30, spec 20 §1.10); negative disables.
	RateLimit int
	// Wait bounds how long a request waits for the mailer (default 10s);
	// after it the answer is 202 with status queued.
	Wait time.Duration
}

// NewAPI returns the routes. pub publishes commands to EMAILS; nc receives
// the mailer's result announcements.
func NewAPI(db dbsqlc.DBTX, tpls *templates.Registry, pub Publisher, nc *nats.Conn, opts APIOptions) *API {
	a := &API{db: db, templates: tpls, pub: pub, nc: nc, wait: opts.Wait, now: time.Now}
	if a.wait <= 0 {
		a.wait = 10 * time.Second
	}
	switch {
	case opts.RateLimit < 0:
		a.limiter = httpapi.NewRateLimiter(httpapi.RateLimitOptions{Disabled: true})
	case opts.RateLimit == 0:
		a.limiter = httpapi.NewRateLimiter(httpapi.RateLimitOptions{Limit: 30, Window: time.Minute})
	default:
		a.limiter = httpapi.NewRateLimiter(httpapi.RateLimitOptions{Limit: opts.RateLimit, Window: time.Minute})
	}
	return a
}

func (a *API) q() *dbsqlc.Queries { return dbsqlc.New(a.db) }

// SendRequest is the body of POST /v1/emails (spec 20 §1.10).
type SendRequest struct {
	To                  string         `json:"to"`
	UserID              string         `json:"userId"`
	Template            string         `json:"template"`
	Props               map[string]any `json:"props"`
	From                string         `json:"from"`
	Subject             string         `json:"subject"`
	Category            string         `json:"category"`
	ReplyTo             stringOrList   `json:"replyTo"`
	SkipPreferenceCheck bool           `json:"skipPreferenceCheck"`
	IdempotencyKey      string         `json:"idempotencyKey"`
}

// stringOrList accepts a string or an array of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("must be a string or an array of strings")
	}
	*s = many
	return nil
}

// Routes registers POST /v1/emails (ingest scope, its own rate limit) and
// the admin template routes.
func (a *API) Routes(r *httpapi.Router, auth httpapi.Authenticator) {
	ingest := httpapi.RequireScope(auth, httpapi.ScopeIngest)
	limited := func(h http.Handler) http.Handler { return ingest(httpapi.RateLimit(a.limiter)(h)) }
	result := httpapi.ObjectSchema(map[string]httpapi.Schema{
		"emailSendId": httpapi.StringSchema(), "status": httpapi.EnumSchema(StatusSent, StatusSuppressed, StatusUnsubscribed, StatusSkipped, "queued"),
		"reason": httpapi.StringSchema(),
	}, "emailSendId", "status")
	r.Handle(http.MethodPost, "/v1/emails", limited(http.HandlerFunc(a.send)), httpapi.Doc{
		Summary: "Send a transactional email with a template", Tags: []string{"emails"}, Scope: httpapi.ScopeIngest,
		Description: "Resolves the recipient (to, else the contact userId names), then sends through the mailer with suppression, unsubscribe headers and tracking. The Idempotency-Key header (or idempotencyKey) makes retries safe: one email per key. 30 requests per minute per key. Answers once the mailer decided; status queued means it is still working on it.",
		Request: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"to": {"type": "string", "format": "email"}, "userId": httpapi.StringSchema(), "template": httpapi.StringSchema(),
			"props": httpapi.AnyObjectSchema(), "from": httpapi.StringSchema(), "subject": httpapi.StringSchema(),
			"category": httpapi.StringSchema(), "replyTo": {}, "skipPreferenceCheck": httpapi.BooleanSchema(), "idempotencyKey": httpapi.StringSchema(),
		}, "template"),
		Responses: map[int]httpapi.Response{202: {Description: "The mailer's outcome", Schema: result},
			400: {Description: "Bad input or unknown template"}, 403: {Description: "skipPreferenceCheck needs full-admin"},
			404: {Description: "No resolvable email for the recipient"}, 429: {Description: "Rate limit exceeded"}, 500: {Description: "The provider refused the send"}},
	})
	read := httpapi.RequireScope(auth, httpapi.ScopeRead)
	full := httpapi.RequireScope(auth, httpapi.ScopeFullAdmin)
	tags := []string{"admin", "templates"}
	r.Handle(http.MethodGet, "/v1/admin/templates", read(http.HandlerFunc(a.listTemplates)), httpapi.Doc{
		Summary: "Registered email templates", Tags: tags, Scope: httpapi.ScopeRead,
	})
	r.Handle(http.MethodGet, "/v1/admin/templates/:key/preview", read(http.HandlerFunc(a.preview)), httpapi.Doc{
		Summary: "Render a template with example or given props", Tags: tags, Scope: httpapi.ScopeRead,
		Query: []httpapi.QueryParam{
			{Name: "props", Description: "base64 of a JSON object", Schema: httpapi.StringSchema()},
			{Name: "format", Description: "html or text serves that part itself", Schema: httpapi.EnumSchema("html", "text")},
		},
	})
	r.Handle(http.MethodPost, "/v1/admin/templates/:key/send-test", full(http.HandlerFunc(a.sendTest)), httpapi.Doc{
		Summary: "Send a template to an address as a test (no preference check)", Tags: tags, Scope: httpapi.ScopeFullAdmin,
		Request: httpapi.ObjectSchema(map[string]httpapi.Schema{"to": {"type": "string", "format": "email"}, "props": httpapi.AnyObjectSchema()}, "to"),
	})
}

func (a *API) send(w http.ResponseWriter, r *http.Request) {
	var req SendRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxSendBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if k, ok := r.Header["Idempotency-Key"]; ok && len(k) > 0 {
		req.IdempotencyKey = k[0]
	}
	for field, v := range map[string]string{"to": req.To, "userId": req.UserID, "template": req.Template, "from": req.From,
		"subject": req.Subject, "category": req.Category, "idempotencyKey": req.IdempotencyKey} {
		if strings.ContainsRune(v, 0) {
			httpapi.WriteError(w, r, errcode.InvalidField(field, "must not contain NUL bytes"))
			return
		}
	}
	to, userID := strings.TrimSpace(req.To), strings.TrimSpace(req.UserID)
	if to == "" && userID == "" {
		httpapi.WriteError(w, r, errcode.Invalid("to or userId is required"))
		return
	}
	if req.SkipPreferenceCheck {
		if p, ok := httpapi.PrincipalFrom(r.Context()); !ok || !httpapi.HasScope(p.Scopes, httpapi.ScopeFullAdmin) {
			httpapi.WriteError(w, r, errcode.Forbidden("skipPreferenceCheck requires a full-admin key"))
			return
		}
	}
	if req.Template == "" {
		httpapi.WriteError(w, r, errcode.InvalidField("template", "is required"))
		return
	}
	if _, ok := a.templates.Get(req.Template); !ok {
		httpapi.WriteError(w, r, errcode.InvalidField("template", "Unknown template: "+req.Template))
		return
	}
	if to != "" && !httpapi.ValidEmail(to) {
		httpapi.WriteError(w, r, errcode.InvalidField("to", "must be a valid email address"))
		return
	}
	rcpt, err := a.resolve(r.Context(), to, userID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	cmd := &streams.EmailCommand{
		V: 1, To: rcpt.to, UserID: rcpt.userID, ContactID: rcpt.contactID, Template: req.Template, Subject: req.Subject,
		From: req.From, ReplyTo: req.ReplyTo, Category: req.Category, SkipPreferenceCheck: req.SkipPreferenceCheck,
		RequestedAt: a.now().UTC(),
	}
	if req.Props != nil {
		if cmd.Props, err = json.Marshal(req.Props); err != nil {
			httpapi.WriteError(w, r, errcode.InvalidField("props", "must be a JSON object"))
			return
		}
	}
	a.dispatch(w, r, cmd, strings.TrimSpace(req.IdempotencyKey))
}

// recipient is who a send goes to and whom it is attributed to.
type recipient struct {
	to, userID, contactID string
}

// resolve applies spec 20 §1.10's recipient rules.
func (a *API) resolve(ctx context.Context, to, userID string) (recipient, error) {
	q := a.q()
	if to != "" {
		c, err := q.MailerContactByEmail(ctx, to)
		if errors.Is(err, pgx.ErrNoRows) {
			return recipient{to: strings.ToLower(to), userID: strings.ToLower(to)}, nil
		}
		if err != nil {
			return recipient{}, err
		}
		target := strings.ToLower(to)
		if c.ViaAlias == 1 {
			// Reached through an old address: the contact's current one is
			// the target.
			if c.Email == nil || *c.Email == "" {
				return recipient{}, errcode.NotFound("No resolvable email for recipient")
			}
			target = *c.Email
		}
		return recipient{to: target, userID: contactKey(c.ExternalID, c.AnonymousID, c.ID), contactID: c.ID.String()}, nil
	}
	c, err := q.MailerContactByExternalID(ctx, &userID)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (c.Email == nil || *c.Email == "")) {
		return recipient{}, errcode.NotFound("No resolvable email for recipient")
	}
	if err != nil {
		return recipient{}, err
	}
	return recipient{to: *c.Email, userID: contactKey(c.ExternalID, c.AnonymousID, c.ID), contactID: c.ID.String()}, nil
}

// contactKey is the history key of a contact: external id, else anonymous
// id, else its uuid.
func contactKey(external, anonymous *string, id uuid.UUID) string {
	switch {
	case external != nil && *external != "":
		return *external
	case anonymous != nil && *anonymous != "":
		return *anonymous
	}
	return id.String()
}

// dispatch publishes cmd under key (a generated one when empty) and
// answers with the mailer's result.
func (a *API) dispatch(w http.ResponseWriter, r *http.Request, cmd *streams.EmailCommand, key string) {
	res, ok, err := a.Dispatch(r.Context(), cmd, key)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if !ok {
		httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{"emailSendId": cmd.ID, "status": "queued"})
		return
	}
	if res.Error != "" {
		httpapi.WriteError(w, r, fmt.Errorf("send failed: %s", res.Error))
		return
	}
	out := map[string]any{"emailSendId": res.EmailSendID, "status": res.Status}
	if res.Reason != "" {
		out["reason"] = res.Reason
	}
	httpapi.WriteJSON(w, http.StatusAccepted, out)
}

// Dispatch publishes cmd to EMAILS under the idempotency key "api:"+key (a
// generated one when key is empty), setting cmd.ID and cmd.IdempotencyKey,
// and waits for the mailer's result. ok is false when the mailer did not
// answer in time (the send is queued and will still happen). A result with
// Error set is a send that failed for good.
func (a *API) Dispatch(ctx context.Context, cmd *streams.EmailCommand, key string) (res streams.EmailResult, ok bool, err error) {
	if key == "" {
		key = "api:" + uuid.Must(uuid.NewV7()).String()
	} else {
		key = "api:" + key
	}
	cmd.IdempotencyKey = key
	cmd.ID = uuid.NewSHA1(uuid.NameSpaceOID, []byte("email\x00"+key)).String()
	// Each request publishes its own command (the message id is per
	// attempt): the mailer answers a repeat of a key from its row, and a key
	// whose send failed for good really sends again (spec 20 scenario 6).
	attempt := key + "#" + uuid.Must(uuid.NewV7()).String()
	started := a.now().UTC().Add(-time.Second)
	data, err := json.Marshal(cmd)
	if err != nil {
		return res, false, err
	}
	// Subscribe before publishing, so a fast mailer is not missed. A
	// repeated key answers from the row the first request made.
	sub, err := a.nc.SubscribeSync(streams.EmailResultSubject(cmd.ID))
	if err != nil {
		return res, false, errcode.Wrap(errcode.CodeUnavailable, "the message bus is unavailable", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	if err := a.pub.PublishAsyncBatch(ctx, []bus.OutMsg{{Subject: streams.EmailSendSubject, MsgID: attempt, Data: data}}); err != nil {
		return res, false, errcode.Wrap(errcode.CodeUnavailable, "the message bus is unavailable", err)
	}
	res, ok = a.await(ctx, sub, cmd.ID, started)
	return res, ok, nil
}

// await waits for the mailer's announcement, looking at the command's row
// too in case the announcement was missed; a row not written since the
// request started belongs to an earlier attempt and is not the answer.
func (a *API) await(ctx context.Context, sub *nats.Subscription, id string, started time.Time) (streams.EmailResult, bool) {
	deadline := time.Now().Add(a.wait)
	for time.Now().Before(deadline) {
		msg, err := sub.NextMsg(250 * time.Millisecond)
		if err == nil {
			var res streams.EmailResult
			if json.Unmarshal(msg.Data, &res) == nil {
				return res, true
			}
		}
		if ctx.Err() != nil {
			return streams.EmailResult{}, false
		}
		if row, err := a.q().MailerSendGet(ctx, uuid.MustParse(id)); err == nil && row.Status != "queued" && !row.UpdatedAt.Before(started) {
			res := streams.EmailResult{EmailSendID: id, Status: StatusSent, Reason: deref(row.Reason)}
			if row.Status == "failed" {
				switch deref(row.Reason) {
				case "suppressed":
					res.Status = StatusSuppressed
				case "unsubscribed", "category_unsubscribed":
					res.Status = StatusUnsubscribed
				default:
					res.Status, res.Error = StatusFailed, deref(row.ErrorMessage)
					if res.Error == "" {
						res.Error = "the send failed"
					}
				}
			}
			return res, true
		}
	}
	return streams.EmailResult{}, false
}

// TemplateInfo is a template in the admin list.
type TemplateInfo struct {
	Key            string  `json:"key"`
	DefaultSubject string  `json:"defaultSubject"`
	Category       *string `json:"category"`
	HasPreview     bool    `json:"hasPreview"`
}

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request) {
	out := []TemplateInfo{}
	for _, t := range a.templates.All() {
		info := TemplateInfo{Key: t.Key, DefaultSubject: t.Subject, HasPreview: true}
		if t.Category != "" {
			c := t.Category
			info.Category = &c
		}
		out = append(out, info)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"templates": out})
}

// previewProps layers the engine defaults, the template's examples and the
// given props (spec 20 §1.11).
func previewProps(t templates.Template, given map[string]any) map[string]any {
	props := map[string]any{
		"name": "there", "journeyName": t.Key, "eventName": t.Key,
		"body": "This is a preview of the email body.", "unsubscribeUrl": "https://example.com/unsubscribe?preview=1",
	}
	for k, v := range t.ExampleProps {
		props[k] = v
	}
	for k, v := range given {
		props[k] = v
	}
	return props
}

func (a *API) preview(w http.ResponseWriter, r *http.Request) {
	key := httpapi.Param(r, "key")
	t, ok := a.templates.Get(key)
	if !ok {
		httpapi.WriteError(w, r, errcode.NotFound("Template not found"))
		return
	}
	var given map[string]any
	if raw := r.URL.Query().Get("props"); raw != "" {
		b, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			b, err = base64.RawURLEncoding.DecodeString(raw)
		}
		if err != nil || json.Unmarshal(b, &given) != nil || given == nil {
			httpapi.WriteError(w, r, errcode.InvalidField("props", "Invalid props: expected base64 JSON object"))
			return
		}
	}
	rendered, err := a.templates.Render(key, previewProps(t, given), templates.RenderOptions{})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("Failed to render template: %w", err))
		return
	}
	switch r.URL.Query().Get("format") {
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(rendered.HTML))
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(rendered.Text))
	case "":
		var cat *string
		if t.Category != "" {
			cat = &t.Category
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"key": key, "subject": rendered.Subject, "category": cat,
			"preview": nil, "html": rendered.HTML, "text": rendered.Text})
	default:
		httpapi.WriteError(w, r, errcode.InvalidField("format", "must be html or text"))
	}
}

func (a *API) sendTest(w http.ResponseWriter, r *http.Request) {
	key := httpapi.Param(r, "key")
	t, ok := a.templates.Get(key)
	if !ok {
		httpapi.WriteError(w, r, errcode.NotFound("Template not found"))
		return
	}
	var req struct {
		To    string         `json:"to"`
		Props map[string]any `json:"props"`
	}
	if err := httpapi.DecodeJSON(w, r, &req, maxSendBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if !httpapi.ValidEmail(req.To) {
		httpapi.WriteError(w, r, errcode.InvalidField("to", "must be a valid email address"))
		return
	}
	category := t.Category
	if category == "" {
		category = "transactional"
	}
	props, err := json.Marshal(previewProps(t, req.Props))
	if err != nil {
		httpapi.WriteError(w, r, errcode.InvalidField("props", "must be a JSON object"))
		return
	}
	cmd := &streams.EmailCommand{V: 1, To: req.To, Template: key, Props: props, Category: category,
		SkipPreferenceCheck: true, RequestedAt: a.now().UTC()}
	a.dispatch(w, r, cmd, "")
}
