package journey

import (
	"fmt"
	"slices"
	"strings"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// Registry holds the journeys of one process, as selected by
// ENABLED_JOURNEYS, with an index by trigger event. It is immutable once
// built and safe for concurrent use.
type Registry struct {
	all       []*Journey
	byID      map[string]*Journey
	byTrigger map[string][]*Journey
	withExit  []*Journey
}

// NewRegistry registers defs, in order, that pass enabledEnv, the value of
// ENABLED_JOURNEYS, read with the rules of ENABLED_BUCKETS (spec §4.2.1,
// §5.1):
//
//   - "" (unset or empty), or "*" after trimming: every journey;
//   - otherwise a comma-separated list whose trimmed, non-empty entries are
//     the enabled ids. A whitespace-only value enables none, a "*" inside a
//     list is just an id, and unknown ids are ignored.
//
// Bucket reactions (journeys with a SourceBucketID) are registered whatever
// enabledEnv says: ENABLED_BUCKETS gates them, by deciding whether the
// caller builds them at all.
//
// Journeys outside the set are not registered: they never run, are never
// exit-checked and are absent from the admin. Statically disabled journeys
// are registered (they skip triggers as journey_disabled). Duplicate ids
// among defs are rejected whether or not they are enabled, since a reaction
// colliding with a user journey must fail the worker build (spec §4.10.5),
// as is a nil def.
func NewRegistry(enabledEnv string, defs ...*Journey) (*Registry, error) {
	seen := make(map[string]int, len(defs))
	for i, j := range defs {
		if j == nil {
			return nil, errcode.Invalidf("journeys[%d]: definition is nil (build it with Define)", i)
		}
		if k, dup := seen[j.ID()]; dup {
			return nil, errcode.InvalidField("journeys["+j.ID()+"].id",
				fmt.Sprintf("duplicate journey id (definitions #%d and #%d)", k, i))
		}
		seen[j.ID()] = i
	}

	allowed := parseEnabled(enabledEnv)
	r := &Registry{
		byID:      make(map[string]*Journey, len(defs)),
		byTrigger: map[string][]*Journey{},
	}
	for _, j := range defs {
		if !allowed.has(j.ID()) && !j.IsReaction() {
			continue
		}
		r.all = append(r.all, j)
		r.byID[j.ID()] = j
		r.byTrigger[j.TriggerEvent()] = append(r.byTrigger[j.TriggerEvent()], j)
		if j.HasExitOn() {
			r.withExit = append(r.withExit, j)
		}
	}
	return r, nil
}

// enabledSet is a parsed ENABLED_JOURNEYS value.
type enabledSet struct {
	all bool
	ids map[string]bool
}

// parseEnabled reads ENABLED_JOURNEYS with the rules NewRegistry
// documents.
func parseEnabled(v string) enabledSet {
	if v == "" || strings.TrimSpace(v) == "*" {
		return enabledSet{all: true}
	}
	ids := map[string]bool{}
	for id := range strings.SplitSeq(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids[id] = true
		}
	}
	return enabledSet{ids: ids}
}

// has reports whether id is enabled.
func (s enabledSet) has(id string) bool { return s.all || s.ids[id] }

// All returns the registered journeys, statically disabled ones and
// reactions included, in registration order.
func (r *Registry) All() []*Journey { return slices.Clone(r.all) }

// Get returns the registered journey with the given id.
func (r *Registry) Get(id string) (*Journey, bool) {
	j, ok := r.byID[id]
	return j, ok
}

// Triggered returns the registered journeys whose trigger event is
// eventName, in registration order: one enrolment attempt each (spec §5.2).
// Statically disabled journeys are included so that the attempt can be
// skipped as journey_disabled; the trigger's where list is not applied
// (see Journey.Matches and CheckTrigger).
func (r *Registry) Triggered(eventName string) []*Journey {
	return slices.Clone(r.byTrigger[eventName])
}

// WithExitOn returns the registered journeys that have exitOn entries, in
// registration order: the journeys whose states an event may exit (spec
// §1.4; the enabled switches do not matter there).
func (r *Registry) WithExitOn() []*Journey { return slices.Clone(r.withExit) }
