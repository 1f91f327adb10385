// Package provider is the boundary between the mailer and whatever
// delivers mail (spec 20 §1.7): Resend, SMTP, the dev outbox. A provider
// only delivers: no tracking, preferences, rendering or database logic of
// the mailer lives behind it.
package provider

import (
	"context"
	"errors"
	"fmt"
)

// Message is one email as the provider sends it.
type Message struct {
	From    string
	To      []string
	Subject string
	HTML    string
	Text    string
	ReplyTo []string
	// Headers are extra headers sent as given (List-Unsubscribe, …).
	Headers map[string]string
	Tags    []Tag
	// IdempotencyKey lets the provider drop a repeat of this message:
	// Resend's Idempotency-Key header, the dev outbox's unique key. The
	// mailer passes the send's id, so a send retried after a crash is
	// delivered once by providers that honour it.
	IdempotencyKey string
}

// Tag is a provider tag (Resend tags: name and value of ASCII letters,
// digits, '_' and '-').
type Tag struct {
	Name  string
	Value string
}

// Sent is what a provider answers for an accepted message.
type Sent struct {
	// ID is the provider's message id (Resend's email id), "" when the
	// provider has none.
	ID string
}

// Provider delivers one message.
type Provider interface {
	// Name is the provider's short name, stored on the send row.
	Name() string
	Send(ctx context.Context, m Message) (Sent, error)
}

// BatchProvider delivers many messages in one call when the provider can;
// results are in the order of msgs. A failure fails the whole call.
type BatchProvider interface {
	Provider
	SendBatch(ctx context.Context, msgs []Message) ([]Sent, error)
}

// MessageIdempotent is implemented by batch providers that drop a repeated
// message by its own IdempotencyKey whichever call carries it, batches
// included (the dev outbox).
type MessageIdempotent interface {
	MessageIdempotent() bool
}

// SafeBatch returns p as a BatchProvider when batching through it keeps the
// at-most-once guarantee. The mailer batches only then: Resend's batch
// endpoint dedupes a whole request by its key, not each message, so a
// batch grouped differently after a crash could deliver a message twice;
// such providers get concurrent single calls, each with its own key.
func SafeBatch(p Provider) (BatchProvider, bool) {
	bp, ok := p.(BatchProvider)
	if !ok {
		return nil, false
	}
	mi, ok := p.(MessageIdempotent)
	return bp, ok && mi.MessageIdempotent()
}

// Error is a provider failure. Retryable failures (rate limits, 5xx,
// network) are retried by the mailer with backoff; the others fail the
// send at once.
type Error struct {
	Retryable bool
	// StatusCode is the HTTP status (or SMTP reply code), 0 when none.
	StatusCode int
	Err        error
}

func (e *Error) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("Failed to send email: %v (status %d)", e.Err, e.StatusCode)
	}
	return fmt.Sprintf("Failed to send email: %v", e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether err is a provider failure worth retrying. An
// error that is not an *Error is treated as retryable (a context or
// network error on the way to the provider).
func Retryable(err error) bool {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Retryable
	}
	return err != nil
}
