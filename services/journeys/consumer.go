package journeys

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/projections"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// live is a live (active or waiting) state of the batch's contacts, with
// its pending blocking step when it waits.
type live struct {
	row     dbsqlc.JourneyState
	pending *dbsqlc.JourneyStep
}

type pairKey struct{ key, journey string }

// batch is the journeys consumer's view of one transaction.
type batch struct {
	s       *Service
	q       *dbsqlc.Queries
	w       *writes
	out     projections.Output
	live    map[string][]*live // by contact key
	prior   map[pairKey]journey.PriorStates
	unsub   map[string]bool
	configs map[string]bool
	// steps caches the step logs read or written in this transaction, so
	// a state run twice in a batch (enrolled, then resumed by a later
	// event) is read once; fresh states have none to read.
	steps map[uuid.UUID][]dbsqlc.JourneyStep
	fresh map[uuid.UUID]bool
	// staleKeys are keys history folded onto in this batch: their prior
	// states are re-read before an enrolment (the batch-start read missed
	// the rows folded in).
	staleKeys map[string]bool
	// zones holds contacts.timezone of the batch's enrolling contacts.
	zones map[uuid.UUID]string
	// blocked are pairs with a soft-deleted live row and enrolled the
	// (journey, event) pairs already enrolled: what the unique indexes
	// would refuse, decided here because new states are inserted when the
	// batch ends.
	blocked  map[pairKey]bool
	enrolled map[pairKey]bool // {event id, journey id}
}

// Apply implements projections.Projector: for each activity, in order,
// history folds, exits (spec 10 §1.4, against the states that existed
// before the event), resumed waits, then enrolments (§5.2).
func (s *Service) Apply(ctx context.Context, tx pgx.Tx, msgs []bus.Msg) (projections.Output, error) {
	q := dbsqlc.New(tx)
	acts := make([]*streams.Activity, len(msgs))
	var keys []string
	seen := map[string]bool{}
	for i, m := range msgs {
		var a streams.Activity
		if err := json.Unmarshal(m.Data, &a); err != nil {
			s.log.Error("dropping undecodable activity", "seq", m.Seq, "err", err)
			continue
		}
		acts[i] = &a
		if !seen[a.Key] && a.Key != "" {
			seen[a.Key] = true
			keys = append(keys, a.Key)
		}
	}
	b := &batch{s: s, q: q, w: &writes{}, live: map[string][]*live{}, prior: map[pairKey]journey.PriorStates{}, unsub: map[string]bool{},
		steps: map[uuid.UUID][]dbsqlc.JourneyStep{}, fresh: map[uuid.UUID]bool{}, zones: map[uuid.UUID]string{}, staleKeys: map[string]bool{},
		blocked: map[pairKey]bool{}, enrolled: map[pairKey]bool{}}
	if err := b.loadLive(ctx, keys); err != nil {
		return projections.Output{}, err
	}
	if err := b.loadGuards(ctx, acts); err != nil {
		return projections.Output{}, err
	}
	for i, a := range acts {
		if a == nil {
			continue
		}
		if err := b.apply(ctx, a, msgs[i].Seq); err != nil {
			return projections.Output{}, err
		}
	}
	// Exits and resumes that ran no journey left their logs here.
	if err := b.w.flush(ctx, q); err != nil {
		return projections.Output{}, err
	}
	if after := b.w.after; len(after) > 0 {
		b.out.AfterPublish = func(context.Context) {
			for _, f := range after {
				f()
			}
		}
	}
	return b.out, nil
}

func (b *batch) loadLive(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	rows, err := b.q.JourneyLiveStatesLock(ctx, keys)
	if err != nil {
		return fmt.Errorf("lock journey states: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(rows))
	byID := make(map[uuid.UUID]*live, len(rows))
	for i, r := range rows {
		l := &live{row: r}
		ids[i] = r.ID
		byID[r.ID] = l
		b.live[r.UserID] = append(b.live[r.UserID], l)
	}
	pend, err := b.q.JourneyPendingSteps(ctx, ids)
	if err != nil {
		return fmt.Errorf("read pending journey steps: %w", err)
	}
	for i := range pend {
		if l := byID[pend[i].StateID]; l != nil {
			l.pending = &pend[i]
		}
	}
	return nil
}

// enrolling reports whether an activity can enrol, exit or resume: a
// stored track event of a live contact that is not a journey lifecycle
// event (bucket transitions do enrol: reactions trigger on them).
func enrolling(a *streams.Activity) bool {
	e := &a.Event
	return a.Stored && e.Type == streams.TypeTrack && e.Name != "" && !e.Lifecycle() && a.Contact.DeletedAt == nil
}

// loadGuards reads, for the pairs the batch's triggers name, the data of
// guards 4 and 5, the contacts' time zones and the admin overrides, in one
// statement.
func (b *batch) loadGuards(ctx context.Context, acts []*streams.Activity) error {
	var p dbsqlc.JourneyPriorStatesParams
	var keys []string
	var contacts []uuid.UUID
	var triggerJourneys, triggerEvents []string
	seen := map[pairKey]bool{}
	for _, a := range acts {
		if a == nil || !enrolling(a) {
			continue
		}
		if js := b.s.reg.Triggered(a.Event.Name); len(js) > 0 {
			if id, err := uuid.Parse(a.ContactID); err == nil {
				contacts = append(contacts, id)
			}
		}
		for _, j := range b.s.reg.Triggered(a.Event.Name) {
			triggerJourneys = append(triggerJourneys, j.ID())
			triggerEvents = append(triggerEvents, a.Event.ID)
			k := pairKey{a.Key, j.ID()}
			if !seen[k] {
				seen[k] = true
				p.Keys = append(p.Keys, a.Key)
				p.JourneyIds = append(p.JourneyIds, j.ID())
				keys = append(keys, a.Key)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if contacts == nil {
		contacts = []uuid.UUID{}
	}
	row, err := b.q.JourneyEnrolGuards(ctx, dbsqlc.JourneyEnrolGuardsParams{Keys: p.Keys, JourneyIds: p.JourneyIds, ContactIds: contacts,
		TriggerJourneyIds: triggerJourneys, TriggerEventIds: triggerEvents})
	if err != nil {
		return fmt.Errorf("read enrolment guards: %w", err)
	}
	var g struct {
		prior []struct {
			Key     string    `json:"key"`
			Journey string    `json:"journey"`
			N       int       `json:"n"`
			Newest  time.Time `json:"newest"`
			Blocked bool      `json:"blocked"`
		}
		unsub []struct {
			Key string `json:"key"`
			All bool   `json:"all"`
		}
		zones []struct {
			ID   uuid.UUID `json:"id"`
			Zone string    `json:"zone"`
		}
		configs []struct {
			Journey string `json:"journey"`
			Enabled bool   `json:"enabled"`
		}
		enrolled []struct {
			Journey string `json:"journey"`
			Event   string `json:"event"`
		}
	}
	for _, part := range []struct {
		name string
		raw  []byte
		into any
	}{
		{"prior states", row.Prior, &g.prior}, {"preferences", row.Unsubscribed, &g.unsub},
		{"time zones", row.Zones, &g.zones}, {"journey configs", row.Configs, &g.configs}, {"enrolled events", row.Enrolled, &g.enrolled},
	} {
		if err := json.Unmarshal(part.raw, part.into); err != nil {
			return fmt.Errorf("decode enrolment guards (%s): %w", part.name, err)
		}
	}
	for _, r := range g.prior {
		newest := r.Newest
		b.prior[pairKey{r.Key, r.Journey}] = journey.PriorStates{Count: r.N, NewestCreatedAt: &newest}
		if r.Blocked {
			b.blocked[pairKey{r.Key, r.Journey}] = true
		}
	}
	for _, r := range g.enrolled {
		b.enrolled[pairKey{r.Event, r.Journey}] = true
	}
	for _, r := range g.unsub {
		b.unsub[r.Key] = r.All
	}
	for _, r := range g.zones {
		b.zones[r.ID] = r.Zone
	}
	b.configs = make(map[string]bool, len(g.configs))
	for _, r := range g.configs {
		b.configs[r.Journey] = r.Enabled
	}
	return nil
}

func (b *batch) apply(ctx context.Context, a *streams.Activity, from uint64) error {
	for _, f := range a.Folds {
		if err := b.fold(ctx, f, a); err != nil {
			return err
		}
	}
	if !enrolling(a) {
		return nil
	}
	now := b.s.clock()
	e := &a.Event
	props, err := streams.DecodeObject(e.EventProperties)
	if err != nil {
		props = map[string]any{} // the contacts projection stored it; treat as empty
	}
	// Exits first: only states that existed before this event (spec 10
	// §1.4); journey_configs.enabled is ignored here.
	states := b.live[a.Key]
	kept := states[:0]
	for _, l := range states {
		j, ok := b.s.reg.Get(l.row.JourneyID)
		if !ok || !j.HasExitOn() || !j.ExitMatches(e.Name, props) {
			kept = append(kept, l)
			continue
		}
		// The row is locked by this transaction and live: it exits.
		l.row.Status, l.row.ExitedAt, l.row.UpdatedAt = StatusExited, &now, now
		b.w.touch(&l.row)
		b.w.log(l.row.ID, l.row.CurrentNodeID, "", StatusExited, map[string]string{"event": e.Name, "eventId": e.ID}, now)
		b.s.metrics.exited.WithLabelValues(l.row.JourneyID).Inc()
	}
	b.live[a.Key] = kept
	// Waits this event ends: same contact, same name, published after the
	// wait began.
	for _, l := range b.live[a.Key] {
		p := l.pending
		if p == nil || p.Kind != kindWait || deref(p.WaitEvent) != e.Name || !after(p, a) {
			continue
		}
		if _, ok := b.s.reg.Get(l.row.JourneyID); !ok {
			// Not registered in this process (a rolling deploy, a changed
			// ENABLED_JOURNEYS): the wait stays pending for its timer.
			continue
		}
		f := false
		res, _ := json.Marshal(stepResult{TimedOut: &f, EventID: e.ID})
		if err := b.resume(ctx, l, res, now, "event"); err != nil {
			return err
		}
		if err := b.run(ctx, l, a.Seq, now, from); err != nil {
			return err
		}
	}
	// Enrolments.
	for _, j := range b.s.reg.Triggered(e.Name) {
		if err := b.enrol(ctx, j, a, props, now, from); err != nil {
			return err
		}
	}
	return nil
}

// after reports whether a's event was published after wait p began.
func after(p *dbsqlc.JourneyStep, a *streams.Activity) bool {
	if p.WaitAfterSeq != nil {
		return a.Seq > uint64(*p.WaitAfterSeq)
	}
	return p.WaitAfterAt != nil && a.Event.ReceivedAt.After(*p.WaitAfterAt)
}

// resume resolves l's pending step with res. The state's status is
// written once, by the run that follows (waiting again, completed, failed).
func (b *batch) resume(ctx context.Context, l *live, res json.RawMessage, now time.Time, cause string) error {
	steps, err := b.stepsOf(ctx, l)
	if err != nil {
		return err
	}
	n := l.pending.Step
	if int(n) >= len(steps) || steps[n].Step != n {
		return fmt.Errorf("journey state %s: pending step %d is not in its log", l.row.ID, n)
	}
	steps[n].Result, steps[n].ResolvedAt = res, &now
	b.w.resolve(l.row.ID, n, res, now)
	b.w.log(l.row.ID, l.row.CurrentNodeID, l.row.CurrentNodeID, "resumed", res, now)
	l.pending = nil
	l.row.Status = StatusActive
	b.s.metrics.resumed.WithLabelValues(l.row.JourneyID, cause).Inc()
	return nil
}

// stepsOf is l's step log: cached, empty for a state enrolled in this
// transaction, else read once.
func (b *batch) stepsOf(ctx context.Context, l *live) ([]dbsqlc.JourneyStep, error) {
	if steps, ok := b.steps[l.row.ID]; ok || b.fresh[l.row.ID] {
		return steps, nil
	}
	steps, err := b.q.JourneySteps(ctx, l.row.ID)
	if err != nil {
		return nil, fmt.Errorf("read journey steps: %w", err)
	}
	b.steps[l.row.ID] = steps
	return steps, nil
}

// run executes l's journey and files what it derived under the input
// message from.
func (b *batch) run(ctx context.Context, l *live, seq uint64, now time.Time, from uint64) error {
	j, ok := b.s.reg.Get(l.row.JourneyID)
	if !ok {
		return nil // resume checks registration first; kept as a guard
	}
	steps, err := b.stepsOf(ctx, l)
	if err != nil {
		return err
	}
	x := &execution{ctx: ctx, svc: b.s, q: b.q, w: b.w, state: &l.row, j: j, zone: b.s.stateZone(&l.row), steps: steps, now: now, afterSeq: seq}
	oc, err := x.execute()
	if err != nil {
		return err
	}
	b.steps[l.row.ID] = x.steps
	for _, m := range b.w.out {
		b.out.Outbox = append(b.out.Outbox, m)
		b.out.OutboxFrom = append(b.out.OutboxFrom, from)
	}
	b.w.out = nil
	switch oc.status {
	case StatusWaiting:
		l.row.Status = StatusWaiting
		l.pending = oc.pending
	case StatusCompleted, StatusFailed:
		b.drop(l)
	}
	return nil
}

func (b *batch) drop(l *live) {
	states := b.live[l.row.UserID]
	for i, s := range states {
		if s == l {
			b.live[l.row.UserID] = append(states[:i:i], states[i+1:]...)
			return
		}
	}
}

// enrol applies the guards of spec 10 §5.2 in order and starts a run.
func (b *batch) enrol(ctx context.Context, j *journey.Journey, a *streams.Activity, props map[string]any, now time.Time, from uint64) error {
	scalar := scalarProps(props)
	var cfg *bool
	if v, ok := b.configs[j.ID()]; ok {
		cfg = &v
	}
	skip := func(reason string) error {
		b.s.metrics.skipped.WithLabelValues(j.ID(), reason).Inc()
		b.s.log.Debug("journey enrolment skipped", "journey", j.ID(), "user", a.Key, "event", a.Event.ID, "reason", reason)
		return nil
	}
	if ok, reason := journey.CheckTrigger(j, cfg, scalar); !ok {
		return skip(reason)
	}
	pk := pairKey{a.Key, j.ID()}
	if err := b.refreshPrior(ctx, pk); err != nil {
		return err
	}
	if ok, reason := journey.EntryAllowed(j, b.prior[pk], now); !ok {
		return skip(reason)
	}
	if b.unsub[a.Key] {
		return skip(journey.ReasonUnsubscribed)
	}
	for _, l := range b.live[a.Key] {
		if l.row.JourneyID == j.ID() {
			return skip(journey.ReasonAlreadyActive)
		}
	}
	// What the unique indexes would refuse: a soft-deleted live run of the
	// pair, or this event's earlier enrolment (a replay of ACTIVITY).
	if b.blocked[pk] || b.enrolled[pairKey{a.Event.ID, j.ID()}] {
		return skip(journey.ReasonAlreadyActive)
	}
	ctxJSON, err := json.Marshal(scalar)
	if err != nil {
		return fmt.Errorf("encode journey context: %w", err)
	}
	cid, err := uuid.Parse(a.ContactID)
	var contactID *uuid.UUID
	column := ""
	if err == nil {
		contactID = &cid
		column = b.zones[cid]
	}
	contactProps, _ := streams.DecodeObject(a.Contact.Properties)
	zone := b.s.resolveZone(j, column, contactProps)
	// A run of the pair that ended in this transaction is only ended in
	// memory: write it first, or its row still holds the pair's unique
	// live slot and the enrolment would read as already_active.
	if b.w.endedPair(a.Key, j.ID()) {
		if err := b.w.flush(ctx, b.q); err != nil {
			return err
		}
	}
	prior := b.prior[pk]
	// The state is inserted when the batch's writes are flushed, as its
	// run left it; everything the run derives refers to it by its id.
	id := derivedID("state", a.Event.ID+"\x00"+j.ID())
	runID := id.String()
	l := &live{row: dbsqlc.JourneyState{
		ID: id, UserID: a.Key, UserEmail: a.Event.Email, JourneyID: j.ID(), ContactID: contactID,
		CurrentNodeID: "start", Status: StatusActive, HatchetRunID: &runID, Context: ctxJSON,
		EntryCount: int32(prior.Count + 1), TriggerEventID: a.Event.ID, Timezone: zone.String(), CreatedAt: now, UpdatedAt: now,
	}}
	b.w.insert(&l.row)
	b.enrolled[pairKey{a.Event.ID, j.ID()}] = true // a repeat of the event in this batch
	row := &l.row
	b.prior[pk] = journey.PriorStates{Count: prior.Count + 1, NewestCreatedAt: &now}
	b.w.log(row.ID, "", row.CurrentNodeID, "enrolled", map[string]string{"event": a.Event.Name, "eventId": a.Event.ID}, now)
	b.s.metrics.enrolled.WithLabelValues(j.ID()).Inc()
	b.fresh[row.ID] = true
	b.live[a.Key] = append(b.live[a.Key], l)
	return b.run(ctx, l, a.Seq, now, from)
}

// fold moves states from one key to another (spec 10 §2.3.3) and re-reads
// the target's live states.
func (b *batch) fold(ctx context.Context, f streams.Fold, a *streams.Activity) error {
	// Write what this batch changed first: the rekey and the reload below
	// read the rows.
	if err := b.w.flush(ctx, b.q); err != nil {
		return err
	}
	var cid *uuid.UUID
	if id, err := uuid.Parse(a.ContactID); err == nil {
		cid = &id
	}
	email := ""
	if a.Contact.Email != nil {
		email = *a.Contact.Email
	}
	if _, err := b.q.JourneyStatesRekey(ctx, dbsqlc.JourneyStatesRekeyParams{ToKey: f.To, At: b.s.clock(), ToEmail: email, FromKey: f.From, ToContactID: cid}); err != nil {
		return fmt.Errorf("fold journey states: %w", err)
	}
	delete(b.live, f.From)
	delete(b.live, f.To)
	b.staleKeys[f.To] = true
	return b.loadLive(ctx, []string{f.To})
}

// refreshPrior re-reads the prior states of a pair whose key history was
// folded onto in this batch (guard 4 counts the folded rows too).
func (b *batch) refreshPrior(ctx context.Context, pk pairKey) error {
	if !b.staleKeys[pk.key] {
		return nil
	}
	// States enrolled earlier in this batch are in memory until flushed;
	// the read below must count them.
	if err := b.w.flush(ctx, b.q); err != nil {
		return err
	}
	rows, err := b.q.JourneyPriorStates(ctx, dbsqlc.JourneyPriorStatesParams{Keys: []string{pk.key}, JourneyIds: []string{pk.journey}})
	if err != nil {
		return fmt.Errorf("read prior journey states: %w", err)
	}
	b.prior[pk] = journey.PriorStates{}
	for _, r := range rows {
		newest := r.Newest
		b.prior[pk] = journey.PriorStates{Count: int(r.N), NewestCreatedAt: &newest}
	}
	return nil
}

func (s *Service) stateZone(st *dbsqlc.JourneyState) *time.Location {
	if l := s.zone(st.Timezone); l != nil {
		return l
	}
	return s.defaultZone
}

// scalarProps keeps the string, number, boolean and null values: the
// trigger payload of spec 10 §5.2.
func scalarProps(props map[string]any) map[string]any {
	out := make(map[string]any, len(props))
	for k, v := range props {
		switch v.(type) {
		case string, json.Number, float64, bool, nil:
			out[k] = v
		}
	}
	return out
}
