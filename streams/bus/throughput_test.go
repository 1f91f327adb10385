package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// BenchmarkPartitionedDrain measures draining a backlog of events for
// 1,000 keys over the 16 partitions with a trivial handler. Run with
// go test -run '^$' -bench PartitionedDrain -benchtime 50000x ./streams/bus
func BenchmarkPartitionedDrain(b *testing.B) {
	_, _, js := natstest.Start(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := bus.Provision(ctx, js, streams.DefaultRetention); err != nil {
		b.Fatal(err)
	}
	pub, _ := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	events := make([]*streams.Event, b.N)
	for i := range events {
		events[i] = seqEvent(fmt.Sprintf("u%d", i%1000), i/1000+1)
	}
	start := time.Now()
	if _, err := pub.PublishEvents(ctx, events); err != nil {
		b.Fatal(err)
	}
	pubRate := float64(b.N) / time.Since(start).Seconds()

	var count atomic.Int64
	all := make(chan struct{})
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	b.ResetTimer()
	start = time.Now()
	done := make(chan error, 1)
	go func() {
		done <- bus.RunPartitioned(rctx, bus.PartitionedConfig{
			JetStream: js, Stream: streams.StreamEvents, Root: streams.EventsRoot, Name: "bench",
		}, bus.BatchHandlerFunc(func(ctx context.Context, p int, msgs []bus.Msg) error {
			if count.Add(int64(len(msgs))) == int64(b.N) {
				close(all)
			}
			return nil
		}))
	}()
	<-all
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	b.StopTimer()
	b.ReportMetric(pubRate, "published/s")
	stop()
	if err := <-done; err != nil {
		b.Error(err)
	}
}
