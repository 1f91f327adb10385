package condition_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	c "github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	deep := c.Prop("a").Exists()
	for range c.MaxDepth {
		deep = c.All(deep)
	}
	prop := func(op c.Operator, v any) c.Node {
		return c.Node{Type: c.TypeProperty, Property: "a", Operator: op, Value: v}
	}
	event := func(check c.Check, op c.Operator, v any) c.Node {
		return c.Node{Type: c.TypeEvent, EventName: "x", Check: check, Operator: op, Value: v}
	}
	tests := []struct {
		name string
		node c.Node
		want []string // the issues, in order (substrings); none means valid
	}{
		{"eq", c.Prop("a").Eq("x"), nil},
		{"eq without value", prop(c.OpEq, nil), nil},
		{"neq bool", c.Prop("a").Neq(false), nil},
		{"gt", c.Prop("a").Gt(1), nil},
		{"contains", c.Prop("a").Contains(""), nil},
		{"exists", c.Prop("a").Exists(), nil},
		{"event exists", c.Event("x").Exists(), nil},
		{"windowed count", c.Event("x").Within(c.Duration{Hours: 1, Minutes: 0.5}).AtMost(0), nil},
		{"email", c.EmailEngagement("t", c.CheckNotOpened), nil},
		{"composite", c.Any(c.All(c.Prop("a").Exists())), nil},
		{"scenario 15", c.Event("login").Within(c.Hours(1)).AtLeast(3), nil},

		{"no type", c.Node{}, []string{"type: is required"}},
		{"unknown type", c.Node{Type: "cohort"}, []string{`type: unknown node type "cohort" (want one of property, event, email_engagement, composite)`}},
		{"missing property name", c.Prop("").Exists(), []string{"property: is required"}},
		{"missing operator", prop("", nil), []string{"operator: is required (one of eq, neq, gt, gte, lt, lte, exists, not_exists, contains)"}},
		{"unknown operator", prop("like", "x"), []string{`operator: unknown operator "like"`}},
		{"gt without value", prop(c.OpGt, nil), []string{"value: must be a number for operator gt"}},
		{"lte with a string", prop(c.OpLte, "3"), []string{"value: must be a number for operator lte"}},
		{"gt NaN", c.Prop("a").Gt(math.NaN()), []string{"value: must be a finite number"}},
		{"eq infinite", prop(c.OpEq, math.Inf(-1)), []string{"value: must be a finite number"}},
		{"eq object", prop(c.OpEq, []string{"x"}), []string{"value: must be a string, number or boolean, not []string"}},
		{"contains a number", prop(c.OpContains, 1.0), []string{"value: must be a string for operator contains"}},
		{"exists with value", prop(c.OpExists, true), []string{"value: must be absent for operator exists"}},

		{"missing event name", c.Event("").Exists(), []string{"eventName: is required"}},
		{"missing check", event("", "", nil), []string{"check: is required (one of exists, not_exists, count)"}},
		{"unknown check", event("ever", "", nil), []string{`check: unknown check "ever"`}},
		{"count without value", event(c.CheckCount, c.OpGte, nil), []string{"value: must be a number for check count"}},
		{"count without operator", event(c.CheckCount, "", 1.0), []string{"operator: is required (one of eq, gt, gte, lt, lte)"}},
		{"count with neq", event(c.CheckCount, c.OpNeq, 1.0), []string{`operator: unknown count operator "neq"`}},
		{"count with a string", event(c.CheckCount, c.OpEq, "1"), []string{"value: must be a number for check count"}},
		{"exists with operator and value", event(c.CheckExists, c.OpGt, 1.0), []string{"operator: must be absent for check exists", "value: must be absent for check exists"}},
		{"negative window", c.Event("x").Within(c.Hours(-1)).Exists(), []string{"within.hours: must not be negative"}},
		{"NaN window", c.Event("x").Within(c.Minutes(math.NaN())).Exists(), []string{"within.minutes: must be a finite number"}},
		{"zero window", c.Event("x").Within(c.Duration{}).Exists(), []string{"within: must be longer than zero"}},

		{"missing template", c.EmailEngagement("", c.CheckOpened), []string{"templateKey: is required"}},
		{"unknown engagement check", c.EmailEngagement("t", "bounced"), []string{`check: unknown check "bounced"`}},

		{"empty and", c.All(), []string{"conditions: must not be empty"}},
		{"empty or", c.Any(), []string{"conditions: must not be empty"}},
		{"unknown composite operator", c.Node{Type: c.TypeComposite, Operator: "xor", Conditions: []c.Node{c.Prop("a").Exists()}}, []string{`operator: unknown operator "xor" (want one of and, or)`}},
		{"nested paths", c.All(c.Prop("a").Exists(), c.Any(c.Event("x").Count(c.OpGte, math.NaN()), c.All())), []string{
			"conditions[1].conditions[0].value: must be a finite number",
			"conditions[1].conditions[1].conditions: must not be empty",
		}},
		{"too deep", deep, []string{"nests deeper than 64 levels"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := c.Validate(tt.node)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			if code := errcode.Code(err); code != errcode.CodeInvalidRequest {
				t.Errorf("code = %s", code)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("issues = %q, want %q", got, tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("issue %d = %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestValidateFieldNames(t *testing.T) {
	t.Parallel()
	err := c.ValidateAt("criteria", c.All(c.Prop("").Exists()))
	var e *errcode.Error
	if !errors.As(err, &e) || e.Details["field"] != "criteria.conditions[0].property" {
		t.Fatalf("ValidateAt: %v (%+v)", err, e)
	}
	if got := errcode.Message(err); got != "criteria.conditions[0].property: is required" {
		t.Errorf("message = %q", got)
	}

	if err := c.ValidateWhere("trigger.where", nil); err != nil {
		t.Errorf("empty where: %v", err)
	}
	if err := c.ValidateWhere("trigger.where", []c.Node{c.Prop("plan").Eq("pro"), c.Prop("n").Gt(1)}); err != nil {
		t.Errorf("valid where: %v", err)
	}
	err = c.ValidateWhere("exitOn[0].where", []c.Node{c.Prop("plan").Eq("pro"), c.Event("x").Exists(), c.Prop("n").Gt(math.Inf(1)), c.All(c.Prop("a").Exists())})
	want := []string{
		`exitOn[0].where[1].type: must be "property" in a where list`,
		"exitOn[0].where[2].value: must be a finite number",
		`exitOn[0].where[3].type: must be "property" in a where list`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("ValidateWhere = %v, want %q", err, want)
	}

	if err := c.ValidateDuration("minDwell", c.Hours(1)); err != nil {
		t.Errorf("ValidateDuration: %v", err)
	}
	if err := c.ValidateDuration("maxDwell", c.Duration{Seconds: -1}); err == nil || err.Error() != "maxDwell.seconds: must not be negative" {
		t.Errorf("ValidateDuration negative: %v", err)
	}
}

// Validate reports at most 20 issues.
func TestValidateCapsIssues(t *testing.T) {
	t.Parallel()
	var many []c.Node
	for range 50 {
		many = append(many, c.Prop("").Exists())
	}
	err := c.Validate(c.All(many...))
	if n := len(strings.Split(err.Error(), "\n")); n != 20 {
		t.Errorf("%d issues reported, want 20", n)
	}
}
