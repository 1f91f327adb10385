package bus_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

func TestPublishEventDedupe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 10*time.Second)
	ev := seqEvent("u1", 1)
	first, err := e.pub.PublishEvent(ctx, ev)
	if err != nil || first.Duplicate {
		t.Fatalf("first publish = %+v, %v", first, err)
	}
	again, err := e.pub.PublishEvent(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Seq != first.Seq {
		t.Errorf("second publish = %+v, want duplicate of seq %d", again, first.Seq)
	}
	// An idempotency key replaces the id as dedupe key.
	ev2 := seqEvent("u1", 2)
	ev2.IdempotencyKey = "k1"
	ev3 := seqEvent("u1", 3)
	ev3.IdempotencyKey = "k1"
	if p, _ := e.pub.PublishEvent(ctx, ev2); p.Duplicate {
		t.Error("first event with key k1 reported duplicate")
	}
	if p, _ := e.pub.PublishEvent(ctx, ev3); !p.Duplicate {
		t.Error("second event with key k1 not reported duplicate")
	}
}

func TestPublishEventsPerItemResults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 10*time.Second)
	reg := prometheus.NewRegistry()
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: e.js, Window: 2, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	bad := seqEvent("u2", 3)
	bad.EventProperties = json.RawMessage(`{not json`)
	events := []*streams.Event{seqEvent("u2", 1), seqEvent("u2", 2), bad, seqEvent("u2", 1), seqEvent("u2", 4)}
	res, err := pub.PublishEvents(ctx, events)
	if err == nil {
		t.Fatal("PublishEvents with a bad event returned no error")
	}
	if len(res) != len(events) {
		t.Fatalf("%d results for %d events", len(res), len(events))
	}
	for i, want := range []struct{ dup, fail bool }{{}, {}, {fail: true}, {dup: true}, {}} {
		if (res[i].Err != nil) != want.fail || res[i].Duplicate != want.dup {
			t.Errorf("result %d = %+v, want duplicate=%v failed=%v", i, res[i], want.dup, want.fail)
		}
	}
	if res[0].Seq == 0 || res[3].Seq != res[0].Seq || res[4].Seq <= res[1].Seq {
		t.Errorf("sequences %d %d %d %d", res[0].Seq, res[1].Seq, res[3].Seq, res[4].Seq)
	}
	if got := metricValue(t, reg, "hogsend_published_total", map[string]string{"stream": "EVENTS", "outcome": "stored"}); got != 3 {
		t.Errorf("stored counter = %v, want 3", got)
	}
	// A second Publisher on the same registry shares the collectors.
	if _, err := bus.NewPublisher(bus.PublisherConfig{JetStream: e.js, Registerer: reg}); err != nil {
		t.Errorf("second publisher on the same registry: %v", err)
	}
}

func TestPublishAsyncBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, 10*time.Second)
	var msgs []bus.OutMsg
	for i := range 5000 {
		ev := seqEvent("u3", i)
		msgs = append(msgs, bus.OutMsg{Subject: streams.ActivitySubject("c3"), MsgID: ev.ID, Data: []byte(`{}`)})
	}
	start := time.Now()
	if err := e.pub.PublishAsyncBatch(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	t.Logf("PublishAsyncBatch: %d msgs in %s (%.0f msgs/s)", len(msgs), time.Since(start),
		float64(len(msgs))/time.Since(start).Seconds())
	// Flushing the same outbox again stores nothing new.
	if err := e.pub.PublishAsyncBatch(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	s, _ := e.js.Stream(ctx, streams.StreamActivity)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 5000 {
		t.Errorf("ACTIVITY holds %d messages, want 5000", info.State.Msgs)
	}
	// A subject no stream takes fails; the error says so.
	err := e.pub.PublishAsyncBatch(ctx, []bus.OutMsg{{Subject: "nowhere.x", MsgID: "1", Data: []byte("x")}})
	if err == nil {
		t.Error("publish to a subject without stream succeeded")
	}
}

// metricValue returns the value of the counter or gauge name whose labels
// include want, or -1.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}
