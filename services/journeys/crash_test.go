package journeys_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/journeys"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// faultyPublisher simulates a worker dying around the publish of each
// email command, once per command: before the publish (the effect is
// recorded, nothing is out) or after it (out, but never acknowledged).
type faultyPublisher struct {
	next          journeys.Publisher
	publishFirst  bool
	mu            sync.Mutex
	faulted, seen map[string]bool
}

func (f *faultyPublisher) PublishAsyncBatch(ctx context.Context, msgs []bus.OutMsg) error {
	var victim string
	f.mu.Lock()
	for _, m := range msgs {
		if m.Subject == streams.EmailSendSubject && !f.faulted[m.MsgID] {
			f.faulted[m.MsgID] = true
			victim = m.MsgID
			break
		}
	}
	f.mu.Unlock()
	if victim == "" || f.publishFirst {
		if err := f.next.PublishAsyncBatch(ctx, msgs); err != nil {
			return err
		}
	}
	if victim != "" {
		return errors.New("injected crash around the publish of " + victim)
	}
	return nil
}

// Crash safety (issue acceptance): a worker killed between an effect's
// record and its publish, or between publish and ack, at every step of a
// three-step journey, publishes each email command exactly once and the
// journey completes. Step one runs on the ACTIVITY consumer, steps two
// and three on the wake-up worker.
func TestCrashAroundEveryEffect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		publishFirst bool
	}{{"between record and publish", false}, {"between publish and ack", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var runs counter
			j := journey.MustDefine(journey.Meta{ID: "three", Name: "Three steps", EntryLimit: journey.Once, Trigger: journey.OnEvent("signup")},
				func(ctx *journey.Ctx, u journey.User) error {
					runs.inc()
					for i, tpl := range []string{"welcome", "nudge", "win-back"} {
						if i > 0 {
							ctx.Sleep(300 * time.Millisecond)
						}
						if err := ctx.SendEmail(journey.Email{Template: tpl}); err != nil {
							return err
						}
					}
					return nil
				})
			var fp *faultyPublisher
			e := startEngine(t, []*journey.Journey{j}, engineOptions{
				wrapPub: func(p journeys.Publisher) journeys.Publisher {
					fp = &faultyPublisher{next: p, publishFirst: tc.publishFirst, faulted: map[string]bool{}, seen: map[string]bool{}}
					return fp
				},
				// A crash after the wake-up committed and published, before
				// its ack: the timer is delivered again.
				afterTimer: crashOnceEach(),
			})
			e.send("u1", "ada@example.com", "signup", nil)
			st := e.waitStatus("u1", "three", journeys.StatusCompleted, 15*time.Second)
			time.Sleep(500 * time.Millisecond) // let redeliveries land
			cmds := e.emails()
			var ids []string
			for _, c := range cmds {
				ids = append(ids, c.MsgID)
			}
			prefix := "journey:" + st.ID.String() + ":"
			want := []string{prefix + "0", prefix + "2", prefix + "4"}
			if strings.Join(ids, ",") != strings.Join(want, ",") {
				t.Errorf("EMAILS holds %v, want each command once: %v", ids, want)
			}
			if len(fp.faulted) != 3 {
				t.Errorf("faults injected for %d commands, want 3", len(fp.faulted))
			}
		})
	}
}

// crashOnceEach fails the first delivery of every timer after its handler
// succeeded.
func crashOnceEach() func(m bus.Msg) error {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(m bus.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		k := string(m.Data)
		if seen[k] {
			return nil
		}
		seen[k] = true
		return errors.New("injected crash before the ack of a wake-up")
	}
}

// A journey sleeping 3 s survives a full restart of the embedded NATS
// server and of every consumer, and resumes once, on time.
func TestSleepSurvivesRestart(t *testing.T) {
	t.Parallel()
	var runs, resumed counter
	j := journey.MustDefine(journey.Meta{ID: "restart", Name: "Restart", EntryLimit: journey.Once, Trigger: journey.OnEvent("signup")},
		func(ctx *journey.Ctx, u journey.User) error {
			runs.inc()
			ctx.Sleep(3 * time.Second)
			resumed.inc()
			return ctx.SendEmail(journey.Email{Template: "nudge"})
		})
	dir := t.TempDir()
	e := startEngine(t, []*journey.Journey{j}, engineOptions{dir: dir})
	e.send("u1", "ada@example.com", "signup", nil)
	st := e.waitStatus("u1", "restart", journeys.StatusWaiting, 5*time.Second)
	e.stop()
	e.srv.Shutdown()

	time.Sleep(500 * time.Millisecond)
	e2 := startEngine(t, []*journey.Journey{j}, engineOptions{dir: dir, pool: e.pool})
	e2.waitStatus("u1", "restart", journeys.StatusCompleted, 6*time.Second)
	var due, resolved time.Time
	if err := e2.pool.QueryRow(context.Background(), `SELECT due_at, resolved_at FROM journey_steps WHERE state_id = $1 AND kind = 'sleep'`, st.ID).Scan(&due, &resolved); err != nil {
		t.Fatal(err)
	}
	if late := resolved.Sub(due); late < 0 || late > time.Second {
		t.Errorf("resumed %s after the deadline, want within 1s", late)
	}
	time.Sleep(300 * time.Millisecond)
	if runs.get() != 2 || resumed.get() != 1 {
		t.Errorf("ran %d times, resumed %d times; want 2 and 1", runs.get(), resumed.get())
	}
	if n := len(e2.emails()); n != 1 {
		t.Errorf("%d email commands, want 1", n)
	}
}
