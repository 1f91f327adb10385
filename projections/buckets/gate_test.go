package buckets_test

import (
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/condition"
)

func TestShouldEmitJoin(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 8, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { at := now.Add(-d); return &at }
	gateBucket := func(limit buckets.EntryLimit, period time.Duration) *buckets.Bucket {
		return buckets.MustDefine(buckets.Meta{
			ID: "B", Name: "B", Criteria: defNode(condition.Event("purchase").AtLeast(2)),
			EntryLimit: limit, EntryPeriod: period,
		})
	}
	tests := []struct {
		name   string
		limit  buckets.EntryLimit
		period time.Duration
		prior  buckets.PriorRows
		want   bool
	}{
		{"first join, default limit", "", 0, buckets.PriorRows{}, true},
		{"first join, once", buckets.Once, 0, buckets.PriorRows{}, true},
		{"first join, once_per_period", buckets.OncePerPeriod, time.Hour, buckets.PriorRows{}, true},
		{"default limit is unlimited", "", 0, buckets.PriorRows{Count: 3, LatestLeftAt: ago(time.Second)}, true},
		{"unlimited re-join", buckets.Unlimited, 0, buckets.PriorRows{Count: 1, LatestLeftAt: ago(time.Second)}, true},
		// Spec 10 §7 scenario 20.
		{"once re-join is silent", buckets.Once, 0, buckets.PriorRows{Count: 1, LatestLeftAt: ago(30 * 24 * time.Hour)}, false},
		{"once re-join after a soft-deleted row is silent", buckets.Once, 0, buckets.PriorRows{Count: 1}, false},
		{"once_per_period re-join 10 min after leaving is silent", buckets.OncePerPeriod, time.Hour,
			buckets.PriorRows{Count: 1, LatestLeftAt: ago(10 * time.Minute)}, false},
		{"once_per_period re-join 61 min after leaving emits", buckets.OncePerPeriod, time.Hour,
			buckets.PriorRows{Count: 1, LatestLeftAt: ago(61 * time.Minute)}, true},
		{"once_per_period exactly one period after leaving emits", buckets.OncePerPeriod, time.Hour,
			buckets.PriorRows{Count: 2, LatestLeftAt: ago(time.Hour)}, true},
		{"once_per_period just inside the period is silent", buckets.OncePerPeriod, time.Hour,
			buckets.PriorRows{Count: 2, LatestLeftAt: ago(time.Hour - time.Millisecond)}, false},
		{"once_per_period with no period emits", buckets.OncePerPeriod, 0,
			buckets.PriorRows{Count: 1, LatestLeftAt: ago(time.Second)}, true},
		{"once_per_period with no left_at emits", buckets.OncePerPeriod, time.Hour, buckets.PriorRows{Count: 1}, true},
		{"once_per_period with a left_at in the future is silent", buckets.OncePerPeriod, time.Hour,
			buckets.PriorRows{Count: 1, LatestLeftAt: ago(-time.Minute)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := buckets.ShouldEmitJoin(gateBucket(tt.limit, tt.period), tt.prior, now); got != tt.want {
				t.Errorf("ShouldEmitJoin = %v, want %v", got, tt.want)
			}
		})
	}
}
