package mailer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/mailer"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
	"github.com/seed-eeb360f6/hogsend/services/preferences"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// benchCommands is the backlog of one throughput run (times b.N).
const benchCommands = 5000

// benchBatchWorkers is the batches in flight of the batch consumer (the
// wiring's value): a batch holds its worker through the provider's 50 ms,
// so more of them cut the wait for a free one.
const benchBatchWorkers = 8

// Paced latency run of the batch consumer: commands per second and for how
// long.
const (
	benchPacedRate = 2000
	benchPacedFor  = 3 * time.Second
)

// fakeProvider answers every call (one message or a batch) after 50 ms,
// with no rate limit, recording when each message reached it.
type fakeProvider struct {
	delay time.Duration
	mu    sync.Mutex
	at    map[string]time.Time // by idempotency key (the send id)
	calls atomic.Int64
}

func (p *fakeProvider) Name() string { return "fake" }

// MessageIdempotent lets the mailer batch through the fake, as through the
// dev outbox.
func (p *fakeProvider) MessageIdempotent() bool { return true }

func (p *fakeProvider) record(msgs ...provider.Message) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		if _, ok := p.at[m.IdempotencyKey]; !ok {
			p.at[m.IdempotencyKey] = now
		}
	}
}

func (p *fakeProvider) Send(ctx context.Context, m provider.Message) (provider.Sent, error) {
	p.calls.Add(1)
	p.record(m)
	time.Sleep(p.delay)
	return provider.Sent{ID: "fake-" + m.IdempotencyKey}, nil
}

func (p *fakeProvider) SendBatch(ctx context.Context, msgs []provider.Message) ([]provider.Sent, error) {
	p.calls.Add(1)
	p.record(msgs...)
	time.Sleep(p.delay)
	out := make([]provider.Sent, len(msgs))
	for i, m := range msgs {
		out[i] = provider.Sent{ID: "fake-" + m.IdempotencyKey}
	}
	return out, nil
}

// countingNotifier counts announced results and closes all once want of
// them arrived.
type countingNotifier struct {
	n    atomic.Int64
	want int64
	all  chan struct{}
}

func (c *countingNotifier) Publish(string, []byte) error {
	if c.n.Add(1) == c.want {
		close(c.all)
	}
	return nil
}

// The engine's suppression check answers a batch in one read.
var _ mailer.BatchSuppression = (*preferences.Store)(nil)

type benchEnv struct {
	pool *pgxpool.Pool
	pub  *bus.Publisher
	wq   func() bus.WorkQueueConfig
	m    *mailer.Mailer
	prov *fakeProvider
	note *countingNotifier
}

// newBenchEnv is a fresh database (a pool of 20, as the engine opens),
// embedded JetStream, the real preferences store as the suppression check
// and the stock templates with tracking on.
func newBenchEnv(b *testing.B, want int) *benchEnv {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(schematest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	_, _, js := natstest.Start(b)
	if err := bus.Provision(context.Background(), js, streams.DefaultRetention); err != nil {
		b.Fatal(err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		b.Fatal(err)
	}
	tpls, err := templates.StockRegistry()
	if err != nil {
		b.Fatal(err)
	}
	prov := &fakeProvider{delay: 50 * time.Millisecond, at: map[string]time.Time{}}
	note := &countingNotifier{want: int64(want), all: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := preferences.NewStore(pool, preferences.StoreOptions{Logger: log})
	m, err := mailer.New(pool, tpls, prov, mailer.Config{PublicURL: "https://mail.example.com", MaxDeliver: 20},
		mailer.Options{Suppression: store, Links: links{}, Notifier: note, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	wq := func() bus.WorkQueueConfig {
		return bus.WorkQueueConfig{JetStream: js, Stream: streams.StreamEmails, Name: mailer.Name,
			FilterSubject: streams.EmailSendSubject, MaxDeliver: 20, Logger: log}
	}
	return &benchEnv{pool: pool, pub: pub, wq: wq, m: m, prov: prov, note: note}
}

func benchCommand(run string, i int) (*streams.EmailCommand, bus.OutMsg) {
	key := fmt.Sprintf("bench:%s:%d", run, i)
	cmd := journeyCommand(key, fmt.Sprintf("user%d@example.com", i))
	cmd.UserID = fmt.Sprintf("u%d", i)
	data, _ := json.Marshal(cmd)
	return cmd, bus.OutMsg{Subject: streams.EmailSendSubject, MsgID: key, Data: data}
}

// start runs the consumer: the batch one (RunWorkQueueBatch + HandleBatch)
// or the single path as wired before it (RunWorkQueue + Handle, 32
// workers).
func (e *benchEnv) start(b *testing.B, batch bool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		if batch {
			cfg := e.wq()
			cfg.Workers = benchBatchWorkers
			done <- bus.RunWorkQueueBatch(ctx, bus.WorkQueueBatchConfig{WorkQueueConfig: cfg}, e.m.HandleBatch)
		} else {
			cfg := e.wq()
			cfg.Workers = 32
			done <- bus.RunWorkQueue(ctx, cfg, e.m.Handle)
		}
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}
}

// drain publishes n commands, then runs the consumer until every command
// is announced, and returns the sends per second.
func drain(b *testing.B, n int, batch bool) float64 {
	e := newBenchEnv(b, n)
	ctx := context.Background()
	out := make([]bus.OutMsg, n)
	for i := range out {
		_, out[i] = benchCommand("drain", i)
	}
	if err := e.pub.PublishAsyncBatch(ctx, out); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	stop := e.start(b, batch)
	select {
	case <-e.note.all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d commands done after 5 minutes", e.note.n.Load(), n)
	}
	elapsed := time.Since(start)
	stop()
	var sent int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM email_sends WHERE status = 'sent'`).Scan(&sent); err != nil {
		b.Fatal(err)
	}
	if sent != n || len(e.prov.at) != n {
		b.Fatalf("%d rows sent, provider saw %d messages, want %d", sent, len(e.prov.at), n)
	}
	b.Logf("batch=%v: %d sends in %s (%d provider calls)", batch, n, elapsed.Round(time.Millisecond), e.prov.calls.Load())
	return float64(n) / elapsed.Seconds()
}

// paced publishes rate commands a second for d to a running batch
// consumer and returns the command-to-provider latencies (publish to the
// provider call) and the command-to-result ones (publish to the result
// announcement, i.e. marked sent).
func paced(b *testing.B, rate int, d time.Duration) (toProvider []time.Duration, total time.Duration) {
	n := int(float64(rate) * d.Seconds())
	e := newBenchEnv(b, n)
	ctx := context.Background()
	stop := e.start(b, true)
	defer stop()
	time.Sleep(100 * time.Millisecond) // the consumer pulling
	const tick = 5 * time.Millisecond
	perTick := max(1, rate*int(tick)/int(time.Second))
	published := make(map[string]time.Time, n)
	start := time.Now()
	for i := 0; i < n; {
		next := start.Add(time.Duration(i/perTick) * tick)
		time.Sleep(time.Until(next))
		var out []bus.OutMsg
		now := time.Now()
		for k := 0; k < perTick && i < n; k, i = k+1, i+1 {
			cmd, m := benchCommand("paced", i)
			published[cmd.ID] = now
			out = append(out, m)
		}
		if err := e.pub.PublishAsyncBatch(ctx, out); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-e.note.all:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d paced commands done after a minute", e.note.n.Load(), n)
	}
	total = time.Since(start)
	e.prov.mu.Lock()
	defer e.prov.mu.Unlock()
	for id, at := range e.prov.at {
		toProvider = append(toProvider, at.Sub(published[id]))
	}
	slices.Sort(toProvider)
	return toProvider, total
}

func pctl(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p/100))]
}

// BenchmarkMailerThroughput measures the mailer consumer against a fake
// provider answering in 50 ms with no rate limit (goal: ≥ 2,000 sends/s
// with batching on 2 cores). Run with
//
//	go test -run '^$' -bench BenchmarkMailerThroughput -benchtime 1x ./services/mailer
//
// sends/s drains a backlog of 5,000 commands (per b.N) through the batch
// consumer (RunWorkQueueBatch + HandleBatch, 8 batches of up to 100 in
// flight); single-sends/s is the same backlog through the single path as
// wired before batching (RunWorkQueue + Handle, 32 workers), the
// baseline; x-single is their ratio. The latencies are of a paced run of
// the batch consumer at 2,000 commands/s: publish to provider call
// (p50-ms, p99-ms). Each run has its own database (a pool of 20, the real
// preferences store as suppression check) and JetStream server.
func BenchmarkMailerThroughput(b *testing.B) {
	n := benchCommands * b.N
	b.ResetTimer()
	single := drain(b, n, false)
	batch := drain(b, n, true)
	lat, total := paced(b, benchPacedRate, benchPacedFor)
	b.StopTimer()
	b.ReportMetric(batch, "sends/s")
	b.ReportMetric(single, "single-sends/s")
	b.ReportMetric(batch/single, "x-single")
	b.ReportMetric(float64(pctl(lat, 50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pctl(lat, 99).Microseconds())/1000, "p99-ms")
	b.Logf("paced %d/s for %s: %d commands done in %s; command→provider p50 %s p99 %s max %s",
		benchPacedRate, benchPacedFor, len(lat), total.Round(time.Millisecond), pctl(lat, 50), pctl(lat, 99), pctl(lat, 100))
}
