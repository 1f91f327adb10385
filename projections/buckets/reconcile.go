package buckets

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Publisher publishes transition events and waits for their acks.
type Publisher interface {
	PublishAsyncBatch(ctx context.Context, msgs []bus.OutMsg) error
}

// Reconciler is the sweep of spec 10 §4.8 for what real-time evaluation
// cannot see: members of time-based buckets whose window ran out, members
// past maxDwell, and leaves deferred by minDwell whose deadline passed
// (the reference only finished those on a later event).
//
// Leaves are compare-and-sets: only the writer that flips a row publishes
// its transition, and the transition's key derives from (bucket, key,
// epoch), so even a repeated publish is one event in history.
type Reconciler struct {
	pool *pgxpool.Pool
	pub  Publisher
	reg  *Registry
	log  *slog.Logger
	now  func() time.Time
	page int
}

// NewReconciler returns the sweep; now defaults to time.Now.
func NewReconciler(pool *pgxpool.Pool, pub Publisher, reg *Registry, log *slog.Logger, now func() time.Time) *Reconciler {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Reconciler{pool: pool, pub: pub, reg: reg, log: log, now: now, page: 500}
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	Ran       bool // false when another process held the sweep
	Evaluated int
	Left      int
	Joined    int
	// Dwelled counts dwell fires.
	Dwelled int
}

// Sweep runs one pass over every registered, enabled bucket. Only one
// sweep runs at a time across processes; a sweep that finds another
// running returns at once with Ran false.
func (r *Reconciler) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("begin sweep: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only holder of the lock
	got, err := dbsqlc.New(tx).BucketSweepLock(ctx)
	if err != nil {
		return res, fmt.Errorf("lock sweep: %w", err)
	}
	if !got {
		return res, nil
	}
	res.Ran = true
	configs, err := dbsqlc.New(r.pool).BucketConfigsAll(ctx)
	if err != nil {
		return res, fmt.Errorf("read bucket configs: %w", err)
	}
	disabled := map[string]bool{}
	for _, c := range configs {
		if !c.Enabled {
			disabled[c.BucketID] = true
		}
	}
	for _, b := range r.reg.All() {
		if !b.Enabled() || disabled[b.ID()] {
			continue
		}
		meta := b.Meta()
		dwell := len(r.reg.dwell[b.ID()]) > 0
		if !b.IsTimeBased() && meta.MaxDwell == 0 && meta.MinDwell == 0 && !dwell {
			continue // real-time evaluation sees every change of such a bucket
		}
		n, left, err := r.sweepBucket(ctx, b)
		res.Evaluated += n
		res.Left += left
		if err == nil {
			var joined int
			joined, err = r.absenceJoins(ctx, b)
			res.Joined += joined
		}
		if err == nil {
			var fired int
			fired, err = r.dwellPass(ctx, b)
			res.Dwelled += fired
		}
		if err != nil {
			// One bucket's failure does not stop the others (§4.8).
			r.log.Error("reconcile bucket", "bucket", b.ID(), "err", err)
		}
	}
	return res, nil
}

// sweepBucket pages through the bucket's active members with live
// contacts and leaves those that must leave.
func (r *Reconciler) sweepBucket(ctx context.Context, b *Bucket) (evaluated, left int, err error) {
	q := dbsqlc.New(r.pool)
	meta := b.Meta()
	now := r.now().UTC()
	hist := &history{q: q, maxSeq: math.MaxInt64}
	after := uuid.Nil
	for {
		rows, err := q.BucketActiveMembersPage(ctx, dbsqlc.BucketActiveMembersPageParams{BucketID: b.ID(), After: after, Lim: int32(r.page)})
		if err != nil {
			return evaluated, left, fmt.Errorf("read members: %w", err)
		}
		if len(rows) == 0 {
			return evaluated, left, nil
		}
		after = rows[len(rows)-1].ID
		var maxDwell, criteria []dbsqlc.BucketActiveMembersPageRow
		var seen []uuid.UUID
		for _, m := range rows {
			if m.ContactID == uuid.Nil {
				continue // the contact is deleted: its membership is left alone
			}
			if m.MaxDwellAt != nil && !m.MaxDwellAt.After(now) {
				maxDwell = append(maxDwell, m)
				continue
			}
			// Time-based buckets re-check every member; others only the
			// leaves minDwell deferred, once their deadline passed.
			deferredDue := meta.MinDwell > 0 && m.ExpiresAt != nil && !m.ExpiresAt.After(now)
			if !b.IsTimeBased() && !deferredDue {
				continue
			}
			if meta.MinDwell > 0 && now.Sub(m.EnteredAt) < meta.MinDwell {
				continue // not old enough to leave on criteria yet
			}
			props, err := streams.DecodeObject(m.Properties)
			if err != nil {
				return evaluated, left, fmt.Errorf("contact %s properties: %w", m.ContactID, err)
			}
			in := condition.Input{Key: m.UserID, Email: deref(m.ContactEmail), Properties: props, Now: now}
			is, err := condition.Evaluate(ctx, b.criteria(), in, hist)
			if err != nil {
				return evaluated, left, fmt.Errorf("evaluate: %w", err)
			}
			evaluated++
			seen = append(seen, m.ID)
			if !is {
				criteria = append(criteria, m)
			}
		}
		for _, batch := range []struct {
			rows          []dbsqlc.BucketActiveMembersPageRow
			reason        string
			enteredBefore time.Time
		}{
			// maxDwell leaves whatever the criteria say and ignores minDwell.
			{maxDwell, "maxDwell", now},
			{criteria, "criteria", now.Add(-meta.MinDwell)},
		} {
			n, err := r.leave(ctx, b, batch.rows, batch.reason, batch.enteredBefore, now)
			left += n
			if err != nil {
				return evaluated, left, err
			}
		}
		if len(seen) > 0 {
			if err := q.BucketMembershipsEvaluated(ctx, dbsqlc.BucketMembershipsEvaluatedParams{At: &now, Ids: seen}); err != nil {
				return evaluated, left, fmt.Errorf("stamp evaluation: %w", err)
			}
		}
		if len(rows) < r.page {
			return evaluated, left, nil
		}
	}
}

// leave flips rows that are still active (and old enough) and publishes
// the transitions of those it flipped (see leaveAndPublish).
func (r *Reconciler) leave(ctx context.Context, b *Bucket, rows []dbsqlc.BucketActiveMembersPageRow, reason string, enteredBefore, now time.Time) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	byID := make(map[uuid.UUID]dbsqlc.BucketActiveMembersPageRow, len(rows))
	ids := make([]uuid.UUID, 0, len(rows))
	for _, m := range rows {
		byID[m.ID] = m
		ids = append(ids, m.ID)
	}
	flippedN := 0
	err := leaveAndPublish(ctx, r.pool, r.pub, r.reg, func(q *dbsqlc.Queries) ([]leaving, error) {
		flipped, err := q.BucketMembershipsLeaveMany(ctx, dbsqlc.BucketMembershipsLeaveManyParams{At: &now, Ids: ids, EnteredBefore: enteredBefore})
		if err != nil {
			return nil, fmt.Errorf("leave members: %w", err)
		}
		out := make([]leaving, 0, len(flipped))
		for _, f := range flipped {
			m := byID[f.ID]
			email := deref(m.UserEmail)
			if m.ContactEmail != nil {
				email = *m.ContactEmail
			}
			out = append(out, leaving{bucket: b, key: m.UserID, contactID: m.ContactID.String(), email: email, epoch: int(f.EntryCount)})
		}
		flippedN = len(out)
		return out, nil
	}, SourceReconcile, reason, now)
	if err != nil {
		return 0, err
	}
	return flippedN, nil
}

// transitionMsg builds a transition event for EVENTS. Its id and
// idempotency key derive from (bucket, key, kind, epoch): every writer and
// every replay produces the same event, and the stream and the history
// keep one.
func (r *Registry) transitionMsgs(b *Bucket, key, contactID, email, kind string, epoch int, source, reason string, at time.Time) ([]bus.OutMsg, error) {
	idem := TransitionKey(b.ID(), key, kind, epoch)
	props := map[string]any{
		"bucketId": b.ID(), "bucketName": b.Name(), "userId": key,
		"transition": kind, "source": source, "entryCount": epoch,
	}
	if reason != "" {
		props["reason"] = reason
	}
	rawProps, err := json.Marshal(props)
	if err != nil {
		return nil, fmt.Errorf("encode transition: %w", err)
	}
	name := EnteredEvent(b.ID())
	if kind == "left" {
		name = LeftEvent(b.ID())
	}
	ev := &streams.Event{
		V: streams.EnvelopeVersion, ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(idem)).String(),
		Type: streams.TypeTrack, Name: name, UserID: key, Email: email, ContactID: contactID,
		EventProperties: rawProps, IdempotencyKey: idem, ReceivedAt: at, Source: "bucket",
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode transition: %w", err)
	}
	msgs := []bus.OutMsg{{Subject: streams.EventSubject(ev), MsgID: ev.MsgID(), Data: data}}
	// The generic copy (spec 10 §4.5.2) only when a journey triggers on
	// its exact name.
	if generic := "bucket:" + kind; r.genericTriggers[generic] {
		g := *ev
		g.Name = generic
		g.IdempotencyKey = idem + ":generic"
		g.ID = uuid.NewSHA1(uuid.NameSpaceOID, []byte(g.IdempotencyKey)).String()
		gdata, err := json.Marshal(&g)
		if err != nil {
			return nil, fmt.Errorf("encode transition: %w", err)
		}
		msgs = append(msgs, bus.OutMsg{Subject: streams.EventSubject(&g), MsgID: g.MsgID(), Data: gdata})
	}
	return msgs, nil
}

// RunSweeps sweeps every interval until ctx ends.
func (r *Reconciler) RunSweeps(ctx context.Context, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			res, err := r.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				r.log.Error("bucket reconcile sweep", "err", err)
				continue
			}
			if res.Left > 0 {
				r.log.Info("bucket reconcile sweep", "evaluated", res.Evaluated, "left", res.Left)
			}
		}
	}
}
