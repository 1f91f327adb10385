package mailer_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"

	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/mailer"
	"github.com/seed-eeb360f6/hogsend/services/mailer/devoutbox"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
	"github.com/seed-eeb360f6/hogsend/services/preferences"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// countingProvider wraps the dev outbox and counts provider calls; lose
// makes the next n calls deliver but report a lost answer (a crash between
// the provider accepting and the mailer recording it).
type countingProvider struct {
	next  provider.Provider
	calls atomic.Int64
	lose  atomic.Int64
	// fail refuses every message for good (a 422).
	fail atomic.Bool
}

func (p *countingProvider) Name() string { return p.next.Name() }

func (p *countingProvider) Send(ctx context.Context, m provider.Message) (provider.Sent, error) {
	p.calls.Add(1)
	if p.fail.Load() {
		return provider.Sent{}, &provider.Error{StatusCode: 422, Err: errors.New("invalid from address")}
	}
	s, err := p.next.Send(ctx, m)
	if err == nil && p.lose.Add(-1) >= 0 {
		return provider.Sent{}, &provider.Error{Retryable: true, Err: errors.New("connection reset before the answer")}
	}
	return s, err
}

// links is a fixed token-link builder for tests.
type links struct{}

func (links) UnsubscribeURLAt(id, email, category string, _ time.Time) string {
	return "https://mail.example.com/v1/email/unsubscribe?token=" + id + "." + category
}
func (links) PreferencesURLAt(id, email string, _ time.Time) string {
	return "https://mail.example.com/v1/email/preferences?token=" + id
}

// blockList withholds sends to listed addresses.
type blockList map[string]string

func (b blockList) Check(_ context.Context, email, _ string) (bool, string, error) {
	r, ok := b[strings.ToLower(email)]
	return ok, r, nil
}

type fixture struct {
	pool  *pgxpool.Pool
	js    jetstream.JetStream
	pub   *bus.Publisher
	prov  *countingProvider
	m     *mailer.Mailer
	outbx *devoutbox.Outbox
}

func newFixture(t *testing.T, cfg mailer.Config, supp mailer.Suppression) *fixture {
	t.Helper()
	pool := schematest.NewPool(t)
	_, _, js := natstest.Start(t)
	if err := bus.Provision(context.Background(), js, streams.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	ob := devoutbox.New(pool)
	prov := &countingProvider{next: ob}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "https://mail.example.com"
	}
	tpls, err := templates.StockRegistry()
	if err != nil {
		t.Fatal(err)
	}
	m, err := mailer.New(pool, tpls, prov, cfg, mailer.Options{Suppression: supp, Links: links{}, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{pool: pool, js: js, pub: pub, prov: prov, m: m, outbx: ob}
}

func (f *fixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func newConfig() mailer.Config { return mailer.Config{} }

func journeyCommand(key, to string) *streams.EmailCommand {
	return &streams.EmailCommand{V: 1, ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(key)).String(), IdempotencyKey: key, To: to,
		UserID: "u1", Template: "welcome", Subject: "Welcome aboard", Category: "journey", JourneyID: "welcome",
		Props: json.RawMessage(`{"url":"https://app.example.com/start?a=1&b=2"}`), RequestedAt: time.Now()}
}

// A tracked send stores one row, renders with tracking, carries the
// RFC 8058 headers, and a repeat of the command (a journey replay, a
// redelivery) sends nothing more.
func TestTrackedSendOncePerKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mailer.Config{From: "hello@example.com"}, nil)
	ctx := context.Background()
	cmd := journeyCommand("journey:s1:0", "ada@example.com")
	res, err := f.m.Send(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != mailer.StatusSent || res.EmailSendID != cmd.ID {
		t.Fatalf("result %+v", res)
	}
	for range 3 {
		again, err := f.m.Send(ctx, cmd)
		if err != nil || again.Status != mailer.StatusSent || again.EmailSendID != cmd.ID {
			t.Fatalf("repeat: %+v %v", again, err)
		}
	}
	if n := f.prov.calls.Load(); n != 1 {
		t.Errorf("%d provider calls, want 1", n)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends`); n != 1 {
		t.Errorf("%d send rows, want 1", n)
	}
	var headers map[string]string
	var html, text, subject string
	if err := f.pool.QueryRow(ctx, `SELECT headers, html, text, subject FROM dev_outbox`).Scan(&headers, &html, &text, &subject); err != nil {
		t.Fatal(err)
	}
	// Golden: the headers of a tracked send, exactly as the provider got
	// them (a journey send links to the global unsubscribe).
	golden, err := os.ReadFile("testdata/tracked-send-headers.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]string
	if err := json.Unmarshal(golden, &want); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(headers, want) {
		t.Errorf("headers %v, want testdata/tracked-send-headers.json %v", headers, want)
	}
	if subject != "Welcome aboard" {
		t.Errorf("subject %q", subject)
	}
	if !strings.Contains(html, "https://mail.example.com/v1/t/o/"+cmd.ID) || strings.Contains(html, "https://app.example.com/start") {
		t.Errorf("html lacks the pixel or kept an untracked link")
	}
	if text == "" {
		t.Error("no text part")
	}
	var url string
	if err := f.pool.QueryRow(ctx, `SELECT url FROM tracked_links WHERE email_send_id = $1`, uuid.MustParse(cmd.ID)).Scan(&url); err != nil {
		t.Fatal(err)
	}
	if url != "https://app.example.com/start?a=1&b=2" {
		t.Errorf("tracked url %q: entities must be decoded", url)
	}
}

// The provider accepted but the answer was lost (a crash before the row
// was marked sent): the retried command calls the provider again with the
// same idempotency key, which drops it, and the row ends sent.
func TestLostProviderAnswerSendsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mailer.Config{}, nil)
	f.prov.lose.Store(1)
	ctx := context.Background()
	cmd := journeyCommand("journey:s2:0", "ada@example.com")
	if _, err := f.m.Send(ctx, cmd); err == nil || !provider.Retryable(err) {
		t.Fatalf("first attempt: %v, want a retryable error", err)
	}
	res, err := f.m.Send(ctx, cmd)
	if err != nil || res.Status != mailer.StatusSent {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if n := f.count(t, `SELECT count(*) FROM dev_outbox`); n != 1 {
		t.Errorf("%d messages delivered, want 1", n)
	}
	if n := f.prov.calls.Load(); n != 2 {
		t.Errorf("%d provider calls, want 2 (the retry carries the same key)", n)
	}
}

// Through the EMAILS consumer: the same command redelivered and re-issued
// under other message ids (a replay after the dedupe window) yields one
// row and one provider call.
func TestConsumerExactlyOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mailer.Config{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.RunWorkQueue(ctx, bus.WorkQueueConfig{JetStream: f.js, Stream: streams.StreamEmails, Name: mailer.Name,
			FilterSubject: streams.EmailSendSubject, Workers: 4}, f.m.Handle)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	cmd := journeyCommand("journey:s3:0", "ada@example.com")
	data, _ := json.Marshal(cmd)
	for i := range 5 {
		// Distinct message ids get past the stream's dedupe, as a replay
		// beyond the window would.
		if err := f.pub.PublishAsyncBatch(ctx, []bus.OutMsg{{Subject: streams.EmailSendSubject, MsgID: cmd.IdempotencyKey + ":" + string(rune('a'+i)), Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.count(t, `SELECT count(*) FROM email_sends WHERE status = 'sent'`) < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := f.count(t, `SELECT count(*) FROM email_sends`); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
	if n := f.prov.calls.Load(); n != 1 {
		t.Errorf("%d provider calls, want 1", n)
	}
}

// Withheld sends get a failed row without the key and no provider call;
// the frequency cap skips without a row; a template of the registry is
// required.
func TestWithheldCappedAndUnknown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mailer.Config{FrequencyCap: &mailer.FrequencyCap{Count: 2, Window: time.Hour}},
		blockList{"gone@example.com": "unsubscribed", "bounced@example.com": "suppressed"})
	ctx := context.Background()
	for i, tc := range []struct{ to, status string }{
		{"Gone@Example.com", mailer.StatusUnsubscribed}, {"bounced@example.com", mailer.StatusSuppressed},
	} {
		res, err := f.m.Send(ctx, journeyCommand("k-withheld-"+string(rune('0'+i)), tc.to))
		if err != nil || res.Status != tc.status || res.EmailSendID == "" {
			t.Errorf("%s: %+v %v", tc.to, res, err)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE status = 'failed' AND idempotency_key IS NULL AND reason IS NOT NULL`); n != 2 {
		t.Errorf("%d withheld rows, want 2", n)
	}
	for i := range 3 {
		cmd := journeyCommand("k-cap-"+string(rune('0'+i)), "busy@example.com")
		cmd.Category = ""
		res, err := f.m.Send(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: mailer.StatusSkipped, false: mailer.StatusSent}[i == 2]; res.Status != want {
			t.Errorf("send %d: %s, want %s", i, res.Status, want)
		}
	}
	if n := f.prov.calls.Load(); n != 2 {
		t.Errorf("%d provider calls, want 2", n)
	}
	cmd := journeyCommand("k-unknown", "ada@example.com")
	cmd.Template = "nope"
	if _, err := f.m.Send(ctx, cmd); err == nil || !strings.Contains(err.Error(), "Unknown template: nope") {
		t.Errorf("unknown template: %v", err)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE template_key = 'nope'`); n != 0 {
		t.Error("a row was written for an unknown template")
	}
}

// Opens and clicks: the pixel always answers a GIF; the first open fills
// opened_at; a click redirects only to the stored URL and is recorded;
// both are ingested as events for the contact.
func TestTrackingRoutes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mailer.Config{}, nil)
	ctx := context.Background()
	cmd := journeyCommand("journey:s4:0", "ada@example.com")
	cmd.ContactID = uuid.NewString()
	if _, err := f.m.Send(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	router := httpapi.NewRouter()
	f.m.TrackingRoutes(router)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, ua string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("User-Agent", ua)
		req.Header.Set("X-Forwarded-For", "203.0.113.7, 10.0.0.1")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	human := "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)"
	for range 2 {
		if r := get("/v1/t/o/"+cmd.ID, human); r.StatusCode != 200 || r.Header.Get("Content-Type") != "image/gif" || r.Header.Get("Cache-Control") == "" {
			t.Errorf("pixel: %d %v", r.StatusCode, r.Header)
		}
	}
	if r := get("/v1/t/o/"+uuid.NewString(), human); r.StatusCode != 200 {
		t.Errorf("unknown pixel: %d", r.StatusCode)
	}
	if r := get("/v1/t/o/nope", human); r.StatusCode != 400 {
		t.Errorf("bad pixel id: %d", r.StatusCode)
	}
	var linkID uuid.UUID
	if err := f.pool.QueryRow(ctx, `SELECT id FROM tracked_links WHERE email_send_id = $1 LIMIT 1`, uuid.MustParse(cmd.ID)).Scan(&linkID); err != nil {
		t.Fatal(err)
	}
	r := get("/v1/t/c/"+linkID.String(), "Barracuda link scanner")
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "https://app.example.com/start?a=1&b=2" {
		t.Errorf("click: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if r := get("/v1/t/c/"+uuid.NewString(), human); r.StatusCode != http.StatusFound || r.Header.Get("Location") != "https://mail.example.com" {
		t.Errorf("unknown link: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	var opened, clicked *time.Time
	var clicks int
	if err := f.pool.QueryRow(ctx, `SELECT opened_at, clicked_at, click_count FROM email_sends WHERE id = $1`, uuid.MustParse(cmd.ID)).Scan(&opened, &clicked, &clicks); err != nil {
		t.Fatal(err)
	}
	if opened == nil || clicked == nil || clicks != 1 {
		t.Errorf("opened %v clicked %v clicks %d", opened, clicked, clicks)
	}
	var ip string
	var bot bool
	if err := f.pool.QueryRow(ctx, `SELECT ip_address, automated FROM link_clicks`).Scan(&ip, &bot); err != nil {
		t.Fatal(err)
	}
	if ip != "203.0.113.7" || !bot {
		t.Errorf("click recorded from %q automated=%v", ip, bot)
	}
	events := eventsOn(t, f.js)
	var names []string
	for _, e := range events {
		names = append(names, e.Name)
		if e.ContactID != cmd.ContactID {
			t.Errorf("%s for contact %q, want %q", e.Name, e.ContactID, cmd.ContactID)
		}
	}
	if strings.Join(names, ",") != "email.opened,email.opened,email.link_clicked" {
		t.Errorf("ingested %v", names)
	}
}

// eventsOn reads every event stored on EVENTS.
func eventsOn(t *testing.T, js jetstream.JetStream) []streams.Event {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Second)
	var out []streams.Event
	for time.Now().Before(deadline) {
		s, err := js.Stream(ctx, streams.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = out[:0]
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			var e streams.Event
			if json.Unmarshal(m.Data, &e) == nil {
				out = append(out, e)
			}
		}
		if len(out) >= 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

// A send that failed for good released its key: the same command sent
// again really re-sends, in a second row (spec 20 scenario 6).
func TestFailedSendCanBeRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mailer.Config{}, nil)
	ctx := context.Background()
	cmd := journeyCommand("api:retry-me", "ada@example.com")
	f.prov.fail.Store(true)
	if _, err := f.m.Send(ctx, cmd); !errors.Is(err, mailer.ErrSendFailed) {
		t.Fatalf("first attempt: %v, want a failed send", err)
	}
	f.prov.fail.Store(false)
	res, err := f.m.Send(ctx, cmd)
	if err != nil || res.Status != mailer.StatusSent {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends`); n != 2 {
		t.Errorf("%d rows, want the failed one and the sent one", n)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE idempotency_key = $1 AND status = 'sent'`, cmd.IdempotencyKey); n != 1 {
		t.Errorf("the key is held by %d sent rows, want 1", n)
	}
}

// Spec 20 scenario 12: with a cap of 2 a day and two prior sent rows the
// next send is skipped (no row); a transactional send is exempt; failed
// rows do not count.
func TestFrequencyCapRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mailer.Config{FrequencyCap: &mailer.FrequencyCap{Count: 2, Window: 24 * time.Hour}}, nil)
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `INSERT INTO email_sends (id, to_email, template_key, status, created_at) VALUES
		(gen_random_uuid(), 'cap@example.com', 'welcome', 'failed', now()), (gen_random_uuid(), 'cap@example.com', 'welcome', 'failed', now()),
		(gen_random_uuid(), 'cap@example.com', 'welcome', 'sent', now() - interval '25 hours')`); err != nil {
		t.Fatal(err)
	}
	send := func(key, category string) mailer.Result {
		cmd := journeyCommand(key, "cap@example.com")
		cmd.Category = category
		res, err := f.m.Send(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for i, want := range []string{mailer.StatusSent, mailer.StatusSent, mailer.StatusSkipped} {
		if got := send("cap-"+string(rune('a'+i)), ""); got.Status != want {
			t.Errorf("send %d: %s, want %s (failed rows and rows outside the window do not count)", i, got.Status, want)
		}
	}
	if got := send("cap-tx", "transactional"); got.Status != mailer.StatusSent {
		t.Errorf("transactional send: %s, want sent (exempt)", got.Status)
	}
	if res := send("cap-d", ""); res.EmailSendID != "" || res.Reason != "frequency_capped" {
		t.Errorf("capped result %+v, want no row and reason frequency_capped", res)
	}
}

// recordingProvider keeps every message it is handed and loses the answer
// of the first call (a crash after the provider accepted).
type recordingProvider struct {
	next provider.Provider
	mu   sync.Mutex
	got  []provider.Message
}

func (p *recordingProvider) Name() string { return p.next.Name() }

func (p *recordingProvider) Send(ctx context.Context, m provider.Message) (provider.Sent, error) {
	p.mu.Lock()
	p.got = append(p.got, m)
	first := len(p.got) == 1
	p.mu.Unlock()
	s, err := p.next.Send(ctx, m)
	if err == nil && first {
		return provider.Sent{}, &provider.Error{Retryable: true, Err: errors.New("answer lost")}
	}
	return s, err
}

// A send delivered again after a lost answer is byte for byte the same
// message under the same provider key, even though time moved on: the
// unsubscribe links are signed as of the send's creation (a provider such
// as Resend refuses a key reused with another payload).
func TestRetriedSendIsIdentical(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	clock := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	prefs, err := preferences.New(preferences.Config{Secret: []byte("s3cret"), PublicURL: "https://mail.example.com",
		Store: preferences.NewStore(pool, preferences.StoreOptions{}), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	tpls, err := templates.StockRegistry()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingProvider{next: devoutbox.New(pool)}
	m, err := mailer.New(pool, tpls, rec, mailer.Config{PublicURL: "https://mail.example.com"}, mailer.Options{Links: prefs, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	cmd := journeyCommand("journey:same:0", "ada@example.com")
	if _, err := m.Send(context.Background(), cmd); err == nil {
		t.Fatal("the lost answer was not reported")
	}
	mu.Lock()
	clock = clock.Add(90 * time.Minute)
	mu.Unlock()
	if res, err := m.Send(context.Background(), cmd); err != nil || res.Status != mailer.StatusSent {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if len(rec.got) != 2 {
		t.Fatalf("%d provider calls, want 2", len(rec.got))
	}
	a, b := rec.got[0], rec.got[1]
	if a.IdempotencyKey != b.IdempotencyKey || a.HTML != b.HTML || a.Text != b.Text || !maps.Equal(a.Headers, b.Headers) || a.Subject != b.Subject {
		t.Errorf("the retry differs from the first attempt under key %s", a.IdempotencyKey)
	}
}

// A command the database cannot store (a NUL byte) is a poison message of
// its own: its batch mates are sent.
func TestPoisonCommandDoesNotHoldItsBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mailer.Config{}, nil)
	good := journeyCommand("journey:good:0", "ada@example.com")
	bad := journeyCommand("journey:bad:0", "bob@example.com")
	bad.Subject = "hello\x00world"
	var msgs []bus.Msg
	for _, c := range []*streams.EmailCommand{bad, good} {
		data, _ := json.Marshal(c)
		msgs = append(msgs, bus.Msg{Data: data, NumDelivered: 1})
	}
	errs := f.m.HandleBatch(context.Background(), msgs)
	if !bus.IsPermanent(errs[0]) || errs[1] != nil {
		t.Fatalf("outcomes %v, want the bad command permanent and the good one sent", errs)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE status = 'sent'`); n != 1 {
		t.Errorf("%d sent rows, want 1", n)
	}
}
