package journeys_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/journeys"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// A three-step journey: email, sleep, email. The run resumes from a TIMERS
// schedule, replays the first email without sending it again, sends the
// second and completes; every transition is logged.
func TestSleepResumesAndCompletes(t *testing.T) {
	t.Parallel()
	var runs counter
	j := journey.MustDefine(journey.Meta{ID: "welcome", Name: "Welcome", Trigger: journey.OnEvent("signup"), EntryLimit: journey.Once},
		func(ctx *journey.Ctx, u journey.User) error {
			runs.inc()
			if err := ctx.SendEmail(journey.Email{Template: "welcome", Props: map[string]any{"plan": u.Properties["plan"]}}); err != nil {
				return err
			}
			s := ctx.Sleep(time.Second)
			if s.ResumedAt.Sub(s.SleptAt) < time.Second {
				return errors.New("woke early")
			}
			return ctx.SendEmail(journey.Email{Template: "nudge"})
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	e.send("u1", "ada@example.com", "signup", map[string]any{"plan": "pro", "nested": map[string]any{"x": 1}})
	st := e.waitStatus("u1", "welcome", journeys.StatusWaiting, 5*time.Second)
	if st.CurrentNodeID != "wait:1s" {
		t.Errorf("current node %q, want wait:1s", st.CurrentNodeID)
	}
	if got := e.waitEmails(1, 5*time.Second); got[0].Cmd.Template != "welcome" || got[0].Cmd.To != "ada@example.com" || got[0].Cmd.Category != "journey" {
		t.Errorf("first command %+v", got[0])
	}
	e.waitStatus("u1", "welcome", journeys.StatusCompleted, 5*time.Second)
	cmds := e.waitEmails(2, 5*time.Second)
	if len(cmds) != 2 {
		t.Fatalf("EMAILS holds %d commands, want 2", len(cmds))
	}
	want := []string{"journey:" + st.ID.String() + ":0", "journey:" + st.ID.String() + ":2"} // step 1 is the sleep
	for i, c := range cmds {
		if c.MsgID != want[i] || c.Cmd.IdempotencyKey != want[i] || c.Cmd.JourneyStateID != st.ID.String() {
			t.Errorf("command %d: msg id %q key %q state %q, want %q", i, c.MsgID, c.Cmd.IdempotencyKey, c.Cmd.JourneyStateID, want[i])
		}
	}
	if string(cmds[0].Cmd.Props) != `{"plan":"pro"}` {
		t.Errorf("props %s: the context holds the scalar trigger properties only", cmds[0].Cmd.Props)
	}
	if runs.get() != 2 {
		t.Errorf("journey function ran %d times, want 2 (start, wake)", runs.get())
	}
	if got := strings.Join(e.logs(st.ID), ","); got != "enrolled,waiting,resumed,completed" {
		t.Errorf("logs %s", got)
	}
}

// Spec 10 scenario 28: each of these is skipped and writes no state.
func TestEntryGuards(t *testing.T) {
	t.Parallel()
	j := journey.MustDefine(journey.Meta{ID: "trial", Name: "Trial", EntryLimit: journey.Once,
		Trigger: journey.OnEvent("trial_started", condition.Prop("plan").Neq("free"))},
		func(ctx *journey.Ctx, u journey.User) error { return nil })
	off := journey.MustDefine(journey.Meta{ID: "paused", Name: "Paused", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("trial_started")},
		func(ctx *journey.Ctx, u journey.User) error { return nil })
	e := startEngine(t, []*journey.Journey{j, off}, engineOptions{})
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO journey_configs (id, journey_id, enabled) VALUES (gen_random_uuid(), 'paused', false)`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO email_preferences (id, user_id, email, unsubscribed_all) VALUES (gen_random_uuid(), 'gone', 'gone@example.com', true)`); err != nil {
		t.Fatal(err)
	}
	e.send("u1", "", "trial_started", map[string]any{"plan": "pro"})
	e.waitStatus("u1", "trial", journeys.StatusCompleted, 5*time.Second)
	e.send("u1", "", "trial_started", map[string]any{"plan": "pro"})  // already_entered_once
	e.send("u2", "", "trial_started", map[string]any{"plan": "free"}) // trigger_conditions_not_met
	e.send("gone", "", "trial_started", nil)                          // user_unsubscribed
	e.send("u3", "", "trial_started", nil)                            // enrols (absent plan is not "free")
	e.waitStatus("u3", "trial", journeys.StatusCompleted, 5*time.Second)
	if n := len(e.states("u1", "trial")); n != 1 {
		t.Errorf("u1 has %d states, want 1", n)
	}
	for _, u := range []string{"u2", "gone"} {
		if n := len(e.states(u, "trial")); n != 0 {
			t.Errorf("%s has %d states, want 0", u, n)
		}
	}
	for _, u := range []string{"u1", "u3"} {
		if n := len(e.states(u, "paused")); n != 0 {
			t.Errorf("%s enrolled in a journey disabled by admin", u)
		}
	}
}

// An unlimited journey admits a contact again once its run ended, but not
// while one is live; terminal rows accumulate (spec 10 §1.4 flaw fixed).
func TestUnlimitedOneLiveRunAtATime(t *testing.T) {
	t.Parallel()
	j := journey.MustDefine(journey.Meta{ID: "ping", Name: "Ping", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("ping")},
		func(ctx *journey.Ctx, u journey.User) error {
			ctx.Sleep(500 * time.Millisecond)
			return nil
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	e.send("u1", "", "ping", nil)
	e.waitStatus("u1", "ping", journeys.StatusWaiting, 5*time.Second)
	e.send("u1", "", "ping", nil) // already_active
	e.waitStatus("u1", "ping", journeys.StatusCompleted, 5*time.Second)
	e.send("u1", "", "ping", nil)
	e.waitStatus("u1", "ping", journeys.StatusWaiting, 5*time.Second)
	e.waitStatus("u1", "ping", journeys.StatusCompleted, 5*time.Second)
	st := e.states("u1", "ping")
	if len(st) != 2 || st[0].Status != "completed" || st[1].Status != "completed" || st[1].EntryCount != 2 {
		t.Errorf("states %+v, want two completed rows, the second with entry_count 2", st)
	}
}

// Spec 10 scenario 29: an exitOn event during a sleep ends the state and no
// post-sleep code runs when the timer fires.
func TestExitDuringSleep(t *testing.T) {
	t.Parallel()
	var after counter
	j := journey.MustDefine(journey.Meta{ID: "trial", Name: "Trial", EntryLimit: journey.Once, Trigger: journey.OnEvent("trial_started"),
		ExitOn: []journey.Exit{{Event: "purchased", Where: []condition.Node{condition.Prop("amount").Gt(0)}}}},
		func(ctx *journey.Ctx, u journey.User) error {
			ctx.Sleep(time.Second)
			after.inc()
			return ctx.SendEmail(journey.Email{Template: "trial-ending"})
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	e.send("u1", "a@example.com", "trial_started", nil)
	e.waitStatus("u1", "trial", journeys.StatusWaiting, 5*time.Second)
	e.send("u1", "", "purchased", map[string]any{"amount": 0}) // where fails: no exit
	e.send("u1", "", "purchased", map[string]any{"amount": 10})
	st := e.waitStatus("u1", "trial", journeys.StatusExited, 5*time.Second)
	time.Sleep(1500 * time.Millisecond) // the timer fires meanwhile
	if after.get() != 0 || len(e.emails()) != 0 {
		t.Errorf("post-sleep code ran %d times, %d emails", after.get(), len(e.emails()))
	}
	if got := e.states("u1", "trial"); got[0].Status != journeys.StatusExited {
		t.Errorf("status %s after the timer, want exited", got[0].Status)
	}
	if got := strings.Join(e.logs(st.ID), ","); got != "enrolled,waiting,exited" {
		t.Errorf("logs %s", got)
	}
}

// Spec 10 scenario 30: waitForEvent counts only this contact's events
// published after the wait began; the time-out returns TimedOut; a
// timeout above 720 h fails before any state change.
func TestWaitForEvent(t *testing.T) {
	t.Parallel()
	results := make(chan journey.Waited, 8)
	j := journey.MustDefine(journey.Meta{ID: "activate", Name: "Activate", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("signup")},
		func(ctx *journey.Ctx, u journey.User) error {
			timeout, err := time.ParseDuration(u.Properties["timeout"].(string))
			if err != nil {
				return err
			}
			w, err := ctx.WaitForEvent("activated", timeout)
			if err != nil {
				return err
			}
			results <- w
			return nil
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})

	// An event before the wait does not count; another user's does not
	// wake; this user's later one does.
	e.send("u1", "", "activated", nil)
	e.send("u1", "", "signup", map[string]any{"timeout": "24h"})
	e.waitStatus("u1", "activate", journeys.StatusWaiting, 5*time.Second)
	e.send("u2", "", "activated", nil)
	time.Sleep(300 * time.Millisecond)
	if st := e.states("u1", "activate"); st[0].Status != journeys.StatusWaiting || st[0].CurrentNodeID != "wait-event:activated" {
		t.Fatalf("state %+v: woke on an earlier event or another user's", st[0])
	}
	id := e.send("u1", "", "activated", nil)
	e.waitStatus("u1", "activate", journeys.StatusCompleted, 5*time.Second)
	if w := <-results; w.TimedOut || w.EventID != id {
		t.Errorf("waited %+v, want the event %s", w, id)
	}

	// The time-out path.
	e.send("u3", "", "signup", map[string]any{"timeout": "700ms"})
	e.waitStatus("u3", "activate", journeys.StatusCompleted, 5*time.Second)
	if w := <-results; !w.TimedOut {
		t.Errorf("waited %+v, want a time-out", w)
	}

	// 721 h is refused before any state change: the state never waited.
	e.send("u4", "", "signup", map[string]any{"timeout": "721h"})
	st := e.waitStatus("u4", "activate", journeys.StatusFailed, 5*time.Second)
	if st.ErrorMessage == nil || !strings.Contains(*st.ErrorMessage, "720h") {
		t.Errorf("error message %v", st.ErrorMessage)
	}
	if got := strings.Join(e.logs(st.ID), ","); got != "enrolled,failed" {
		t.Errorf("logs %s: the state changed before the range check", got)
	}
}

// Spec 10 scenario 31: a throwing run fails with its message, once; a
// panic is a failure too; journey:failed is published for the contact.
func TestFailedRun(t *testing.T) {
	t.Parallel()
	var runs counter
	j := journey.MustDefine(journey.Meta{ID: "boom", Name: "Boom", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("boom")},
		func(ctx *journey.Ctx, u journey.User) error {
			runs.inc()
			if u.Properties["panic"] == true {
				panic("kaboom")
			}
			return errors.New("template missing")
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	e.send("u1", "", "boom", nil)
	st := e.waitStatus("u1", "boom", journeys.StatusFailed, 5*time.Second)
	if st.ErrorMessage == nil || *st.ErrorMessage != "template missing" {
		t.Errorf("error message %v", st.ErrorMessage)
	}
	e.send("u2", "", "boom", map[string]any{"panic": true})
	st = e.waitStatus("u2", "boom", journeys.StatusFailed, 5*time.Second)
	if st.ErrorMessage == nil || *st.ErrorMessage != "panic: kaboom" {
		t.Errorf("error message %v", st.ErrorMessage)
	}
	time.Sleep(300 * time.Millisecond)
	if runs.get() != 2 {
		t.Errorf("ran %d times, want 2: failures are not retried", runs.get())
	}
	if n := e.lifecycleEvents("journey:failed"); n != 2 {
		t.Errorf("%d journey:failed events, want 2", n)
	}
}

// A journey whose calls differ from its recorded log on replay fails with
// a clear error instead of doing something else.
func TestNonDeterministicRunFails(t *testing.T) {
	t.Parallel()
	var runs counter
	j := journey.MustDefine(journey.Meta{ID: "flaky", Name: "Flaky", EntryLimit: journey.Once, Trigger: journey.OnEvent("go")},
		func(ctx *journey.Ctx, u journey.User) error {
			runs.inc()
			if runs.get() == 1 {
				ctx.Checkpoint("first")
			} else {
				_ = ctx.SendEmail(journey.Email{Template: "welcome", To: "x@example.com"})
			}
			ctx.Sleep(300 * time.Millisecond)
			return nil
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	e.send("u1", "", "go", nil)
	st := e.waitStatus("u1", "flaky", journeys.StatusFailed, 5*time.Second)
	if st.ErrorMessage == nil || !strings.Contains(*st.ErrorMessage, "non-deterministic journey: step 0 was checkpoint") {
		t.Errorf("error message %v", st.ErrorMessage)
	}
	if n := len(e.emails()); n != 0 {
		t.Errorf("%d emails sent by the diverging replay", n)
	}
}

// A trigger event without an email sends to the contact's current email;
// with none at all, SendEmail fails the run with a clear message.
func TestSendEmailRecipient(t *testing.T) {
	t.Parallel()
	j := journey.MustDefine(journey.Meta{ID: "upsell", Name: "Upsell", EntryLimit: journey.Once, Trigger: journey.OnEvent("upgraded")},
		func(ctx *journey.Ctx, u journey.User) error {
			return ctx.SendEmail(journey.Email{Template: "welcome"})
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	e.send("u1", "Ada@Example.com", "signup", nil)
	e.send("u1", "", "upgraded", nil)
	e.waitStatus("u1", "upsell", journeys.StatusCompleted, 5*time.Second)
	if got := e.waitEmails(1, 5*time.Second); got[0].Cmd.To != "ada@example.com" {
		t.Errorf("sent to %q, want the contact's email", got[0].Cmd.To)
	}
	e.send("u2", "", "upgraded", nil)
	st := e.waitStatus("u2", "upsell", journeys.StatusFailed, 5*time.Second)
	if st.ErrorMessage == nil || !strings.Contains(*st.ErrorMessage, "no email address") {
		t.Errorf("error %v", st.ErrorMessage)
	}
}

// The zone is resolved at enrolment (contact property, else the journey's
// default) and ctx.When resolves local times in it.
func TestWhenUsesTheContactZone(t *testing.T) {
	t.Parallel()
	j := journey.MustDefine(journey.Meta{ID: "morning", Name: "Morning", EntryLimit: journey.Once, Trigger: journey.OnEvent("signup"), Timezone: "Europe/Berlin"},
		func(ctx *journey.Ctx, u journey.User) error {
			at, err := ctx.When().Tomorrow().At("09:00").Time()
			if err != nil {
				return err
			}
			ctx.SleepUntil(at)
			return nil
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	e.sendWith("ny", "signup", "", nil, map[string]any{"timezone": "America/New_York"})
	e.sendWith("bad", "signup", "", nil, map[string]any{"timezone": "Mars/Olympus"})
	for user, zone := range map[string]string{"ny": "America/New_York", "bad": "Europe/Berlin"} {
		st := e.waitStatus(user, "morning", journeys.StatusWaiting, 5*time.Second)
		var tz string
		var due time.Time
		if err := e.pool.QueryRow(context.Background(), `SELECT s.timezone, st.due_at FROM journey_states s JOIN journey_steps st ON st.state_id = s.id AND st.kind = 'sleep' WHERE s.id = $1`, st.ID).Scan(&tz, &due); err != nil {
			t.Fatal(err)
		}
		loc, _ := time.LoadLocation(zone)
		if local := due.In(loc); tz != zone || local.Hour() != 9 || local.Minute() != 0 || !due.After(time.Now()) {
			t.Errorf("%s: zone %s, wakes at %s local, want %s 09:00 tomorrow", user, tz, local, zone)
		}
	}
}

// The history queries answer from email_sends and journey_states, and
// are recorded: the answer a run saw is the answer its replays see.
func TestHistoryQueries(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 4)
	j := journey.MustDefine(journey.Meta{ID: "survey", Name: "Survey", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("milestone")},
		func(ctx *journey.Ctx, u journey.User) error {
			e := ctx.EmailHistory("nps")
			h := ctx.JourneyHistory("survey")
			ev := ctx.HasEvent("milestone", time.Hour)
			ctx.Sleep(200 * time.Millisecond)
			seen <- fmt.Sprintf("email sent=%v count=%d last=%v; journey entries=%d completed=%v; events=%d",
				e.Sent, e.Count, e.LastSentAt != nil, h.EntryCount, h.Completed, ev.Count)
			return nil
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO email_sends (id, to_email, template_key, status, sent_at) VALUES
		(gen_random_uuid(), 'Ada@Example.com', 'nps', 'sent', now()), (gen_random_uuid(), 'ada@example.com', 'nps', 'failed', NULL),
		(gen_random_uuid(), 'ada@example.com', 'welcome', 'sent', now())`); err != nil {
		t.Fatal(err)
	}
	e.send("u1", "ada@example.com", "milestone", nil)
	e.waitStatus("u1", "survey", journeys.StatusCompleted, 5*time.Second)
	if got, want := <-seen, "email sent=true count=2 last=true; journey entries=1 completed=false; events=1"; got != want {
		t.Errorf("first run saw %q, want %q", got, want)
	}
}

// journey:completed is published for the contact once per finished run,
// and not at all when lifecycle events are off.
func TestLifecycleEvents(t *testing.T) {
	t.Parallel()
	for _, off := range []bool{false, true} {
		j := journey.MustDefine(journey.Meta{ID: "done", Name: "Done", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("go")},
			func(ctx *journey.Ctx, u journey.User) error { return nil })
		e := startEngine(t, []*journey.Journey{j}, engineOptions{noLifecycle: off})
		e.send("u1", "", "go", nil)
		e.waitStatus("u1", "done", journeys.StatusCompleted, 5*time.Second)
		time.Sleep(200 * time.Millisecond)
		want := map[bool]int{false: 1, true: 0}[off]
		if n := e.lifecycleEvents("journey:completed"); n != want {
			t.Errorf("lifecycle off=%v: %d journey:completed events, want %d", off, n, want)
		}
		var stored int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM user_events WHERE event LIKE 'journey:%'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != 0 {
			t.Errorf("%d journey:* events stored in history, want none (spec 10 §5.3.5)", stored)
		}
	}
}

// History folding (spec 10 §2.3.3): an anonymous contact's waiting state
// moves to its new key when it identifies, and the wait resumes on the
// identifying event itself.
func TestStateFollowsIdentify(t *testing.T) {
	t.Parallel()
	j := journey.MustDefine(journey.Meta{ID: "visit", Name: "Visit", EntryLimit: journey.Once, Trigger: journey.OnEvent("visited")},
		func(ctx *journey.Ctx, u journey.User) error {
			w, err := ctx.WaitForEvent("signed_up", time.Hour)
			if err != nil || w.TimedOut {
				return err
			}
			ctx.Checkpoint("converted")
			return nil
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	publish := func(ev *streams.Event) {
		ev.V, ev.ID, ev.Type, ev.ReceivedAt, ev.Source = streams.EnvelopeVersion, uuid.Must(uuid.NewV7()).String(), streams.TypeTrack, time.Now().UTC(), "test"
		if _, err := e.pub.PublishEvent(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	publish(&streams.Event{Name: "visited", AnonymousID: "anon-9"})
	e.waitStatus("anon-9", "visit", journeys.StatusWaiting, 5*time.Second)
	publish(&streams.Event{Name: "signed_up", UserID: "u-9", AnonymousID: "anon-9"})
	st := e.waitStatus("u-9", "visit", journeys.StatusCompleted, 5*time.Second)
	if st.CurrentNodeID != "converted" {
		t.Errorf("state %+v", st)
	}
	if n := len(e.states("anon-9", "visit")); n != 0 {
		t.Errorf("%d states left under the anonymous key", n)
	}
}

// A run that ends in a batch frees its pair at once: an event that both
// exits a live run and triggers the journey enrols a new run (spec 10
// §1.4 before §5.2), and two triggers of an instantly completing unlimited
// journey make two runs however the events are batched.
func TestEndedRunFreesItsPairInTheSameBatch(t *testing.T) {
	t.Parallel()
	restart := journey.MustDefine(journey.Meta{ID: "restart", Name: "Restart", EntryLimit: journey.Unlimited,
		Trigger: journey.OnEvent("go"), ExitOn: []journey.Exit{{Event: "go"}}},
		func(ctx *journey.Ctx, u journey.User) error {
			ctx.Sleep(time.Hour)
			return nil
		})
	instant := journey.MustDefine(journey.Meta{ID: "instant", Name: "Instant", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("go")},
		func(ctx *journey.Ctx, u journey.User) error { return nil })
	e := startEngine(t, []*journey.Journey{restart, instant}, engineOptions{})
	e.send("u1", "", "go", nil)
	e.send("u1", "", "go", nil)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (len(e.states("u1", "restart")) < 2 || len(e.states("u1", "instant")) < 2) {
		time.Sleep(20 * time.Millisecond)
	}
	var got []string
	for _, st := range e.states("u1", "restart") {
		got = append(got, st.Status)
	}
	if strings.Join(got, ",") != "exited,waiting" {
		t.Errorf("restart states %v, want exited then waiting", got)
	}
	got = nil
	for _, st := range e.states("u1", "instant") {
		got = append(got, st.Status)
	}
	if strings.Join(got, ",") != "completed,completed" {
		t.Errorf("instant states %v, want two completed runs", got)
	}
}

// A ctx call deferred by journey code runs when the run suspends; it must
// neither record a step nor act, so the replay after the wake matches.
func TestDeferredCallsAfterSuspendDoNothing(t *testing.T) {
	t.Parallel()
	j := journey.MustDefine(journey.Meta{ID: "deferred", Name: "Deferred", EntryLimit: journey.Once, Trigger: journey.OnEvent("go")},
		func(ctx *journey.Ctx, u journey.User) error {
			defer ctx.Capture("left", nil)
			ctx.Sleep(300 * time.Millisecond)
			return ctx.SendEmail(journey.Email{Template: "nudge", To: "x@example.com"})
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	e.send("u1", "", "go", nil)
	st := e.waitStatus("u1", "deferred", journeys.StatusCompleted, 5*time.Second)
	if st.ErrorMessage != nil {
		t.Errorf("failed: %s", *st.ErrorMessage)
	}
	if n := len(e.waitEmails(1, 5*time.Second)); n != 1 {
		t.Errorf("%d emails, want 1", n)
	}
}

// A wait begun after a sleep counts events by their position in EVENTS,
// not their timestamps: an event published after the wait began counts
// even when it carries an earlier time (a bucket transition is stamped
// with its source event's time); one published before does not.
func TestWaitAfterWakeCountsByPosition(t *testing.T) {
	t.Parallel()
	j := journey.MustDefine(journey.Meta{ID: "later", Name: "Later", EntryLimit: journey.Once, Trigger: journey.OnEvent("go")},
		func(ctx *journey.Ctx, u journey.User) error {
			ctx.Sleep(300 * time.Millisecond)
			w, err := ctx.WaitForEvent("late", time.Hour)
			if err != nil || w.TimedOut {
				return err
			}
			ctx.Checkpoint("got-late")
			return nil
		})
	e := startEngine(t, []*journey.Journey{j}, engineOptions{})
	e.send("u1", "", "go", nil)
	e.send("u1", "", "late", nil) // before the wait began: does not count
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st := e.states("u1", "later"); len(st) == 1 && st[0].CurrentNodeID == "wait-event:late" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if st := e.states("u1", "later"); st[0].Status != journeys.StatusWaiting {
		t.Fatalf("state %+v: an event from before the wait ended it", st[0])
	}
	ev := &streams.Event{V: streams.EnvelopeVersion, ID: uuid.Must(uuid.NewV7()).String(), Type: streams.TypeTrack,
		Name: "late", UserID: "u1", ReceivedAt: time.Now().Add(-time.Hour).UTC(), Source: "test"}
	if _, err := e.pub.PublishEvent(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	st := e.waitStatus("u1", "later", journeys.StatusCompleted, 5*time.Second)
	if st.CurrentNodeID != "got-late" {
		t.Errorf("state %+v", st)
	}
}

// Guard 4 with a period: a second trigger within the period is skipped
// because the prior run's creation time is read back (a lost time would
// admit it), and the contacts.timezone column outranks the zone property.
func TestEntryPeriodAndZoneColumn(t *testing.T) {
	t.Parallel()
	daily := journey.MustDefine(journey.Meta{ID: "daily", Name: "Daily", EntryLimit: journey.OncePerPeriod, EntryPeriod: time.Hour,
		Trigger: journey.OnEvent("ping")},
		func(ctx *journey.Ctx, u journey.User) error { return nil })
	zoned := journey.MustDefine(journey.Meta{ID: "zoned", Name: "Zoned", EntryLimit: journey.Once, Trigger: journey.OnEvent("zone_check")},
		func(ctx *journey.Ctx, u journey.User) error {
			ctx.Sleep(time.Hour)
			return nil
		})
	e := startEngine(t, []*journey.Journey{daily, zoned}, engineOptions{})
	ctx := context.Background()

	e.send("u1", "", "ping", nil)
	e.waitStatus("u1", "daily", journeys.StatusCompleted, 5*time.Second)
	e.send("u1", "", "ping", nil) // within the hour: skipped
	e.send("u2", "", "ping", nil) // another contact: enrols
	e.waitStatus("u2", "daily", journeys.StatusCompleted, 5*time.Second)

	e.sendContact("tokyo", map[string]any{"plan": "pro"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		tag, err := e.pool.Exec(ctx, `UPDATE contacts SET timezone = 'Asia/Tokyo' WHERE external_id = 'tokyo'`)
		if err != nil {
			t.Fatal(err)
		}
		if tag.RowsAffected() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("contact tokyo was not created")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.sendWith("tokyo", "zone_check", "", nil, map[string]any{"timezone": "America/New_York"})
	st := e.waitStatus("tokyo", "zoned", journeys.StatusWaiting, 5*time.Second)
	var zone string
	if err := e.pool.QueryRow(ctx, `SELECT timezone FROM journey_states WHERE id = $1`, st.ID).Scan(&zone); err != nil {
		t.Fatal(err)
	}
	if zone != "Asia/Tokyo" {
		t.Errorf("state zone %q, want Asia/Tokyo from the contacts column", zone)
	}
	if n := len(e.states("u1", "daily")); n != 1 {
		t.Errorf("u1 has %d daily states, want 1 (the second ping is within the period)", n)
	}
}

// Journey code that blocks past the run deadline is failed and abandoned:
// the contact's partition goes on (a later enrolment of a contact on the
// same partition completes), and whatever the stuck goroutine does once it
// wakes up records and sends nothing. Code that passes ctx.Context() to
// its blocking calls is released at the deadline.
func TestRunDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	woke := make(chan struct{})
	stuck := journey.MustDefine(journey.Meta{ID: "stuck", Name: "Stuck", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("stuck")},
		func(ctx *journey.Ctx, u journey.User) error {
			<-release // ignores its context
			defer close(woke)
			return ctx.SendEmail(journey.Email{Template: "too-late"})
		})
	polite := journey.MustDefine(journey.Meta{ID: "polite", Name: "Polite", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("polite")},
		func(ctx *journey.Ctx, u journey.User) error {
			<-ctx.Context().Done()
			return ctx.Context().Err()
		})
	graceful := journey.MustDefine(journey.Meta{ID: "graceful", Name: "Graceful", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("graceful")},
		func(ctx *journey.Ctx, u journey.User) error {
			<-ctx.Context().Done()
			ctx.Checkpoint("gave-up") // still allowed in the grace period
			return nil
		})
	quick := journey.MustDefine(journey.Meta{ID: "quick", Name: "Quick", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("quick")},
		func(ctx *journey.Ctx, u journey.User) error {
			return ctx.SendEmail(journey.Email{Template: "hello"})
		})
	e := startEngine(t, []*journey.Journey{stuck, polite, graceful, quick}, engineOptions{runTimeout: 300 * time.Millisecond})

	e.send("u1", "u1@example.com", "stuck", nil)
	e.send("u1", "u1@example.com", "quick", nil) // same contact, so same partition: waits for the stuck run
	st := e.waitStatus("u1", "stuck", journeys.StatusFailed, 5*time.Second)
	if st.ErrorMessage == nil || !strings.Contains(*st.ErrorMessage, "did not return within 300ms") {
		t.Errorf("stuck state error %v, want the run deadline", st.ErrorMessage)
	}
	e.waitStatus("u1", "quick", journeys.StatusCompleted, 5*time.Second)

	// Code that honours its context fails or finishes on its own terms.
	e.send("u2", "", "polite", nil)
	if st := e.waitStatus("u2", "polite", journeys.StatusFailed, 5*time.Second); st.ErrorMessage == nil || *st.ErrorMessage != context.DeadlineExceeded.Error() {
		t.Errorf("polite state error %v, want its own %q", st.ErrorMessage, context.DeadlineExceeded)
	}
	e.send("u4", "", "graceful", nil)
	e.waitStatus("u4", "graceful", journeys.StatusCompleted, 5*time.Second)

	// The stuck goroutine wakes up and tries to send: it is ended first.
	close(release)
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("the abandoned run did not wake up")
	}
	e.send("u3", "u3@example.com", "quick", nil)
	e.waitStatus("u3", "quick", journeys.StatusCompleted, 5*time.Second)
	for _, c := range e.waitEmails(2, 5*time.Second) {
		if c.Cmd.Template != "hello" {
			t.Errorf("email command %q from an abandoned run", c.Cmd.Template)
		}
	}
	if n := len(e.emails()); n != 2 {
		t.Errorf("EMAILS holds %d commands, want 2 (the quick runs)", n)
	}
}

// New states are inserted when the batch ends, so the consumer decides
// in memory what the unique indexes would refuse: ACTIVITY carrying an
// event that already enrolled (a replay, here twice at once) enrols
// nothing, a pair with a soft-deleted live run enrols nothing, and
// neither holds up the other contacts of the batch.
func TestEnrolmentRefusalsDecidedInMemory(t *testing.T) {
	t.Parallel()
	again := journey.MustDefine(journey.Meta{ID: "again", Name: "Again", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("again")},
		func(ctx *journey.Ctx, u journey.User) error { return ctx.SendEmail(journey.Email{Template: "hello"}) })
	e := startEngine(t, []*journey.Journey{again}, engineOptions{})
	ctx := context.Background()

	evID := e.send("r1", "r1@example.com", "again", nil)
	e.waitStatus("r1", "again", journeys.StatusCompleted, 5*time.Second)
	// Find the ACTIVITY message of that event and publish it again, twice,
	// as a replay of the stream would deliver it.
	cons, err := e.js.OrderedConsumer(ctx, streams.StreamActivity, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var act streams.Activity
	for act.Event.ID != evID {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("find the activity of %s: %v", evID, err)
		}
		act = streams.Activity{}
		if err := json.Unmarshal(msg.Data(), &act); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(act)
	for i := range 2 {
		if _, err := e.pub.Publish(ctx, streams.ActivitySubject(act.ContactID), fmt.Sprintf("replay-%d-%s", i, evID), data, nil); err != nil {
			t.Fatal(err)
		}
	}

	// A soft-deleted live run of (b1, again) holds the pair's live slot.
	if _, err := e.pool.Exec(ctx, `INSERT INTO journey_states (id, user_id, journey_id, status, trigger_event_id, deleted_at)
		VALUES (gen_random_uuid(), 'b1', 'again', 'active', 'manual', now())`); err != nil {
		t.Fatal(err)
	}
	e.send("b1", "b1@example.com", "again", nil)
	e.send("b2", "b2@example.com", "again", nil)
	e.waitStatus("b2", "again", journeys.StatusCompleted, 5*time.Second)

	if n := len(e.states("r1", "again")); n != 1 {
		t.Errorf("r1 has %d states after the replayed activity, want 1", n)
	}
	if st := e.states("b1", "again"); len(st) != 1 || st[0].Status != journeys.StatusActive {
		t.Errorf("b1 states %+v, want only the soft-deleted live one", st)
	}
	if n := len(e.emails()); n != 2 {
		t.Errorf("EMAILS holds %d commands, want 2 (r1 once, b2)", n)
	}
	var dead int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	if dead != 0 {
		t.Errorf("%d dead letters, want none", dead)
	}
}

// An enrolment after a fold (identity merge) in the same batch still
// counts the runs enrolled earlier in the batch: a Once journey enrols a
// key once even when guard 4 is re-read for the fold's target.
func TestEntryLimitAfterFoldInOneBatch(t *testing.T) {
	t.Parallel()
	once := journey.MustDefine(journey.Meta{ID: "once", Name: "Once", EntryLimit: journey.Once, Trigger: journey.OnEvent("go")},
		func(ctx *journey.Ctx, u journey.User) error { return nil })
	pool := schematest.NewPool(t)
	reg, err := journey.NewRegistry("", once)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := journeys.New(pool, nil, reg, journeys.Options{NoLifecycleEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	act := func(seq uint64, key, name string, folds ...streams.Fold) bus.Msg {
		a := streams.Activity{V: 1, Seq: seq, Key: key, ContactID: uuid.NewString(), Stored: true, Folds: folds,
			Event: streams.Event{V: streams.EnvelopeVersion, ID: uuid.NewString(), Type: streams.TypeTrack, Name: name,
				UserID: key, ReceivedAt: time.Now().UTC(), Source: "test"}}
		data, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		return bus.Msg{Seq: seq, Data: data}
	}
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	msgs := []bus.Msg{act(1, "u1", "identified", streams.Fold{From: "anon-1", To: "u1"}), act(2, "u1", "go"), act(3, "u1", "go")}
	if _, err := svc.Apply(ctx, tx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM journey_states WHERE user_id = 'u1' AND journey_id = 'once'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("u1 has %d states of a once journey, want 1", n)
	}
}
