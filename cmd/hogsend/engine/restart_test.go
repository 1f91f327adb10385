package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/apiclient"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// hogsendBinary builds ./cmd/hogsend once per test run.
func hogsendBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "hogsend-e2e-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "hogsend")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/hogsend")
		cmd.Dir = filepath.Join("..", "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func e2ePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a subprocess's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// devProcess is a `hogsend dev` subprocess.
type devProcess struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	url    string
	done   chan struct{}
	waitEr error
}

// startProcess runs `hogsend dev` on a free port and waits until it is
// ready. It is killed when the test ends, if still running.
func startProcess(t *testing.T, bin, dataDir, dsn string) *devProcess {
	t.Helper()
	port := e2ePort(t)
	p := &devProcess{out: &lockedBuffer{}, url: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	p.cmd = exec.Command(bin, "dev")
	p.cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(port),
		"HOGSEND_NATS_LISTEN=off",
		"HOGSEND_DATA_DIR="+dataDir,
		"DATABASE_URL="+dsn,
		"ADMIN_API_KEY="+testAdminKey,
		"HOGSEND_PINNED_TTL=1s",
		"LOG_LEVEL=warn",
		"LOG_FORMAT=text",
	)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.waitEr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("hogsend output:\n%s", p.out.String())
		}
	})
	c := apiclient.New(p.url, "")
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ready(ctx)
		cancel()
		if err == nil {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("hogsend exited before it was ready: %v\n%s", p.waitEr, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hogsend not ready after 20s: %v\n%s", err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill SIGKILLs the devProcess and waits for it.
func (p *devProcess) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks for a graceful shutdown and returns the exit error.
func (p *devProcess) stop(t *testing.T) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.waitEr
	case <-time.After(20 * time.Second):
		p.kill()
		return errors.New("no exit within 20s of SIGTERM")
	}
}

// sentEvent is one event the load generator sent.
type sentEvent struct {
	user string
	seq  int
	key  string
}

// TestRestartKeepsAcknowledgedEvents kills `hogsend dev` with SIGKILL in
// the middle of concurrent ingestion, starts it again on the same data
// directory and checks that every event answered 202 is projected exactly
// once, in per-contact order, and that retrying the requests that got no
// answer (same idempotency keys) duplicates nothing.
func TestRestartKeepsAcknowledgedEvents(t *testing.T) {
	t.Parallel()
	start := time.Now()
	bin := hogsendBinary(t)
	t.Logf("binary built in %s", time.Since(start).Round(time.Millisecond))
	dsn := schematest.NewDatabase(t)
	dataDir := t.TempDir()
	first := startProcess(t, bin, dataDir, dsn)

	const workers, usersPerWorker = 8, 4
	var (
		mu       sync.Mutex
		acked    []sentEvent
		inFlight []sentEvent // sent, no answer: may or may not be stored
	)
	ingest := apiclient.New(first.url, testAdminKey)
	ingest.HTTP = &http.Client{Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seqs := make([]int, usersPerWorker)
			for i := 0; ctx.Err() == nil; i++ {
				u := i % usersPerWorker
				seqs[u]++
				ev := sentEvent{user: fmt.Sprintf("rw%d-%d", w, u), seq: seqs[u]}
				ev.key = fmt.Sprintf("%s-%d", ev.user, ev.seq)
				res, err := ingest.SendEvent(ctx, apiclient.Event{Name: "tick", UserID: ev.user, IdempotencyKey: ev.key,
					EventProperties: map[string]any{"seq": ev.seq}})
				mu.Lock()
				switch {
				case err == nil && res.Stored:
					acked = append(acked, ev)
				case err == nil:
					mu.Unlock()
					t.Errorf("%s answered stored:false on first send", ev.key)
					return
				default:
					inFlight = append(inFlight, ev)
				}
				mu.Unlock()
				if err != nil {
					return // the server is gone: this worker's contacts stop here
				}
			}
		}()
	}
	// Kill once a good number of events went through, while the workers
	// keep sending.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d events acknowledged in 10s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.kill()
	wg.Wait()
	t.Logf("acknowledged %d events, %d in flight at the kill", len(acked), len(inFlight))

	restarted := time.Now()
	second := startProcess(t, bin, dataDir, dsn)
	t.Logf("restarted in %s", time.Since(restarted).Round(time.Millisecond))
	client := apiclient.New(second.url, testAdminKey)
	// A client retries what got no answer with the same key: stored or
	// not, it must not be applied twice.
	for _, ev := range inFlight {
		if _, err := client.SendEvent(ctx, apiclient.Event{Name: "tick", UserID: ev.user, IdempotencyKey: ev.key,
			EventProperties: map[string]any{"seq": ev.seq}}); err != nil {
			t.Fatalf("retry %s: %v", ev.key, err)
		}
	}
	waitCaughtUp(t, client)
	want := len(acked) + len(inFlight)
	pool := dbConn(t, dsn)
	eventually(t, 10*time.Second, func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM user_events`).Scan(&n)
		return n >= want
	}, func() string { return fmt.Sprintf("%d user_events rows", want) })

	type row struct {
		user, key string
		seq       int
		streamSeq int64
	}
	rows, err := pool.Query(ctx, `SELECT user_id, coalesce(idempotency_key, ''), (properties->>'seq')::int, stream_seq FROM user_events ORDER BY stream_seq`)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.user, &r.key, &r.seq, &r.streamSeq); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	byKey := map[string]int{}
	seqs := map[int64]bool{}
	lastSeq := map[string]int{}
	for _, r := range got {
		byKey[r.key]++
		if seqs[r.streamSeq] {
			t.Errorf("stream sequence %d projected twice", r.streamSeq)
		}
		seqs[r.streamSeq] = true
		if want := fmt.Sprintf("%s-%d", r.user, r.seq); r.key != want {
			t.Errorf("row %+v: key does not match user and seq", r)
		}
		// The workers sent each contact's events one after another, so
		// stream order is per-contact order, except for retries, which
		// come after the restart.
		if r.seq <= lastSeq[r.user] {
			t.Errorf("%s: seq %d projected after seq %d", r.user, r.seq, lastSeq[r.user])
		}
		lastSeq[r.user] = r.seq
	}
	sent := map[string]bool{}
	for _, ev := range append(append([]sentEvent(nil), acked...), inFlight...) {
		sent[ev.key] = true
		if byKey[ev.key] != 1 {
			t.Errorf("%s projected %d times, want 1", ev.key, byKey[ev.key])
		}
	}
	for k := range byKey {
		if !sent[k] {
			t.Errorf("row %q was never sent", k)
		}
	}
	if len(got) != len(sent) {
		t.Errorf("%d rows for %d sent events", len(got), len(sent))
	}
	// One live contact per user, none created twice and merged away.
	var users []string
	crows, err := pool.Query(ctx, `SELECT external_id FROM contacts WHERE deleted_at IS NULL ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	users, err = pgx.CollectRows(crows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var wantUsers []string
	for u := range lastSeq {
		wantUsers = append(wantUsers, u)
	}
	sort.Strings(wantUsers)
	var all int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM contacts`).Scan(&all)
	if fmt.Sprint(users) != fmt.Sprint(wantUsers) || all != len(wantUsers) {
		t.Errorf("contacts %v (%d rows), want %v", users, all, wantUsers)
	}

	t.Logf("checked %d rows after %s", len(got), time.Since(start).Round(time.Millisecond))
	if err := second.stop(t); err != nil {
		t.Errorf("graceful stop: %v\n%s", err, second.out.String())
	}
}

// dbConn opens a connection for assertions, closed when the test ends.
func dbConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestMain removes the built binary and checks that the processes the
// tests started and closed left no goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	if code == 0 {
		// Keep-alive connections of the test clients are not the server's.
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines leaked: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
