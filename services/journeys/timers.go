package journeys

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// HandleTimer resumes the run one fired timer belongs to (HandleTimers
// with a batch of one).
func (s *Service) HandleTimer(ctx context.Context, m bus.Msg) error {
	return s.HandleTimers(ctx, []bus.Msg{m})[0]
}

// HandleTimers resumes the runs a batch of fired timers belong to: sleeps
// that ended and waits that timed out, in one transaction that locks their
// state rows (so a state is never run by two workers at once). A timer for
// a state that exited, was cancelled, or whose wait an event already ended
// does nothing (DESIGN §3: the handler re-checks state).
//
// What the runs derive is stored in journey_outbox in the transaction and
// published after commit; the timers are acknowledged only then, so a crash
// in between redelivers them, and the redelivery publishes the leftovers
// first (under the same message ids) and finds the steps resolved.
func (s *Service) HandleTimers(ctx context.Context, msgs []bus.Msg) []error {
	errs := make([]error, len(msgs))
	timers := make([]*Timer, len(msgs))
	var ids []uuid.UUID
	for i, m := range msgs {
		var t Timer
		if err := json.Unmarshal(m.Data, &t); err != nil {
			errs[i] = bus.Permanent(fmt.Errorf("decode journey timer: %w", err))
			continue
		}
		id, err := uuid.Parse(t.StateID)
		if err != nil {
			errs[i] = bus.Permanent(fmt.Errorf("journey timer state id %q: %w", t.StateID, err))
			continue
		}
		timers[i] = &t
		ids = append(ids, id)
	}
	fail := func(err error) []error {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	if len(ids) == 0 {
		return errs
	}
	// Publish what an earlier attempt committed but did not: a redelivery,
	// or a timer replayed from the dead letters (one indexed lookup).
	if err := s.flushOutboxes(ctx, ids); err != nil {
		return fail(err)
	}
	now := s.clock()
	for i, t := range timers {
		if t != nil && t.DueAt.Sub(now) > time.Second {
			early := t.DueAt.Sub(now)
			errs[i] = bus.RetryAfter(fmt.Errorf("journey timer fired %s early", early), early)
			timers[i] = nil
		}
	}
	// Where EVENTS stands before the runs: waits they begin count later
	// events only.
	var position uint64
	if s.position != nil {
		if p, err := s.position(ctx); err == nil {
			position = p
		} else {
			s.log.Warn("read the EVENTS position; waits compare receive times", "err", err)
		}
	}
	out, after, boxIDs, err := s.wake(ctx, timers, ids, now, position, errs)
	if err != nil {
		if len(msgs) > 1 {
			// One state's failure must not hold the others back: each
			// timer again, in a transaction of its own.
			for i, m := range msgs {
				if errs[i] == nil {
					errs[i] = s.HandleTimers(ctx, []bus.Msg{m})[0]
				}
			}
			return errs
		}
		return fail(err)
	}
	if len(out) > 0 {
		if err := s.pub.PublishAsyncBatch(ctx, out); err != nil {
			return fail(fmt.Errorf("publish journey outbox: %w", err))
		}
		if err := dbsqlc.New(s.pool).JourneyOutboxDeleteMany(ctx, boxIDs); err != nil {
			return fail(fmt.Errorf("clear journey outbox: %w", err))
		}
	}
	for _, f := range after {
		f()
	}
	return errs
}

// wake runs the batch's transaction and returns what to publish after it.
// A timer of a journey this process does not have gets its error in errs
// (retried later, by a process that has it); its step stays pending.
func (s *Service) wake(ctx context.Context, timers []*Timer, ids []uuid.UUID, now time.Time, position uint64, errs []error) (out []bus.OutMsg, after []func(), boxIDs []int64, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("begin wake-up: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	q := dbsqlc.New(tx)
	rows, err := q.JourneyStatesLockMany(ctx, ids)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("lock journey states: %w", err)
	}
	states := make(map[uuid.UUID]*dbsqlc.JourneyState, len(rows))
	for i := range rows {
		states[rows[i].ID] = &rows[i]
	}
	stepRows, err := q.JourneyStepsOfMany(ctx, ids)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read journey steps: %w", err)
	}
	steps := map[uuid.UUID][]dbsqlc.JourneyStep{}
	for _, st := range stepRows {
		steps[st.StateID] = append(steps[st.StateID], st)
	}
	w := &writes{}
	var box dbsqlc.JourneyOutboxInsertManyParams
	for _, t := range timers {
		if t == nil {
			continue
		}
		id := uuid.MustParse(t.StateID)
		st := states[id]
		if st == nil || st.Status != StatusWaiting || st.DeletedAt != nil {
			continue // exited, cancelled, finished or gone
		}
		log := steps[id]
		if t.Step >= len(log) || log[t.Step].Result != nil || int(log[t.Step].Step) != t.Step {
			continue // resolved already (an event ended the wait, or a redelivery)
		}
		j, ok := s.reg.Get(st.JourneyID)
		if !ok {
			// Not registered here (a rolling deploy, a changed
			// ENABLED_JOURNEYS): leave the wait pending for a process
			// that has the journey.
			for i := range timers {
				if timers[i] == t {
					errs[i] = bus.RetryAfter(fmt.Errorf("journey %s is not registered in this process", st.JourneyID), time.Minute)
				}
			}
			continue
		}
		p := &log[t.Step]
		var res stepResult
		switch p.Kind {
		case kindSleep:
			res = stepResult{SleptAt: &p.CreatedAt, ResumedAt: &now}
		case kindWait:
			timedOut := true
			res = stepResult{TimedOut: &timedOut}
		default:
			continue // not a blocking step: nothing to wake
		}
		data, err := json.Marshal(res)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("encode step result: %w", err)
		}
		p.Result, p.ResolvedAt = data, &now
		w.resolve(id, p.Step, data, now)
		w.log(id, st.CurrentNodeID, st.CurrentNodeID, "resumed", json.RawMessage(data), now)
		s.metrics.resumed.WithLabelValues(st.JourneyID, "timer").Inc()
		st.Status = StatusActive
		first := len(w.out)
		x := &execution{ctx: ctx, svc: s, q: q, w: w, state: st, j: j, zone: s.stateZone(st), steps: log, now: now, afterSeq: position}
		if _, err := x.execute(); err != nil {
			return nil, nil, nil, err
		}
		steps[id] = x.steps
		if derived := w.out[first:]; len(derived) > 0 {
			data, err := json.Marshal(derived)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("encode journey outbox: %w", err)
			}
			box.StateIds = append(box.StateIds, id)
			box.Msgs = append(box.Msgs, string(data))
		}
	}
	if err := w.flush(ctx, q); err != nil {
		return nil, nil, nil, err
	}
	if len(box.StateIds) > 0 {
		if boxIDs, err = q.JourneyOutboxInsertMany(ctx, box); err != nil {
			return nil, nil, nil, fmt.Errorf("store journey outbox: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, nil, fmt.Errorf("commit wake-up: %w", err)
	}
	return w.out, w.after, boxIDs, nil
}

// flushOutboxes publishes what earlier attempts for the states committed
// but did not publish.
func (s *Service) flushOutboxes(ctx context.Context, stateIDs []uuid.UUID) error {
	q := dbsqlc.New(s.pool)
	rows, err := q.JourneyOutboxForStates(ctx, stateIDs)
	if err != nil {
		return fmt.Errorf("read journey outbox: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	var msgs []bus.OutMsg
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		var m []bus.OutMsg
		if err := json.Unmarshal(r.Msgs, &m); err != nil {
			return fmt.Errorf("decode journey outbox %d: %w", r.ID, err)
		}
		msgs = append(msgs, m...)
		ids = append(ids, r.ID)
	}
	if err := s.pub.PublishAsyncBatch(ctx, msgs); err != nil {
		return fmt.Errorf("publish journey outbox: %w", err)
	}
	if err := q.JourneyOutboxDeleteMany(ctx, ids); err != nil {
		return fmt.Errorf("clear journey outbox: %w", err)
	}
	return nil
}
