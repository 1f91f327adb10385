package posthogsync

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/posthog/posthog-go"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

type recorder struct {
	mu   sync.Mutex
	msgs []posthog.Capture
}

func (r *recorder) Enqueue(m posthog.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m.(posthog.Capture))
	return nil
}

// Workers hand messages to the handler in any order; whatever the order,
// each person property's updates are enqueued in stream order and the last
// transition always wins.
func TestHandleKeepsOrderPerProperty(t *testing.T) {
	t.Parallel()
	crit := condition.Event("purchase").AtLeast(1)
	reg, err := buckets.NewRegistry("",
		buckets.MustDefine(buckets.Meta{ID: "a", Name: "A", Criteria: &crit, SyncToPostHog: true}),
		buckets.MustDefine(buckets.Meta{ID: "b", Name: "B", Criteria: &crit, SyncToPostHog: true}),
	)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4000
	type sent struct {
		seq  uint64
		key  string
		prop string
		set  bool
	}
	msgs := make([]bus.Msg, n)
	byUUID := map[string]sent{}
	lastSeq := map[string]uint64{}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range msgs {
		seq := uint64(i + 1)
		key, bucket := fmt.Sprintf("k%d", rnd.IntN(7)), []string{"a", "b"}[rnd.IntN(2)]
		kind := []string{"entered", "left"}[rnd.IntN(2)]
		a := streams.Activity{
			Event: streams.Event{ID: fmt.Sprintf("e%d", seq), Type: streams.TypeTrack,
				Name: "bucket:" + kind + ":" + bucket, UserID: key, ReceivedAt: time.Unix(int64(seq), 0)},
			Key: key, Stored: true,
		}
		data, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = bus.Msg{Seq: seq, Data: data, Timestamp: time.Now()}
		prop := "hogsend_bucket_" + bucket
		byUUID[uuidFor(a.Event.ID)] = sent{seq: seq, key: key, prop: prop, set: kind == "entered"}
		lastSeq[key+"\x00"+prop] = seq
	}
	// Shuffle within small windows, as a few workers would.
	for i := 0; i+8 <= n; i += 8 {
		rnd.Shuffle(8, func(x, y int) { msgs[i+x], msgs[i+y] = msgs[i+y], msgs[i+x] })
	}

	rec := &recorder{}
	m := &mirror{reg: reg, client: rec, order: newOrder(), log: slog.New(slog.DiscardHandler)}
	ch := make(chan bus.Msg)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for msg := range ch {
				if err := m.handle(context.Background(), msg); err != nil {
					t.Errorf("handle seq %d: %v", msg.Seq, err)
				}
			}
		})
	}
	for _, msg := range msgs {
		ch <- msg
	}
	close(ch)
	wg.Wait()

	seen := map[string]uint64{}
	for _, c := range rec.msgs {
		s, ok := byUUID[c.Uuid]
		if !ok {
			t.Fatalf("enqueued unknown uuid %s", c.Uuid)
		}
		k := s.key + "\x00" + s.prop
		if s.seq <= seen[k] {
			t.Errorf("%s: seq %d enqueued after seq %d", k, s.seq, seen[k])
		}
		seen[k] = s.seq
		_, isSet := c.Properties["$set"]
		if c.DistinctId != s.key || isSet != s.set {
			t.Errorf("seq %d: enqueued %+v, want key %s set=%v", s.seq, c, s.key, s.set)
		}
	}
	for k, want := range lastSeq {
		if seen[k] != want {
			t.Errorf("%s: last enqueued seq %d, want the last transition %d", k, seen[k], want)
		}
	}
}

func TestOrderForgetsOldSequences(t *testing.T) {
	t.Parallel()
	o := newOrder()
	noop := func() error { return nil }
	for i := range uint64(2048) {
		if stale, _ := o.do(fmt.Sprint(i), i+1, noop); stale {
			t.Fatalf("seq %d stale", i+1)
		}
	}
	if stale, _ := o.do("0", 1, noop); !stale {
		t.Error("a redelivered update was not stale")
	}
	if stale, _ := o.do("late", orderWindow*3, noop); stale {
		t.Fatal("new key stale")
	}
	// Reach the next prune.
	for i := range uint64(1023) {
		_, _ = o.do(fmt.Sprint("x", i), orderWindow*3+i+1, noop)
	}
	o.mu.Lock()
	n := len(o.last)
	o.mu.Unlock()
	if n > 1024 {
		t.Errorf("order remembers %d keys after pruning, want at most 1024", n)
	}
}

func uuidFor(eventID string) string { return uuid.NewSHA1(uuidSpace, []byte(eventID)).String() }
