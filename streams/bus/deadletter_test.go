package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// A poison message in the middle of a partition ends in dead_letters and
// the messages after it are still applied, in order.
func TestPartitionedPoisonMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		permanent bool
	}{
		{name: "retryable error"},
		{name: "permanent error", permanent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			pool := schematest.NewPool(t)
			store := bus.NewDeadLetterStore(pool, e.js)
			ctx := testCtx(t, 30*time.Second)
			const n, poison = 40, 17
			// One key: every event lands in the same partition.
			var events []*streams.Event
			for i := 1; i <= n; i++ {
				events = append(events, seqEvent("u-poison", i))
			}
			if _, err := e.pub.PublishEvents(ctx, events); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var applied []int
			calls := 0
			rctx, stop := context.WithCancel(ctx)
			done := runAsync(rctx, bus.PartitionedConfig{
				JetStream: e.js, Stream: streams.StreamEvents, Root: streams.EventsRoot, Name: "poison",
				PinnedTTL: time.Second, MaxAttempts: 3, DeadLetters: store,
				Backoff: bus.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
			}, bus.BatchHandlerFunc(func(ctx context.Context, p int, msgs []bus.Msg) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				var ns []int
				for _, m := range msgs {
					_, k := decodeSeq(t, m.Data)
					if k == poison {
						err := errors.New("cannot apply event 17")
						if tc.permanent {
							return bus.Permanent(err)
						}
						return err
					}
					ns = append(ns, k)
				}
				// All or nothing, like a transaction.
				applied = append(applied, ns...)
				return nil
			}))
			waitFor(t, 20*time.Second, "all but the poison message applied", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(applied) >= n-1
			})
			stop()
			if err := waitDone(t, done, 5*time.Second); err != nil {
				t.Errorf("Run: %v", err)
			}
			for i, k := range applied {
				want := i + 1
				if want >= poison {
					want++
				}
				if k != want {
					t.Fatalf("applied order %v", applied)
				}
			}
			dls, total, err := store.List(ctx, bus.DeadLetterFilter{Source: "poison"})
			if err != nil {
				t.Fatal(err)
			}
			if total != 1 || len(dls) != 1 {
				t.Fatalf("%d dead letters, want 1", total)
			}
			dl := dls[0]
			if _, k := decodeSeq(t, dl.Data); k != poison || dl.Status != bus.DeadLetterPending ||
				!strings.Contains(dl.Error, "cannot apply event 17") || dl.StreamSeq != poison ||
				!strings.HasPrefix(dl.Subject, streams.EventsRoot+".") || dl.SourceID != "u-poison-17" {
				t.Errorf("dead letter = %+v", dl)
			}
			t.Logf("%d handler calls", calls)
		})
	}
}

func TestDeadLetterStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool := schematest.NewPool(t)
	store := bus.NewDeadLetterStore(pool, e.js)
	ctx := testCtx(t, 20*time.Second)

	ev := seqEvent("u-dl", 1)
	tok := streams.KeyToken(ev.PartitionKey())
	stored := streams.EventsRoot + ".3." + tok // as a consumer saw it
	for _, dl := range []bus.DeadLetter{
		{Source: "contacts", Subject: stored, StreamSeq: 7, Data: []byte(`{"id":"u-dl-1","userId":"u-dl"}`), Error: "boom"},
		{Source: "contacts", Subject: stored, StreamSeq: 8, Data: []byte("not json \x00"), Error: "bad payload"},
		{Source: "mailer", Subject: "hogsend.emails.send", Data: []byte(`{}`), Error: "smtp"},
	} {
		if err := store.Record(ctx, dl); err != nil {
			t.Fatalf("record: %v", err)
		}
	}
	list, total, err := store.List(ctx, bus.DeadLetterFilter{Source: "contacts", Limit: 1})
	if err != nil || total != 2 || len(list) != 1 {
		t.Fatalf("list contacts = %d of %d, %v", len(list), total, err)
	}
	if _, total, _ := store.List(ctx, bus.DeadLetterFilter{}); total != 3 {
		t.Errorf("list all total = %d", total)
	}
	// Newest first: the second page holds the first one recorded.
	page2, _, _ := store.List(ctx, bus.DeadLetterFilter{Source: "contacts", Offset: 1, Limit: 1})
	if len(page2) != 1 || page2[0].StreamSeq != 7 {
		t.Fatalf("second page = %+v", page2)
	}
	jsonDL, err := store.Get(ctx, page2[0].ID)
	if err != nil || string(jsonDL.Data) != `{"id":"u-dl-1","userId":"u-dl"}` {
		t.Errorf("get = %+v, %v", jsonDL, err)
	}
	binary := list[0]
	if binary.StreamSeq != 8 || string(binary.Data) != "not json \x00" {
		t.Errorf("binary dead letter = %+v", binary)
	}

	// Retry re-publishes to the subject the event was published on.
	retried, err := store.Retry(ctx, jsonDL.ID)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if retried.Status != bus.DeadLetterRetried || retried.RetryCount != 1 || retried.RetriedAt == nil {
		t.Errorf("retried = %+v", retried)
	}
	s, _ := e.js.Stream(ctx, streams.StreamEvents)
	m, err := s.GetLastMsgForSubject(ctx, streams.PartitionFilter(streams.EventsRoot, streams.PartitionOf(tok)))
	if err != nil || string(m.Data) != string(jsonDL.Data) {
		t.Errorf("re-published message = %v, %v", m, err)
	}
	if _, err := store.Retry(ctx, jsonDL.ID); !errors.Is(err, bus.ErrNotFound) {
		t.Errorf("second retry: %v, want ErrNotFound", err)
	}

	discarded, err := store.Discard(ctx, binary.ID)
	if err != nil || discarded.Status != bus.DeadLetterDiscarded {
		t.Errorf("discard = %+v, %v", discarded, err)
	}
	if _, total, _ := store.List(ctx, bus.DeadLetterFilter{Status: bus.DeadLetterPending}); total != 1 {
		t.Errorf("pending after retry and discard = %d, want 1", total)
	}
	if _, err := store.Get(ctx, [16]byte{1}); !errors.Is(err, bus.ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
}
