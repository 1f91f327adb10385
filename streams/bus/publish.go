package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/streams"
)

// Publisher defaults, from research/platform-limits.md: a window of a few
// thousand async publishes saturates the server; the default stall wait of
// 200 ms failed publishes under slow (sync_always) acks.
const (
	defaultPublishWindow = 2000
	defaultStallWait     = 5 * time.Second
)

// PublisherConfig configures a Publisher. Only JetStream is required.
type PublisherConfig struct {
	JetStream jetstream.JetStream
	// Window bounds the async publishes one batch call keeps in flight
	// (default 2000).
	Window int
	// StallWait is how long an async publish waits for room in the
	// connection's async window before failing (default 5s).
	StallWait time.Duration
	// Registerer receives hogsend_published_total; nil records nothing.
	Registerer prometheus.Registerer
}

// Publisher publishes to JetStream with a Nats-Msg-Id on every message, so
// the stream drops a re-publish inside its dedupe window.
type Publisher struct {
	js        jetstream.JetStream
	window    int
	stallWait time.Duration
	metrics   *Metrics
}

// NewPublisher returns a Publisher.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.JetStream == nil {
		return nil, errors.New("new publisher: JetStream is required")
	}
	if cfg.Window <= 0 {
		cfg.Window = defaultPublishWindow
	}
	if cfg.StallWait <= 0 {
		cfg.StallWait = defaultStallWait
	}
	m, err := NewMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new publisher: %w", err)
	}
	return &Publisher{js: cfg.JetStream, window: cfg.Window, stallWait: cfg.StallWait, metrics: m}, nil
}

// Published is the stream's acknowledgement of one message.
type Published struct {
	// Seq is the stream sequence, of the earlier copy when Duplicate.
	Seq uint64
	// Duplicate is true when the stream already held a message with the
	// same msg id inside its dedupe window and dropped this one.
	Duplicate bool
}

// PublishResult is the outcome of one message of a batch.
type PublishResult struct {
	Published
	Err error
}

// OutMsg is one message of PublishAsyncBatch.
type OutMsg struct {
	Subject string
	// MsgID is the dedupe id; derive it from what the message is about
	// (an event id, a state id and step) so a re-publish after a crash is
	// dropped.
	MsgID string
	Data  []byte
	// Header is sent with the message when set (e.g. Nats-Schedule
	// headers of a timer).
	Header nats.Header
}

// PublishEvent publishes e to EVENTS on its partition-key subject, deduped
// by e.MsgID().
func (p *Publisher) PublishEvent(ctx context.Context, e *streams.Event) (Published, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return Published{}, fmt.Errorf("marshal event: %w", err)
	}
	pub, err := p.Publish(ctx, streams.EventSubject(e), e.MsgID(), data, nil)
	if err != nil {
		return Published{}, fmt.Errorf("publish event: %w", err)
	}
	return pub, nil
}

// Publish publishes one message and waits for the stream's ack. An empty
// msgID publishes without dedupe.
func (p *Publisher) Publish(ctx context.Context, subject, msgID string, data []byte, hdr nats.Header) (Published, error) {
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := p.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data, Header: hdr}, opts...)
	if err != nil {
		p.metrics.publishedAdd("", "error")
		return Published{}, fmt.Errorf("publish %s: %w", subject, err)
	}
	return p.ack(ack), nil
}

func (p *Publisher) ack(a *jetstream.PubAck) Published {
	if a.Duplicate {
		p.metrics.publishedAdd(a.Stream, "duplicate")
	} else {
		p.metrics.publishedAdd(a.Stream, "stored")
	}
	return Published{Seq: a.Sequence, Duplicate: a.Duplicate}
}

// PublishEvents publishes events asynchronously and waits for every ack.
// results[i] belongs to events[i], so one failure does not hide the
// others; the error is non-nil when any event failed and names the first.
func (p *Publisher) PublishEvents(ctx context.Context, events []*streams.Event) ([]PublishResult, error) {
	msgs := make([]OutMsg, len(events))
	results := make([]PublishResult, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			results[i].Err = fmt.Errorf("marshal event: %w", err)
			continue
		}
		msgs[i] = OutMsg{Subject: streams.EventSubject(e), MsgID: e.MsgID(), Data: data}
	}
	p.publishAsync(ctx, msgs, results)
	return results, summarize("publish events", results)
}

// PublishAsyncBatch publishes msgs asynchronously and waits for every ack,
// e.g. to flush a projection outbox. It fails when any message failed; as
// every message carries a msg id, publishing the whole batch again is safe.
func (p *Publisher) PublishAsyncBatch(ctx context.Context, msgs []OutMsg) error {
	results := make([]PublishResult, len(msgs))
	p.publishAsync(ctx, msgs, results)
	return summarize("publish batch", results)
}

// publishAsync fills results for every msg whose result is not already an
// error. At most p.window publishes are awaited at once.
func (p *Publisher) publishAsync(ctx context.Context, msgs []OutMsg, results []PublishResult) {
	type inflight struct {
		i int
		f jetstream.PubAckFuture
	}
	queue := make([]inflight, 0, min(len(msgs), p.window))
	wait := func(in inflight) {
		select {
		case ack := <-in.f.Ok():
			results[in.i].Published = p.ack(ack)
		case err := <-in.f.Err():
			p.metrics.publishedAdd("", "error")
			results[in.i].Err = fmt.Errorf("publish %s: %w", msgs[in.i].Subject, err)
		case <-ctx.Done():
			results[in.i].Err = fmt.Errorf("publish %s: %w", msgs[in.i].Subject, ctx.Err())
		}
	}
	for i, m := range msgs {
		if results[i].Err != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			results[i].Err = fmt.Errorf("publish %s: %w", m.Subject, err)
			continue
		}
		if len(queue) == p.window {
			wait(queue[0])
			queue = queue[1:]
		}
		opts := []jetstream.PublishOpt{jetstream.WithStallWait(p.stallWait)}
		if m.MsgID != "" {
			opts = append(opts, jetstream.WithMsgID(m.MsgID))
		}
		var f jetstream.PubAckFuture
		var err error
		if len(m.Header) > 0 {
			f, err = p.js.PublishMsgAsync(&nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header}, opts...)
		} else {
			f, err = p.js.PublishAsync(m.Subject, m.Data, opts...)
		}
		if err != nil {
			p.metrics.publishedAdd("", "error")
			results[i].Err = fmt.Errorf("publish %s: %w", m.Subject, err)
			continue
		}
		queue = append(queue, inflight{i: i, f: f})
	}
	for _, in := range queue {
		wait(in)
	}
}

func summarize(op string, results []PublishResult) error {
	var first error
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			if first == nil {
				first = r.Err
			}
			failed++
		}
	}
	if first == nil {
		return nil
	}
	return fmt.Errorf("%s: %d of %d failed, first: %w", op, failed, len(results), first)
}
