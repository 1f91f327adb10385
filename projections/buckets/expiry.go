package buckets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Subjects of the fast-expiry timers on TIMERS (DESIGN §3): one schedule
// subject per membership row, all firing on one due subject.
const (
	ExpiryKind       = "bucket-expiry"
	ExpiryDueSubject = streams.TimersRoot + ".due." + ExpiryKind
	expirySchedRoot  = streams.TimersRoot + ".sched." + ExpiryKind
)

// Expiry is the body of a fast-expiry timer (spec 10 §4.7 rule 3).
type Expiry struct {
	RowID          string    `json:"rowId"`
	BucketID       string    `json:"bucketId"`
	Key            string    `json:"userId"`
	ContactID      string    `json:"contactId"`
	Email          string    `json:"userEmail,omitempty"`
	ArmedExpiresAt time.Time `json:"armedExpiresAt"`
}

// expiryTimer is the outbox message that arms a timer firing at e's
// expiry. Re-arming a row replaces its schedule (one subject per row).
func expiryTimer(e Expiry) (bus.OutMsg, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return bus.OutMsg{}, fmt.Errorf("encode expiry timer: %w", err)
	}
	h := nats.Header{}
	// RFC 3339 with nanoseconds: the server honours sub-second targets.
	h.Set("Nats-Schedule", "@at "+e.ArmedExpiresAt.UTC().Format(time.RFC3339Nano))
	h.Set("Nats-Schedule-Target", ExpiryDueSubject)
	return bus.OutMsg{
		Subject: expirySchedRoot + "." + e.RowID,
		MsgID:   "expiry:" + e.RowID + ":" + e.ArmedExpiresAt.UTC().Format(time.RFC3339Nano),
		Data:    data,
		Header:  h,
	}, nil
}

// ExpiryHandler ends a membership when its armed expiry passed and the
// criteria no longer hold. A timer that fires late, twice, or for a row
// re-armed, deferred or already left does nothing.
type ExpiryHandler struct {
	pool *pgxpool.Pool
	pub  Publisher
	reg  *Registry
	log  *slog.Logger
	now  func() time.Time
}

// NewExpiryHandler returns the handler; now defaults to time.Now.
func NewExpiryHandler(pool *pgxpool.Pool, pub Publisher, reg *Registry, log *slog.Logger, now func() time.Time) *ExpiryHandler {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &ExpiryHandler{pool: pool, pub: pub, reg: reg, log: log, now: now}
}

// Handle processes one fired timer.
func (h *ExpiryHandler) Handle(ctx context.Context, m bus.Msg) error {
	var e Expiry
	if err := json.Unmarshal(m.Data, &e); err != nil {
		return bus.Permanent(fmt.Errorf("decode expiry timer: %w", err))
	}
	rowID, err := uuid.Parse(e.RowID)
	if err != nil {
		return bus.Permanent(fmt.Errorf("expiry timer row id %q: %w", e.RowID, err))
	}
	b, ok := h.reg.Get(e.BucketID)
	if !ok || !b.Enabled() {
		return nil // no longer registered: nothing to do
	}
	q := dbsqlc.New(h.pool)
	c, err := q.BucketContactByKey(ctx, e.Key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // the contact is gone; the sweep skips deleted contacts too
	}
	if err != nil {
		return fmt.Errorf("read contact: %w", err)
	}
	props, err := streams.DecodeObject(c.Properties)
	if err != nil {
		return bus.Permanent(fmt.Errorf("contact properties: %w", err))
	}
	now := h.now().UTC()
	if now.Before(e.ArmedExpiresAt) {
		now = e.ArmedExpiresAt // a timer is never early for its own window
	}
	in := condition.Input{Key: e.Key, Email: deref(c.Email), Properties: props, Now: now}
	is, err := condition.Evaluate(ctx, b.criteria(), in, &history{q: q, maxSeq: math.MaxInt64})
	if err != nil {
		return fmt.Errorf("evaluate bucket %s: %w", b.ID(), err)
	}
	if is {
		return nil // still a member; the timer is not re-armed (§4.7)
	}
	email := e.Email
	if c.Email != nil {
		email = *c.Email
	}
	return leaveAndPublish(ctx, h.pool, h.pub, h.reg, func(q *dbsqlc.Queries) ([]leaving, error) {
		epoch, err := q.BucketMembershipExpire(ctx, dbsqlc.BucketMembershipExpireParams{ID: rowID, At: &now, ArmedExpiresAt: &e.ArmedExpiresAt})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil // re-armed, deferred or already left
		}
		if err != nil {
			return nil, fmt.Errorf("expire membership: %w", err)
		}
		return []leaving{{bucket: b, key: e.Key, contactID: c.ID.String(), email: email, epoch: int(epoch)}}, nil
	}, SourceReconcile, "criteria", now)
}

// leaving is one row a writer flipped to left.
type leaving struct {
	bucket    *Bucket
	key       string
	contactID string
	email     string
	epoch     int
}

// leaveAndPublish flips rows inside a transaction and publishes their
// transitions before committing: a crash before the commit leaves the rows
// active (the next attempt publishes the same keys again, which the
// stream and history drop); a crash after it has published already.
func leaveAndPublish(ctx context.Context, pool *pgxpool.Pool, pub Publisher, reg *Registry, flip func(q *dbsqlc.Queries) ([]leaving, error), source, reason string, at time.Time) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin leave: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	rows, err := flip(dbsqlc.New(tx))
	if err != nil {
		return err
	}
	if len(rows) > 0 {
		msgs := make([]bus.OutMsg, 0, len(rows))
		for _, l := range rows {
			m, err := reg.transitionMsgs(l.bucket, l.key, l.contactID, l.email, "left", l.epoch, source, reason, at)
			if err != nil {
				return err
			}
			msgs = append(msgs, m...)
		}
		if err := pub.PublishAsyncBatch(ctx, msgs); err != nil {
			return fmt.Errorf("publish leaves: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit leave: %w", err)
	}
	return nil
}
