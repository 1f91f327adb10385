// Package ratelimit paces a provider to the rate its account allows, so a
// campaign fan-out waits here instead of collecting 429s and burning its
// retries.
package ratelimit

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"

	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
)

// Limit returns p limited to perSecond messages a second with bursts of up
// to burst (at least 1). A batch takes one token per message; batches
// larger than burst are sent as consecutive sub-batches of at most burst
// messages, each after its tokens are available. When p is a
// provider.BatchProvider, so is the result. perSecond ≤ 0 means no limit
// and returns p itself.
func Limit(p provider.Provider, perSecond float64, burst int) provider.Provider {
	if perSecond <= 0 {
		return p
	}
	l := &limited{p: p, lim: rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))}
	if bp, ok := p.(provider.BatchProvider); ok {
		return &limitedBatch{limited: l, bp: bp}
	}
	return l
}

type limited struct {
	p   provider.Provider
	lim *rate.Limiter
}

// Name is the wrapped provider's: the limit does not change who delivers.
func (l *limited) Name() string { return l.p.Name() }

func (l *limited) Send(ctx context.Context, m provider.Message) (provider.Sent, error) {
	if err := l.lim.Wait(ctx); err != nil {
		// A plain error: provider.Retryable treats it as retryable, as a
		// send cut short by shutdown or a deadline is still owed.
		return provider.Sent{}, fmt.Errorf("wait for send rate: %w", err)
	}
	return l.p.Send(ctx, m)
}

type limitedBatch struct {
	*limited
	bp provider.BatchProvider
}

// MessageIdempotent is the wrapped provider's: sub-batches keep each
// message's key.
func (l *limitedBatch) MessageIdempotent() bool {
	mi, ok := l.bp.(provider.MessageIdempotent)
	return ok && mi.MessageIdempotent()
}

// SendBatch sends msgs in sub-batches of at most the burst. As with any
// batch, a failure fails the call; sub-batches before it were delivered.
func (l *limitedBatch) SendBatch(ctx context.Context, msgs []provider.Message) ([]provider.Sent, error) {
	size := l.lim.Burst()
	out := make([]provider.Sent, 0, len(msgs))
	for start := 0; start < len(msgs); start += size {
		chunk := msgs[start:min(start+size, len(msgs))]
		if err := l.lim.WaitN(ctx, len(chunk)); err != nil {
			return nil, fmt.Errorf("wait for send rate (%d messages): %w", len(chunk), err)
		}
		sent, err := l.bp.SendBatch(ctx, chunk)
		if err != nil {
			if len(chunk) == len(msgs) {
				return nil, err
			}
			return nil, fmt.Errorf("send messages %d-%d of %d: %w", start+1, start+len(chunk), len(msgs), err)
		}
		out = append(out, sent...)
	}
	return out, nil
}
