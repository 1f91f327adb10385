package buckets

import "time"

// PriorRows summarises the membership rows that existed for a (contact,
// bucket) pair before a join: all of them, soft-deleted ones included.
type PriorRows struct {
	// Count is the number of earlier rows; the join's epoch is Count+1.
	Count int
	// LatestLeftAt is the newest left_at among them, nil when none left.
	LatestLeftAt *time.Time
}

// ShouldEmitJoin is the join emission gate (spec §4.6): the active row is
// always written, and this decides whether bucket:entered is emitted for
// it. The first join ever always emits; after that Unlimited always emits,
// Once never does, and OncePerPeriod emits when EntryPeriod is unset, no
// earlier row has left, or the latest leave is at least EntryPeriod before
// now. Real-time and reconcile joins use it; backfill joins never emit.
func ShouldEmitJoin(b *Bucket, prior PriorRows, now time.Time) bool {
	if prior.Count <= 0 {
		return true
	}
	switch b.meta.EntryLimit {
	case Once:
		return false
	case OncePerPeriod:
		if b.meta.EntryPeriod <= 0 || prior.LatestLeftAt == nil {
			return true
		}
		return now.Sub(*prior.LatestLeftAt) >= b.meta.EntryPeriod
	default: // Unlimited (Define fills in the default)
		return true
	}
}
