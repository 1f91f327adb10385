package condition_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	c "github.com/seed-eeb360f6/hogsend/services/condition"
)

var now = time.Date(2030, 5, 6, 12, 0, 0, 0, time.UTC)

func mustEval(t *testing.T, n c.Node, in c.Input, h c.History) bool {
	t.Helper()
	got, err := c.Evaluate(context.Background(), n, in, h)
	if err != nil {
		t.Fatalf("Evaluate(%s): %v", mustJSON(t, n), err)
	}
	return got
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func TestPropertyOperators(t *testing.T) {
	t.Parallel()
	props := map[string]any{
		"s":     "abc",
		"empty": "",
		"n":     5.0,
		"one":   1.0,
		"jn":    json.Number("1.0"),
		"int":   int64(1),
		"str1":  "1",
		"null":  nil,
		"t":     true,
		"f":     false,
		"obj":   map[string]any{"a": 1.0},
		"arr":   []any{"abc"},
		"neg0":  math.Copysign(0, -1), // a negative zero (a -0.0 literal is +0)
		"a":     map[string]any{"b": 1.0},
		"a.b":   2.0,
	}
	raw := func(prop string, op c.Operator, value any) c.Node {
		return c.Node{Type: c.TypeProperty, Property: prop, Operator: op, Value: value}
	}
	tests := []struct {
		name string
		node c.Node
		want bool
	}{
		{"eq string", c.Prop("s").Eq("abc"), true},
		{"eq string case-sensitive", c.Prop("s").Eq("ABC"), false},
		{"eq string prefix", c.Prop("s").Eq("ab"), false},
		{"eq empty string", c.Prop("empty").Eq(""), true},
		{"eq number", c.Prop("one").Eq(1), true},
		{"eq 1.0 equals 1", raw("one", c.OpEq, 1.0), true},
		{"eq json.Number 1.0 equals 1", c.Prop("jn").Eq(1), true},
		{"eq int64 property equals 1", c.Prop("int").Eq(1.0), true},
		{"eq int node value", raw("one", c.OpEq, 1), true},
		{"eq string 1 is not number 1", c.Prop("str1").Eq(1), false},
		{"eq number 1 is not string 1", c.Prop("one").Eq("1"), false},
		{"eq -0 equals 0", c.Prop("neg0").Eq(0), true},
		{"eq bool", c.Prop("t").Eq(true), true},
		{"eq bool false", c.Prop("f").Eq(false), true},
		{"eq bool vs string", c.Prop("t").Eq("true"), false},
		{"eq bool vs number", c.Prop("t").Eq(1), false},
		{"eq absent", c.Prop("missing").Eq("x"), false},
		{"eq null with value", c.Prop("null").Eq("x"), false},
		{"eq object", c.Prop("obj").Eq("x"), false},
		{"eq no value absent", raw("missing", c.OpEq, nil), true},
		{"eq no value null is not absent", raw("null", c.OpEq, nil), false},
		{"eq no value present", raw("s", c.OpEq, nil), false},
		{"eq top-level key only", c.Prop("a.b").Eq(2), true},
		{"eq no dotted path", c.Prop("a.b").Eq(1), false},

		{"neq absent", c.Prop("missing").Neq("x"), true},
		{"neq equal", c.Prop("s").Neq("abc"), false},
		{"neq different", c.Prop("s").Neq("x"), true},
		{"neq type mismatch", c.Prop("str1").Neq(1), true},
		{"neq 1.0 vs 1", c.Prop("jn").Neq(1), false},
		{"neq null with value", c.Prop("null").Neq("x"), true},
		{"neq no value absent", raw("missing", c.OpNeq, nil), false},
		{"neq no value null", raw("null", c.OpNeq, nil), true},
		{"neq no value present", raw("s", c.OpNeq, nil), true},

		{"gt", c.Prop("n").Gt(3), true},
		{"gt equal", c.Prop("n").Gt(5), false},
		{"gte equal", c.Prop("n").Gte(5), true},
		{"gte above", c.Prop("n").Gte(6), false},
		{"lt", c.Prop("n").Lt(6), true},
		{"lt equal", c.Prop("n").Lt(5), false},
		{"lte equal", c.Prop("n").Lte(5), true},
		{"lte below", c.Prop("n").Lte(4.5), false},
		{"gte json.Number", c.Prop("jn").Gte(1), true},
		{"gt int64", c.Prop("int").Gt(0.5), true},
		{"gt numeric string", c.Prop("str1").Gt(0), false},
		{"gt string operand", raw("n", c.OpGt, "3"), false},
		{"gt no operand", raw("n", c.OpGt, nil), false},
		{"gt absent", c.Prop("missing").Gt(-1), false},
		{"gt null", c.Prop("null").Gt(-1), false},
		{"gt bool", c.Prop("t").Gt(0), false},
		{"lt null", c.Prop("null").Lt(1), false},

		{"exists string", c.Prop("s").Exists(), true},
		{"exists empty string", c.Prop("empty").Exists(), true},
		{"exists false", c.Prop("f").Exists(), true},
		{"exists zero", c.Prop("neg0").Exists(), true},
		{"exists object", c.Prop("obj").Exists(), true},
		{"exists absent", c.Prop("missing").Exists(), false},
		{"exists null", c.Prop("null").Exists(), false},
		{"not_exists absent", c.Prop("missing").NotExists(), true},
		{"not_exists null", c.Prop("null").NotExists(), true},
		{"not_exists present", c.Prop("s").NotExists(), false},
		{"not_exists false", c.Prop("f").NotExists(), false},

		{"contains", c.Prop("s").Contains("b"), true},
		{"contains whole", c.Prop("s").Contains("abc"), true},
		{"contains case-sensitive", c.Prop("s").Contains("B"), false},
		{"contains empty operand", c.Prop("s").Contains(""), true},
		{"contains number property", c.Prop("n").Contains("5"), false},
		{"contains number operand", raw("str1", c.OpContains, 1), false},
		{"contains array property", c.Prop("arr").Contains("abc"), false},
		{"contains absent", c.Prop("missing").Contains(""), false},
		{"contains null", c.Prop("null").Contains(""), false},

		{"unknown operator", raw("s", "like", "abc"), false},
		{"empty operator", raw("s", "", "abc"), false},
		{"unknown type", c.Node{Type: "cohort", Property: "s", Operator: c.OpEq, Value: "abc"}, false},
		{"no type", c.Node{Property: "s", Operator: c.OpEq, Value: "abc"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mustEval(t, tt.node, c.Input{Properties: props}, nil); got != tt.want {
				t.Errorf("Evaluate(%+v) = %v, want %v", tt.node, got, tt.want)
			}
			// Property nodes need no history, so MatchWhere agrees.
			if got := c.MatchWhere([]c.Node{tt.node}, props); got != tt.want {
				t.Errorf("MatchWhere(%+v) = %v, want %v", tt.node, got, tt.want)
			}
		})
	}
}

// Decoding the bag with float64 or with json.Number gives the same results.
func TestPropertyBagNumberForms(t *testing.T) {
	t.Parallel()
	const bag = `{"a":1.0,"b":1,"c":"1","d":1e2,"e":null}`
	var asFloat map[string]any
	if err := json.Unmarshal([]byte(bag), &asFloat); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(bag)))
	dec.UseNumber()
	var asNumber map[string]any
	if err := dec.Decode(&asNumber); err != nil {
		t.Fatal(err)
	}
	nodes := []struct {
		node c.Node
		want bool
	}{
		{c.Prop("a").Eq(1), true},
		{c.Prop("b").Eq(1), true},
		{c.Prop("a").Eq("1"), false},
		{c.Prop("c").Eq(1), false},
		{c.Prop("d").Eq(100), true},
		{c.Prop("d").Gte(100), true},
		{c.Prop("c").Lt(2), false},
		{c.Prop("e").NotExists(), true},
	}
	for _, n := range nodes {
		for name, props := range map[string]map[string]any{"float64": asFloat, "json.Number": asNumber} {
			if got := mustEval(t, n.node, c.Input{Properties: props}, nil); got != n.want {
				t.Errorf("%s: Evaluate(%s) = %v, want %v", name, mustJSON(t, n.node), got, n.want)
			}
		}
	}
}

// loginHistory has 3 logins for u1 in the last hour (10, 20 and 40 minutes
// ago), 1 older (2 h ago), and one for someone else.
func loginHistory() *memHistory {
	h := &memHistory{}
	h.addEvent("u1", "login", now.Add(-10*time.Minute)).
		addEvent("u1", "login", now.Add(-20*time.Minute)).
		addEvent("u1", "login", now.Add(-40*time.Minute)).
		addEvent("u1", "login", now.Add(-2*time.Hour)).
		addEvent("u2", "login", now.Add(-time.Minute)).
		addEvent("u1", "edge", now.Add(-time.Hour))
	return h
}

func TestEventConditions(t *testing.T) {
	t.Parallel()
	countNode := func(name string, op c.Operator, value any) c.Node {
		return c.Node{Type: c.TypeEvent, EventName: name, Check: c.CheckCount, Operator: op, Value: value}
	}
	tests := []struct {
		name        string
		node        c.Node
		want        bool
		wantLookups int
	}{
		{"exists", c.Event("login").Exists(), true, 1},
		{"exists none", c.Event("pageview").Exists(), false, 1},
		{"not_exists", c.Event("login").NotExists(), false, 1},
		{"not_exists none", c.Event("pageview").NotExists(), true, 1},
		{"windowed exists", c.Event("login").Within(c.Minutes(5)).Exists(), false, 1},
		{"windowed not_exists", c.Event("login").Within(c.Minutes(5)).NotExists(), true, 1},
		{"window counts 3 in the hour", c.Event("login").Within(c.Hours(1)).AtLeast(3), true, 1},
		{"window excludes the older", c.Event("login").Within(c.Hours(1)).AtLeast(4), false, 1},
		{"window of 30 minutes", c.Event("login").Within(c.Minutes(30)).Exactly(2), true, 1},
		{"window in seconds", c.Event("login").Within(c.Seconds(15 * 60)).Exactly(1), true, 1},
		{"window start is inclusive", c.Event("edge").Within(c.Hours(1)).Exists(), true, 1},
		{"all time", c.Event("login").Exactly(4), true, 1},
		{"other keys not counted", c.Event("login").MoreThan(4), false, 1},
		{"gt", c.Event("login").MoreThan(3), true, 1},
		{"lte", c.Event("login").AtMost(4), true, 1},
		{"lte below", c.Event("login").AtMost(3), false, 1},
		{"lt", c.Event("login").LessThan(4), false, 1},
		{"lt above", c.Event("login").LessThan(5), true, 1},
		{"count op", c.Event("login").Count(c.OpEq, 4), true, 1},
		{"fractional operand", c.Event("login").AtLeast(3.5), true, 1},
		{"exactly zero", c.Event("pageview").Exactly(0), true, 1},
		{"count without operator or value", countNode("login", "", nil), true, 1},
		{"count without operator or value none", countNode("pageview", "", nil), false, 1},
		{"count without value", countNode("login", c.OpLt, nil), true, 1},
		{"count without operator", countNode("pageview", "", 0.0), false, 1},
		{"count unknown operator without value", countNode("login", "between", nil), true, 1},
		{"count unknown operator", countNode("login", "between", 1.0), false, 0},
		{"count operator neq is unknown", countNode("login", c.OpNeq, 1.0), false, 0},
		{"count string operand", countNode("login", c.OpGte, "1"), false, 0},
		{"count int operand", countNode("login", c.OpEq, 4), true, 1},
		{"unknown check", c.Node{Type: c.TypeEvent, EventName: "login", Check: "ever"}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := loginHistory()
			if got := mustEval(t, tt.node, c.Input{Key: "u1", Now: now}, h); got != tt.want {
				t.Errorf("Evaluate(%s) = %v, want %v", mustJSON(t, tt.node), got, tt.want)
			}
			if h.lookups != tt.wantLookups {
				t.Errorf("lookups = %d, want %d", h.lookups, tt.wantLookups)
			}
			// Where lists have no history: event nodes are false there.
			if c.MatchWhere([]c.Node{tt.node}, nil) {
				t.Error("MatchWhere with an event node is true")
			}
		})
	}
}

func TestEmailEngagement(t *testing.T) {
	t.Parallel()
	h := &memHistory{}
	h.addSend("a@x.com", "welcome", now.Add(-2*time.Hour), true, false).
		addSend("b@x.com", "welcome", now.Add(-3*time.Hour), true, true).
		addSend("b@x.com", "welcome", now.Add(-1*time.Hour), false, false). // newest wins
		addSend("c@x.com", "welcome", now.Add(-1*time.Hour), true, true)
	tests := []struct {
		email string
		check c.Check
		want  bool
	}{
		{"a@x.com", c.CheckOpened, true},
		{"a@x.com", c.CheckNotOpened, false},
		{"a@x.com", c.CheckClicked, false},
		{"a@x.com", c.CheckNotClicked, true},
		{"b@x.com", c.CheckOpened, false},
		{"b@x.com", c.CheckNotOpened, true},
		{"b@x.com", c.CheckClicked, false},
		{"b@x.com", c.CheckNotClicked, true},
		{"c@x.com", c.CheckOpened, true},
		{"c@x.com", c.CheckClicked, true},
		{"c@x.com", c.CheckNotClicked, false},
		// No send: every check is false, not_* included.
		{"none@x.com", c.CheckOpened, false},
		{"none@x.com", c.CheckClicked, false},
		{"none@x.com", c.CheckNotOpened, false},
		{"none@x.com", c.CheckNotClicked, false},
		{"none@x.com", "bounced", false},
		{"a@x.com", "bounced", false},
		// No email on the contact: false without a lookup.
		{"", c.CheckNotOpened, false},
	}
	for _, tt := range tests {
		n := c.EmailEngagement("welcome", tt.check)
		if got := mustEval(t, n, c.Input{Key: "u1", Email: tt.email}, h); got != tt.want {
			t.Errorf("%s %s: got %v, want %v", tt.email, tt.check, got, tt.want)
		}
	}
	// Another template's send does not count.
	if mustEval(t, c.EmailEngagement("other", c.CheckNotOpened), c.Input{Email: "a@x.com"}, h) {
		t.Error("not_opened on a template never sent is true")
	}
	// Sends are looked up by the contact's email, not the key.
	if mustEval(t, c.EmailEngagement("welcome", c.CheckOpened), c.Input{Key: "a@x.com"}, h) {
		t.Error("email_engagement used the key")
	}
}

func TestComposite(t *testing.T) {
	t.Parallel()
	props := map[string]any{"plan": "pro"}
	yes, no := c.Prop("plan").Eq("pro"), c.Prop("plan").Eq("free")
	tests := []struct {
		name        string
		node        c.Node
		want        bool
		wantLookups int
	}{
		{"empty and", c.All(), true, 0},
		{"empty or", c.Any(), false, 0},
		{"and", c.All(yes, yes), true, 0},
		{"and false", c.All(yes, no), false, 0},
		{"or", c.Any(no, yes), true, 0},
		{"or false", c.Any(no, no), false, 0},
		{"nested", c.Any(c.All(yes, no), c.All(yes, c.Any(no, yes))), true, 0},
		{"nested empty", c.All(c.All(), c.Any(c.Any(), yes)), true, 0},
		{"and short-circuits", c.All(no, c.Event("login").Exists()), false, 0},
		{"or short-circuits", c.Any(yes, c.Event("login").Exists()), true, 0},
		{"and evaluates in order", c.All(c.Event("login").Exists(), no, c.Event("login").Exists()), false, 1},
		{"unknown operator", c.Node{Type: c.TypeComposite, Operator: "xor", Conditions: []c.Node{yes}}, false, 0},
		{"no operator", c.Node{Type: c.TypeComposite, Conditions: []c.Node{yes}}, false, 0},
		{"nil conditions and", c.Node{Type: c.TypeComposite, Operator: c.OpAnd}, true, 0},
		{"unknown child type", c.All(yes, c.Node{Type: "cohort"}), false, 0},
		{"unknown child type in or", c.Any(c.Node{Type: "cohort"}, yes), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := loginHistory()
			if got := mustEval(t, tt.node, c.Input{Key: "u1", Properties: props, Now: now}, h); got != tt.want {
				t.Errorf("Evaluate(%s) = %v, want %v", mustJSON(t, tt.node), got, tt.want)
			}
			if h.lookups != tt.wantLookups {
				t.Errorf("lookups = %d, want %d", h.lookups, tt.wantLookups)
			}
		})
	}
}

func TestMatchWhere(t *testing.T) {
	t.Parallel()
	props := map[string]any{"plan": "pro", "seats": 3.0}
	tests := []struct {
		name  string
		where []c.Node
		want  bool
	}{
		{"nil list", nil, true},
		{"empty list", []c.Node{}, true},
		{"all hold", []c.Node{c.Prop("plan").Eq("pro"), c.Prop("seats").Gte(3)}, true},
		{"one fails", []c.Node{c.Prop("plan").Eq("pro"), c.Prop("seats").Gt(3)}, false},
		{"composite entry", []c.Node{c.Any(c.Prop("plan").Eq("free"), c.Prop("seats").Lt(5))}, true},
		{"event entry", []c.Node{c.Prop("plan").Eq("pro"), c.Event("x").NotExists()}, false},
		{"email entry", []c.Node{c.EmailEngagement("t", c.CheckNotOpened)}, false},
	}
	for _, tt := range tests {
		if got := c.MatchWhere(tt.where, props); got != tt.want {
			t.Errorf("%s: MatchWhere = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEvaluateErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := c.Evaluate(ctx, c.Event("login").Exists(), c.Input{Key: "u1"}, nil); !errors.Is(err, c.ErrNoHistory) {
		t.Errorf("event without history: err = %v, want ErrNoHistory", err)
	}
	if _, err := c.Evaluate(ctx, c.EmailEngagement("t", c.CheckOpened), c.Input{Email: "a@x.com"}, nil); !errors.Is(err, c.ErrNoHistory) {
		t.Errorf("email without history: err = %v, want ErrNoHistory", err)
	}
	if ok, err := c.Evaluate(ctx, c.Prop("a").NotExists(), c.Input{}, nil); err != nil || !ok {
		t.Errorf("property without history: %v, %v", ok, err)
	}
	if _, err := c.Evaluate(ctx, c.Event("login").Within(c.Hours(1)).Exists(), c.Input{Key: "u1"}, loginHistory()); !errors.Is(err, c.ErrNoNow) {
		t.Errorf("window without Now: err = %v, want ErrNoNow", err)
	}
	if ok, err := c.Evaluate(ctx, c.Event("login").Exists(), c.Input{Key: "u1"}, loginHistory()); err != nil || !ok {
		t.Errorf("unwindowed without Now: %v, %v", ok, err)
	}
	boom := errors.New("db down")
	h := &memHistory{err: boom}
	for _, n := range []c.Node{c.Event("login").Exists(), c.EmailEngagement("t", c.CheckOpened), c.All(c.Prop("a").NotExists(), c.Event("x").AtLeast(1))} {
		if _, err := c.Evaluate(ctx, n, c.Input{Key: "u1", Email: "a@x.com", Now: now}, h); !errors.Is(err, boom) {
			t.Errorf("Evaluate(%s): err = %v, want the history error", mustJSON(t, n), err)
		}
	}
}

// Spec 10 §7 scenario 14.
func TestScenario14(t *testing.T) {
	t.Parallel()
	props := map[string]any{"n": "5", "name": "bob", "k": "1"}
	tests := []struct {
		name string
		node c.Node
		want bool
	}{
		{"n gt 3", c.Prop("n").Gt(3), false},
		{"name contains Bo", c.Prop("name").Contains("Bo"), false},
		{"k eq 1", c.Prop("k").Eq(1), false},
		{"missing neq x", c.Prop("missing").Neq("x"), true},
		{"empty and", c.All(), true},
		{"empty or", c.Any(), false},
	}
	for _, tt := range tests {
		if got := mustEval(t, tt.node, c.Input{Properties: props}, nil); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Spec 10 §7 scenario 15.
func TestScenario15(t *testing.T) {
	t.Parallel()
	h := &memHistory{}
	for _, ago := range []time.Duration{5 * time.Minute, 30 * time.Minute, 59 * time.Minute, 3 * time.Hour} {
		h.addEvent("u1", "login", now.Add(-ago))
	}
	in := c.Input{Key: "u1", Now: now}
	windowed := c.Event("login").Within(c.Hours(1)).AtLeast(3)
	if !mustEval(t, windowed, in, h) {
		t.Error("event(login).within(hours(1)).atLeast(3) does not hold")
	}
	exactly := c.Event("login").Exactly(4)
	if !mustEval(t, exactly, in, h) {
		t.Error("event(login).exactly(4) does not hold")
	}
	wantWindowed := c.Node{Type: c.TypeEvent, EventName: "login", Check: c.CheckCount, Operator: c.OpGte, Value: 3.0, Within: &c.Duration{Hours: 1}}
	wantExactly := c.Node{Type: c.TypeEvent, EventName: "login", Check: c.CheckCount, Operator: c.OpEq, Value: 4.0}
	assertDeepEqual(t, windowed, wantWindowed)
	assertDeepEqual(t, exactly, wantExactly)
	for _, tt := range []struct {
		node c.Node
		json string
	}{
		{windowed, `{"type":"event","eventName":"login","check":"count","operator":"gte","value":3,"within":{"hours":1}}`},
		{exactly, `{"type":"event","eventName":"login","check":"count","operator":"eq","value":4}`},
	} {
		if got := mustJSON(t, tt.node); got != tt.json {
			t.Errorf("JSON = %s, want %s", got, tt.json)
		}
		decoded, err := c.Parse([]byte(tt.json))
		if err != nil {
			t.Fatal(err)
		}
		assertDeepEqual(t, tt.node, decoded)
	}
	if got, want := c.Days(7), (c.Duration{Hours: 168}); got != want {
		t.Errorf("Days(7) = %+v, want %+v", got, want)
	}
	if got := mustJSON(t, c.Days(7)); got != `{"hours":168}` {
		t.Errorf("Days(7) JSON = %s", got)
	}
}

// Go callers may put any numeric type in the bag or in a node; all compare by
// value, and only a well-formed json.Number is a number.
func TestGoNumericKinds(t *testing.T) {
	t.Parallel()
	for _, v := range []any{int(2), int8(2), int16(2), int32(2), int64(2), uint(2), uint8(2), uint16(2), uint32(2), uint64(2), float32(2), 2.0, json.Number("2"), json.Number("2.0e0")} {
		props := map[string]any{"n": v}
		if !mustEval(t, c.Prop("n").Eq(2), c.Input{Properties: props}, nil) || !mustEval(t, c.Prop("n").Gt(1), c.Input{Properties: props}, nil) {
			t.Errorf("%T(%v) does not compare as 2", v, v)
		}
		node := c.Node{Type: c.TypeProperty, Property: "m", Operator: c.OpLt, Value: v}
		if !mustEval(t, node, c.Input{Properties: map[string]any{"m": 1.5}}, nil) {
			t.Errorf("node value %T(%v) does not compare as 2", v, v)
		}
	}
	props := map[string]any{"bad": json.Number("12abc"), "huge": json.Number("1e400"), "obj": map[string]any{}}
	if mustEval(t, c.Prop("bad").Gt(0), c.Input{Properties: props}, nil) || !mustEval(t, c.Prop("bad").Exists(), c.Input{Properties: props}, nil) {
		t.Error("a malformed json.Number is a number or absent")
	}
	if !mustEval(t, c.Prop("huge").Gt(1e308), c.Input{Properties: props}, nil) {
		t.Error("an out-of-range json.Number is not +Infinity")
	}
	if mustEval(t, c.Node{Type: c.TypeProperty, Property: "obj", Operator: c.OpEq, Value: map[string]any{}}, c.Input{Properties: props}, nil) {
		t.Error("objects compare equal")
	}
}
