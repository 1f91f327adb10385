package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/projections/contacts"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/embedded"
)

// runBench measures the figures BENCHMARKS.md records, each next to a
// baseline measured in the same run (the machine is noisy, ratios are
// not). It uses throw-away databases on DATABASE_URL's server and
// throw-away NATS stores.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	events := fs.Int("events", 100000, "events per throughput run")
	rate := fs.Int("rate", 2000, "events/s of the latency run")
	latencyFor := fs.Duration("latency-for", 10*time.Second, "duration of the latency run")
	parts := fs.String("parts", "", "comma-separated parts to run: ingest, projection, buckets, latency, memory, journeys, first-effect (the last row of journeys alone) (default all)")
	latencyAPIOnly := fs.Bool("latency-api-only", false, "latency run without the contacts projection (ingest alone)")
	memory := fs.Bool("memory", true, "measure RSS of a `hogsend dev` subprocess")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the in-process runs to this file")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	b := &bench{cfg: cfg, out: stdout, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), n: *events}
	fmt.Fprintf(stdout, "# hogsend bench — %s, %d CPUs, %s\n\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.Version())

	runs := func(name string) bool { return *parts == "" || strings.Contains(","+*parts+",", ","+name+",") }
	var a, base float64
	if runs("ingest") {
		if a, err = b.baselinePublish(ctx); err != nil {
			return fmt.Errorf("baseline A: %w", err)
		}
		b.row("A: raw JetStream async publish + Nats-Msg-Id, 300 B", a, 0)
		ingest, err := b.ingestBatch(ctx)
		if err != nil {
			return fmt.Errorf("ingest batch: %w", err)
		}
		b.row("POST /v1/events/batch, 500/request, 8 clients", ingest, a)
	}
	if runs("projection") {
		if base, err = b.baselinePipeline(ctx); err != nil {
			return fmt.Errorf("baseline B: %w", err)
		}
		b.row("B: naive pipeline (publish → 1 consumer → unnest upsert of 500)", base, 0)
		e2e, replay, err := b.endToEnd(ctx)
		if err != nil {
			return fmt.Errorf("end to end: %w", err)
		}
		b.row("ingest → contacts projection → ACTIVITY (70% existing, 30% new)", e2e, base)
		b.row("replay contacts --from-start", replay, base)
	}
	if runs("buckets") {
		projected, evaluated, err := b.bucketsThroughput(ctx)
		if err != nil {
			return fmt.Errorf("buckets: %w", err)
		}
		b.row("contacts projection with 50 buckets evaluated alongside (projected)", projected, 0)
		b.row("buckets evaluation of the same events (evaluated)", evaluated, projected)
	}
	if runs("latency") {
		b.latencyServices = []string{ServiceAPI, ServiceContacts}
		if *latencyAPIOnly {
			b.latencyServices = []string{ServiceAPI}
		}
		ack, act, err := b.latency(ctx, *rate, *latencyFor)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		fmt.Fprintf(stdout, "\nLatency at a steady %d events/s for %s (POST /v1/events):\n", *rate, *latencyFor)
		fmt.Fprintf(stdout, "| path | p50 | p99 | max |\n|---|---|---|---|\n")
		fmt.Fprintf(stdout, "| ingest acknowledge | %s | %s | %s |\n", pct(ack, 50), pct(ack, 99), pct(ack, 100))
		fmt.Fprintf(stdout, "| ingest → ACTIVITY | %s | %s | %s |\n", pct(act, 50), pct(act, 99), pct(act, 100))
	}
	if runs("journeys") {
		if err := b.journeysPart(ctx); err != nil {
			return fmt.Errorf("journeys: %w", err)
		}
	}
	if *parts != "" && runs("first-effect") && !runs("journeys") {
		if err := b.firstEffectPart(ctx); err != nil {
			return fmt.Errorf("first effect: %w", err)
		}
	}
	if *memory && runs("memory") {
		idle, peak, err := b.memory(ctx)
		if err != nil {
			return fmt.Errorf("memory: %w", err)
		}
		fmt.Fprintf(stdout, "\nMemory of `hogsend dev`: idle RSS %.1f MB; peak RSS under the batch load %.1f MB\n", idle, peak)
	}
	return nil
}

type bench struct {
	cfg     Config
	out     io.Writer
	log     *slog.Logger
	n       int
	headers bool
	// latencyServices run during the latency measurement.
	latencyServices []string
	// buckets are registered in the runs that start an engine (nil: the
	// stock examples).
	buckets []*buckets.Bucket
	// journeys are registered likewise (nil: the stock examples).
	journeys []*journey.Journey
}

func (b *bench) row(name string, perSec, baseline float64) {
	if !b.headers {
		fmt.Fprintf(b.out, "| measurement | events/s | ratio to its baseline |\n|---|---|---|\n")
		b.headers = true
	}
	ratio := "baseline"
	if baseline > 0 {
		ratio = fmt.Sprintf("%.0f%%", 100*perSec/baseline)
	}
	fmt.Fprintf(b.out, "| %s | %.0f | %s |\n", name, perSec, ratio)
}

func pct(d []time.Duration, p int) string {
	if len(d) == 0 {
		return "n/a"
	}
	slices.Sort(d)
	i := (len(d) - 1) * p / 100
	return d[i].Round(10 * time.Microsecond).String()
}

// tempNATS starts a throw-away embedded server.
func tempNATS() (*embedded.Server, *nats.Conn, jetstream.JetStream, func(), error) {
	dir, err := os.MkdirTemp("", "hogsend-bench-nats-")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	srv, err := embedded.Start(embedded.Options{DataDir: dir, Listen: "off"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, nil, err
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, nil, nil, err
	}
	js, _ := jetstream.New(nc)
	return srv, nc, js, func() { nc.Close(); srv.Shutdown(); os.RemoveAll(dir) }, nil
}

// tempDatabase creates an empty database on DATABASE_URL's server.
func (b *bench) tempDatabase(ctx context.Context) (string, func(), error) {
	cc, err := pgx.ParseConfig(b.cfg.DatabaseURL)
	if err != nil {
		return "", nil, err
	}
	admin := cc.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	name := "hogsend_bench_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	conn.Close(ctx)
	drop := func() {
		c, err := pgx.ConnectConfig(context.Background(), admin)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}
	dsn := strings.Replace(b.cfg.DatabaseURL, "/"+cc.Database, "/"+name, 1)
	return dsn, drop, nil
}

func payload300(i int) []byte {
	p := fmt.Sprintf(`{"v":1,"id":"%s","type":"track","name":"page_viewed","userId":"user-%06d","eventProperties":{"path":"/pricing","ref":"newsletter"},"receivedAt":"2026-01-01T00:00:00Z","source":"bench","pad":"`, uuid.NewString(), i%10000)
	return []byte(p + strings.Repeat("x", max(0, 298-len(p))) + `"}`)
}

// baselinePublish is raw JetStream async publish with Nats-Msg-Id.
func (b *bench) baselinePublish(ctx context.Context) (float64, error) {
	_, _, js, stop, err := tempNATS()
	if err != nil {
		return 0, err
	}
	defer stop()
	if err := bus.Provision(ctx, js, streams.DefaultRetention); err != nil {
		return 0, err
	}
	msgs := make([][]byte, b.n)
	for i := range msgs {
		msgs[i] = payload300(i)
	}
	start := time.Now()
	for i, m := range msgs {
		if _, err := js.PublishAsync(fmt.Sprintf("hogsend.events.%04x", i%4096), m, jetstream.WithMsgID(strconv.Itoa(i)), jetstream.WithStallWait(5*time.Second)); err != nil {
			return 0, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return float64(b.n) / time.Since(start).Seconds(), nil
}

// app starts a Main on a temp database and data dir.
func (b *bench) app(ctx context.Context, services []string) (*Main, func(), error) {
	dsn, drop, err := b.tempDatabase(ctx)
	if err != nil {
		return nil, nil, err
	}
	dir, _ := os.MkdirTemp("", "hogsend-bench-")
	cfg, _ := envConfig(func(string) string { return "" })
	cfg.DatabaseURL, cfg.DataDir, cfg.NATSListen, cfg.Addr = dsn, dir, "off", "127.0.0.1:0"
	cfg.AdminAPIKey = "bench-admin-key"
	cfg.Services = services
	cfg.RateLimit = 0
	if err := cfg.finish("", ""); err != nil {
		return nil, nil, err
	}
	m := &Main{Config: cfg, Log: b.log, Dev: true, Stdout: io.Discard, Buckets: b.buckets, Journeys: b.journeys}
	if err := m.Run(ctx); err != nil {
		drop()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return m, func() { _ = m.Close(); drop(); os.RemoveAll(dir) }, nil
}

// workload builds n events: 30% create a contact, 70% hit an existing one.
func workload(n int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]byte, n)
	created := 0
	for i := range out {
		var uid int
		if created == 0 || r.Float64() < 0.3 {
			uid = created
			created++
		} else {
			uid = r.IntN(created)
		}
		out[i] = []byte(fmt.Sprintf(`{"name":"page_viewed","userId":"user-%d","eventProperties":{"path":"/pricing","n":%d},"contactProperties":{"plan":"pro","visits":%d}}`, uid, i, i))
	}
	return out
}

func batchBodies(events [][]byte, size int) [][]byte {
	var bodies [][]byte
	for off := 0; off < len(events); off += size {
		end := min(off+size, len(events))
		var buf bytes.Buffer
		buf.WriteString(`{"events":[`)
		for i, e := range events[off:end] {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(e)
		}
		buf.WriteString(`]}`)
		bodies = append(bodies, buf.Bytes())
	}
	return bodies
}

// postAll sends bodies to url from clients goroutines.
func postAll(ctx context.Context, url, key string, bodies [][]byte, clients int) error {
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i]))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err == nil {
					if resp.StatusCode != http.StatusAccepted {
						body, _ := io.ReadAll(resp.Body)
						err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func (b *bench) ingestBatch(ctx context.Context) (float64, error) {
	m, stop, err := b.app(ctx, []string{ServiceAPI})
	if err != nil {
		return 0, err
	}
	defer stop()
	bodies := batchBodies(workload(b.n, 1), 500)
	start := time.Now()
	if err := postAll(ctx, m.URL()+"/v1/events/batch", m.Config.AdminAPIKey, bodies, 8); err != nil {
		return 0, err
	}
	return float64(b.n) / time.Since(start).Seconds(), nil
}

// baselinePipeline: publish → one consumer → unnest upsert of 500 → ack.
func (b *bench) baselinePipeline(ctx context.Context) (float64, error) {
	_, _, js, stop, err := tempNATS()
	if err != nil {
		return 0, err
	}
	defer stop()
	dsn, drop, err := b.tempDatabase(ctx)
	if err != nil {
		return 0, err
	}
	defer drop()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE naive (external_id text PRIMARY KEY, properties jsonb NOT NULL, seen_at timestamptz NOT NULL)`); err != nil {
		return 0, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NAIVE", Subjects: []string{"naive.>"}, Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "NAIVE", jetstream.ConsumerConfig{Durable: "naive", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
	if err != nil {
		return 0, err
	}
	events := workload(b.n, 2)
	start := time.Now()
	go func() {
		for i, e := range events {
			_, _ = js.PublishAsync("naive.e", e, jetstream.WithMsgID(strconv.Itoa(i)), jetstream.WithStallWait(5*time.Second))
		}
	}()
	done := 0
	type ev struct {
		UserID            string          `json:"userId"`
		ContactProperties json.RawMessage `json:"contactProperties"`
	}
	for done < b.n {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(10*time.Millisecond))
		if err != nil {
			return 0, err
		}
		var msgs []jetstream.Msg
		latest := map[string]json.RawMessage{}
		for m := range batch.Messages() {
			var e ev
			if err := json.Unmarshal(m.Data(), &e); err == nil {
				latest[e.UserID] = e.ContactProperties
			}
			msgs = append(msgs, m)
		}
		if len(msgs) == 0 {
			continue
		}
		ids := make([]string, 0, len(latest))
		for k := range latest {
			ids = append(ids, k)
		}
		slices.Sort(ids)
		props := make([][]byte, len(ids))
		for i, k := range ids {
			props[i] = latest[k]
		}
		if _, err := pool.Exec(ctx, `INSERT INTO naive (external_id, properties, seen_at)
			SELECT unnest($1::text[]), unnest($2::jsonb[]), now()
			ON CONFLICT (external_id) DO UPDATE SET properties = naive.properties || EXCLUDED.properties, seen_at = EXCLUDED.seen_at`, ids, props); err != nil {
			return 0, err
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
		done += len(msgs)
	}
	return float64(b.n) / time.Since(start).Seconds(), nil
}

// loadEngine starts an engine with services and posts the workload (seed)
// to its batch route from 8 clients; it returns when every request was
// answered, with the time the load started.
func (b *bench) loadEngine(ctx context.Context, services []string, seed uint64) (*Main, jetstream.Stream, time.Time, func(), error) {
	m, stop, err := b.app(ctx, services)
	if err != nil {
		return nil, nil, time.Time{}, nil, err
	}
	bodies := batchBodies(workload(b.n, seed), 500)
	activity, err := m.js.Stream(ctx, streams.StreamActivity)
	if err != nil {
		stop()
		return nil, nil, time.Time{}, nil, err
	}
	start := time.Now()
	if err := postAll(ctx, m.URL()+"/v1/events/batch", m.Config.AdminAPIKey, bodies, 8); err != nil {
		stop()
		return nil, nil, time.Time{}, nil, err
	}
	return m, activity, start, stop, nil
}

// endToEnd ingests the workload over HTTP with the projection running and
// waits until ACTIVITY holds every event; then replays the projection.
func (b *bench) endToEnd(ctx context.Context) (e2e, replay float64, err error) {
	m, activity, start, stop, err := b.loadEngine(ctx, []string{ServiceAPI, ServiceContacts}, 3)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	for {
		info, err := activity.Info(ctx)
		if err != nil {
			return 0, 0, err
		}
		if info.State.Msgs >= uint64(b.n) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return 0, 0, errors.New("projection did not catch up within 10 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	e2e = float64(b.n) / time.Since(start).Seconds()

	// Replay needs the live consumers stopped; stop the process's services
	// by closing it, then replay on the same store and database.
	cfg := m.Config
	_ = m.Close()
	srv, err := embedded.Start(embedded.Options{DataDir: filepath.Join(cfg.DataDir, "nats"), Listen: "off"})
	if err != nil {
		return 0, 0, err
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return 0, 0, err
	}
	defer pool.Close()
	res, err := contacts.Replay(ctx, pool, js, contacts.ReplayOptions{Force: true, Logger: b.log})
	if err != nil {
		return 0, 0, err
	}
	return e2e, float64(res.Events) / res.Took.Seconds(), nil
}

// latency paces single-event POSTs and times the acknowledgement and the
// arrival of each event's ACTIVITY message.
func (b *bench) latency(ctx context.Context, rate int, d time.Duration) (ack, act []time.Duration, err error) {
	m, stop, err := b.app(ctx, b.latencyServices)
	if err != nil {
		return nil, nil, err
	}
	defer stop()
	sentAt := sync.Map{}
	var mu sync.Mutex
	sub, err := m.nc.Subscribe(streams.ActivityRoot+".>", func(msg *nats.Msg) {
		var a struct {
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
		}
		if json.Unmarshal(msg.Data, &a) != nil {
			return
		}
		if v, ok := sentAt.Load(a.Event.ID); ok {
			mu.Lock()
			act = append(act, time.Since(v.(time.Time)))
			mu.Unlock()
		}
	})
	if err != nil {
		return nil, nil, err
	}
	defer sub.Unsubscribe() //nolint:errcheck
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf(`{"name":"page_viewed","userId":"lat-%d","eventProperties":{"i":%d}}`, i%500, i)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.URL()+"/v1/events", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+m.Config.AdminAPIKey)
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			resp, err := hc.Do(req)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			var res EventAck
			_ = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			el := time.Since(t0)
			sentAt.Store(res.ID, t0)
			mu.Lock()
			ack = append(ack, el)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if v := firstErr.Load(); v != nil {
		return nil, nil, v.(error)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(act)
		mu.Unlock()
		if n >= total*99/100 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	return ack, slices.Clone(act), nil
}

// EventAck is the 202 answer of POST /v1/events.
type EventAck struct {
	ID     string `json:"id"`
	Stored bool   `json:"stored"`
}

// memory runs `hogsend dev` as a subprocess: idle RSS after start, then
// peak RSS while the batch ingest load runs against it.
func (b *bench) memory(ctx context.Context) (idleMB, peakMB float64, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	dsn, drop, err := b.tempDatabase(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer drop()
	dir, _ := os.MkdirTemp("", "hogsend-bench-mem-")
	defer os.RemoveAll(dir)
	port := freePort()
	cmd := exec.CommandContext(ctx, exe, "dev")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn, "HOGSEND_DATA_DIR="+dir, "HOGSEND_NATS_LISTEN=off",
		"PORT="+strconv.Itoa(port), "ADMIN_API_KEY=bench-admin-key", "HOGSEND_ADMIN_RATE_LIMIT=0", "LOG_LEVEL=error")
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/v1/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 300 {
			return 0, 0, errors.New("dev process did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	idleMB = rssMB(cmd.Process.Pid, "VmRSS")
	bodies := batchBodies(workload(b.n, 4), 500)
	if err := postAll(ctx, base+"/v1/events/batch", "bench-admin-key", bodies, 8); err != nil {
		return 0, 0, err
	}
	// Let the projection work through the backlog before reading the peak.
	for i := 0; i < 600; i++ {
		resp, err := http.Get(base + "/v1/health/ready")
		if err == nil {
			var r struct {
				Components struct {
					Contacts struct{ Lag uint64 } `json:"contacts"`
				} `json:"components"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if r.Components.Contacts.Lag == 0 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return idleMB, rssMB(cmd.Process.Pid, "VmHWM"), nil
}

func rssMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

func freePort() int {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 39021
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// fiftyBuckets is a mixed set of property, event-count and composite
// criteria that all become candidates for the workload's events, and that
// a contact enters rarely (a segment transition is an exception among the
// events, as in real use: each one costs a write and an event of its own).
func fiftyBuckets() []*buckets.Bucket {
	crit := func(n condition.Node) *condition.Node { return &n }
	var out []*buckets.Bucket
	for i := 0; i < 50; i++ {
		var c condition.Node
		switch i % 5 {
		case 0:
			c = condition.Prop("plan").Eq(fmt.Sprintf("plan-%d", i))
		case 1:
			c = condition.Prop("visits").Gte(float64(200000 + i))
		case 2:
			c = condition.Event("page_viewed").AtLeast(float64(8 + i))
		case 3:
			c = condition.All(condition.Prop("plan").Eq("pro"), condition.Event("page_viewed").Within(condition.Days(7)).AtLeast(float64(9+i)))
		default:
			c = condition.Any(condition.Prop("visits").Lt(float64(-i)), condition.Event("page_viewed").MoreThan(float64(20+i)))
		}
		out = append(out, buckets.MustDefine(buckets.Meta{ID: fmt.Sprintf("bench-%02d", i), Name: fmt.Sprintf("Bench %d", i), Criteria: crit(c)}))
	}
	return out
}

// bucketsThroughput ingests the workload with the contacts projection and
// the evaluation of 50 buckets running, and reports the events/s each got
// through (both from the start of ingest to its own last event).
func (b *bench) bucketsThroughput(ctx context.Context) (projected, evaluated float64, err error) {
	b.buckets = fiftyBuckets()
	defer func() { b.buckets = nil }()
	m, activity, start, stop, err := b.loadEngine(ctx, []string{ServiceAPI, ServiceContacts, ServiceBuckets}, 5)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	var projectedAt time.Duration
	for {
		if time.Since(start) > 15*time.Minute {
			return 0, 0, errors.New("no catch-up within 15 minutes")
		}
		if projectedAt == 0 {
			info, err := activity.Info(ctx)
			if err != nil {
				return 0, 0, err
			}
			if info.State.Msgs >= uint64(b.n) {
				projectedAt = time.Since(start)
			}
		}
		if projectedAt > 0 {
			lag, err := m.buckets.Lag(ctx)
			if err == nil {
				var left uint64
				for _, n := range lag {
					left += n
				}
				if left == 0 {
					return float64(b.n) / projectedAt.Seconds(), float64(b.n) / time.Since(start).Seconds(), nil
				}
			}
		}
		// Consumer info requests go through the server's JetStream API
		// queue, which the consumers use too: poll gently.
		time.Sleep(250 * time.Millisecond)
	}
}
