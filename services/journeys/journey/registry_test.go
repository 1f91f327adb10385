package journey_test

import (
	"slices"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// def defines a minimal journey triggered by event.
func def(t *testing.T, id, event string, opts ...func(*journey.Meta)) *journey.Journey {
	t.Helper()
	m := journey.Meta{ID: id, Name: id, Trigger: journey.OnEvent(event), EntryLimit: journey.Unlimited}
	for _, o := range opts {
		o(&m)
	}
	j, err := journey.Define(m, noop)
	if err != nil {
		t.Fatalf("define %s: %v", id, err)
	}
	return j
}

func reaction(bucket, kind string) func(*journey.Meta) {
	return func(m *journey.Meta) {
		m.SourceBucketID, m.ReactionKind = bucket, kind
		if kind == journey.ReactionDwell {
			m.DwellSchedule = &journey.DwellSchedule{Label: "after-60000", After: time.Minute}
		}
	}
}

func ids(js []*journey.Journey) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID()
	}
	return out
}

func TestRegistryEnabledJourneys(t *testing.T) {
	t.Parallel()
	defs := []*journey.Journey{
		def(t, "a", "e"), def(t, "b", "e"), def(t, "c", "f"),
		def(t, "bucket-vip-on-enter", "bucket:entered:vip", reaction("vip", journey.ReactionEnter)),
	}
	tests := []struct {
		name string
		env  string
		want []string
	}{
		{name: "unset", env: "", want: []string{"a", "b", "c", "bucket-vip-on-enter"}},
		{name: "star", env: "*", want: []string{"a", "b", "c", "bucket-vip-on-enter"}},
		{name: "star with spaces", env: "  * ", want: []string{"a", "b", "c", "bucket-vip-on-enter"}},
		{name: "one id", env: "b", want: []string{"b", "bucket-vip-on-enter"}},
		{name: "trimmed csv keeps registration order", env: " c , a ", want: []string{"a", "c", "bucket-vip-on-enter"}},
		{name: "empty entries skipped", env: ",,a,, ,", want: []string{"a", "bucket-vip-on-enter"}},
		{name: "whitespace only enables none", env: "   ", want: []string{"bucket-vip-on-enter"}},
		{name: "star inside a list is an id", env: "a,*", want: []string{"a", "bucket-vip-on-enter"}},
		{name: "unknown ids ignored", env: "zzz,b", want: []string{"b", "bucket-vip-on-enter"}},
		{name: "ids are case-sensitive", env: "A", want: []string{"bucket-vip-on-enter"}},
		{name: "reaction named explicitly", env: "bucket-vip-on-enter", want: []string{"bucket-vip-on-enter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := journey.NewRegistry(tt.env, defs...)
			if err != nil {
				t.Fatalf("NewRegistry: %v", err)
			}
			if got := ids(r.All()); !slices.Equal(got, tt.want) {
				t.Errorf("All() = %q, want %q", got, tt.want)
			}
			for _, j := range defs {
				_, ok := r.Get(j.ID())
				if want := slices.Contains(tt.want, j.ID()); ok != want {
					t.Errorf("Get(%q) found = %v, want %v", j.ID(), ok, want)
				}
			}
		})
	}
}

func TestRegistryReactionsAlwaysIncluded(t *testing.T) {
	t.Parallel()
	off := false
	defs := []*journey.Journey{
		def(t, "user", "e"),
		def(t, "bucket-vip-on-leave", "bucket:left:vip", reaction("vip", journey.ReactionLeave)),
		def(t, "bucket-vip-on-dwell-after-60000", "bucket:dwell:vip:after-60000", reaction("vip", journey.ReactionDwell),
			func(m *journey.Meta) { m.Enabled = &off }), // the bucket's static switch
	}
	for _, env := range []string{"", "user", "nothing", " "} {
		r, err := journey.NewRegistry(env, defs...)
		if err != nil {
			t.Fatalf("NewRegistry(%q): %v", env, err)
		}
		for _, id := range []string{"bucket-vip-on-leave", "bucket-vip-on-dwell-after-60000"} {
			j, ok := r.Get(id)
			if !ok {
				t.Errorf("ENABLED_JOURNEYS=%q: reaction %s not registered", env, id)
				continue
			}
			if !j.IsReaction() {
				t.Errorf("%s: IsReaction() = false", id)
			}
		}
	}
	r, _ := journey.NewRegistry("nothing", defs...)
	if j, _ := r.Get("bucket-vip-on-dwell-after-60000"); j.Enabled() {
		t.Error("a statically disabled reaction is registered but must stay disabled")
	}
}

func TestRegistryRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       string
		defs      func(t *testing.T) []*journey.Journey
		wantField string
	}{
		{name: "duplicate ids", env: "", defs: func(t *testing.T) []*journey.Journey {
			return []*journey.Journey{def(t, "a", "e"), def(t, "b", "e"), def(t, "a", "f")}
		}, wantField: "journeys[a].id"},
		{name: "duplicate ids outside the enabled set", env: "b", defs: func(t *testing.T) []*journey.Journey {
			return []*journey.Journey{def(t, "a", "e"), def(t, "b", "e"), def(t, "a", "f")}
		}, wantField: "journeys[a].id"},
		{name: "reaction colliding with a user journey", env: "", defs: func(t *testing.T) []*journey.Journey {
			return []*journey.Journey{
				def(t, "bucket-vip-on-enter", "signup"),
				def(t, "bucket-vip-on-enter", "bucket:entered:vip", reaction("vip", journey.ReactionEnter)),
			}
		}, wantField: "journeys[bucket-vip-on-enter].id"},
		{name: "nil definition", env: "", defs: func(t *testing.T) []*journey.Journey {
			return []*journey.Journey{def(t, "a", "e"), nil}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := journey.NewRegistry(tt.env, tt.defs(t)...)
			if err == nil {
				t.Fatalf("NewRegistry succeeded with %d journeys", len(r.All()))
			}
			if !errcode.Is(err, errcode.CodeInvalidRequest) {
				t.Errorf("code = %q, want invalid_request", errcode.Code(err))
			}
			if tt.wantField != "" {
				if f, _ := errcode.Details(err)["field"].(string); f != tt.wantField {
					t.Errorf("field = %q, want %q (error %v)", f, tt.wantField, err)
				}
			}
		})
	}
}

func TestRegistryLookups(t *testing.T) {
	t.Parallel()
	off := false
	defs := []*journey.Journey{
		def(t, "first", "signup", func(m *journey.Meta) { m.ExitOn = []journey.Exit{{Event: "deleted"}} }),
		def(t, "other", "purchase"),
		def(t, "disabled", "signup", func(m *journey.Meta) { m.Enabled = &off }),
		def(t, "filtered", "signup", func(m *journey.Meta) { m.ExitOn = []journey.Exit{{Event: "deleted"}} }),
		def(t, "last", "signup", func(m *journey.Meta) { m.ExitOn = []journey.Exit{{Event: "x"}} }),
	}
	r, err := journey.NewRegistry("first,other,disabled,last", defs...)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		got  []*journey.Journey
		want []string
	}{
		{name: "triggered in registration order, disabled included", got: r.Triggered("signup"), want: []string{"first", "disabled", "last"}},
		{name: "triggered single", got: r.Triggered("purchase"), want: []string{"other"}},
		{name: "triggered none", got: r.Triggered("nothing"), want: []string{}},
		{name: "with exitOn, filtered ones absent", got: r.WithExitOn(), want: []string{"first", "last"}},
		{name: "all", got: r.All(), want: []string{"first", "other", "disabled", "last"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ids(tt.got); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("results are copies", func(t *testing.T) {
		t.Parallel()
		r.Triggered("signup")[0] = nil
		r.All()[0] = nil
		r.WithExitOn()[0] = nil
		if r.Triggered("signup")[0] == nil || r.All()[0] == nil || r.WithExitOn()[0] == nil {
			t.Error("a returned slice aliases the registry")
		}
	})
	t.Run("get", func(t *testing.T) {
		t.Parallel()
		if j, ok := r.Get("other"); !ok || j != defs[1] {
			t.Errorf("Get(other) = %v, %v", j, ok)
		}
		if _, ok := r.Get("filtered"); ok {
			t.Error("Get(filtered) found a journey outside ENABLED_JOURNEYS")
		}
	})
}
