package buckets

import (
	"fmt"
	"slices"
	"strings"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// Registry holds the buckets of one process, as selected by ENABLED_BUCKETS,
// with the indexes real-time evaluation narrows candidates with (spec §4.2).
// It is immutable once built and safe for concurrent use.
type Registry struct {
	all  []*Bucket
	byID map[string]*Bucket

	// Indexes over the evaluable buckets (statically enabled), holding
	// positions in all so that candidates come out in registration order.
	byEvent  map[string][]int
	byProp   map[string][]int
	wildcard []int

	// genericTriggers holds "bucket:entered" and "bucket:left" when a
	// journey triggers on that generic name; set before the consumers
	// start, read-only afterwards.
	genericTriggers map[string]bool
	// dwell holds each bucket's dwell reaction schedules (AddDwell).
	dwell map[string][]DwellSchedule
}

// TriggerGeneric makes transitions of kind ("entered" or "left") also
// publish the generic copy (spec 10 §4.5.2), because some journey triggers
// on "bucket:<kind>". Call it before any consumer uses the registry.
func (r *Registry) TriggerGeneric(kind string) {
	if r.genericTriggers == nil {
		r.genericTriggers = map[string]bool{}
	}
	r.genericTriggers["bucket:"+kind] = true
}

// NewRegistry registers defs, in order, that pass enabledEnv, the value of
// ENABLED_BUCKETS (spec §4.2.1):
//
//   - "" (unset or empty), or "*" after trimming: every bucket;
//   - otherwise a comma-separated list whose trimmed, non-empty entries are
//     the enabled ids. A whitespace-only value enables none, a "*" inside a
//     list is just an id, and unknown ids are ignored.
//
// Buckets outside the set are not registered at all. Duplicate ids among
// defs are rejected whether or not they are enabled, as is a nil def.
func NewRegistry(enabledEnv string, defs ...*Bucket) (*Registry, error) {
	seen := make(map[string]int, len(defs))
	for i, b := range defs {
		if b == nil {
			return nil, errcode.Invalidf("buckets[%d]: definition is nil (build it with Define)", i)
		}
		if j, dup := seen[b.ID()]; dup {
			return nil, errcode.InvalidField("buckets["+b.ID()+"].id",
				fmt.Sprintf("duplicate bucket id (definitions #%d and #%d)", j, i))
		}
		seen[b.ID()] = i
	}

	allowed := parseEnabledSet(enabledEnv) // nil means all
	r := &Registry{
		byID:    make(map[string]*Bucket, len(defs)),
		byEvent: map[string][]int{},
		byProp:  map[string][]int{},
	}
	for _, b := range defs {
		if allowed != nil && !allowed[b.ID()] {
			continue
		}
		pos := len(r.all)
		r.all = append(r.all, b)
		r.byID[b.ID()] = b
		// Every registered bucket is dynamic (Define rejects other kinds),
		// so being statically enabled is what makes it evaluable.
		if !b.Enabled() {
			continue
		}
		if b.Wildcard() {
			r.wildcard = append(r.wildcard, pos)
			continue
		}
		for _, e := range b.events {
			r.byEvent[e] = append(r.byEvent[e], pos)
		}
		for _, p := range b.props {
			r.byProp[p] = append(r.byProp[p], pos)
		}
	}
	return r, nil
}

// parseEnabledSet reads ENABLED_BUCKETS; nil means every id.
func parseEnabledSet(v string) map[string]bool {
	if v == "" || strings.TrimSpace(v) == "*" {
		return nil
	}
	set := map[string]bool{}
	for _, id := range strings.Split(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			set[id] = true
		}
	}
	return set
}

// All returns the registered buckets, statically disabled ones included, in
// registration order.
func (r *Registry) All() []*Bucket { return slices.Clone(r.all) }

// Get returns the registered bucket with the given id.
func (r *Registry) Get(id string) (*Bucket, bool) {
	b, ok := r.byID[id]
	return b, ok
}

// Candidates returns the buckets an event may change membership of (spec
// §4.2.3), in registration order without duplicates: those whose criteria
// use eventName, the wildcards, and those whose criteria use any of the
// property keys of the event's eventProperties or contactProperties. Only
// statically enabled buckets are candidates; the bucket_configs override is
// the caller's to apply. An event named "bucket:…" has no candidates, which
// bounds the recursion of bucket events (spec §4.4.1).
func (r *Registry) Candidates(eventName string, eventPropKeys, contactPropKeys []string) []*Bucket {
	if strings.HasPrefix(eventName, "bucket:") {
		return nil
	}
	var pos []int
	pos = append(pos, r.byEvent[eventName]...)
	pos = append(pos, r.wildcard...)
	for _, k := range eventPropKeys {
		pos = append(pos, r.byProp[k]...)
	}
	for _, k := range contactPropKeys {
		pos = append(pos, r.byProp[k]...)
	}
	if len(pos) == 0 {
		return nil
	}
	slices.Sort(pos)
	pos = slices.Compact(pos)
	out := make([]*Bucket, len(pos))
	for i, p := range pos {
		out[i] = r.all[p]
	}
	return out
}
