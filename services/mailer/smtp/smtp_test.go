package smtp_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/services/mailer/smtp"
)

// captured is what the test server saw in one session.
type captured struct {
	Helo     string
	Auth     string // decoded AUTH PLAIN response
	TLS      bool   // the session was upgraded before MAIL
	From     string
	Rcpts    []string
	Data     string // as received, dot-stuffing undone, CRLF kept
	Commands []string
}

// server is a tiny SMTP server: one connection at a time, just enough of
// RFC 5321 for net/smtp, with canned failure replies.
type server struct {
	Addr       string
	Extensions []string    // extra EHLO keywords, e.g. "AUTH PLAIN"
	TLS        *tls.Config // offers STARTTLS when set
	RcptReply  string      // replaces "250 OK" to RCPT
	DataReply  string      // replaces "250 OK" after the message
	Silent     bool        // never greets: the client times out
	ln         net.Listener
	done       chan struct{}
	mu         sync.Mutex
	sessions   []captured
}

func startServer(t *testing.T, s *server) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.Addr, s.done = ln, ln.Addr().String(), make(chan struct{})
	go func() {
		defer close(s.done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.serve(conn)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-s.done
	})
	return s
}

func (s *server) Sessions() []captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]captured(nil), s.sessions...)
}

func (s *server) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var c captured
	// The session is recorded before the reply to QUIT, so a client that
	// has returned from Send finds it; sessions cut short are recorded on
	// the way out.
	recorded := false
	record := func() {
		if !recorded {
			recorded = true
			s.mu.Lock()
			s.sessions = append(s.sessions, c)
			s.mu.Unlock()
		}
	}
	defer record()
	if s.Silent {
		_, _ = io.Copy(io.Discard, conn) // until the client gives up
		return
	}
	r := bufio.NewReader(conn)
	reply := func(lines ...string) {
		for _, l := range lines {
			io.WriteString(conn, l+"\r\n")
		}
	}
	reply("220 test.local ESMTP ready")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		c.Commands = append(c.Commands, line)
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			c.Helo = arg
			ext := append([]string{"test.local greets " + arg, "8BITMIME"}, s.Extensions...)
			if s.TLS != nil && !c.TLS {
				ext = append(ext, "STARTTLS")
			}
			for i, e := range ext {
				if i == len(ext)-1 {
					reply("250 " + e)
				} else {
					reply("250-" + e)
				}
			}
		case "HELO":
			c.Helo = arg
			reply("250 test.local")
		case "STARTTLS":
			reply("220 2.0.0 ready")
			tc := tls.Server(conn, s.TLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, r, c.TLS = tc, bufio.NewReader(tc), true
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			b, err := base64.StdEncoding.DecodeString(resp)
			if mech != "PLAIN" || err != nil {
				reply("504 5.5.4 unsupported")
				continue
			}
			c.Auth = string(b)
			reply("235 2.7.0 authenticated")
		case "MAIL":
			c.From = strings.Trim(strings.TrimPrefix(strings.Fields(arg)[0], "FROM:"), "<>")
			reply("250 2.1.0 OK")
		case "RCPT":
			if s.RcptReply != "" {
				reply(s.RcptReply)
				continue
			}
			c.Rcpts = append(c.Rcpts, strings.Trim(strings.TrimPrefix(arg, "TO:"), "<>"))
			reply("250 2.1.5 OK")
		case "DATA":
			reply("354 end with <CRLF>.<CRLF>")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, ".")) // undo dot-stuffing
			}
			if s.DataReply != "" {
				reply(s.DataReply)
				continue
			}
			c.Data = data.String()
			reply("250 2.0.0 queued")
		case "RSET", "NOOP":
			reply("250 OK")
		case "QUIT":
			record()
			reply("221 2.0.0 bye")
			return
		default:
			reply("500 5.5.2 unknown command")
		}
	}
}

func newProvider(t *testing.T, cfg smtp.Config) *smtp.Provider {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC) }
	}
	p, err := smtp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func message() provider.Message {
	return provider.Message{
		From:    `"Acmé Team" <hello@acme.test>`,
		To:      []string{"Ada Lovelace <ada@example.com>"},
		ReplyTo: []string{"support@acme.test"},
		Subject: "Héllo Ada — your ünïcode welcome",
		Text:    "Hi Ada,\n.this line starts with a dot\nA long line: " + strings.Repeat("lorem ipsum ", 20) + "\nÇa va?",
		HTML:    `<p style="color: red">Hi Ada, ça va?</p>` + strings.Repeat("<span>x</span>", 30),
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://acme.test/u/abc>, <mailto:unsub@acme.test?subject=abc>",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"X-Hogsend-Send":        "0195",
		},
		IdempotencyKey: "0195a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b",
	}
}

func TestSendMultipart(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &server{})
	p := newProvider(t, smtp.Config{Addr: srv.Addr})
	m := message()
	sent, err := p.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0195a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b@acme.test"; sent.ID != want {
		t.Errorf("id = %q, want %q", sent.ID, want)
	}
	sessions := srv.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("%d sessions", len(sessions))
	}
	s := sessions[0]
	if s.From != "hello@acme.test" || len(s.Rcpts) != 1 || s.Rcpts[0] != "ada@example.com" {
		t.Errorf("envelope from %q to %v", s.From, s.Rcpts)
	}
	if s.Auth != "" || s.TLS {
		t.Errorf("auth %q tls %v without credentials or STARTTLS", s.Auth, s.TLS)
	}
	if strings.Contains(strings.ReplaceAll(s.Data, "\r\n", ""), "\n") {
		t.Error("bare LF in the message")
	}
	for _, l := range strings.Split(s.Data, "\r\n") {
		if len(l) > 998 {
			t.Errorf("line of %d characters", len(l))
		}
	}

	msg, err := mail.ReadMessage(strings.NewReader(s.Data))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	if d, err := h.Date(); err != nil || !d.Equal(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)) {
		t.Errorf("Date = %v, %v", d, err)
	}
	if got := h.Get("Message-ID"); got != "<"+sent.ID+">" {
		t.Errorf("Message-ID = %q", got)
	}
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Name != "Acmé Team" || from.Address != "hello@acme.test" {
		t.Errorf("From = %q (%v)", h.Get("From"), err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Name != "Ada Lovelace" || to[0].Address != "ada@example.com" {
		t.Errorf("To = %q (%v)", h.Get("To"), err)
	}
	if rt, err := h.AddressList("Reply-To"); err != nil || len(rt) != 1 || rt[0].Address != "support@acme.test" {
		t.Errorf("Reply-To = %q (%v)", h.Get("Reply-To"), err)
	}
	if raw := h.Get("Subject"); !strings.Contains(raw, "=?utf-8?") {
		t.Errorf("Subject %q is not RFC 2047 encoded", raw)
	}
	if subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); err != nil || subj != m.Subject {
		t.Errorf("Subject decodes to %q (%v), want %q", subj, err, m.Subject)
	}
	if h.Get("MIME-Version") != "1.0" {
		t.Errorf("MIME-Version = %q", h.Get("MIME-Version"))
	}
	for name, want := range m.Headers {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
		if line := "\r\n" + name + ": " + want + "\r\n"; !strings.Contains(s.Data, line) {
			t.Errorf("%s not on one verbatim line", name)
		}
	}

	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v)", h.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for i, want := range []struct{ mediaType, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if ct := part.Header.Get("Content-Type"); ct != want.mediaType+"; charset=utf-8" {
			t.Errorf("part %d Content-Type = %q", i, ct)
		}
		// The reader decodes quoted-printable itself.
		body, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		// quoted-printable turns line breaks into CRLF.
		if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != want.body {
			t.Errorf("part %d = %q, want %q", i, got, want.body)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("after two parts: %v, want EOF", err)
	}
}

func TestSendSinglePart(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]provider.Message{
		"html": {From: "a@acme.test", To: []string{"b@example.com"}, Subject: "s", HTML: "<p>only html</p>"},
		"text": {From: "a@acme.test", To: []string{"b@example.com"}, Subject: "s", Text: "only text"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, &server{})
			if _, err := newProvider(t, smtp.Config{Addr: srv.Addr}).Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			msg, err := mail.ReadMessage(strings.NewReader(srv.Sessions()[0].Data))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(msg.Body)
			ct := msg.Header.Get("Content-Type")
			if want := map[string]string{"html": "text/html", "text": "text/plain"}[name] + "; charset=utf-8"; ct != want {
				t.Errorf("Content-Type = %q, want %q", ct, want)
			}
			if !strings.Contains(string(body), "only "+name) {
				t.Errorf("body = %q", body)
			}
			if msg.Header.Get("Reply-To") != "" {
				t.Error("Reply-To without reply-to addresses")
			}
		})
	}
}

func TestSendLongSubjectFolds(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &server{})
	m := message()
	m.Subject = strings.Repeat("Ünïcode and a rather long subject line ", 6)
	if _, err := newProvider(t, smtp.Config{Addr: srv.Addr}).Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	data := srv.Sessions()[0].Data
	head, _, _ := strings.Cut(data, "\r\n\r\n")
	// Folded between encoded-words (at most 75 characters each), so no
	// line carries more than one word and the "Subject: " prefix.
	lines := 0
	for _, l := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(l, "Subject:") || strings.HasPrefix(l, " =?") {
			lines++
			if len(l) > len("Subject: ")+75 {
				t.Errorf("subject line of %d characters: %q", len(l), l)
			}
		}
	}
	if lines < 2 {
		t.Errorf("long subject on %d line(s)", lines)
	}
	msg, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil || subj != m.Subject {
		t.Errorf("Subject decodes to %q (%v)", subj, err)
	}
}

func TestMessageIDFollowsKey(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &server{})
	p := newProvider(t, smtp.Config{Addr: srv.Addr})
	m := message()
	ids := map[string]bool{}
	for _, key := range []string{"k-1", "k-1", "not a valid <id>", "not a valid <id>", "", ""} {
		m.IdempotencyKey = key
		sent, err := p.Send(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mail.ParseAddress("<" + sent.ID + ">"); err != nil {
			t.Errorf("key %q: id %q is not an addr-spec: %v", key, sent.ID, err)
		}
		ids[sent.ID] = true
	}
	// A repeated key repeats its id; two sends without a key do not.
	if len(ids) != 4 {
		t.Errorf("ids = %v, want 4 distinct", ids)
	}
	if !ids["k-1@acme.test"] {
		t.Errorf("ids = %v, want k-1@acme.test", ids)
	}
}

func TestSendFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		rcpt      string // reply to RCPT
		data      string // reply after the message
		retryable bool
		code      int
	}{
		{name: "451 to RCPT is retryable", rcpt: "451 4.3.0 try again later", retryable: true, code: 451},
		{name: "421 to RCPT is retryable", rcpt: "421 4.7.0 too busy", retryable: true, code: 421},
		{name: "550 to RCPT is permanent", rcpt: "550 5.1.1 no such user", code: 550},
		{name: "552 after DATA is permanent", data: "552 5.3.4 message too big", code: 552},
		{name: "452 after DATA is retryable", data: "452 4.3.1 out of storage", retryable: true, code: 452},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, &server{RcptReply: tt.rcpt, DataReply: tt.data})
			_, err := newProvider(t, smtp.Config{Addr: srv.Addr}).Send(context.Background(), message())
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *provider.Error", err, err)
			}
			if pe.Retryable != tt.retryable || pe.StatusCode != tt.code || provider.Retryable(err) != tt.retryable {
				t.Errorf("retryable %v code %d, want %v %d (%v)", pe.Retryable, pe.StatusCode, tt.retryable, tt.code, err)
			}
		})
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = newProvider(t, smtp.Config{Addr: addr}).Send(context.Background(), message())
	var pe *provider.Error
	if !errors.As(err, &pe) || !pe.Retryable || pe.StatusCode != 0 {
		t.Fatalf("err = %v, want retryable without code", err)
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &server{Silent: true})
	start := time.Now()
	_, err := newProvider(t, smtp.Config{Addr: srv.Addr, Timeout: 200 * time.Millisecond}).Send(context.Background(), message())
	if !provider.Retryable(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestSendCancelled(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &server{Silent: true})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := newProvider(t, smtp.Config{Addr: srv.Addr}).Send(ctx, message())
	if !provider.Retryable(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want retryable and context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v to take effect", d)
	}
}

func TestSendAuthAndHelo(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &server{Extensions: []string{"AUTH PLAIN LOGIN"}})
	p := newProvider(t, smtp.Config{Addr: srv.Addr, Username: "mailer", Password: "s3cret", HeloName: "app.acme.test"})
	if _, err := p.Send(context.Background(), message()); err != nil {
		t.Fatal(err)
	}
	s := srv.Sessions()[0]
	if s.Auth != "\x00mailer\x00s3cret" {
		t.Errorf("AUTH PLAIN = %q", s.Auth)
	}
	if s.Helo != "app.acme.test" {
		t.Errorf("EHLO %q", s.Helo)
	}

	// Without a username there is no AUTH, even when offered.
	if _, err := newProvider(t, smtp.Config{Addr: srv.Addr}).Send(context.Background(), message()); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range srv.Sessions()[1].Commands {
		if strings.HasPrefix(cmd, "AUTH") {
			t.Errorf("sent %q without credentials", cmd)
		}
	}
}

// testTLS borrows httptest's certificate (valid for 127.0.0.1) for the
// server side of STARTTLS and returns a client config trusting it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	hs := httptest.NewTLSServer(http.NotFoundHandler())
	defer hs.Close()
	roots := x509.NewCertPool()
	roots.AddCert(hs.Certificate())
	return &tls.Config{Certificates: hs.TLS.Certificates}, &tls.Config{RootCAs: roots}
}

func TestStartTLS(t *testing.T) {
	t.Parallel()
	serverTLS, clientTLS := testTLS(t)
	tests := []struct {
		name      string
		offer     bool
		mode      smtp.TLSMode
		client    *tls.Config
		wantTLS   bool
		wantErr   bool
		retryable bool
	}{
		{name: "auto upgrades when offered", offer: true, mode: smtp.TLSAuto, client: clientTLS, wantTLS: true},
		{name: "auto stays plain when not offered", mode: smtp.TLSAuto},
		{name: "required upgrades", offer: true, mode: smtp.TLSRequired, client: clientTLS, wantTLS: true},
		{name: "required fails without STARTTLS", mode: smtp.TLSRequired, wantErr: true},
		{name: "off ignores the offer", offer: true, mode: smtp.TLSOff},
		{name: "an untrusted certificate fails", offer: true, mode: smtp.TLSAuto, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &server{}
			if tt.offer {
				s.TLS = serverTLS
			}
			srv := startServer(t, s)
			_, err := newProvider(t, smtp.Config{Addr: srv.Addr, StartTLS: tt.mode, TLSConfig: tt.client}).Send(context.Background(), message())
			if tt.wantErr {
				if err == nil || provider.Retryable(err) != tt.retryable {
					t.Fatalf("err = %v, want an error with retryable %v", err, tt.retryable)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := srv.Sessions()[0]
			if got.TLS != tt.wantTLS || got.Data == "" {
				t.Errorf("tls %v (want %v), %d bytes delivered", got.TLS, tt.wantTLS, len(got.Data))
			}
		})
	}
}

func TestSendInvalidMessage(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &server{})
	p := newProvider(t, smtp.Config{Addr: srv.Addr})
	for name, edit := range map[string]func(*provider.Message){
		"bad from":             func(m *provider.Message) { m.From = "not an address" },
		"no recipient":         func(m *provider.Message) { m.To = nil },
		"bad to":               func(m *provider.Message) { m.To = []string{"ada"} },
		"bad reply-to":         func(m *provider.Message) { m.ReplyTo = []string{"@"} },
		"header injection":     func(m *provider.Message) { m.Headers = map[string]string{"X-A": "a\r\nBcc: eve@example.com"} },
		"reserved header":      func(m *provider.Message) { m.Headers = map[string]string{"subject": "again"} },
		"bad header name":      func(m *provider.Message) { m.Headers = map[string]string{"X A": "a"} },
		"colon in header name": func(m *provider.Message) { m.Headers = map[string]string{"X:A": "a"} },
	} {
		m := message()
		edit(&m)
		_, err := p.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Retryable {
			t.Errorf("%s: err = %v, want a permanent provider error", name, err)
		}
	}
	if n := len(srv.Sessions()); n != 0 {
		t.Errorf("%d sessions for messages that cannot be built", n)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]smtp.Config{
		"no port":  {Addr: "localhost"},
		"bad mode": {Addr: "localhost:25", StartTLS: 7},
	} {
		if _, err := smtp.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	p, err := smtp.New(smtp.Config{Addr: "localhost:1025"})
	if err != nil || p.Name() != "smtp" {
		t.Fatalf("p %v err %v", p, err)
	}
}
