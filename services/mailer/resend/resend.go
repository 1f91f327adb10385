// Package resend delivers mail through Resend's HTTP API (spec 20 §1.7)
// with the official resend-go client, adding what the client leaves to its
// callers: the retry policy of §1.7.1–2, classification of failures as
// retryable or not, idempotency keys and batch chunking.
package resend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	resendapi "github.com/resend/resend-go/v2"

	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
)

// Name is the provider name stored on send rows.
const Name = "resend"

// BatchSize is the most messages Resend accepts in one batch call.
const BatchSize = 100

// Defaults of the retry policy (spec 20 §1.7.1).
const (
	DefaultMaxRetries = 3
	DefaultBaseDelay  = 500 * time.Millisecond
	DefaultMaxDelay   = 30 * time.Second
)

// Config configures the provider. Only APIKey is required.
type Config struct {
	APIKey string
	// BaseURL overrides https://api.resend.com/ (tests, proxies).
	BaseURL string
	// HTTPClient is used for the calls; nil means a client with a one
	// minute timeout. It is copied, never modified.
	HTTPClient *http.Client
	// MaxRetries is the number of retries after the first attempt: 0 means
	// DefaultMaxRetries, a negative value disables retries.
	MaxRetries int
	// BaseDelay and MaxDelay shape the backoff: the delay before retry n
	// (0-based) is min(BaseDelay·2ⁿ + random(0..BaseDelay), MaxDelay).
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Sleep waits between attempts; nil means a timer that gives up when
	// ctx is done. Tests replace it to record delays without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random duration in [0, max]; nil means math/rand.
	Jitter func(max time.Duration) time.Duration
}

// Provider sends through Resend. It is safe for concurrent use.
type Provider struct {
	client     *resendapi.Client
	maxRetries int
	baseDelay  time.Duration
	maxDelay   time.Duration
	sleep      func(ctx context.Context, d time.Duration) error
	jitter     func(max time.Duration) time.Duration
}

var _ provider.BatchProvider = (*Provider)(nil)

// New returns a provider for cfg.
func New(cfg Config) (*Provider, error) {
	key := strings.TrimSpace(cfg.APIKey)
	if key == "" {
		return nil, errors.New("resend config: APIKey is required")
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc.Timeout = time.Minute
	}
	// resend-go folds every error status except 429 into a plain error
	// without the code, but the retry policy depends on it: the transport
	// records the status of each attempt for classify to read.
	hc.Transport = &statusTransport{base: hc.Transport}
	client := resendapi.NewCustomClient(&hc, key)
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("resend config: BaseURL %q is not an absolute URL", cfg.BaseURL)
		}
		// The client resolves "emails" against the base, so without the
		// trailing slash a path prefix would lose its last segment.
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		client.BaseURL = u
	}
	p := &Provider{
		client:     client,
		maxRetries: cfg.MaxRetries,
		baseDelay:  cfg.BaseDelay,
		maxDelay:   cfg.MaxDelay,
		sleep:      cfg.Sleep,
		jitter:     cfg.Jitter,
	}
	switch {
	case p.maxRetries == 0:
		p.maxRetries = DefaultMaxRetries
	case p.maxRetries < 0:
		p.maxRetries = 0
	}
	if p.baseDelay <= 0 {
		p.baseDelay = DefaultBaseDelay
	}
	if p.maxDelay <= 0 {
		p.maxDelay = DefaultMaxDelay
	}
	if p.sleep == nil {
		p.sleep = sleep
	}
	if p.jitter == nil {
		p.jitter = func(max time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(max) + 1)) }
	}
	return p, nil
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return Name }

// Send implements provider.Provider. The message's IdempotencyKey travels
// as Resend's Idempotency-Key header, so the retries here and a later
// retry by the mailer are delivered once.
func (p *Provider) Send(ctx context.Context, m provider.Message) (provider.Sent, error) {
	req := request(m)
	opts := &resendapi.SendEmailOptions{IdempotencyKey: m.IdempotencyKey}
	var id string
	err := p.retry(ctx, func(ctx context.Context) error {
		resp, err := p.client.Emails.SendWithOptions(ctx, req, opts)
		if err != nil {
			return err
		}
		if resp.Id == "" {
			return errNoData
		}
		id = resp.Id
		return nil
	})
	if err != nil {
		return provider.Sent{}, err
	}
	return provider.Sent{ID: id}, nil
}

// SendBatch implements provider.BatchProvider: sequential chunks of
// BatchSize, each retried like Send; a failing chunk aborts the rest and
// fails the call (spec 20 §1.7.3), so chunks before it were delivered.
func (p *Provider) SendBatch(ctx context.Context, msgs []provider.Message) ([]provider.Sent, error) {
	out := make([]provider.Sent, 0, len(msgs))
	for start := 0; start < len(msgs); start += BatchSize {
		chunk := msgs[start:min(start+BatchSize, len(msgs))]
		reqs := make([]*resendapi.SendEmailRequest, len(chunk))
		for i, m := range chunk {
			reqs[i] = request(m)
		}
		opts := &resendapi.BatchSendEmailOptions{IdempotencyKey: batchKey(chunk)}
		var ids []string
		err := p.retry(ctx, func(ctx context.Context) error {
			resp, err := p.client.Batch.SendWithOptions(ctx, reqs, opts)
			if err != nil {
				return err
			}
			if len(resp.Data) != len(reqs) {
				return fmt.Errorf("%w: %d ids for %d messages", errNoData, len(resp.Data), len(reqs))
			}
			ids = ids[:0]
			for _, d := range resp.Data {
				if d.Id == "" {
					return errNoData
				}
				ids = append(ids, d.Id)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("send batch messages %d-%d of %d: %w", start+1, start+len(chunk), len(msgs), err)
		}
		for _, id := range ids {
			out = append(out, provider.Sent{ID: id})
		}
	}
	return out, nil
}

// request maps a message to resend-go's request.
func request(m provider.Message) *resendapi.SendEmailRequest {
	req := &resendapi.SendEmailRequest{
		From:    m.From,
		To:      m.To,
		Subject: m.Subject,
		Html:    m.HTML,
		Text:    m.Text,
		Headers: m.Headers,
		// resend-go v2 models reply_to as one string; an RFC 5322 address
		// list is the closest a string comes to several addresses.
		ReplyTo: strings.Join(m.ReplyTo, ", "),
	}
	for _, t := range m.Tags {
		req.Tags = append(req.Tags, resendapi.Tag{Name: t.Name, Value: t.Value})
	}
	return req
}

// batchKey derives the batch call's Idempotency-Key from the messages'
// keys, so a repeat of the same chunk (a retry, a redelivered campaign
// job) is recognised by Resend. Without a key on every message there is
// nothing stable to derive from.
func batchKey(chunk []provider.Message) string {
	h := sha256.New()
	for _, m := range chunk {
		if m.IdempotencyKey == "" {
			return ""
		}
		// Length-prefixed so distinct key lists never hash alike.
		fmt.Fprintf(h, "%d:%s\n", len(m.IdempotencyKey), m.IdempotencyKey)
	}
	return "batch-" + hex.EncodeToString(h.Sum(nil))
}

// errNoData is a success status whose body carries no message id: the
// mail may or may not have been accepted, so it is retried (§1.7.2) and
// the idempotency key keeps the retry from duplicating it.
var errNoData = errors.New("resend answered without message data")

// retry runs call until it succeeds, fails permanently or runs out of
// retries. Its error is always a *provider.Error.
func (p *Provider) retry(ctx context.Context, call func(ctx context.Context) error) error {
	for attempt := 0; ; attempt++ {
		rec := &attemptStatus{}
		err := call(context.WithValue(ctx, attemptKey{}, rec))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			// Shutting down or out of time: the send is still owed.
			return &provider.Error{Retryable: true, Err: fmt.Errorf("resend call interrupted: %w", ctx.Err())}
		}
		perr := classify(err, rec.status)
		if !perr.Retryable {
			return perr
		}
		if attempt >= p.maxRetries {
			perr.Err = fmt.Errorf("gave up after %d attempts: %w", attempt+1, perr.Err)
			return perr
		}
		if err := p.sleep(ctx, p.delay(attempt)); err != nil {
			return &provider.Error{Retryable: true, StatusCode: perr.StatusCode,
				Err: fmt.Errorf("wait to retry resend call: %w (last error: %v)", err, perr.Err)}
		}
	}
}

// delay is the wait before retry n (0-based): min(base·2ⁿ + jitter, max).
func (p *Provider) delay(n int) time.Duration {
	d := p.baseDelay
	for i := 0; i < n && d < p.maxDelay; i++ {
		d *= 2
	}
	if d >= p.maxDelay {
		return p.maxDelay
	}
	return min(d+p.jitter(p.baseDelay), p.maxDelay)
}

// classify applies spec 20 §1.7.2 to a failed attempt whose HTTP status
// (0 when no response arrived) is status.
func classify(err error, status int) *provider.Error {
	err = cleanError(err)
	switch {
	case status == http.StatusTooManyRequests || status >= 500:
		return &provider.Error{Retryable: true, StatusCode: status, Err: err}
	case status >= 200 && status < 300:
		// Accepted but unreadable (no id, a body that does not decode).
		return &provider.Error{Retryable: true, StatusCode: status, Err: err}
	case status == http.StatusConflict:
		// An idempotency conflict: the same key is being processed right
		// now (concurrent_idempotent_requests), and asking again later gets
		// its outcome. Sends are rendered deterministically, so the other
		// conflict (the key with another payload) does not arise; if it did,
		// the retries end at the consumer's MaxDeliver.
		return &provider.Error{Retryable: true, StatusCode: status, Err: err}
	case status != 0:
		return &provider.Error{StatusCode: status, Err: err}
	case errors.Is(err, resendapi.ErrRateLimit), transient(err):
		return &provider.Error{Retryable: true, Err: err}
	default:
		return &provider.Error{Err: err}
	}
}

// transient reports a status-less failure on the way to Resend: the Go
// counterparts of the reference's "rate limit, timeout, ECONNRESET,
// ECONNREFUSED, network" message test, plus the message test itself for
// errors that carry no type.
func transient(err error) bool {
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"rate limit", "timeout", "econnreset", "econnrefused", "network"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// cleanError drops resend-go's "[ERROR]: " prefix so the send error reads
// "Failed to send email: <provider message>" as in the reference. Those
// errors are plain errors.New values, so nothing is lost.
func cleanError(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), "[ERROR]: "); ok && errors.Unwrap(err) == nil {
		return errors.New(msg)
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attemptKey carries an *attemptStatus in the request context from retry
// to statusTransport.
type attemptKey struct{}

type attemptStatus struct{ status int }

// statusTransport records the HTTP status of the last response of an
// attempt (redirects included, the final one wins).
type statusTransport struct{ base http.RoundTripper }

func (t *statusTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if rec, ok := req.Context().Value(attemptKey{}).(*attemptStatus); ok && resp != nil {
		rec.status = resp.StatusCode
	}
	return resp, err
}
