package posthogsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/posthog/posthog-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Transition event prefixes (buckets.EnteredEvent / buckets.LeftEvent
// without the id). bucket:dwell:* ticks are not mirrored (§4.5 rule 4).
const (
	enteredPrefix = "bucket:entered:"
	leftPrefix    = "bucket:left:"
)

// uuidSpace namespaces the PostHog event uuid derived from the Hogsend
// event id: a redelivered transition gets the same uuid (PostHog drops the
// copy), yet never collides with the Hogsend event itself should that be
// forwarded to PostHog too.
var uuidSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("hogsend:posthogsync"))

// bucketMarker is in every ACTIVITY message of a bucket event: Go's JSON
// encoder writes the name's ASCII verbatim. Most ACTIVITY is not bucket
// events, and checking for it first spares decoding them.
var bucketMarker = []byte("bucket:")

// enqueuer is the part of posthog.Client the mirror uses.
type enqueuer interface {
	Enqueue(posthog.Message) error
}

type mirror struct {
	reg     *buckets.Registry
	client  enqueuer
	order   *order
	since   time.Time
	metrics *metrics
	log     *slog.Logger
}

// handle mirrors one ACTIVITY message. It never waits on PostHog:
// Enqueue hands the message to posthog-go's batching goroutine.
func (m *mirror) handle(_ context.Context, msg bus.Msg) error {
	if msg.Timestamp.Before(m.since) || !bytes.Contains(msg.Data, bucketMarker) {
		return nil
	}
	var a streams.Activity
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		return bus.Permanent(fmt.Errorf("decode activity: %w", err))
	}
	capture, prop, ok := m.capture(&a)
	if !ok {
		return nil
	}
	stale, err := m.order.do(capture.DistinctId+"\x00"+prop, msg.Seq, func() error {
		return m.client.Enqueue(capture)
	})
	switch {
	case errors.Is(err, posthog.ErrClosed):
		// Only while shutting down: leave it for the next run.
		return fmt.Errorf("enqueue posthog %s: %w", capture.Event, err)
	case err != nil:
		return bus.Permanent(fmt.Errorf("enqueue posthog %s: %w", capture.Event, err))
	case stale:
		m.metrics.add(outcomeStale, 1)
	default:
		m.metrics.add(outcomeEnqueued, 1)
	}
	return nil
}

// orderWindow is how far, in ACTIVITY sequences, order remembers a
// property's last update. Workers reorder messages only among those in
// flight (at most maxAckPending), so this is ample.
const orderWindow = 100 * maxAckPending

// order keeps the updates of one person property in ACTIVITY order while
// several workers handle messages at once. PostHog applies person
// properties in ingestion order, not by timestamp, so an entered and a
// left of one contact enqueued the wrong way round would leave the
// property wrong until the next transition. As only the latest transition
// decides the property, an update older (by stream sequence) than one
// already enqueued for the same person and property is dropped as stale.
//
// This orders what is handed to posthog-go. posthog-go itself sends
// batches concurrently and retries each on its own, so two updates of one
// property split across batches can still land reversed when the earlier
// batch is retried; v1.5.2 does not expose its send concurrency.
type order struct {
	mu      sync.Mutex
	last    map[string]uint64 // distinct id NUL property → seq last enqueued
	maxSeq  uint64
	inserts int
}

func newOrder() *order { return &order{last: map[string]uint64{}} }

// do runs enqueue for the update of key at seq unless a later one was
// enqueued already. The lock is held across enqueue, a channel send, so
// enqueue order follows the decision order.
func (o *order) do(key string, seq uint64, enqueue func() error) (stale bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq <= o.last[key] {
		return true, nil
	}
	if err := enqueue(); err != nil {
		return false, err
	}
	o.last[key] = seq
	o.maxSeq = max(o.maxSeq, seq)
	if o.inserts++; o.inserts%1024 == 0 {
		for k, s := range o.last {
			if s+orderWindow < o.maxSeq {
				delete(o.last, k)
			}
		}
	}
	return false, nil
}

// capture builds the PostHog message for a bucket transition of a bucket
// that syncs to PostHog; ok is false for anything else.
//
// Both transitions are "$set" events, the form PostHog documents for
// changing person properties: entered carries $set {prop: true}, left
// carries $unset [prop]. The distinct_id is the contact's key, the userId
// of the transition (§4.5 rule 1).
func (m *mirror) capture(a *streams.Activity) (c posthog.Capture, prop string, ok bool) {
	e := &a.Event
	if !a.Stored || e.Type != streams.TypeTrack {
		return c, "", false
	}
	id, entered := strings.CutPrefix(e.Name, enteredPrefix)
	if !entered {
		var left bool
		if id, left = strings.CutPrefix(e.Name, leftPrefix); !left {
			return c, "", false
		}
	}
	b, ok := m.reg.Get(id)
	if !ok || !b.Meta().SyncToPostHog {
		return c, "", false
	}
	key := a.Key
	if key == "" {
		key = e.UserID
	}
	if key == "" {
		m.log.Warn("bucket transition without a contact key, not mirrored", "event", e.Name, "id", e.ID)
		return c, "", false
	}
	prop = b.PostHogProperty()
	props := posthog.NewProperties()
	if entered {
		props.Set("$set", map[string]any{prop: true})
	} else {
		props.Set("$unset", []string{prop})
	}
	c = posthog.Capture{
		DistinctId: key,
		Event:      "$set",
		Timestamp:  e.OccurredAt(),
		Properties: props,
	}
	if e.ID != "" {
		c.Uuid = uuid.NewSHA1(uuidSpace, []byte(e.ID)).String()
	}
	return c, prop, true
}

// Outcome label values of hogsend_posthog_messages_total.
const (
	outcomeEnqueued = "enqueued"
	outcomeStale    = "stale"
	outcomeSent     = "sent"
	outcomeFailed   = "failed"
)

// metrics counts mirror messages; it is also posthog-go's Callback, which
// reports each message's fate after the batch it was in. A nil *metrics
// records nothing.
type metrics struct {
	messages *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hogsend_posthog_messages_total",
		Help: "PostHog person-property updates by outcome (enqueued, stale: dropped for a later one, sent, failed).",
	}, []string{"outcome"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("register posthog metrics: %w", err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, fmt.Errorf("register posthog metrics: %w", err)
		}
		c = existing
	}
	return &metrics{messages: c}, nil
}

func (m *metrics) add(outcome string, n int) {
	if m == nil {
		return
	}
	m.messages.WithLabelValues(outcome).Add(float64(n))
}

// Success implements posthog.Callback.
func (m *metrics) Success(posthog.APIMessage) { m.add(outcomeSent, 1) }

// Failure implements posthog.Callback; posthog-go logs the cause itself.
func (m *metrics) Failure(posthog.APIMessage, error) { m.add(outcomeFailed, 1) }
