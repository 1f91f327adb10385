package bus_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// publishKeys publishes n events for each of keys users u0…u<keys-1>, each
// with a per-key number 1…n, from workers concurrent publishers. Each key
// belongs to one publisher, so its events are published in order.
func publishKeys(t *testing.T, ctx context.Context, pub *bus.Publisher, keys, n, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var events []*streams.Event
			for i := 1; i <= n; i++ {
				for k := w; k < keys; k += workers {
					events = append(events, seqEvent(fmt.Sprintf("u%d", k), i))
				}
			}
			if _, err := pub.PublishEvents(ctx, events); err != nil {
				t.Errorf("publish: %v", err)
			}
		})
	}
	wg.Wait()
}

// orderChecker applies messages like a projection with a Postgres
// checkpoint: per partition it skips messages at or below the last applied
// stream sequence, and it checks that each key's numbers come 1, 2, 3…
type orderChecker struct {
	t  testing.TB
	mu sync.Mutex
	// applied is the checkpoint: last stream sequence applied per partition.
	applied map[int]uint64
	lastN   map[string]int
	total   int
	// skipped counts messages received again after they were applied.
	skipped int
	// violations counts keys seen out of order or twice.
	violations int
	// by records, per instance, the number of messages applied and, per
	// partition, when it first received a batch.
	by    map[string]int
	first map[string]map[int]time.Time
}

func newOrderChecker(t testing.TB) *orderChecker {
	return &orderChecker{t: t, applied: map[int]uint64{}, lastN: map[string]int{},
		by: map[string]int{}, first: map[string]map[int]time.Time{}}
}

func (c *orderChecker) apply(instance string, p int, msgs []bus.Msg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.IsSortedFunc(msgs, func(a, b bus.Msg) int { return int(a.Seq) - int(b.Seq) }) {
		c.t.Errorf("partition %d: batch not in stream order", p)
	}
	for _, m := range msgs {
		if m.Seq <= c.applied[p] {
			c.skipped++
			continue
		}
		key, n := decodeSeq(c.t, m.Data)
		if n != c.lastN[key]+1 {
			c.violations++
			if c.violations <= 10 {
				c.t.Errorf("%s: key %s got %d after %d (partition %d seq %d)", instance, key, n, c.lastN[key], p, m.Seq)
			}
		}
		if n > c.lastN[key] {
			c.lastN[key] = n
		}
		c.applied[p] = m.Seq
		c.total++
		c.by[instance]++
	}
	if c.first[instance] == nil {
		c.first[instance] = map[int]time.Time{}
	}
	if _, ok := c.first[instance][p]; !ok {
		c.first[instance][p] = time.Now()
	}
}

func (c *orderChecker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

func (c *orderChecker) checkComplete(keys, n int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range keys {
		if got := c.lastN[fmt.Sprintf("u%d", k)]; got != n {
			c.t.Errorf("key u%d: last applied %d, want %d", k, got, n)
		}
	}
	if c.total != keys*n {
		c.t.Errorf("applied %d messages, want %d", c.total, keys*n)
	}
}

func runAsync(ctx context.Context, cfg bus.PartitionedConfig, h bus.BatchHandler) <-chan error {
	done := make(chan error, 1)
	go func() { done <- bus.RunPartitioned(ctx, cfg, h) }()
	return done
}

func waitDone(t *testing.T, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("runner did not return within %s", d)
		return nil
	}
}

func TestPartitionedOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 60*time.Second)
	const keys, n = 100, 100
	check := newOrderChecker(t)
	reg := prometheus.NewRegistry()
	rctx, stop := context.WithCancel(ctx)
	done := runAsync(rctx, bus.PartitionedConfig{
		JetStream: e.js, Stream: streams.StreamEvents, Root: streams.EventsRoot, Name: "order",
		PinnedTTL: time.Second, Registerer: reg,
	}, bus.BatchHandlerFunc(func(ctx context.Context, p int, msgs []bus.Msg) error {
		check.apply("a", p, msgs)
		return nil
	}))
	start := time.Now()
	publishKeys(t, ctx, e.pub, keys, n, 10)
	waitFor(t, 30*time.Second, "all events applied", func() bool { return check.count() >= keys*n })
	elapsed := time.Since(start)
	stop()
	if err := waitDone(t, done, 5*time.Second); err != nil {
		t.Errorf("Run: %v", err)
	}
	check.checkComplete(keys, n)
	t.Logf("published and applied %d events in order in %s", keys*n, elapsed)
	if got := metricValue(t, reg, "hogsend_consumer_handled_total", map[string]string{"consumer": "order", "outcome": "ack"}); got != keys*n {
		t.Errorf("handled ack counter = %v, want %d", got, keys*n)
	}
	r, _ := bus.NewPartitioned(bus.PartitionedConfig{JetStream: e.js, Stream: streams.StreamEvents,
		Root: streams.EventsRoot, Name: "order", PinnedTTL: time.Second}, bus.BatchHandlerFunc(nil))
	lag, err := r.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for p, l := range lag {
		if l != 0 {
			t.Errorf("partition %d lag %d after everything was applied", p, l)
		}
	}
}

// A batch that takes longer than PinnedTTL and AckWait keeps its partition:
// the runner renews the pin and the ack deadline while the handler works,
// so the standby receives nothing and nothing is redelivered.
func TestPartitionedSlowBatchKeepsPin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 30*time.Second)
	const key = "u-slow"
	p := streams.PartitionOf(streams.KeyToken("u:" + key))
	cfg := bus.PartitionedConfig{JetStream: e.js, Stream: streams.StreamEvents, Root: streams.EventsRoot,
		Name: "slow", Partitions: []int{p}, PinnedTTL: time.Second}

	var mu sync.Mutex
	var applied []int
	started := make(chan struct{})
	var once sync.Once
	actx, stopA := context.WithCancel(ctx)
	defer stopA()
	doneA := runAsync(actx, cfg, bus.BatchHandlerFunc(func(ctx context.Context, _ int, msgs []bus.Msg) error {
		once.Do(func() {
			close(started)
			time.Sleep(2500 * time.Millisecond)
		})
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if m.NumDelivered != 1 {
				t.Errorf("seq %d delivered %d times", m.Seq, m.NumDelivered)
			}
			_, n := decodeSeq(t, m.Data)
			applied = append(applied, n)
		}
		return nil
	}))
	publishOne := func(n int) {
		if _, err := e.pub.PublishEvent(ctx, seqEvent(key, n)); err != nil {
			t.Fatal(err)
		}
	}
	publishOne(1)
	<-started

	_, jsB := natstest.Connect(t, e.srv)
	cfgB := cfg
	cfgB.JetStream = jsB
	bctx, stopB := context.WithCancel(ctx)
	defer stopB()
	doneB := runAsync(bctx, cfgB, bus.BatchHandlerFunc(func(ctx context.Context, _ int, msgs []bus.Msg) error {
		t.Errorf("standby received %d messages while the active instance was working", len(msgs))
		return nil
	}))
	for n := 2; n <= 6; n++ {
		publishOne(n)
	}
	waitFor(t, 10*time.Second, "six events applied by the slow instance", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(applied) == 6
	})
	stopB()
	stopA()
	waitDone(t, doneA, 5*time.Second)
	waitDone(t, doneB, 5*time.Second)
	if !slices.Equal(applied, []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("applied %v", applied)
	}
}

// Reset deletes the durables, so the next run replays from the start.
func TestPartitionedReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 30*time.Second)
	publishRange(t, ctx, e.pub, 5, 1, 4)
	cfg := bus.PartitionedConfig{JetStream: e.js, Stream: streams.StreamEvents, Root: streams.EventsRoot,
		Name: "replay", PinnedTTL: time.Second}
	for run := range 2 {
		check := newOrderChecker(t)
		rctx, stop := context.WithCancel(ctx)
		done := runAsync(rctx, cfg, bus.BatchHandlerFunc(func(ctx context.Context, p int, msgs []bus.Msg) error {
			check.apply("r", p, msgs)
			return nil
		}))
		waitFor(t, 10*time.Second, "all events", func() bool { return check.count() == 20 })
		stop()
		if err := waitDone(t, done, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		check.checkComplete(5, 4)
		if run == 0 {
			if err := bus.Reset(ctx, e.js, streams.StreamEvents, "replay"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Resetting a group that does not exist is not an error.
	if err := bus.Reset(ctx, e.js, streams.StreamEvents, "nothing"); err != nil {
		t.Errorf("reset unknown group: %v", err)
	}
}
