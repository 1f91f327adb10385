package journeys_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/projections"
	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/projections/contacts"
	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/journeys"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/embedded"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// engine runs the real loop for journeys: EVENTS → contacts projection →
// ACTIVITY → journeys consumer, and TIMERS → wake-up worker. Nothing
// consumes EMAILS, so tests read the send commands from the stream.
type engine struct {
	t    *testing.T
	pool *pgxpool.Pool
	srv  *embedded.Server
	js   jetstream.JetStream
	pub  *bus.Publisher
	svc  *journeys.Service

	stop func()
}

type engineOptions struct {
	pool *pgxpool.Pool
	dir  string // NATS store; "" for a temporary one
	// wrapPub wraps the publisher of the journeys consumer and the
	// wake-up worker (fault injection).
	wrapPub func(journeys.Publisher) journeys.Publisher
	// buckets, when set, runs bucket evaluation on ACTIVITY too, so bucket
	// transitions trigger journeys.
	buckets []*buckets.Bucket
	// noLifecycle turns journey:completed / journey:failed off.
	noLifecycle bool
	// runTimeout is the run deadline (default the service's).
	runTimeout time.Duration
	// afterTimer runs after the wake-up handler returned nil and may
	// replace the outcome (a crash between publish and ack).
	afterTimer func(m bus.Msg) error
}

func startEngine(t *testing.T, defs []*journey.Journey, o engineOptions) *engine {
	t.Helper()
	pool := o.pool
	if pool == nil {
		pool = schematest.NewPool(t)
	}
	var srv *embedded.Server
	var js jetstream.JetStream
	if o.dir != "" {
		srv, _, js = natstest.StartAt(t, o.dir)
	} else {
		srv, _, js = natstest.Start(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := bus.Provision(ctx, js, streams.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := journey.NewRegistry("", defs...)
	if err != nil {
		t.Fatal(err)
	}
	var jpub journeys.Publisher = pub
	if o.wrapPub != nil {
		jpub = o.wrapPub(pub)
	}
	svc, err := journeys.New(pool, jpub, reg, journeys.Options{NoLifecycleEvents: o.noLifecycle, RunTimeout: o.runTimeout,
		EventsPosition: func(ctx context.Context) (uint64, error) { return bus.LastSequence(ctx, js, streams.StreamEvents) }})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	goRun := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- err
			}
		}()
	}
	partitioned := func(stream, root, name string, proj projections.Projector, pub projections.Publisher) {
		runner := projections.NewRunner(name, pool, pub, proj, nil)
		goRun(func() error {
			return bus.RunPartitioned(ctx, bus.PartitionedConfig{JetStream: js, Stream: stream, Root: root, Name: name, PinnedTTL: time.Second}, runner)
		})
	}
	partitioned(streams.StreamEvents, streams.EventsRoot, contacts.Name, contacts.New(contacts.Options{}), pub)
	partitioned(streams.StreamActivity, streams.ActivityRoot, journeys.Name, svc, jpub)
	if o.buckets != nil {
		breg, err := buckets.NewRegistry("", o.buckets...)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range reg.All() {
			if k, ok := strings.CutPrefix(j.TriggerEvent(), "bucket:"); ok && !strings.Contains(k, ":") {
				breg.TriggerGeneric(k)
			}
		}
		partitioned(streams.StreamActivity, streams.ActivityRoot, buckets.Name, buckets.NewProjector(breg, nil), pub)
	}
	handle := svc.HandleTimers
	if o.afterTimer != nil {
		handle = func(ctx context.Context, msgs []bus.Msg) []error {
			errs := svc.HandleTimers(ctx, msgs)
			for i, err := range errs {
				if err == nil {
					errs[i] = o.afterTimer(msgs[i])
				}
			}
			return errs
		}
	}
	goRun(func() error {
		return bus.RunWorkQueueBatch(ctx, bus.WorkQueueBatchConfig{
			WorkQueueConfig: bus.WorkQueueConfig{
				JetStream: js, Stream: streams.StreamTimers, Name: "journey-timers", FilterSubject: journeys.TimerDueSubject,
				Workers: 4, Backoff: bus.Backoff{Initial: 100 * time.Millisecond, Max: 200 * time.Millisecond},
			},
			BatchSize: 100, Linger: 5 * time.Millisecond,
		}, handle)
	})
	var once sync.Once
	e := &engine{t: t, pool: pool, srv: srv, js: js, pub: pub, svc: svc}
	e.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("consumer: %v", err)
			}
		})
	}
	t.Cleanup(e.stop)
	return e
}

// send publishes a track event for userID now and returns its id.
func (e *engine) send(userID, email, name string, props map[string]any) string {
	e.t.Helper()
	return e.sendWith(userID, name, email, props, nil)
}

// sendWith is send with contact properties.
func (e *engine) sendWith(userID, name, email string, props, contactProps map[string]any) string {
	e.t.Helper()
	ev := &streams.Event{V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeTrack,
		Name: name, UserID: userID, Email: email, ReceivedAt: time.Now().UTC(), Source: "test"}
	if props != nil {
		ev.EventProperties, _ = json.Marshal(props)
	}
	if contactProps != nil {
		ev.ContactProperties, _ = json.Marshal(contactProps)
	}
	if _, err := e.pub.PublishEvent(context.Background(), ev); err != nil {
		e.t.Fatal(err)
	}
	return ev.ID
}

type stateRow struct {
	ID            uuid.UUID
	Status        string
	CurrentNodeID string
	ErrorMessage  *string
	EntryCount    int
}

// states are the user's rows of journeyID, oldest first.
func (e *engine) states(userID, journeyID string) []stateRow {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(),
		`SELECT id, status, current_node_id, error_message, entry_count FROM journey_states WHERE user_id = $1 AND journey_id = $2 ORDER BY created_at, id`, userID, journeyID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []stateRow
	for rows.Next() {
		var r stateRow
		if err := rows.Scan(&r.ID, &r.Status, &r.CurrentNodeID, &r.ErrorMessage, &r.EntryCount); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// waitStatus waits until the user's newest state of journeyID has status.
func (e *engine) waitStatus(userID, journeyID, status string, within time.Duration) stateRow {
	e.t.Helper()
	deadline := time.Now().Add(within)
	var last []stateRow
	for time.Now().Before(deadline) {
		last = e.states(userID, journeyID)
		if n := len(last); n > 0 && last[n-1].Status == status {
			return last[n-1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("state of %s in %s did not become %s within %s; states: %+v", userID, journeyID, status, within, last)
	return stateRow{}
}

// emailCommand is a send command found on EMAILS with its message id.
type emailCommand struct {
	MsgID string
	Cmd   streams.EmailCommand
}

// emails reads every command stored on EMAILS (nothing consumes them).
func (e *engine) emails() []emailCommand {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, streams.StreamEmails)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []emailCommand
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		var c streams.EmailCommand
		if err := json.Unmarshal(m.Data, &c); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, emailCommand{MsgID: m.Header.Get("Nats-Msg-Id"), Cmd: c})
	}
	return out
}

// waitEmails waits until EMAILS holds n commands and returns them.
func (e *engine) waitEmails(n int, within time.Duration) []emailCommand {
	e.t.Helper()
	deadline := time.Now().Add(within)
	var got []emailCommand
	for time.Now().Before(deadline) {
		if got = e.emails(); len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("EMAILS holds %d commands, want %d", len(got), n)
	return nil
}

// logs are the actions logged for a state, oldest first.
func (e *engine) logs(stateID uuid.UUID) []string {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT action FROM journey_logs WHERE journey_state_id = $1 ORDER BY created_at, id`, stateID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// counter counts calls of journey code, safely across runs.
type counter struct{ n atomic.Int64 }

func (c *counter) inc()       { c.n.Add(1) }
func (c *counter) get() int64 { return c.n.Load() }

// lifecycleEvents counts the journey lifecycle events named name on EVENTS.
func (e *engine) lifecycleEvents(name string) int {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, streams.StreamEvents)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var ev streams.Event
		if json.Unmarshal(m.Data, &ev) == nil && ev.Name == name {
			n++
		}
	}
	return n
}

// sendContact publishes a plan_changed event patching userID's properties
// (track events are what buckets evaluate).
func (e *engine) sendContact(userID string, props map[string]any) {
	e.t.Helper()
	ev := &streams.Event{V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeTrack,
		Name: "plan_changed", UserID: userID, ReceivedAt: time.Now().UTC(), Source: "test"}
	ev.ContactProperties, _ = json.Marshal(props)
	if _, err := e.pub.PublishEvent(context.Background(), ev); err != nil {
		e.t.Fatal(err)
	}
}
