package journey

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/journeys/schedule"
)

// EntryLimit says how often a contact may enrol in a journey (spec §5.2
// guard 4).
type EntryLimit string

// The entry limits. A journey must name one; there is no default.
const (
	// Once admits a contact only if it has no state row for the journey at
	// all, whatever its status.
	Once EntryLimit = "once"
	// OncePerPeriod admits a contact when its newest state row is at least
	// EntryPeriod old.
	OncePerPeriod EntryLimit = "once_per_period"
	// Unlimited admits every trigger (the already_active guard still
	// applies).
	Unlimited EntryLimit = "unlimited"
)

// DefaultEntryPeriod is the period of OncePerPeriod when EntryPeriod is zero.
const DefaultEntryPeriod = 24 * time.Hour

// The reaction kinds of a bucket reaction journey (spec §4.10).
const (
	ReactionEnter = "enter"
	ReactionLeave = "leave"
	ReactionDwell = "dwell"
)

// Trigger is the event that enrols a contact. Where holds property
// conditions only, matched against the event's scalar properties.
type Trigger struct {
	Event string
	Where []condition.Node
}

// OnEvent is the trigger on event, optionally narrowed by property
// conditions (condition.Prop(...).Eq(...) and friends).
func OnEvent(event string, where ...condition.Node) Trigger {
	return Trigger{Event: event, Where: where}
}

// Exit ends active and waiting states of the journey when a contact's event
// named Event arrives and Where (property conditions only) matches the full
// eventProperties; an empty Where always matches (spec §1.4).
type Exit struct {
	Event string
	Where []condition.Node
}

// Window is a daily send window, "H:mm"/"HH:mm" wall-clock edges in the
// contact's zone, with schedule.When's semantics: Start = End is always
// open, Start > End spans midnight.
type Window struct {
	Start string
	End   string
}

// DwellSchedule tags a dwell reaction (spec §4.10): its label ("after-<ms>"
// or "every-<ms>") and exactly one of After and Every.
type DwellSchedule struct {
	Label string
	After time.Duration
	Every time.Duration
}

// Meta is a journey definition as written in code (spec §5.1).
type Meta struct {
	// ID is a token of letters, digits, '-' and '_': it appears in state
	// rows, admin routes and idempotency keys.
	ID          string
	Name        string
	Description string
	// Enabled is the static switch; nil means true. A disabled journey is
	// still registered (the admin lists it) but skips every trigger as
	// journey_disabled.
	Enabled *bool
	Trigger Trigger
	// EntryLimit is required.
	EntryLimit EntryLimit
	// EntryPeriod is the period of OncePerPeriod (zero means
	// DefaultEntryPeriod); other limits ignore it.
	EntryPeriod time.Duration
	ExitOn      []Exit
	// Suppress is accepted for parity with the reference, where it is
	// required but has no effect; Go ignores it too.
	Suppress time.Duration
	// Timezone is the IANA zone ctx.When uses when the contact has none;
	// "" leaves it to the runtime's default.
	Timezone string
	// SendWindow is the default window of ctx.When; nil means none.
	SendWindow *Window

	// Reaction tags (spec §4.10), set on the journeys that bucket
	// reactions become and shown by the admin API. A journey with a
	// SourceBucketID is registered whatever ENABLED_JOURNEYS says.
	SourceBucketID string
	ReactionKind   string // ReactionEnter, ReactionLeave or ReactionDwell
	DwellSchedule  *DwellSchedule
}

// Journey is a validated, immutable journey definition, safe for concurrent
// use. Build it with Define or MustDefine.
type Journey struct {
	meta    Meta // normalised and owned: nothing outside aliases it
	enabled bool
	loc     *time.Location // nil when Meta.Timezone is unset
	run     Run
}

// Define validates m and returns the journey that runs run. Errors are
// errcode invalid_request errors (errors.Join of one per problem), each
// naming its field, like "journeys[welcome].exitOn[1].event: is required".
func Define(m Meta, run Run) (*Journey, error) {
	loc, err := validate(m, run)
	if err != nil {
		return nil, err
	}
	m = cloneMeta(m)
	if m.EntryLimit == OncePerPeriod && m.EntryPeriod == 0 {
		m.EntryPeriod = DefaultEntryPeriod
	}
	return &Journey{
		meta:    m,
		enabled: m.Enabled == nil || *m.Enabled,
		loc:     loc,
		run:     run,
	}, nil
}

// MustDefine is Define for static definitions (package-level variables, a
// main package): it panics on an invalid definition.
func MustDefine(m Meta, run Run) *Journey {
	j, err := Define(m, run)
	if err != nil {
		panic(fmt.Sprintf("journey: define %q: %v", m.ID, err))
	}
	return j
}

// ID is the journey id.
func (j *Journey) ID() string { return j.meta.ID }

// Name is the journey's display name.
func (j *Journey) Name() string { return j.meta.Name }

// Meta returns a copy of the definition with defaults filled in (EntryPeriod
// DefaultEntryPeriod for OncePerPeriod). Enabled stays nil when unset, as
// the admin distinguishes an explicit value from the default.
func (j *Journey) Meta() Meta { return cloneMeta(j.meta) }

// Enabled is the static switch (Meta.Enabled, nil meaning true). The
// journey_configs override is the caller's to apply on top (spec §5.2
// guards 1 and 2).
func (j *Journey) Enabled() bool { return j.enabled }

// TriggerEvent is the name of the event that enrols.
func (j *Journey) TriggerEvent() string { return j.meta.Trigger.Event }

// EntryLimit is the journey's entry limit.
func (j *Journey) EntryLimit() EntryLimit { return j.meta.EntryLimit }

// EntryPeriod is the period of a OncePerPeriod journey (DefaultEntryPeriod
// when unset); other limits ignore it.
func (j *Journey) EntryPeriod() time.Duration { return j.meta.EntryPeriod }

// Location is the loaded Meta.Timezone, or nil when it is unset.
func (j *Journey) Location() *time.Location { return j.loc }

// IsReaction reports whether the journey is a bucket reaction (it has a
// SourceBucketID).
func (j *Journey) IsReaction() bool { return j.meta.SourceBucketID != "" }

// HasExitOn reports whether the journey has exitOn entries, which makes its
// states candidates for the exit check of every event (spec §1.4).
func (j *Journey) HasExitOn() bool { return len(j.meta.ExitOn) > 0 }

// Func is the journey's body, for the runtime to call.
func (j *Journey) Func() Run { return j.run }

// Matches reports whether an event enrols by its trigger: eventName is the
// trigger event and the trigger's where list matches the event's scalar
// properties (spec §5.2 guard 3; an empty list matches).
func (j *Journey) Matches(eventName string, scalarProps map[string]any) bool {
	return eventName == j.meta.Trigger.Event && condition.MatchWhere(j.meta.Trigger.Where, scalarProps)
}

// ExitMatches reports whether an event exits the journey's live states: some
// exitOn entry names eventName and has no where list, or one that matches
// props, the event's full eventProperties (spec §1.4.2).
func (j *Journey) ExitMatches(eventName string, props map[string]any) bool {
	for _, e := range j.meta.ExitOn {
		if e.Event == eventName && condition.MatchWhere(e.Where, props) {
			return true
		}
	}
	return false
}

// lifecyclePrefix starts the names of the engine's own journey events
// (journey:completed, journey:failed).
const lifecyclePrefix = "journey:"

// validate applies the rules of spec §5.1 plus the Go additions (a safe id,
// a loadable zone, a parseable window, consistent reaction tags) and returns
// the loaded zone.
func validate(m Meta, run Run) (*time.Location, error) {
	prefix := "journeys[" + m.ID + "]"
	if !isID(m.ID) {
		prefix = "journeys[" + strconv.Quote(m.ID) + "]"
	}
	var errs []error
	bad := func(field, msg string) {
		errs = append(errs, errcode.InvalidField(prefix+"."+field, msg))
	}

	switch {
	case m.ID == "":
		bad("id", "is required")
	case !isID(m.ID):
		bad("id", "must contain only letters, digits, '-' and '_'")
	}
	if strings.TrimSpace(m.Name) == "" {
		bad("name", "is required")
	}

	switch ev := m.Trigger.Event; {
	case strings.TrimSpace(ev) == "":
		bad("trigger.event", "is required")
	case strings.HasPrefix(ev, lifecyclePrefix):
		// journey:* are the engine's own lifecycle events. Enrolling on
		// them would chain journeys on each other's outcomes, a loop
		// nothing bounds.
		bad("trigger.event", fmt.Sprintf("journey lifecycle events (%q) cannot trigger a journey", ev))
	}
	if err := condition.ValidateWhere(prefix+".trigger.where", m.Trigger.Where); err != nil {
		errs = append(errs, err)
	}

	switch m.EntryLimit {
	case Once, OncePerPeriod, Unlimited:
	case "":
		bad("entryLimit", fmt.Sprintf("is required (one of %s, %s, %s)", Once, OncePerPeriod, Unlimited))
	default:
		bad("entryLimit", fmt.Sprintf("unknown entry limit %q (want one of %s, %s, %s)", m.EntryLimit, Once, OncePerPeriod, Unlimited))
	}
	if m.EntryPeriod < 0 {
		bad("entryPeriod", "must not be negative")
	}

	for i, e := range m.ExitOn {
		field := "exitOn[" + strconv.Itoa(i) + "]"
		switch {
		case strings.TrimSpace(e.Event) == "":
			bad(field+".event", "is required")
		case strings.HasPrefix(e.Event, lifecyclePrefix):
			// Lifecycle events are never exit-checked (spec §5.3.5), so
			// this entry could never fire.
			bad(field+".event", fmt.Sprintf("journey lifecycle events (%q) are never exit-checked", e.Event))
		}
		if err := condition.ValidateWhere(prefix+"."+field+".where", e.Where); err != nil {
			errs = append(errs, err)
		}
	}

	var loc *time.Location
	switch tz := m.Timezone; tz {
	case "":
	case "Local":
		// The host's zone would make schedules depend on where the
		// worker runs.
		bad("timezone", `"Local" is not allowed (name an IANA zone such as "Europe/Berlin" or "UTC")`)
	default:
		l, err := time.LoadLocation(tz)
		if err != nil {
			bad("timezone", fmt.Sprintf("unknown IANA zone %q", tz))
		} else {
			loc = l
		}
	}
	if w := m.SendWindow; w != nil {
		checkClock := func(field, v string) {
			if _, err := schedule.ParseClock(v); err != nil {
				msg := fmt.Sprintf(`invalid time %q (want "H:mm" or "HH:mm")`, v)
				if ae, ok := errors.AsType[*schedule.ArgError](err); ok {
					msg = fmt.Sprintf("invalid time %q: %s", v, ae.Reason)
				}
				bad(field, msg)
			}
		}
		checkClock("sendWindow.start", w.Start)
		checkClock("sendWindow.end", w.End)
	}

	validateReaction(m, bad)

	if run == nil {
		bad("run", "is required")
	}
	return loc, errors.Join(errs...)
}

// validateReaction checks that the reaction tags are all set or all unset
// and agree with each other.
func validateReaction(m Meta, bad func(field, msg string)) {
	switch m.ReactionKind {
	case "":
		if m.SourceBucketID != "" {
			bad("reactionKind", "is required with sourceBucketId")
		}
	case ReactionEnter, ReactionLeave, ReactionDwell:
		if m.SourceBucketID == "" {
			bad("sourceBucketId", "is required with reactionKind")
		}
	default:
		bad("reactionKind", fmt.Sprintf("unknown reaction kind %q (want one of %s, %s, %s)",
			m.ReactionKind, ReactionEnter, ReactionLeave, ReactionDwell))
	}
	if m.SourceBucketID != "" && !isID(m.SourceBucketID) {
		bad("sourceBucketId", "must contain only letters, digits, '-' and '_'")
	}

	d := m.DwellSchedule
	switch {
	case d == nil && m.ReactionKind == ReactionDwell:
		bad("dwellSchedule", "is required with reactionKind dwell")
	case d == nil:
	case m.ReactionKind != ReactionDwell:
		bad("dwellSchedule", "is only allowed with reactionKind dwell")
	default:
		if d.Label == "" {
			bad("dwellSchedule.label", "is required")
		}
		if d.After < 0 {
			bad("dwellSchedule.after", "must not be negative")
		}
		if d.Every < 0 {
			bad("dwellSchedule.every", "must not be negative")
		}
		if (d.After > 0) == (d.Every > 0) {
			bad("dwellSchedule", "must have exactly one of after and every")
		}
	}
}

// isID reports whether id is a non-empty token of ASCII letters, digits, '-'
// and '_'.
func isID(id string) bool {
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

// cloneMeta deep-copies the reference fields of m so that neither the caller
// nor a Meta() result can change a defined journey.
func cloneMeta(m Meta) Meta {
	if m.Enabled != nil {
		v := *m.Enabled
		m.Enabled = &v
	}
	m.Trigger.Where = cloneNodes(m.Trigger.Where)
	if m.ExitOn != nil {
		exits := make([]Exit, len(m.ExitOn))
		for i, e := range m.ExitOn {
			exits[i] = Exit{Event: e.Event, Where: cloneNodes(e.Where)}
		}
		m.ExitOn = exits
	}
	if m.SendWindow != nil {
		w := *m.SendWindow
		m.SendWindow = &w
	}
	if m.DwellSchedule != nil {
		d := *m.DwellSchedule
		m.DwellSchedule = &d
	}
	return m
}

// cloneNodes deep-copies a list of condition trees. Values are scalars
// (string, number, bool), so copying the interface is enough.
func cloneNodes(ns []condition.Node) []condition.Node {
	if ns == nil {
		return nil
	}
	out := slices.Clone(ns)
	for i := range out {
		if w := out[i].Within; w != nil {
			c := *w
			out[i].Within = &c
		}
		out[i].Conditions = cloneNodes(out[i].Conditions)
	}
	return out
}
