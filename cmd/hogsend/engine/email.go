package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/services/lists/list"
	"github.com/seed-eeb360f6/hogsend/services/mailer"
	"github.com/seed-eeb360f6/hogsend/services/mailer/devoutbox"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider/ratelimit"
	"github.com/seed-eeb360f6/hogsend/services/mailer/resend"
	"github.com/seed-eeb360f6/hogsend/services/mailer/smtp"
	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
	"github.com/seed-eeb360f6/hogsend/services/preferences"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// secretFile keeps the token secret `dev` generates, so unsubscribe links
// in emails already sent keep working across restarts.
const secretFile = "secret"

// loadSecret returns the token secret: HOGSEND_SECRET (or
// BETTER_AUTH_SECRET), else in dev the one kept in the data dir (made on
// the first start). Production processes that build links need it set.
func (m *Main) loadSecret() ([]byte, error) {
	if m.Config.Secret != "" {
		return []byte(m.Config.Secret), nil
	}
	if !m.Dev {
		return nil, errors.New("HOGSEND_SECRET is required: it signs unsubscribe and preference links (generate one with `openssl rand -hex 32`)")
	}
	path := filepath.Join(m.Config.DataDir, secretFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("generate the token secret: %w", err)
	}
	secret := hex.EncodeToString(buf)
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", m.Config.DataDir, err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("store the token secret: %w", err)
	}
	return []byte(secret), nil
}

// emailTemplates is the template registry: the program's own, else the
// stock ones.
func (m *Main) emailTemplates() (*templates.Registry, error) {
	if m.Templates != nil {
		reg, err := templates.NewRegistry(m.Templates...)
		if err != nil {
			return nil, fmt.Errorf("register templates: %w", err)
		}
		return reg, nil
	}
	return templates.StockRegistry()
}

// resendDefaultRate is Resend's documented default limit: 2 requests per
// second per team.
const resendDefaultRate = 2

// emailProvider picks the provider: Resend with RESEND_API_KEY, SMTP with
// SMTP_URL, else the dev outbox; HOGSEND_EMAIL_RATE (or Resend's default)
// paces the calls.
func (m *Main) emailProvider() (provider.Provider, error) {
	rate := m.Config.EmailRate
	switch {
	case m.Config.ResendAPIKey != "":
		p, err := resend.New(resend.Config{APIKey: m.Config.ResendAPIKey, BaseURL: m.Config.ResendBaseURL})
		if err != nil {
			return nil, err
		}
		if rate == 0 {
			rate = resendDefaultRate
		}
		return ratelimit.Limit(p, rate, max(1, int(rate))), nil
	case m.Config.SMTPURL != "":
		u, err := url.Parse(m.Config.SMTPURL)
		if err != nil {
			return nil, fmt.Errorf("SMTP_URL: %w", err)
		}
		cfg := smtp.Config{Addr: u.Host}
		if u.User != nil {
			cfg.Username = u.User.Username()
			cfg.Password, _ = u.User.Password()
		}
		p, err := smtp.New(cfg)
		if err != nil {
			return nil, err
		}
		return ratelimit.Limit(p, rate, max(1, int(rate))), nil
	}
	return ratelimit.Limit(devoutbox.New(m.pool), rate, max(1, int(rate))), nil
}

// newMailer builds the mailer the API (tracking, POST /v1/emails) and the
// mailer service share.
func (m *Main) newMailer(tpls *templates.Registry, prov provider.Provider, opts mailer.Options) (*mailer.Mailer, error) {
	return mailer.New(m.pool, tpls, prov, mailer.Config{
		From: m.Config.FromEmail, PublicURL: m.Config.PublicURL, MaxDeliver: mailerMaxDeliver, Lease: m.mailerLease(),
	}, opts)
}

// Mailer consumer shape: workers × batch size is what one process holds
// leased at once.
const (
	mailerWorkers   = 8
	mailerBatchSize = 100
)

// mailerLease outlasts the slowest delivery attempt: the longest wait for
// the rate limit (every message a process holds, at the configured rate)
// plus ten minutes for the provider's own retries, and never less than the
// default.
func (m *Main) mailerLease() time.Duration {
	rate := m.Config.EmailRate
	if rate == 0 && m.Config.ResendAPIKey != "" {
		rate = resendDefaultRate
	}
	if rate <= 0 {
		return mailer.DefaultLease
	}
	wait := time.Duration(float64(mailerWorkers*mailerBatchSize) / rate * float64(time.Second))
	return max(mailer.DefaultLease, wait+10*time.Minute)
}

// mailerMaxDeliver is the mailer consumer's MaxDeliver: about an hour of
// backoff-spaced retries of a provider outage before a send is failed.
const mailerMaxDeliver = 20

// unsubscribeEmitter records each opt-out as a contact.unsubscribed event
// in the contact's history (and on ACTIVITY for outbound webhooks).
type unsubscribeEmitter struct{ pub *bus.Publisher }

func (u unsubscribeEmitter) Unsubscribed(ctx context.Context, e preferences.ContactUnsubscribed) error {
	props, err := json.Marshal(map[string]any{"externalId": e.ExternalID, "email": e.Email, "category": nullable(e.Category), "scope": e.Scope})
	if err != nil {
		return err
	}
	ev := &streams.Event{V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeTrack,
		Name: "contact.unsubscribed", Email: e.Email, EventProperties: props, ReceivedAt: time.Now().UTC(), Source: "preferences"}
	if e.ExternalID != "" && !strings.Contains(e.ExternalID, "@") {
		ev.UserID = e.ExternalID // a contact key; an address-only row has none
	}
	_, err = u.pub.PublishEvent(ctx, ev)
	return err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// deliverability adapts the preference store to the mailer's webhook.
type deliverability struct{ store *preferences.Store }

func (d deliverability) RecordBounce(ctx context.Context, userID, email string, at time.Time) error {
	_, err := d.store.RecordBounce(ctx, userID, email, at)
	return err
}

func (d deliverability) RecordComplaint(ctx context.Context, userID, email string, at time.Time) error {
	_, err := d.store.RecordComplaint(ctx, userID, email, at)
	return err
}

// setupPreferences builds the lists registry, the preference store and the
// token routes the mailer links to.
func (m *Main) setupPreferences(pub *bus.Publisher) error {
	secret, err := m.loadSecret()
	if err != nil {
		return err
	}
	defs := m.Lists
	if defs == nil {
		defs = exampleLists()
	}
	if m.lists, err = list.NewRegistry(m.Config.EnabledLists, defs...); err != nil {
		return fmt.Errorf("register lists: %w", err)
	}
	m.prefStore = preferences.NewStore(m.pool, preferences.StoreOptions{Lists: m.lists, Emitter: unsubscribeEmitter{pub: pub}, Logger: m.Log})
	m.prefs, err = preferences.New(preferences.Config{Secret: secret, PublicURL: m.Config.PublicURL, Lists: m.lists, Store: m.prefStore})
	return err
}
