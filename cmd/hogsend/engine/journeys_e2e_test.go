package engine

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
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

// outboxMessage is a message of the dev outbox as the admin API shows it.
type outboxMessage struct {
	ID      string            `json:"id"`
	To      []string          `json:"to"`
	From    string            `json:"from"`
	Subject string            `json:"subject"`
	Headers map[string]string `json:"headers"`
	HTML    string            `json:"html"`
	Text    string            `json:"text"`
}

// outbox lists the dev outbox, newest first, with each message in full.
func outbox(t *testing.T, admin *apiclient.Client) []outboxMessage {
	t.Helper()
	var list struct {
		Messages []outboxMessage `json:"messages"`
	}
	if err := admin.Do(ctxT(t), http.MethodGet, "/v1/admin/outbox?limit=100", nil, &list); err != nil {
		t.Fatal(err)
	}
	for i, m := range list.Messages {
		if err := admin.Do(ctxT(t), http.MethodGet, "/v1/admin/outbox/"+m.ID, nil, &list.Messages[i]); err != nil {
			t.Fatal(err)
		}
	}
	return list.Messages
}

// An event posted to the API enrols the contact; the journey's first email
// is a command on EMAILS; the awaited event resumes it; the contact's
// timeline shows the journey.
func TestJourneyEndToEnd(t *testing.T) {
	t.Parallel()
	_, admin := startMainWith(t, testConfig(t), withJourneys(e2eJourney))
	ctx := ctxT(t)
	if _, err := admin.SendEvent(ctx, apiclient.Event{Name: "signup", UserID: "j-1", Email: "Ada@Example.com", EventProperties: map[string]any{"plan": "pro"}}); err != nil {
		t.Fatal(err)
	}
	var sent []outboxMessage
	eventually(t, 10*time.Second, func() bool { sent = outbox(t, admin); return len(sent) == 1 },
		func() string { return "the welcome email in the dev outbox" })
	if m := sent[0]; m.To[0] != "Ada@Example.com" || !strings.Contains(m.HTML, "/v1/t/o/") || m.Headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Errorf("sent %+v", m)
	}
	if _, err := admin.SendEvent(ctx, apiclient.Event{Name: "activated", UserID: "j-1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { sent = outbox(t, admin); return len(sent) == 2 },
		func() string { return "the second email after activation" })
	if sent[0].Subject != "You are all set" {
		t.Errorf("second email %q, want the activated branch", sent[0].Subject)
	}
	r, err := admin.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := r.Components["journeys"]; !ok || c.Lag == nil {
		t.Errorf("readiness lacks the journeys consumer: %+v", r)
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
	// signup, activated (events), the journey and its two emails: five
	// entries, paged.
	if all.Total != 5 || len(all.Timeline) != 2 {
		t.Errorf("merged timeline total %d with %d entries, want 5 and 2", all.Total, len(all.Timeline))
	}
	mails, err := admin.ContactTimeline(ctx, "j-1", apiclient.TimelineParams{Type: "email"})
	if err != nil {
		t.Fatal(err)
	}
	if mails.Total != 2 || mails.Timeline[0].Data["status"] != "sent" || mails.Timeline[0].Data["subject"] != "You are all set" {
		t.Errorf("email timeline %+v", mails)
	}
}

// RFC 8058 one-click: a POST of List-Unsubscribe=One-Click to the URL of a
// sent email's List-Unsubscribe header unsubscribes the address, and the
// next email to it is withheld (a failed row, nothing sent).
func TestOneClickUnsubscribe(t *testing.T) {
	t.Parallel()
	m, admin := startMainWith(t, testConfig(t), withJourneys(e2eJourney))
	ctx := ctxT(t)
	if _, err := admin.SendEvent(ctx, apiclient.Event{Name: "signup", UserID: "oc-1", Email: "grace@example.com"}); err != nil {
		t.Fatal(err)
	}
	var sent []outboxMessage
	eventually(t, 10*time.Second, func() bool { sent = outbox(t, admin); return len(sent) == 1 },
		func() string { return "the welcome email" })
	link := strings.TrimSuffix(strings.TrimPrefix(sent[0].Headers["List-Unsubscribe"], "<"), ">")
	if !strings.HasPrefix(link, m.Config.PublicURL+"/v1/email/unsubscribe?token=") {
		t.Fatalf("List-Unsubscribe %q", sent[0].Headers["List-Unsubscribe"])
	}
	// The link carries the public URL; the test server listens elsewhere.
	local := m.URL() + strings.TrimPrefix(link, m.Config.PublicURL)
	resp, err := http.Post(local, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click POST: %d", resp.StatusCode)
	}
	var res map[string]any
	if _, err := admin.DoRequest(ctx, http.MethodPost, "/v1/emails", map[string]any{"to": "grace@example.com", "template": "nudge"}, &res); err != nil {
		t.Fatal(err)
	}
	if res["status"] != "unsubscribed" {
		t.Errorf("next send %v, want withheld as unsubscribed", res)
	}
	if got := outbox(t, admin); len(got) != 1 {
		t.Errorf("%d messages in the outbox, want still 1", len(got))
	}
}

// Spec 10 scenario 29 through the API: a journey with exitOn purchased is
// sleeping; POST /v1/events purchased answers exits [{exited: true}] and
// the state becomes exited; an event that matches no exitOn reports the
// state with exited false.
func TestExitReportedByIngest(t *testing.T) {
	t.Parallel()
	trial := journey.MustDefine(journey.Meta{ID: "e2e-trial", Name: "E2E trial", EntryLimit: journey.Once,
		Trigger: journey.OnEvent("trial_started"), ExitOn: []journey.Exit{{Event: "purchased"}}},
		func(ctx *journey.Ctx, u journey.User) error {
			ctx.Sleep(72 * time.Hour)
			return ctx.SendEmail(journey.Email{Template: "trial-ending"})
		})
	_, admin := startMainWith(t, testConfig(t), withJourneys(trial))
	ctx := ctxT(t)
	if _, err := admin.SendEvent(ctx, apiclient.Event{Name: "trial_started", UserID: "x-1", Email: "x1@example.com"}); err != nil {
		t.Fatal(err)
	}
	var states struct {
		States []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"states"`
	}
	eventually(t, 10*time.Second, func() bool {
		if err := admin.Do(ctx, http.MethodGet, "/v1/admin/journeys/e2e-trial/states?userId=x-1", nil, &states); err != nil {
			t.Fatal(err)
		}
		return len(states.States) == 1 && states.States[0].Status == "waiting"
	}, func() string { return "a waiting state" })
	type answer struct {
		Stored bool `json:"stored"`
		Exits  []struct {
			JourneyID string `json:"journeyId"`
			StateID   string `json:"stateId"`
			Exited    bool   `json:"exited"`
		} `json:"exits"`
	}
	var a answer
	if err := admin.Do(ctx, http.MethodPost, "/v1/events", map[string]any{"name": "page_view", "userId": "x-1"}, &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Exits) != 1 || a.Exits[0].Exited || a.Exits[0].StateID != states.States[0].ID {
		t.Errorf("page_view answer %+v, want the state checked and not exited", a)
	}
	if err := admin.Do(ctx, http.MethodPost, "/v1/events", map[string]any{"name": "purchased", "userId": "x-1"}, &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Exits) != 1 || !a.Exits[0].Exited || a.Exits[0].JourneyID != "e2e-trial" {
		t.Errorf("purchased answer %+v, want exited", a)
	}
	eventually(t, 10*time.Second, func() bool {
		if err := admin.Do(ctx, http.MethodGet, "/v1/admin/journeys/e2e-trial/states?userId=x-1", nil, &states); err != nil {
			t.Fatal(err)
		}
		return states.States[0].Status == "exited"
	}, func() string { return "the state exited" })
}

// The engagement loop: a journey sends, waits for email.opened, and the
// open pixel of the email it sent resumes it.
func TestJourneyWaitsForOpen(t *testing.T) {
	t.Parallel()
	opened := journey.MustDefine(journey.Meta{ID: "e2e-open", Name: "E2E open", EntryLimit: journey.Once, Trigger: journey.OnEvent("signup")},
		func(ctx *journey.Ctx, u journey.User) error {
			if err := ctx.SendEmail(journey.Email{Template: "welcome"}); err != nil {
				return err
			}
			w, err := ctx.WaitForEvent("email.opened", time.Hour)
			if err != nil || w.TimedOut {
				return err
			}
			return ctx.SendEmail(journey.Email{Template: "nudge", Subject: "Thanks for reading"})
		})
	m, admin := startMainWith(t, testConfig(t), withJourneys(opened))
	ctx := ctxT(t)
	if _, err := admin.SendEvent(ctx, apiclient.Event{Name: "signup", UserID: "op-1", Email: "op@example.com"}); err != nil {
		t.Fatal(err)
	}
	var sent []outboxMessage
	eventually(t, 10*time.Second, func() bool { sent = outbox(t, admin); return len(sent) == 1 }, func() string { return "the welcome email" })
	i := strings.Index(sent[0].HTML, "/v1/t/o/")
	if i < 0 {
		t.Fatal("no open pixel")
	}
	pixel := m.URL() + sent[0].HTML[i:i+len("/v1/t/o/")+36]
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pixel, nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Thunderbird/128.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, 10*time.Second, func() bool { sent = outbox(t, admin); return len(sent) == 2 },
		func() string { return "the email sent after the open" })
	if sent[0].Subject != "Thanks for reading" {
		t.Errorf("second email %q", sent[0].Subject)
	}
}
