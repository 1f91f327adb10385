package condition_test

import (
	"reflect"
	"strings"
	"testing"

	c "github.com/seed-eeb360f6/hogsend/services/condition"
)

var sampleTree = c.All(
	c.Prop("plan").Eq("pro"),
	c.Any(
		c.Event("purchase").AtLeast(2),
		c.Event("app_open").Within(c.Hours(2)).NotExists(),
		c.Prop("plan").Neq("free"),
	),
	c.Event("login").Within(c.Hours(1)).Exists(),
	c.Prop("seats").Gte(3),
	c.Event("purchase").Exists(),
)

func TestWalkAndLeaves(t *testing.T) {
	t.Parallel()
	var types []c.Type
	c.Walk(sampleTree, func(n c.Node) bool {
		types = append(types, n.Type)
		return true
	})
	want := []c.Type{c.TypeComposite, c.TypeProperty, c.TypeComposite, c.TypeEvent, c.TypeEvent, c.TypeProperty, c.TypeEvent, c.TypeProperty, c.TypeEvent}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("walk order %v, want %v", types, want)
	}
	visited := 0
	c.Walk(sampleTree, func(n c.Node) bool {
		visited++
		return n.Type != c.TypeComposite || n.Operator != c.OpOr // skip the or's children
	})
	if visited != 6 {
		t.Errorf("visited %d nodes with the or pruned, want 6", visited)
	}
	if got := len(c.Leaves(sampleTree)); got != 7 {
		t.Errorf("%d leaves, want 7", got)
	}
	if got := c.Leaves(c.All()); len(got) != 0 {
		t.Errorf("leaves of an empty and: %v", got)
	}
	leaf := c.Prop("a").Exists()
	if got := c.Leaves(leaf); len(got) != 1 || !reflect.DeepEqual(got[0], leaf) {
		t.Errorf("leaves of a leaf: %v", got)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	if got, want := c.EventNames(sampleTree), []string{"purchase", "app_open", "login"}; !reflect.DeepEqual(got, want) {
		t.Errorf("EventNames = %v, want %v", got, want)
	}
	if got, want := c.PropertyNames(sampleTree), []string{"plan", "seats"}; !reflect.DeepEqual(got, want) {
		t.Errorf("PropertyNames = %v, want %v", got, want)
	}
	// A bucket that references neither is a wildcard (spec §4.2).
	if got := c.EventNames(c.EmailEngagement("t", c.CheckOpened)); got != nil {
		t.Errorf("EventNames of an email leaf = %v", got)
	}
	if got := c.PropertyNames(c.All()); got != nil {
		t.Errorf("PropertyNames of an empty and = %v", got)
	}
}

func TestFirstWithin(t *testing.T) {
	t.Parallel()
	// Depth-first: the or's windowed leaf comes before the later sibling.
	if got := c.FirstWithin(sampleTree); got == nil || *got != c.Hours(2) {
		t.Errorf("FirstWithin = %v, want 2h", got)
	}
	if got := c.FirstWithin(c.All(c.Event("x").Exists(), c.Prop("a").Exists())); got != nil {
		t.Errorf("FirstWithin without windows = %v", got)
	}
	n := c.Event("x").Within(c.Days(7)).Exists()
	got := c.FirstWithin(n)
	got.Hours = 1
	if n.Within.Hours != 168 {
		t.Error("FirstWithin returned the node's own window")
	}
	// Within on a non-event node has no meaning and is ignored.
	if got := c.FirstWithin(c.Node{Type: c.TypeProperty, Property: "a", Operator: c.OpExists, Within: &c.Duration{Hours: 1}}); got != nil {
		t.Errorf("FirstWithin of a property node = %v", got)
	}
}

func TestAllNegative(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		node c.Node
		want bool
	}{
		{"neq alone", c.Prop("a").Neq(1), true},
		{"not_exists alone", c.Prop("a").NotExists(), true},
		{"event not_exists without window", c.Event("x").NotExists(), true},
		{"windowed not_exists is positive", c.Event("x").Within(c.Days(7)).NotExists(), false},
		{"not_opened", c.EmailEngagement("t", c.CheckNotOpened), true},
		{"not_clicked", c.EmailEngagement("t", c.CheckNotClicked), true},
		{"opened", c.EmailEngagement("t", c.CheckOpened), false},
		{"eq", c.Prop("a").Eq(1), false},
		{"exists", c.Prop("a").Exists(), false},
		{"count", c.Event("x").AtMost(0), false},
		{"all negative tree", c.All(c.Prop("a").Neq(1), c.Any(c.Event("x").NotExists(), c.Prop("b").NotExists()), c.EmailEngagement("t", c.CheckNotClicked)), true},
		{"one positive leaf", c.All(c.Prop("a").Neq(1), c.Any(c.Event("x").NotExists(), c.Prop("b").Exists())), false},
		{"negatives under or with a windowed absence", c.Any(c.Prop("a").Neq(1), c.Event("x").Within(c.Hours(1)).NotExists()), false},
		{"empty composite has no leaves", c.All(), false},
		{"unknown leaf counts as positive", c.All(c.Prop("a").Neq(1), c.Node{Type: "cohort"}), false},
	}
	for _, tt := range tests {
		if got := c.AllNegative(tt.node); got != tt.want {
			t.Errorf("%s: AllNegative = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Spec 10 §7 scenario 16: the criteria checks bucket registration builds on.
func TestScenario16Criteria(t *testing.T) {
	t.Parallel()
	reject := func(criteria c.Node) string {
		if err := c.Validate(criteria); err != nil {
			return err.Error()
		}
		if c.AllNegative(criteria) {
			return "all leaves negative"
		}
		for _, e := range c.EventNames(criteria) {
			if strings.HasPrefix(e, "bucket:") {
				return "bucket:* event"
			}
		}
		if c.HasEmailEngagement(criteria) {
			return "email_engagement"
		}
		return ""
	}
	tests := []struct {
		name     string
		criteria c.Node
		reason   string
	}{
		{"neq alone", c.Prop("a").Neq(1), "all leaves negative"},
		{"bucket event leaf", c.All(c.Prop("plan").Eq("pro"), c.Event("bucket:entered:other").Exists()), "bucket:* event"},
		{"email_engagement", c.All(c.Prop("plan").Eq("pro"), c.EmailEngagement("welcome", c.CheckOpened)), "email_engagement"},
		{"windowed notExists alone", c.Event("app_open").Within(c.Days(7)).NotExists(), ""},
		{"positive criteria", c.Event("purchase").AtLeast(2), ""},
	}
	for _, tt := range tests {
		if got := reject(tt.criteria); got != tt.reason {
			t.Errorf("%s: rejected for %q, want %q", tt.name, got, tt.reason)
		}
	}
	if c.HasEmailEngagement(c.All(c.Prop("a").Exists(), c.Any(c.Event("x").Exists()))) {
		t.Error("HasEmailEngagement without one")
	}
	if !c.HasEmailEngagement(c.Any(c.All(c.EmailEngagement("t", c.CheckClicked)))) {
		t.Error("HasEmailEngagement missed a nested one")
	}
}
