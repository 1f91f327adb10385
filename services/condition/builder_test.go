package condition_test

import (
	"encoding/json"
	"reflect"
	"testing"

	c "github.com/seed-eeb360f6/hogsend/services/condition"
)

func assertDeepEqual(t *testing.T, got, want c.Node) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trees differ:\n got  %#v\n want %#v", got, want)
	}
}

func dur(d c.Duration) *c.Duration { return &d }

// The builder produces exactly the declarative trees, with unset keys unset.
func TestBuilderEqualsDeclarative(t *testing.T) {
	t.Parallel()
	prop := func(p string, op c.Operator, v any) c.Node {
		return c.Node{Type: c.TypeProperty, Property: p, Operator: op, Value: v}
	}
	event := func(name string, check c.Check, op c.Operator, v any, within *c.Duration) c.Node {
		return c.Node{Type: c.TypeEvent, EventName: name, Check: check, Operator: op, Value: v, Within: within}
	}
	tests := []struct {
		name     string
		built    c.Node
		want     c.Node
		wantJSON string
	}{
		{"eq", c.Prop("plan").Eq("pro"), prop("plan", c.OpEq, "pro"), `{"type":"property","property":"plan","operator":"eq","value":"pro"}`},
		{"eq int stored as float64", c.Prop("seats").Eq(3), prop("seats", c.OpEq, 3.0), `{"type":"property","property":"seats","operator":"eq","value":3}`},
		{"eq bool", c.Prop("vip").Eq(true), prop("vip", c.OpEq, true), `{"type":"property","property":"vip","operator":"eq","value":true}`},
		{"eq nil leaves value unset", c.Prop("x").Eq(nil), prop("x", c.OpEq, nil), `{"type":"property","property":"x","operator":"eq"}`},
		{"neq", c.Prop("a").Neq(1), prop("a", c.OpNeq, 1.0), `{"type":"property","property":"a","operator":"neq","value":1}`},
		{"gt", c.Prop("n").Gt(1.5), prop("n", c.OpGt, 1.5), `{"type":"property","property":"n","operator":"gt","value":1.5}`},
		{"gte", c.Prop("n").Gte(2), prop("n", c.OpGte, 2.0), `{"type":"property","property":"n","operator":"gte","value":2}`},
		{"lt", c.Prop("n").Lt(-1), prop("n", c.OpLt, -1.0), `{"type":"property","property":"n","operator":"lt","value":-1}`},
		{"lte", c.Prop("n").Lte(0), prop("n", c.OpLte, 0.0), `{"type":"property","property":"n","operator":"lte","value":0}`},
		{"contains", c.Prop("name").Contains("Bo"), prop("name", c.OpContains, "Bo"), `{"type":"property","property":"name","operator":"contains","value":"Bo"}`},
		{"exists", c.Prop("a").Exists(), prop("a", c.OpExists, nil), `{"type":"property","property":"a","operator":"exists"}`},
		{"not_exists", c.Prop("a").NotExists(), prop("a", c.OpNotExists, nil), `{"type":"property","property":"a","operator":"not_exists"}`},

		{"event exists", c.Event("x").Exists(), event("x", c.CheckExists, "", nil, nil), `{"type":"event","eventName":"x","check":"exists"}`},
		{"event not_exists", c.Event("x").NotExists(), event("x", c.CheckNotExists, "", nil, nil), `{"type":"event","eventName":"x","check":"not_exists"}`},
		{"event windowed not_exists", c.Event("app_open").Within(c.Days(7)).NotExists(), event("app_open", c.CheckNotExists, "", nil, dur(c.Duration{Hours: 168})), `{"type":"event","eventName":"app_open","check":"not_exists","within":{"hours":168}}`},
		{"count", c.Event("x").Count(c.OpLt, 2), event("x", c.CheckCount, c.OpLt, 2.0, nil), `{"type":"event","eventName":"x","check":"count","operator":"lt","value":2}`},
		{"atLeast", c.Event("x").AtLeast(2), event("x", c.CheckCount, c.OpGte, 2.0, nil), `{"type":"event","eventName":"x","check":"count","operator":"gte","value":2}`},
		{"moreThan", c.Event("x").MoreThan(2), event("x", c.CheckCount, c.OpGt, 2.0, nil), `{"type":"event","eventName":"x","check":"count","operator":"gt","value":2}`},
		{"atMost", c.Event("x").AtMost(2), event("x", c.CheckCount, c.OpLte, 2.0, nil), `{"type":"event","eventName":"x","check":"count","operator":"lte","value":2}`},
		{"lessThan", c.Event("x").LessThan(2), event("x", c.CheckCount, c.OpLt, 2.0, nil), `{"type":"event","eventName":"x","check":"count","operator":"lt","value":2}`},
		{"exactly", c.Event("x").Exactly(0), event("x", c.CheckCount, c.OpEq, 0.0, nil), `{"type":"event","eventName":"x","check":"count","operator":"eq","value":0}`},
		{"windowed count", c.Event("x").Within(c.Minutes(90)).AtLeast(1), event("x", c.CheckCount, c.OpGte, 1.0, dur(c.Duration{Minutes: 90})), `{"type":"event","eventName":"x","check":"count","operator":"gte","value":1,"within":{"minutes":90}}`},
		{"second within replaces", c.Event("x").Within(c.Hours(1)).Within(c.Seconds(30)).Exists(), event("x", c.CheckExists, "", nil, dur(c.Duration{Seconds: 30})), `{"type":"event","eventName":"x","check":"exists","within":{"seconds":30}}`},

		{"email", c.EmailEngagement("welcome", c.CheckNotClicked), c.Node{Type: c.TypeEmailEngagement, TemplateKey: "welcome", Check: c.CheckNotClicked}, `{"type":"email_engagement","templateKey":"welcome","check":"not_clicked"}`},

		{"all", c.All(c.Prop("a").Exists()), c.Node{Type: c.TypeComposite, Operator: c.OpAnd, Conditions: []c.Node{prop("a", c.OpExists, nil)}}, `{"type":"composite","operator":"and","conditions":[{"type":"property","property":"a","operator":"exists"}]}`},
		{"any empty", c.Any(), c.Node{Type: c.TypeComposite, Operator: c.OpOr, Conditions: []c.Node{}}, `{"type":"composite","operator":"or","conditions":[]}`},
		{"all empty", c.All(), c.Node{Type: c.TypeComposite, Operator: c.OpAnd, Conditions: []c.Node{}}, `{"type":"composite","operator":"and","conditions":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertDeepEqual(t, tt.built, tt.want)
			if got := mustJSON(t, tt.built); got != tt.wantJSON {
				t.Errorf("JSON\n got  %s\n want %s", got, tt.wantJSON)
			}
			decoded, err := c.Parse([]byte(tt.wantJSON))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			assertDeepEqual(t, decoded, tt.built)
			if c.Hash(decoded) != c.Hash(tt.built) {
				t.Error("hash differs between built and decoded")
			}
		})
	}
}

// A bigger tree: the builder and its declarative JSON decode to the same
// value, so DeepEqual holds end to end.
func TestBuilderTreeEqualsDecodedJSON(t *testing.T) {
	t.Parallel()
	built := c.All(
		c.Prop("plan").Eq("pro"),
		c.Any(c.Event("purchase").AtLeast(2), c.Event("app_open").Within(c.Days(7)).NotExists()),
		c.Prop("seats").Gte(3),
	)
	const declarative = `{
	  "type": "composite", "operator": "and",
	  "conditions": [
	    {"type": "property", "property": "plan", "operator": "eq", "value": "pro"},
	    {"type": "composite", "operator": "or", "conditions": [
	      {"type": "event", "eventName": "purchase", "check": "count", "operator": "gte", "value": 2},
	      {"type": "event", "eventName": "app_open", "check": "not_exists", "within": {"hours": 168}}
	    ]},
	    {"type": "property", "property": "seats", "operator": "gte", "value": 3.0}
	  ]
	}`
	var decoded c.Node
	if err := json.Unmarshal([]byte(declarative), &decoded); err != nil {
		t.Fatal(err)
	}
	assertDeepEqual(t, built, decoded)
}

// Matchers are values: Within returns a new matcher and nodes do not share
// windows or condition slices with the builder's inputs.
func TestBuilderDoesNotAlias(t *testing.T) {
	t.Parallel()
	base := c.Event("x")
	hour := base.Within(c.Hours(1))
	if n := base.Exists(); n.Within != nil {
		t.Errorf("Within changed the receiver: %+v", n.Within)
	}
	a, b := hour.Exists(), hour.NotExists()
	a.Within.Hours = 5
	if b.Within.Hours != 1 {
		t.Errorf("nodes share a window: %+v", b.Within)
	}
	if again := hour.Exists(); again.Within.Hours != 1 {
		t.Errorf("node shares the matcher's window: %+v", again.Within)
	}
	children := []c.Node{c.Prop("a").Exists()}
	all := c.All(children...)
	children[0] = c.Prop("b").Exists()
	if all.Conditions[0].Property != "a" {
		t.Error("All aliases the caller's slice")
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d  c.Duration
		ms float64
	}{
		{c.Hours(1), 3_600_000},
		{c.Minutes(1), 60_000},
		{c.Seconds(1), 1_000},
		{c.Days(1), 86_400_000},
		{c.Days(0.5), 43_200_000},
		{c.Duration{Hours: 1, Minutes: 30, Seconds: 15}, 5_415_000},
		{c.Duration{}, 0},
	}
	for _, tt := range tests {
		if got := tt.d.Milliseconds(); got != tt.ms {
			t.Errorf("%+v.Milliseconds() = %v, want %v", tt.d, got, tt.ms)
		}
	}
	if got := (c.Duration{Hours: 1, Seconds: 0.5}).Std().String(); got != "1h0m0.5s" {
		t.Errorf("Std = %s", got)
	}
	if got := (c.Duration{Hours: 1e300}).Std(); got <= 0 {
		t.Errorf("huge Std = %v, want clamped positive", got)
	}
	if !(c.Duration{}).IsZero() || c.Hours(1).IsZero() {
		t.Error("IsZero")
	}
}
