package journey

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// ReactionInfo is what a bucket reaction's handler gets besides the journey
// context (spec 10 §4.10.3).
type ReactionInfo struct {
	BucketID string
	// EntryCount is the membership's epoch (enter reactions); a missing
	// count reads as 1.
	EntryCount   int
	IsFirstEntry bool
	// Reason is why the contact left (leave reactions): criteria,
	// maxDwell, …; a missing reason reads as "criteria".
	Reason string
	// DwellCount is the fire's ordinal (dwell reactions): 1 for an after
	// schedule, the number of elapsed intervals for an every schedule.
	DwellCount int
}

// ReactionFunc handles a bucket transition.
type ReactionFunc func(ctx *Ctx, u User, r ReactionInfo) error

// Reaction is a handler for a bucket's enter or leave transitions
// (bucket.on of spec 10 §4.10). The engine binds it to its bucket at
// startup, which makes it a journey: "bucket-<id>-on-enter" triggered by
// bucket:entered:<id> (or -on-leave by bucket:left:<id>), unlimited
// entries, enabled with the bucket. Every journey guard applies: while a
// reaction runs for a contact, the next transition's is skipped as
// already_active, and unsubscribed contacts get none.
type Reaction struct {
	BucketID string
	Kind     string // ReactionEnter or ReactionLeave
	// FirstEntryOnly skips enter transitions after the first membership.
	FirstEntryOnly bool
	// Reasons, when set, runs leave reactions only for these reasons.
	Reasons []string
	// Dwell is the schedule of a dwell reaction.
	Dwell   *DwellSchedule
	Handler ReactionFunc
}

// OnEnter reacts to contacts entering bucketID.
func OnEnter(bucketID string, firstEntryOnly bool, h ReactionFunc) Reaction {
	return Reaction{BucketID: bucketID, Kind: ReactionEnter, FirstEntryOnly: firstEntryOnly, Handler: h}
}

// OnLeave reacts to contacts leaving bucketID, for any reason or only the
// given ones.
func OnLeave(bucketID string, h ReactionFunc, reasons ...string) Reaction {
	return Reaction{BucketID: bucketID, Kind: ReactionLeave, Reasons: reasons, Handler: h}
}

// OnDwell reacts to contacts that stayed in bucketID: once after d.After,
// or every d.Every while the membership lasts (exactly one of them). The
// label is derived ("after-<ms>" or "every-<ms>").
func OnDwell(bucketID string, d DwellSchedule, h ReactionFunc) Reaction {
	switch {
	case d.After > 0 && d.Every == 0:
		d.Label = "after-" + strconv.FormatInt(d.After.Milliseconds(), 10)
	case d.Every > 0 && d.After == 0:
		d.Label = "every-" + strconv.FormatInt(d.Every.Milliseconds(), 10)
	}
	return Reaction{BucketID: bucketID, Kind: ReactionDwell, Dwell: &d, Handler: h}
}

// ID is the id of the journey the reaction becomes.
func (r Reaction) ID() string {
	if r.Kind == ReactionDwell && r.Dwell != nil {
		return "bucket-" + r.BucketID + "-on-dwell-" + r.Dwell.Label
	}
	return "bucket-" + r.BucketID + "-on-" + r.Kind
}

// Bind turns the reaction into its journey for a bucket named bucketName
// whose static switch is enabled. The filters run after enrolment, so a
// filtered transition still leaves a completed state (spec 10 §4.10.3).
func (r Reaction) Bind(bucketName string, enabled bool) (*Journey, error) {
	var event string
	switch r.Kind {
	case ReactionEnter:
		event = "bucket:entered:" + r.BucketID
	case ReactionLeave:
		event = "bucket:left:" + r.BucketID
	case ReactionDwell:
		if r.Dwell == nil || (r.Dwell.After > 0) == (r.Dwell.Every > 0) || r.Dwell.After < 0 || r.Dwell.Every < 0 {
			return nil, fmt.Errorf("journeys[%s].dwellSchedule: must have exactly one of after and every, positive", r.ID())
		}
		event = "bucket:dwell:" + r.BucketID + ":" + r.Dwell.Label
	default:
		return nil, fmt.Errorf("journeys[%s].reactionKind: unknown reaction kind %q (want %s, %s or %s)", r.ID(), r.Kind, ReactionEnter, ReactionLeave, ReactionDwell)
	}
	if r.Handler == nil {
		return nil, fmt.Errorf("journeys[%s].handler: is required", r.ID())
	}
	h, first, reasons := r.Handler, r.FirstEntryOnly, slices.Clone(r.Reasons)
	var dwell *DwellSchedule
	if r.Kind == ReactionDwell {
		d := *r.Dwell
		dwell = &d
	}
	return Define(Meta{
		ID: r.ID(), Name: bucketName + " — on " + r.Kind, Enabled: &enabled,
		Trigger: OnEvent(event), EntryLimit: Unlimited,
		SourceBucketID: r.BucketID, ReactionKind: r.Kind, DwellSchedule: dwell,
	}, func(ctx *Ctx, u User) error {
		info := ReactionInfo{BucketID: r.BucketID, EntryCount: intProp(u.Properties["entryCount"], 1), Reason: "criteria",
			DwellCount: intProp(u.Properties["dwellCount"], 1)}
		if v, ok := u.Properties["reason"].(string); ok && v != "" {
			info.Reason = v
		}
		info.IsFirstEntry = info.EntryCount == 1
		if first && !info.IsFirstEntry {
			return nil
		}
		if r.Kind == ReactionLeave && len(reasons) > 0 && !slices.Contains(reasons, info.Reason) {
			return nil
		}
		return h(ctx, u, info)
	})
}

// intProp reads an integer trigger property (json.Number, float64 or int),
// def when it is missing or not a whole number.
func intProp(v any, def int) int {
	switch n := v.(type) {
	case json.Number:
		if i, err := strconv.Atoi(n.String()); err == nil {
			return i
		}
	case float64:
		if n == float64(int(n)) {
			return int(n)
		}
	case int:
		return n
	}
	return def
}
