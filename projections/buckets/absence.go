package buckets

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
)

// absenceEvents are the events of the criteria's windowed not_exists legs:
// the absences only a sweep can notice (no event arrives to evaluate).
func absenceEvents(n condition.Node) []string {
	var out []string
	for _, l := range condition.Leaves(n) {
		if l.Type == condition.TypeEvent && l.Check == condition.CheckNotExists && l.Within != nil {
			out = append(out, l.EventName)
		}
	}
	return out
}

// exactAbsenceShape reports the shapes whose absence joins run by default
// (spec 10 §4.8 pass 2): a single windowed not_exists, or all(event X
// exists, event X not_exists within W).
func exactAbsenceShape(n condition.Node) bool {
	isAbsent := func(l condition.Node) bool {
		return l.Type == condition.TypeEvent && l.Check == condition.CheckNotExists && l.Within != nil
	}
	if isAbsent(n) {
		return true
	}
	if n.Type != condition.TypeComposite || n.Operator != condition.OpAnd || len(n.Conditions) != 2 {
		return false
	}
	a, b := n.Conditions[0], n.Conditions[1]
	if isAbsent(a) {
		a, b = b, a
	}
	return isAbsent(b) && a.Type == condition.TypeEvent && a.Check == condition.CheckExists && a.Within == nil && a.EventName == b.EventName
}

// absenceJoins runs pass 2 of the sweep for b: contacts who once fired an
// absence leg's event and now satisfy the criteria join with source
// reconcile, through the entry gate.
func (r *Reconciler) absenceJoins(ctx context.Context, b *Bucket) (joined int, err error) {
	meta := b.Meta()
	crit := b.Criteria()
	events := absenceEvents(crit)
	if !b.IsTimeBased() || len(events) == 0 {
		return 0, nil
	}
	if meta.ReconcileJoins != nil && !*meta.ReconcileJoins {
		return 0, nil
	}
	if meta.ReconcileJoins == nil && !exactAbsenceShape(crit) {
		return 0, nil
	}
	if done, err := r.backfillDone(ctx, b); err != nil || !done {
		return 0, err // memberships are not computed yet: joining now would emit for everybody
	}
	q := dbsqlc.New(r.pool)
	now := r.now().UTC()
	hist := &history{q: q, maxSeq: math.MaxInt64}
	after := uuid.Nil
	for {
		rows, err := q.BucketAbsenceCandidates(ctx, dbsqlc.BucketAbsenceCandidatesParams{After: after, Events: events, BucketID: b.ID(), Lim: int32(r.page)})
		if err != nil {
			return joined, fmt.Errorf("read absence candidates: %w", err)
		}
		if len(rows) == 0 {
			return joined, nil
		}
		after = rows[len(rows)-1].ID
		for _, c := range rows {
			props, err := streams.DecodeObject(c.Properties)
			if err != nil {
				return joined, fmt.Errorf("contact %s properties: %w", c.ID, err)
			}
			is, err := condition.Evaluate(ctx, crit, condition.Input{Key: c.Key, Email: deref(c.Email), Properties: props, Now: now}, hist)
			if err != nil {
				return joined, fmt.Errorf("evaluate: %w", err)
			}
			if !is {
				continue
			}
			ok, err := r.joinOne(ctx, b, c.Key, c.ID.String(), deref(c.Email), now)
			if err != nil {
				return joined, err
			}
			if ok {
				joined++
			}
		}
		if len(rows) < r.page {
			return joined, nil
		}
	}
}

// joinOne inserts a reconcile join and publishes its transition (when the
// entry gate lets it) before committing.
func (r *Reconciler) joinOne(ctx context.Context, b *Bucket, key, contactID, email string, now time.Time) (bool, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("begin join: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	q := dbsqlc.New(tx)
	prior, err := q.BucketMembershipsOfKeys(ctx, dbsqlc.BucketMembershipsOfKeysParams{UserIds: []string{key}, BucketIds: []string{b.ID()}})
	if err != nil {
		return false, fmt.Errorf("read memberships: %w", err)
	}
	var ps pairState
	for _, r := range prior {
		ps.add(r)
	}
	gate := PriorRows{Count: ps.rows, LatestLeftAt: ps.latestLeft}
	params := joinParams(b, uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("membership\x00reconcile\x00%s\x00%s\x00%d", b.ID(), key, ps.rows+1))),
		key, email, SourceReconcile, now)
	row, err := q.BucketMembershipJoin(ctx, params)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // joined meanwhile by another writer
	}
	if err != nil {
		return false, fmt.Errorf("join bucket %s: %w", b.ID(), err)
	}
	if ShouldEmitJoin(b, gate, now) {
		msgs, err := r.reg.transitionMsgs(b, key, contactID, email, "entered", int(row.EntryCount), SourceReconcile, "", now)
		if err != nil {
			return false, err
		}
		if err := r.pub.PublishAsyncBatch(ctx, msgs); err != nil {
			return false, fmt.Errorf("publish join: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("commit join: %w", err)
	}
	return true, nil
}

// backfillDone reports whether b's first backfill completed: until then
// memberships are not computed, and passes that emit would emit for every
// member at once (spec 10 §4.8).
func (r *Reconciler) backfillDone(ctx context.Context, b *Bucket) (bool, error) {
	incomplete, err := dbsqlc.New(r.pool).BucketBackfillIncomplete(ctx, b.ID())
	if err != nil {
		return false, fmt.Errorf("read backfill state: %w", err)
	}
	return !incomplete, nil
}
