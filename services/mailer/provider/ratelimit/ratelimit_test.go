package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider/ratelimit"
)

// single is a provider without batches; it records what it sent.
type single struct {
	mu   sync.Mutex
	sent []string
	err  error
}

func (s *single) Name() string { return "fake" }

func (s *single) Send(_ context.Context, m provider.Message) (provider.Sent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return provider.Sent{}, s.err
	}
	s.sent = append(s.sent, m.IdempotencyKey)
	return provider.Sent{ID: "id-" + m.IdempotencyKey}, nil
}

// batch adds SendBatch and records the size of each call.
type batch struct {
	single
	sizes  []int
	failAt int // 1-based call that fails; 0 never
}

func (b *batch) SendBatch(ctx context.Context, msgs []provider.Message) ([]provider.Sent, error) {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(msgs))
	fail := len(b.sizes) == b.failAt
	b.mu.Unlock()
	if fail {
		return nil, &provider.Error{StatusCode: 422, Err: errors.New("rejected")}
	}
	out := make([]provider.Sent, len(msgs))
	for i, m := range msgs {
		s, _ := b.Send(ctx, m)
		out[i] = s
	}
	return out, nil
}

func messages(n int) []provider.Message {
	msgs := make([]provider.Message, n)
	for i := range msgs {
		msgs[i].IdempotencyKey = fmt.Sprint(i)
	}
	return msgs
}

func TestLimitSend(t *testing.T) {
	t.Parallel()
	inner := &single{}
	p := ratelimit.Limit(inner, 50, 5)
	if _, ok := p.(provider.BatchProvider); ok {
		t.Error("a single provider became a batch provider")
	}
	if p.Name() != "fake" {
		t.Errorf("name = %q", p.Name())
	}
	start := time.Now()
	for i, m := range messages(15) {
		sent, err := p.Send(context.Background(), m)
		if err != nil || sent.ID != fmt.Sprint("id-", i) {
			t.Fatalf("send %d: %v %v", i, sent, err)
		}
	}
	// 5 at once, then 10 more at 50/s: at least 200ms.
	if d := time.Since(start); d < 180*time.Millisecond {
		t.Errorf("15 sends in %v, want ≥ 200ms", d)
	}
	if len(inner.sent) != 15 {
		t.Errorf("%d sent", len(inner.sent))
	}
}

func TestLimitBatch(t *testing.T) {
	t.Parallel()
	inner := &batch{}
	p, ok := ratelimit.Limit(inner, 50, 5).(provider.BatchProvider)
	if !ok {
		t.Fatal("a batch provider lost SendBatch")
	}
	start := time.Now()
	sent, err := p.SendBatch(context.Background(), messages(12))
	if err != nil {
		t.Fatal(err)
	}
	// The first 5 go at once, the other 7 need 140ms of refill.
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Errorf("12 messages in %v, want ≥ 140ms", d)
	}
	if fmt.Sprint(inner.sizes) != "[5 5 2]" {
		t.Errorf("sub-batches %v, want [5 5 2]", inner.sizes)
	}
	if len(sent) != 12 || sent[0].ID != "id-0" || sent[11].ID != "id-11" {
		t.Errorf("sent = %v", sent)
	}
}

func TestLimitBatchFailure(t *testing.T) {
	t.Parallel()
	inner := &batch{failAt: 2}
	p := ratelimit.Limit(inner, 1000, 3).(provider.BatchProvider)
	sent, err := p.SendBatch(context.Background(), messages(9))
	var pe *provider.Error
	if sent != nil || !errors.As(err, &pe) || pe.StatusCode != 422 || provider.Retryable(err) {
		t.Fatalf("sent %v err %v; want the permanent provider error", sent, err)
	}
	if fmt.Sprint(inner.sizes) != "[3 3]" {
		t.Errorf("sub-batches %v, want [3 3]: the rest is aborted", inner.sizes)
	}
}

func TestLimitWaitCancelled(t *testing.T) {
	t.Parallel()
	p := ratelimit.Limit(&batch{}, 0.5, 1) // one every 2s
	if _, err := p.Send(context.Background(), provider.Message{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Send(ctx, provider.Message{})
	if err == nil || !provider.Retryable(err) {
		t.Fatalf("err = %v, want a retryable wait error", err)
	}
	if _, err := p.(provider.BatchProvider).SendBatch(ctx, messages(2)); err == nil || !provider.Retryable(err) {
		t.Fatalf("batch err = %v, want a retryable wait error", err)
	}
}

func TestLimitErrorsPassThrough(t *testing.T) {
	t.Parallel()
	want := &provider.Error{StatusCode: 550, Err: errors.New("no such user")}
	_, err := ratelimit.Limit(&single{err: want}, 100, 1).Send(context.Background(), provider.Message{})
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want the provider's", err)
	}
}

func TestNoLimit(t *testing.T) {
	t.Parallel()
	inner := &single{}
	if p := ratelimit.Limit(inner, 0, 10); p != provider.Provider(inner) {
		t.Errorf("perSecond 0 wrapped the provider")
	}
}

// A limit keeps a provider's per-message idempotency visible, so the mailer
// still batches through a limited dev outbox and not through Resend.
func TestLimitKeepsBatchSafety(t *testing.T) {
	if _, ok := provider.SafeBatch(ratelimit.Limit(idemBatch{}, 10, 10)); !ok {
		t.Error("a limited message-idempotent batch provider is not batch-safe")
	}
	if _, ok := provider.SafeBatch(ratelimit.Limit(plainBatch{}, 10, 10)); ok {
		t.Error("a limited batch provider without per-message keys is batch-safe")
	}
}

type plainBatch struct{}

func (plainBatch) Name() string { return "plain" }
func (plainBatch) Send(context.Context, provider.Message) (provider.Sent, error) {
	return provider.Sent{}, nil
}
func (plainBatch) SendBatch(_ context.Context, m []provider.Message) ([]provider.Sent, error) {
	return make([]provider.Sent, len(m)), nil
}

type idemBatch struct{ plainBatch }

func (idemBatch) MessageIdempotent() bool { return true }
