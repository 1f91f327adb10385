package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// TestPartitionedThroughput measures draining a backlog with a trivial
// handler over the 16 partitions (figures in the test log).
func TestPartitionedThroughput(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t, 60*time.Second)
	const keys, n = 1000, 50
	start := time.Now()
	publishKeys(t, ctx, e.pub, keys, n, 4)
	pubTime := time.Since(start)
	var count atomic.Int64
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	start = time.Now()
	done := runAsync(rctx, bus.PartitionedConfig{
		JetStream: e.js, Stream: streams.StreamEvents, Root: streams.EventsRoot, Name: "bench",
		PinnedTTL: time.Second,
	}, bus.BatchHandlerFunc(func(ctx context.Context, p int, msgs []bus.Msg) error {
		count.Add(int64(len(msgs)))
		return nil
	}))
	waitFor(t, 50*time.Second, "backlog drained", func() bool { return count.Load() >= keys*n })
	d := time.Since(start)
	stop()
	if err := waitDone(t, done, 5*time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("published %d events in %s (%.0f/s); drained in %s: %.0f msgs/s", keys*n, pubTime,
		float64(keys*n)/pubTime.Seconds(), d, float64(keys*n)/d.Seconds())
}
