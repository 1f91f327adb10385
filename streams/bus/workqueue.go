package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// WorkQueueConfig configures a work-queue consumer: many workers, no order.
type WorkQueueConfig struct {
	JetStream jetstream.JetStream
	// Stream is a work-queue stream (streams.StreamEmails, ...).
	Stream string
	// Name is the durable name, shared by every instance; the consumer
	// label of metrics and the source of dead letters.
	Name string
	// FilterSubject selects the messages of this consumer (a work-queue
	// stream allows one consumer per subject).
	FilterSubject string
	// Workers is the number of concurrent handler calls (default 4).
	Workers int
	// MaxDeliver is the delivery after which a failing message is
	// dead-lettered (default 10).
	MaxDeliver int
	// AckWait is the redelivery timeout of a message whose instance
	// vanished (default 30s); the runner extends it while a handler works.
	AckWait time.Duration
	// MaxAckPending bounds messages in flight over all instances
	// (default 1000).
	MaxAckPending int
	// Backoff is the redelivery delay after a failed attempt (default
	// Initial 1s, Max 5m).
	Backoff Backoff
	// DeadLetters records messages given up on; nil logs them instead.
	DeadLetters DeadLetterRecorder
	// DrainTimeout bounds how long handlers in progress may take to finish
	// after ctx is cancelled (default 30s).
	DrainTimeout time.Duration
	Logger       *slog.Logger
	// Registerer receives the consumer metrics; nil records nothing.
	Registerer prometheus.Registerer
}

func (c *WorkQueueConfig) setDefaults() error {
	switch {
	case c.JetStream == nil:
		return errors.New("JetStream is required")
	case c.Stream == "":
		return errors.New("Stream is required")
	case c.Name == "":
		return errors.New("Name is required")
	case c.FilterSubject == "":
		return errors.New("FilterSubject is required")
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 1000
	}
	if c.Backoff.Initial == 0 {
		c.Backoff.Initial = time.Second
	}
	if c.Backoff.Max == 0 {
		c.Backoff.Max = 5 * time.Minute
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = defaultDrainTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// consumerConfig is the durable of a work-queue runner.
func (c *WorkQueueConfig) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       c.Name,
		FilterSubject: c.FilterSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		// The runner counts deliveries and dead-letters; a server-side
		// limit would leave the message stuck in the stream unseen.
		MaxDeliver:    -1,
		MaxAckPending: c.MaxAckPending,
	}
}

// RunWorkQueue creates or updates the durable and runs Workers handlers
// until ctx is cancelled; then it stops pulling, lets the handlers in
// progress and the messages already buffered finish (within DrainTimeout)
// and returns nil.
//
// Outcomes: nil acks; RetryAfter naks with its delay; another error naks
// with backoff by delivery count; Permanent, or failing on delivery
// MaxDeliver, records a dead letter and terminates the message.
func RunWorkQueue(ctx context.Context, cfg WorkQueueConfig, h func(ctx context.Context, m Msg) error) error {
	if h == nil {
		return errors.New("run work queue: handler is required")
	}
	if err := cfg.setDefaults(); err != nil {
		return fmt.Errorf("run work queue %s: %w", cfg.Name, err)
	}
	metrics, cons, err := cfg.open(ctx)
	if err != nil {
		return err
	}
	// A small client buffer (buffered messages wait with their AckWait
	// running while other instances could take them), but not below 32:
	// with a buffer the size of a few workers the iterator stopped pulling
	// under a backlog until its request expired (measured: 20,000 messages
	// took 33 s with 4 workers, 1.6 s with 32). The short expiry bounds
	// any such stall.
	it, err := cons.Messages(jetstream.PullMaxMessages(max(cfg.Workers, 32)), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Name, err)
	}
	w := &worker{cfg: &cfg, h: h, metrics: metrics, log: cfg.Logger.With("consumer", cfg.Name),
		dl: deadLetterer{rec: cfg.DeadLetters, source: cfg.Name, log: cfg.Logger, metrics: metrics}}
	return runWorkers(ctx, it, cfg.Workers, cfg.DrainTimeout, func(hctx context.Context) error { return w.loop(hctx, it) })
}

// open registers the consumer's metrics and creates or updates its
// durable (the config has its defaults).
func (c *WorkQueueConfig) open(ctx context.Context) (*Metrics, jetstream.Consumer, error) {
	metrics, err := NewMetrics(c.Registerer)
	if err != nil {
		return nil, nil, fmt.Errorf("run work queue %s: %w", c.Name, err)
	}
	cons, err := c.JetStream.CreateOrUpdateConsumer(ctx, c.Stream, c.consumerConfig())
	if err != nil {
		return nil, nil, fmt.Errorf("create consumer %s: %w", c.Name, err)
	}
	return metrics, cons, nil
}

// runWorkers runs n loops over it until ctx is cancelled, then drains: the
// iterator stops pulling, and the loops finish what they hold within
// drain. It returns the loops' errors when the iterator closed on its own
// (connection closed, consumer deleted), nil after a cancel.
func runWorkers(ctx context.Context, it jetstream.MessagesContext, n int, drain time.Duration, loop func(ctx context.Context) error) error {
	hctx, cancel := drainContext(ctx, drain)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = loop(hctx) })
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		wg.Wait()
	}()
	select {
	case <-ctx.Done():
		it.Drain()
		<-stopped
		return nil
	case <-stopped:
		// The iterator closed on its own: connection closed or consumer
		// deleted.
		it.Stop()
		return errors.Join(errs...)
	}
}

type worker struct {
	cfg     *WorkQueueConfig
	h       func(context.Context, Msg) error
	metrics *Metrics
	log     *slog.Logger
	dl      deadLetterer
}

func (w *worker) loop(ctx context.Context, it jetstream.MessagesContext) error {
	for {
		jm, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			if fatalConnErr(err) {
				return fmt.Errorf("consume %s: %w", w.cfg.Name, err)
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrBadRequest) {
				return fmt.Errorf("consume %s: %w", w.cfg.Name, err)
			}
			// Transient (missed heartbeats, a reconnect): the iterator
			// pulls again by itself.
			w.log.Warn("next message", "error", err)
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		w.handle(ctx, jm)
	}
}

func (w *worker) handle(ctx context.Context, jm jetstream.Msg) {
	m, err := toMsg(jm)
	if err != nil {
		w.log.Error("message without metadata", "error", err)
		_ = jm.Term()
		return
	}
	if m.NumDelivered > 1 {
		w.metrics.redelivery(w.cfg.Name, 1)
	}
	stop := keepInProgress(jm, w.cfg.AckWait/3)
	start := time.Now()
	err = safeCall(func() error { return w.h(ctx, m) })
	w.metrics.observe(w.cfg.Name, time.Since(start))
	stop()
	w.settle(ctx, jm, m, err)
}

// settle applies the handler's outcome err to jm (see RunWorkQueue).
func (w *worker) settle(ctx context.Context, jm jetstream.Msg, m Msg, err error) {
	switch {
	case err == nil:
		if aerr := jm.Ack(); aerr != nil {
			w.log.Warn("ack failed", "subject", m.Subject, "seq", m.Seq, "error", aerr)
		}
		w.metrics.handledAdd(w.cfg.Name, outcomeAck, 1)
	case IsPermanent(err) || m.NumDelivered >= uint64(w.cfg.MaxDeliver):
		if rerr := w.dl.record(ctx, m, err); rerr != nil {
			// Keep the message: better delivered again than lost.
			w.log.Error("record dead letter failed", "subject", m.Subject, "seq", m.Seq, "error", rerr)
			_ = jm.NakWithDelay(w.cfg.Backoff.Delay(int(m.NumDelivered)))
			w.metrics.handledAdd(w.cfg.Name, outcomeRetry, 1)
			return
		}
		_ = jm.Term()
		w.metrics.handledAdd(w.cfg.Name, outcomeDeadLetter, 1)
	default:
		d := w.cfg.Backoff.retryDelay(err, int(m.NumDelivered))
		w.log.Warn("handler failed, will retry", "subject", m.Subject, "seq", m.Seq,
			"delivery", m.NumDelivered, "in", d, "error", err)
		_ = jm.NakWithDelay(d)
		w.metrics.handledAdd(w.cfg.Name, outcomeRetry, 1)
	}
}

// keepInProgress tells the server every interval that the handler is still
// working on jm, so a slow send is not redelivered to another worker.
func keepInProgress(jm jetstream.Msg, every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = jm.InProgress()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
