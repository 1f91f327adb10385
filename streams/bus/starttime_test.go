package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// A consumer group created with a start time skips what the stream held
// before it (a service added to a running install does not act on old
// events); started again later with another start time, its durables keep
// their position.
func TestPartitionedStartTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 30*time.Second)
	if _, err := e.pub.PublishEvent(ctx, seqEvent("old", 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	var mu sync.Mutex
	var got []string
	run := func(at time.Time, until func() bool) {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- bus.RunPartitioned(rctx, bus.PartitionedConfig{JetStream: e.js, Stream: streams.StreamEvents, Root: streams.EventsRoot,
				Name: "starttime", PinnedTTL: time.Second, DeliverPolicy: jetstream.DeliverByStartTimePolicy, StartTime: at},
				bus.BatchHandlerFunc(func(_ context.Context, _ int, msgs []bus.Msg) error {
					mu.Lock()
					defer mu.Unlock()
					for _, m := range msgs {
						got = append(got, string(m.Data))
					}
					return nil
				}))
		}()
		deadline := time.Now().Add(10 * time.Second)
		for !until() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	if _, err := e.pub.PublishEvent(ctx, seqEvent("new", 1)); err != nil {
		t.Fatal(err)
	}
	run(start, func() bool { return count() >= 1 })
	if n := count(); n != 1 {
		t.Fatalf("handled %d messages, want only the one after the start time", n)
	}
	// Again with a start before everything: the durables keep their place.
	if _, err := e.pub.PublishEvent(ctx, seqEvent("new", 2)); err != nil {
		t.Fatal(err)
	}
	run(start.Add(-time.Hour), func() bool { return count() >= 2 })
	if n := count(); n != 2 {
		t.Errorf("handled %d messages in all, want 2", n)
	}
}
