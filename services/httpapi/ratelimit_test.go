package httpapi_test

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func limitedRouter(l *httpapi.RateLimiter) http.Handler {
	rt := httpapi.NewRouter()
	rt.Use("/v1/admin", httpapi.Authenticate(fakeAuth), httpapi.RateLimit(l))
	rt.HandleFunc("GET", "/v1/admin/x", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, httpapi.Doc{})
	return rt
}

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	h := limitedRouter(httpapi.NewRateLimiter(httpapi.RateLimitOptions{Now: clock.Now}))
	admin := map[string]string{"Authorization": "Bearer hsk_admin"}

	for i := 0; i < 100; i++ {
		rec := do(t, h, "GET", "/v1/admin/x", "", admin)
		if rec.Code != 204 {
			t.Fatalf("request %d: status %d", i+1, rec.Code)
		}
		if got, want := rec.Header().Get("X-RateLimit-Remaining"), strconv.Itoa(99-i); got != want {
			t.Fatalf("request %d: remaining %s, want %s", i+1, got, want)
		}
		if rec.Header().Get("X-RateLimit-Limit") != "100" {
			t.Fatalf("limit header %q", rec.Header().Get("X-RateLimit-Limit"))
		}
		clock.Advance(100 * time.Millisecond) // 100 requests over 10 s
	}
	rec := do(t, h, "GET", "/v1/admin/x", "", admin)
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "60" || rec.Header().Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("101st: %d Retry-After=%q Remaining=%q", rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("X-RateLimit-Remaining"))
	}
	if body := decodeBody(t, rec); body["error"] != "Rate limit exceeded" || body["code"] != "rate_limited" {
		t.Errorf("body = %v", body)
	}

	// Another key has its own budget; failed auth never reaches the limiter.
	if rec := do(t, h, "GET", "/v1/admin/x", "", map[string]string{"Authorization": "Bearer hsk_read"}); rec.Code != 204 || rec.Header().Get("X-RateLimit-Remaining") != "99" {
		t.Errorf("other key: %d remaining %q", rec.Code, rec.Header().Get("X-RateLimit-Remaining"))
	}
	if rec := do(t, h, "GET", "/v1/admin/x", "", nil); rec.Code != 401 || rec.Header().Get("X-RateLimit-Limit") != "" {
		t.Errorf("no key: %d, limit header %q", rec.Code, rec.Header().Get("X-RateLimit-Limit"))
	}

	// Still inside the first minute: refused again.
	clock.Advance(45 * time.Second) // t = 55 s
	if rec := do(t, h, "GET", "/v1/admin/x", "", admin); rec.Code != 429 {
		t.Fatalf("t=55s: status %d, want 429", rec.Code)
	}
	// At t = 71 s the accepted requests (t < 10 s) and the refusal at 10 s
	// have left the window; the refusal at 55 s still counts.
	clock.Advance(16 * time.Second)
	if rec := do(t, h, "GET", "/v1/admin/x", "", admin); rec.Code != 204 || rec.Header().Get("X-RateLimit-Remaining") != "98" {
		t.Errorf("t=71s: %d remaining %q, want 204 and 98", rec.Code, rec.Header().Get("X-RateLimit-Remaining"))
	}
}

func TestRateLimiterSlides(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(0, 0)}
	l := httpapi.NewRateLimiter(httpapi.RateLimitOptions{Limit: 3, Window: 10 * time.Second, Now: clock.Now})
	steps := []struct {
		advance   time.Duration
		allowed   bool
		remaining int
	}{
		{0, true, 2},                // t=0
		{4 * time.Second, true, 1},  // t=4
		{4 * time.Second, true, 0},  // t=8
		{1 * time.Second, false, 0}, // t=9: 3 in window
		{1 * time.Second, false, 0}, // t=10: t=0 left the window; 4, 8, 9 remain
		{5 * time.Second, false, 0}, // t=15: 8 plus the refusals at 9 and 10 (refusals count)
		{11 * time.Second, true, 2}, // t=26: window empty
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		allowed, remaining := l.Allow("k")
		if allowed != s.allowed || remaining != s.remaining {
			t.Errorf("step %d: (%v, %d), want (%v, %d)", i, allowed, remaining, s.allowed, s.remaining)
		}
	}
}

func TestRateLimiterDisabled(t *testing.T) {
	t.Parallel()
	h := limitedRouter(httpapi.NewRateLimiter(httpapi.RateLimitOptions{Limit: 1, Disabled: true}))
	for i := 0; i < 5; i++ {
		rec := do(t, h, "GET", "/v1/admin/x", "", map[string]string{"Authorization": "Bearer hsk_admin"})
		if rec.Code != 204 || rec.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("request %d: %d, limit header %q", i, rec.Code, rec.Header().Get("X-RateLimit-Limit"))
		}
	}
	if l := httpapi.RateLimit(nil)(http.NotFoundHandler()); l == nil {
		t.Error("nil limiter must pass through")
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l := httpapi.NewRateLimiter(httpapi.RateLimitOptions{Limit: 50})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := l.Allow("k"); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 50 {
		t.Errorf("allowed %d, want 50", allowed)
	}
}
