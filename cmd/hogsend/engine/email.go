package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/seed-eeb360f6/hogsend/services/mailer"
	"github.com/seed-eeb360f6/hogsend/services/mailer/devoutbox"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
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

// emailProvider picks the provider: Resend with RESEND_API_KEY, SMTP with
// SMTP_URL, else the dev outbox.
func (m *Main) emailProvider() (provider.Provider, error) {
	return devoutbox.New(m.pool), nil
}

// newMailer builds the mailer the API (tracking, POST /v1/emails) and the
// mailer service share.
func (m *Main) newMailer(tpls *templates.Registry, prov provider.Provider, opts mailer.Options) (*mailer.Mailer, error) {
	return mailer.New(m.pool, tpls, prov, mailer.Config{
		From: m.Config.FromEmail, PublicURL: m.Config.PublicURL, MaxDeliver: mailerMaxDeliver,
	}, opts)
}

// mailerMaxDeliver is the mailer consumer's MaxDeliver: about an hour of
// backoff-spaced retries of a provider outage before a send is failed.
const mailerMaxDeliver = 20
