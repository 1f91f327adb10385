package bus_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// Two instances serve all partitions; the active one crashes inside a
// handler while events keep arriving: its connection closes, nothing it
// holds is acknowledged, and its handlers never return. The standby must
// take over within PinnedTTL + 1s, apply nothing twice, lose nothing and
// keep every key in order.
//
// Not parallel: the takeover bound is a timing assertion, and on a small
// machine under -race other tests running at the same time delay pulls
// and acks by hundreds of milliseconds.
func TestPartitionedFailover(t *testing.T) {
	for _, tc := range []struct {
		name string
		// committed: the crashing batch was applied (its transaction
		// committed) before the crash, so its redelivery must be skipped.
		committed bool
	}{
		{name: "crash before commit"},
		{name: "crash after commit", committed: true},
	} {
		// One at a time: each runs three connections and 32 partition
		// loops, and a starved machine delays pulls past PinnedTTL.
		t.Run(tc.name, func(t *testing.T) { testFailover(t, tc.committed) })
	}
}

func testFailover(t *testing.T, committed bool) {
	e := newEnv(t)
	ctx := testCtx(t, 60*time.Second)
	const (
		keys, n   = 100, 50
		pinnedTTL = time.Second
		crashAt   = 1500 // applied messages before the active instance crashes
	)
	check := newOrderChecker(t)
	cfg := func(js jetstream.JetStream) bus.PartitionedConfig {
		return bus.PartitionedConfig{
			JetStream: js, Stream: streams.StreamEvents, Root: streams.EventsRoot, Name: "failover",
			PinnedTTL: pinnedTTL, BatchSize: 64, DrainTimeout: 200 * time.Millisecond,
		}
	}

	// Instance A, on its own connection.
	ncA, jsA := natstest.Connect(t, e.srv)
	actx, cancelA := context.WithCancel(ctx)
	defer cancelA()
	var crashOnce sync.Once
	var crashed atomic.Bool
	var crashTime time.Time
	doneA := runAsync(actx, cfg(jsA), bus.BatchHandlerFunc(func(hctx context.Context, p int, msgs []bus.Msg) error {
		if crashed.Load() {
			// The process is gone: nothing more happens here.
			<-hctx.Done()
			return hctx.Err()
		}
		crash := false
		if check.count() >= crashAt {
			crashOnce.Do(func() { crash = true })
		}
		if !crash {
			check.apply("a", p, msgs)
			return nil
		}
		if committed {
			check.apply("a", p, msgs)
		}
		crashTime = time.Now()
		crashed.Store(true)
		ncA.Close()
		// Run's context ends too, as it would with the process; the
		// handler itself never returns on its own.
		cancelA()
		<-hctx.Done()
		return hctx.Err()
	}))

	// Publish in the background, spread over about two seconds, so events
	// keep arriving across the crash.
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for round := range 10 {
			publishRange(t, ctx, e.pub, keys, round*n/10+1, (round+1)*n/10)
			time.Sleep(150 * time.Millisecond)
		}
	}()

	waitFor(t, 10*time.Second, "instance a applying", func() bool { return check.count() > 0 })
	// Instance B starts as a standby once A holds the partitions.
	_, jsB := natstest.Connect(t, e.srv)
	bctx, cancelB := context.WithCancel(ctx)
	defer cancelB()
	doneB := runAsync(bctx, cfg(jsB), bus.BatchHandlerFunc(func(hctx context.Context, p int, msgs []bus.Msg) error {
		if !crashed.Load() {
			t.Errorf("standby received %d messages of partition %d while the active instance was alive", len(msgs), p)
		}
		check.apply("b", p, msgs)
		return nil
	}))

	_ = waitDone(t, doneA, 10*time.Second) // what a crashed instance returns does not matter
	<-pubDone
	waitFor(t, 20*time.Second, "every event applied", func() bool { return check.count() >= keys*n })
	time.Sleep(200 * time.Millisecond) // let stray redeliveries show up
	cancelB()
	if err := waitDone(t, doneB, 5*time.Second); err != nil {
		t.Errorf("standby Run: %v", err)
	}

	check.checkComplete(keys, n)
	if check.violations > 0 {
		t.Errorf("%d order violations", check.violations)
	}
	check.mu.Lock()
	defer check.mu.Unlock()
	// Acks lost with the connection can make any crash skip a few; a crash
	// after commit must skip at least the crashing batch.
	if check.by["a"] < crashAt || check.by["b"] == 0 || (committed && check.skipped == 0) {
		t.Errorf("applied by a: %d, by b: %d, skipped as already applied: %d", check.by["a"], check.by["b"], check.skipped)
	}
	var worst time.Duration
	for p, first := range check.first["b"] {
		gap := first.Sub(crashTime)
		worst = max(worst, gap)
		if gap > pinnedTTL+time.Second {
			t.Errorf("partition %d: standby received its first batch %s after the crash", p, gap)
		}
	}
	t.Logf("applied by a: %d, by b: %d, skipped as already applied: %d; standby took over %d partitions, slowest %s after the crash",
		check.by["a"], check.by["b"], check.skipped, len(check.first["b"]), worst)
}

// publishRange publishes numbers from…to for each key, in order per key.
func publishRange(t *testing.T, ctx context.Context, pub *bus.Publisher, keys, from, to int) {
	var events []*streams.Event
	for i := from; i <= to; i++ {
		for k := range keys {
			events = append(events, seqEvent(keyName(k), i))
		}
	}
	if _, err := pub.PublishEvents(ctx, events); err != nil {
		t.Errorf("publish: %v", err)
	}
}
