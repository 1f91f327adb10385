package journey_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

func noop(*journey.Ctx, journey.User) error { return nil }

// validMeta is a definition every validation case starts from.
func validMeta() journey.Meta {
	return journey.Meta{
		ID:         "welcome",
		Name:       "Welcome",
		Trigger:    journey.OnEvent("user_signed_up", condition.Prop("plan").Eq("pro")),
		EntryLimit: journey.Once,
		ExitOn:     []journey.Exit{{Event: "user_deleted"}, {Event: "plan_changed", Where: []condition.Node{condition.Prop("plan").Eq("free")}}},
		Timezone:   "Europe/Berlin",
		SendWindow: &journey.Window{Start: "09:00", End: "17:00"},
	}
}

// fieldsOf collects Details["field"] of every errcode error in err's tree
// and fails the test if any error in it is not invalid_request.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var walk func(error)
	walk = func(err error) {
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				walk(e)
			}
			return
		}
		if e, ok := errors.AsType[*errcode.Error](err); ok {
			if e.Code != errcode.CodeInvalidRequest {
				t.Errorf("error %q has code %q, want %q", e, e.Code, errcode.CodeInvalidRequest)
			}
			f, _ := e.Details["field"].(string)
			out = append(out, f)
			return
		}
		t.Errorf("error %q (%T) carries no errcode", err, err)
	}
	walk(err)
	return out
}

func TestDefineValidation(t *testing.T) {
	t.Parallel()
	event := condition.Event("signed_in").Exists()
	tests := []struct {
		name   string
		mutate func(m *journey.Meta)
		nilRun bool
		want   []string // fields, in report order; nil means valid
	}{
		{name: "valid", mutate: func(*journey.Meta) {}},
		{name: "valid minimal", mutate: func(m *journey.Meta) {
			*m = journey.Meta{ID: "a_B-9", Name: "x", Trigger: journey.OnEvent("e"), EntryLimit: journey.Unlimited}
		}},
		{name: "id missing", mutate: func(m *journey.Meta) { m.ID = "" },
			want: []string{`journeys[""].id`}},
		{name: "id unsafe", mutate: func(m *journey.Meta) { m.ID = "wel:come" },
			want: []string{`journeys["wel:come"].id`}},
		{name: "id with space", mutate: func(m *journey.Meta) { m.ID = "wel come" },
			want: []string{`journeys["wel come"].id`}},
		{name: "name missing", mutate: func(m *journey.Meta) { m.Name = "" },
			want: []string{"journeys[welcome].name"}},
		{name: "name blank", mutate: func(m *journey.Meta) { m.Name = "  " },
			want: []string{"journeys[welcome].name"}},
		{name: "trigger event missing", mutate: func(m *journey.Meta) { m.Trigger.Event = "" },
			want: []string{"journeys[welcome].trigger.event"}},
		{name: "trigger on lifecycle event", mutate: func(m *journey.Meta) { m.Trigger.Event = "journey:completed" },
			want: []string{"journeys[welcome].trigger.event"}},
		{name: "trigger where event node", mutate: func(m *journey.Meta) { m.Trigger.Where = []condition.Node{event} },
			want: []string{"journeys[welcome].trigger.where[0].type"}},
		{name: "trigger where composite", mutate: func(m *journey.Meta) {
			m.Trigger.Where = []condition.Node{condition.All(condition.Prop("a").Exists())}
		}, want: []string{"journeys[welcome].trigger.where[0].type"}},
		{name: "trigger where bad property value", mutate: func(m *journey.Meta) {
			m.Trigger.Where = []condition.Node{condition.Prop("a").Exists(), {Type: condition.TypeProperty, Property: "n", Operator: condition.OpGt, Value: "x"}}
		}, want: []string{"journeys[welcome].trigger.where[1].value"}},
		{name: "entry limit missing", mutate: func(m *journey.Meta) { m.EntryLimit = "" },
			want: []string{"journeys[welcome].entryLimit"}},
		{name: "entry limit unknown", mutate: func(m *journey.Meta) { m.EntryLimit = "twice" },
			want: []string{"journeys[welcome].entryLimit"}},
		{name: "entry period negative", mutate: func(m *journey.Meta) { m.EntryLimit = journey.OncePerPeriod; m.EntryPeriod = -time.Second },
			want: []string{"journeys[welcome].entryPeriod"}},
		{name: "entry period with other limit is ignored", mutate: func(m *journey.Meta) { m.EntryPeriod = time.Hour }},
		{name: "exit event missing", mutate: func(m *journey.Meta) { m.ExitOn[1].Event = "" },
			want: []string{"journeys[welcome].exitOn[1].event"}},
		{name: "exit on lifecycle event", mutate: func(m *journey.Meta) { m.ExitOn[0].Event = "journey:failed" },
			want: []string{"journeys[welcome].exitOn[0].event"}},
		{name: "exit where event node", mutate: func(m *journey.Meta) { m.ExitOn[1].Where = []condition.Node{event} },
			want: []string{"journeys[welcome].exitOn[1].where[0].type"}},
		{name: "suppress is ignored", mutate: func(m *journey.Meta) { m.Suppress = -time.Hour }},
		{name: "timezone unknown", mutate: func(m *journey.Meta) { m.Timezone = "Mars/Olympus" },
			want: []string{"journeys[welcome].timezone"}},
		{name: "timezone Local", mutate: func(m *journey.Meta) { m.Timezone = "Local" },
			want: []string{"journeys[welcome].timezone"}},
		{name: "timezone unset", mutate: func(m *journey.Meta) { m.Timezone = "" }},
		{name: "send window start", mutate: func(m *journey.Meta) { m.SendWindow.Start = "24:00" },
			want: []string{"journeys[welcome].sendWindow.start"}},
		{name: "send window end", mutate: func(m *journey.Meta) { m.SendWindow.End = "9:5" },
			want: []string{"journeys[welcome].sendWindow.end"}},
		{name: "send window both missing", mutate: func(m *journey.Meta) { m.SendWindow = &journey.Window{} },
			want: []string{"journeys[welcome].sendWindow.start", "journeys[welcome].sendWindow.end"}},
		{name: "send window overnight", mutate: func(m *journey.Meta) { m.SendWindow = &journey.Window{Start: "22:00", End: " 6:00 "} }},
		{name: "run missing", mutate: func(*journey.Meta) {}, nilRun: true,
			want: []string{"journeys[welcome].run"}},
		{name: "reaction enter", mutate: func(m *journey.Meta) {
			m.SourceBucketID, m.ReactionKind = "power-users", journey.ReactionEnter
		}},
		{name: "reaction dwell", mutate: func(m *journey.Meta) {
			m.SourceBucketID, m.ReactionKind = "power-users", journey.ReactionDwell
			m.DwellSchedule = &journey.DwellSchedule{Label: "after-3600000", After: time.Hour}
		}},
		{name: "reaction kind without bucket", mutate: func(m *journey.Meta) { m.ReactionKind = journey.ReactionLeave },
			want: []string{"journeys[welcome].sourceBucketId"}},
		{name: "reaction bucket without kind", mutate: func(m *journey.Meta) { m.SourceBucketID = "power-users" },
			want: []string{"journeys[welcome].reactionKind"}},
		{name: "reaction kind unknown", mutate: func(m *journey.Meta) { m.SourceBucketID, m.ReactionKind = "b", "stay" },
			want: []string{"journeys[welcome].reactionKind"}},
		{name: "reaction dwell without schedule", mutate: func(m *journey.Meta) { m.SourceBucketID, m.ReactionKind = "b", journey.ReactionDwell },
			want: []string{"journeys[welcome].dwellSchedule"}},
		{name: "reaction dwell with after and every", mutate: func(m *journey.Meta) {
			m.SourceBucketID, m.ReactionKind = "b", journey.ReactionDwell
			m.DwellSchedule = &journey.DwellSchedule{Label: "x", After: time.Hour, Every: time.Hour}
		}, want: []string{"journeys[welcome].dwellSchedule"}},
		{name: "dwell schedule on enter reaction", mutate: func(m *journey.Meta) {
			m.SourceBucketID, m.ReactionKind = "b", journey.ReactionEnter
			m.DwellSchedule = &journey.DwellSchedule{Label: "x", After: time.Hour}
		}, want: []string{"journeys[welcome].dwellSchedule"}},
		{name: "every problem reported", mutate: func(m *journey.Meta) {
			m.Name, m.Trigger.Event, m.EntryLimit, m.Timezone = "", "", "", "Nowhere/Land"
			m.ExitOn = append(m.ExitOn, journey.Exit{})
		}, want: []string{
			"journeys[welcome].name",
			"journeys[welcome].trigger.event",
			"journeys[welcome].entryLimit",
			"journeys[welcome].exitOn[2].event",
			"journeys[welcome].timezone",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := validMeta()
			tt.mutate(&m)
			run := journey.Run(noop)
			if tt.nilRun {
				run = nil
			}
			j, err := journey.Define(m, run)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Define: %v", err)
				}
				if j.ID() != m.ID {
					t.Errorf("ID() = %q, want %q", j.ID(), m.ID)
				}
				return
			}
			if err == nil {
				t.Fatalf("Define succeeded, want errors on %v", tt.want)
			}
			if j != nil {
				t.Errorf("Define returned a journey with an error")
			}
			if !errcode.Is(err, errcode.CodeInvalidRequest) {
				t.Errorf("code = %q, want invalid_request", errcode.Code(err))
			}
			if got := fieldsOf(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("fields = %q, want %q\nerror: %v", got, tt.want, err)
			}
			for _, f := range tt.want {
				if !strings.Contains(err.Error(), f+": ") {
					t.Errorf("message %q does not name %q", err, f)
				}
			}
		})
	}
}

func TestMustDefinePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("MustDefine did not panic")
		}
		if s, _ := r.(string); !strings.Contains(s, "journeys[welcome].name") {
			t.Errorf("panic %v does not name the field", r)
		}
	}()
	m := validMeta()
	m.Name = ""
	journey.MustDefine(m, noop)
}

func TestMetaDefaultsAndCopies(t *testing.T) {
	t.Parallel()
	off := false
	tests := []struct {
		name        string
		mutate      func(m *journey.Meta)
		wantPeriod  time.Duration
		wantEnabled bool
	}{
		{name: "once keeps zero period", mutate: func(*journey.Meta) {}, wantEnabled: true},
		{name: "once_per_period defaults to 24h", mutate: func(m *journey.Meta) { m.EntryLimit = journey.OncePerPeriod },
			wantPeriod: 24 * time.Hour, wantEnabled: true},
		{name: "once_per_period custom", mutate: func(m *journey.Meta) { m.EntryLimit, m.EntryPeriod = journey.OncePerPeriod, time.Hour },
			wantPeriod: time.Hour, wantEnabled: true},
		{name: "statically disabled", mutate: func(m *journey.Meta) { m.Enabled = &off }, wantEnabled: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := validMeta()
			tt.mutate(&m)
			j := journey.MustDefine(m, noop)
			if got := j.Meta().EntryPeriod; got != tt.wantPeriod {
				t.Errorf("Meta().EntryPeriod = %v, want %v", got, tt.wantPeriod)
			}
			if got := j.EntryPeriod(); got != tt.wantPeriod {
				t.Errorf("EntryPeriod() = %v, want %v", got, tt.wantPeriod)
			}
			if j.Enabled() != tt.wantEnabled {
				t.Errorf("Enabled() = %v, want %v", j.Enabled(), tt.wantEnabled)
			}
			if (j.Meta().Enabled == nil) != (m.Enabled == nil) {
				t.Errorf("Meta().Enabled = %v, want it set only when given", j.Meta().Enabled)
			}
		})
	}

	t.Run("isolated from caller", func(t *testing.T) {
		t.Parallel()
		m := validMeta()
		j := journey.MustDefine(m, noop)
		want := j.Meta()

		// Neither the definition's input nor a Meta() result may alias
		// the journey.
		m.Trigger.Where[0].Value = "free"
		m.ExitOn[1].Where[0].Value = "pro"
		m.SendWindow.Start = "00:00"
		got := j.Meta()
		got.Trigger.Where[0].Property = "other"
		got.ExitOn[0].Event = "other"
		got.SendWindow.End = "00:00"

		if !reflect.DeepEqual(j.Meta(), want) {
			t.Errorf("journey changed through an alias:\n got %+v\nwant %+v", j.Meta(), want)
		}
		if !j.Matches("user_signed_up", map[string]any{"plan": "pro"}) {
			t.Error("trigger changed through the caller's where list")
		}
	})

	t.Run("accessors", func(t *testing.T) {
		t.Parallel()
		j := journey.MustDefine(validMeta(), noop)
		if j.Name() != "Welcome" || j.TriggerEvent() != "user_signed_up" || j.EntryLimit() != journey.Once {
			t.Errorf("Name/TriggerEvent/EntryLimit = %q/%q/%q", j.Name(), j.TriggerEvent(), j.EntryLimit())
		}
		if loc := j.Location(); loc == nil || loc.String() != "Europe/Berlin" {
			t.Errorf("Location() = %v, want Europe/Berlin", loc)
		}
		if !j.HasExitOn() || j.IsReaction() || j.Func() == nil {
			t.Errorf("HasExitOn/IsReaction/Func = %v/%v/%v", j.HasExitOn(), j.IsReaction(), j.Func() != nil)
		}
		m := validMeta()
		m.Timezone, m.ExitOn = "", nil
		j = journey.MustDefine(m, noop)
		if j.Location() != nil || j.HasExitOn() {
			t.Errorf("Location/HasExitOn = %v/%v, want nil/false", j.Location(), j.HasExitOn())
		}
	})
}

func TestMatches(t *testing.T) {
	t.Parallel()
	j := journey.MustDefine(journey.Meta{
		ID: "upgrade", Name: "Upgrade", EntryLimit: journey.Unlimited,
		Trigger: journey.OnEvent("plan_changed",
			condition.Prop("plan").Eq("pro"),
			condition.Prop("seats").Gte(5)),
	}, noop)
	bare := journey.MustDefine(journey.Meta{
		ID: "bare", Name: "Bare", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("plan_changed"),
	}, noop)

	tests := []struct {
		name  string
		j     *journey.Journey
		event string
		props map[string]any
		want  bool
	}{
		{name: "all conditions hold", j: j, event: "plan_changed", props: map[string]any{"plan": "pro", "seats": 5.0}, want: true},
		{name: "int property", j: j, event: "plan_changed", props: map[string]any{"plan": "pro", "seats": 12}, want: true},
		{name: "one condition fails", j: j, event: "plan_changed", props: map[string]any{"plan": "pro", "seats": 4}},
		{name: "property missing", j: j, event: "plan_changed", props: map[string]any{"plan": "pro"}},
		{name: "nil props", j: j, event: "plan_changed"},
		{name: "other event", j: j, event: "plan_renewed", props: map[string]any{"plan": "pro", "seats": 5}},
		{name: "no where, any props", j: bare, event: "plan_changed", want: true},
		{name: "no where, other event", j: bare, event: "Plan_changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.j.Matches(tt.event, tt.props); got != tt.want {
				t.Errorf("Matches(%q, %v) = %v, want %v", tt.event, tt.props, got, tt.want)
			}
		})
	}
}

func TestExitMatches(t *testing.T) {
	t.Parallel()
	j := journey.MustDefine(journey.Meta{
		ID: "trial", Name: "Trial", EntryLimit: journey.Once, Trigger: journey.OnEvent("trial_started"),
		ExitOn: []journey.Exit{
			{Event: "user_deleted"},                            // no where
			{Event: "unsubscribed", Where: []condition.Node{}}, // empty where
			{Event: "plan_changed", Where: []condition.Node{
				condition.Prop("plan").Neq("trial"),
				condition.Prop("billing").Exists(), // an object: only the full properties have it
			}},
			{Event: "plan_changed", Where: []condition.Node{condition.Prop("force").Eq(true)}},
		},
	}, noop)
	none := journey.MustDefine(journey.Meta{
		ID: "none", Name: "None", EntryLimit: journey.Once, Trigger: journey.OnEvent("trial_started"),
	}, noop)

	tests := []struct {
		name  string
		j     *journey.Journey
		event string
		props map[string]any
		want  bool
	}{
		{name: "no where", j: j, event: "user_deleted", want: true},
		{name: "no where, props ignored", j: j, event: "user_deleted", props: map[string]any{"x": 1}, want: true},
		{name: "empty where", j: j, event: "unsubscribed", want: true},
		{name: "where on full props", j: j, event: "plan_changed",
			props: map[string]any{"plan": "pro", "billing": map[string]any{"cycle": "yearly"}}, want: true},
		{name: "where fails without the object", j: j, event: "plan_changed", props: map[string]any{"plan": "pro"}},
		{name: "where fails on value", j: j, event: "plan_changed",
			props: map[string]any{"plan": "trial", "billing": map[string]any{}}},
		{name: "second entry for the same event", j: j, event: "plan_changed", props: map[string]any{"force": true}, want: true},
		{name: "unrelated event", j: j, event: "trial_started"},
		{name: "no exitOn", j: none, event: "user_deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.j.ExitMatches(tt.event, tt.props); got != tt.want {
				t.Errorf("ExitMatches(%q, %v) = %v, want %v", tt.event, tt.props, got, tt.want)
			}
		})
	}
}

type fixedRuntime struct {
	journey.Runtime
	now time.Time
}

func (r fixedRuntime) Now() time.Time { return r.now }

func TestCtxNow(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	if got := journey.NewCtx(fixedRuntime{now: at}).Now(); !got.Equal(at) {
		t.Errorf("Now() = %v, want %v", got, at)
	}
}

type ctxRuntime struct {
	journey.Runtime
	ctx context.Context
}

func (r ctxRuntime) Context() context.Context { return r.ctx }

// Ctx.Context is the runtime's run context, or Background for a runtime
// without one (a test fake).
func TestCtxContext(t *testing.T) {
	if got := journey.NewCtx(ctxRuntime{}.Runtime).Context(); got != context.Background() {
		t.Errorf("a runtime without a context gives %v, want context.Background()", got)
	}
	want, cancel := context.WithCancel(context.Background())
	defer cancel()
	if got := journey.NewCtx(ctxRuntime{ctx: want}).Context(); got != want {
		t.Error("Context does not return the runtime's run context")
	}
}
