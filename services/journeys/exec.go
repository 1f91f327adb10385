package journeys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Step kinds of the step log.
const (
	kindNow        = "now"
	kindSleep      = "sleep"
	kindWait       = "wait"
	kindCheckpoint = "checkpoint"
	kindEmail      = "email"
	kindTrigger    = "trigger"
	kindIdentify   = "identify"
	kindCapture    = "capture"
	kindSubscribed = "subscribed"
	kindHasEvent   = "has_event"
	kindJourneyHis = "journey_history"
	kindEmailHis   = "email_history"
)

// Statuses of journey_states.
const (
	StatusActive    = "active"
	StatusWaiting   = "waiting"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusExited    = "exited"
)

// Statuses lists the state statuses, in lifecycle order.
func Statuses() []string {
	return []string{StatusActive, StatusWaiting, StatusCompleted, StatusFailed, StatusExited}
}

// Timer subjects on TIMERS (DESIGN §3): one schedule subject per (state,
// step), all firing on one due subject the wake-up worker consumes.
const (
	TimerKind       = "journey"
	TimerDueSubject = streams.TimersRoot + ".due." + TimerKind
	timerSchedRoot  = streams.TimersRoot + ".sched." + TimerKind
)

// Timer is the body of a journey wake-up.
type Timer struct {
	StateID string    `json:"stateId"`
	Step    int       `json:"step"`
	DueAt   time.Time `json:"dueAt"`
}

// stepResult is the recorded result of a step; each kind uses some fields.
type stepResult struct {
	At        *time.Time `json:"at,omitempty"`
	SleptAt   *time.Time `json:"sleptAt,omitempty"`
	ResumedAt *time.Time `json:"resumedAt,omitempty"`
	TimedOut  *bool      `json:"timedOut,omitempty"`
	EventID   string     `json:"eventId,omitempty"`
	Bool      *bool      `json:"bool,omitempty"`
	Count     *int       `json:"count,omitempty"`
	Last      *time.Time `json:"last,omitempty"`
	ID        string     `json:"id,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// writes collects what the executions of one transaction derive: steps,
// step results and logs are written in bulk when the transaction ends,
// messages go to the caller's outbox.
type writes struct {
	// steps are new steps in the order recorded; index finds a pending
	// one by (state, step) so a later resolve in the same transaction
	// edits it before it is written.
	steps []dbsqlc.JourneyStep
	index map[stepKey]int
	// pending holds the step results and logs collected so far; flush adds
	// the steps and states and writes it all in one statement.
	pending dbsqlc.JourneyWritesApplyParams
	// states are the stored rows this transaction changed, written once at
	// the end as they were left (the transaction holds them locked).
	states []*dbsqlc.JourneyState
	seen   map[uuid.UUID]int // index in states
	// inserts are the states enrolled in this transaction and not written
	// yet; flush inserts them as their runs left them.
	inserts    []*dbsqlc.JourneyState
	pendingIDs map[uuid.UUID]bool
	out        []bus.OutMsg
	after      []func()
}

type stepKey struct {
	state uuid.UUID
	step  int32
}

// insert adds a state enrolled in this transaction; flush inserts its
// fields as they are then.
func (w *writes) insert(st *dbsqlc.JourneyState) {
	if w.pendingIDs == nil {
		w.pendingIDs = map[uuid.UUID]bool{}
	}
	w.pendingIDs[st.ID] = true
	w.inserts = append(w.inserts, st)
}

// touch marks st as changed; flush writes its fields as they are then. A
// state not inserted yet needs nothing: it is inserted as it is then.
func (w *writes) touch(st *dbsqlc.JourneyState) {
	if w.pendingIDs[st.ID] {
		return
	}
	if w.seen == nil {
		w.seen = map[uuid.UUID]int{}
	}
	if i, ok := w.seen[st.ID]; ok {
		w.states[i] = st // the latest copy of the row wins
		return
	}
	w.seen[st.ID] = len(w.states)
	w.states = append(w.states, st)
}

// endedPair reports whether this transaction ended a run of (key,
// journey) that is not written yet.
func (w *writes) endedPair(key, journeyID string) bool {
	for _, st := range w.states {
		if st.UserID == key && st.JourneyID == journeyID && terminal(st.Status) {
			return true
		}
	}
	return false
}

// terminal reports whether a status ends a state.
func terminal(status string) bool {
	return status == StatusCompleted || status == StatusFailed || status == StatusExited
}

func (w *writes) step(s dbsqlc.JourneyStep) {
	if w.index == nil {
		w.index = map[stepKey]int{}
	}
	w.index[stepKey{s.StateID, s.Step}] = len(w.steps)
	w.steps = append(w.steps, s)
}

// resolve records the result of a pending blocking step: in place when
// this transaction wrote it, else as an update of the stored row.
func (w *writes) resolve(state uuid.UUID, step int32, result json.RawMessage, at time.Time) {
	if i, ok := w.index[stepKey{state, step}]; ok {
		w.steps[i].Result, w.steps[i].ResolvedAt = result, &at
		return
	}
	p := &w.pending
	p.ResolveStateIds = append(p.ResolveStateIds, state)
	p.ResolveSteps = append(p.ResolveSteps, step)
	p.ResolveResults = append(p.ResolveResults, string(result))
	p.ResolveAts = append(p.ResolveAts, at)
}

func (w *writes) log(stateID uuid.UUID, from, to, action string, detail any, at time.Time) {
	d := ""
	if detail != nil {
		b, _ := json.Marshal(detail)
		d = string(b)
	}
	p := &w.pending
	p.LogIds = append(p.LogIds, uuid.Must(uuid.NewV7()))
	p.LogStateIds = append(p.LogStateIds, stateID)
	p.LogFromNodes = append(p.LogFromNodes, from)
	p.LogToNodes = append(p.LogToNodes, to)
	p.LogActions = append(p.LogActions, action)
	p.LogDetails = append(p.LogDetails, d)
	p.LogAts = append(p.LogAts, at)
}

// flush writes the collected new states, steps, step results, changed
// states and logs in one statement; with nothing collected it does
// nothing.
func (w *writes) flush(ctx context.Context, q *dbsqlc.Queries) error {
	p := &w.pending
	if len(w.inserts) == 0 && len(w.steps) == 0 && len(w.states) == 0 && len(p.ResolveStateIds) == 0 && len(p.LogIds) == 0 {
		return nil
	}
	for _, st := range w.inserts {
		p.NewIds = append(p.NewIds, st.ID)
		p.NewUserIds = append(p.NewUserIds, st.UserID)
		p.NewUserEmails = append(p.NewUserEmails, st.UserEmail)
		p.NewJourneyIds = append(p.NewJourneyIds, st.JourneyID)
		contact := ""
		if st.ContactID != nil {
			contact = st.ContactID.String()
		}
		p.NewContactIds = append(p.NewContactIds, contact)
		p.NewNodes = append(p.NewNodes, st.CurrentNodeID)
		p.NewStatuses = append(p.NewStatuses, st.Status)
		p.NewContexts = append(p.NewContexts, string(st.Context))
		p.NewErrs = append(p.NewErrs, deref(st.ErrorMessage))
		p.NewEntryCounts = append(p.NewEntryCounts, st.EntryCount)
		p.NewTriggerEventIds = append(p.NewTriggerEventIds, st.TriggerEventID)
		p.NewTimezones = append(p.NewTimezones, st.Timezone)
		p.NewCompletedAts = append(p.NewCompletedAts, derefTime(st.CompletedAt))
		p.NewExitedAts = append(p.NewExitedAts, derefTime(st.ExitedAt))
		p.NewCreatedAts = append(p.NewCreatedAts, st.CreatedAt)
		p.NewUpdatedAts = append(p.NewUpdatedAts, st.UpdatedAt)
	}
	for _, s := range w.steps {
		p.StepStateIds = append(p.StepStateIds, s.StateID)
		p.StepNumbers = append(p.StepNumbers, s.Step)
		p.StepKinds = append(p.StepKinds, s.Kind)
		p.StepLabels = append(p.StepLabels, deref(s.Label))
		p.StepResults = append(p.StepResults, string(s.Result))
		p.StepDueAts = append(p.StepDueAts, derefTime(s.DueAt))
		p.StepWaitEvents = append(p.StepWaitEvents, deref(s.WaitEvent))
		var seq int64
		if s.WaitAfterSeq != nil {
			seq = *s.WaitAfterSeq
		}
		p.StepWaitAfterSeqs = append(p.StepWaitAfterSeqs, seq)
		p.StepWaitAfterAts = append(p.StepWaitAfterAts, derefTime(s.WaitAfterAt))
		p.StepCreatedAts = append(p.StepCreatedAts, s.CreatedAt)
		p.StepResolvedAts = append(p.StepResolvedAts, derefTime(s.ResolvedAt))
	}
	for _, st := range w.states {
		p.StateIds = append(p.StateIds, st.ID)
		p.StateStatuses = append(p.StateStatuses, st.Status)
		p.StateNodes = append(p.StateNodes, st.CurrentNodeID)
		p.StateErrs = append(p.StateErrs, deref(st.ErrorMessage))
		p.StateCompletedAts = append(p.StateCompletedAts, derefTime(st.CompletedAt))
		p.StateExitedAts = append(p.StateExitedAts, derefTime(st.ExitedAt))
		p.StateAts = append(p.StateAts, st.UpdatedAt)
	}
	inserted, err := q.JourneyWritesApply(ctx, *p)
	if err != nil {
		return fmt.Errorf("write journey steps, states and logs: %w", err)
	}
	if int(inserted) != len(w.inserts) {
		// The enrolment guards mirror the unique indexes; a refusal means
		// a writer outside this consumer's partition order, and the batch
		// must not commit its runs' effects without their states.
		return fmt.Errorf("enrol journeys: %d of %d new states were refused by a unique index", len(w.inserts)-int(inserted), len(w.inserts))
	}
	w.steps, w.index, w.states, w.seen = nil, nil, nil, nil
	w.inserts, w.pendingIDs = nil, nil
	w.pending = dbsqlc.JourneyWritesApplyParams{}
	return nil
}

// execution is one run of a state's journey inside a transaction: the
// journey function replays its recorded steps and records new ones until
// it returns or suspends on a blocking step.
type execution struct {
	ctx   context.Context
	svc   *Service
	q     *dbsqlc.Queries
	w     *writes
	state *dbsqlc.JourneyState
	j     *journey.Journey
	zone  *time.Location
	steps []dbsqlc.JourneyStep
	next  int
	now   time.Time
	// afterSeq is the EVENTS sequence of the event this execution runs on,
	// or the stream's last sequence when a timer woke it (0 when unknown):
	// a wait begun here counts only later events.
	afterSeq uint64

	// runCtx is what ctx.Context() gives journey code: it ends at the run
	// deadline. mu is held by every call of journey code into the runtime
	// (see guarded); shut, set under mu when the run ended or was
	// abandoned, ends any later call (of an abandoned run, or of a
	// goroutine journey code started) before it touches the execution,
	// whose transaction has moved on.
	runCtx context.Context
	mu     sync.Mutex
	shut   bool

	suspended bool
	pending   *dbsqlc.JourneyStep // the blocking step the run suspended on
	fatal     error               // an infrastructure failure: the caller rolls back
	failure   error               // the run cannot go on (non-determinism)
}

// outcome is how an execution ended.
type outcome struct {
	status  string // waiting, completed, failed, or "" when nothing changed
	pending *dbsqlc.JourneyStep
}

// execute runs the journey function once, records what it did and applies
// the outcome to the state row (spec 10 §5.3).
func (x *execution) execute() (outcome, error) {
	var (
		runErr   error
		returned bool
		panicked any
	)
	timeout := x.svc.runTimeout
	runCtx, cancel := context.WithTimeout(x.ctx, timeout)
	defer cancel()
	x.runCtx = runCtx
	user := x.user()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			// recover is nil when the runtime ended the goroutine with
			// Goexit (a suspend), so only a panic of journey code lands here.
			if r := recover(); r != nil {
				panicked = r
			}
		}()
		err := x.j.Func()(journey.NewCtx(guarded{x}), user)
		runErr, returned = err, true
	}()
	// The run is abandoned a grace period after its context ended, so code
	// that honours ctx.Context() can still record how it gave up.
	deadline := time.NewTimer(timeout + runGrace(timeout))
	defer deadline.Stop()
	select {
	case <-done:
	case <-deadline.C:
	}
	// Wait for a call in progress to finish, then shut the runtime to
	// whatever still calls it.
	x.mu.Lock()
	x.shut = true
	x.mu.Unlock()
	select {
	case <-done:
	default:
		return x.abandon(timeout)
	}
	if x.fatal != nil {
		return outcome{}, x.fatal
	}
	at := x.now
	switch {
	case x.failure != nil:
		return x.finish(StatusFailed, x.failure.Error(), at)
	case x.suspended:
		return outcome{status: StatusWaiting, pending: x.pending}, nil
	case panicked != nil:
		return x.finish(StatusFailed, fmt.Sprintf("panic: %v", panicked), at)
	case !returned:
		// runtime.Goexit called by journey code itself.
		return x.finish(StatusFailed, "journey run exited without returning", at)
	case runErr != nil:
		msg := runErr.Error()
		if msg == "" {
			msg = "Unknown error during journey"
		}
		return x.finish(StatusFailed, msg, at)
	default:
		return x.finish(StatusCompleted, "", at)
	}
}

// finish completes or fails a non-terminal state and publishes its
// journey:completed / journey:failed event. A state that became terminal
// meanwhile records nothing (spec 10 §5.3 flaws fixed).
func (x *execution) finish(status, errMsg string, at time.Time) (outcome, error) {
	if terminal(x.state.Status) {
		return outcome{}, nil
	}
	x.state.Status, x.state.UpdatedAt = status, at
	if errMsg != "" {
		x.state.ErrorMessage = &errMsg
	}
	if status == StatusCompleted {
		x.state.CompletedAt = &at
	}
	x.w.touch(x.state)
	var detail any
	if errMsg != "" {
		detail = map[string]string{"error": errMsg}
	}
	x.w.log(x.state.ID, x.state.CurrentNodeID, "", status, detail, at)
	props := map[string]any{"journeyId": x.state.JourneyID, "stateId": x.state.ID.String(), "userId": x.state.UserID}
	if errMsg != "" {
		props["error"] = errMsg
	}
	if msg, ok := x.svc.lifecycleEvent(x.state, "journey:"+status, props, at); ok {
		x.w.out = append(x.w.out, msg)
	}
	if status == StatusCompleted {
		x.svc.metrics.completed.WithLabelValues(x.state.JourneyID).Inc()
	} else {
		x.svc.metrics.failed.WithLabelValues(x.state.JourneyID).Inc()
	}
	return outcome{status: status}, nil
}

// runGrace is how long after its context ends a run may still return: a
// tenth of the timeout, at least 100ms.
func runGrace(timeout time.Duration) time.Duration {
	return max(timeout/10, 100*time.Millisecond)
}

// abandon fails a run whose journey code did not return by its deadline.
// Its goroutine is left behind: Go cannot stop it, but any further call it
// makes into the runtime ends it (guarded), so it records, sends and
// publishes nothing; what it does outside the runtime is its own affair.
func (x *execution) abandon(timeout time.Duration) (outcome, error) {
	x.svc.metrics.abandoned.WithLabelValues(x.state.JourneyID).Inc()
	x.svc.log.Error("journey run abandoned: journey code did not return by the run deadline; pass ctx.Context() to calls that can block",
		"journey", x.state.JourneyID, "state", x.state.ID, "user", x.state.UserID, "timeout", timeout)
	// Steps the run recorded before it stalled stay: they happened, and
	// the state is failed, so no replay will meet them.
	return x.finish(StatusFailed, fmt.Sprintf("journey run did not return within %s (HOGSEND_JOURNEY_RUN_TIMEOUT): "+
		"journey code must not block; pass ctx.Context() to calls that can", timeout), x.now)
}

// guarded is the Runtime journey code sees: each call holds the
// execution's lock, and a call made after the run ended or was abandoned
// at its deadline ends the goroutine instead of touching the execution.
type guarded struct{ x *execution }

func (g guarded) enter() {
	g.x.mu.Lock()
	if g.x.shut {
		g.x.mu.Unlock()
		runtime.Goexit()
	}
}

func (g guarded) leave() { g.x.mu.Unlock() }

// Context is the run's context (journey.Ctx.Context).
func (g guarded) Context() context.Context { return g.x.runCtx }

func (g guarded) Now() time.Time { g.enter(); defer g.leave(); return g.x.Now() }
func (g guarded) Sleep(d time.Duration, label string) journey.Slept {
	g.enter()
	defer g.leave()
	return g.x.Sleep(d, label)
}
func (g guarded) SleepUntil(at time.Time, label string) journey.Slept {
	g.enter()
	defer g.leave()
	return g.x.SleepUntil(at, label)
}
func (g guarded) WaitForEvent(event string, timeout time.Duration, label string) journey.Waited {
	g.enter()
	defer g.leave()
	return g.x.WaitForEvent(event, timeout, label)
}
func (g guarded) Checkpoint(label string) { g.enter(); defer g.leave(); g.x.Checkpoint(label) }
func (g guarded) SendEmail(e journey.Email) error {
	g.enter()
	defer g.leave()
	return g.x.SendEmail(e)
}
func (g guarded) Trigger(e journey.Event) error { g.enter(); defer g.leave(); return g.x.Trigger(e) }
func (g guarded) Identify(props map[string]any) { g.enter(); defer g.leave(); g.x.Identify(props) }
func (g guarded) Capture(event string, props map[string]any) {
	g.enter()
	defer g.leave()
	g.x.Capture(event, props)
}
func (g guarded) IsSubscribed() bool { g.enter(); defer g.leave(); return g.x.IsSubscribed() }
func (g guarded) HasEvent(event string, within time.Duration) journey.EventHistory {
	g.enter()
	defer g.leave()
	return g.x.HasEvent(event, within)
}
func (g guarded) JourneyHistory(journeyID string) journey.JourneyHistory {
	g.enter()
	defer g.leave()
	return g.x.JourneyHistory(journeyID)
}
func (g guarded) EmailHistory(template string) journey.EmailHistory {
	g.enter()
	defer g.leave()
	return g.x.EmailHistory(template)
}
func (g guarded) Zone() *time.Location        { g.enter(); defer g.leave(); return g.x.Zone() }
func (g guarded) SendWindow() *journey.Window { g.enter(); defer g.leave(); return g.x.SendWindow() }

func (x *execution) user() journey.User {
	props := map[string]any{}
	if len(x.state.Context) > 0 {
		_ = json.Unmarshal(x.state.Context, &props)
	}
	return journey.User{
		Key: x.state.UserID, Email: x.state.UserEmail, Properties: props,
		StateID: x.state.ID.String(), JourneyID: x.state.JourneyID, JourneyName: x.j.Name(),
	}
}

// abort ends the run's goroutine because the transaction cannot go on.
func (x *execution) abort(err error) {
	x.fatal = err
	runtime.Goexit()
}

// suspend ends the run's goroutine on a blocking step.
func (x *execution) suspend(s *dbsqlc.JourneyStep) {
	x.suspended = true
	x.pending = s
	runtime.Goexit()
}

// replay returns the recorded step the run reached, or nil when the run is
// past its log and must record a new step numbered n.
func (x *execution) replay(kind string) (rec *dbsqlc.JourneyStep, n int32) {
	if x.suspended || x.failure != nil || x.fatal != nil {
		// A deferred call of journey code after the run suspended or
		// failed: it must record and do nothing.
		runtime.Goexit()
	}
	n = int32(x.next)
	x.next++
	if int(n) < len(x.steps) {
		r := &x.steps[n]
		if r.Step != n {
			x.failure = fmt.Errorf("journey step log of state %s is not contiguous: position %d holds step %d", x.state.ID, n, r.Step)
			runtime.Goexit()
		}
		if r.Kind != kind {
			x.failure = &journey.NonDeterministicError{Step: int(n), Recorded: r.Kind, Called: kind}
			runtime.Goexit()
		}
		return r, n
	}
	return nil, n
}

// record appends a resolved step to the log.
func (x *execution) record(n int32, kind, label string, res stepResult) {
	data, err := json.Marshal(res)
	if err != nil {
		x.abort(fmt.Errorf("encode step result: %w", err))
	}
	at := x.now
	s := dbsqlc.JourneyStep{StateID: x.state.ID, Step: n, Kind: kind, Result: data, CreatedAt: at, ResolvedAt: &at}
	if label != "" {
		s.Label = &label
	}
	x.steps = append(x.steps, s)
	x.w.step(s)
}

func (x *execution) result(rec *dbsqlc.JourneyStep) stepResult {
	var r stepResult
	if err := json.Unmarshal(rec.Result, &r); err != nil {
		x.abort(fmt.Errorf("decode step %d of state %s: %w", rec.Step, rec.StateID, err))
	}
	return r
}

// Now implements journey.Runtime.
func (x *execution) Now() time.Time {
	rec, n := x.replay(kindNow)
	if rec != nil {
		return derefTime(x.result(rec).At)
	}
	now := x.now
	x.record(n, kindNow, "", stepResult{At: &now})
	return now
}

// Sleep implements journey.Runtime. The deadline is computed once, when
// the sleep begins, from the execution's clock.
func (x *execution) Sleep(d time.Duration, label string) journey.Slept {
	return x.sleep(func() time.Time { return x.now.Add(d) }, label)
}

// SleepUntil implements journey.Runtime.
func (x *execution) SleepUntil(at time.Time, label string) journey.Slept {
	return x.sleep(func() time.Time { return at }, label)
}

func (x *execution) sleep(deadline func() time.Time, label string) journey.Slept {
	rec, n := x.replay(kindSleep)
	if rec != nil {
		if rec.Result == nil {
			x.suspend(rec)
		}
		r := x.result(rec)
		return journey.Slept{SleptAt: derefTime(r.SleptAt), ResumedAt: derefTime(r.ResumedAt)}
	}
	now := x.now
	until := deadline()
	if !until.After(now) {
		// A deadline in the past sleeps 0 ms (spec 10 §5.4).
		x.record(n, kindSleep, label, stepResult{SleptAt: &now, ResumedAt: &now})
		return journey.Slept{SleptAt: now, ResumedAt: now}
	}
	due := until.UTC()
	x.block(dbsqlc.JourneyStep{StateID: x.state.ID, Step: n, Kind: kindSleep, Label: &label, DueAt: &due, CreatedAt: now})
	panic("unreachable")
}

// WaitForEvent implements journey.Runtime.
func (x *execution) WaitForEvent(event string, timeout time.Duration, label string) journey.Waited {
	rec, n := x.replay(kindWait)
	if rec != nil {
		if rec.Result == nil {
			x.suspend(rec)
		}
		r := x.result(rec)
		return journey.Waited{TimedOut: r.TimedOut != nil && *r.TimedOut, EventID: r.EventID}
	}
	now := x.now
	due := now.Add(timeout).UTC()
	s := dbsqlc.JourneyStep{StateID: x.state.ID, Step: n, Kind: kindWait, Label: &label, DueAt: &due, WaitEvent: &event, CreatedAt: now}
	if x.afterSeq > 0 {
		seq := int64(x.afterSeq)
		s.WaitAfterSeq = &seq
	} else {
		s.WaitAfterAt = &now
	}
	x.block(s)
	panic("unreachable")
}

// block records a pending blocking step, moves the state to waiting, arms
// the wake-up timer and suspends the run.
func (x *execution) block(s dbsqlc.JourneyStep) {
	x.steps = append(x.steps, s)
	x.w.step(s)
	label := deref(s.Label)
	detail := map[string]any{"until": s.DueAt}
	if s.WaitEvent != nil {
		detail["event"] = *s.WaitEvent
	}
	x.w.log(x.state.ID, x.state.CurrentNodeID, label, "waiting", detail, x.now)
	x.state.Status, x.state.CurrentNodeID, x.state.UpdatedAt = StatusWaiting, label, x.now
	x.w.touch(x.state)
	msg, err := timerMsg(Timer{StateID: x.state.ID.String(), Step: int(s.Step), DueAt: *s.DueAt})
	if err != nil {
		x.abort(err)
	}
	x.w.out = append(x.w.out, msg)
	x.suspend(&x.steps[len(x.steps)-1])
}

// timerMsg arms the wake-up of a blocking step: a schedule on its own
// subject, so re-arming replaces it and a re-publish is deduped.
func timerMsg(t Timer) (bus.OutMsg, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return bus.OutMsg{}, fmt.Errorf("encode journey timer: %w", err)
	}
	h := nats.Header{}
	h.Set("Nats-Schedule", "@at "+t.DueAt.UTC().Format(time.RFC3339Nano))
	h.Set("Nats-Schedule-Target", TimerDueSubject)
	id := t.StateID + "." + strconv.Itoa(t.Step)
	return bus.OutMsg{Subject: timerSchedRoot + "." + id, MsgID: "jtimer:" + id, Data: data, Header: h}, nil
}

// Checkpoint implements journey.Runtime.
func (x *execution) Checkpoint(label string) {
	rec, n := x.replay(kindCheckpoint)
	if rec != nil {
		return
	}
	x.w.log(x.state.ID, x.state.CurrentNodeID, label, "checkpoint", nil, x.now)
	x.state.CurrentNodeID, x.state.UpdatedAt = label, x.now
	x.w.touch(x.state)
	x.record(n, kindCheckpoint, label, stepResult{})
}

// effectKey names an effect of this state's step: the idempotency key of
// what it publishes.
func (x *execution) effectKey(n int32) string {
	return "journey:" + x.state.ID.String() + ":" + strconv.Itoa(int(n))
}

// SendEmail implements journey.Runtime: the command is stored with the
// step and published after commit under the step's key.
func (x *execution) SendEmail(e journey.Email) error {
	rec, n := x.replay(kindEmail)
	if rec != nil {
		if r := x.result(rec); r.Error != "" {
			return errors.New(r.Error)
		}
		return nil
	}
	to := e.To
	if to == "" {
		to = x.state.UserEmail
	}
	if to == "" && x.state.ContactID != nil {
		// The trigger carried no email: the contact's current one, read
		// once, when the step is first run.
		email, err := x.q.JourneyContactEmail(x.ctx, *x.state.ContactID)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			x.abort(fmt.Errorf("read contact email: %w", err))
		}
		to = email
	}
	if to == "" {
		// Recorded, so step numbers stay aligned if journey code goes on.
		const msg = "sendEmail: the contact has no email address and Email.To is empty"
		x.record(n, kindEmail, e.Template, stepResult{Error: msg})
		return errors.New(msg)
	}
	key := x.effectKey(n)
	cmd := streams.EmailCommand{
		V: 1, ID: derivedID("email", key).String(), IdempotencyKey: key, To: to, UserID: x.state.UserID,
		Template: e.Template, Subject: e.Subject, Category: "journey",
		JourneyID: x.state.JourneyID, JourneyName: x.j.Name(), JourneyStateID: x.state.ID.String(), RequestedAt: x.now,
	}
	if x.state.ContactID != nil {
		cmd.ContactID = x.state.ContactID.String()
	}
	if len(e.Props) > 0 {
		props, err := json.Marshal(e.Props)
		if err != nil {
			msg := fmt.Sprintf("sendEmail: props: %v", err)
			x.record(n, kindEmail, e.Template, stepResult{Error: msg})
			return errors.New(msg)
		}
		cmd.Props = props
	}
	data, err := json.Marshal(cmd)
	if err != nil {
		x.abort(fmt.Errorf("encode email command: %w", err))
	}
	x.w.out = append(x.w.out, bus.OutMsg{Subject: streams.EmailSendSubject, MsgID: key, Data: data})
	x.record(n, kindEmail, e.Template, stepResult{ID: cmd.ID})
	x.svc.metrics.emails.WithLabelValues(x.state.JourneyID).Inc()
	return nil
}

// Trigger implements journey.Runtime.
func (x *execution) Trigger(e journey.Event) error {
	ev := &streams.Event{V: streams.EnvelopeVersion, Type: streams.TypeTrack, Name: e.Name, Source: "journey"}
	if ev.Engine() {
		return fmt.Errorf("trigger: event names starting with bucket: or journey: are reserved")
	}
	rec, n := x.replay(kindTrigger)
	if rec != nil {
		if r := x.result(rec); r.Error != "" {
			return errors.New(r.Error)
		}
		return nil
	}
	ev.ID = derivedID("trigger", x.effectKey(n)).String()
	ev.ReceivedAt = x.now
	switch {
	case e.UserID != "":
		ev.UserID, ev.Email = e.UserID, e.Email
	case x.state.ContactID != nil:
		// The current contact, addressed by id: its key may be an
		// anonymous id or the contact id itself.
		ev.ContactID = x.state.ContactID.String()
	default:
		ev.UserID = x.state.UserID
	}
	if ev.Email == "" && ev.ContactID == "" {
		ev.Email = x.state.UserEmail
	}
	if len(e.Properties) > 0 {
		props, err := json.Marshal(e.Properties)
		if err != nil {
			msg := fmt.Sprintf("trigger: properties: %v", err)
			x.record(n, kindTrigger, e.Name, stepResult{Error: msg})
			return errors.New(msg)
		}
		ev.EventProperties = props
	}
	data, err := json.Marshal(ev)
	if err != nil {
		x.abort(fmt.Errorf("encode triggered event: %w", err))
	}
	x.w.out = append(x.w.out, bus.OutMsg{Subject: streams.EventSubject(ev), MsgID: ev.MsgID(), Data: data})
	x.record(n, kindTrigger, e.Name, stepResult{ID: ev.ID})
	return nil
}

// Identify implements journey.Runtime.
func (x *execution) Identify(props map[string]any) {
	if rec, n := x.replay(kindIdentify); rec == nil {
		x.record(n, kindIdentify, "", stepResult{})
		if a := x.svc.analytics; a != nil {
			key := x.state.UserID
			x.w.after = append(x.w.after, func() { a.Identify(key, props) })
		}
	}
}

// Capture implements journey.Runtime.
func (x *execution) Capture(event string, props map[string]any) {
	if rec, n := x.replay(kindCapture); rec == nil {
		x.record(n, kindCapture, event, stepResult{})
		if a := x.svc.analytics; a != nil {
			key := x.state.UserID
			x.w.after = append(x.w.after, func() { a.Capture(key, event, props) })
		}
	}
}

// IsSubscribed implements journey.Runtime (spec 10 §5.4 guard.isSubscribed).
func (x *execution) IsSubscribed() bool {
	rec, n := x.replay(kindSubscribed)
	if rec != nil {
		r := x.result(rec)
		return r.Bool != nil && *r.Bool
	}
	rows, err := x.q.JourneyUnsubscribedKeys(x.ctx, []string{x.state.UserID})
	if err != nil {
		x.abort(fmt.Errorf("read preferences: %w", err))
	}
	sub := len(rows) == 0 || !rows[0].UnsubscribedAll
	x.record(n, kindSubscribed, "", stepResult{Bool: &sub})
	return sub
}

// HasEvent implements journey.Runtime.
func (x *execution) HasEvent(event string, within time.Duration) journey.EventHistory {
	rec, n := x.replay(kindHasEvent)
	if rec != nil {
		c := derefInt(x.result(rec).Count)
		return journey.EventHistory{Found: c > 0, Count: c}
	}
	since := time.Time{}
	if within > 0 {
		since = x.now.Add(-within)
	}
	c, err := x.q.JourneyEventCount(x.ctx, dbsqlc.JourneyEventCountParams{UserID: x.state.UserID, Event: event, Since: since, Until: x.now})
	if err != nil {
		x.abort(fmt.Errorf("count events: %w", err))
	}
	count := int(c)
	x.record(n, kindHasEvent, event, stepResult{Count: &count})
	return journey.EventHistory{Found: count > 0, Count: count}
}

// JourneyHistory implements journey.Runtime.
func (x *execution) JourneyHistory(journeyID string) journey.JourneyHistory {
	rec, n := x.replay(kindJourneyHis)
	if rec != nil {
		r := x.result(rec)
		return journey.JourneyHistory{Completed: r.Last != nil, LastCompletedAt: r.Last, EntryCount: derefInt(r.Count)}
	}
	// What this transaction changed is only in memory until flushed (states
	// enrolled, runs ended); write it so the answer is what it would be
	// after commit, whichever path runs this.
	if len(x.w.inserts) > 0 || len(x.w.states) > 0 {
		if err := x.w.flush(x.ctx, x.q); err != nil {
			x.abort(err)
		}
	}
	row, err := x.q.JourneyHistoryOf(x.ctx, dbsqlc.JourneyHistoryOfParams{UserID: x.state.UserID, JourneyID: journeyID})
	if err != nil {
		x.abort(fmt.Errorf("read journey history: %w", err))
	}
	count := int(row.EntryCount)
	var last *time.Time
	if !row.LastCompletedAt.IsZero() {
		t := row.LastCompletedAt
		last = &t
	}
	x.record(n, kindJourneyHis, journeyID, stepResult{Count: &count, Last: last})
	return journey.JourneyHistory{Completed: last != nil, LastCompletedAt: last, EntryCount: count}
}

// EmailHistory implements journey.Runtime: sends of template to the
// enrolment's address, failed ones included (spec 10 §5.4).
func (x *execution) EmailHistory(template string) journey.EmailHistory {
	rec, n := x.replay(kindEmailHis)
	if rec != nil {
		r := x.result(rec)
		c := derefInt(r.Count)
		return journey.EmailHistory{Sent: c > 0, LastSentAt: r.Last, Count: c}
	}
	count := 0
	var last *time.Time
	if x.state.UserEmail != "" {
		row, err := x.q.JourneyEmailHistory(x.ctx, dbsqlc.JourneyEmailHistoryParams{ToEmail: x.state.UserEmail, TemplateKey: &template})
		if err != nil {
			x.abort(fmt.Errorf("read email history: %w", err))
		}
		count = int(row.N)
		if !row.LastSentAt.IsZero() {
			t := row.LastSentAt
			last = &t
		}
	}
	x.record(n, kindEmailHis, template, stepResult{Count: &count, Last: last})
	return journey.EmailHistory{Sent: count > 0, LastSentAt: last, Count: count}
}

// Zone implements journey.Runtime.
func (x *execution) Zone() *time.Location { return x.zone }

// SendWindow implements journey.Runtime.
func (x *execution) SendWindow() *journey.Window { return x.j.Meta().SendWindow }

// derivedID is the deterministic uuid of something derived from key.
func derivedID(kind, key string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(kind+"\x00"+key))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func derefInt(i *int) int {
	if i == nil {
		return 0
	}
	return *i
}
