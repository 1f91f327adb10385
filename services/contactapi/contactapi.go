// Package contactapi serves the contacts and events routes: the public
// data-plane /v1/contacts and the admin /v1/admin/contacts and
// /v1/admin/events. Reads come from the contacts projection's tables;
// writes are events published to EVENTS, and a write route waits (bounded)
// for the projection to apply its own event before answering, so callers
// read their writes.
package contactapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// DefaultApplyTimeout bounds how long a write route waits for its event to
// be projected before answering 202 with the event id.
const DefaultApplyTimeout = 5 * time.Second

// Publisher stores events in EVENTS.
type Publisher interface {
	PublishEvent(ctx context.Context, e *streams.Event) (bus.Published, error)
}

// Service serves the routes.
type Service struct {
	pool    *pgxpool.Pool
	nc      *nats.Conn
	pub     Publisher
	now     func() time.Time
	timeout time.Duration
	log     *slog.Logger
}

// Options configure the service.
type Options struct {
	Now          func() time.Time
	ApplyTimeout time.Duration
	Logger       *slog.Logger
}

// New returns the service. nc receives the projection's notifications.
func New(pool *pgxpool.Pool, nc *nats.Conn, pub Publisher, opts Options) *Service {
	s := &Service{pool: pool, nc: nc, pub: pub, now: opts.Now, timeout: opts.ApplyTimeout, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.timeout <= 0 {
		s.timeout = DefaultApplyTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// errPending means the event is stored but was not projected in time.
type pendingError struct{ id string }

func (e *pendingError) Error() string { return "event " + e.id + " accepted, not yet applied" }

// write publishes e with Notify set and waits for the projection's answer.
func (s *Service) write(ctx context.Context, e *streams.Event) (streams.Applied, error) {
	e.Notify = true
	sub, err := s.nc.SubscribeSync(streams.AppliedSubject(e.ID))
	if err != nil {
		return streams.Applied{}, errcode.Unavailable("Event bus unavailable", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	if _, err := s.pub.PublishEvent(ctx, e); err != nil {
		return streams.Applied{}, errcode.Unavailable("Event store unavailable, retry", err)
	}
	wctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	m, err := sub.NextMsgWithContext(wctx)
	if err != nil {
		return streams.Applied{}, &pendingError{id: e.ID}
	}
	var a streams.Applied
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return streams.Applied{}, fmt.Errorf("decode applied notification: %w", err)
	}
	return a, nil
}

// apply is write plus the projection's verdict as an error (not found,
// conflict, rejected).
func (s *Service) apply(ctx context.Context, e *streams.Event) (streams.Applied, error) {
	a, err := s.write(ctx, e)
	if err != nil {
		return a, err
	}
	return a, appliedError(a, msgContactGone)
}

// writeError renders a pending write as 202 with the event id: the change
// is durable and will be applied, the caller just cannot read it yet.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var p *pendingError
	if errors.As(err, &p) {
		httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{"id": p.id, "status": "pending", "code": "pending",
			"error": "The change is stored and will be applied; it was not applied within the wait time"})
		return
	}
	httpapi.WriteError(w, r, err)
}

func appliedError(a streams.Applied, notFound string) error {
	switch a.Error {
	case "":
		return nil
	case errcode.CodeNotFound:
		return errcode.NotFound(notFound)
	case errcode.CodeConflict:
		return errcode.Conflict("Another contact already has this email")
	default:
		return errcode.Invalid("The contact change was rejected: " + a.Error)
	}
}

func (s *Service) newEvent(typ, source string) *streams.Event {
	return &streams.Event{V: streams.EnvelopeVersion, ID: newID(), Type: typ, ReceivedAt: s.now().UTC(), Source: source}
}

func (s *Service) q() *dbsqlc.Queries { return dbsqlc.New(s.pool) }

func notFoundOr(err error, msg string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errcode.NotFound(msg)
	}
	return err
}
