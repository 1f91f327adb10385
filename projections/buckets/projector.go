package buckets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/projections"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Name is the consumer name of the real-time evaluation (durables
// buckets-pNN on ACTIVITY).
const Name = "buckets"

// Source values of membership rows and transition events.
const (
	SourceEvent     = "event"
	SourceReconcile = "reconcile"
	SourceBackfill  = "backfill"
)

// Projector evaluates the registered buckets against each applied event
// on ACTIVITY, in per-contact order, keeps bucket_memberships and emits
// bucket:entered / bucket:left transitions into EVENTS through the outbox.
type Projector struct {
	reg *Registry
	log *slog.Logger
}

// NewProjector returns the real-time evaluation over reg.
func NewProjector(reg *Registry, log *slog.Logger) *Projector {
	if log == nil {
		log = slog.Default()
	}
	return &Projector{reg: reg, log: log}
}

type pairKey struct{ user, bucket string }

// pairState is what the batch knows of one (key, bucket) pair.
type pairState struct {
	active     *activeRow
	rows       int // every row so far: the next join's epoch is rows+1
	latestLeft *time.Time
}

type activeRow struct {
	id        uuid.UUID
	enteredAt time.Time
	epoch     int
}

type batchState struct {
	q       *dbsqlc.Queries
	pairs   map[pairKey]*pairState
	loaded  map[string]bool // keys whose rows are loaded
	touched map[uuid.UUID]time.Time
	out     projections.Output
	// from is the ACTIVITY sequence of the message being evaluated: the
	// runner files derived messages under that message's partition.
	from  uint64
	cache *historyCache
}

// Apply implements projections.Projector.
func (p *Projector) Apply(ctx context.Context, tx pgx.Tx, msgs []bus.Msg) (projections.Output, error) {
	q := dbsqlc.New(tx)
	acts := make([]*streams.Activity, 0, len(msgs))
	for _, m := range msgs {
		var a streams.Activity
		if err := json.Unmarshal(m.Data, &a); err != nil {
			p.log.Error("dropping undecodable activity", "seq", m.Seq, "err", err)
			acts = append(acts, nil)
			continue
		}
		acts = append(acts, &a)
	}
	disabled, err := p.disabled(ctx, q)
	if err != nil {
		return projections.Output{}, err
	}
	st := &batchState{q: q, pairs: map[pairKey]*pairState{}, loaded: map[string]bool{}, touched: map[uuid.UUID]time.Time{}}
	keys := keysOf(acts)
	if err := st.load(ctx, keys, p.reg.bucketIDs()); err != nil {
		return projections.Output{}, err
	}
	cands := p.candidates(acts)
	if st.cache, err = prefetch(ctx, q, keys, countedEvents(cands)); err != nil {
		return projections.Output{}, err
	}
	for i, a := range acts {
		if a == nil {
			continue
		}
		for _, f := range a.Folds {
			if err := st.fold(ctx, f, a.Event.ReceivedAt, p.reg.bucketIDs()); err != nil {
				return projections.Output{}, err
			}
		}
		if a.Event.Type == streams.TypeDelete && a.Contact.DeletedAt != nil {
			at := a.Event.ReceivedAt.UTC()
			if err := q.BucketMembershipsSoftDeleteKey(ctx, dbsqlc.BucketMembershipsSoftDeleteKeyParams{UserID: a.Key, At: &at}); err != nil {
				return projections.Output{}, fmt.Errorf("drop memberships of deleted contact: %w", err)
			}
			for k := range st.pairs {
				if k.user == a.Key {
					delete(st.pairs, k)
				}
			}
			delete(st.loaded, a.Key)
			continue
		}
		if err := p.evaluate(ctx, st, a, cands[i], msgs[i].Seq, disabled); err != nil {
			return projections.Output{}, err
		}
	}
	if len(st.touched) > 0 {
		var t dbsqlc.BucketMembershipsTouchParams
		for id, at := range st.touched {
			t.Ids = append(t.Ids, id.String())
			t.Ats = append(t.Ats, at)
		}
		if err := q.BucketMembershipsTouch(ctx, t); err != nil {
			return projections.Output{}, fmt.Errorf("touch memberships: %w", err)
		}
	}
	return st.out, nil
}

func (p *Projector) disabled(ctx context.Context, q *dbsqlc.Queries) (map[string]bool, error) {
	rows, err := q.BucketConfigsAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("read bucket configs: %w", err)
	}
	off := map[string]bool{}
	for _, r := range rows {
		if !r.Enabled {
			off[r.BucketID] = true
		}
	}
	return off, nil
}

// candidates are, per activity, the buckets its event may change (none for
// activities that are not evaluated).
func (p *Projector) candidates(acts []*streams.Activity) [][]*Bucket {
	out := make([][]*Bucket, len(acts))
	for i, a := range acts {
		if a == nil || !a.Stored || a.Event.Type != streams.TypeTrack || a.Event.Engine() || a.Contact.DeletedAt != nil {
			continue
		}
		out[i] = p.reg.Candidates(a.Event.Name, objectKeys(a.Event.EventProperties), objectKeys(a.Event.ContactProperties))
	}
	return out
}

// countedEvents are the event names the batch's candidate buckets count.
func countedEvents(cands [][]*Bucket) []string {
	seen := map[string]bool{}
	var names []string
	for _, bs := range cands {
		for _, b := range bs {
			for _, n := range b.events {
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
	}
	return names
}

func keysOf(acts []*streams.Activity) []string {
	seen := map[string]bool{}
	var keys []string
	for _, a := range acts {
		if a == nil || seen[a.Key] {
			continue
		}
		seen[a.Key] = true
		keys = append(keys, a.Key)
	}
	return keys
}

func (st *batchState) load(ctx context.Context, keys, buckets []string) error {
	var fresh []string
	for _, k := range keys {
		if !st.loaded[k] {
			fresh = append(fresh, k)
			st.loaded[k] = true
		}
	}
	if len(fresh) == 0 || len(buckets) == 0 {
		return nil
	}
	rows, err := st.q.BucketMembershipsOfKeys(ctx, dbsqlc.BucketMembershipsOfKeysParams{UserIds: fresh, BucketIds: buckets})
	if err != nil {
		return fmt.Errorf("read memberships: %w", err)
	}
	for _, r := range rows {
		st.pair(r.UserID, r.BucketID).add(r)
	}
	return nil
}

// add counts one membership row of the pair: every row raises the next
// epoch, the live active one is the membership, the latest leave gates
// re-entry.
func (ps *pairState) add(r dbsqlc.BucketMembershipsOfKeysRow) {
	ps.rows++
	if r.Status == "active" && !r.Deleted {
		ps.active = &activeRow{id: r.ID, enteredAt: r.EnteredAt, epoch: int(r.EntryCount)}
	}
	if r.LeftAt != nil && (ps.latestLeft == nil || r.LeftAt.After(*ps.latestLeft)) {
		t := *r.LeftAt
		ps.latestLeft = &t
	}
}

// joinParams is the active row a join inserts (spec 10 §4.3): expiry
// from the criteria's window when the bucket asks for it, maxDwell
// deadline, the writer's source and email.
func joinParams(b *Bucket, id uuid.UUID, key, email, source string, at time.Time) dbsqlc.BucketMembershipJoinParams {
	p := dbsqlc.BucketMembershipJoinParams{ID: id, UserID: key, BucketID: b.ID(), At: at, Source: ptr(source)}
	if email != "" {
		p.UserEmail = &email
	}
	if w := b.ExpiryWindow(); w != nil {
		t := at.Add(*w)
		p.ExpiresAt = &t
	}
	if b.meta.MaxDwell > 0 {
		t := at.Add(b.meta.MaxDwell)
		p.MaxDwellAt = &t
	}
	return p
}

func (st *batchState) pair(user, bucket string) *pairState {
	k := pairKey{user, bucket}
	ps := st.pairs[k]
	if ps == nil {
		ps = &pairState{}
		st.pairs[k] = ps
	}
	return ps
}

// fold moves a linked or merged contact's memberships to its key (spec 10
// §2.3 rule 4) and reloads both keys.
func (st *batchState) fold(ctx context.Context, f streams.Fold, at time.Time, buckets []string) error {
	if err := st.q.BucketMembershipsLeaveClashing(ctx, dbsqlc.BucketMembershipsLeaveClashingParams{FromKey: f.From, ToKey: f.To, At: &at}); err != nil {
		return fmt.Errorf("fold memberships: %w", err)
	}
	if err := st.q.BucketMembershipsRekey(ctx, dbsqlc.BucketMembershipsRekeyParams{FromKey: f.From, ToKey: f.To, At: at}); err != nil {
		return fmt.Errorf("fold memberships: %w", err)
	}
	for k := range st.pairs {
		if k.user == f.From || k.user == f.To {
			delete(st.pairs, k)
		}
	}
	delete(st.loaded, f.From)
	delete(st.loaded, f.To)
	if st.cache != nil {
		st.cache.forget(f.From, f.To)
	}
	return st.load(ctx, []string{f.To}, buckets)
}

// evaluate runs the candidates of one applied event (spec 10 §4.4).
func (p *Projector) evaluate(ctx context.Context, st *batchState, a *streams.Activity, cands []*Bucket, seq uint64, disabled map[string]bool) error {
	e := &a.Event
	if !a.Stored || e.Type != streams.TypeTrack || e.Engine() || a.Contact.DeletedAt != nil {
		return nil
	}
	st.from = seq
	if len(cands) == 0 {
		return nil
	}
	props, err := streams.DecodeObject(a.Contact.Properties)
	if err != nil {
		return bus.Permanent(fmt.Errorf("contact %s properties: %w", a.ContactID, err))
	}
	at := e.ReceivedAt.UTC()
	in := condition.Input{Key: a.Key, Email: deref(a.Contact.Email), Properties: props, Now: at}
	hist := &history{q: st.q, maxSeq: int64(a.Seq), cache: st.cache}
	if err := st.load(ctx, []string{a.Key}, p.reg.bucketIDs()); err != nil {
		return err
	}
	for _, b := range cands {
		if disabled[b.ID()] {
			continue
		}
		is, err := condition.Evaluate(ctx, b.criteria(), in, hist)
		if err != nil {
			return fmt.Errorf("evaluate bucket %s: %w", b.ID(), err)
		}
		// Most evaluations change nothing for a pair never joined: look it
		// up without creating state.
		ps := st.pairs[pairKey{a.Key, b.ID()}]
		if ps == nil {
			if !is {
				continue
			}
			ps = st.pair(a.Key, b.ID())
		}
		switch {
		case ps.active == nil && is:
			if err := p.join(ctx, st, ps, b, a, at); err != nil {
				return err
			}
		case ps.active != nil && is:
			st.touched[ps.active.id] = at
		case ps.active != nil && !is:
			if err := p.leave(ctx, st, ps, b, a, at); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Projector) join(ctx context.Context, st *batchState, ps *pairState, b *Bucket, a *streams.Activity, at time.Time) error {
	meta := &b.meta // read only; Meta() would copy on the hot path
	params := joinParams(b, uuid.NewSHA1(uuid.NameSpaceOID, []byte("membership\x00"+a.Event.ID+"\x00"+b.ID())),
		a.Key, emailOf(a), SourceEvent, at)
	prior := PriorRows{Count: ps.rows, LatestLeftAt: ps.latestLeft}
	row, err := st.q.BucketMembershipJoin(ctx, params)
	if errors.Is(err, pgx.ErrNoRows) {
		// Another writer joined first: it emits, this one does not.
		return st.reload(ctx, a.Key, b.ID())
	}
	if err != nil {
		return fmt.Errorf("join bucket %s: %w", b.ID(), err)
	}
	ps.active = &activeRow{id: row.ID, enteredAt: at, epoch: int(row.EntryCount)}
	ps.rows = int(row.EntryCount)
	if meta.FastExpiry && params.ExpiresAt != nil {
		// Armed before the join is emitted (§4.4): the timer rides the
		// same outbox, so a committed join always has its timer.
		timer, err := expiryTimer(Expiry{RowID: row.ID.String(), BucketID: b.ID(), Key: a.Key, ContactID: a.ContactID,
			Email: deref(params.UserEmail), ArmedExpiresAt: *params.ExpiresAt})
		if err != nil {
			return err
		}
		st.out.Outbox = append(st.out.Outbox, timer)
		st.out.OutboxFrom = append(st.out.OutboxFrom, st.from)
	}
	if ShouldEmitJoin(b, prior, at) {
		p.emit(st, b, a, "entered", int(row.EntryCount), "", at)
	}
	return nil
}

func (p *Projector) leave(ctx context.Context, st *batchState, ps *pairState, b *Bucket, a *streams.Activity, at time.Time) error {
	meta := &b.meta // read only
	if meta.MinDwell > 0 && at.Sub(ps.active.enteredAt) < meta.MinDwell {
		deadline := ps.active.enteredAt.Add(meta.MinDwell)
		if err := st.q.BucketMembershipDefer(ctx, dbsqlc.BucketMembershipDeferParams{ID: ps.active.id, ExpiresAt: &deadline, At: &at}); err != nil {
			return fmt.Errorf("defer leave of bucket %s: %w", b.ID(), err)
		}
		return nil
	}
	epoch, err := st.q.BucketMembershipLeave(ctx, dbsqlc.BucketMembershipLeaveParams{ID: ps.active.id, At: &at})
	if errors.Is(err, pgx.ErrNoRows) {
		return st.reload(ctx, a.Key, b.ID()) // another writer left first
	}
	if err != nil {
		return fmt.Errorf("leave bucket %s: %w", b.ID(), err)
	}
	delete(st.touched, ps.active.id)
	ps.active = nil
	left := at
	ps.latestLeft = &left
	p.emit(st, b, a, "left", int(epoch), "criteria", at)
	return nil
}

// reload re-reads one pair after another writer changed it.
func (st *batchState) reload(ctx context.Context, key, bucket string) error {
	delete(st.pairs, pairKey{key, bucket})
	rows, err := st.q.BucketMembershipsOfKeys(ctx, dbsqlc.BucketMembershipsOfKeysParams{UserIds: []string{key}, BucketIds: []string{bucket}})
	if err != nil {
		return fmt.Errorf("read memberships: %w", err)
	}
	ps := st.pair(key, bucket)
	for _, r := range rows {
		ps.add(r)
	}
	return nil
}

// emit queues a transition event for EVENTS (spec 10 §4.5) in the
// batch's outbox.
func (p *Projector) emit(st *batchState, b *Bucket, a *streams.Activity, kind string, epoch int, reason string, at time.Time) {
	msgs, err := p.reg.transitionMsgs(b, a.Key, a.ContactID, emailOf(a), kind, epoch, SourceEvent, reason, at)
	if err != nil {
		p.log.Error("encode transition", "bucket", b.ID(), "key", a.Key, "err", err)
		return
	}
	for _, m := range msgs {
		st.out.Outbox = append(st.out.Outbox, m)
		st.out.OutboxFrom = append(st.out.OutboxFrom, st.from)
	}
}

// emailOf is the contact's email, else the email the event carried (the
// reference used the event's raw email only; spec 10 §1.2 flaw).
func emailOf(a *streams.Activity) string {
	if a.Contact.Email != nil {
		return *a.Contact.Email
	}
	return strings.ToLower(strings.TrimSpace(a.Event.Email))
}

func objectKeys(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func ptr(s string) *string { return &s }

// history answers the condition language's history questions from
// Postgres, as of the evaluated event's position in EVENTS. Pairs of
// (key, event name) prefetched for a batch are answered from memory.
type history struct {
	q      *dbsqlc.Queries
	maxSeq int64
	cache  *historyCache
}

type evRow struct {
	seq int64
	at  time.Time
}

// historyCache holds every user_events row of some keys for some event
// names, read in one statement for a whole batch.
type historyCache struct {
	keys, events map[string]bool
	rows         map[string][]evRow // key + "\x00" + event
}

func (h *history) CountEvents(ctx context.Context, key, eventName string, since *time.Time) (int64, error) {
	if c := h.cache; c != nil && c.keys[key] && c.events[eventName] {
		rows := c.rows[key+"\x00"+eventName] // sorted by stream sequence
		upto := sort.Search(len(rows), func(i int) bool { return rows[i].seq > h.maxSeq })
		if since == nil {
			return int64(upto), nil
		}
		var n int64
		for _, r := range rows[:upto] {
			if !r.at.Before(*since) {
				n++
			}
		}
		return n, nil
	}
	p := dbsqlc.UserEventCountSinceParams{UserID: key, Event: eventName, MaxSeq: &h.maxSeq}
	if since != nil {
		p.Since = *since
	}
	n, err := h.q.UserEventCountSince(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

// prefetch reads the history the batch's evaluations will count.
func prefetch(ctx context.Context, q *dbsqlc.Queries, keys, events []string) (*historyCache, error) {
	c := &historyCache{keys: map[string]bool{}, events: map[string]bool{}, rows: map[string][]evRow{}}
	if len(keys) == 0 || len(events) == 0 {
		return c, nil
	}
	rows, err := q.UserEventsForEvaluation(ctx, dbsqlc.UserEventsForEvaluationParams{UserIds: keys, Events: events})
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	for _, k := range keys {
		c.keys[k] = true
	}
	for _, e := range events {
		c.events[e] = true
	}
	for _, r := range rows {
		// A row without a stream position always counts.
		seq := int64(-1)
		if r.StreamSeq != nil {
			seq = *r.StreamSeq
		}
		k := r.UserID + "\x00" + r.Event
		c.rows[k] = append(c.rows[k], evRow{seq: seq, at: r.OccurredAt})
	}
	for _, rows := range c.rows {
		sort.Slice(rows, func(i, j int) bool { return rows[i].seq < rows[j].seq })
	}
	return c, nil
}

// forget drops keys whose rows moved (a fold) so they are read again.
func (c *historyCache) forget(keys ...string) {
	for _, k := range keys {
		delete(c.keys, k)
	}
}

// LatestEmail finds nothing until the email sends table exists; buckets
// reject email_engagement criteria anyway (spec 10 §4.1 rule 6).
func (h *history) LatestEmail(context.Context, string, string) (condition.EmailState, error) {
	return condition.EmailState{}, nil
}

// bucketIDs are the ids of every registered bucket.
func (r *Registry) bucketIDs() []string {
	all := r.All()
	ids := make([]string, len(all))
	for i, b := range all {
		ids[i] = b.ID()
	}
	return ids
}
