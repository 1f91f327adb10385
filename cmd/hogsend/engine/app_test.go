package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/apiclient"
)

// testAdminKey is the ADMIN_API_KEY of every process the tests start.
const testAdminKey = "e2e-admin-key"

// appOption adjusts the configuration before the process starts.
type appOption func(*Config)

// withBuckets enables the stock example buckets (ENABLED_BUCKETS); the
// other end-to-end tests run without segments so that transition events
// do not appear in the histories they count.
func withBuckets(ids string) appOption {
	return func(c *Config) { c.EnabledBuckets = ids }
}

// withNATSListen opens the embedded server's TCP listener.
func withNATSListen(addr string) appOption {
	return func(c *Config) { c.NATSListen = addr }
}

// testConfig is the configuration of an end-to-end process: the defaults
// of an empty environment, a fresh database and data directory, and
// loopback listeners.
func testConfig(t *testing.T, opts ...appOption) Config {
	t.Helper()
	cfg, err := envConfig(func(string) string { return "" })
	if err != nil {
		t.Fatalf("envConfig: %v", err)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.NATSListen = "off"
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = schematest.NewDatabase(t)
	cfg.AdminAPIKey = testAdminKey
	cfg.PinnedTTL = time.Second
	// The polling helpers read the admin API far more often than 100
	// times a minute; the limiter has its own tests in httpapi.
	cfg.RateLimit = 0
	cfg.EnabledBuckets = " " // none; withBuckets enables some
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.finish("", ""); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// startApp runs a whole Hogsend process (embedded JetStream, real
// PostgreSQL, every service) and returns it with a client holding the
// admin key. The process is closed when the test ends.
func startApp(t *testing.T, opts ...appOption) (*Main, *apiclient.Client) {
	t.Helper()
	return startMain(t, testConfig(t, opts...))
}

func startMain(t *testing.T, cfg Config) (*Main, *apiclient.Client) {
	t.Helper()
	return startMainWith(t, cfg, nil)
}

// startMainWith is startMain with setup applied to the Main before it runs
// (definitions of journeys, buckets, reactions).
func startMainWith(t *testing.T, cfg Config, setup func(*Main)) (*Main, *apiclient.Client) {
	t.Helper()
	logs := &testLog{t: t}
	m := &Main{
		Config: cfg,
		Dev:    true,
		Log:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Stdout: io.Discard,
	}
	if setup != nil {
		setup(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatalf("start hogsend: %v", err)
	}
	t.Cleanup(func() {
		_ = m.Close()
		logs.stop()
		if err := m.Err(); err != nil {
			t.Errorf("background failure: %v", err)
		}
	})
	return m, apiclient.New(m.URL(), testAdminKey)
}

// testLog forwards the process's warnings to the test log until stopped
// (t.Log after the test ended panics).
type testLog struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// eventually polls cond every 20ms until it holds, failing the test after
// d with the description describe returns then (it sees what the last
// poll saw).
func eventually(t *testing.T, d time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ctxT is a context bounded by the test's deadline and 30 s.
func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newKey creates an API key with scopes through the admin API.
func newKey(t *testing.T, admin *apiclient.Client, scopes ...string) string {
	t.Helper()
	k, err := admin.CreateAPIKey(ctxT(t), apiclient.CreateAPIKey{Name: strings.Join(scopes, "+"), Scopes: scopes})
	if err != nil {
		t.Fatalf("create %v key: %v", scopes, err)
	}
	return k.Key
}

// wantAPIError checks err is an *apiclient.Error with status and code;
// msgPart, when set, must appear in the message.
func wantAPIError(t *testing.T, err error, status int, code, msgPart string) *apiclient.Error {
	t.Helper()
	var e *apiclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want HTTP %d %s", err, status, code)
	}
	if e.Status != status || (code != "" && e.Code != code) || !strings.Contains(e.Message, msgPart) {
		t.Fatalf("got HTTP %d code %q message %q, want %d %q containing %q", e.Status, e.Code, e.Message, status, code, msgPart)
	}
	return e
}

// waitCaughtUp waits until the contacts projection has no backlog.
func waitCaughtUp(t *testing.T, c *apiclient.Client) {
	t.Helper()
	var last string
	eventually(t, 10*time.Second, func() bool {
		r, err := c.Ready(ctxT(t))
		if err != nil {
			last = err.Error()
			return false
		}
		comp, ok := r.Components["contacts"]
		if !ok || comp.Lag == nil {
			last = fmt.Sprintf("%+v", r)
			return false
		}
		last = fmt.Sprintf("lag %d", *comp.Lag)
		return *comp.Lag == 0
	}, func() string { return "contacts projection caught up (last: " + last + ")" })
}

// eventsOf lists the history rows stored under a contact key.
func eventsOf(t *testing.T, c *apiclient.Client, userID string) []apiclient.StoredEvent {
	t.Helper()
	l, err := c.ListEvents(ctxT(t), apiclient.ListEventsParams{UserID: userID, Limit: 100})
	if err != nil {
		t.Fatalf("list events of %s: %v", userID, err)
	}
	return l.Events
}

// waitEvents waits until n history rows are stored under userID.
func waitEvents(t *testing.T, c *apiclient.Client, userID string, n int) []apiclient.StoredEvent {
	t.Helper()
	var got []apiclient.StoredEvent
	eventually(t, 5*time.Second, func() bool {
		got = eventsOf(t, c, userID)
		return len(got) == n
	}, func() string { return fmt.Sprintf("%d events under %q, have %d: %+v", n, userID, len(got), got) })
	return got
}

// waitContact waits until the live contact with external id or uuid id
// exists and satisfies ok (nil: any).
func waitContact(t *testing.T, c *apiclient.Client, id string, ok func(apiclient.Contact) bool) apiclient.Contact {
	t.Helper()
	var got apiclient.Contact
	var last error
	eventually(t, 5*time.Second, func() bool {
		d, err := c.GetContact(ctxT(t), id)
		last = err
		if err != nil {
			return false
		}
		got = d.Contact
		return ok == nil || ok(got)
	}, func() string { return fmt.Sprintf("contact %q (last: %v, %+v)", id, last, got) })
	return got
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}
