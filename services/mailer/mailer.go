// Package mailer is the tracked send pipeline (spec 20 §1–2): the mailer
// consumer turns send commands from the EMAILS stream into email_sends rows
// and provider calls, at most once per idempotency key, and the tracking
// routes record opens and clicks and publish them as events.
//
// Exactly once: a command's key is unique on email_sends; the provider call
// carries the send's id as its idempotency key (Resend's Idempotency-Key,
// the dev outbox's unique key). A command redelivered after a crash between
// the provider call and the status update finds its row still queued and
// calls the provider again with the same key, which the provider drops.
package mailer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Name is the durable name of the mailer consumer on EMAILS.
const Name = "mailer"

// DefaultFrom is the sender when neither the command nor the configuration
// names one (RESEND_FROM_EMAIL).
const DefaultFrom = "noreply@hogsend.com"

// Send outcomes (spec 20 §1.2 results).
const (
	StatusSent         = "sent"
	StatusUnsubscribed = "unsubscribed"
	StatusSuppressed   = "suppressed"
	StatusSkipped      = "skipped"
	StatusFailed       = "failed"
)

// Suppression answers the suppression check of spec 20 §1.3 (with the
// [Go] rule: normalised address, any blocking row blocks). reason is
// suppressed, unsubscribed or category_unsubscribed.
type Suppression interface {
	Check(ctx context.Context, email, category string) (blocked bool, reason string, err error)
}

// Links builds the token links a tracked send carries (spec 20 §3.5);
// identity is the contact key, else the address.
type Links interface {
	// The links of one send are signed as issued at the send's creation,
	// so a send delivered again after a crash carries the same bytes under
	// the same provider idempotency key (Resend refuses a key reused with
	// another payload).
	UnsubscribeURLAt(identity, email, category string, issued time.Time) string
	PreferencesURLAt(identity, email string, issued time.Time) string
}

// Publisher publishes engagement events into EVENTS.
type Publisher interface {
	PublishAsyncBatch(ctx context.Context, msgs []bus.OutMsg) error
}

// Analytics captures engagement events for a distinct id.
type Analytics interface {
	Capture(distinctID, event string, props map[string]any)
}

// Notifier publishes a core NATS message (a *nats.Conn).
type Notifier interface {
	Publish(subject string, data []byte) error
}

// FrequencyCap limits how many emails a recipient gets (spec 20 §1.4).
type FrequencyCap struct {
	Count  int
	Window time.Duration
	// ByCategory overrides the limit for sends of a category, counting
	// only that category.
	ByCategory map[string]CategoryCap
	// Exempt categories are never capped; nil means ["transactional"].
	Exempt []string
}

// CategoryCap is the limit of one category.
type CategoryCap struct {
	Count  int
	Window time.Duration
}

// Config configures the mailer.
type Config struct {
	// From is the default sender.
	From string
	// PublicURL is the base of tracking links (API_PUBLIC_URL).
	PublicURL string
	// FrequencyCap is nil for none.
	FrequencyCap *FrequencyCap
	Brand        templates.Brand
	// DisableTracking sends without the open pixel and link rewriting.
	DisableTracking bool
	// Lease is how long a delivery attempt holds its rows (default
	// DefaultLease); it must outlast the slowest attempt.
	Lease time.Duration
	// MaxDeliver is the consumer's MaxDeliver: on that delivery a send
	// still failing with a retryable error is marked failed (default 10).
	MaxDeliver int
}

// Mailer sends tracked email.
type Mailer struct {
	pool      *pgxpool.Pool
	templates *templates.Registry
	provider  provider.Provider
	supp      Suppression
	links     Links
	pub       Publisher
	notifier  Notifier
	analytics Analytics
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	metrics   *metrics
}

type metrics struct {
	sends *prometheus.CounterVec
}

// Options are the mailer's collaborators.
type Options struct {
	Suppression Suppression // nil: nothing is withheld
	Links       Links       // nil: no unsubscribe links
	Publisher   Publisher   // nil: engagement is not published
	// Analytics receives opens and clicks (PostHog when configured).
	Analytics Analytics
	// Notifier announces each command's result on
	// streams.EmailResultSubject (core NATS) for a waiting API call.
	Notifier   Notifier
	Logger     *slog.Logger
	Now        func() time.Time
	Registerer prometheus.Registerer
}

// New returns the mailer.
func New(pool *pgxpool.Pool, tpls *templates.Registry, p provider.Provider, cfg Config, opts Options) (*Mailer, error) {
	if cfg.From == "" {
		cfg.From = DefaultFrom
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 10
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	m := &Mailer{pool: pool, templates: tpls, provider: p, supp: opts.Suppression, links: opts.Links, pub: opts.Publisher,
		notifier: opts.Notifier, analytics: opts.Analytics, cfg: cfg, log: opts.Logger, now: opts.Now}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.metrics = &metrics{sends: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hogsend_email_sends_total", Help: "Tracked sends by outcome (sent, unsubscribed, suppressed, skipped, failed) and provider.",
	}, []string{"outcome", "provider"})}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(m.metrics.sends); err != nil {
			return nil, fmt.Errorf("register mailer metrics: %w", err)
		}
	}
	return m, nil
}

// Result is the outcome of a tracked send.
type Result struct {
	EmailSendID string `json:"emailSendId"`
	ResendID    string `json:"resendId,omitempty"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
}

// Handle is the EMAILS consumer: one command, one tracked send. A
// retryable provider failure leaves the row queued and retries the command
// with backoff; on its last delivery the row is marked failed. An unknown
// template or a malformed command is a poison message.
func (m *Mailer) Handle(ctx context.Context, msg bus.Msg) error {
	cmd, err := decodeCommand(msg.Data)
	if err != nil {
		return err
	}
	res, err := m.Send(ctx, cmd)
	return m.outcome(ctx, cmd, res, err, msg.NumDelivered)
}

// decodeCommand decodes a command and refuses, as a poison message, text
// PostgreSQL cannot store (a NUL byte): stored in a batch with others it
// would fail their statements too.
func decodeCommand(data []byte) (*streams.EmailCommand, error) {
	var cmd streams.EmailCommand
	if err := json.Unmarshal(data, &cmd); err != nil {
		return nil, bus.Permanent(fmt.Errorf("decode email command: %w", err))
	}
	for _, f := range []string{cmd.ID, cmd.IdempotencyKey, cmd.To, cmd.From, cmd.UserID, cmd.ContactID, cmd.Template, cmd.Subject,
		cmd.Category, cmd.JourneyID, cmd.JourneyName, cmd.JourneyStateID} {
		if strings.ContainsRune(f, 0) {
			return nil, bus.Permanent(errcode.Invalid("email command: text fields must not contain NUL bytes"))
		}
	}
	return &cmd, nil
}

// outcome announces how a command ended and classifies its error for the
// consumer (Handle and HandleBatch alike).
func (m *Mailer) outcome(ctx context.Context, cmd *streams.EmailCommand, res Result, err error, delivered uint64) error {
	m.announce(cmd, res, err, delivered)
	switch {
	case err == nil, errors.Is(err, ErrSendFailed):
		return nil // sent, withheld, capped, or failed for good (the row says so)
	case errcode.Code(err) == errcode.CodeInvalidRequest || errcode.Code(err) == errcode.CodeNotFound:
		return bus.Permanent(err)
	}
	var busy *InProgressError
	if errors.As(err, &busy) {
		return bus.RetryAfter(err, max(time.Until(busy.Until), 0)+time.Second)
	}
	switch {
	case delivered >= uint64(m.cfg.MaxDeliver) && cmd.IdempotencyKey != "":
		// The last attempt: the row must not stay queued for ever.
		q := dbsqlc.New(m.pool)
		if row, rerr := q.MailerSendByKey(ctx, &cmd.IdempotencyKey); rerr == nil && row.Status == "queued" {
			_ = m.fail(ctx, q, row, "provider", err)
		}
		return bus.Permanent(err)
	}
	return err
}

// announce tells a waiting API call how its command ended: a result, a
// failure for good, or (on the last delivery) the error that exhausted it.
// Retries in between say nothing; the caller keeps waiting.
func (m *Mailer) announce(cmd *streams.EmailCommand, res Result, err error, delivered uint64) {
	if m.notifier == nil || cmd.ID == "" {
		return
	}
	out := streams.EmailResult{EmailSendID: res.EmailSendID, Status: res.Status, Reason: res.Reason}
	var busy *InProgressError
	switch {
	case err == nil:
	case errors.As(err, &busy):
		return // another attempt holds the send: it announces
	case errors.Is(err, ErrSendFailed):
		out.Status, out.Error = StatusFailed, err.Error()
	case errcode.Code(err) == errcode.CodeInvalidRequest || errcode.Code(err) == errcode.CodeNotFound || delivered >= uint64(m.cfg.MaxDeliver):
		out.Status, out.Error = StatusFailed, err.Error()
	default:
		return
	}
	data, _ := json.Marshal(out)
	if perr := m.notifier.Publish(streams.EmailResultSubject(cmd.ID), data); perr != nil {
		m.log.Debug("announce send result", "id", cmd.ID, "err", perr)
	}
}

// ErrSendFailed marks a send that failed for good: its row is failed and
// its key released. Retrying the same command re-sends.
var ErrSendFailed = errors.New("send failed")

// Send runs the tracked send algorithm (spec 20 §1.2) for cmd.
func (m *Mailer) Send(ctx context.Context, cmd *streams.EmailCommand) (Result, error) {
	q := dbsqlc.New(m.pool)
	key := cmd.IdempotencyKey // "" counts as absent (§1.6.4 [Go])
	if key != "" {
		row, err := q.MailerSendByKey(ctx, &key)
		switch {
		case err == nil:
			if row.Status != "queued" {
				return Result{EmailSendID: row.ID.String(), ResendID: deref(row.ResendID), Status: StatusSent}, nil
			}
			return m.deliver(ctx, cmd, row) // a crash left it mid-send
		case !errors.Is(err, pgx.ErrNoRows):
			return Result{}, fmt.Errorf("look up send by key: %w", err)
		}
	}
	if cmd.To == "" {
		return Result{}, errcode.Invalid("to: is required")
	}
	tpl, ok := m.templates.Get(cmd.Template)
	if !ok {
		return Result{}, errcode.NotFound("Unknown template: " + cmd.Template)
	}
	category := cmd.Category
	if category == "" {
		category = tpl.Category
	}
	now := m.now().UTC()
	if !cmd.SkipPreferenceCheck {
		if m.supp != nil {
			blocked, reason, err := m.supp.Check(ctx, cmd.To, category)
			if err != nil {
				return Result{}, fmt.Errorf("suppression check: %w", err)
			}
			if blocked {
				return m.withhold(ctx, q, cmd, category, reason, now)
			}
		}
		capped, err := m.capped(ctx, q, cmd.To, cmd.Category, now)
		if err != nil {
			return Result{}, err
		}
		if capped {
			m.log.Info("send skipped by the frequency cap", "to", cmd.To, "template", cmd.Template)
			m.metrics.sends.WithLabelValues(StatusSkipped, m.provider.Name()).Inc()
			return Result{Status: StatusSkipped, Reason: "frequency_capped"}, nil
		}
	}
	p := m.insertParams(cmd, category, "queued", "", now)
	if key != "" {
		p.IdempotencyKey = &key
	}
	if cmd.ID != "" {
		if id, err := uuid.Parse(cmd.ID); err == nil {
			p.ID = id
		}
	}
	row, err := q.MailerSendInsert(ctx, p)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "email_sends_pkey" {
		// The derived id names an earlier send of this command that failed
		// for good and released its key: this is a real re-send, in a row
		// of its own.
		p.ID = uuid.Must(uuid.NewV7())
		row, err = q.MailerSendInsert(ctx, p)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		// A concurrent twin holds the key: its row is the send.
		if row, err = q.MailerSendByKey(ctx, &key); err != nil {
			return Result{}, fmt.Errorf("read the send holding key %q: %w", key, err)
		}
		if row.Status != "queued" {
			return Result{EmailSendID: row.ID.String(), ResendID: deref(row.ResendID), Status: StatusSent}, nil
		}
	} else if err != nil {
		return Result{}, fmt.Errorf("insert send: %w", err)
	}
	return m.deliver(ctx, cmd, row)
}

// insertParams are the identity fields of a send row.
func (m *Mailer) insertParams(cmd *streams.EmailCommand, category, status, reason string, now time.Time) dbsqlc.MailerSendInsertParams {
	from := cmd.From
	if from == "" {
		from = m.cfg.From
	}
	userEmail := cmd.To
	p := dbsqlc.MailerSendInsertParams{
		ID: uuid.Must(uuid.NewV7()), TemplateKey: &cmd.Template, FromEmail: from, ToEmail: cmd.To,
		Subject: cmd.Subject, Status: status, UserEmail: &userEmail, At: now,
	}
	if category != "" {
		p.Category = &category
	}
	if cmd.UserID != "" {
		p.UserID = &cmd.UserID
	}
	if id, err := uuid.Parse(cmd.JourneyStateID); err == nil {
		p.JourneyStateID = &id
	}
	if id, err := uuid.Parse(cmd.ContactID); err == nil {
		p.ContactID = &id
	}
	if reason != "" {
		p.Reason = &reason
	}
	name := m.provider.Name()
	p.Provider = &name
	return p
}

// withhold records a blocked send: a failed row without the key, no
// provider call (spec 20 §1.2.4.1).
func (m *Mailer) withhold(ctx context.Context, q *dbsqlc.Queries, cmd *streams.EmailCommand, category, reason string, now time.Time) (Result, error) {
	p := m.insertParams(cmd, category, "failed", reason, now)
	row, err := q.MailerSendInsert(ctx, p)
	if err != nil {
		return Result{}, fmt.Errorf("record withheld send: %w", err)
	}
	m.log.Info("send withheld", "emailSendId", row.ID, "to", cmd.To, "reason", reason)
	status := StatusUnsubscribed
	if reason == "suppressed" {
		status = StatusSuppressed
	}
	m.metrics.sends.WithLabelValues(status, m.provider.Name()).Inc()
	return Result{EmailSendID: row.ID.String(), Status: status, Reason: reason}, nil
}

// capped applies the frequency cap to the given category (spec 20 §1.4).
func (m *Mailer) capped(ctx context.Context, q *dbsqlc.Queries, to, category string, now time.Time) (bool, error) {
	limit, window, only, ok := m.capScope(category)
	if !ok {
		return false, nil
	}
	n, err := q.MailerCapCount(ctx, dbsqlc.MailerCapCountParams{ToEmail: to, Since: now.Add(-window), Category: only})
	if err != nil {
		return false, fmt.Errorf("frequency cap: %w", err)
	}
	return n >= int64(limit), nil
}

// capScope is the frequency cap of a send in category: at most limit sends
// in window, counting only the category when only is set. ok is false when
// the send is not capped.
func (m *Mailer) capScope(category string) (limit int, window time.Duration, only *string, ok bool) {
	fc := m.cfg.FrequencyCap
	if fc == nil {
		return 0, 0, nil, false
	}
	exempt := fc.Exempt
	if exempt == nil {
		exempt = []string{"transactional"}
	}
	for _, c := range exempt {
		if category != "" && c == category {
			return 0, 0, nil, false
		}
	}
	limit, window = fc.Count, fc.Window
	if c, ok := fc.ByCategory[category]; ok && category != "" {
		limit, window, only = c.Count, c.Window, &category
	}
	if limit <= 0 || window <= 0 {
		return 0, 0, nil, false
	}
	return limit, window, only, true
}

// DefaultLease bounds one delivery attempt: the wait for the provider's
// rate limit, the provider client's own retries (Resend: four attempts of
// up to 60 s). It must outlast any attempt, or a second one could claim a
// row still being sent; the price is that a crashed attempt's row is taken
// over only after it. Config.Lease overrides it (the engine lengthens it
// when a slow rate limit could make a batch wait longer).
const DefaultLease = 30 * time.Minute

// InProgressError says another attempt is delivering the same send; the
// consumer retries the command once that attempt's lease ends, by when it
// has finished (and the retry finds the row sent) or crashed.
type InProgressError struct{ Until time.Time }

func (e *InProgressError) Error() string {
	return "another attempt is delivering this send until " + e.Until.Format(time.RFC3339)
}

// deliver renders, tracks and hands a queued row to the provider, holding
// the row's lease so concurrent copies of the command make one call.
func (m *Mailer) deliver(ctx context.Context, cmd *streams.EmailCommand, row dbsqlc.EmailSend) (res Result, err error) {
	q := dbsqlc.New(m.pool)
	claimAt := m.now().UTC()
	until := claimAt.Add(m.cfg.Lease)
	if _, cerr := q.MailerSendClaim(ctx, dbsqlc.MailerSendClaimParams{Until: &until, ID: row.ID, Now: &claimAt}); errors.Is(cerr, pgx.ErrNoRows) {
		st, lerr := q.MailerSendLease(ctx, row.ID)
		switch {
		case lerr != nil:
			return Result{}, fmt.Errorf("read send %s: %w", row.ID, lerr)
		case st.Status == "failed":
			return Result{EmailSendID: row.ID.String(), Status: StatusFailed}, fmt.Errorf("%w: %s", ErrSendFailed, row.ID)
		case st.Status != "queued":
			return Result{EmailSendID: row.ID.String(), Status: StatusSent}, nil
		}
		return Result{}, &InProgressError{Until: derefTime(st.LeaseUntil)}
	} else if cerr != nil {
		return Result{}, fmt.Errorf("claim send %s: %w", row.ID, cerr)
	}
	defer func() {
		// A retryable failure lets the next attempt claim at once.
		if err != nil && !errors.Is(err, ErrSendFailed) {
			_ = q.MailerSendRelease(context.WithoutCancel(ctx), row.ID)
		}
	}()
	c, err := m.compose(cmd, row)
	if err != nil {
		var ce *composeError
		if errors.As(err, &ce) {
			return Result{EmailSendID: row.ID.String(), Status: StatusFailed}, m.fail(ctx, q, row, ce.reason, ce.err)
		}
		return Result{}, err
	}
	if len(c.linkIDs) > 0 {
		if err := q.MailerTrackedLinksInsert(ctx, dbsqlc.MailerTrackedLinksInsertParams{Ids: c.linkIDs, EmailSendID: row.ID, Urls: c.urls, At: m.now().UTC()}); err != nil {
			return Result{}, fmt.Errorf("store tracked links: %w", err)
		}
	}
	sent, err := m.provider.Send(ctx, c.msg)
	if err != nil {
		if provider.Retryable(err) {
			return Result{}, fmt.Errorf("send %s: %w", row.ID, err)
		}
		return Result{EmailSendID: row.ID.String(), Status: StatusFailed}, m.fail(ctx, q, row, "provider", err)
	}
	var resendID *string
	if sent.ID != "" {
		resendID = &sent.ID
	}
	at, name := m.now().UTC(), m.provider.Name()
	if _, err := q.MailerSendMarkSent(ctx, dbsqlc.MailerSendMarkSentParams{At: &at, ResendID: resendID, Provider: &name, ID: row.ID}); err != nil {
		return Result{}, fmt.Errorf("mark %s sent: %w", row.ID, err)
	}
	m.metrics.sends.WithLabelValues(StatusSent, m.provider.Name()).Inc()
	return Result{EmailSendID: row.ID.String(), ResendID: sent.ID, Status: StatusSent}, nil
}

// composed is a send ready for the provider: its message and the tracked
// links the message carries (stored before the provider call).
type composed struct {
	msg     provider.Message
	linkIDs []uuid.UUID
	urls    []string
}

// composeError is a send that cannot be rendered: it fails for good with
// reason (template or render).
type composeError struct {
	reason string
	err    error
}

func (e *composeError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *composeError) Unwrap() error { return e.err }

// compose renders cmd onto row with its unsubscribe links and tracking. Its
// error is an errcode invalid error (props that are not an object) or a
// *composeError.
func (m *Mailer) compose(cmd *streams.EmailCommand, row dbsqlc.EmailSend) (composed, error) {
	props := map[string]any{}
	if len(cmd.Props) > 0 {
		if err := json.Unmarshal(cmd.Props, &props); err != nil {
			return composed{}, errcode.Invalid("props: must be a JSON object")
		}
	}
	category := deref(row.Category)
	if category == "journey" {
		journeyProps(props, cmd)
	}
	opts := templates.RenderOptions{Brand: m.cfg.Brand}
	headers := map[string]string{}
	if !cmd.SkipPreferenceCheck && m.links != nil {
		identity := cmd.UserID
		if identity == "" {
			identity = cmd.To
		}
		linkCategory := category
		if category == "journey" {
			// A journey email's one click unsubscribes from everything
			// (spec 20 §1.8.1).
			linkCategory = ""
		}
		opts.UnsubscribeURL = m.links.UnsubscribeURLAt(identity, cmd.To, linkCategory, row.CreatedAt)
		opts.PreferencesURL = m.links.PreferencesURLAt(identity, cmd.To, row.CreatedAt)
		if opts.UnsubscribeURL != "" {
			// RFC 8058 one-click: a mail client POSTs to this URL.
			headers["List-Unsubscribe"] = "<" + opts.UnsubscribeURL + ">"
			headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
		}
	}
	r, err := m.templates.Render(cmd.Template, props, opts)
	if err != nil {
		if errors.Is(err, templates.ErrUnknownTemplate) {
			return composed{}, &composeError{reason: "template", err: err}
		}
		return composed{}, &composeError{reason: "render", err: err}
	}
	subject := row.Subject
	if subject == "" {
		subject = r.Subject
	}
	var c composed
	html := r.HTML
	if !m.cfg.DisableTracking && m.cfg.PublicURL != "" {
		html, _ = templates.Track(r.HTML, func(_ int, orig string) string {
			// The link id derives from the send and the URL, so a retried
			// delivery renders the same links onto the same rows.
			id := uuid.NewSHA1(row.ID, []byte(orig))
			c.linkIDs = append(c.linkIDs, id)
			c.urls = append(c.urls, orig)
			return m.cfg.PublicURL + "/v1/t/c/" + id.String()
		}, m.cfg.PublicURL+"/v1/t/o/"+row.ID.String())
	}
	c.msg = provider.Message{
		From: row.FromEmail, To: []string{row.ToEmail}, ReplyTo: cmd.ReplyTo, Subject: subject, HTML: html, Text: r.Text,
		Headers: headers, IdempotencyKey: row.ID.String(),
		Tags: []provider.Tag{{Name: "templateKey", Value: tagValue(cmd.Template)}},
	}
	if cmd.JourneyID != "" {
		c.msg.Tags = append(c.msg.Tags, provider.Tag{Name: "journeyId", Value: tagValue(cmd.JourneyID)})
	}
	return c, nil
}

// fail marks the row failed, releasing its key, and returns a permanent
// error for the consumer (the command is not retried).
func (m *Mailer) fail(ctx context.Context, q *dbsqlc.Queries, row dbsqlc.EmailSend, reason string, cause error) error {
	msg := cause.Error()
	if _, err := q.MailerSendMarkFailed(ctx, dbsqlc.MailerSendMarkFailedParams{Reason: &reason, ErrorMessage: &msg, At: m.now().UTC(), ID: row.ID}); err != nil {
		return fmt.Errorf("mark %s failed: %w", row.ID, err)
	}
	m.metrics.sends.WithLabelValues(StatusFailed, m.provider.Name()).Inc()
	m.log.Warn("send failed", "emailSendId", row.ID, "to", row.ToEmail, "reason", reason, "err", cause)
	return fmt.Errorf("%w: %s: %v", ErrSendFailed, row.ID, cause)
}

// journeyProps sets the props a journey send carries (spec 20 §1.8.2),
// keeping what the journey gave except where the spec overrides.
func journeyProps(props map[string]any, cmd *streams.EmailCommand) {
	name, _ := props["firstName"].(string)
	if name == "" {
		name, _ = props["name"].(string)
	}
	if name == "" {
		name, _, _ = strings.Cut(cmd.To, "@")
	}
	props["name"] = name
	jn := cmd.JourneyName
	if jn == "" {
		jn = cmd.Template
	}
	props["journeyName"] = jn
	props["eventName"] = cmd.Template
	if cmd.Subject != "" {
		props["body"] = cmd.Subject
	}
}

// tagValue keeps the characters Resend allows in tag values.
func tagValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
