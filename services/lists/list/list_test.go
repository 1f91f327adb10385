package list

import (
	"slices"
	"strings"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

func ptr[T any](v T) *T { return &v }

func TestDefine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		list  List
		field string // "" when valid
	}{
		{"plain", List{ID: "news", Name: "News"}, ""},
		{"mixed case, digits, dash, underscore", List{ID: "Beta-2_x", Name: "Beta"}, ""},
		{"empty id", List{ID: "", Name: "X"}, "id"},
		{"space", List{ID: "a b", Name: "X"}, "id"},
		{"dot", List{ID: "a.b", Name: "X"}, "id"},
		{"non-ascii letter", List{ID: "café", Name: "X"}, "id"},
		{"journey reserved", List{ID: "journey", Name: "X"}, "id"},
		{"Transactional reserved in any case", List{ID: "Transactional", Name: "X"}, "id"},
		{"JOURNEY reserved in any case", List{ID: "JOURNEY", Name: "X"}, "id"},
		{"blank name", List{ID: "news", Name: "  "}, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Define(tc.list)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Define: %v", err)
				}
				return
			}
			if !errcode.Is(err, errcode.CodeInvalidRequest) {
				t.Fatalf("Define: got %v, want invalid_request", err)
			}
			if !strings.HasPrefix(errcode.Message(err), tc.field+": ") {
				t.Fatalf("message %q does not name field %q", errcode.Message(err), tc.field)
			}
		})
	}
}

func TestDefineCopiesEnabled(t *testing.T) {
	t.Parallel()
	on := true
	l := MustDefine(List{ID: "news", Name: "News", Enabled: &on})
	on = false
	if !l.IsEnabled() {
		t.Fatal("a later write through the caller's pointer changed the definition")
	}
}

func TestNewRegistry(t *testing.T) {
	t.Parallel()
	defs := []List{
		{ID: "news", Name: "News", DefaultOptIn: true},
		{ID: "beta", Name: "Beta"},
		{ID: "hidden", Name: "Hidden", DefaultOptIn: true, Enabled: ptr(false)},
	}
	tests := []struct {
		env     string
		all     []string
		visible []string
	}{
		{"", []string{"news", "beta", "hidden"}, []string{"news", "beta"}},
		{"*", []string{"news", "beta", "hidden"}, []string{"news", "beta"}},
		{" * ", []string{"news", "beta", "hidden"}, []string{"news", "beta"}},
		{" beta , hidden,,unknown", []string{"beta", "hidden"}, []string{"beta"}},
		{"news", []string{"news"}, []string{"news"}},
		{"NEWS", nil, nil},
	}
	ids := func(ls []List) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return out
	}
	for _, tc := range tests {
		t.Run("env="+tc.env, func(t *testing.T) {
			t.Parallel()
			r, err := NewRegistry(tc.env, defs...)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(r.All()); !slices.Equal(got, tc.all) {
				t.Errorf("All = %v, want %v", got, tc.all)
			}
			if got := ids(r.Visible()); !slices.Equal(got, tc.visible) {
				t.Errorf("Visible = %v, want %v", got, tc.visible)
			}
		})
	}
}

func TestNewRegistryErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewRegistry("", List{ID: "news", Name: "N"}, List{ID: "News", Name: "N2"}); err == nil {
		t.Error("duplicate id accepted")
	}
	if _, err := NewRegistry("", List{ID: "journey", Name: "J"}); err == nil {
		t.Error("reserved id accepted")
	}
	// Invalid definitions fail even when ENABLED_LISTS filters them out.
	if _, err := NewRegistry("news", List{ID: "news", Name: "N"}, List{ID: "a b", Name: "X"}); err == nil {
		t.Error("invalid filtered-out definition accepted")
	}
}

func TestSubscribed(t *testing.T) {
	t.Parallel()
	r, err := NewRegistry("news,beta,off",
		List{ID: "news", Name: "News", DefaultOptIn: true},
		List{ID: "beta", Name: "Beta", DefaultOptIn: false},
		List{ID: "off", Name: "Off", DefaultOptIn: false, Enabled: ptr(false)},
		List{ID: "filtered", Name: "Filtered", DefaultOptIn: false},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		categories map[string]bool
		id         string
		want       bool
	}{
		{"opt-out list, no choice", nil, "news", true},
		{"opt-out list, explicit true", map[string]bool{"news": true}, "news", true},
		{"opt-out list, explicit false", map[string]bool{"news": false}, "news", false},
		{"opt-in list, no choice", map[string]bool{}, "beta", false},
		{"opt-in list, explicit true", map[string]bool{"beta": true}, "beta", true},
		{"opt-in list, explicit false", map[string]bool{"beta": false}, "beta", false},
		{"opt-in list, other key only", map[string]bool{"news": true}, "beta", false},
		{"disabled opt-in list keeps its polarity", nil, "off", false},
		{"disabled opt-in list, explicit true", map[string]bool{"off": true}, "off", true},
		{"list filtered by ENABLED_LISTS is unknown", nil, "filtered", true},
		{"list filtered by ENABLED_LISTS, explicit false", map[string]bool{"filtered": false}, "filtered", false},
		{"journey, no choice", nil, "journey", true},
		{"journey, explicit false", map[string]bool{"journey": false}, "journey", false},
		{"transactional, no choice", nil, "transactional", true},
		{"template category, no choice", nil, "weekly", true},
		{"template category, explicit false", map[string]bool{"weekly": false}, "weekly", false},
		{"ids are case-sensitive", map[string]bool{"NEWS": false}, "news", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := r.Subscribed(tc.categories, tc.id); got != tc.want {
				t.Fatalf("Subscribed(%v, %q) = %v, want %v", tc.categories, tc.id, got, tc.want)
			}
		})
	}
}

func TestNilRegistry(t *testing.T) {
	t.Parallel()
	var r *Registry
	if !r.Subscribed(nil, "beta") || r.Subscribed(map[string]bool{"beta": false}, "beta") {
		t.Error("nil registry must treat every id as defaultOptIn true")
	}
	if _, ok := r.Get("news"); ok || r.All() != nil || r.Visible() != nil {
		t.Error("nil registry must be empty")
	}
}

func TestValidCategory(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{"news": true, "journey": true, "A-b_9": true, "": false, "a.b": false, "a b": false, "ü": false, "a/b": false} {
		if got := ValidCategory(id); got != want {
			t.Errorf("ValidCategory(%q) = %v, want %v", id, got, want)
		}
	}
}
