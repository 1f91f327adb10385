// Package smtp delivers mail to any SMTP server (Mailpit in development, a
// relay in production) with the standard library: one connection per
// message, STARTTLS when offered, PLAIN auth when credentials are set.
package smtp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	netsmtp "net/smtp"
	"net/textproto"
	"strings"
	"syscall"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
)

// Name is the provider name stored on send rows.
const Name = "smtp"

// DefaultTimeout bounds a whole SMTP session when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// TLSMode says whether the session is upgraded with STARTTLS.
type TLSMode int

const (
	// TLSAuto upgrades when the server offers STARTTLS (the default).
	TLSAuto TLSMode = iota
	// TLSRequired fails the send when the server does not offer STARTTLS.
	TLSRequired
	// TLSOff never upgrades, for local catchers with self-signed
	// certificates.
	TLSOff
)

// Config configures the provider. Only Addr is required.
type Config struct {
	// Addr is the server's "host:port".
	Addr string
	// Username and Password enable AUTH PLAIN; without a username the
	// session is unauthenticated. net/smtp refuses PLAIN over an
	// unencrypted connection except to localhost.
	Username string
	Password string
	// HeloName is the name sent with EHLO; empty means "localhost".
	HeloName string
	StartTLS TLSMode
	// TLSConfig is the STARTTLS configuration (custom roots); nil means
	// the system roots. ServerName defaults to Addr's host.
	TLSConfig *tls.Config
	// Timeout bounds the whole session, dial to QUIT; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Now stamps the Date header; nil means time.Now.
	Now func() time.Time
}

// Provider sends each message in its own SMTP session. It is safe for
// concurrent use.
type Provider struct {
	cfg  Config
	host string
}

// New returns a provider for cfg.
func New(cfg Config) (*Provider, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp config: Addr %q: %w", cfg.Addr, err)
	}
	if cfg.StartTLS < TLSAuto || cfg.StartTLS > TLSOff {
		return nil, fmt.Errorf("smtp config: StartTLS %d is not a TLS mode", cfg.StartTLS)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Provider{cfg: cfg, host: host}, nil
}

var _ provider.Provider = (*Provider)(nil)

// Name implements provider.Provider.
func (p *Provider) Name() string { return Name }

// Send implements provider.Provider. Connection failures, timeouts and 4xx
// replies are retryable; 5xx replies and messages that cannot be built
// fail at once. StatusCode carries the SMTP reply code.
func (p *Provider) Send(ctx context.Context, m provider.Message) (provider.Sent, error) {
	b, err := build(m, p.cfg.Now())
	if err != nil {
		return provider.Sent{}, &provider.Error{Err: fmt.Errorf("build message: %w", err)}
	}
	if err := p.deliver(ctx, b.from, b.rcpts, b.data); err != nil {
		return provider.Sent{}, classify(ctx, err)
	}
	return provider.Sent{ID: b.id}, nil
}

// classify turns a session failure into a provider error.
func classify(ctx context.Context, err error) *provider.Error {
	code := replyCode(err)
	switch {
	case ctx.Err() != nil:
		// Shutting down or out of time: the send is still owed.
		return &provider.Error{Retryable: true, StatusCode: code, Err: fmt.Errorf("%w (%w)", err, ctx.Err())}
	case code >= 400 && code < 500:
		return &provider.Error{Retryable: true, StatusCode: code, Err: err}
	case code != 0:
		return &provider.Error{StatusCode: code, Err: err}
	case transient(err):
		return &provider.Error{Retryable: true, Err: err}
	default:
		// Refused TLS certificates, PLAIN over plain text, a server
		// without STARTTLS when required: configuration, not luck.
		return &provider.Error{Err: err}
	}
}

// deliver runs one SMTP session delivering data from from to rcpts.
// Errors are returned raw for classify.
func (p *Provider) deliver(ctx context.Context, from string, rcpts []string, data []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", p.cfg.Addr, err)
	}
	defer conn.Close()
	// net/smtp knows no contexts: a deadline bounds each read and write,
	// and cancellation moves it to now so a blocked call returns at once.
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return fmt.Errorf("set deadline: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	c, err := netsmtp.NewClient(conn, p.host)
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	defer c.Close()
	if p.cfg.HeloName != "" {
		if err := c.Hello(p.cfg.HeloName); err != nil {
			return fmt.Errorf("ehlo: %w", err)
		}
	}
	if p.cfg.StartTLS != TLSOff {
		// Extension sends EHLO first when Hello was not called.
		ok, _ := c.Extension("STARTTLS")
		switch {
		case ok:
			tc := &tls.Config{}
			if p.cfg.TLSConfig != nil {
				tc = p.cfg.TLSConfig.Clone()
			}
			if tc.ServerName == "" {
				tc.ServerName = p.host
			}
			if err := c.StartTLS(tc); err != nil {
				return fmt.Errorf("starttls: %w", err)
			}
		case p.cfg.StartTLS == TLSRequired:
			return errNoStartTLS
		}
	}
	if p.cfg.Username != "" {
		if err := c.Auth(netsmtp.PlainAuth("", p.cfg.Username, p.cfg.Password, p.host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return fmt.Errorf("rcpt to %s: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	// The reply to the final "." is the server's verdict on the message.
	if err := w.Close(); err != nil {
		return fmt.Errorf("end data: %w", err)
	}
	// The message is accepted: a failing QUIT must not fail the send, or
	// the retry would deliver it twice.
	_ = c.Quit()
	return nil
}

// errNoStartTLS is TLSRequired meeting a server without STARTTLS.
var errNoStartTLS = errors.New("server does not offer STARTTLS")

// transient reports a failure worth retrying that is not an SMTP reply:
// the connection failed, timed out or was cut.
func transient(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// replyCode is the SMTP reply code in err, 0 when err is not a reply.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// messageID builds a Message-ID from the idempotency key, so a repeat of a
// send carries the same id and receiving systems (and people reading
// headers) can recognise it. Keys that are not a valid id-left are hashed;
// without a key the id is random.
func messageID(key, domain string) string {
	left := key
	switch {
	case key == "":
		var b [16]byte
		_, _ = rand.Read(b[:])
		left = hex.EncodeToString(b[:])
	case !dotAtom(key):
		sum := sha256.Sum256([]byte(key))
		left = hex.EncodeToString(sum[:16])
	}
	if domain == "" || !dotAtom(domain) {
		domain = "hogsend.local"
	}
	return left + "@" + domain
}

// dotAtom reports whether s is an RFC 5322 dot-atom-text.
func dotAtom(s string) bool {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && c != '.' && strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) < 0 {
			return false
		}
	}
	return true
}
