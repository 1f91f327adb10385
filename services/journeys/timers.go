package journeys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// HandleTimer resumes the run a fired timer belongs to: a sleep that ended
// or a wait that timed out. The state row is locked for the whole run; a
// timer for a state that exited, was cancelled, or whose wait an event
// already ended does nothing (DESIGN §3: the handler re-checks state).
//
// What the run derives is stored in journey_outbox in its transaction and
// published after commit; the timer is acknowledged only then, so a crash
// in between redelivers the timer, whose handler publishes the leftovers
// first (under the same message ids) and finds the step resolved.
func (s *Service) HandleTimer(ctx context.Context, m bus.Msg) error {
	var t Timer
	if err := json.Unmarshal(m.Data, &t); err != nil {
		return bus.Permanent(fmt.Errorf("decode journey timer: %w", err))
	}
	id, err := uuid.Parse(t.StateID)
	if err != nil {
		return bus.Permanent(fmt.Errorf("journey timer state id %q: %w", t.StateID, err))
	}
	if err := s.flushOutbox(ctx, id); err != nil {
		return err
	}
	now := s.clock()
	if early := t.DueAt.Sub(now); early > time.Second {
		return bus.RetryAfter(fmt.Errorf("journey timer fired %s early", early), early)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin wake-up: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	q := dbsqlc.New(tx)
	st, err := q.JourneyStateLock(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lock journey state: %w", err)
	}
	if st.Status != StatusWaiting || st.DeletedAt != nil {
		return nil
	}
	steps, err := q.JourneySteps(ctx, id)
	if err != nil {
		return fmt.Errorf("read journey steps: %w", err)
	}
	if t.Step >= len(steps) || steps[t.Step].Result != nil {
		return nil // resolved already (an event ended the wait, or a redelivery)
	}
	p := &steps[t.Step]
	var res stepResult
	switch p.Kind {
	case kindSleep:
		res = stepResult{SleptAt: &p.CreatedAt, ResumedAt: &now}
	case kindWait:
		timedOut := true
		res = stepResult{TimedOut: &timedOut}
	default:
		return bus.Permanent(fmt.Errorf("journey timer for step %d of kind %s", t.Step, p.Kind))
	}
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode step result: %w", err)
	}
	w := &writes{}
	if err := resolve(ctx, q, w, &st, p, data, now); err != nil {
		return err
	}
	p.Result = data
	s.metrics.resumed.WithLabelValues(st.JourneyID, "timer").Inc()
	if j, ok := s.reg.Get(st.JourneyID); ok {
		x := &execution{ctx: ctx, svc: s, q: q, w: w, state: &st, j: j, zone: s.stateZone(&st), steps: steps, now: now}
		if _, err := x.execute(); err != nil {
			return err
		}
	}
	if err := w.flush(ctx, q); err != nil {
		return err
	}
	var boxID int64
	if len(w.out) > 0 {
		msgs, err := json.Marshal(w.out)
		if err != nil {
			return fmt.Errorf("encode journey outbox: %w", err)
		}
		if boxID, err = q.JourneyOutboxInsert(ctx, dbsqlc.JourneyOutboxInsertParams{StateID: id, Msgs: msgs}); err != nil {
			return fmt.Errorf("store journey outbox: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit wake-up: %w", err)
	}
	if boxID != 0 {
		if err := s.publishBox(ctx, boxID, w.out); err != nil {
			return err
		}
	}
	for _, f := range w.after {
		f()
	}
	return nil
}

// flushOutbox publishes what an earlier attempt for the state committed but
// did not publish.
func (s *Service) flushOutbox(ctx context.Context, stateID uuid.UUID) error {
	rows, err := dbsqlc.New(s.pool).JourneyOutboxForState(ctx, stateID)
	if err != nil {
		return fmt.Errorf("read journey outbox: %w", err)
	}
	for _, r := range rows {
		var msgs []bus.OutMsg
		if err := json.Unmarshal(r.Msgs, &msgs); err != nil {
			return bus.Permanent(fmt.Errorf("decode journey outbox %d: %w", r.ID, err))
		}
		if err := s.publishBox(ctx, r.ID, msgs); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) publishBox(ctx context.Context, id int64, msgs []bus.OutMsg) error {
	if err := s.pub.PublishAsyncBatch(ctx, msgs); err != nil {
		return fmt.Errorf("publish journey outbox: %w", err)
	}
	if err := dbsqlc.New(s.pool).JourneyOutboxDelete(ctx, id); err != nil {
		return fmt.Errorf("clear journey outbox: %w", err)
	}
	return nil
}
