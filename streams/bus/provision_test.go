package bus_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

func TestProvisionIdempotent(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t, 10*time.Second)
	r := streams.DefaultRetention
	for i := range 2 {
		if err := bus.Provision(ctx, js, r); err != nil {
			t.Fatalf("provision run %d: %v", i+1, err)
		}
	}
	// A changed retention updates in place.
	r.EventsMaxAge = 24 * time.Hour
	if err := bus.Provision(ctx, js, r); err != nil {
		t.Fatalf("provision with new retention: %v", err)
	}
	for _, want := range bus.StreamConfigs(r) {
		s, err := js.Stream(ctx, want.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", want.Name, err)
		}
		got := s.CachedInfo().Config
		if got.Retention != want.Retention || got.MaxAge != want.MaxAge || got.Duplicates != want.Duplicates ||
			got.AllowMsgSchedules != want.AllowMsgSchedules || strings.Join(got.Subjects, ",") != strings.Join(want.Subjects, ",") {
			t.Errorf("stream %s config = %+v, want %+v", want.Name, got, want)
		}
	}
}

// The subject transform stores hogsend.events.<token> as
// hogsend.events.<p>.<token>, p is what a consumer on partition p's filter
// receives, and streams.PartitionOf predicts it.
func TestPartitionTransform(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 20*time.Second)
	for _, root := range []struct{ stream, root string }{
		{streams.StreamEvents, streams.EventsRoot},
		{streams.StreamActivity, streams.ActivityRoot},
	} {
		tokens := map[string]bool{}
		for i := range 64 {
			tok := streams.KeyToken(fmt.Sprintf("u:%d", i))
			tokens[tok] = true
			if _, err := e.pub.Publish(ctx, root.root+"."+tok, "", []byte("{}"), nil); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]bool{}
		partitionsUsed := map[int]bool{}
		for p := range streams.Partitions {
			c, err := e.js.OrderedConsumer(ctx, root.stream, jetstream.OrderedConsumerConfig{
				FilterSubjects: []string{streams.PartitionFilter(root.root, p)},
			})
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n := int(info.NumPending)
			if n == 0 {
				continue
			}
			b, err := c.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for m := range b.Messages() {
				parts := strings.Split(m.Subject(), ".")
				if len(parts) != 4 || parts[2] != strconv.Itoa(p) {
					t.Errorf("partition %d received stored subject %s", p, m.Subject())
					continue
				}
				tok := parts[3]
				if streams.PartitionOf(tok) != p {
					t.Errorf("PartitionOf(%s) = %d, server put it in %d", tok, streams.PartitionOf(tok), p)
				}
				seen[tok] = true
				partitionsUsed[p] = true
			}
		}
		if len(seen) != len(tokens) {
			t.Errorf("%s: consumers on the 16 partitions saw %d of %d tokens", root.stream, len(seen), len(tokens))
		}
		if len(partitionsUsed) < 8 {
			t.Errorf("%s: 64 keys used only %d partitions", root.stream, len(partitionsUsed))
		}
	}
}

// A schedule published to TIMERS fires on its target subject.
func TestTimersSchedule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 20*time.Second)
	c, err := e.js.CreateOrUpdateConsumer(ctx, streams.StreamTimers, jetstream.ConsumerConfig{
		Durable: "due-x", FilterSubject: streams.TimersRoot + ".due.x", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(time.Second).UTC()
	hdr := map[string][]string{
		"Nats-Schedule":        {"@at " + at.Format(time.RFC3339Nano)},
		"Nats-Schedule-Target": {streams.TimersRoot + ".due.x"},
	}
	if _, err := e.pub.Publish(ctx, streams.TimersRoot+".sched.x.1", "sched-x-1", []byte(`{"wake":"x"}`), hdr); err != nil {
		t.Fatalf("publish schedule: %v", err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("schedule did not fire: %v", err)
	}
	if late := time.Since(at); late < 0 || late > 2*time.Second {
		t.Errorf("fired %s after its time", late)
	}
	if string(m.Data()) != `{"wake":"x"}` || m.Headers().Get("Nats-Scheduler") != streams.TimersRoot+".sched.x.1" {
		t.Errorf("fired message %s %v", m.Data(), m.Headers())
	}
	_ = m.Ack()
}

func TestStreamConfigsReplicas(t *testing.T) {
	t.Parallel()
	for _, c := range bus.StreamConfigs(streams.Retention{}) {
		if c.Replicas != 1 {
			t.Errorf("%s replicas = %d with zero Retention, want 1", c.Name, c.Replicas)
		}
	}
}
