package mailer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/mailer/resendhook"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// maxWebhookBody bounds a provider webhook body.
const maxWebhookBody = 1 << 20

// Deliverability records bounces and complaints on email_preferences
// (spec 20 §2.5.4–6 with the [Go] upsert when no row exists).
type Deliverability interface {
	RecordBounce(ctx context.Context, userID, email string, at time.Time) error
	RecordComplaint(ctx context.Context, userID, email string, at time.Time) error
}

// WebhookRoutes registers POST /v1/webhooks/resend, verified with secret
// (no secret: every webhook is refused).
func (m *Mailer) WebhookRoutes(r *httpapi.Router, secret string, prefs Deliverability) {
	r.Handle(http.MethodPost, "/v1/webhooks/resend", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		m.resendWebhook(w, req, secret, prefs)
	}), httpapi.Doc{
		Summary: "Resend delivery webhook (Svix-signed)", Tags: []string{"webhooks"},
		Description: "Verifies the svix-id, svix-timestamp and svix-signature headers with RESEND_WEBHOOK_SECRET, then moves the send's status forward (never back) and fills its timestamps when still empty. Bounces and complaints update the address's preferences (three bounces or one complaint suppress it). delivered, bounced and complained become email.* events for the contact.",
		Responses:   map[int]httpapi.Response{200: {Description: `{"ok":true}`}, 401: {Description: "Webhook verification failed (the provider retries)"}},
	})
}

// webhookStatus maps provider event types onto send statuses.
var webhookStatus = map[string]string{
	resendhook.TypeSent: "sent", resendhook.TypeDelivered: "delivered", resendhook.TypeOpened: "opened",
	resendhook.TypeClicked: "clicked", resendhook.TypeBounced: "bounced", resendhook.TypeComplained: "complained",
}

func (m *Mailer) resendWebhook(w http.ResponseWriter, r *http.Request, secret string, prefs Deliverability) {
	refuse := func(err error) {
		m.log.Warn("resend webhook refused", "err", err)
		httpapi.WriteError(w, r, errcode.Unauthorized("Webhook verification failed"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil || len(body) > maxWebhookBody {
		refuse(err)
		return
	}
	now := m.now().UTC()
	ev, err := resendhook.Verify(secret, r.Header, body, now)
	if err != nil {
		refuse(err)
		return
	}
	// Any processing error answers 401 too, so the provider retries
	// (spec 20 §2.5.1); the updates below are idempotent.
	if err := m.applyProviderEvent(r.Context(), ev, prefs, now); err != nil {
		refuse(err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (m *Mailer) applyProviderEvent(ctx context.Context, ev resendhook.Event, prefs Deliverability, now time.Time) error {
	status, ok := webhookStatus[ev.Type]
	if !ok {
		return nil // delivery_delayed and unknown types are ignored
	}
	p := dbsqlc.MailerProviderEventParams{Status: status, At: now, ResendID: ev.Data.EmailID}
	if ev.Data.Bounce != nil {
		if ev.Data.Bounce.Type != "" {
			p.BounceType = &ev.Data.Bounce.Type
		}
		if ev.Data.Bounce.Message != "" {
			p.BounceReason = &ev.Data.Bounce.Message
		}
	}
	var rows []dbsqlc.MailerProviderEventRow
	if ev.Data.EmailID != "" {
		var err error
		if rows, err = dbsqlc.New(m.pool).MailerProviderEvent(ctx, p); err != nil {
			return err
		}
	}
	// Bounce and complaint handling keys on the address, send or not.
	if prefs != nil && len(ev.Data.To) > 0 && (status == "bounced" || status == "complained") {
		to := strings.ToLower(strings.TrimSpace(ev.Data.To[0]))
		userID := to
		if len(rows) > 0 && rows[0].UserID != nil && *rows[0].UserID != "" {
			userID = *rows[0].UserID
		}
		record := prefs.RecordBounce
		if status == "complained" {
			record = prefs.RecordComplaint
		}
		if err := record(ctx, userID, to, now); err != nil {
			return err
		}
	}
	if status == "delivered" || status == "bounced" || status == "complained" {
		for _, row := range rows {
			props := map[string]any{"emailSendId": row.ID.String(), "templateKey": deref(row.TemplateKey), "resendId": deref(row.ResendID)}
			if ev.Data.Bounce != nil {
				props["bounceType"] = ev.Data.Bounce.Type
				props["bounceReason"] = ev.Data.Bounce.Message
			}
			m.deliveryEvent(ctx, "email."+status, row, props, now)
		}
	}
	return nil
}

// deliveryEvent ingests a provider-reported lifecycle event for the send's
// contact, keyed by (send, type) so a webhook redelivered by the provider
// is stored once.
func (m *Mailer) deliveryEvent(ctx context.Context, name string, row dbsqlc.MailerProviderEventRow, props map[string]any, at time.Time) {
	if m.pub == nil {
		return
	}
	data, _ := json.Marshal(props)
	key := name + ":" + row.ID.String()
	ev := &streams.Event{V: streams.EnvelopeVersion, ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(key)).String(), Type: streams.TypeTrack,
		Name: name, EventProperties: data, IdempotencyKey: key, ReceivedAt: at, Source: "webhook:resend"}
	switch {
	case row.ContactID != nil:
		ev.ContactID = row.ContactID.String()
	case row.UserID != nil && *row.UserID != "" && *row.UserID != row.ToEmail:
		ev.UserID = *row.UserID
	default:
		ev.Email = row.ToEmail
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return
	}
	if err := m.pub.PublishAsyncBatch(ctx, []bus.OutMsg{{Subject: streams.EventSubject(ev), MsgID: ev.MsgID(), Data: body}}); err != nil {
		m.log.Error("ingest delivery event", "event", name, "err", err)
	}
}
