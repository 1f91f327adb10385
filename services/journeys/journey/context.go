package journey

import "time"

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

// Runtime is what the durable runner implements for one run. Every method is
// a recorded step: on replay it returns the recorded result. The interface
// grows with the context API (sleep, waitForEvent, sendEmail, history
// queries, when, …) when the runtime lands; for now it carries only the
// clock.
type Runtime interface {
	// Now is the run's current time, recorded so replays see the same
	// instant.
	Now() time.Time
}

// Ctx is the handle a journey's Run uses to act: the journey context API of
// spec §5.4. Journey code receives it from the runtime and never builds one.
type Ctx struct {
	rt Runtime
}

// NewCtx wraps rt for one run. It is for the runtime (and tests of journey
// code with a fake Runtime), not for journey code.
func NewCtx(rt Runtime) *Ctx { return &Ctx{rt: rt} }

// Now returns the run's current time. Use it instead of time.Now: it is a
// recorded step, so a replayed run sees the instant the first run saw.
func (c *Ctx) Now() time.Time { return c.rt.Now() }
