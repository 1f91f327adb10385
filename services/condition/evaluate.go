package condition

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// History answers the history questions of event and email_engagement nodes.
// The Postgres implementation lives with the tables; tests use an in-memory
// one.
type History interface {
	// CountEvents counts the user_events rows of key named eventName with
	// occurred_at ≥ *since, or of all time when since is nil.
	CountEvents(ctx context.Context, key, eventName string, since *time.Time) (int64, error)
	// LatestEmail describes the newest email_sends row to email for
	// templateKey; Found is false when there is none.
	LatestEmail(ctx context.Context, email, templateKey string) (EmailState, error)
}

// EmailState is the engagement state of one send.
type EmailState struct {
	Found   bool // a send exists
	Opened  bool // opened_at is set
	Clicked bool // clicked_at is set
}

// Input is what a condition is evaluated against.
type Input struct {
	// Key is the contact key (spec Terms) whose user_events are counted.
	Key string
	// Email is the contact's email, used for email_engagement. The reference
	// looks sends up by the key, which only works when the key is an email;
	// Go uses the contact's email instead (spec §3.3.2), and with no email
	// every email_engagement check is false.
	Email string
	// Properties is the property bag (decoded JSON: float64 or json.Number
	// numbers, strings, bools, nil, maps, slices). Which bag depends on the
	// caller (spec §3.3.4).
	Properties map[string]any
	// Now anchors event windows. It must be set when the tree has a windowed
	// event node.
	Now time.Time
}

// ErrNoHistory is returned by Evaluate when the tree needs history (an event
// or email_engagement node) and no History was given.
var ErrNoHistory = errors.New("condition: the condition reads history but no History was given")

// ErrNoNow is returned by Evaluate when a windowed event node is evaluated
// with a zero Input.Now.
var ErrNoNow = errors.New("condition: an event window needs Input.Now")

// Evaluate reports whether in satisfies n (spec §3). Composites
// short-circuit in order, so history is only read for nodes that decide the
// result. Unknown node types, operators and checks evaluate to false without
// reading history. Errors come only from h (wrapped), or are ErrNoHistory and
// ErrNoNow.
func Evaluate(ctx context.Context, n Node, in Input, h History) (bool, error) {
	e := evaluator{ctx: ctx, in: &in, h: h}
	return e.eval(&n)
}

// MatchWhere evaluates a `where` list against props with no history: the
// list is an AND and an empty list is true (spec §3.2). Where lists hold
// property conditions only; event and email_engagement nodes in one are
// false.
func MatchWhere(where []Node, props map[string]any) bool {
	for i := range where {
		if !matchProperties(&where[i], props) {
			return false
		}
	}
	return true
}

func matchProperties(n *Node, props map[string]any) bool {
	switch n.Type {
	case TypeProperty:
		return evalProperty(n, props)
	case TypeComposite:
		ok, _ := evalComposite(n, func(c *Node) (bool, error) { return matchProperties(c, props), nil })
		return ok
	default:
		return false
	}
}

type evaluator struct {
	ctx context.Context
	in  *Input
	h   History
}

func (e *evaluator) eval(n *Node) (bool, error) {
	switch n.Type {
	case TypeProperty:
		return evalProperty(n, e.in.Properties), nil
	case TypeEvent:
		return e.evalEvent(n)
	case TypeEmailEngagement:
		return e.evalEmail(n)
	case TypeComposite:
		return evalComposite(n, e.eval)
	default:
		return false, nil
	}
}

// evalComposite applies an and/or node with short-circuit; an empty and is
// true, an empty or false, any other operator false.
func evalComposite(n *Node, eval func(*Node) (bool, error)) (bool, error) {
	var stopOn bool
	switch n.Operator {
	case OpAnd:
		stopOn = false
	case OpOr:
		stopOn = true
	default:
		return false, nil
	}
	for i := range n.Conditions {
		ok, err := eval(&n.Conditions[i])
		if err != nil {
			return false, err
		}
		if ok == stopOn {
			return stopOn, nil
		}
	}
	return !stopOn, nil
}

// evalProperty applies spec §3.2 with JavaScript's strict equality.
func evalProperty(n *Node, props map[string]any) bool {
	actual := scalar{k: kindAbsent}
	if v, ok := props[n.Property]; ok {
		actual = classify(v)
	}
	want := nodeValue(n.Value)
	switch n.Operator {
	case OpEq:
		return strictEqual(actual, want)
	case OpNeq:
		return !strictEqual(actual, want)
	case OpGt, OpGte, OpLt, OpLte:
		return actual.k == kindNumber && want.k == kindNumber && compare(n.Operator, actual.f, want.f)
	case OpExists:
		return actual.k != kindAbsent && actual.k != kindNull
	case OpNotExists:
		return actual.k == kindAbsent || actual.k == kindNull
	case OpContains:
		return actual.k == kindString && want.k == kindString && strings.Contains(actual.s, want.s)
	default:
		return false
	}
}

// strictEqual is JavaScript's ===, where an unset node value is undefined:
// it equals only an absent property (a stored null is not absent).
func strictEqual(a, b scalar) bool {
	if a.k != b.k {
		return false
	}
	switch a.k {
	case kindAbsent, kindNull:
		return true
	case kindString:
		return a.s == b.s
	case kindNumber:
		return a.f == b.f // 1 == 1.0, -0 == 0, NaN never
	case kindBool:
		return a.b == b.b
	default:
		return false // objects are compared by identity in JavaScript
	}
}

// compare applies a numeric comparison operator; unknown operators are false.
func compare(op Operator, a, b float64) bool {
	switch op {
	case OpEq:
		return a == b
	case OpGt:
		return a > b
	case OpGte:
		return a >= b
	case OpLt:
		return a < b
	case OpLte:
		return a <= b
	default:
		return false
	}
}

// evalEvent applies spec §3.3.1.
func (e *evaluator) evalEvent(n *Node) (bool, error) {
	var test func(count float64) bool
	switch n.Check {
	case CheckExists:
		test = func(c float64) bool { return c > 0 }
	case CheckNotExists:
		test = func(c float64) bool { return c == 0 }
	case CheckCount:
		want := nodeValue(n.Value)
		switch {
		case n.Operator == "" || want.k == kindAbsent:
			test = func(c float64) bool { return c > 0 }
		case !isCountOperator(n.Operator) || want.k != kindNumber:
			return false, nil
		default:
			test = func(c float64) bool { return compare(n.Operator, c, want.f) }
		}
	default:
		return false, nil
	}
	if e.h == nil {
		return false, ErrNoHistory
	}
	var since *time.Time
	if n.Within != nil {
		if e.in.Now.IsZero() {
			return false, ErrNoNow
		}
		s := e.in.Now.Add(-n.Within.Std())
		since = &s
	}
	count, err := e.h.CountEvents(e.ctx, e.in.Key, n.EventName, since)
	if err != nil {
		return false, fmt.Errorf("count events %q: %w", n.EventName, err)
	}
	return test(float64(count)), nil
}

func isCountOperator(op Operator) bool {
	switch op {
	case OpEq, OpGt, OpGte, OpLt, OpLte:
		return true
	}
	return false
}

// evalEmail applies spec §3.3.2: with no send every check is false, not_*
// included.
func (e *evaluator) evalEmail(n *Node) (bool, error) {
	switch n.Check {
	case CheckOpened, CheckClicked, CheckNotOpened, CheckNotClicked:
	default:
		return false, nil
	}
	if e.h == nil {
		return false, ErrNoHistory
	}
	if e.in.Email == "" {
		return false, nil
	}
	st, err := e.h.LatestEmail(e.ctx, e.in.Email, n.TemplateKey)
	if err != nil {
		return false, fmt.Errorf("read latest email %q: %w", n.TemplateKey, err)
	}
	if !st.Found {
		return false, nil
	}
	switch n.Check {
	case CheckOpened:
		return st.Opened, nil
	case CheckClicked:
		return st.Clicked, nil
	case CheckNotOpened:
		return !st.Opened, nil
	default: // CheckNotClicked
		return !st.Clicked, nil
	}
}
