package smtp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
)

// built is a message ready for the SMTP session.
type built struct {
	id    string   // Message-ID without angle brackets
	from  string   // envelope sender
	rcpts []string // envelope recipients
	data  []byte   // the RFC 5322 message, CRLF line endings
}

// reserved are the headers the message's own fields produce; extra
// headers may not repeat them, as a second From or Subject makes the
// message ambiguous (and often spam-flagged).
var reserved = map[string]bool{
	"Date": true, "Message-Id": true, "From": true, "To": true, "Cc": true, "Bcc": true,
	"Reply-To": true, "Subject": true, "Mime-Version": true, "Content-Type": true,
	"Content-Transfer-Encoding": true,
}

// build renders m as an RFC 5322 message: text and HTML as
// multipart/alternative (or a single part when only one is set), each
// quoted-printable so long lines and UTF-8 survive any relay.
func build(m provider.Message, now time.Time) (built, error) {
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return built{}, fmt.Errorf("parse from %q: %w", m.From, err)
	}
	if len(m.To) == 0 {
		return built{}, errors.New("no recipient")
	}
	to, err := addresses("to", m.To)
	if err != nil {
		return built{}, err
	}
	replyTo, err := addresses("reply-to", m.ReplyTo)
	if err != nil {
		return built{}, err
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	id := messageID(m.IdempotencyKey, domain)

	var buf bytes.Buffer
	header(&buf, "Date", now.Format(time.RFC1123Z))
	header(&buf, "Message-ID", "<"+id+">")
	header(&buf, "From", from.String())
	header(&buf, "To", list(to))
	if len(replyTo) > 0 {
		header(&buf, "Reply-To", list(replyTo))
	}
	// Q-encoding only kicks in for non-ASCII or control characters, so a
	// plain subject stays readable in the raw message.
	header(&buf, "Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header(&buf, "MIME-Version", "1.0")
	names := make([]string, 0, len(m.Headers))
	for name := range m.Headers {
		names = append(names, name)
	}
	slices.Sort(names) // stable output, for golden comparisons and diffs
	for _, name := range names {
		value := m.Headers[name]
		if err := checkHeader(name, value); err != nil {
			return built{}, err
		}
		// Verbatim, unfolded: these are often signed or parsed by
		// receivers (List-Unsubscribe), so they go out exactly as given.
		buf.WriteString(name + ": " + value + "\r\n")
	}

	switch {
	case m.Text != "" && m.HTML != "":
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		if err := part(mw, "text/plain", m.Text); err != nil {
			return built{}, err
		}
		// Last is preferred (RFC 2046 §5.1.4): clients that render HTML
		// show it, the others fall back to the text.
		if err := part(mw, "text/html", m.HTML); err != nil {
			return built{}, err
		}
		if err := mw.Close(); err != nil {
			return built{}, fmt.Errorf("close multipart: %w", err)
		}
		header(&buf, "Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
		buf.WriteString("\r\n")
		buf.Write(body.Bytes())
	case m.HTML != "":
		if err := single(&buf, "text/html", m.HTML); err != nil {
			return built{}, err
		}
	default:
		if err := single(&buf, "text/plain", m.Text); err != nil {
			return built{}, err
		}
	}

	rcpts := make([]string, len(to))
	for i, a := range to {
		rcpts[i] = a.Address
	}
	return built{id: id, from: from.Address, rcpts: rcpts, data: buf.Bytes()}, nil
}

func addresses(field string, in []string) ([]*mail.Address, error) {
	out := make([]*mail.Address, 0, len(in))
	for _, s := range in {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("parse %s %q: %w", field, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// list formats addresses for a header; String encodes non-ASCII display
// names per RFC 2047.
func list(as []*mail.Address) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// checkHeader guards the verbatim extra headers: a CR or LF in a value
// would let a caller inject headers or a body.
func checkHeader(name, value string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < '!' || c > '~' || c == ':' {
			return fmt.Errorf("header name %q: invalid character %q", name, c)
		}
	}
	if reserved[textproto.CanonicalMIMEHeaderKey(name)] {
		return fmt.Errorf("header %q is set from the message fields", name)
	}
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("header %q: value contains a line break", name)
	}
	return nil
}

// header writes one header field, folded at spaces so lines stay within
// the 78 characters RFC 5322 recommends where the value allows it.
func header(buf *bytes.Buffer, name, value string) {
	line := name + ": " + value
	floor := len(name) + 1 // the space after the colon is no place to fold
	for len(line) > 78 {
		// Fold at the last space that keeps the line short, else at the
		// first one after; never inside a word.
		cut := strings.LastIndexByte(line[:79], ' ')
		if cut <= floor {
			next := strings.IndexByte(line[79:], ' ')
			if next < 0 {
				break
			}
			cut = 79 + next
		}
		buf.WriteString(line[:cut])
		buf.WriteString("\r\n")
		line = line[cut:] // the space starts the continuation line
		floor = 0
	}
	buf.WriteString(line)
	buf.WriteString("\r\n")
}

// part writes one quoted-printable part of a multipart body.
func part(mw *multipart.Writer, mediaType, content string) error {
	w, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {mediaType + "; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"},
	})
	if err != nil {
		return fmt.Errorf("create %s part: %w", mediaType, err)
	}
	return encode(w, mediaType, content)
}

// single writes the content headers and body of a one-part message.
func single(buf *bytes.Buffer, mediaType, content string) error {
	header(buf, "Content-Type", mediaType+"; charset=utf-8")
	header(buf, "Content-Transfer-Encoding", "quoted-printable")
	buf.WriteString("\r\n")
	return encode(buf, mediaType, content)
}

func encode(w io.Writer, mediaType, content string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(content)); err != nil {
		return fmt.Errorf("encode %s: %w", mediaType, err)
	}
	if err := qp.Close(); err != nil {
		return fmt.Errorf("encode %s: %w", mediaType, err)
	}
	return nil
}
