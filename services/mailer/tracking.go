package mailer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// pixel is a 1×1 transparent GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// Engagement event names, ingested for the contact so journeys can wait for
// them and buckets count them (spec 20 §2.4).
const (
	EventOpened  = "email.opened"
	EventClicked = "email.link_clicked"
)

// TrackingRoutes registers the public tracking routes.
func (m *Mailer) TrackingRoutes(r *httpapi.Router) {
	tags := []string{"tracking"}
	r.Handle(http.MethodGet, "/v1/t/o/:id", http.HandlerFunc(m.open), httpapi.Doc{
		Summary: "Open pixel", Tags: tags,
		Description: "Always a 1×1 GIF (unknown ids too). The first open fills opened_at; every open is ingested as email.opened for the contact.",
		Responses:   map[int]httpapi.Response{200: {Description: "image/gif"}, 400: {Description: "id is not a UUID"}},
	})
	r.Handle(http.MethodGet, "/v1/t/c/:id", http.HandlerFunc(m.click), httpapi.Doc{
		Summary: "Tracked link", Tags: tags,
		Description: "Redirects to the URL the sent email held (only stored URLs: no open redirect); an unknown link redirects to the public URL. Every click is recorded and ingested as email.link_clicked.",
		Responses:   map[int]httpapi.Response{302: {Description: "Redirect"}, 400: {Description: "id is not a UUID"}},
	})
}

func (m *Mailer) open(w http.ResponseWriter, r *http.Request) {
	id, err := httpapi.ParamUUID(r, "id")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	now := m.now().UTC()
	row, err := dbsqlc.New(m.pool).MailerOpen(r.Context(), dbsqlc.MailerOpenParams{At: now, ID: id})
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		m.log.Error("record open", "emailSendId", id, "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "image/gif")
	h.Set("Cache-Control", "no-store, no-cache, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "0")
	_, _ = w.Write(pixel)
	if err != nil {
		return // unknown id: nothing to attribute
	}
	props := map[string]any{"emailSendId": row.ID.String(), "templateKey": deref(row.TemplateKey), "first": row.First}
	if automated(r) {
		props["automated"] = true
	}
	m.engagement(r.Context(), EventOpened, engaged{contactID: row.ContactID, userID: row.UserID, to: row.ToEmail}, props, now)
}

func (m *Mailer) click(w http.ResponseWriter, r *http.Request) {
	id, err := httpapi.ParamUUID(r, "id")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	q := dbsqlc.New(m.pool)
	link, err := q.MailerLinkGet(r.Context(), id)
	if errors.Is(err, pgx.ErrNoRows) {
		http.Redirect(w, r, m.home(), http.StatusFound)
		return
	}
	if err != nil {
		httpapi.WriteError(w, r, errcode.Wrap(errcode.CodeUnavailable, "tracking is unavailable", err))
		return
	}
	now := m.now().UTC()
	bot := automated(r)
	ip, ua := clientIP(r), r.UserAgent()
	p := dbsqlc.MailerClickInsertParams{ID: uuid.Must(uuid.NewV7()), LinkID: link.ID, EmailSendID: link.EmailSendID, Automated: bot, At: now}
	if ip != "" {
		p.IpAddress = &ip
	}
	if ua != "" {
		p.UserAgent = &ua
	}
	if err := q.MailerClickInsert(r.Context(), p); err != nil {
		m.log.Error("record click", "link", id, "err", err)
	}
	row, err := q.MailerClick(r.Context(), dbsqlc.MailerClickParams{At: now, ID: link.EmailSendID})
	http.Redirect(w, r, link.Url, http.StatusFound)
	if err != nil {
		m.log.Error("record click", "emailSendId", link.EmailSendID, "err", err)
		return
	}
	props := map[string]any{"emailSendId": row.ID.String(), "templateKey": deref(row.TemplateKey), "linkUrl": link.Url, "linkId": link.ID.String(), "first": row.First}
	if bot {
		props["automated"] = true
	}
	m.engagement(r.Context(), EventClicked, engaged{contactID: row.ContactID, userID: row.UserID, to: row.ToEmail}, props, now)
}

func (m *Mailer) home() string {
	if m.cfg.PublicURL == "" {
		return "/"
	}
	return m.cfg.PublicURL
}

type engaged struct {
	contactID *uuid.UUID
	userID    *string
	to        string
}

// engagement ingests an open or click for the contact of the send (spec 20
// §2.4 [Go]: the send's contact, else its user id, else the address).
// Failures are logged: a tracking hit never fails for them.
func (m *Mailer) engagement(ctx context.Context, name string, who engaged, props map[string]any, at time.Time) {
	if m.analytics != nil {
		id := who.to
		if who.userID != nil && *who.userID != "" {
			id = *who.userID
		}
		m.analytics.Capture(id, name, props)
	}
	if m.pub == nil {
		return
	}
	data, err := json.Marshal(props)
	if err != nil {
		return
	}
	ev := &streams.Event{V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeTrack,
		Name: name, EventProperties: data, ReceivedAt: at, Source: "tracking"}
	switch {
	case who.contactID != nil:
		ev.ContactID = who.contactID.String()
	case who.userID != nil && *who.userID != "" && *who.userID != who.to:
		ev.UserID = *who.userID
	default:
		ev.Email = who.to
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return
	}
	// The hit is answered already; the publish must not die with the
	// request.
	ctx = context.WithoutCancel(ctx)
	if err := m.pub.PublishAsyncBatch(ctx, []bus.OutMsg{{Subject: streams.EventSubject(ev), MsgID: ev.ID, Data: body}}); err != nil {
		m.log.Error("ingest engagement", "event", name, "err", err)
	}
}

// clientIP is the first X-Forwarded-For entry, else X-Real-IP (spec 20
// §2.3.2).
func clientIP(r *http.Request) string {
	if f := r.Header.Get("X-Forwarded-For"); f != "" {
		first, _, _ := strings.Cut(f, ",")
		return strings.TrimSpace(first)
	}
	return strings.TrimSpace(r.Header.Get("X-Real-IP"))
}

// automatedAgents are substrings of user agents of link scanners and
// privacy proxies that fetch every link or image without a person: their
// hits are recorded with a flag, never dropped (spec 20 §2.4.6 [Go]).
var automatedAgents = []string{
	"googleimageproxy", "yahoomailproxy", "barracuda", "mimecast", "proofpoint", "symantec",
	"bot", "crawler", "spider", "scanner", "python-requests", "curl/", "go-http-client",
}

// automated reports whether the hit looks automated. Apple Mail Privacy
// Protection fetches pixels with a bare "Mozilla/5.0" agent.
func automated(r *http.Request) bool {
	ua := strings.ToLower(r.UserAgent())
	if ua == "" || ua == "mozilla/5.0" {
		return true
	}
	for _, a := range automatedAgents {
		if strings.Contains(ua, a) {
			return true
		}
	}
	return false
}
