package mailer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/mailer"
	"github.com/seed-eeb360f6/hogsend/services/mailer/devoutbox"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// batchProvider is the dev outbox as a BatchProvider that counts what it is
// handed per idempotency key; failBatch and failOne inject failures.
type batchProvider struct {
	next       *devoutbox.Outbox
	calls      atomic.Int64 // Send calls
	batchCalls atomic.Int64 // SendBatch calls
	mu         sync.Mutex
	perKey     map[string]int
	failBatch  func(msgs []provider.Message) error
	failOne    func(m provider.Message) error
}

func (p *batchProvider) Name() string { return p.next.Name() }

// MessageIdempotent is the dev outbox's: it stores each key once.
func (p *batchProvider) MessageIdempotent() bool { return p.next.MessageIdempotent() }

// inject sets the failures (nil: none).
func (p *batchProvider) inject(batch func([]provider.Message) error, one func(provider.Message) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failBatch, p.failOne = batch, one
}

func (p *batchProvider) count(msgs ...provider.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.perKey[m.IdempotencyKey]++
	}
}

func (p *batchProvider) Send(ctx context.Context, m provider.Message) (provider.Sent, error) {
	p.calls.Add(1)
	p.count(m)
	p.mu.Lock()
	fail := p.failOne
	p.mu.Unlock()
	if fail != nil {
		if err := fail(m); err != nil {
			return provider.Sent{}, err
		}
	}
	return p.next.Send(ctx, m)
}

func (p *batchProvider) SendBatch(ctx context.Context, msgs []provider.Message) ([]provider.Sent, error) {
	p.batchCalls.Add(1)
	p.count(msgs...)
	p.mu.Lock()
	fail := p.failBatch
	p.mu.Unlock()
	if fail != nil {
		if err := fail(msgs); err != nil {
			return nil, err
		}
	}
	return p.next.SendBatch(ctx, msgs)
}

// handed is how many times the provider was handed each key; more than
// once for any key fails the test.
func (p *batchProvider) handedOnce(t *testing.T) int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, n := range p.perKey {
		if n != 1 {
			t.Errorf("provider handed %s %d times", k, n)
		}
	}
	return len(p.perKey)
}

// notes is a Notifier keeping the announced results by command id.
type notes struct {
	mu  sync.Mutex
	got map[string][]streams.EmailResult
}

func (n *notes) Publish(subject string, data []byte) error {
	var r streams.EmailResult
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	id := strings.TrimPrefix(subject, streams.EmailResultRoot+".")
	n.got[id] = append(n.got[id], r)
	return nil
}

func (n *notes) of(id string) []streams.EmailResult {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.got[id]
}

type batchFixture struct {
	*fixture
	bp    *batchProvider
	notes *notes
}

// newBatchFixture is newFixture with a batch provider and a notifier.
func newBatchFixture(t *testing.T, cfg mailer.Config, supp mailer.Suppression) *batchFixture {
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
	bp := &batchProvider{next: ob, perKey: map[string]int{}}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "https://mail.example.com"
	}
	tpls, err := templates.StockRegistry()
	if err != nil {
		t.Fatal(err)
	}
	n := &notes{got: map[string][]streams.EmailResult{}}
	m, err := mailer.New(pool, tpls, bp, cfg, mailer.Options{Suppression: supp, Links: links{}, Publisher: pub, Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	return &batchFixture{fixture: &fixture{pool: pool, js: js, pub: pub, m: m, outbx: ob}, bp: bp, notes: n}
}

// busMsgs wraps commands (or raw bodies) as consumed messages.
func busMsgs(t *testing.T, delivered uint64, cmds ...any) []bus.Msg {
	t.Helper()
	out := make([]bus.Msg, len(cmds))
	for i, c := range cmds {
		var data []byte
		switch c := c.(type) {
		case []byte:
			data = c
		default:
			var err error
			if data, err = json.Marshal(c); err != nil {
				t.Fatal(err)
			}
		}
		out[i] = bus.Msg{Subject: streams.EmailSendSubject, Seq: uint64(i + 1), NumDelivered: delivered, Data: data}
	}
	return out
}

// Copies of a key inside a batch and across batches (one after the other
// and concurrently) make one row and hand the provider one message.
func TestHandleBatchOncePerKey(t *testing.T) {
	t.Parallel()
	f := newBatchFixture(t, mailer.Config{}, nil)
	ctx := context.Background()
	a, b := journeyCommand("journey:b1:0", "ada@example.com"), journeyCommand("journey:b2:0", "bob@example.com")
	errs := f.m.HandleBatch(ctx, busMsgs(t, 1, a, a, b, a))
	for i, err := range errs {
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	for _, id := range []string{a.ID, b.ID} {
		if got := f.notes.of(id); len(got) == 0 || got[0].Status != mailer.StatusSent || got[0].EmailSendID != id {
			t.Errorf("announced for %s: %+v", id, got)
		}
	}
	if n := f.bp.batchCalls.Load(); n != 1 {
		t.Errorf("%d batch calls, want 1", n)
	}
	// The same commands again, as redeliveries and a replay.
	for _, err := range f.m.HandleBatch(ctx, busMsgs(t, 2, b, a, a)) {
		if err != nil {
			t.Error(err)
		}
	}
	// Concurrent batches sharing keys.
	c, d := journeyCommand("journey:b3:0", "cy@example.com"), journeyCommand("journey:b4:0", "di@example.com")
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for range 4 {
		wg.Go(func() {
			for _, err := range f.m.HandleBatch(ctx, busMsgs(t, 1, c, d, c, a)) {
				mu.Lock()
				switch _, retry := bus.RetryDelay(err); {
				case err == nil:
					outcomes["ack"]++
				case retry:
					// A copy that found its twin delivering: retried
					// after the lease, by when the row is sent.
					outcomes["retry"]++
				default:
					t.Errorf("concurrent batch: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if outcomes["ack"] < 7 || outcomes["ack"]+outcomes["retry"] != 16 {
		t.Errorf("outcomes %v", outcomes)
	}
	// Every copy finds its row sent now.
	for _, err := range f.m.HandleBatch(ctx, busMsgs(t, 2, c, d)) {
		if err != nil {
			t.Error(err)
		}
	}
	if n := f.bp.handedOnce(t); n != 4 {
		t.Errorf("provider handed %d keys, want 4", n)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends`); n != 4 {
		t.Errorf("%d rows, want 4", n)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE status = 'sent' AND resend_id IS NOT NULL`); n != 4 {
		t.Errorf("%d rows sent with the provider's id, want 4", n)
	}
	if n := f.count(t, `SELECT count(*) FROM dev_outbox`); n != 4 {
		t.Errorf("%d messages in the outbox, want 4", n)
	}
	// The batch path stores what the single path stores.
	var headers map[string]string
	var html, subject string
	var to []string
	if err := f.pool.QueryRow(ctx, `SELECT headers, html, subject, to_emails FROM dev_outbox WHERE send_key = $1`, a.ID).Scan(&headers, &html, &subject, &to); err != nil {
		t.Fatal(err)
	}
	if headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" || !strings.Contains(html, "https://mail.example.com/v1/t/o/"+a.ID) {
		t.Errorf("headers %v, pixel missing: %v", headers, !strings.Contains(html, "/v1/t/o/"))
	}
	if subject != "Welcome aboard" || len(to) != 1 || to[0] != "ada@example.com" {
		t.Errorf("stored subject %q to %v", subject, to)
	}
	if n := f.count(t, `SELECT count(*) FROM tracked_links WHERE email_send_id = $1 AND url = 'https://app.example.com/start?a=1&b=2'`, uuid.MustParse(a.ID)); n != 1 {
		t.Errorf("%d tracked links for the start url, want 1", n)
	}
}

// outcomeKind names how the consumer settles an error.
func outcomeKind(err error) string {
	switch _, retry := bus.RetryDelay(err); {
	case err == nil:
		return "ack"
	case bus.IsPermanent(err):
		return "dead-letter"
	case retry:
		return "retry-after"
	}
	return "retry"
}

// A batch mixing every outcome settles and announces each command as
// Handle does one by one: sent, withheld (unsubscribed, suppressed),
// capped (counting the batch's own earlier sends), unknown template,
// malformed and incomplete commands.
func TestHandleBatchMixedOutcomesAgreeWithHandle(t *testing.T) {
	t.Parallel()
	cfg := mailer.Config{FrequencyCap: &mailer.FrequencyCap{Count: 2, Window: time.Hour,
		ByCategory: map[string]mailer.CategoryCap{"campaign": {Count: 1, Window: time.Hour}}}}
	supp := blockList{"gone@example.com": "unsubscribed", "bounced@example.com": "suppressed"}
	var inputs []any
	add := func(key, to string, edit func(*streams.EmailCommand)) {
		cmd := journeyCommand(key, to)
		if edit != nil {
			edit(cmd)
		}
		inputs = append(inputs, cmd)
	}
	add("k-good", "ada@example.com", nil)
	add("k-gone", "Gone@Example.com", nil)
	add("k-bounced", "bounced@example.com", nil)
	for i := range 3 {
		add(fmt.Sprintf("k-cap-%d", i), "busy@example.com", func(c *streams.EmailCommand) { c.Category = "" })
	}
	// Per-category cap: one campaign send an hour; other categories do
	// not count against it, transactional is exempt from every cap.
	add("k-camp-0", "camp@example.com", func(c *streams.EmailCommand) { c.Category = "campaign" })
	add("k-camp-tx", "camp@example.com", func(c *streams.EmailCommand) { c.Category = "transactional" })
	add("k-camp-1", "camp@example.com", func(c *streams.EmailCommand) { c.Category = "campaign" })
	add("k-system", "gone@example.com", func(c *streams.EmailCommand) { c.SkipPreferenceCheck = true })
	add("k-unknown", "ada@example.com", func(c *streams.EmailCommand) { c.Template = "nope" })
	add("k-noto", "", nil)
	add("k-props", "ada@example.com", func(c *streams.EmailCommand) { c.Props = json.RawMessage(`[1]`) })
	inputs = append(inputs, []byte(`{"v":1,`))
	add("", "nokey@example.com", func(c *streams.EmailCommand) { c.ID = "" })

	type seen struct {
		kind, status, reason string
		failed               bool
	}
	run := func(batch bool) ([]seen, *batchFixture) {
		f := newBatchFixture(t, cfg, supp)
		ctx := context.Background()
		msgs := busMsgs(t, 1, inputs...)
		var errs []error
		if batch {
			errs = f.m.HandleBatch(ctx, msgs)
		} else {
			for _, m := range msgs {
				errs = append(errs, f.m.Handle(ctx, m))
			}
		}
		out := make([]seen, len(inputs))
		for i, in := range inputs {
			out[i].kind = outcomeKind(errs[i])
			if cmd, ok := in.(*streams.EmailCommand); ok && cmd.ID != "" {
				if got := f.notes.of(cmd.ID); len(got) == 1 {
					out[i].status, out[i].reason, out[i].failed = got[0].Status, got[0].Reason, got[0].Error != ""
				} else if len(got) > 1 {
					t.Errorf("%s announced %d times", cmd.IdempotencyKey, len(got))
				}
			}
		}
		return out, f
	}
	got, f := run(true)
	want := []seen{
		{"ack", mailer.StatusSent, "", false},
		{"ack", mailer.StatusUnsubscribed, "unsubscribed", false},
		{"ack", mailer.StatusSuppressed, "suppressed", false},
		{"ack", mailer.StatusSent, "", false},
		{"ack", mailer.StatusSent, "", false},
		{"ack", mailer.StatusSkipped, "frequency_capped", false},
		{"ack", mailer.StatusSent, "", false},
		{"ack", mailer.StatusSent, "", false},
		{"ack", mailer.StatusSkipped, "frequency_capped", false},
		{"ack", mailer.StatusSent, "", false},
		{"dead-letter", mailer.StatusFailed, "", true},
		{"dead-letter", mailer.StatusFailed, "", true},
		{"dead-letter", mailer.StatusFailed, "", true},
		{"dead-letter", "", "", false},
		{"ack", "", "", false},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("batch, input %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	single, sf := run(false)
	for i := range want {
		if single[i] != got[i] {
			t.Errorf("input %d: batch %+v, single %+v", i, got[i], single[i])
		}
	}
	// The same rows either way.
	const rowsSQL = `SELECT coalesce(string_agg(to_email || ':' || status || ':' || coalesce(reason, '-') || ':' || (idempotency_key IS NOT NULL)::text, ',' ORDER BY to_email, status, reason), '') FROM email_sends`
	var batchRows, singleRows string
	if err := f.pool.QueryRow(context.Background(), rowsSQL).Scan(&batchRows); err != nil {
		t.Fatal(err)
	}
	if err := sf.pool.QueryRow(context.Background(), rowsSQL).Scan(&singleRows); err != nil {
		t.Fatal(err)
	}
	if batchRows != singleRows {
		t.Errorf("rows differ:\nbatch  %s\nsingle %s", batchRows, singleRows)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE status = 'failed' AND idempotency_key IS NULL AND reason IN ('unsubscribed', 'suppressed')`); n != 2 {
		t.Errorf("%d withheld rows, want 2", n)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE template_key = 'nope'`); n != 0 {
		t.Error("a row was written for an unknown template")
	}
	// Sent: good, 2 busy, camp-0, camp-tx, system, nokey.
	if n := f.bp.handedOnce(t); n != 7 {
		t.Errorf("provider handed %d messages, want 7", n)
	}
}

// A retryable batch failure leaves the rows queued and released, and the
// consumer retries the messages with backoff until they are sent; a
// non-retryable one is retried message by message so only the message at
// fault fails.
func TestHandleBatchProviderFailures(t *testing.T) {
	t.Parallel()
	f := newBatchFixture(t, mailer.Config{MaxDeliver: 5}, nil)
	ctx := context.Background()
	var failures atomic.Int64
	failures.Store(2)
	f.bp.inject(func([]provider.Message) error {
		if failures.Add(-1) >= 0 {
			return &provider.Error{Retryable: true, StatusCode: 503, Err: errors.New("service unavailable")}
		}
		return nil
	}, nil)
	var cmds []any
	for i := range 3 {
		cmds = append(cmds, journeyCommand(fmt.Sprintf("journey:r%d:0", i), fmt.Sprintf("r%d@example.com", i)))
	}
	for _, err := range f.m.HandleBatch(ctx, busMsgs(t, 1, cmds...)) {
		if outcomeKind(err) != "retry" || !provider.Retryable(err) {
			t.Errorf("first attempt: %v, want a retryable error", err)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE status = 'queued' AND lease_until IS NULL AND idempotency_key IS NOT NULL`); n != 3 {
		t.Errorf("%d rows queued and released, want 3", n)
	}
	if got := f.notes.of(cmds[0].(*streams.EmailCommand).ID); len(got) != 0 {
		t.Errorf("a retry announced %+v; the caller keeps waiting", got)
	}

	// Through the batch consumer: the messages come back and are sent.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- bus.RunWorkQueueBatch(rctx, bus.WorkQueueBatchConfig{WorkQueueConfig: bus.WorkQueueConfig{
			JetStream: f.js, Stream: streams.StreamEmails, Name: mailer.Name, FilterSubject: streams.EmailSendSubject,
			MaxDeliver: 5, Backoff: bus.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond},
		}}, f.m.HandleBatch)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	var out []bus.OutMsg
	for _, c := range cmds {
		data, _ := json.Marshal(c)
		out = append(out, bus.OutMsg{Subject: streams.EmailSendSubject, MsgID: c.(*streams.EmailCommand).IdempotencyKey, Data: data})
	}
	if err := f.pub.PublishAsyncBatch(ctx, out); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.count(t, `SELECT count(*) FROM email_sends WHERE status = 'sent'`) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE status = 'sent'`); n != 3 {
		t.Fatalf("%d rows sent after the provider recovered, want 3", n)
	}
	if n := f.bp.batchCalls.Load() + f.bp.calls.Load(); n < 3 {
		t.Errorf("%d provider calls, want the failed one, a retried failure and a success at least", n)
	}
	if n := f.count(t, `SELECT count(*) FROM dev_outbox`); n != 3 {
		t.Errorf("%d messages in the outbox, want 3", n)
	}

	// A refused batch: each message alone, only the bad one fails.
	invalid := func(m provider.Message) error {
		if strings.HasPrefix(m.To[0], "invalid") {
			return &provider.Error{StatusCode: 422, Err: errors.New("invalid `to` field")}
		}
		return nil
	}
	f.bp.inject(func(msgs []provider.Message) error {
		for _, m := range msgs {
			if err := invalid(m); err != nil {
				return err
			}
		}
		return nil
	}, invalid)
	bad := journeyCommand("journey:bad:0", "invalid@example")
	good := journeyCommand("journey:good:0", "good@example.com")
	for i, err := range f.m.HandleBatch(ctx, busMsgs(t, 1, bad, good)) {
		if err != nil {
			t.Errorf("message %d: %v (failed for good and sent are both settled)", i, err)
		}
	}
	var status, reason string
	if err := f.pool.QueryRow(ctx, `SELECT status, coalesce(reason, '') FROM email_sends WHERE id = $1`, uuid.MustParse(bad.ID)).Scan(&status, &reason); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || reason != "provider" {
		t.Errorf("bad send %s/%s, want failed/provider", status, reason)
	}
	if got := f.notes.of(bad.ID); len(got) != 1 || got[0].Status != mailer.StatusFailed || got[0].Error == "" {
		t.Errorf("bad send announced %+v", got)
	}
	if err := f.pool.QueryRow(ctx, `SELECT status FROM email_sends WHERE id = $1`, uuid.MustParse(good.ID)).Scan(&status); err != nil || status != "sent" {
		t.Errorf("good send %s %v", status, err)
	}

	// Still failing on the last delivery: the row is failed, the message
	// dead-lettered, the caller told.
	f.bp.inject(func([]provider.Message) error {
		return &provider.Error{Retryable: true, StatusCode: 429, Err: errors.New("rate limited")}
	}, nil)
	last := []any{journeyCommand("journey:last:0", "l0@example.com"), journeyCommand("journey:last:1", "l1@example.com")}
	for _, err := range f.m.HandleBatch(ctx, busMsgs(t, 5, last...)) {
		if !bus.IsPermanent(err) {
			t.Errorf("last delivery: %v, want a permanent error", err)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE to_email LIKE 'l_@example.com' AND status = 'failed' AND idempotency_key IS NULL`); n != 2 {
		t.Errorf("%d rows failed on the last delivery, want 2", n)
	}
	if got := f.notes.of(last[0].(*streams.EmailCommand).ID); len(got) != 1 || got[0].Status != mailer.StatusFailed {
		t.Errorf("last delivery announced %+v", got)
	}
}

// A row left queued by an attempt whose provider answer was lost is
// delivered again under the same provider key; a row another attempt is
// delivering is retried after that attempt's lease.
func TestHandleBatchQueuedRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mailer.Config{}, nil)
	ctx := context.Background()
	f.prov.lose.Store(1)
	lost := journeyCommand("journey:q1:0", "ada@example.com")
	if _, err := f.m.Send(ctx, lost); err == nil {
		t.Fatal("the lost answer was not reported")
	}
	busy := journeyCommand("journey:q2:0", "bob@example.com")
	if _, err := f.pool.Exec(ctx, `INSERT INTO email_sends (id, idempotency_key, to_email, template_key, status, lease_until)
		VALUES ($1, $2, $3, 'welcome', 'queued', now() + interval '30 seconds')`, uuid.MustParse(busy.ID), busy.IdempotencyKey, busy.To); err != nil {
		t.Fatal(err)
	}
	errs := f.m.HandleBatch(ctx, busMsgs(t, 2, lost, busy))
	if errs[0] != nil {
		t.Errorf("lost answer: %v", errs[0])
	}
	if d, ok := bus.RetryDelay(errs[1]); !ok || d < 25*time.Second || d > 32*time.Second {
		t.Errorf("busy row: %v (retry in %v), want a retry after the lease", errs[1], d)
	}
	if n := f.count(t, `SELECT count(*) FROM dev_outbox`); n != 1 {
		t.Errorf("%d messages delivered, want 1", n)
	}
	if n := f.prov.calls.Load(); n != 2 {
		t.Errorf("%d provider calls, want 2 (the retry carries the same key)", n)
	}
	if n := f.count(t, `SELECT count(*) FROM email_sends WHERE status = 'sent'`); n != 1 {
		t.Errorf("%d rows sent, want 1", n)
	}
}

// Through the batch consumer: the same command redelivered and re-issued
// under other message ids yields one row and one provider call.
func TestBatchConsumerExactlyOnce(t *testing.T) {
	t.Parallel()
	f := newBatchFixture(t, mailer.Config{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.RunWorkQueueBatch(ctx, bus.WorkQueueBatchConfig{WorkQueueConfig: bus.WorkQueueConfig{
			JetStream: f.js, Stream: streams.StreamEmails, Name: mailer.Name, FilterSubject: streams.EmailSendSubject, Workers: 4,
		}, BatchSize: 3}, f.m.HandleBatch)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	cmd := journeyCommand("journey:s3:0", "ada@example.com")
	data, _ := json.Marshal(cmd)
	var out []bus.OutMsg
	for i := range 7 {
		out = append(out, bus.OutMsg{Subject: streams.EmailSendSubject, MsgID: fmt.Sprintf("%s:%d", cmd.IdempotencyKey, i), Data: data})
	}
	if err := f.pub.PublishAsyncBatch(ctx, out); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.count(t, `SELECT count(*) FROM email_sends WHERE status = 'sent'`) < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := f.count(t, `SELECT count(*) FROM email_sends`); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
	if n := f.bp.handedOnce(t); n != 1 {
		t.Errorf("provider handed %d keys, want 1", n)
	}
}

// The dev outbox stores a batch once per key and answers each message
// with its stored id, repeats included.
func TestDevOutboxSendBatch(t *testing.T) {
	t.Parallel()
	pool := schematest.NewPool(t)
	ob := devoutbox.New(pool)
	ctx := context.Background()
	msgs := []provider.Message{
		{From: "a@example.com", To: []string{"x@example.com", "y@example.com"}, Subject: "one", HTML: "<p>1</p>", IdempotencyKey: "k1",
			Headers: map[string]string{"X-Test": "1"}},
		{From: "a@example.com", To: []string{"z@example.com"}, Subject: "two", IdempotencyKey: "k2"},
		{From: "a@example.com", To: []string{"x@example.com"}, Subject: "one again", IdempotencyKey: "k1"},
		{From: "a@example.com", To: []string{"w@example.com"}, Subject: "no key"},
	}
	sent, err := ob.SendBatch(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 4 || sent[0].ID != sent[2].ID || sent[0].ID == sent[1].ID || sent[3].ID == "" {
		t.Fatalf("sent %+v", sent)
	}
	again, err := ob.SendBatch(ctx, msgs[:2])
	if err != nil || again[0] != sent[0] || again[1] != sent[1] {
		t.Fatalf("repeat %+v %v", again, err)
	}
	one, err := ob.Send(ctx, msgs[1])
	if err != nil || one != sent[1] {
		t.Fatalf("single repeat %+v %v", one, err)
	}
	var n int
	var to []string
	var subject, hdr string
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM dev_outbox), to_emails, subject, headers->>'X-Test' FROM dev_outbox WHERE send_key = 'k1'`).Scan(&n, &to, &subject, &hdr); err != nil {
		t.Fatal(err)
	}
	if n != 3 || strings.Join(to, ",") != "x@example.com,y@example.com" || subject != "one" || hdr != "1" {
		t.Errorf("%d rows; k1 stored to %v subject %q header %q", n, to, subject, hdr)
	}
}
