package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

func TestWorkQueueOutcomes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool := schematest.NewPool(t)
	store := bus.NewDeadLetterStore(pool, e.js)
	ctx := testCtx(t, 30*time.Second)
	subject := streams.WebhooksRoot + ".deliver"

	var mu sync.Mutex
	deliveries := map[string][]time.Time{}
	done := map[string]bool{}
	reg := prometheus.NewRegistry()
	rctx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() {
		runDone <- bus.RunWorkQueue(rctx, bus.WorkQueueConfig{
			JetStream: e.js, Stream: streams.StreamWebhooks, Name: "webhooks", FilterSubject: subject,
			Workers: 3, MaxDeliver: 3, AckWait: 5 * time.Second, DeadLetters: store, Registerer: reg,
			Backoff: bus.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
		}, func(ctx context.Context, m bus.Msg) error {
			id := string(m.Data)
			mu.Lock()
			deliveries[id] = append(deliveries[id], time.Now())
			n := len(deliveries[id])
			mu.Unlock()
			var err error
			switch {
			case id == "flaky" && n == 1:
				err = errors.New("connection refused")
			case id == "throttled" && n == 1:
				err = bus.RetryAfter(errors.New("429"), 400*time.Millisecond)
			case id == "bad":
				err = bus.Permanent(errors.New("invalid endpoint"))
			case id == "down":
				err = errors.New("503")
			case id == "panics" && n == 1:
				panic("handler bug")
			}
			if err == nil {
				mu.Lock()
				done[id] = true
				mu.Unlock()
			}
			return err
		})
	}()
	for _, id := range []string{"ok", "flaky", "throttled", "bad", "down", "panics"} {
		if _, err := e.pub.Publish(ctx, subject, id, []byte(id), nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "outcomes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return done["ok"] && done["flaky"] && done["throttled"] && done["panics"] && len(deliveries["down"]) >= 3
	})
	waitFor(t, 5*time.Second, "two dead letters", func() bool {
		_, total, _ := store.List(ctx, bus.DeadLetterFilter{Source: "webhooks"})
		return total == 2
	})
	stop()
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("RunWorkQueue: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunWorkQueue did not return after cancel")
	}

	mu.Lock()
	defer mu.Unlock()
	if n := len(deliveries["bad"]); n != 1 {
		t.Errorf("permanent failure delivered %d times, want 1", n)
	}
	if n := len(deliveries["down"]); n != 3 {
		t.Errorf("failing message delivered %d times, want MaxDeliver 3", n)
	}
	if d := deliveries["throttled"]; len(d) != 2 || d[1].Sub(d[0]) < 400*time.Millisecond {
		t.Errorf("RetryAfter(400ms) redelivered after %v", d[1].Sub(d[0]))
	}
	dls, _, _ := store.List(ctx, bus.DeadLetterFilter{Source: "webhooks"})
	got := map[string]string{}
	for _, dl := range dls {
		got[string(dl.Data)] = dl.Error
	}
	if got["bad"] == "" || got["down"] != "503" {
		t.Errorf("dead letters = %v", got)
	}
	if v := metricValue(t, reg, "hogsend_dead_letters_total", map[string]string{"consumer": "webhooks"}); v != 2 {
		t.Errorf("dead letter counter = %v", v)
	}
	if v := metricValue(t, reg, "hogsend_consumer_redeliveries_total", map[string]string{"consumer": "webhooks"}); v < 4 {
		t.Errorf("redeliveries counter = %v, want ≥ 4", v)
	}
	// The work queue removed every settled message.
	s, _ := e.js.Stream(ctx, streams.StreamWebhooks)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 0 {
		t.Errorf("WEBHOOKS still holds %d messages", info.State.Msgs)
	}
}

// Run returns promptly on cancel and leaves no goroutine behind, even
// with a handler in progress (it may finish) and messages buffered. Not
// parallel, so that goroutines of other tests do not count.
func TestRunnersStopCleanly(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	e := newEnv(t)
	ctx := testCtx(t, 30*time.Second)
	subject := streams.EmailsRoot + ".send"
	for i := range 20 {
		if _, err := e.pub.Publish(ctx, subject, "", []byte{byte(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	publishRange(t, ctx, e.pub, 20, 1, 5)

	rctx, stop := context.WithCancel(ctx)
	started := make(chan struct{}, 100)
	slow := func(ctx context.Context) error {
		started <- struct{}{}
		select {
		case <-time.After(300 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	wq := make(chan error, 1)
	go func() {
		wq <- bus.RunWorkQueue(rctx, bus.WorkQueueConfig{JetStream: e.js, Stream: streams.StreamEmails,
			Name: "mailer", FilterSubject: subject, Workers: 4},
			func(ctx context.Context, m bus.Msg) error { return slow(ctx) })
	}()
	pr := runAsync(rctx, bus.PartitionedConfig{JetStream: e.js, Stream: streams.StreamEvents,
		Root: streams.EventsRoot, Name: "stopper", PinnedTTL: time.Second},
		bus.BatchHandlerFunc(func(ctx context.Context, p int, msgs []bus.Msg) error { return slow(ctx) }))
	for range 5 {
		<-started
	}
	stop()
	start := time.Now()
	if err := waitDone(t, wq, 5*time.Second); err != nil {
		t.Errorf("RunWorkQueue: %v", err)
	}
	if err := waitDone(t, pr, 5*time.Second); err != nil {
		t.Errorf("RunPartitioned: %v", err)
	}
	t.Logf("both runners returned %s after cancel", time.Since(start))
	// The server keeps goroutines per durable consumer: stop it, then
	// nothing started by this test may remain.
	e.nc.Close()
	e.srv.Shutdown()
	goleak.VerifyNone(t, ignore)
}
