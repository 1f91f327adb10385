package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// RateLimitOptions configures a RateLimiter.
type RateLimitOptions struct {
	Limit    int              // requests per window; default 100
	Window   time.Duration    // default 60 s
	Now      func() time.Time // default time.Now
	Disabled bool             // let everything through without headers (tests)
}

// RateLimiter is an in-memory sliding-log limiter keyed by identity (spec
// 30 §3.4). Every request is recorded before deciding, so refused requests
// count. Limits are per process.
type RateLimiter struct {
	limit    int
	window   time.Duration
	now      func() time.Time
	disabled bool

	mu    sync.Mutex
	logs  map[string]*requestLog
	calls int
}

// requestLog keeps the times of the newest `limit` requests of one
// identity in a ring. Deciding "at least limit requests in the window"
// needs no more: the newest limit entries are all inside the window exactly
// when the window holds at least limit entries.
type requestLog struct {
	times []time.Time // ring, len ≤ limit
	next  int
}

// Sweep idle identities once this many are held, on every 100th request.
const rateLimitSweepAbove = 10000

// NewRateLimiter returns a limiter.
func NewRateLimiter(opts RateLimitOptions) *RateLimiter {
	if opts.Limit <= 0 {
		opts.Limit = 100
	}
	if opts.Window <= 0 {
		opts.Window = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &RateLimiter{
		limit: opts.Limit, window: opts.Window, now: opts.Now, disabled: opts.Disabled,
		logs: map[string]*requestLog{},
	}
}

// Limit returns the configured requests per window.
func (l *RateLimiter) Limit() int { return l.limit }

// Allow records one request of identity and reports whether it is allowed
// and how many remain: max(0, limit − prior requests in window − 1).
func (l *RateLimiter) Allow(identity string) (allowed bool, remaining int) {
	now := l.now()
	cutoff := now.Add(-l.window)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls%100 == 0 && len(l.logs) > rateLimitSweepAbove {
		for id, lg := range l.logs {
			if !lg.newest().After(cutoff) {
				delete(l.logs, id)
			}
		}
	}
	lg := l.logs[identity]
	if lg == nil {
		lg = &requestLog{times: make([]time.Time, 0, 8)}
		l.logs[identity] = lg
	}
	count := lg.countAfter(cutoff)
	lg.add(now, l.limit)
	return count < l.limit, max(0, l.limit-count-1)
}

func (lg *requestLog) add(t time.Time, limit int) {
	if len(lg.times) < limit {
		lg.times = append(lg.times, t)
		return
	}
	lg.times[lg.next] = t
	lg.next = (lg.next + 1) % limit
}

func (lg *requestLog) countAfter(cutoff time.Time) int {
	n := 0
	for _, t := range lg.times {
		if t.After(cutoff) {
			n++
		}
	}
	return n
}

func (lg *requestLog) newest() time.Time {
	var newest time.Time
	for _, t := range lg.times {
		if t.After(newest) {
			newest = t
		}
	}
	return newest
}

// RateLimitIdentity is the limiter key of a request: the principal's key id
// ("legacy" for ADMIN_API_KEY), else "anonymous".
func RateLimitIdentity(r *http.Request) string {
	if p, ok := PrincipalFrom(r.Context()); ok && p.KeyID != "" {
		return p.KeyID
	}
	return "anonymous"
}

// RateLimit applies l after authentication: it sets X-RateLimit-Limit and
// X-RateLimit-Remaining on every response and refuses excess requests with
// 429 "Rate limit exceeded" and Retry-After. A nil or disabled limiter lets
// everything through.
func RateLimit(l *RateLimiter) Middleware {
	return func(next http.Handler) http.Handler {
		if l == nil || l.disabled {
			return next
		}
		retryAfter := strconv.Itoa(int((l.window + time.Second - 1) / time.Second))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			allowed, remaining := l.Allow(RateLimitIdentity(r))
			h := w.Header()
			h.Set("X-RateLimit-Limit", strconv.Itoa(l.limit))
			h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
			if !allowed {
				h.Set("Retry-After", retryAfter)
				WriteError(w, r, errcode.RateLimited("Rate limit exceeded"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
