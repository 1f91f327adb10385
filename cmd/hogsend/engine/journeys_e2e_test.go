package engine

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/streams"
)

// e2eJourney sends a welcome, waits up to an hour for activation and sends
// a second email either way.
var e2eJourney = journey.MustDefine(journey.Meta{
	ID: "e2e-onboarding", Name: "E2E onboarding", EntryLimit: journey.Once,
	Trigger: journey.OnEvent("signup"), ExitOn: []journey.Exit{{Event: "account_deleted"}},
}, func(ctx *journey.Ctx, u journey.User) error {
	if err := ctx.SendEmail(journey.Email{Template: "welcome", Props: map[string]any{"plan": u.Properties["plan"]}}); err != nil {
		return err
	}
	w, err := ctx.WaitForEvent("activated", time.Hour)
	if err != nil {
		return err
	}
	if w.TimedOut {
		return ctx.SendEmail(journey.Email{Template: "nudge"})
	}
	return ctx.SendEmail(journey.Email{Template: "welcome", Subject: "You are all set"})
})

func withJourneys(js ...*journey.Journey) func(*Main) {
	return func(m *Main) { m.Journeys = js }
}

// emailCommands reads the send commands stored on EMAILS.
func emailCommands(t *testing.T, m *Main) []streams.EmailCommand {
	t.Helper()
	ctx := ctxT(t)
	s, err := m.js.Stream(ctx, streams.StreamEmails)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []streams.EmailCommand
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		msg, err := s.GetMsg(ctx, seq)
		if err == jetstream.ErrMsgNotFound {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var c streams.EmailCommand
		if err := json.Unmarshal(msg.Data, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// An event posted to the API enrols the contact; the journey's first email
// is a command on EMAILS; the awaited event resumes it; the contact's
// timeline shows the journey.
func TestJourneyEndToEnd(t *testing.T) {
	t.Parallel()
	m, admin := startMainWith(t, testConfig(t), withJourneys(e2eJourney))
	ctx := ctxT(t)
	if _, err := admin.SendEvent(ctx, apiclient.Event{Name: "signup", UserID: "j-1", Email: "Ada@Example.com", EventProperties: map[string]any{"plan": "pro"}}); err != nil {
		t.Fatal(err)
	}
	var cmds []streams.EmailCommand
	eventually(t, 5*time.Second, func() bool { cmds = emailCommands(t, m); return len(cmds) == 1 },
		func() string { return "the welcome command on EMAILS" })
	if c := cmds[0]; c.Template != "welcome" || c.To != "Ada@Example.com" || c.UserID != "j-1" || c.JourneyID != "e2e-onboarding" || string(c.Props) != `{"plan":"pro"}` {
		t.Errorf("command %+v", c)
	}
	if _, err := admin.SendEvent(ctx, apiclient.Event{Name: "activated", UserID: "j-1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { cmds = emailCommands(t, m); return len(cmds) == 2 },
		func() string { return "the second command after activation" })
	if cmds[1].Subject != "You are all set" {
		t.Errorf("second command %+v, want the activated branch", cmds[1])
	}
	var tl apiclient.Timeline
	eventually(t, 5*time.Second, func() bool {
		var err error
		tl, err = admin.ContactTimeline(ctx, "j-1", apiclient.TimelineParams{Type: "journey"})
		if err != nil {
			t.Fatal(err)
		}
		return len(tl.Timeline) == 1 && tl.Timeline[0].Data["status"] == "completed"
	}, func() string { return "a completed journey on the timeline" })
	if tl.Total != 1 || tl.Timeline[0].Data["journeyId"] != "e2e-onboarding" {
		t.Errorf("timeline %+v", tl)
	}
	all, err := admin.ContactTimeline(ctx, "j-1", apiclient.TimelineParams{Limit: 2, Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	// signup, activated (events) and the journey: three entries, paged.
	if all.Total != 3 || len(all.Timeline) != 2 {
		t.Errorf("merged timeline total %d with %d entries, want 3 and 2", all.Total, len(all.Timeline))
	}
}
