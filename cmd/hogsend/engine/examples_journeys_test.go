package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// stockTemplateKeys are the template keys the stock binary ships; the example
// journeys must send nothing else.
var stockTemplateKeys = []string{"welcome", "nudge", "trial-ending", "payment-failed", "win-back", "nps"}

// fakeJourneyRuntime is a journey.Runtime for unit tests of journey code: blocking
// calls return at once with the configured results and move the clock as the
// durable runtime would. It records what the run asked for.
type fakeJourneyRuntime struct {
	t *testing.T

	now          time.Time
	zone         *time.Location
	window       *journey.Window
	events       map[string]journey.EventHistory   // HasEvent answers, by event
	arrives      map[string]bool                   // WaitForEvent: the event arrives (else the wait times out)
	journeys     map[string]journey.JourneyHistory // JourneyHistory answers, by journey id
	emailHist    map[string]journey.EmailHistory   // EmailHistory answers, by template
	unsubscribed bool

	calls       []string // every step, in order ("email:welcome", "sleep:48h0m0s", ...)
	emails      []journey.Email
	sleeps      []time.Duration
	sleepsUntil []time.Time
	waits       []string // "event/timeout"
	checkpoints []string
	triggers    []journey.Event
	captures    []string
	identifies  []map[string]any
}

// fakeEnrolledAt is the fake's default Now: a Tuesday afternoon.
var fakeEnrolledAt = time.Date(2025, 6, 10, 15, 0, 0, 0, time.UTC)

func newFakeJourneyRuntime(t *testing.T) *fakeJourneyRuntime {
	return &fakeJourneyRuntime{t: t, now: fakeEnrolledAt}
}

func (f *fakeJourneyRuntime) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeJourneyRuntime) Now() time.Time { return f.now }

func (f *fakeJourneyRuntime) Sleep(d time.Duration, label string) journey.Slept {
	f.record("sleep:%s", d)
	f.sleeps = append(f.sleeps, d)
	at := f.now
	f.now = f.now.Add(d)
	return journey.Slept{SleptAt: at, ResumedAt: f.now}
}

func (f *fakeJourneyRuntime) SleepUntil(at time.Time, label string) journey.Slept {
	f.record("sleep-until:%s", at.UTC().Format(time.RFC3339))
	f.sleepsUntil = append(f.sleepsUntil, at)
	from := f.now
	if at.After(f.now) {
		f.now = at
	}
	return journey.Slept{SleptAt: from, ResumedAt: f.now}
}

func (f *fakeJourneyRuntime) WaitForEvent(event string, timeout time.Duration, label string) journey.Waited {
	f.record("wait:%s", event)
	f.waits = append(f.waits, event+"/"+timeout.String())
	if f.arrives[event] {
		f.now = f.now.Add(time.Hour)
		return journey.Waited{EventID: "ev-" + event}
	}
	f.now = f.now.Add(timeout)
	return journey.Waited{TimedOut: true}
}

func (f *fakeJourneyRuntime) Checkpoint(label string) {
	f.record("checkpoint:%s", label)
	f.checkpoints = append(f.checkpoints, label)
}

func (f *fakeJourneyRuntime) SendEmail(e journey.Email) error {
	f.record("email:%s", e.Template)
	if !slices.Contains(stockTemplateKeys, e.Template) {
		f.t.Errorf("email template %q is not a stock template %v", e.Template, stockTemplateKeys)
	}
	if e.Subject == "" {
		f.t.Errorf("email %q has no subject", e.Template)
	}
	f.emails = append(f.emails, e)
	return nil
}

func (f *fakeJourneyRuntime) Trigger(e journey.Event) error {
	f.record("trigger:%s", e.Name)
	f.triggers = append(f.triggers, e)
	return nil
}

func (f *fakeJourneyRuntime) Identify(props map[string]any) {
	f.record("identify")
	f.identifies = append(f.identifies, props)
}

func (f *fakeJourneyRuntime) Capture(event string, props map[string]any) {
	f.record("capture:%s", event)
	f.captures = append(f.captures, event)
}

func (f *fakeJourneyRuntime) IsSubscribed() bool {
	f.record("is-subscribed")
	return !f.unsubscribed
}

func (f *fakeJourneyRuntime) HasEvent(event string, within time.Duration) journey.EventHistory {
	f.record("has-event:%s", event)
	return f.events[event]
}

func (f *fakeJourneyRuntime) JourneyHistory(journeyID string) journey.JourneyHistory {
	f.record("journey-history:%s", journeyID)
	return f.journeys[journeyID]
}

func (f *fakeJourneyRuntime) EmailHistory(template string) journey.EmailHistory {
	f.record("email-history:%s", template)
	return f.emailHist[template]
}

func (f *fakeJourneyRuntime) Zone() *time.Location {
	if f.zone == nil {
		return time.UTC
	}
	return f.zone
}

func (f *fakeJourneyRuntime) SendWindow() *journey.Window { return f.window }

// templates lists the templates sent, in order.
func (f *fakeJourneyRuntime) templates() []string {
	out := []string{}
	for _, e := range f.emails {
		out = append(out, e.Template)
	}
	return out
}

// runJourney runs j's body once against f for a contact whose trigger event carried
// props, with the journey's send window as the runtime would pass it.
func runJourney(t *testing.T, j *journey.Journey, f *fakeJourneyRuntime, props map[string]any) *fakeJourneyRuntime {
	t.Helper()
	if f.window == nil {
		f.window = j.Meta().SendWindow
	}
	if props == nil {
		props = map[string]any{}
	}
	u := journey.User{
		Key: "u-1", Email: "u1@example.com", Properties: props,
		StateID: "state-1", JourneyID: j.ID(), JourneyName: j.Name(),
	}
	if err := j.Func()(journey.NewCtx(f), u); err != nil {
		t.Fatalf("%s: run: %v", j.ID(), err)
	}
	return f
}

func exampleJourneyByID(t *testing.T, id string) *journey.Journey {
	t.Helper()
	for _, j := range exampleJourneys() {
		if j.ID() == id {
			return j
		}
	}
	t.Fatalf("no example journey %q", id)
	return nil
}

func TestExampleJourneysRegister(t *testing.T) {
	js := exampleJourneys()
	reg, err := journey.NewRegistry("", js...)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	if len(js) != 10 || len(reg.All()) != len(js) {
		t.Fatalf("%d example journeys, %d registered; want 10", len(js), len(reg.All()))
	}

	bucketIDs := map[string]bool{}
	for _, b := range exampleBuckets() {
		bucketIDs[b.ID()] = true
	}
	seen := map[string]bool{}
	for _, j := range js {
		id := j.ID()
		if seen[id] {
			t.Errorf("duplicate journey id %q", id)
		}
		seen[id] = true
		if strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			t.Errorf("journey id %q: want lowercase letters, digits and '-'", id)
		}
		m := j.Meta()
		if d := m.Description; d == "" || strings.Contains(d, "\n") {
			t.Errorf("%s: description %q, want one line", id, d)
		}
		if !j.Enabled() || j.IsReaction() {
			t.Errorf("%s: enabled %v, reaction %v", id, j.Enabled(), j.IsReaction())
		}
		// A journey on a bucket transition must name a shipped bucket.
		if b, ok := strings.CutPrefix(j.TriggerEvent(), "bucket:entered:"); ok && !bucketIDs[b] {
			t.Errorf("%s: triggers on %s, but no example bucket %q", id, j.TriggerEvent(), b)
		}
	}
}

func TestExampleBucketsWentDormant(t *testing.T) {
	defs := exampleBuckets()
	if _, err := buckets.NewRegistry("", defs...); err != nil {
		t.Fatalf("buckets.NewRegistry: %v", err)
	}
	var dormant *buckets.Bucket
	for _, b := range defs {
		if b.ID() == "went-dormant" {
			dormant = b
		}
	}
	if dormant == nil {
		t.Fatal("exampleBuckets has no went-dormant bucket")
	}
	if !dormant.IsTimeBased() || !reflect.DeepEqual(dormant.EventNames(), []string{"app_open"}) {
		t.Errorf("went-dormant: time-based %v, events %v", dormant.IsTimeBased(), dormant.EventNames())
	}
	if got, want := exampleJourneyByID(t, "dormant-win-back").TriggerEvent(), buckets.EnteredEvent("went-dormant"); got != want {
		t.Errorf("dormant-win-back triggers on %q, want %q", got, want)
	}
}

// TestExampleJourneysDefaultPath runs every journey once with no history, no
// awaited event arriving and a subscribed contact: the "nothing happened"
// path of each.
func TestExampleJourneysDefaultPath(t *testing.T) {
	want := map[string][]string{
		"welcome":                {"welcome", "nudge"},
		"trial-conversion":       {"trial-ending", "trial-ending"},
		"payment-recovery":       {"payment-failed", "payment-failed", "payment-failed"},
		"dormant-win-back":       {"win-back", "win-back"},
		"nps-survey":             {"nps", "nps"},
		"abandoned-checkout":     {"nudge", "nudge"},
		"power-user-trial":       {},
		"onboarding-checklist":   {"nudge", "nudge", "nudge"},
		"downgrade-reengagement": {"nudge", "win-back"},
		"usage-limit-warning":    {"nudge"},
	}
	for _, j := range exampleJourneys() {
		t.Run(j.ID(), func(t *testing.T) {
			w, ok := want[j.ID()]
			if !ok {
				t.Fatalf("no expectation for %s", j.ID())
			}
			f := runJourney(t, j, newFakeJourneyRuntime(t), nil)
			if got := f.templates(); !slices.Equal(got, w) {
				t.Errorf("emails %v, want %v (calls %v)", got, w, f.calls)
			}
			// A run lives at most 720 h.
			if f.now.Sub(fakeEnrolledAt) > journey.MaxWait {
				t.Errorf("run spans %s", f.now.Sub(fakeEnrolledAt))
			}
		})
	}
}

func TestJourneyWelcomeBranchesOnFeatureUse(t *testing.T) {
	j := exampleJourneyByID(t, "welcome")
	if !j.Matches("signup", nil) || j.EntryLimit() != journey.Once {
		t.Errorf("welcome: trigger %q, limit %s", j.TriggerEvent(), j.EntryLimit())
	}

	f := runJourney(t, j, newFakeJourneyRuntime(t), map[string]any{"name": "Ada"})
	if got, want := f.calls, []string{"email:welcome", "sleep:48h0m0s", "has-event:feature_used", "email:nudge"}; !slices.Equal(got, want) {
		t.Errorf("without feature use: calls %v, want %v", got, want)
	}
	if f.emails[0].Props["name"] != "Ada" {
		t.Errorf("welcome props %v", f.emails[0].Props)
	}

	f = newFakeJourneyRuntime(t)
	f.events = map[string]journey.EventHistory{"feature_used": {Found: true, Count: 2}}
	runJourney(t, j, f, nil)
	if got := f.templates(); !slices.Equal(got, []string{"welcome"}) {
		t.Errorf("with feature use: emails %v, want only welcome", got)
	}
	if f.emails[0].Props["name"] != "there" {
		t.Errorf("welcome props without a name %v", f.emails[0].Props)
	}
}

func TestJourneyTrialConversionSchedulesAtNine(t *testing.T) {
	j := exampleJourneyByID(t, "trial-conversion")
	if !j.ExitMatches("subscription_started", nil) {
		t.Error("trial-conversion does not exit on subscription_started")
	}
	if w := j.Meta().SendWindow; w == nil {
		t.Error("trial-conversion has no send window")
	}

	// Enrolled Tuesday 2025-06-10 15:00 UTC for 14 days: the trial ends on
	// 06-24, so 3 days left is 06-21 and 1 day left 06-23, at 09:00.
	f := runJourney(t, j, newFakeJourneyRuntime(t), map[string]any{"trialDays": 14.0})
	want := []time.Time{
		time.Date(2025, 6, 21, 9, 0, 0, 0, time.UTC),
		time.Date(2025, 6, 23, 9, 0, 0, 0, time.UTC),
	}
	if !slices.EqualFunc(f.sleepsUntil, want, time.Time.Equal) {
		t.Errorf("sleeps until %v, want %v", f.sleepsUntil, want)
	}
	if len(f.emails) != 2 || f.emails[0].Props["daysLeft"] != 3 || f.emails[1].Props["daysLeft"] != 1 {
		t.Errorf("emails %+v", f.emails)
	}

	// In the contact's zone: 09:00 in New York is 13:00 UTC in June.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatalf("load America/New_York (the zone database is compiled in by services/journeys/schedule): %v", err)
	}
	f = newFakeJourneyRuntime(t)
	f.zone = ny
	runJourney(t, j, f, map[string]any{"trialDays": json.Number("7")})
	want = []time.Time{
		time.Date(2025, 6, 14, 13, 0, 0, 0, time.UTC),
		time.Date(2025, 6, 16, 13, 0, 0, 0, time.UTC),
	}
	if !slices.EqualFunc(f.sleepsUntil, want, time.Time.Equal) {
		t.Errorf("New York: sleeps until %v, want %v", f.sleepsUntil, want)
	}

	// A two-day trial only has room for the last reminder.
	f = runJourney(t, j, newFakeJourneyRuntime(t), map[string]any{"trialDays": 2})
	if len(f.emails) != 1 || f.emails[0].Props["daysLeft"] != 1 {
		t.Errorf("two-day trial: emails %+v", f.emails)
	}
}

func TestJourneyPaymentRecoverySendsThreeReminders(t *testing.T) {
	j := exampleJourneyByID(t, "payment-recovery")
	if !j.ExitMatches("payment_succeeded", nil) || j.EntryLimit() != journey.Unlimited {
		t.Errorf("payment-recovery: exits on payment_succeeded %v, limit %s", j.ExitMatches("payment_succeeded", nil), j.EntryLimit())
	}
	f := runJourney(t, j, newFakeJourneyRuntime(t), map[string]any{"amount": "49.00", "currency": "EUR"})
	if got := f.templates(); !slices.Equal(got, []string{"payment-failed", "payment-failed", "payment-failed"}) {
		t.Errorf("emails %v", got)
	}
	if want := []time.Duration{3 * day, 4 * day}; !slices.Equal(f.sleeps, want) {
		t.Errorf("sleeps %v, want %v", f.sleeps, want)
	}
	for i, e := range f.emails {
		if e.Props["attempt"] != i+1 || e.Props["final"] != (i == 2) || e.Props["amount"] != "49.00" {
			t.Errorf("reminder %d props %v", i+1, e.Props)
		}
	}
	if f.calls[0] != "email:payment-failed" {
		t.Errorf("first step %s, want the immediate reminder", f.calls[0])
	}
}

func TestJourneyDormantWinBack(t *testing.T) {
	j := exampleJourneyByID(t, "dormant-win-back")
	f := newFakeJourneyRuntime(t)
	f.arrives = map[string]bool{"app_open": true}
	runJourney(t, j, f, nil)
	if got := f.templates(); !slices.Equal(got, []string{"win-back"}) || !slices.Equal(f.captures, []string{"win_back_returned"}) {
		t.Errorf("came back: emails %v, captures %v", got, f.captures)
	}

	f = runJourney(t, j, newFakeJourneyRuntime(t), nil)
	if got := f.templates(); !slices.Equal(got, []string{"win-back", "win-back"}) || f.emails[1].Props["offer"] == nil {
		t.Errorf("stayed away: emails %+v", f.emails)
	}
	if !slices.Equal(f.waits, []string{"app_open/168h0m0s"}) {
		t.Errorf("waits %v", f.waits)
	}
}

func TestJourneyNPSRemindsOnTimeout(t *testing.T) {
	j := exampleJourneyByID(t, "nps-survey")
	if j.Matches("project_created", map[string]any{"projectCount": 9.0}) ||
		!j.Matches("project_created", map[string]any{"projectCount": 10.0}) ||
		j.Matches("project_created", nil) {
		t.Error("nps-survey must enrol from the 10th project_created on")
	}

	f := runJourney(t, j, newFakeJourneyRuntime(t), map[string]any{"projectCount": 10.0})
	if got := f.templates(); !slices.Equal(got, []string{"nps", "nps"}) {
		t.Fatalf("timed out: emails %v", got)
	}
	if f.emails[0].Props["reminder"] != nil || f.emails[1].Props["reminder"] != true {
		t.Errorf("reminder flags %v / %v", f.emails[0].Props, f.emails[1].Props)
	}
	if !slices.Equal(f.waits, []string{"nps_submitted/168h0m0s"}) {
		t.Errorf("waits %v", f.waits)
	}

	f = newFakeJourneyRuntime(t)
	f.arrives = map[string]bool{"nps_submitted": true}
	runJourney(t, j, f, nil)
	if got := f.templates(); !slices.Equal(got, []string{"nps"}) {
		t.Errorf("answered: emails %v", got)
	}

	// Surveyed a month ago by some other flow: no survey now.
	f = newFakeJourneyRuntime(t)
	last := fakeEnrolledAt.Add(-30 * day)
	f.emailHist = map[string]journey.EmailHistory{"nps": {Sent: true, Count: 1, LastSentAt: &last}}
	runJourney(t, j, f, nil)
	if len(f.emails) != 0 {
		t.Errorf("recently surveyed: emails %v", f.templates())
	}
}

func TestJourneyAbandonedCheckout(t *testing.T) {
	j := exampleJourneyByID(t, "abandoned-checkout")
	if !j.ExitMatches("checkout_completed", nil) {
		t.Error("abandoned-checkout does not exit on checkout_completed")
	}
	f := runJourney(t, j, newFakeJourneyRuntime(t), map[string]any{"cartUrl": "https://shop.example.com/cart/42"})
	if want := []string{"sleep:1h0m0s", "email:nudge", "sleep:23h0m0s", "email:nudge"}; !slices.Equal(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
	if f.emails[0].Props["url"] != "https://shop.example.com/cart/42" {
		t.Errorf("props %v", f.emails[0].Props)
	}
}

func TestJourneyPowerUserTrialEnrolsTrialConversion(t *testing.T) {
	j := exampleJourneyByID(t, "power-user-trial")
	f := runJourney(t, j, newFakeJourneyRuntime(t), nil)
	if len(f.triggers) != 1 || len(f.emails) != 0 {
		t.Fatalf("triggers %+v, emails %v", f.triggers, f.templates())
	}
	ev := f.triggers[0]
	// The published event enrols the contact in trial-conversion.
	reg, err := journey.NewRegistry("", exampleJourneys()...)
	if err != nil {
		t.Fatal(err)
	}
	var enrols []string
	for _, tj := range reg.Triggered(ev.Name) {
		if tj.Matches(ev.Name, ev.Properties) {
			enrols = append(enrols, tj.ID())
		}
	}
	if !slices.Equal(enrols, []string{"trial-conversion"}) {
		t.Errorf("%s enrols %v, want trial-conversion", ev.Name, enrols)
	}
	// …which reads the trial length it carries.
	tf := runJourney(t, exampleJourneyByID(t, "trial-conversion"), newFakeJourneyRuntime(t), ev.Properties)
	if len(tf.sleepsUntil) != 2 || !tf.sleepsUntil[1].Equal(time.Date(2025, 6, 23, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("trial-conversion from the offer sleeps until %v", tf.sleepsUntil)
	}

	for name, f := range map[string]*fakeJourneyRuntime{
		"had a trial": {journeys: map[string]journey.JourneyHistory{"trial-conversion": {EntryCount: 1}}},
		"subscribed":  {events: map[string]journey.EventHistory{"subscription_started": {Found: true, Count: 1}}},
	} {
		f.t, f.now = t, fakeEnrolledAt
		runJourney(t, j, f, nil)
		if len(f.triggers) != 0 {
			t.Errorf("%s: triggers %+v", name, f.triggers)
		}
	}
}

func TestJourneyOnboardingChecklistCheckpoints(t *testing.T) {
	j := exampleJourneyByID(t, "onboarding-checklist")
	f := newFakeJourneyRuntime(t)
	f.events = map[string]journey.EventHistory{"profile_completed": {Found: true, Count: 1}}
	f.arrives = map[string]bool{"teammate_invited": true}
	runJourney(t, j, f, nil)

	want := []string{"checklist:profile_completed", "checklist:teammate_invited", "checklist:integration_connected", "checklist:done"}
	if !slices.Equal(f.checkpoints, want) {
		t.Errorf("checkpoints %v, want %v", f.checkpoints, want)
	}
	if !slices.Equal(f.waits, []string{"teammate_invited/72h0m0s", "integration_connected/72h0m0s"}) {
		t.Errorf("waits %v", f.waits)
	}
	if len(f.emails) != 1 || f.emails[0].Props["step"] != 3 {
		t.Errorf("emails %+v, want one nudge for step 3", f.emails)
	}
	if !slices.Equal(f.captures, []string{"onboarding_checklist_finished"}) {
		t.Errorf("captures %v", f.captures)
	}
}

func TestJourneyDowngradeReengagement(t *testing.T) {
	j := exampleJourneyByID(t, "downgrade-reengagement")
	switch {
	case !j.Matches("plan_changed", map[string]any{"plan": "free"}),
		j.Matches("plan_changed", map[string]any{"plan": "pro"}),
		!j.ExitMatches("plan_changed", map[string]any{"plan": "pro"}),
		j.ExitMatches("plan_changed", map[string]any{"plan": "free"}):
		t.Error("downgrade-reengagement must enrol on a move to free and exit on a move off it")
	}
	if j.EntryLimit() != journey.OncePerPeriod || j.EntryPeriod() != 90*day {
		t.Errorf("limit %s / %s", j.EntryLimit(), j.EntryPeriod())
	}

	f := runJourney(t, j, newFakeJourneyRuntime(t), map[string]any{"previousPlan": "Team"})
	if !slices.Equal(f.sleeps, []time.Duration{3 * day, 11 * day}) || f.emails[1].Props["plan"] != "Team" {
		t.Errorf("sleeps %v, emails %+v", f.sleeps, f.emails)
	}

	f = newFakeJourneyRuntime(t)
	f.unsubscribed = true
	runJourney(t, j, f, nil)
	if got := f.templates(); !slices.Equal(got, []string{"nudge"}) {
		t.Errorf("unsubscribed: emails %v, want no offer", got)
	}
}

func TestJourneyUsageLimitWarning(t *testing.T) {
	j := exampleJourneyByID(t, "usage-limit-warning")
	if j.Matches("usage_threshold_reached", map[string]any{"percent": 79.0}) ||
		!j.Matches("usage_threshold_reached", map[string]any{"percent": 80.0}) {
		t.Error("usage-limit-warning must enrol from 80 percent")
	}
	if j.EntryLimit() != journey.OncePerPeriod || j.EntryPeriod() != 30*day {
		t.Errorf("limit %s / %s", j.EntryLimit(), j.EntryPeriod())
	}

	f := newFakeJourneyRuntime(t)
	f.arrives = map[string]bool{"usage_limit_reached": true}
	runJourney(t, j, f, map[string]any{"percent": 85.0, "resource": "storage"})
	if got := f.templates(); !slices.Equal(got, []string{"nudge", "nudge"}) {
		t.Errorf("limit reached: emails %v", got)
	}
	if f.emails[0].Subject != "You've used 85% of your storage" || len(f.identifies) != 1 {
		t.Errorf("subject %q, identifies %v", f.emails[0].Subject, f.identifies)
	}

	f = runJourney(t, j, newFakeJourneyRuntime(t), map[string]any{"percent": 100.0})
	if len(f.emails) != 1 || len(f.waits) != 0 {
		t.Errorf("at the limit: emails %v, waits %v", f.templates(), f.waits)
	}
}

func TestExampleJourneyPropInt(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int
	}{
		{nil, 7}, {14.0, 14}, {3, 3}, {int64(5), 5}, {json.Number("21"), 21}, {"30", 30},
		{"x", 7}, {true, 7}, {1e300, 7},
	} {
		u := journey.User{Properties: map[string]any{"n": c.v}}
		if got := propInt(u, "n", 7); got != c.want {
			t.Errorf("propInt(%#v) = %d, want %d", c.v, got, c.want)
		}
	}
}
