// Package journeys is the durable journey runner (DESIGN §4, spec 10 §5):
// the journeys consumer on ACTIVITY enrols contacts, exits and resumes
// their states in order per contact; the wake-up worker on TIMERS resumes
// sleeps and wait time-outs. A run replays its step log (journey_steps) in
// a transaction that locks its state row, so one state is never run twice
// at once, and everything it derives (email commands, timers, triggered
// events, lifecycle events) is published from an outbox after commit with
// a key derived from (state id, step): a crash anywhere repeats no effect.
package journeys

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Name is the durable name of the journeys consumer on ACTIVITY.
const Name = "journeys"

// Publisher publishes derived messages and waits for their acks.
type Publisher interface {
	PublishAsyncBatch(ctx context.Context, msgs []bus.OutMsg) error
}

// Analytics receives ctx.Identify and ctx.Capture after the step that
// recorded them committed (PostHog when configured).
type Analytics interface {
	Identify(distinctID string, props map[string]any)
	Capture(distinctID, event string, props map[string]any)
}

// Options configure the service.
type Options struct {
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests inject theirs.
	Now func() time.Time
	// Analytics is nil when PostHog is off.
	Analytics Analytics
	// EventsPosition returns the last sequence of the EVENTS stream. A wait
	// begun by a woken run then counts events published after that
	// position, as a wait begun on an event does; nil (or an error) falls
	// back to comparing receive times.
	EventsPosition func(ctx context.Context) (uint64, error)
	// NoLifecycleEvents stops journey:completed / journey:failed from being
	// published (they exist for outbound webhooks; an install without them
	// saves a trip through the pipeline per finished run).
	NoLifecycleEvents bool
	// DefaultZone is the zone of contacts and journeys that name none
	// (default UTC).
	DefaultZone *time.Location
	// RunTimeout is how long one run of journey code may take before it is
	// failed and abandoned (default DefaultRunTimeout). Runs hold their
	// batch's transaction and their partition's place, so journey code
	// that blocks must use ctx.Context().
	RunTimeout time.Duration
	Registerer prometheus.Registerer
}

// DefaultRunTimeout bounds a run of journey code. Journey code does
// in-memory work and a few queries; anything slower is an external call
// that should have used ctx.Context().
const DefaultRunTimeout = 30 * time.Second

// Service runs the journeys of a registry.
type Service struct {
	pool        *pgxpool.Pool
	pub         Publisher
	reg         *journey.Registry
	log         *slog.Logger
	now         func() time.Time
	analytics   Analytics
	lifecycle   bool
	position    func(ctx context.Context) (uint64, error)
	defaultZone *time.Location
	runTimeout  time.Duration
	metrics     *metrics
	zones       sync.Map // name → *time.Location
}

type metrics struct {
	enrolled, skipped, exited, resumed, completed, failed, emails, abandoned *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hogsend_journey_" + name, Help: help}, labels)
	}
	m := &metrics{
		enrolled:  vec("enrolled_total", "Enrolments, by journey.", "journey"),
		skipped:   vec("skipped_total", "Enrolment attempts skipped by a guard, by journey and reason.", "journey", "reason"),
		exited:    vec("exited_total", "States ended by an exitOn event, by journey.", "journey"),
		resumed:   vec("resumed_total", "Runs resumed, by journey and cause (timer, event).", "journey", "cause"),
		completed: vec("completed_total", "Runs completed, by journey.", "journey"),
		failed:    vec("failed_total", "Runs failed, by journey.", "journey"),
		emails:    vec("emails_total", "Email commands published, by journey.", "journey"),
		abandoned: vec("runs_abandoned_total", "Runs failed because journey code did not return by the run deadline (HOGSEND_JOURNEY_RUN_TIMEOUT), by journey.", "journey"),
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.enrolled, m.skipped, m.exited, m.resumed, m.completed, m.failed, m.emails, m.abandoned} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("register journey metrics: %w", err)
			}
		}
	}
	return m, nil
}

// New returns the service of reg's journeys.
func New(pool *pgxpool.Pool, pub Publisher, reg *journey.Registry, opts Options) (*Service, error) {
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Service{pool: pool, pub: pub, reg: reg, log: opts.Logger, now: opts.Now, analytics: opts.Analytics,
		lifecycle: !opts.NoLifecycleEvents, position: opts.EventsPosition, defaultZone: opts.DefaultZone, runTimeout: opts.RunTimeout, metrics: m}
	if s.runTimeout <= 0 {
		s.runTimeout = DefaultRunTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.defaultZone == nil {
		s.defaultZone = time.UTC
	}
	return s, nil
}

// Registry is the service's journeys.
func (s *Service) Registry() *journey.Registry { return s.reg }

func (s *Service) clock() time.Time { return s.now().UTC() }

// zone loads an IANA zone name, cached; nil when it is not valid.
func (s *Service) zone(name string) *time.Location {
	if name == "" {
		return nil
	}
	if l, ok := s.zones.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	s.zones.Store(name, l)
	return l
}

// resolveZone picks the zone of a new enrolment (spec 10 §5.6.1 without
// PostHog): contacts.timezone, the contact's timezone property, the
// journey's zone, the engine default. Invalid candidates are skipped with
// a warning.
func (s *Service) resolveZone(j *journey.Journey, column string, contactProps map[string]any) *time.Location {
	candidates := []string{column}
	if v, ok := contactProps["timezone"].(string); ok {
		candidates = append(candidates, v)
	}
	for _, v := range candidates {
		if v == "" {
			continue
		}
		if l := s.zone(v); l != nil {
			return l
		}
		s.log.Warn("skipping invalid contact timezone", "timezone", v, "journey", j.ID())
	}
	if l := j.Location(); l != nil {
		return l
	}
	return s.defaultZone
}

// lifecycleEvent is the journey:completed or journey:failed event of a
// state: published into EVENTS for the contact the state names (not stored
// in history, spec 10 §5.3.5), so the outbound webhooks see it on ACTIVITY.
func (s *Service) lifecycleEvent(st *dbsqlc.JourneyState, name string, props map[string]any, at time.Time) (bus.OutMsg, bool) {
	if !s.lifecycle || st.ContactID == nil {
		return bus.OutMsg{}, false
	}
	data, err := json.Marshal(props)
	if err != nil {
		return bus.OutMsg{}, false
	}
	ev := &streams.Event{
		V: streams.EnvelopeVersion, ID: derivedID(name, st.ID.String()).String(), Type: streams.TypeTrack, Name: name,
		UserID: st.UserID, ContactID: st.ContactID.String(), EventProperties: data, ReceivedAt: at, Source: "journey",
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return bus.OutMsg{}, false
	}
	return bus.OutMsg{Subject: streams.EventSubject(ev), MsgID: ev.MsgID(), Data: body}, true
}
