package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// batchLog records what a batch handler saw.
type batchLog struct {
	mu         sync.Mutex
	sizes      []int
	deliveries map[string][]time.Time
	numDeliv   map[string][]uint64
	done       map[string]bool
}

func newBatchLog() *batchLog {
	return &batchLog{deliveries: map[string][]time.Time{}, numDeliv: map[string][]uint64{}, done: map[string]bool{}}
}

func (l *batchLog) see(msgs []bus.Msg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sizes = append(l.sizes, len(msgs))
	for _, m := range msgs {
		id := string(m.Data)
		l.deliveries[id] = append(l.deliveries[id], time.Now())
		l.numDeliv[id] = append(l.numDeliv[id], m.NumDelivered)
	}
}

func (l *batchLog) finish(id string) {
	l.mu.Lock()
	l.done[id] = true
	l.mu.Unlock()
}

func (l *batchLog) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.deliveries[id])
}

func (l *batchLog) doneCount(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id := range l.done {
		if strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n
}

func runBatchAsync(ctx context.Context, cfg bus.WorkQueueBatchConfig, h bus.BatchWorkHandler) <-chan error {
	done := make(chan error, 1)
	go func() { done <- bus.RunWorkQueueBatch(ctx, cfg, h) }()
	return done
}

func streamMsgs(t *testing.T, ctx context.Context, e *env, stream string) uint64 {
	t.Helper()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// Each message of a batch is settled by its own outcome, as RunWorkQueue
// settles it: ack, nak with backoff, RetryAfter, dead letter on Permanent
// or on the last delivery. A backlog is handled in full batches.
func TestWorkQueueBatchOutcomes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool := schematest.NewPool(t)
	store := bus.NewDeadLetterStore(pool, e.js)
	ctx := testCtx(t, 30*time.Second)
	subject := streams.WebhooksRoot + ".deliver"

	ids := []string{"flaky", "throttled", "bad", "down"}
	for i := range 150 {
		ids = append(ids, fmt.Sprintf("ok-%03d", i))
	}
	for _, id := range ids {
		if _, err := e.pub.Publish(ctx, subject, id, []byte(id), nil); err != nil {
			t.Fatal(err)
		}
	}
	log := newBatchLog()
	reg := prometheus.NewRegistry()
	rctx, stop := context.WithCancel(ctx)
	runDone := runBatchAsync(rctx, bus.WorkQueueBatchConfig{
		WorkQueueConfig: bus.WorkQueueConfig{
			JetStream: e.js, Stream: streams.StreamWebhooks, Name: "webhooks-batch", FilterSubject: subject,
			Workers: 2, MaxDeliver: 3, AckWait: 5 * time.Second, DeadLetters: store, Registerer: reg,
			Backoff: bus.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
		},
		BatchSize: 64,
	}, func(ctx context.Context, msgs []bus.Msg) []error {
		log.see(msgs)
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			id := string(m.Data)
			switch {
			case id == "flaky" && m.NumDelivered == 1:
				errs[i] = errors.New("connection refused")
			case id == "throttled" && m.NumDelivered == 1:
				errs[i] = bus.RetryAfter(errors.New("429"), 400*time.Millisecond)
			case id == "bad":
				errs[i] = bus.Permanent(errors.New("invalid endpoint"))
			case id == "down":
				errs[i] = errors.New("503")
			default:
				log.finish(id)
			}
		}
		return errs
	})
	waitFor(t, 10*time.Second, "outcomes", func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		return log.done["flaky"] && log.done["throttled"] && len(log.deliveries["down"]) >= 3 && len(log.done) == 152
	})
	waitFor(t, 5*time.Second, "two dead letters", func() bool {
		_, total, _ := store.List(ctx, bus.DeadLetterFilter{Source: "webhooks-batch"})
		return total == 2
	})
	stop()
	if err := waitDone(t, runDone, 5*time.Second); err != nil {
		t.Errorf("RunWorkQueueBatch: %v", err)
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	for _, n := range log.sizes {
		if n > 64 {
			t.Errorf("a batch of %d, BatchSize is 64", n)
		}
	}
	if log.sizes[0] < 32 {
		t.Errorf("first batch of a backlog of %d has %d messages", len(ids), log.sizes[0])
	}
	for id, d := range log.deliveries {
		if strings.HasPrefix(id, "ok-") && len(d) != 1 {
			t.Errorf("%s delivered %d times", id, len(d))
		}
	}
	if n := len(log.deliveries["bad"]); n != 1 {
		t.Errorf("permanent failure delivered %d times, want 1", n)
	}
	if n := len(log.deliveries["down"]); n != 3 {
		t.Errorf("failing message delivered %d times, want MaxDeliver 3", n)
	}
	if d := log.deliveries["throttled"]; len(d) != 2 || d[1].Sub(d[0]) < 400*time.Millisecond {
		t.Errorf("RetryAfter(400ms) redelivered %d times, after %v", len(d), d[len(d)-1].Sub(d[0]))
	}
	dls, _, _ := store.List(ctx, bus.DeadLetterFilter{Source: "webhooks-batch"})
	got := map[string]string{}
	for _, dl := range dls {
		got[string(dl.Data)] = dl.Error
	}
	if got["bad"] == "" || got["down"] != "503" {
		t.Errorf("dead letters = %v", got)
	}
	if v := metricValue(t, reg, "hogsend_consumer_handled_total", map[string]string{"consumer": "webhooks-batch", "outcome": "ack"}); v != 152 {
		t.Errorf("acked counter = %v, want 152", v)
	}
	if v := metricValue(t, reg, "hogsend_consumer_redeliveries_total", map[string]string{"consumer": "webhooks-batch"}); v != 4 {
		t.Errorf("redeliveries counter = %v, want 4", v)
	}
	if n := streamMsgs(t, ctx, e, streams.StreamWebhooks); n != 0 {
		t.Errorf("WEBHOOKS still holds %d messages", n)
	}
}

// A handler that panics on a message has its batch handled again one
// message at a time: the others are acked on their first delivery, the
// poison message alone is retried and dead-lettered.
func TestWorkQueueBatchPanicIsolated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 30*time.Second)
	subject := streams.WebhooksRoot + ".deliver"
	for i := range 20 {
		id := fmt.Sprintf("ok-%02d", i)
		if i == 7 {
			id = "boom"
		}
		if _, err := e.pub.Publish(ctx, subject, id, []byte(id), nil); err != nil {
			t.Fatal(err)
		}
	}
	log := newBatchLog()
	rctx, stop := context.WithCancel(ctx)
	runDone := runBatchAsync(rctx, bus.WorkQueueBatchConfig{
		WorkQueueConfig: bus.WorkQueueConfig{
			JetStream: e.js, Stream: streams.StreamWebhooks, Name: "panics", FilterSubject: subject,
			Workers: 1, MaxDeliver: 2, Backoff: bus.Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond},
		},
	}, func(ctx context.Context, msgs []bus.Msg) []error {
		log.see(msgs)
		for _, m := range msgs {
			if string(m.Data) == "boom" {
				panic("handler bug")
			}
		}
		for _, m := range msgs {
			log.finish(string(m.Data))
		}
		return make([]error, len(msgs))
	})
	waitFor(t, 10*time.Second, "19 acked and boom given up", func() bool {
		return log.doneCount("ok-") == 19 && streamMsgs(t, ctx, e, streams.StreamWebhooks) == 0
	})
	stop()
	if err := waitDone(t, runDone, 5*time.Second); err != nil {
		t.Errorf("RunWorkQueueBatch: %v", err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for id, nd := range log.numDeliv {
		if strings.HasPrefix(id, "ok-") {
			for _, n := range nd {
				if n != 1 {
					t.Errorf("%s seen on delivery %d: an innocent batch-mate was redelivered", id, n)
				}
			}
		}
	}
	// Delivery 1: in the batch, then alone; delivery 2 (the last): alone
	// or in a batch and then alone. Then dead-lettered.
	if nd := log.numDeliv["boom"]; len(nd) < 3 || nd[0] != 1 || nd[1] != 1 || nd[len(nd)-1] != 2 {
		t.Errorf("boom seen on deliveries %v, want the last to be MaxDeliver 2", nd)
	}
}

// A lone message waits at most Linger for company; a handler slower than
// AckWait keeps its batch (no redelivery while it works).
func TestWorkQueueBatchLingerAndInProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 30*time.Second)
	subject := streams.WebhooksRoot + ".deliver"
	log := newBatchLog()
	handled := make(chan time.Time, 100)
	rctx, stop := context.WithCancel(ctx)
	runDone := runBatchAsync(rctx, bus.WorkQueueBatchConfig{
		WorkQueueConfig: bus.WorkQueueConfig{
			JetStream: e.js, Stream: streams.StreamWebhooks, Name: "linger", FilterSubject: subject,
			Workers: 2, AckWait: time.Second,
		},
		Linger: 20 * time.Millisecond,
	}, func(ctx context.Context, msgs []bus.Msg) []error {
		log.see(msgs)
		handled <- time.Now()
		if string(msgs[0].Data) == "slow" {
			time.Sleep(2500 * time.Millisecond)
		}
		return make([]error, len(msgs))
	})
	// Let the consumer start pulling.
	time.Sleep(200 * time.Millisecond)
	for range 3 {
		start := time.Now()
		if _, err := e.pub.Publish(ctx, subject, "", []byte("lone"), nil); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-handled:
			// Linger plus the pull round trip; generous for a loaded
			// machine, far below the 5s pull expiry.
			if d := at.Sub(start); d > 500*time.Millisecond {
				t.Errorf("a lone message reached the handler after %s (Linger 20ms)", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a lone message was not handled")
		}
	}
	if _, err := e.pub.Publish(ctx, subject, "", []byte("slow"), nil); err != nil {
		t.Fatal(err)
	}
	<-handled
	waitFor(t, 10*time.Second, "the slow batch acked", func() bool { return streamMsgs(t, ctx, e, streams.StreamWebhooks) == 0 })
	stop()
	if err := waitDone(t, runDone, 5*time.Second); err != nil {
		t.Errorf("RunWorkQueueBatch: %v", err)
	}
	if n := log.count("slow"); n != 1 {
		t.Errorf("a handler slower than AckWait saw its message %d times, want 1", n)
	}
}
