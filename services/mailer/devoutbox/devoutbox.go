// Package devoutbox is the provider a fresh install sends through when no
// real one is configured: it stores each message, rendered and with the
// headers it would carry, in PostgreSQL, and serves them on
// /v1/admin/outbox, so `hogsend dev` shows exactly what would have gone
// out without any account.
package devoutbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// Name is the provider name stored on send rows.
const Name = "dev-outbox"

// Outbox is the provider and its admin routes.
type Outbox struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// New returns the outbox over pool.
func New(pool *pgxpool.Pool) *Outbox { return &Outbox{pool: pool, now: time.Now} }

// MessageIdempotent implements provider.MessageIdempotent: a message is
// stored once per key, whichever call (single or batch) carries it.
func (o *Outbox) MessageIdempotent() bool { return true }

// Name implements provider.Provider.
func (o *Outbox) Name() string { return Name }

// Send implements provider.Provider: the message is stored once per
// idempotency key, and a repeat answers the stored message's id.
func (o *Outbox) Send(ctx context.Context, m provider.Message) (provider.Sent, error) {
	key := m.IdempotencyKey
	if key == "" {
		key = uuid.Must(uuid.NewV7()).String()
	}
	headers := m.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	h, err := json.Marshal(headers)
	if err != nil {
		return provider.Sent{}, &provider.Error{Err: fmt.Errorf("encode headers: %w", err)}
	}
	q := dbsqlc.New(o.pool)
	if err := q.DevOutboxInsert(ctx, dbsqlc.DevOutboxInsertParams{
		ID: uuid.Must(uuid.NewV7()), SendKey: key, FromEmail: m.From, ToEmails: m.To, Subject: m.Subject,
		Headers: h, Html: m.HTML, Text: m.Text, CreatedAt: o.now().UTC(),
	}); err != nil {
		return provider.Sent{}, &provider.Error{Retryable: true, Err: fmt.Errorf("store in the dev outbox: %w", err)}
	}
	id, err := q.DevOutboxIDByKey(ctx, key)
	if err != nil {
		return provider.Sent{}, &provider.Error{Retryable: true, Err: fmt.Errorf("read the dev outbox: %w", err)}
	}
	return provider.Sent{ID: id.String()}, nil
}

var _ provider.BatchProvider = (*Outbox)(nil)

// SendBatch implements provider.BatchProvider: Send for many messages in
// two statements. Results are in the order of msgs; a message whose key
// is stored already (a repeat, or twice in msgs) answers the stored id.
func (o *Outbox) SendBatch(ctx context.Context, msgs []provider.Message) ([]provider.Sent, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	p := dbsqlc.DevOutboxInsertBatchParams{CreatedAt: o.now().UTC()}
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		keys[i] = m.IdempotencyKey
		if keys[i] == "" {
			keys[i] = uuid.Must(uuid.NewV7()).String()
		}
		headers := m.Headers
		if headers == nil {
			headers = map[string]string{}
		}
		h, err := json.Marshal(headers)
		if err != nil {
			return nil, &provider.Error{Err: fmt.Errorf("encode headers: %w", err)}
		}
		to := m.To
		if to == nil {
			to = []string{}
		}
		t, err := json.Marshal(to)
		if err != nil {
			return nil, &provider.Error{Err: fmt.Errorf("encode recipients: %w", err)}
		}
		p.Ids = append(p.Ids, uuid.Must(uuid.NewV7()).String())
		p.SendKeys = append(p.SendKeys, keys[i])
		p.FromEmails = append(p.FromEmails, m.From)
		p.ToEmails = append(p.ToEmails, string(t))
		p.Subjects = append(p.Subjects, m.Subject)
		p.Headers = append(p.Headers, string(h))
		p.Htmls = append(p.Htmls, m.HTML)
		p.Texts = append(p.Texts, m.Text)
	}
	q := dbsqlc.New(o.pool)
	if err := q.DevOutboxInsertBatch(ctx, p); err != nil {
		return nil, &provider.Error{Retryable: true, Err: fmt.Errorf("store in the dev outbox: %w", err)}
	}
	rows, err := q.DevOutboxIDsByKeys(ctx, keys)
	if err != nil {
		return nil, &provider.Error{Retryable: true, Err: fmt.Errorf("read the dev outbox: %w", err)}
	}
	ids := make(map[string]uuid.UUID, len(rows))
	for _, r := range rows {
		ids[r.SendKey] = r.ID
	}
	out := make([]provider.Sent, len(msgs))
	for i, k := range keys {
		id, ok := ids[k]
		if !ok {
			return nil, &provider.Error{Retryable: true, Err: fmt.Errorf("read the dev outbox: message %q not stored", k)}
		}
		out[i] = provider.Sent{ID: id.String()}
	}
	return out, nil
}

// Summary is a stored message in the list.
type Summary struct {
	ID        string       `json:"id"`
	To        []string     `json:"to"`
	From      string       `json:"from"`
	Subject   string       `json:"subject"`
	CreatedAt httpapi.Time `json:"createdAt"`
}

// Message is a stored message as sent.
type Message struct {
	Summary
	Headers json.RawMessage `json:"headers"`
	HTML    string          `json:"html"`
	Text    string          `json:"text"`
}

// Routes registers GET /v1/admin/outbox and /v1/admin/outbox/{id} (read
// scope).
func (o *Outbox) Routes(r *httpapi.Router, auth httpapi.Authenticator) {
	read := httpapi.RequireScope(auth, httpapi.ScopeRead)
	tags := []string{"admin", "outbox"}
	summary := httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.UUIDSchema(), "to": httpapi.ArraySchema(httpapi.StringSchema()), "from": httpapi.StringSchema(),
		"subject": httpapi.StringSchema(), "createdAt": httpapi.DateTimeSchema(),
	}, "id", "to", "from", "subject", "createdAt")
	r.Handle(http.MethodGet, "/v1/admin/outbox", read(http.HandlerFunc(o.list)), httpapi.Doc{
		Summary: "Messages the dev outbox provider stored, newest first", Tags: tags, Scope: httpapi.ScopeRead,
		Description: "The dev outbox is the provider when none is configured: nothing leaves the machine, every message is kept as it would have been sent.",
		Query:       httpapi.PaginationQuery(),
		Responses: map[int]httpapi.Response{200: {Description: "A page of messages", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"messages": httpapi.ArraySchema(summary), "total": httpapi.IntegerSchema(), "limit": httpapi.IntegerSchema(), "offset": httpapi.IntegerSchema(),
		}, "messages", "total", "limit", "offset")}},
	})
	r.Handle(http.MethodGet, "/v1/admin/outbox/:id", read(http.HandlerFunc(o.get)), httpapi.Doc{
		Summary: "A stored message: headers as sent, HTML and text", Tags: tags, Scope: httpapi.ScopeRead,
		Query: []httpapi.QueryParam{{Name: "format", Description: "html serves the HTML body itself", Schema: httpapi.EnumSchema("json", "html")}},
		Responses: map[int]httpapi.Response{200: {Description: "The message (JSON), or its HTML with ?format=html"},
			400: {Description: "id is not a UUID"}, 404: {Description: "Not found"}},
	})
}

func (o *Outbox) list(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	q := dbsqlc.New(o.pool)
	rows, err := q.DevOutboxList(r.Context(), dbsqlc.DevOutboxListParams{Lim: int32(limit), Off: int32(offset)})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	total, err := q.DevOutboxCount(r.Context())
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]Summary, len(rows))
	for i, m := range rows {
		out[i] = Summary{ID: m.ID.String(), To: m.ToEmails, From: m.FromEmail, Subject: m.Subject, CreatedAt: httpapi.NewTime(m.CreatedAt)}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"messages": out, "total": total, "limit": limit, "offset": offset})
}

func (o *Outbox) get(w http.ResponseWriter, r *http.Request) {
	id, err := httpapi.ParamUUID(r, "id")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "html" {
		httpapi.WriteError(w, r, errcode.InvalidField("format", "must be json or html"))
		return
	}
	m, err := dbsqlc.New(o.pool).DevOutboxGet(r.Context(), id)
	if errors.Is(err, pgx.ErrNoRows) {
		httpapi.WriteError(w, r, errcode.NotFound("Message not found"))
		return
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if format == "html" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// The body is the engine's own rendering, shown to an admin; the
		// policy keeps its scripts (there should be none) from running.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src * data:; style-src 'unsafe-inline'")
		_, _ = w.Write([]byte(m.Html))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, Message{
		Summary: Summary{ID: m.ID.String(), To: m.ToEmails, From: m.FromEmail, Subject: m.Subject, CreatedAt: httpapi.NewTime(m.CreatedAt)},
		Headers: m.Headers, HTML: m.Html, Text: m.Text,
	})
}
