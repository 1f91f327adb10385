// Package buckets is the bucket projection: bucket definitions and their
// registry, membership rows and transitions, and the bucket events it emits
// (spec 10 §4).
package buckets

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// EntryLimit says when a re-join emits bucket:entered (spec §4.6).
type EntryLimit string

// The entry limits. The zero value means Unlimited.
const (
	Unlimited     EntryLimit = "unlimited"
	Once          EntryLimit = "once"
	OncePerPeriod EntryLimit = "once_per_period"
)

// KindDynamic is the only bucket kind: membership follows the criteria.
// "manual" is reserved by the reference and rejected.
const KindDynamic = "dynamic"

// Meta is a bucket definition as written in code (spec §4.1). Durations are
// unset when zero.
type Meta struct {
	ID          string
	Name        string
	Description string
	// Enabled is the static switch; nil means true. A disabled bucket is
	// still registered (the admin lists it) but never evaluated.
	Enabled *bool
	// Kind is "" or "dynamic".
	Kind string
	// Criteria is required.
	Criteria *condition.Node
	// EntryLimit defaults to Unlimited.
	EntryLimit EntryLimit
	// EntryPeriod is only allowed with OncePerPeriod; zero there means the
	// gate never holds a re-join back.
	EntryPeriod time.Duration
	MinDwell    time.Duration
	MaxDwell    time.Duration
	// TimeBased marks the bucket for the reconcile cron's criteria and
	// absence passes even when no `within` says so, and arms expires_at.
	TimeBased bool
	// ReconcileEvery is informational only.
	ReconcileEvery time.Duration
	// ReconcileJoins forces the absence-join pass on (true) or off (false);
	// nil leaves it to the criteria's shape (spec §4.8 pass 2).
	ReconcileJoins *bool
	// FastExpiry arms a per-membership timer at the first `within`.
	FastExpiry bool
	// SyncToPostHog mirrors membership into a PostHog person property.
	SyncToPostHog bool
	// PostHogPropertyKey defaults to "hogsend_bucket_<id>".
	PostHogPropertyKey string
}

// Bucket is a validated, immutable bucket definition. Its accessors return
// copies, so a Bucket is safe for concurrent use.
type Bucket struct {
	meta     Meta // normalised; Criteria, Enabled and ReconcileJoins owned
	enabled  bool
	hash     string
	events   []string
	props    []string
	within   *time.Duration // first within, depth-first
	timeBase bool
}

// Define validates m (spec §4.1) and returns the bucket. Errors are errcode
// invalid_request errors (errors.Join of one per problem) naming the field,
// like "buckets[power-users].maxDwell: must not be shorter than minDwell".
func Define(m Meta) (*Bucket, error) {
	if err := validateMeta(m); err != nil {
		return nil, err
	}
	m = cloneMeta(m)
	if m.Kind == "" {
		m.Kind = KindDynamic
	}
	if m.EntryLimit == "" {
		m.EntryLimit = Unlimited
	}
	if m.PostHogPropertyKey == "" {
		m.PostHogPropertyKey = "hogsend_bucket_" + m.ID
	}
	b := &Bucket{
		meta:    m,
		enabled: m.Enabled == nil || *m.Enabled,
		hash:    condition.Hash(*m.Criteria),
		events:  condition.EventNames(*m.Criteria),
		props:   condition.PropertyNames(*m.Criteria),
	}
	if w := condition.FirstWithin(*m.Criteria); w != nil {
		d := w.Std()
		b.within = &d
	}
	b.timeBase = m.TimeBased || b.within != nil
	return b, nil
}

// MustDefine is Define for static definitions in main packages: it panics
// on an invalid definition.
func MustDefine(m Meta) *Bucket {
	b, err := Define(m)
	if err != nil {
		panic(fmt.Sprintf("buckets: define %q: %v", m.ID, err))
	}
	return b
}

// ID is the bucket id.
func (b *Bucket) ID() string { return b.meta.ID }

// Name is the bucket's display name.
func (b *Bucket) Name() string { return b.meta.Name }

// Meta returns a copy of the definition with defaults filled in: Kind
// "dynamic", EntryLimit Unlimited and PostHogPropertyKey
// "hogsend_bucket_<id>". Enabled and ReconcileJoins stay nil when unset, as
// the admin distinguishes an explicit value from the default.
func (b *Bucket) Meta() Meta { return cloneMeta(b.meta) }

// Enabled is the static switch (Meta.Enabled, nil meaning true). The
// bucket_configs override is the caller's to apply on top.
func (b *Bucket) Enabled() bool { return b.enabled }

// Criteria returns a copy of the criteria tree.
func (b *Bucket) Criteria() condition.Node { return cloneNode(*b.meta.Criteria) }

// criteria is the bucket's own tree for evaluation inside the package,
// which never changes it (Criteria copies it for callers outside).
func (b *Bucket) criteria() condition.Node { return *b.meta.Criteria }

// Hash is condition.Hash of the criteria: the digest stored in
// bucket_configs.criteria_hash to detect criteria changes (spec §4.9).
func (b *Bucket) Hash() string { return b.hash }

// EventNames are the distinct event names the criteria use, in first-use
// order.
func (b *Bucket) EventNames() []string { return slices.Clone(b.events) }

// PropertyNames are the distinct contact property names the criteria use,
// in first-use order.
func (b *Bucket) PropertyNames() []string { return slices.Clone(b.props) }

// Wildcard reports whether the criteria reference neither events nor
// properties, so that every event is a candidate (spec §4.2.2).
func (b *Bucket) Wildcard() bool { return len(b.events) == 0 && len(b.props) == 0 }

// UsesProperties reports whether the criteria have a property leg, which
// makes real-time evaluation read the contact (spec §4.4.2).
func (b *Bucket) UsesProperties() bool { return len(b.props) > 0 }

// IsTimeBased reports whether the reconcile cron runs its criteria and
// absence passes for the bucket: TimeBased is set or any event leaf has a
// `within` (spec §4.8).
func (b *Bucket) IsTimeBased() bool { return b.timeBase }

// ExpiryWindow is the window expires_at is armed with on join: the first
// `within` found depth-first, but only for buckets explicitly TimeBased or
// FastExpiry (spec §4.3.6). Otherwise, or without any window, it is nil.
func (b *Bucket) ExpiryWindow() *time.Duration {
	if b.within == nil || !(b.meta.TimeBased || b.meta.FastExpiry) {
		return nil
	}
	d := *b.within
	return &d
}

// PostHogProperty is the PostHog person property mirrored on join and
// leave when SyncToPostHog is set.
func (b *Bucket) PostHogProperty() string { return b.meta.PostHogPropertyKey }

// EnteredEvent is the event emitted when a contact joins bucket id.
func EnteredEvent(id string) string { return "bucket:entered:" + id }

// LeftEvent is the event emitted when a contact leaves bucket id.
func LeftEvent(id string) string { return "bucket:left:" + id }

// TransitionKey is the idempotency key of a bucket event (spec §4.5):
// "bucket:<bucketID>:<key>:<kind>:<epoch>", kind being "entered" or "left"
// and epoch the membership row's entry_count. A dwell key passes kind
// "dwell:<label>" and the ordinal as epoch.
func TransitionKey(bucketID, key, kind string, epoch int) string {
	return "bucket:" + bucketID + ":" + key + ":" + kind + ":" + strconv.Itoa(epoch)
}

// validateMeta applies the registration rules of spec §4.1, plus the Go
// additions: a safe id, known kind and entry limit, sane durations.
func validateMeta(m Meta) error {
	prefix := "buckets[" + m.ID + "]"
	if !isBucketID(m.ID) {
		prefix = "buckets[" + strconv.Quote(m.ID) + "]"
	}
	var errs []error
	bad := func(field, msg string) {
		errs = append(errs, errcode.InvalidField(prefix+"."+field, msg))
	}

	switch {
	case m.ID == "":
		bad("id", "is required")
	case !isBucketID(m.ID):
		// The id is embedded in event names, idempotency keys and journey
		// ids, where ':' and '.' are separators.
		bad("id", "must contain only letters, digits, '-' and '_'")
	}
	if strings.TrimSpace(m.Name) == "" {
		bad("name", "is required")
	}
	switch m.Kind {
	case "", KindDynamic:
	case "manual":
		bad("kind", `"manual" buckets are not supported (use "dynamic" or leave it unset)`)
	default:
		bad("kind", fmt.Sprintf("unknown kind %q (want dynamic)", m.Kind))
	}

	if m.Criteria == nil {
		bad("criteria", "is required")
	} else {
		errs = append(errs, validateCriteria(prefix+".criteria", *m.Criteria)...)
	}

	switch m.EntryLimit {
	case "", Unlimited, Once, OncePerPeriod:
	default:
		bad("entryLimit", fmt.Sprintf("unknown entry limit %q (want one of %s, %s, %s)",
			m.EntryLimit, Unlimited, Once, OncePerPeriod))
	}
	switch {
	case m.EntryPeriod < 0:
		bad("entryPeriod", "must not be negative")
	case m.EntryPeriod > 0 && m.EntryLimit != OncePerPeriod:
		bad("entryPeriod", fmt.Sprintf("is only allowed with entryLimit %s", OncePerPeriod))
	}
	if m.MinDwell < 0 {
		bad("minDwell", "must not be negative")
	}
	if m.MaxDwell < 0 {
		bad("maxDwell", "must not be negative")
	}
	if m.MaxDwell > 0 && m.MinDwell > 0 && m.MaxDwell < m.MinDwell {
		bad("maxDwell", "must not be shorter than minDwell")
	}
	if m.ReconcileEvery < 0 {
		bad("reconcileEvery", "must not be negative")
	}
	if m.PostHogPropertyKey != "" && strings.TrimSpace(m.PostHogPropertyKey) != m.PostHogPropertyKey {
		bad("postHogPropertyKey", "must not have leading or trailing spaces")
	}
	return errors.Join(errs...)
}

// validateCriteria checks the condition itself, then the bucket-only rules:
// no email_engagement leaf, no bucket:* event leaf, not all-negative.
func validateCriteria(field string, n condition.Node) []error {
	var errs []error
	if err := condition.ValidateAt(field, n); err != nil {
		errs = append(errs, err)
	}
	walkWithPath(field, &n, func(path string, c *condition.Node) {
		switch c.Type {
		case condition.TypeEmailEngagement:
			// The reference keys engagement on the contact key, not an
			// email address, so it never works for buckets (spec §3.3.2).
			errs = append(errs, errcode.InvalidField(path, "email_engagement conditions are not allowed in bucket criteria"))
		case condition.TypeEvent:
			if strings.HasPrefix(c.EventName, "bucket:") {
				// Bucket events are never evaluated against buckets (the
				// recursion guard of §4.4.1), so such a leaf could not work.
				errs = append(errs, errcode.InvalidField(path+".eventName",
					fmt.Sprintf("bucket events (%q) cannot be used in bucket criteria", c.EventName)))
			}
		}
	})
	if condition.AllNegative(n) {
		// Such criteria match every contact that never did anything,
		// which no sweep could enumerate.
		errs = append(errs, errcode.InvalidField(field,
			"must have at least one positive condition (all leaves are negative: neq, not_exists or an unwindowed event not_exists)"))
	}
	return errs
}

// walkWithPath visits n and its descendants depth-first with their field
// paths ("criteria.conditions[1]"). Depth is bounded by the caller's
// condition.Validate, which reports trees nested too deeply; the walk stops
// there too.
func walkWithPath(path string, n *condition.Node, fn func(string, *condition.Node)) {
	var visit func(path string, n *condition.Node, depth int)
	visit = func(path string, n *condition.Node, depth int) {
		if depth > condition.MaxDepth {
			return
		}
		fn(path, n)
		if n.Type != condition.TypeComposite {
			return
		}
		for i := range n.Conditions {
			visit(path+".conditions["+strconv.Itoa(i)+"]", &n.Conditions[i], depth+1)
		}
	}
	visit(path, n, 1)
}

// isBucketID reports whether id is a non-empty token of ASCII letters,
// digits, '-' and '_'.
func isBucketID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// cloneMeta deep-copies the pointer fields of m so that neither the caller
// nor a Meta() result can change a defined bucket.
func cloneMeta(m Meta) Meta {
	if m.Enabled != nil {
		v := *m.Enabled
		m.Enabled = &v
	}
	if m.ReconcileJoins != nil {
		v := *m.ReconcileJoins
		m.ReconcileJoins = &v
	}
	if m.Criteria != nil {
		c := cloneNode(*m.Criteria)
		m.Criteria = &c
	}
	return m
}

// cloneNode deep-copies a condition tree. Values are scalars (string,
// number, bool), so copying the interface is enough.
func cloneNode(n condition.Node) condition.Node {
	if n.Within != nil {
		w := *n.Within
		n.Within = &w
	}
	if n.Conditions != nil {
		cs := make([]condition.Node, len(n.Conditions))
		for i := range n.Conditions {
			cs[i] = cloneNode(n.Conditions[i])
		}
		n.Conditions = cs
	}
	return n
}
