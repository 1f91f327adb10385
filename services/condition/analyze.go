package condition

// Walk calls fn for n and its descendants, depth-first in document order
// (a composite before its children). When fn returns false for a composite,
// its children are skipped.
func Walk(n Node, fn func(Node) bool) {
	walk(&n, fn)
}

func walk(n *Node, fn func(Node) bool) {
	if !fn(*n) || n.Type != TypeComposite {
		return
	}
	for i := range n.Conditions {
		walk(&n.Conditions[i], fn)
	}
}

// Leaves returns the non-composite nodes of n in document order. Children of
// every composite count, whatever its operator, as in the reference.
func Leaves(n Node) []Node {
	var out []Node
	Walk(n, func(c Node) bool {
		if c.Type != TypeComposite {
			out = append(out, c)
		}
		return true
	})
	return out
}

// EventNames returns the distinct event names of n's event nodes, in first-use
// order. Bucket narrowing indexes buckets by them (spec §4.2).
func EventNames(n Node) []string {
	return distinct(n, func(c Node) (string, bool) { return c.EventName, c.Type == TypeEvent })
}

// PropertyNames returns the distinct property names of n's property nodes, in
// first-use order.
func PropertyNames(n Node) []string {
	return distinct(n, func(c Node) (string, bool) { return c.Property, c.Type == TypeProperty })
}

func distinct(n Node, pick func(Node) (string, bool)) []string {
	var out []string
	seen := map[string]bool{}
	Walk(n, func(c Node) bool {
		if s, ok := pick(c); ok && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
		return true
	})
	return out
}

// IsNegative reports whether leaf is a negative leaf (spec §4.1 rule 4): a
// property neq or not_exists, an event not_exists with no window, or an
// email_engagement not_opened or not_clicked. A windowed not_exists ("did not
// do X in the last N") is bounded by its window and counts as positive.
func IsNegative(leaf Node) bool {
	switch leaf.Type {
	case TypeProperty:
		return leaf.Operator == OpNeq || leaf.Operator == OpNotExists
	case TypeEvent:
		return leaf.Check == CheckNotExists && leaf.Within == nil
	case TypeEmailEngagement:
		return leaf.Check == CheckNotOpened || leaf.Check == CheckNotClicked
	default:
		return false
	}
}

// AllNegative reports whether n has leaves and all of them are negative
// (IsNegative): bucket registration rejects such criteria as unbounded. A
// tree with no leaves (an empty composite) is not all-negative; Validate
// rejects it instead.
func AllNegative(n Node) bool {
	leaves := Leaves(n)
	if len(leaves) == 0 {
		return false
	}
	for _, l := range leaves {
		if !IsNegative(l) {
			return false
		}
	}
	return true
}

// HasEmailEngagement reports whether n has an email_engagement node.
func HasEmailEngagement(n Node) bool {
	found := false
	Walk(n, func(c Node) bool {
		found = found || c.Type == TypeEmailEngagement
		return !found
	})
	return found
}

// FirstWithin returns a copy of the window of the first windowed event node
// found depth-first (spec §4.3.6), or nil when no event node has a window.
// A nil result also means the criteria are not time-based by their shape.
func FirstWithin(n Node) *Duration {
	var out *Duration
	Walk(n, func(c Node) bool {
		if out != nil {
			return false
		}
		if c.Type == TypeEvent && c.Within != nil {
			w := *c.Within
			out = &w
		}
		return out == nil
	})
	return out
}
