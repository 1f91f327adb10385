package streams

import (
	"encoding/json"
	"time"
)

// EmailSendSubject carries send commands on EMAILS; the mailer consumes it.
const EmailSendSubject = EmailsRoot + ".send"

// EmailResultRoot carries the mailer's answer to a command (core NATS, not
// stored): the API waits on EmailResultSubject(cmd.ID) to answer
// synchronously.
const EmailResultRoot = "hogsend.sent"

// EmailResultSubject is where the result of command id is announced.
func EmailResultSubject(id string) string { return EmailResultRoot + "." + id }

// EmailResult is the mailer's announcement of a command's outcome.
type EmailResult struct {
	EmailSendID string `json:"emailSendId"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	// Error is set when the send failed (the provider refused it).
	Error string `json:"error,omitempty"`
}

// EmailCommand asks the mailer to send one email. Every sender (journey
// SendEmail, POST /v1/emails, campaigns, admin resend) publishes one with
// Nats-Msg-Id = IdempotencyKey, and the mailer sends at most once per key
// (email_sends.idempotency_key), so a re-published command is harmless.
type EmailCommand struct {
	V int `json:"v"`
	// ID is the email_sends id the send will get: derived from the key, so
	// a re-run of the sender names the same row.
	ID             string `json:"id"`
	IdempotencyKey string `json:"idempotencyKey"`
	To             string `json:"to"`
	// From and ReplyTo default to the mailer's sender and none.
	From    string   `json:"from,omitempty"`
	ReplyTo []string `json:"replyTo,omitempty"`
	// UserID is the contact key, "" for an address without a contact.
	UserID string `json:"userId,omitempty"`
	// ContactID names the contact, so engagement events (email.opened,
	// email.link_clicked) are recorded for it whatever its key.
	ContactID string          `json:"contactId,omitempty"`
	Template  string          `json:"template"`
	Subject   string          `json:"subject,omitempty"`
	Props     json.RawMessage `json:"props,omitempty"`
	// Category is journey, transactional or campaign (email spec §1.4).
	Category       string `json:"category"`
	JourneyID      string `json:"journeyId,omitempty"`
	JourneyName    string `json:"journeyName,omitempty"`
	JourneyStateID string `json:"journeyStateId,omitempty"`
	// SkipPreferenceCheck sends system and test mail without the
	// suppression check, the frequency cap or unsubscribe links.
	SkipPreferenceCheck bool      `json:"skipPreferenceCheck,omitempty"`
	RequestedAt         time.Time `json:"requestedAt"`
}
