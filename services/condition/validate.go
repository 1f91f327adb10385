package condition

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// maxIssues bounds how many problems one Validate call reports.
const maxIssues = 20

// Validate checks that n is a well-formed condition a definition may use. It
// returns nil or the problems found (errors.Join of errcode invalid_request
// errors, each naming its field relative to n, like
// "conditions[1].operator: unknown operator \"foo\"").
//
// It is stricter than evaluation, which tolerates everything: known node
// types, operators and checks only; property, eventName and templateKey
// non-empty; gt/gte/lt/lte with a number, contains with a string, exists and
// not_exists without a value; an event count with both an operator and a
// number, other event checks with neither; windows with finite, non-negative
// parts and a positive length; composites with at least one child; nesting up
// to MaxDepth. Bucket-specific rules (spec §4.1: all-negative criteria,
// bucket:* events, email_engagement) are the bucket registry's, built on
// AllNegative, EventNames and HasEmailEngagement.
func Validate(n Node) error { return ValidateAt("", n) }

// ValidateAt is Validate with field names prefixed by field (for example
// "criteria"), for callers validating a condition inside a larger document.
func ValidateAt(field string, n Node) error {
	v := validator{}
	v.node(field, &n, 1)
	return errors.Join(v.issues...)
}

// ValidateWhere checks a `where` list named field (for example
// "trigger.where"): every entry must be a valid property condition.
func ValidateWhere(field string, where []Node) error {
	v := validator{}
	for i := range where {
		path := field + "[" + strconv.Itoa(i) + "]"
		if where[i].Type != TypeProperty {
			v.add(join(path, "type"), fmt.Sprintf("must be %q in a where list", TypeProperty))
			continue
		}
		v.node(path, &where[i], 1)
	}
	return errors.Join(v.issues...)
}

// ValidateDuration checks a duration field: finite, non-negative parts and a
// positive length.
func ValidateDuration(field string, d Duration) error {
	v := validator{}
	v.duration(field, d)
	return errors.Join(v.issues...)
}

type validator struct {
	issues []error
}

func (v *validator) add(field, msg string) {
	if len(v.issues) < maxIssues {
		v.issues = append(v.issues, fieldErr(field, msg))
	}
}

func (v *validator) node(path string, n *Node, depth int) {
	if depth > MaxDepth {
		v.add(path, fmt.Sprintf("nests deeper than %d levels", MaxDepth))
		return
	}
	switch n.Type {
	case TypeProperty:
		v.property(path, n)
	case TypeEvent:
		v.event(path, n)
	case TypeEmailEngagement:
		if n.TemplateKey == "" {
			v.add(join(path, "templateKey"), "is required")
		}
		switch n.Check {
		case CheckOpened, CheckClicked, CheckNotOpened, CheckNotClicked:
		default:
			v.add(join(path, "check"), oneOf(string(n.Check), "check", CheckOpened, CheckClicked, CheckNotOpened, CheckNotClicked))
		}
	case TypeComposite:
		switch n.Operator {
		case OpAnd, OpOr:
		default:
			v.add(join(path, "operator"), oneOf(string(n.Operator), "operator", OpAnd, OpOr))
		}
		if len(n.Conditions) == 0 {
			v.add(join(path, "conditions"), "must not be empty")
		}
		for i := range n.Conditions {
			v.node(join(path, "conditions")+"["+strconv.Itoa(i)+"]", &n.Conditions[i], depth+1)
		}
	case "":
		v.add(join(path, "type"), "is required")
	default:
		v.add(join(path, "type"), oneOf(string(n.Type), "node type", TypeProperty, TypeEvent, TypeEmailEngagement, TypeComposite))
	}
}

func (v *validator) property(path string, n *Node) {
	if n.Property == "" {
		v.add(join(path, "property"), "is required")
	}
	val := nodeValue(n.Value)
	field := join(path, "value")
	switch n.Operator {
	case OpEq, OpNeq:
		v.scalar(field, val, n.Value)
	case OpGt, OpGte, OpLt, OpLte:
		v.number(field, val, fmt.Sprintf("must be a number for operator %s", n.Operator))
	case OpContains:
		if val.k != kindString {
			v.add(field, "must be a string for operator contains")
		}
	case OpExists, OpNotExists:
		if val.k != kindAbsent {
			v.add(field, fmt.Sprintf("must be absent for operator %s", n.Operator))
		}
	default:
		v.add(join(path, "operator"), oneOf(string(n.Operator), "operator",
			OpEq, OpNeq, OpGt, OpGte, OpLt, OpLte, OpExists, OpNotExists, OpContains))
	}
}

func (v *validator) event(path string, n *Node) {
	if n.EventName == "" {
		v.add(join(path, "eventName"), "is required")
	}
	val := nodeValue(n.Value)
	switch n.Check {
	case CheckCount:
		if !isCountOperator(n.Operator) {
			v.add(join(path, "operator"), oneOf(string(n.Operator), "count operator", OpEq, OpGt, OpGte, OpLt, OpLte))
		}
		v.number(join(path, "value"), val, "must be a number for check count")
	case CheckExists, CheckNotExists:
		if n.Operator != "" {
			v.add(join(path, "operator"), fmt.Sprintf("must be absent for check %s", n.Check))
		}
		if val.k != kindAbsent {
			v.add(join(path, "value"), fmt.Sprintf("must be absent for check %s", n.Check))
		}
	default:
		v.add(join(path, "check"), oneOf(string(n.Check), "check", CheckExists, CheckNotExists, CheckCount))
	}
	if n.Within != nil {
		v.duration(join(path, "within"), *n.Within)
	}
}

func (v *validator) scalar(field string, val scalar, raw any) {
	switch val.k {
	case kindAbsent, kindString, kindBool:
	case kindNumber:
		v.finite(field, val.f)
	default:
		v.add(field, fmt.Sprintf("must be a string, number or boolean, not %T", raw))
	}
}

func (v *validator) number(field string, val scalar, msg string) {
	if val.k != kindNumber {
		v.add(field, msg)
		return
	}
	v.finite(field, val.f)
}

func (v *validator) finite(field string, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		v.add(field, "must be a finite number")
	}
}

func (v *validator) duration(field string, d Duration) {
	ok := true
	for _, p := range []struct {
		key string
		v   float64
	}{{"hours", d.Hours}, {"minutes", d.Minutes}, {"seconds", d.Seconds}} {
		switch {
		case math.IsNaN(p.v) || math.IsInf(p.v, 0):
			v.add(join(field, p.key), "must be a finite number")
			ok = false
		case p.v < 0:
			v.add(join(field, p.key), "must not be negative")
			ok = false
		}
	}
	if ok && !(d.Milliseconds() > 0) {
		v.add(field, "must be longer than zero")
	}
}

// oneOf is the message for an unknown or missing enum value.
func oneOf[T ~string](got, what string, allowed ...T) string {
	list := ""
	for i, a := range allowed {
		if i > 0 {
			list += ", "
		}
		list += string(a)
	}
	if got == "" {
		return fmt.Sprintf("is required (one of %s)", list)
	}
	return fmt.Sprintf("unknown %s %q (want one of %s)", what, got, list)
}
