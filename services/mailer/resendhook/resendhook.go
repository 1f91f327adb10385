// Package resendhook verifies and parses Resend's webhooks (spec 20 §1.7.4,
// §2.5). Resend signs with Svix; the signature is checked by Svix's own
// library, the timestamp window here against an injected clock.
package resendhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// Tolerance is how far the svix-timestamp may be from now, either way.
const Tolerance = 5 * time.Minute

// Event types Resend sends. Others may appear; Verify returns them with
// their type and the caller ignores what it does not handle.
const (
	TypeSent            = "email.sent"
	TypeDelivered       = "email.delivered"
	TypeDeliveryDelayed = "email.delivery_delayed"
	TypeBounced         = "email.bounced"
	TypeComplained      = "email.complained"
	TypeOpened          = "email.opened"
	TypeClicked         = "email.clicked"
)

// Verification failures. The webhook route answers all of them alike
// (401, spec 20 §2.5.1); they are distinct for logs and tests.
var (
	ErrNoSecret         = errors.New("no webhook secret configured")
	ErrInvalidSecret    = errors.New("webhook secret is not whsec_ and base64")
	ErrMissingHeaders   = errors.New("missing svix-id, svix-timestamp or svix-signature header")
	ErrInvalidTimestamp = errors.New("svix-timestamp is not a unix time")
	ErrTimestampRange   = errors.New("svix-timestamp is more than 5 minutes from now")
	ErrInvalidSignature = errors.New("no matching signature")
	ErrInvalidPayload   = errors.New("webhook body is not a Resend event")
)

// Event is a Resend webhook event.
type Event struct {
	Type string
	// CreatedAt is when Resend emitted the event; zero when absent or in
	// an unknown format (the handler stamps receipt time anyway, §2.5.8).
	CreatedAt time.Time
	Data      Data
}

// Data is the email an event is about.
type Data struct {
	EmailID   string
	From      string
	To        []string
	Subject   string
	CreatedAt time.Time
	// Bounce is set on email.bounced.
	Bounce *Bounce
	// Click is set on email.clicked.
	Click *Click
}

// Bounce describes a bounce ("Permanent"/"Transient", Resend's subtype and
// the receiving server's message).
type Bounce struct {
	Type    string
	SubType string
	Message string
}

// Click describes a tracked click.
type Click struct {
	Link      string
	Timestamp time.Time
	IPAddress string
	UserAgent string
}

// Known reports whether the event's type is one Resend documents.
func (e Event) Known() bool {
	switch e.Type {
	case TypeSent, TypeDelivered, TypeDeliveryDelayed, TypeBounced, TypeComplained, TypeOpened, TypeClicked:
		return true
	}
	return false
}

// Verify checks the Svix signature of a Resend webhook against secret
// ("whsec_" + base64) and that its timestamp is within Tolerance of now,
// then parses the body. Only the svix-* headers are accepted: the library
// would also take the webhook-* ones, which Resend does not send.
func Verify(secret string, headers http.Header, body []byte, now time.Time) (Event, error) {
	if secret == "" {
		return Event{}, fmt.Errorf("verify resend webhook: %w", ErrNoSecret)
	}
	id, ts, sig := headers.Get("svix-id"), headers.Get("svix-timestamp"), headers.Get("svix-signature")
	if id == "" || ts == "" || sig == "" {
		return Event{}, fmt.Errorf("verify resend webhook: %w", ErrMissingHeaders)
	}
	// The library checks the window against the wall clock only, so the
	// window is checked here, against the caller's clock, and the library
	// verifies the signature alone.
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Event{}, fmt.Errorf("verify resend webhook: %w", ErrInvalidTimestamp)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > Tolerance || d < -Tolerance {
		return Event{}, fmt.Errorf("verify resend webhook: %w (%v)", ErrTimestampRange, d.Round(time.Second))
	}
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		return Event{}, fmt.Errorf("verify resend webhook: %w: %w", ErrInvalidSecret, err)
	}
	only := http.Header{}
	only.Set("svix-id", id)
	only.Set("svix-timestamp", ts)
	only.Set("svix-signature", sig)
	if err := wh.VerifyIgnoringTimestamp(body, only); err != nil {
		return Event{}, fmt.Errorf("verify resend webhook: %w: %w", ErrInvalidSignature, err)
	}
	ev, err := Parse(body)
	if err != nil {
		return Event{}, fmt.Errorf("verify resend webhook: %w", err)
	}
	return ev, nil
}

// wire is the JSON Resend sends.
type wire struct {
	Type      string    `json:"type"`
	CreatedAt string    `json:"created_at"`
	Data      *wireData `json:"data"`
}

type wireData struct {
	EmailID   string     `json:"email_id"`
	From      string     `json:"from"`
	To        stringList `json:"to"`
	Subject   string     `json:"subject"`
	CreatedAt string     `json:"created_at"`
	Bounce    *struct {
		Type    string `json:"type"`
		SubType string `json:"subType"`
		Message string `json:"message"`
	} `json:"bounce"`
	Click *struct {
		Link      string `json:"link"`
		Timestamp string `json:"timestamp"`
		IPAddress string `json:"ipAddress"`
		UserAgent string `json:"userAgent"`
	} `json:"click"`
}

// Parse decodes a webhook body without verifying it (the reference's
// parseWebhook, for trusted sources and tests). The body must be a JSON
// object with a type; unknown types parse.
func Parse(body []byte) (Event, error) {
	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalidPayload, err)
	}
	if w.Type == "" {
		return Event{}, fmt.Errorf("%w: no type", ErrInvalidPayload)
	}
	ev := Event{Type: w.Type, CreatedAt: parseTime(w.CreatedAt)}
	if d := w.Data; d != nil {
		ev.Data = Data{
			EmailID:   d.EmailID,
			From:      d.From,
			To:        d.To,
			Subject:   d.Subject,
			CreatedAt: parseTime(d.CreatedAt),
		}
		if b := d.Bounce; b != nil {
			ev.Data.Bounce = &Bounce{Type: b.Type, SubType: b.SubType, Message: b.Message}
		}
		if c := d.Click; c != nil {
			ev.Data.Click = &Click{Link: c.Link, Timestamp: parseTime(c.Timestamp), IPAddress: c.IPAddress, UserAgent: c.UserAgent}
		}
	}
	return ev, nil
}

// stringList accepts an array of strings or one string, as "to" has been
// both in Resend's payloads.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*l = nil
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("decode address list: %w", err)
	}
	*l = many
	return nil
}

// timeLayouts are the forms Resend's timestamps take: RFC 3339 on events,
// Postgres-style ("2024-11-22 23:41:11.894719+00") on some data fields.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
}

// parseTime is lenient on purpose: an unexpected timestamp format must not
// turn a genuine event into a rejected one that Resend retries forever.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
