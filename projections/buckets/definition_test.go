package buckets_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// defNode returns a pointer to n, for Meta.Criteria.
func defNode(n condition.Node) *condition.Node { return &n }

// defBool returns a pointer to v.
func defBool(v bool) *bool { return &v }

// defMeta is a valid definition that cases tweak.
func defMeta(id string, criteria condition.Node) buckets.Meta {
	return buckets.Meta{ID: id, Name: "Bucket " + id, Criteria: &criteria}
}

func TestDefineRejects(t *testing.T) {
	t.Parallel()
	purchase := condition.Event("purchase").Exists()
	tests := []struct {
		name string
		meta buckets.Meta
		want string // substring of the error
	}{
		// Spec 10 §7 scenario 16.
		{"neq alone is all-negative", defMeta("b", condition.Prop("a").Neq(1)),
			"buckets[b].criteria: must have at least one positive condition"},
		{"bucket event leaf", defMeta("b", condition.Event("bucket:entered:other").Exists()),
			`buckets[b].criteria.eventName: bucket events ("bucket:entered:other") cannot be used`},
		{"email_engagement leaf", defMeta("b", condition.All(purchase, condition.EmailEngagement("welcome", condition.CheckOpened))),
			"buckets[b].criteria.conditions[1]: email_engagement conditions are not allowed"},
		{"kind manual", func() buckets.Meta { m := defMeta("b", purchase); m.Kind = "manual"; return m }(),
			`buckets[b].kind: "manual" buckets are not supported`},
		{"maxDwell shorter than minDwell", func() buckets.Meta {
			m := defMeta("power-users", purchase)
			m.MinDwell, m.MaxDwell = 2*time.Hour, time.Hour
			return m
		}(), "buckets[power-users].maxDwell: must not be shorter than minDwell"},

		// Other §4.1 rules and the Go additions.
		{"no criteria", buckets.Meta{ID: "b", Name: "B"}, "buckets[b].criteria: is required"},
		{"all negative composite", defMeta("b", condition.Any(
			condition.Prop("plan").NotExists(),
			condition.Event("login").NotExists(),
			condition.All(condition.Prop("a").Neq("x")),
		)), "buckets[b].criteria: must have at least one positive condition"},
		{"nested bucket event leaf", defMeta("b", condition.All(purchase, condition.Any(condition.Prop("a").Exists(), condition.Event("bucket:left:x").Exists()))),
			"buckets[b].criteria.conditions[1].conditions[1].eventName: bucket events"},
		{"empty composite", defMeta("b", condition.All()), "buckets[b].criteria.conditions: must not be empty"},
		{"empty nested composite", defMeta("b", condition.All(purchase, condition.Any())),
			"buckets[b].criteria.conditions[1].conditions: must not be empty"},
		{"invalid condition", defMeta("b", condition.Node{Type: condition.TypeProperty, Property: "a", Operator: "like"}),
			`buckets[b].criteria.operator: unknown operator "like"`},
		{"empty id", defMeta("", purchase), `buckets[""].id: is required`},
		{"id with colon", defMeta("a:b", purchase), `buckets["a:b"].id: must contain only letters, digits, '-' and '_'`},
		{"id with dot", defMeta("a.b", purchase), `buckets["a.b"].id: must contain only`},
		{"id with space", defMeta("a b", purchase), `buckets["a b"].id: must contain only`},
		{"id with wildcard", defMeta("a*", purchase), `buckets["a*"].id: must contain only`},
		{"empty name", func() buckets.Meta { m := defMeta("b", purchase); m.Name = " "; return m }(), "buckets[b].name: is required"},
		{"unknown kind", func() buckets.Meta { m := defMeta("b", purchase); m.Kind = "static"; return m }(), `buckets[b].kind: unknown kind "static"`},
		{"unknown entry limit", func() buckets.Meta { m := defMeta("b", purchase); m.EntryLimit = "twice"; return m }(),
			`buckets[b].entryLimit: unknown entry limit "twice"`},
		{"entry period without once_per_period", func() buckets.Meta {
			m := defMeta("b", purchase)
			m.EntryLimit, m.EntryPeriod = buckets.Once, time.Hour
			return m
		}(), "buckets[b].entryPeriod: is only allowed with entryLimit once_per_period"},
		{"entry period with default limit", func() buckets.Meta { m := defMeta("b", purchase); m.EntryPeriod = time.Hour; return m }(),
			"buckets[b].entryPeriod: is only allowed"},
		{"negative entry period", func() buckets.Meta {
			m := defMeta("b", purchase)
			m.EntryLimit, m.EntryPeriod = buckets.OncePerPeriod, -time.Hour
			return m
		}(), "buckets[b].entryPeriod: must not be negative"},
		{"negative minDwell", func() buckets.Meta { m := defMeta("b", purchase); m.MinDwell = -1; return m }(), "buckets[b].minDwell: must not be negative"},
		{"negative maxDwell", func() buckets.Meta { m := defMeta("b", purchase); m.MaxDwell = -1; return m }(), "buckets[b].maxDwell: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := buckets.Define(tt.meta)
			if err == nil {
				t.Fatalf("Define = %v, want an error containing %q", b, tt.want)
			}
			if b != nil {
				t.Errorf("Define returned a bucket alongside error %v", err)
			}
			if !errcode.Is(err, errcode.CodeInvalidRequest) {
				t.Errorf("code = %q, want %q (err %v)", errcode.Code(err), errcode.CodeInvalidRequest, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDefineAccepts(t *testing.T) {
	t.Parallel()
	purchase := condition.Event("purchase").Exists()
	tests := []struct {
		name string
		meta buckets.Meta
	}{
		// Spec 10 §7 scenario 16: a windowed not_exists is bounded, so positive.
		{"windowed notExists alone", defMeta("dormant", condition.Event("app_open").Within(condition.Days(7)).NotExists())},
		{"negative leaf beside a positive one", defMeta("b", condition.All(condition.Prop("plan").Neq("free"), purchase))},
		{"exists and absent pair", defMeta("b", condition.All(
			condition.Event("signup").Exists(), condition.Event("signup").Within(condition.Hours(1)).NotExists()))},
		{"maxDwell equal to minDwell", func() buckets.Meta {
			m := defMeta("b", purchase)
			m.MinDwell, m.MaxDwell = time.Hour, time.Hour
			return m
		}()},
		{"maxDwell without minDwell", func() buckets.Meta { m := defMeta("b", purchase); m.MaxDwell = time.Minute; return m }()},
		{"minDwell without maxDwell", func() buckets.Meta { m := defMeta("b", purchase); m.MinDwell = time.Hour; return m }()},
		{"once_per_period with no period", func() buckets.Meta { m := defMeta("b", purchase); m.EntryLimit = buckets.OncePerPeriod; return m }()},
		{"once_per_period with a period", func() buckets.Meta {
			m := defMeta("b", purchase)
			m.EntryLimit, m.EntryPeriod = buckets.OncePerPeriod, time.Hour
			return m
		}()},
		{"explicit dynamic and unlimited", func() buckets.Meta {
			m := defMeta("Power_users-2", purchase)
			m.Kind, m.EntryLimit = "dynamic", buckets.Unlimited
			return m
		}()},
		{"every option", buckets.Meta{
			ID: "all-options", Name: "All", Description: "d", Enabled: defBool(false), Kind: "dynamic",
			Criteria:   defNode(condition.Event("app_open").Within(condition.Days(7)).AtLeast(3)),
			EntryLimit: buckets.Once, MinDwell: time.Hour, MaxDwell: 24 * time.Hour,
			TimeBased: true, ReconcileEvery: 5 * time.Minute, ReconcileJoins: defBool(false), FastExpiry: true,
			SyncToPostHog: true, PostHogPropertyKey: "engaged",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := buckets.Define(tt.meta)
			if err != nil {
				t.Fatalf("Define: %v", err)
			}
			if b.ID() != tt.meta.ID || b.Name() != tt.meta.Name {
				t.Errorf("ID, Name = %q, %q, want %q, %q", b.ID(), b.Name(), tt.meta.ID, tt.meta.Name)
			}
		})
	}
}

func TestDefineAccessors(t *testing.T) {
	t.Parallel()
	week := condition.Days(7)
	tests := []struct {
		name           string
		meta           buckets.Meta
		enabled        bool
		events, props  []string
		usesProps      bool
		timeBased      bool
		expiry         time.Duration // 0 = nil
		postHog        string
		wantEntryLimit buckets.EntryLimit
	}{
		{
			name:    "event count, defaults",
			meta:    defMeta("buyers", condition.Event("purchase").AtLeast(2)),
			enabled: true, events: []string{"purchase"},
			postHog: "hogsend_bucket_buyers", wantEntryLimit: buckets.Unlimited,
		},
		{
			name: "properties and events, disabled",
			meta: func() buckets.Meta {
				m := defMeta("pro", condition.All(condition.Prop("plan").Eq("pro"), condition.Event("login").Exists(),
					condition.Any(condition.Prop("seats").Gt(3), condition.Prop("plan").Neq("x"), condition.Event("login").Exists())))
				m.Enabled = defBool(false)
				m.EntryLimit = buckets.Once
				m.PostHogPropertyKey = "is_pro"
				return m
			}(),
			events: []string{"login"}, props: []string{"plan", "seats"}, usesProps: true,
			postHog: "is_pro", wantEntryLimit: buckets.Once,
		},
		{
			name:    "window without flags is time-based but arms no expiry",
			meta:    defMeta("active", condition.Event("app_open").Within(week).Exists()),
			enabled: true, events: []string{"app_open"}, timeBased: true,
			postHog: "hogsend_bucket_active", wantEntryLimit: buckets.Unlimited,
		},
		{
			name: "timeBased arms the first window depth-first",
			meta: func() buckets.Meta {
				m := defMeta("tb", condition.All(condition.Event("a").Exists(),
					condition.Any(condition.Event("b").Within(condition.Hours(2)).Exists()),
					condition.Event("c").Within(week).Exists()))
				m.TimeBased = true
				return m
			}(),
			enabled: true, events: []string{"a", "b", "c"}, timeBased: true, expiry: 2 * time.Hour,
			postHog: "hogsend_bucket_tb", wantEntryLimit: buckets.Unlimited,
		},
		{
			name: "fastExpiry arms the window",
			meta: func() buckets.Meta {
				m := defMeta("fe", condition.Event("app_open").Within(condition.Minutes(30)).Exists())
				m.FastExpiry = true
				return m
			}(),
			enabled: true, events: []string{"app_open"}, timeBased: true, expiry: 30 * time.Minute,
			postHog: "hogsend_bucket_fe", wantEntryLimit: buckets.Unlimited,
		},
		{
			name: "timeBased without a window",
			meta: func() buckets.Meta {
				m := defMeta("tbnw", condition.Prop("plan").Eq("pro"))
				m.TimeBased = true
				m.Enabled = defBool(true)
				return m
			}(),
			enabled: true, props: []string{"plan"}, usesProps: true, timeBased: true,
			postHog: "hogsend_bucket_tbnw", wantEntryLimit: buckets.Unlimited,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := buckets.MustDefine(tt.meta)
			if got := b.Enabled(); got != tt.enabled {
				t.Errorf("Enabled = %v, want %v", got, tt.enabled)
			}
			if got := b.Hash(); got != condition.Hash(*tt.meta.Criteria) {
				t.Errorf("Hash = %s, want condition.Hash of the criteria", got)
			}
			if got := b.EventNames(); !slices.Equal(got, tt.events) {
				t.Errorf("EventNames = %q, want %q", got, tt.events)
			}
			if got := b.PropertyNames(); !slices.Equal(got, tt.props) {
				t.Errorf("PropertyNames = %q, want %q", got, tt.props)
			}
			if b.Wildcard() {
				t.Error("Wildcard = true for criteria with leaves")
			}
			if got := b.UsesProperties(); got != tt.usesProps {
				t.Errorf("UsesProperties = %v, want %v", got, tt.usesProps)
			}
			if got := b.IsTimeBased(); got != tt.timeBased {
				t.Errorf("IsTimeBased = %v, want %v", got, tt.timeBased)
			}
			switch got := b.ExpiryWindow(); {
			case tt.expiry == 0 && got != nil:
				t.Errorf("ExpiryWindow = %v, want nil", *got)
			case tt.expiry != 0 && (got == nil || *got != tt.expiry):
				t.Errorf("ExpiryWindow = %v, want %v", got, tt.expiry)
			}
			if got := b.PostHogProperty(); got != tt.postHog {
				t.Errorf("PostHogProperty = %q, want %q", got, tt.postHog)
			}
			m := b.Meta()
			if m.Kind != "dynamic" || m.EntryLimit != tt.wantEntryLimit || m.PostHogPropertyKey != tt.postHog {
				t.Errorf("Meta defaults = kind %q, entryLimit %q, postHogPropertyKey %q", m.Kind, m.EntryLimit, m.PostHogPropertyKey)
			}
			if (m.Enabled == nil) != (tt.meta.Enabled == nil) {
				t.Errorf("Meta().Enabled = %v, want nil-ness of %v kept", m.Enabled, tt.meta.Enabled)
			}
		})
	}
}

// TestDefineIsolated checks that neither the caller's Meta nor the values a
// Bucket hands out can change it.
func TestDefineIsolated(t *testing.T) {
	t.Parallel()
	criteria := condition.All(condition.Event("a").Within(condition.Hours(1)).Exists(), condition.Prop("p").Eq("x"))
	m := buckets.Meta{ID: "iso", Name: "Iso", Criteria: &criteria, Enabled: defBool(true), ReconcileJoins: defBool(true), FastExpiry: true}
	b := buckets.MustDefine(m)
	hash := b.Hash()

	criteria.Conditions[0].EventName = "changed"
	criteria.Conditions[0].Within.Hours = 99
	*m.Enabled = false
	*m.ReconcileJoins = false

	got := b.Meta()
	got.Criteria.Conditions[1].Property = "changed"
	*got.Enabled = false
	c := b.Criteria()
	c.Conditions[0].Within.Hours = 42
	b.EventNames()[0] = "changed"
	*b.ExpiryWindow() = time.Nanosecond

	if condition.Hash(b.Criteria()) != hash {
		t.Errorf("criteria changed: %s", condition.Canonical(b.Criteria()))
	}
	if !b.Enabled() || !*b.Meta().Enabled || !*b.Meta().ReconcileJoins {
		t.Error("Enabled or ReconcileJoins changed through a pointer")
	}
	if got := b.EventNames(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("EventNames = %q", got)
	}
	if got := b.ExpiryWindow(); got == nil || *got != time.Hour {
		t.Errorf("ExpiryWindow = %v, want 1h", got)
	}
}

func TestMustDefinePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "buckets[b].criteria: is required") {
			t.Errorf("recover() = %v, want a panic naming the field", r)
		}
	}()
	buckets.MustDefine(buckets.Meta{ID: "b", Name: "B"})
}

func TestTransitionKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		got, want string
	}{
		{"entered", buckets.TransitionKey("B", "user-1", "entered", 1), "bucket:B:user-1:entered:1"},
		{"left", buckets.TransitionKey("power-users", "0b7c5d2e-uuid", "left", 12), "bucket:power-users:0b7c5d2e-uuid:left:12"},
		{"dwell", buckets.TransitionKey("B", "k", "dwell:after-172800000", 1), "bucket:B:k:dwell:after-172800000:1"},
		{"entered event", buckets.EnteredEvent("B"), "bucket:entered:B"},
		{"left event", buckets.LeftEvent("power-users"), "bucket:left:power-users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
