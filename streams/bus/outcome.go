package bus

import (
	"errors"
	"math"
	"math/rand/v2"
	"time"
)

// Handlers classify their errors; the runners decide what to do with them
// (CONVENTIONS practice 4). An unclassified error is retried with backoff.

type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (a bad payload, a reference that
// will never resolve): the runner terminates the message and records a dead
// letter. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as retryable after d instead of the runner's
// backoff, e.g. when a provider answered 429 with Retry-After.
// RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, delay: d}
}

// RetryDelay returns the delay requested with RetryAfter, if any.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.delay, true
	}
	return 0, false
}

// Backoff computes exponential retry delays with jitter. The zero value is
// usable: every unset field takes its default.
type Backoff struct {
	// Initial is the delay before the second attempt (default 200ms).
	Initial time.Duration
	// Max caps the delay (default 1m).
	Max time.Duration
	// Multiplier grows the delay per attempt (default 2).
	Multiplier float64
	// Jitter spreads each delay uniformly over ±Jitter of itself
	// (default 0.2; negative disables), so retries of many messages that
	// failed together do not arrive together.
	Jitter float64
	// Rand returns a number in [0, 1); tests inject a fixed one.
	Rand func() float64
}

// Delay is the wait before attempt+1, after attempt failures (attempt ≥ 1).
func (b Backoff) Delay(attempt int) time.Duration {
	initial, maxDelay, mult, jitter := b.Initial, b.Max, b.Multiplier, b.Jitter
	if initial <= 0 {
		initial = 200 * time.Millisecond
	}
	if maxDelay <= 0 {
		maxDelay = time.Minute
	}
	if mult < 1 {
		mult = 2
	}
	if jitter == 0 {
		jitter = 0.2
	}
	if attempt < 1 {
		attempt = 1
	}
	d := float64(initial) * math.Pow(mult, float64(attempt-1))
	if d > float64(maxDelay) {
		d = float64(maxDelay)
	}
	if jitter > 0 {
		r := b.Rand
		if r == nil {
			r = rand.Float64
		}
		d *= 1 + jitter*(2*r()-1)
	}
	if d > float64(maxDelay) {
		d = float64(maxDelay)
	}
	return time.Duration(d)
}

// retryDelay is how long to wait before retrying after err.
func (b Backoff) retryDelay(err error, attempt int) time.Duration {
	if d, ok := RetryDelay(err); ok {
		return d
	}
	return b.Delay(attempt)
}
