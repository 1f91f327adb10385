// Package list defines email lists (spec 20 §3.2) and owns the LOCKED
// polarity rule (§3.3) that the mailer's suppression check, the preference
// center and campaign audiences all share. Lists have no table: a
// contact's membership is categories[listID] on its email_preferences
// rows. The package is a leaf (standard library and errcode only) so every
// service may import it.
package list

import (
	"fmt"
	"strings"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// Reserved category ids: they name built-in mail streams, never a list.
const (
	CategoryTransactional = "transactional"
	CategoryJourney       = "journey"
)

// List is one list definition.
type List struct {
	// ID is the category key: letters, digits, '-' and '_' only.
	ID          string
	Name        string
	Description string
	// DefaultOptIn true: subscribed unless explicitly opted out;
	// false: subscribed only after an explicit opt-in.
	DefaultOptIn bool
	// Enabled nil means true. A disabled list stays registered (its
	// polarity applies, the lists API and campaigns accept it) but is
	// hidden from GET /v1/lists and the preference center.
	Enabled *bool
}

// IsEnabled reports whether the list is shown (Enabled nil or true).
func (l List) IsEnabled() bool { return l.Enabled == nil || *l.Enabled }

// ValidCategory reports whether id passes the list-id character rule:
// non-empty, ASCII letters, digits, '-' and '_'. Reserved ids pass: the
// unsubscribe token checks categories with it, and "journey" is a valid
// category there.
func ValidCategory(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Reserved reports whether id is a reserved category (any case).
func Reserved(id string) bool {
	return strings.EqualFold(id, CategoryTransactional) || strings.EqualFold(id, CategoryJourney)
}

// Define validates a definition: the id passes ValidCategory and is not
// reserved, the name is not blank. Errors are invalid_request errors naming
// the field.
func Define(l List) (List, error) {
	switch {
	case l.ID == "":
		return List{}, errcode.InvalidField("id", "must not be empty")
	case !ValidCategory(l.ID):
		return List{}, errcode.InvalidField("id", fmt.Sprintf("%q may contain only letters, digits, '-' and '_'", l.ID))
	case Reserved(l.ID):
		return List{}, errcode.InvalidField("id", fmt.Sprintf("%q is reserved", l.ID))
	case strings.TrimSpace(l.Name) == "":
		return List{}, errcode.InvalidField("name", fmt.Sprintf("list %q: must not be empty", l.ID))
	}
	if l.Enabled != nil {
		v := *l.Enabled
		l.Enabled = &v // the registry must not see later writes through the caller's pointer
	}
	return l, nil
}

// MustDefine is Define for static definitions: it panics on an invalid
// one.
func MustDefine(l List) List {
	d, err := Define(l)
	if err != nil {
		panic(fmt.Sprintf("list: %v", err))
	}
	return d
}

// Registry is the set of registered lists, in definition order. A nil
// *Registry is the unbuilt, empty registry: every id is unknown.
type Registry struct {
	lists []List
	byID  map[string]int
}

// NewRegistry registers the definitions that pass enabledEnv (the
// ENABLED_LISTS value, or the client's enabledLists option, which
// overrides it): "" or "*" registers all, anything else is a comma
// separated list of ids (entries trimmed, blanks ignored, unknown ids
// ignored). Each definition is validated again with Define; an invalid one
// or an id defined twice (ids compared case-insensitively, so "News" and
// "news" cannot coexist) is an error. A definition's Enabled flag does not
// affect registration.
func NewRegistry(enabledEnv string, defs ...List) (*Registry, error) {
	allow := parseEnabled(enabledEnv)
	r := &Registry{byID: map[string]int{}}
	seen := map[string]bool{}
	for _, d := range defs {
		l, err := Define(d)
		if err != nil {
			return nil, fmt.Errorf("define list: %w", err)
		}
		key := strings.ToLower(l.ID)
		if seen[key] {
			return nil, errcode.InvalidField("id", fmt.Sprintf("list %q is defined twice", l.ID))
		}
		seen[key] = true
		if allow != nil && !allow[l.ID] {
			continue
		}
		r.byID[l.ID] = len(r.lists)
		r.lists = append(r.lists, l)
	}
	return r, nil
}

// parseEnabled returns the allowed ids, or nil for "all".
func parseEnabled(env string) map[string]bool {
	env = strings.TrimSpace(env)
	if env == "" || env == "*" {
		return nil
	}
	allow := map[string]bool{}
	for _, id := range strings.Split(env, ",") {
		if id = strings.TrimSpace(id); id != "" {
			allow[id] = true
		}
	}
	return allow
}

// Get returns the registered list id (enabled or not).
func (r *Registry) Get(id string) (List, bool) {
	if r == nil {
		return List{}, false
	}
	i, ok := r.byID[id]
	if !ok {
		return List{}, false
	}
	return r.lists[i], true
}

// All returns every registered list in definition order.
func (r *Registry) All() []List {
	if r == nil {
		return nil
	}
	return append([]List(nil), r.lists...)
}

// Visible returns the registered lists that are enabled, in definition
// order: what GET /v1/lists and the preference center show.
func (r *Registry) Visible() []List {
	if r == nil {
		return nil
	}
	var out []List
	for _, l := range r.lists {
		if l.IsEnabled() {
			out = append(out, l)
		}
	}
	return out
}

// Subscribed is the LOCKED polarity rule (spec 20 §3.3), implemented here
// only. categories holds the explicit choices of one preferences row (only
// values actually stored; absent keys are "no choice"). A registered list
// with DefaultOptIn true is subscribed unless categories[id] is false; one
// with DefaultOptIn false only if categories[id] is true. Any other id —
// journey, transactional, template categories, lists filtered out by
// ENABLED_LISTS — behaves as DefaultOptIn true. unsubscribed_all overrides
// the rule; callers check it first.
func (r *Registry) Subscribed(categories map[string]bool, id string) bool {
	v, explicit := categories[id]
	if l, ok := r.Get(id); ok && !l.DefaultOptIn {
		return explicit && v
	}
	return !explicit || v
}
