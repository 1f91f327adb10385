package condition

// The fluent builder of spec §3.4. Every terminal returns a plain Node, equal
// (reflect.DeepEqual) to the declarative or decoded tree, with unset keys left
// unset.

// PropertyMatcher builds property nodes; get one from Prop.
type PropertyMatcher struct{ property string }

// Prop starts a property condition on the top-level key property.
func Prop(property string) PropertyMatcher { return PropertyMatcher{property: property} }

func (m PropertyMatcher) node(op Operator, value any) Node {
	return Node{Type: TypeProperty, Property: m.property, Operator: op, Value: normalizeValue(value)}
}

// Eq matches a property strictly equal to value (a string, number or bool;
// numbers are stored as float64). Eq(nil) leaves the value unset, which
// matches only an absent property.
func (m PropertyMatcher) Eq(value any) Node { return m.node(OpEq, value) }

// Neq matches a property not strictly equal to value; an absent property
// matches.
func (m PropertyMatcher) Neq(value any) Node { return m.node(OpNeq, value) }

// Gt matches a numeric property greater than value.
func (m PropertyMatcher) Gt(value float64) Node { return m.node(OpGt, value) }

// Gte matches a numeric property greater than or equal to value.
func (m PropertyMatcher) Gte(value float64) Node { return m.node(OpGte, value) }

// Lt matches a numeric property less than value.
func (m PropertyMatcher) Lt(value float64) Node { return m.node(OpLt, value) }

// Lte matches a numeric property less than or equal to value.
func (m PropertyMatcher) Lte(value float64) Node { return m.node(OpLte, value) }

// Contains matches a string property containing value (case-sensitive).
func (m PropertyMatcher) Contains(value string) Node { return m.node(OpContains, value) }

// Exists matches a property that is present and not null.
func (m PropertyMatcher) Exists() Node { return m.node(OpExists, nil) }

// NotExists matches a property that is absent or null.
func (m PropertyMatcher) NotExists() Node { return m.node(OpNotExists, nil) }

// EventMatcher builds event nodes; get one from Event. It is a value: Within
// returns a new matcher and leaves the receiver unchanged.
type EventMatcher struct {
	eventName string
	within    *Duration
}

// Event starts an event condition on the contact's history of eventName.
func Event(eventName string) EventMatcher { return EventMatcher{eventName: eventName} }

// Within returns a matcher that only counts events in the last d. A second
// Within replaces the first window.
func (m EventMatcher) Within(d Duration) EventMatcher {
	m.within = &d
	return m
}

func (m EventMatcher) node(check Check, op Operator, value any) Node {
	n := Node{Type: TypeEvent, EventName: m.eventName, Check: check, Operator: op, Value: normalizeValue(value)}
	if m.within != nil {
		w := *m.within // each node owns its window
		n.Within = &w
	}
	return n
}

// Exists matches when the event happened (in the window, if any).
func (m EventMatcher) Exists() Node { return m.node(CheckExists, "", nil) }

// NotExists matches when the event did not happen (in the window, if any).
func (m EventMatcher) NotExists() Node { return m.node(CheckNotExists, "", nil) }

// Count matches when the number of events compares to n with op (one of eq,
// gt, gte, lt, lte).
func (m EventMatcher) Count(op Operator, n float64) Node { return m.node(CheckCount, op, n) }

// AtLeast is Count(OpGte, n).
func (m EventMatcher) AtLeast(n float64) Node { return m.Count(OpGte, n) }

// MoreThan is Count(OpGt, n).
func (m EventMatcher) MoreThan(n float64) Node { return m.Count(OpGt, n) }

// AtMost is Count(OpLte, n).
func (m EventMatcher) AtMost(n float64) Node { return m.Count(OpLte, n) }

// LessThan is Count(OpLt, n).
func (m EventMatcher) LessThan(n float64) Node { return m.Count(OpLt, n) }

// Exactly is Count(OpEq, n).
func (m EventMatcher) Exactly(n float64) Node { return m.Count(OpEq, n) }

// EmailEngagement matches on the newest send of templateKey to the contact:
// check is opened, clicked, not_opened or not_clicked.
func EmailEngagement(templateKey string, check Check) Node {
	return Node{Type: TypeEmailEngagement, TemplateKey: templateKey, Check: check}
}

// All is a composite "and" of conditions; with none it is true.
func All(conditions ...Node) Node { return composite(OpAnd, conditions) }

// Any is a composite "or" of conditions; with none it is false.
func Any(conditions ...Node) Node { return composite(OpOr, conditions) }

func composite(op Operator, conditions []Node) Node {
	// Copy so that the caller's slice is not aliased, and never nil, so an
	// empty composite equals a decoded "conditions":[].
	c := make([]Node, len(conditions))
	copy(c, conditions)
	return Node{Type: TypeComposite, Operator: op, Conditions: c}
}
