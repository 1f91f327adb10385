package journey_test

import (
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

func TestEntryAllowed(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { at := now.Add(-d); return &at }
	limit := func(l journey.EntryLimit, p time.Duration) *journey.Journey {
		return journey.MustDefine(journey.Meta{
			ID: "j", Name: "J", Trigger: journey.OnEvent("e"), EntryLimit: l, EntryPeriod: p,
		}, noop)
	}
	once := limit(journey.Once, 0)
	daily := limit(journey.OncePerPeriod, 0) // default 24h
	hourly := limit(journey.OncePerPeriod, time.Hour)
	unlimited := limit(journey.Unlimited, time.Hour) // the period is ignored

	tests := []struct {
		name   string
		j      *journey.Journey
		prior  journey.PriorStates
		ok     bool
		reason string
	}{
		{name: "once, first entry", j: once, ok: true},
		{name: "once, a prior row", j: once, prior: journey.PriorStates{Count: 1, NewestCreatedAt: ago(365 * 24 * time.Hour)}, reason: "already_entered_once"},
		{name: "once, count only", j: once, prior: journey.PriorStates{Count: 3}, reason: "already_entered_once"},

		{name: "default period, first entry", j: daily, ok: true},
		{name: "default period, 1h ago", j: daily, prior: journey.PriorStates{Count: 1, NewestCreatedAt: ago(time.Hour)}, reason: "period_not_elapsed"},
		{name: "default period, just inside", j: daily, prior: journey.PriorStates{Count: 1, NewestCreatedAt: ago(24*time.Hour - time.Nanosecond)}, reason: "period_not_elapsed"},
		{name: "default period, exactly 24h", j: daily, prior: journey.PriorStates{Count: 1, NewestCreatedAt: ago(24 * time.Hour)}, ok: true},
		{name: "default period, 25h", j: daily, prior: journey.PriorStates{Count: 5, NewestCreatedAt: ago(25 * time.Hour)}, ok: true},

		{name: "custom period, 10 min", j: hourly, prior: journey.PriorStates{Count: 1, NewestCreatedAt: ago(10 * time.Minute)}, reason: "period_not_elapsed"},
		{name: "custom period, just inside", j: hourly, prior: journey.PriorStates{Count: 1, NewestCreatedAt: ago(time.Hour - time.Millisecond)}, reason: "period_not_elapsed"},
		{name: "custom period, exactly", j: hourly, prior: journey.PriorStates{Count: 1, NewestCreatedAt: ago(time.Hour)}, ok: true},
		{name: "custom period, 61 min", j: hourly, prior: journey.PriorStates{Count: 1, NewestCreatedAt: ago(61 * time.Minute)}, ok: true},
		{name: "custom period, newest in the future", j: hourly, prior: journey.PriorStates{Count: 1, NewestCreatedAt: ago(-time.Minute)}, reason: "period_not_elapsed"},
		{name: "custom period, same instant", j: hourly, prior: journey.PriorStates{Count: 1, NewestCreatedAt: ago(0)}, reason: "period_not_elapsed"},

		{name: "unlimited, first entry", j: unlimited, ok: true},
		{name: "unlimited, recent rows", j: unlimited, prior: journey.PriorStates{Count: 9, NewestCreatedAt: ago(time.Second)}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, reason := journey.EntryAllowed(tt.j, tt.prior, now)
			if ok != tt.ok || reason != tt.reason {
				t.Errorf("EntryAllowed = %v, %q; want %v, %q", ok, reason, tt.ok, tt.reason)
			}
		})
	}
}

func TestCheckTrigger(t *testing.T) {
	t.Parallel()
	on, off := true, false
	define := func(enabled *bool) *journey.Journey {
		return journey.MustDefine(journey.Meta{
			ID: "j", Name: "J", Enabled: enabled, EntryLimit: journey.Unlimited,
			Trigger: journey.OnEvent("e", condition.Prop("plan").Eq("pro")),
		}, noop)
	}
	pro := map[string]any{"plan": "pro"}

	tests := []struct {
		name   string
		j      *journey.Journey
		config *bool
		props  map[string]any
		ok     bool
		reason string
	}{
		{name: "all pass", j: define(nil), props: pro, ok: true},
		{name: "config true", j: define(&on), config: &on, props: pro, ok: true},
		{name: "statically disabled", j: define(&off), props: pro, reason: "journey_disabled"},
		{name: "config true cannot override static false", j: define(&off), config: &on, props: pro, reason: "journey_disabled"},
		{name: "disabled by admin", j: define(nil), config: &off, props: pro, reason: "journey_disabled_by_admin"},
		{name: "admin checked before where", j: define(nil), config: &off, reason: "journey_disabled_by_admin"},
		{name: "where fails", j: define(nil), props: map[string]any{"plan": "free"}, reason: "trigger_conditions_not_met"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, reason := journey.CheckTrigger(tt.j, tt.config, tt.props)
			if ok != tt.ok || reason != tt.reason {
				t.Errorf("CheckTrigger = %v, %q; want %v, %q", ok, reason, tt.ok, tt.reason)
			}
		})
	}
}
