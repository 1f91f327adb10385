package contacts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/projections"
	"github.com/seed-eeb360f6/hogsend/projections/contacts"
	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/embedded"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// pipeline is the real path: publisher → EVENTS → partitioned consumer →
// contacts projection → Postgres + ACTIVITY.
type pipeline struct {
	t    *testing.T
	pool *pgxpool.Pool
	srv  *embedded.Server
	js   jetstream.JetStream
	pub  *bus.Publisher
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	srv, _, js := natstest.Start(t)
	if err := bus.Provision(context.Background(), js, streams.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline{t: t, pool: schematest.NewPool(t), srv: srv, js: js, pub: pub}
}

// consumer starts one instance of the contacts group on its own
// connection; wrap may intercept batches (fault injection).
func (p *pipeline) consumer(ctx context.Context, wrap func(nc *nats.Conn, h bus.BatchHandler) bus.BatchHandler) (*nats.Conn, <-chan error) {
	p.t.Helper()
	nc, js := natstest.Connect(p.t, p.srv)
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		p.t.Fatal(err)
	}
	var h bus.BatchHandler = projections.NewRunner(contacts.Name, p.pool, pub, contacts.New(contacts.Options{}), nil)
	if wrap != nil {
		h = wrap(nc, h)
	}
	done := make(chan error, 1)
	go func() {
		done <- bus.RunPartitioned(ctx, bus.PartitionedConfig{
			JetStream: js, Stream: streams.StreamEvents, Root: streams.EventsRoot, Name: contacts.Name,
			PinnedTTL: time.Second, Backoff: bus.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
			// The crashed instance of the failover test never finishes its
			// batch; do not wait the default 30 s for it at the end.
			DrainTimeout: 2 * time.Second,
		}, h)
	}()
	return nc, done
}

// seqEvent is event n of contact u, patching last=n.
func seqEvent(u, n int) *streams.Event {
	return &streams.Event{
		V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeTrack, Name: "tick",
		UserID: fmt.Sprintf("u%d", u), ReceivedAt: time.Now().UTC(), Source: "test",
		EventProperties:   json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		ContactProperties: json.RawMessage(fmt.Sprintf(`{"last":%d}`, n)),
	}
}

// publishConcurrently publishes perContact events for each of contacts
// contacts from several goroutines at once.
func (p *pipeline) publishConcurrently(contactsN, perContact, workers int) {
	p.t.Helper()
	if err := p.publish(contactsN, perContact, workers); err != nil {
		p.t.Fatal(err)
	}
}

func (p *pipeline) publish(contactsN, perContact, workers int) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var batch []*streams.Event
			for u := w; u < contactsN; u += workers {
				for n := 1; n <= perContact; n++ {
					batch = append(batch, seqEvent(u, n))
				}
			}
			// Interleave contacts inside one worker's stream too.
			for off := 0; off < len(batch); off += 250 {
				end := min(off+250, len(batch))
				res, err := p.pub.PublishEvents(context.Background(), batch[off:end])
				if err != nil {
					errs <- err
					return
				}
				for _, r := range res {
					if r.Err != nil {
						errs <- r.Err
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (p *pipeline) waitRows(n int, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got int
		if err := p.pool.QueryRow(context.Background(), `SELECT count(*) FROM user_events`).Scan(&got); err != nil {
			p.t.Fatal(err)
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("projected %d of %d events within %s", got, n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOrder asserts, per contact, that ACTIVITY carries its events in
// EVENTS order with the snapshot each event produced, and that the final
// contact properties are those of its last event in stream order.
func (p *pipeline) checkOrder(total int) {
	p.t.Helper()
	ctx := context.Background()
	// Expected final value per contact: the patch of its last event in
	// EVENTS order (the order the stream stored them).
	lastByKey := map[string]int{}
	eventsIn := readAll[streams.Event](p.t, p.js, streams.StreamEvents)
	for _, e := range eventsIn {
		var cp struct{ Last int }
		_ = json.Unmarshal(e.msg.ContactProperties, &cp)
		lastByKey[e.msg.UserID] = cp.Last
	}
	acts := readAll[streams.Activity](p.t, p.js, streams.StreamActivity)
	if len(acts) != total {
		p.t.Fatalf("ACTIVITY holds %d messages, want %d (one per event)", len(acts), total)
	}
	prevSeq := map[string]uint64{}
	seen := map[string]bool{}
	for _, a := range acts {
		key := a.msg.Key
		if a.msg.Seq <= prevSeq[key] {
			p.t.Fatalf("contact %s: ACTIVITY seq %d after %d (out of order)", key, a.msg.Seq, prevSeq[key])
		}
		prevSeq[key] = a.msg.Seq
		if seen[a.msg.Event.ID] {
			p.t.Fatalf("event %s applied twice", a.msg.Event.ID)
		}
		seen[a.msg.Event.ID] = true
		var snap, patch struct{ Last int }
		_ = json.Unmarshal(a.msg.Contact.Properties, &snap)
		_ = json.Unmarshal(a.msg.Event.ContactProperties, &patch)
		if snap.Last != patch.Last {
			p.t.Fatalf("contact %s: snapshot after event %d shows last=%d", key, patch.Last, snap.Last)
		}
	}
	rows, err := p.pool.Query(ctx, `SELECT external_id, (properties->>'last')::int FROM contacts WHERE deleted_at IS NULL`)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var key string
		var last int
		if err := rows.Scan(&key, &last); err != nil {
			p.t.Fatal(err)
		}
		if last != lastByKey[key] {
			p.t.Fatalf("contact %s ends with last=%d, stream order says %d", key, last, lastByKey[key])
		}
		n++
	}
	if n != len(lastByKey) {
		p.t.Fatalf("%d contacts, want %d", n, len(lastByKey))
	}
}

type stored[T any] struct {
	seq uint64
	msg T
}

func readAll[T any](t *testing.T, js jetstream.JetStream, stream string) []stored[T] {
	t.Helper()
	ctx := context.Background()
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := js.Stream(ctx, stream)
	info, _ := s.Info(ctx)
	var out []stored[T]
	for uint64(len(out)) < info.State.Msgs {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, _ := m.Metadata()
			var v T
			if err := json.Unmarshal(m.Data(), &v); err != nil {
				t.Fatal(err)
			}
			out = append(out, stored[T]{seq: md.Sequence.Stream, msg: v})
		}
		if got == 0 {
			t.Fatalf("read %d of %d messages of %s", len(out), info.State.Msgs, stream)
		}
	}
	return out
}

func TestPerContactOrderUnderConcurrentLoad(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, done := p.consumer(ctx, nil)
	const contactsN, perContact = 100, 100
	p.publishConcurrently(contactsN, perContact, 8)
	p.waitRows(contactsN*perContact, 60*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p.checkOrder(contactsN * perContact)
}

// A batch whose handler fails after its transaction committed (before the
// ack) is retried and changes nothing the second time.
func TestFailureAfterCommitIsRedeliveredWithoutEffect(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var injected atomic.Int32
	_, done := p.consumer(ctx, func(_ *nats.Conn, h bus.BatchHandler) bus.BatchHandler {
		return bus.BatchHandlerFunc(func(ctx context.Context, part int, msgs []bus.Msg) error {
			if err := h.HandleBatch(ctx, part, msgs); err != nil {
				return err
			}
			if injected.Add(1) <= 3 {
				return errors.New("injected fault after commit, before ack")
			}
			return nil
		})
	})
	p.publishConcurrently(10, 20, 2)
	p.waitRows(200, 30*time.Second)
	// Let retries settle, then check nothing was applied twice.
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if injected.Load() < 3 {
		t.Fatalf("fault injected %d times, want at least 3", injected.Load())
	}
	p.checkOrder(200)
}

// Failover: two instances serve all partitions; the active one dies in the
// middle of batches (its connection closes without acking, both before and
// after a commit). The standby takes over; per-contact order holds and
// nothing is lost or applied twice.
func TestFailoverToStandbyKeepsOrderAndExactlyOnce(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var batches atomic.Int32
	var killedAt atomic.Int64
	crash := make(chan struct{})
	dead := make(chan struct{}) // closed at the end so the dead instance's handlers return
	var once sync.Once
	activeNC, activeDone := p.consumer(ctx, func(nc *nats.Conn, h bus.BatchHandler) bus.BatchHandler {
		return bus.BatchHandlerFunc(func(ctx context.Context, part int, msgs []bus.Msg) error {
			n := batches.Add(1)
			switch {
			case n >= 20: // crash before the commit; later batches die too
				once.Do(func() { killedAt.Store(time.Now().UnixNano()); nc.Close(); close(crash) })
				<-dead
				return errors.New("instance is dead")
			}
			return h.HandleBatch(ctx, part, msgs)
		})
	})
	_ = activeNC
	// The standby joins after the active instance holds the pins.
	time.Sleep(300 * time.Millisecond)
	var standbyFirst atomic.Int64
	_, standbyDone := p.consumer(ctx, func(_ *nats.Conn, h bus.BatchHandler) bus.BatchHandler {
		return bus.BatchHandlerFunc(func(ctx context.Context, part int, msgs []bus.Msg) error {
			standbyFirst.CompareAndSwap(0, time.Now().UnixNano())
			return h.HandleBatch(ctx, part, msgs)
		})
	})
	const contactsN, perContact = 50, 60
	published := make(chan error, 1)
	go func() { published <- p.publish(contactsN, perContact, 4) }()
	select {
	case <-crash:
	case <-time.After(30 * time.Second):
		t.Fatal("active instance never reached its crash point")
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	t.Logf("published at +%s", time.Since(time.Unix(0, killedAt.Load())))
	p.waitRows(contactsN*perContact, 60*time.Second)
	t.Logf("projected at +%s", time.Since(time.Unix(0, killedAt.Load())))
	if first := standbyFirst.Load(); first == 0 {
		t.Fatal("standby never consumed")
	} else if gap := time.Duration(first - killedAt.Load()); gap > 2*time.Second {
		// PinnedTTL (1s) + 1s.
		t.Fatalf("standby took over after %s, want within PinnedTTL + 1s", gap)
	}
	close(dead)
	cancel()
	<-activeDone
	t.Logf("active stopped at +%s", time.Since(time.Unix(0, killedAt.Load())))
	if err := <-standbyDone; err != nil {
		t.Fatal(err)
	}
	p.checkOrder(contactsN * perContact)
}
