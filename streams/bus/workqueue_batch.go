package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WorkQueueBatchConfig configures a work-queue consumer whose handler takes
// messages in batches: the settings of WorkQueueConfig, where Workers is
// the number of batches in flight (default 4), plus the batch shape.
type WorkQueueBatchConfig struct {
	WorkQueueConfig
	// BatchSize is the most messages per handler call (default 100).
	BatchSize int
	// Linger is how long a batch that is not full waits for more messages
	// after its first one (default 5ms; negative: not at all, the batch is
	// what the client has buffered).
	Linger time.Duration
}

// defaultLinger bounds the wait a lone message pays for batching.
const defaultLinger = 5 * time.Millisecond

func (c *WorkQueueBatchConfig) setDefaults() error {
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	switch {
	case c.Linger == 0:
		c.Linger = defaultLinger
	case c.Linger < 0:
		c.Linger = 0
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.MaxAckPending <= 0 {
		// Every batch in flight plus the client's buffer (see
		// RunWorkQueueBatch), with room for a second instance.
		c.MaxAckPending = max(1000, 2*(c.Workers+2)*c.BatchSize)
	}
	return c.WorkQueueConfig.setDefaults()
}

// BatchWorkHandler handles a batch of work-queue messages and returns one
// outcome per message, in the order of msgs, classified as for
// RunWorkQueue.
type BatchWorkHandler func(ctx context.Context, msgs []Msg) []error

// RunWorkQueueBatch is RunWorkQueue with a handler that takes up to
// BatchSize messages per call: Workers batches are handled concurrently,
// each collected from the messages the client has buffered, waiting at
// most Linger after the first one for the batch to fill. Each message of
// a batch is settled by its own outcome exactly as RunWorkQueue settles
// it: nil acks; RetryAfter naks with its delay; another error naks with
// backoff by delivery count; Permanent, or failing on delivery MaxDeliver,
// records a dead letter and terminates the message. A handler that panics
// or returns the wrong number of outcomes has its batch handled again one
// message at a time, so a poison message does not take its batch with it.
//
// Cancelling ctx stops pulling; batches in progress and the messages
// already buffered are handled (within DrainTimeout) and it returns nil.
func RunWorkQueueBatch(ctx context.Context, cfg WorkQueueBatchConfig, h BatchWorkHandler) error {
	if h == nil {
		return errors.New("run work queue batch: handler is required")
	}
	if err := cfg.setDefaults(); err != nil {
		return fmt.Errorf("run work queue batch %s: %w", cfg.Name, err)
	}
	metrics, cons, err := cfg.open(ctx)
	if err != nil {
		return err
	}
	// The client buffers two batches, so a worker that finishes finds its
	// next batch waiting while the iterator pulls the one after.
	it, err := cons.Messages(jetstream.PullMaxMessages(max(2*cfg.BatchSize, 32)), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Name, err)
	}
	log := cfg.Logger.With("consumer", cfg.Name)
	r := &batchRunner{
		cfg: &cfg,
		h:   h,
		it:  it,
		w: &worker{cfg: &cfg.WorkQueueConfig, metrics: metrics, log: log,
			dl: deadLetterer{rec: cfg.DeadLetters, source: cfg.Name, log: cfg.Logger, metrics: metrics}},
	}
	return runWorkers(ctx, it, cfg.Workers, cfg.DrainTimeout, r.loop)
}

type batchRunner struct {
	cfg *WorkQueueBatchConfig
	h   BatchWorkHandler
	it  jetstream.MessagesContext
	// w settles messages as RunWorkQueue's workers do.
	w *worker
	// collect is held by the worker filling a batch, so batches are not
	// split between workers.
	collect sync.Mutex
}

func (r *batchRunner) loop(ctx context.Context) error {
	for {
		batch, err := r.next(ctx)
		if len(batch) > 0 {
			r.handle(ctx, batch)
		}
		if err != nil {
			if errors.Is(err, errIteratorDone) {
				return nil
			}
			return err
		}
	}
}

// errIteratorDone says the iterator closed normally (drained or stopped).
var errIteratorDone = errors.New("iterator closed")

// next waits for a message, then takes more until the batch is full or
// Linger has passed since the first one.
func (r *batchRunner) next(ctx context.Context) ([]jetstream.Msg, error) {
	r.collect.Lock()
	defer r.collect.Unlock()
	var first jetstream.Msg
	for first == nil {
		jm, err := r.it.Next()
		switch {
		case err == nil:
			first = jm
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			if fatalConnErr(err) {
				return nil, fmt.Errorf("consume %s: %w", r.cfg.Name, err)
			}
			return nil, errIteratorDone
		case errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrBadRequest):
			return nil, fmt.Errorf("consume %s: %w", r.cfg.Name, err)
		default:
			// Transient (missed heartbeats, a reconnect): the iterator
			// pulls again by itself.
			r.w.log.Warn("next message", "error", err)
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}
	batch := make([]jetstream.Msg, 1, r.cfg.BatchSize)
	batch[0] = first
	deadline := time.Now().Add(r.cfg.Linger)
	for len(batch) < r.cfg.BatchSize {
		// A message already buffered is taken at once; the wait only
		// matters when the buffer is empty.
		wait := max(time.Until(deadline), 50*time.Microsecond)
		jm, err := r.it.Next(jetstream.NextMaxWait(wait))
		if err != nil {
			// Out of time, or an error the next call reports again.
			break
		}
		batch = append(batch, jm)
	}
	return batch, nil
}

// handle runs the handler on a batch and settles each message.
func (r *batchRunner) handle(ctx context.Context, batch []jetstream.Msg) {
	name := r.cfg.Name
	jms := make([]jetstream.Msg, 0, len(batch))
	msgs := make([]Msg, 0, len(batch))
	redelivered := 0
	for _, jm := range batch {
		m, err := toMsg(jm)
		if err != nil {
			r.w.log.Error("message without metadata", "error", err)
			_ = jm.Term()
			continue
		}
		if m.NumDelivered > 1 {
			redelivered++
		}
		jms = append(jms, jm)
		msgs = append(msgs, m)
	}
	if redelivered > 0 {
		r.w.metrics.redelivery(name, redelivered)
	}
	if len(msgs) == 0 {
		return
	}
	stop := keepAllInProgress(jms, r.cfg.AckWait/3)
	start := time.Now()
	errs := r.call(ctx, msgs)
	r.w.metrics.observe(name, time.Since(start))
	stop()
	for i := range jms {
		r.w.settle(ctx, jms[i], msgs[i], errs[i])
	}
}

// call runs the handler, falling back to one message per call when it
// panics or answers with the wrong number of outcomes.
func (r *batchRunner) call(ctx context.Context, msgs []Msg) []error {
	var errs []error
	err := safeCall(func() error {
		errs = r.h(ctx, msgs)
		if len(errs) != len(msgs) {
			return fmt.Errorf("batch handler returned %d outcomes for %d messages", len(errs), len(msgs))
		}
		return nil
	})
	if err == nil {
		return errs
	}
	if len(msgs) == 1 {
		return []error{err}
	}
	r.w.log.Warn("batch handler failed, handling its messages one by one", "size", len(msgs), "error", err)
	errs = make([]error, len(msgs))
	for i := range msgs {
		errs[i] = r.call(ctx, msgs[i:i+1])[0]
	}
	return errs
}

// keepAllInProgress is keepInProgress for every message of a batch.
func keepAllInProgress(jms []jetstream.Msg, every time.Duration) (stop func()) {
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
				for _, jm := range jms {
					_ = jm.InProgress()
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
