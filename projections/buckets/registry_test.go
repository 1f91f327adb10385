package buckets_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// regBucket defines a bucket for registry tests.
func regBucket(t *testing.T, id string, criteria condition.Node, enabled bool) *buckets.Bucket {
	t.Helper()
	b, err := buckets.Define(buckets.Meta{ID: id, Name: id, Criteria: &criteria, Enabled: &enabled})
	if err != nil {
		t.Fatalf("Define %s: %v", id, err)
	}
	return b
}

// regIDs lists the ids of bs.
func regIDs(bs []*buckets.Bucket) []string {
	out := []string{}
	for _, b := range bs {
		out = append(out, b.ID())
	}
	return out
}

func TestRegistryEnabledBuckets(t *testing.T) {
	t.Parallel()
	defs := []*buckets.Bucket{
		regBucket(t, "a", condition.Event("x").Exists(), true),
		regBucket(t, "b", condition.Event("x").Exists(), false),
		regBucket(t, "c", condition.Event("x").Exists(), true),
	}
	tests := []struct {
		name string
		env  string
		want []string
	}{
		{"unset or empty means all", "", []string{"a", "b", "c"}},
		{"star means all", "*", []string{"a", "b", "c"}},
		{"star is trimmed", "  *\t", []string{"a", "b", "c"}},
		{"list keeps registration order", "c,a", []string{"a", "c"}},
		{"entries are trimmed, empty ones skipped", " c , ,a,", []string{"a", "c"}},
		{"statically disabled buckets are still registered", "b", []string{"b"}},
		{"whitespace only enables none", "   ", []string{}},
		{"commas only enable none", " , ,", []string{}},
		{"star inside a list is an unknown id", "*,a", []string{"a"}},
		{"unknown ids are ignored", "zzz, a", []string{"a"}},
		{"only unknown ids enable none", "zzz", []string{}},
		{"ids are case-sensitive", "A", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := buckets.NewRegistry(tt.env, defs...)
			if err != nil {
				t.Fatalf("NewRegistry: %v", err)
			}
			if got := regIDs(r.All()); !slices.Equal(got, tt.want) {
				t.Errorf("All = %q, want %q", got, tt.want)
			}
			for _, id := range []string{"a", "b", "c"} {
				b, ok := r.Get(id)
				if want := slices.Contains(tt.want, id); ok != want || (ok && b.ID() != id) {
					t.Errorf("Get(%q) = %v, %v, want registered %v", id, b, ok, want)
				}
			}
			// A bucket outside the set is not evaluated either.
			if got := regIDs(r.Candidates("x", nil, nil)); !slices.Equal(got, slices.DeleteFunc(slices.Clone(tt.want), func(id string) bool { return id == "b" })) {
				t.Errorf("Candidates(x) = %q", got)
			}
		})
	}
}

func TestRegistryRejects(t *testing.T) {
	t.Parallel()
	a := regBucket(t, "a", condition.Event("x").Exists(), true)
	a2 := regBucket(t, "a", condition.Prop("p").Exists(), true)
	c := regBucket(t, "c", condition.Event("x").Exists(), true)
	tests := []struct {
		name string
		env  string
		defs []*buckets.Bucket
		want string
	}{
		{"duplicate id", "", []*buckets.Bucket{a, c, a2}, "buckets[a].id: duplicate bucket id (definitions #0 and #2)"},
		{"same bucket twice", "", []*buckets.Bucket{a, a}, "buckets[a].id: duplicate bucket id"},
		{"duplicate outside the enabled set", "c", []*buckets.Bucket{a, c, a2}, "buckets[a].id: duplicate bucket id"},
		{"nil definition", "", []*buckets.Bucket{a, nil}, "buckets[1]: definition is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := buckets.NewRegistry(tt.env, tt.defs...)
			if err == nil {
				t.Fatalf("NewRegistry = %v, want an error", r)
			}
			if !errcode.Is(err, errcode.CodeInvalidRequest) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (code %s), want invalid_request containing %q", err, errcode.Code(err), tt.want)
			}
		})
	}
}

func TestRegistryEmpty(t *testing.T) {
	t.Parallel()
	r, err := buckets.NewRegistry("")
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	if len(r.All()) != 0 || r.Candidates("x", []string{"p"}, []string{"q"}) != nil {
		t.Error("an empty registry has buckets")
	}
	if _, ok := r.Get("x"); ok {
		t.Error("Get found a bucket in an empty registry")
	}
}

func TestRegistryAllIsACopy(t *testing.T) {
	t.Parallel()
	r, err := buckets.NewRegistry("", regBucket(t, "a", condition.Event("x").Exists(), true))
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	r.All()[0] = nil
	if r.All()[0] == nil {
		t.Error("All exposes the registry's slice")
	}
}

func TestCandidates(t *testing.T) {
	t.Parallel()
	defs := []*buckets.Bucket{
		regBucket(t, "buyers", condition.Event("purchase").AtLeast(2), true),
		regBucket(t, "pro", condition.Prop("plan").Eq("pro"), true),
		regBucket(t, "engaged-pro", condition.All(condition.Prop("plan").Eq("pro"), condition.Event("login").Within(condition.Days(7)).Exists()), true),
		regBucket(t, "disabled", condition.Any(condition.Event("purchase").Exists(), condition.Prop("plan").Exists()), false),
		regBucket(t, "big-spender", condition.Any(condition.Prop("ltv").Gte(1000), condition.Event("purchase").MoreThan(10)), true),
		regBucket(t, "dormant", condition.Event("app_open").Within(condition.Days(7)).NotExists(), true),
	}
	r, err := buckets.NewRegistry("*", defs...)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	tests := []struct {
		name         string
		event        string
		eventProps   []string
		contactProps []string
		want         []string
	}{
		{"by event name", "purchase", nil, nil, []string{"buyers", "big-spender"}},
		{"windowed event", "login", nil, nil, []string{"engaged-pro"}},
		{"absence bucket indexed by its event", "app_open", nil, nil, []string{"dormant"}},
		{"unrelated event", "page_view", []string{"url"}, []string{"email"}, nil},
		{"by event property key", "page_view", []string{"plan"}, nil, []string{"pro", "engaged-pro"}},
		{"by contact property key", "page_view", nil, []string{"ltv"}, []string{"big-spender"}},
		{"both bags and the name, deduplicated in registration order", "purchase",
			[]string{"ltv", "plan", "ltv"}, []string{"plan", "ltv"}, []string{"buyers", "pro", "engaged-pro", "big-spender"}},
		{"property values do not matter, only keys", "login", []string{"pro"}, nil, []string{"engaged-pro"}},
		{"bucket events have no candidates", "bucket:entered:buyers", []string{"plan"}, []string{"ltv"}, nil},
		{"generic bucket events have no candidates", "bucket:left", nil, []string{"plan"}, nil},
		{"event names are case-sensitive", "Purchase", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := r.Candidates(tt.event, tt.eventProps, tt.contactProps)
			if ids := regIDs(got); !slices.Equal(ids, append([]string{}, tt.want...)) {
				t.Errorf("Candidates = %q, want %q", ids, tt.want)
			}
			for _, b := range got {
				if !b.Enabled() {
					t.Errorf("candidate %s is statically disabled", b.ID())
				}
			}
		})
	}
}
