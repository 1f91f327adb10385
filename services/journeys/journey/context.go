package journey

import (
	"context"
	"fmt"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/journeys/schedule"
)

// Run is a journey's body. The runtime calls it once per enrolment and again
// on every wake (timer, awaited event), replaying recorded steps, so it must
// be deterministic given the results of the calls it makes on ctx: read the
// time with ctx.Now, never time.Now, and keep effects behind ctx.
type Run func(ctx *Ctx, u User) error

// User is the contact a run is for (spec §5.1).
type User struct {
	// Key is the contact key (external id, else anonymous id, else the
	// contact id) that history rows store as user_id.
	Key string
	// Email is the email published with the trigger event, possibly "".
	Email string
	// Properties are the trigger event's scalar properties.
	Properties map[string]any
	// StateID is the journey_states row of this enrolment.
	StateID     string
	JourneyID   string
	JourneyName string
}

// MaxWait is the longest WaitForEvent timeout (spec §5.4): a run lives at
// most 720 hours.
const MaxWait = 720 * time.Hour

// Slept is the result of Sleep and SleepUntil.
type Slept struct {
	SleptAt   time.Time
	ResumedAt time.Time
}

// Waited is the result of WaitForEvent.
type Waited struct {
	// TimedOut is true when the timeout passed before a matching event.
	TimedOut bool
	// EventID is the id of the event that ended the wait, "" on a timeout.
	EventID string
}

// EventHistory answers HasEvent (spec §3.3).
type EventHistory struct {
	Found bool
	Count int
}

// JourneyHistory answers JourneyHistory over all of the contact's rows for
// a journey, deleted ones included (spec §5.4).
type JourneyHistory struct {
	Completed       bool
	LastCompletedAt *time.Time
	EntryCount      int
}

// EmailHistory answers EmailHistory over every send of a template to the
// contact's address, failed ones included (spec §5.4).
type EmailHistory struct {
	Sent       bool
	LastSentAt *time.Time
	Count      int
}

// Email is a send a journey asks for. It becomes a command on the EMAILS
// stream keyed by (state id, step), which the mailer sends at most once.
type Email struct {
	// Template is the template key; required.
	Template string
	// Subject overrides the template's default subject.
	Subject string
	// To defaults to the enrolment's email (User.Email).
	To string
	// Props are the template's data.
	Props map[string]any
}

// Event is an event a journey publishes with Trigger. It runs the full
// pipeline (contacts, buckets, journeys) like an ingested one.
type Event struct {
	Name string
	// UserID defaults to the current contact's key.
	UserID string
	// Email defaults to the enrolment's email.
	Email      string
	Properties map[string]any
}

// Runtime is what the durable runner implements for one run. Every method is
// a recorded step: on replay it returns the recorded result. Blocking steps
// (Sleep, SleepUntil, WaitForEvent) that are not yet recorded suspend the
// run and never return to it: the runtime records the intent, schedules the
// wake-up and ends the run's goroutine; the run starts again from the top
// when it wakes. Journey code never implements Runtime (tests of journey
// code may, with a fake).
type Runtime interface {
	Now() time.Time
	Sleep(d time.Duration, label string) Slept
	SleepUntil(at time.Time, label string) Slept
	WaitForEvent(event string, timeout time.Duration, label string) Waited
	Checkpoint(label string)
	SendEmail(e Email) error
	Trigger(e Event) error
	Identify(props map[string]any)
	Capture(event string, props map[string]any)
	IsSubscribed() bool
	HasEvent(event string, within time.Duration) EventHistory
	JourneyHistory(journeyID string) JourneyHistory
	EmailHistory(template string) EmailHistory
	// Zone is the contact's time zone resolved at enrolment (spec §5.6.1).
	Zone() *time.Location
	// SendWindow is the journey's default send window, nil for none.
	SendWindow() *Window
}

// Ctx is the handle a journey's Run uses to act: the journey context API of
// spec §5.4. Journey code receives it from the runtime and never builds one.
type Ctx struct {
	rt Runtime
}

// NewCtx wraps rt for one run. It is for the runtime (and tests of journey
// code with a fake Runtime), not for journey code.
func NewCtx(rt Runtime) *Ctx { return &Ctx{rt: rt} }

// Context is the run's context: it ends when the run's deadline passes
// (HOGSEND_JOURNEY_RUN_TIMEOUT, default 30s) or the engine stops. Pass it
// to anything in journey code that can block (HTTP calls, queries of your
// own): a run holds its contact's place in the journeys consumer, and one
// that has not returned a grace period after its deadline (a tenth of the
// timeout) is failed and abandoned. A Runtime without a context (a test
// fake) gives context.Background().
func (c *Ctx) Context() context.Context {
	if rc, ok := c.rt.(interface{ Context() context.Context }); ok {
		return rc.Context()
	}
	return context.Background()
}

// Now returns the run's current time. Use it instead of time.Now: it is a
// recorded step, so a replayed run sees the instant the first run saw.
func (c *Ctx) Now() time.Time { return c.rt.Now() }

// Sleep suspends the run for d (spec §5.4 sleep). The state is waiting
// meanwhile, current_node_id = label (default "wait:<d>"); an exit or a
// cancel during the sleep ends the run without returning here.
func (c *Ctx) Sleep(d time.Duration, label ...string) Slept {
	return c.rt.Sleep(max(d, 0), labelOr(label, "wait:"+d.String()))
}

// SleepUntil suspends the run until at; a past instant resumes at once.
// The deadline is fixed when the sleep begins. Default label
// "wait-until:<RFC 3339 UTC>".
func (c *Ctx) SleepUntil(at time.Time, label ...string) Slept {
	return c.rt.SleepUntil(at, labelOr(label, "wait-until:"+at.UTC().Format(time.RFC3339)))
}

// WaitForEvent suspends the run until this contact's event named event is
// published after the wait began, or timeout passes (spec §5.4). A timeout
// above MaxWait, or not positive, is an invalid_request error returned
// before any state change. Default label "wait-event:<event>".
func (c *Ctx) WaitForEvent(event string, timeout time.Duration, label ...string) (Waited, error) {
	if event == "" {
		return Waited{}, errcode.Invalidf("waitForEvent: event is required")
	}
	if timeout <= 0 || timeout > MaxWait {
		return Waited{}, errcode.Invalidf("waitForEvent: timeout %s is outside (0, %s]", timeout, MaxWait)
	}
	return c.rt.WaitForEvent(event, timeout, labelOr(label, "wait-event:"+event)), nil
}

// Checkpoint sets the state's current_node_id to label, whatever its
// status (spec §5.4).
func (c *Ctx) Checkpoint(label string) { c.rt.Checkpoint(label) }

// SendEmail asks the mailer to send e (category journey). The command is
// keyed by (state id, step): however often the run replays, one email is
// sent. Suppression, unsubscribes and frequency caps are the mailer's.
func (c *Ctx) SendEmail(e Email) error {
	if e.Template == "" {
		return errcode.Invalidf("sendEmail: template is required")
	}
	return c.rt.SendEmail(e)
}

// Trigger publishes e through the full pipeline (spec §5.4 trigger). The
// publish is keyed by (state id, step), so a replay publishes nothing new.
func (c *Ctx) Trigger(e Event) error {
	if e.Name == "" {
		return errcode.Invalidf("trigger: event name is required")
	}
	return c.rt.Trigger(e)
}

// Identify sets person properties in PostHog for the contact's key; a no-op
// without PostHog. Recorded, so a replay never sends it twice.
func (c *Ctx) Identify(props map[string]any) { c.rt.Identify(props) }

// Capture sends an analytics event to PostHog for the contact's key; a
// no-op without PostHog. Recorded, so a replay never captures twice.
func (c *Ctx) Capture(event string, props map[string]any) { c.rt.Capture(event, props) }

// IsSubscribed is false when the contact unsubscribed from everything
// (spec §5.4 guard.isSubscribed).
func (c *Ctx) IsSubscribed() bool { return c.rt.IsSubscribed() }

// HasEvent counts the contact's events named event, within the last
// `within` (0 = all time) as of the run's Now.
func (c *Ctx) HasEvent(event string, within time.Duration) EventHistory {
	return c.rt.HasEvent(event, within)
}

// JourneyHistory summarises the contact's states of journeyID.
func (c *Ctx) JourneyHistory(journeyID string) JourneyHistory {
	return c.rt.JourneyHistory(journeyID)
}

// EmailHistory summarises sends of template to the enrolment's email.
func (c *Ctx) EmailHistory(template string) EmailHistory { return c.rt.EmailHistory(template) }

// When is the scheduler (spec §5.6) bound to the contact's zone, the
// journey's send window and the run's Now; pass what it resolves to
// SleepUntil.
//
//	at, err := ctx.When().Tomorrow().At("09:00").Time()
func (c *Ctx) When() schedule.When {
	w := schedule.New(c.rt.Now(), c.rt.Zone())
	if win := c.rt.SendWindow(); win != nil {
		w = w.Window(win.Start, win.End)
	}
	return w
}

func labelOr(label []string, def string) string {
	if len(label) > 0 && label[0] != "" {
		return label[0]
	}
	return def
}

// NonDeterministicError is the failure of a run whose calls on ctx differ
// from its recorded step log: replaying it would do something else than the
// first run did, so the runtime fails the state instead.
type NonDeterministicError struct {
	Step     int
	Recorded string
	Called   string
}

func (e *NonDeterministicError) Error() string {
	return fmt.Sprintf("non-deterministic journey: step %d was %s when recorded but the run now calls %s", e.Step, e.Recorded, e.Called)
}
