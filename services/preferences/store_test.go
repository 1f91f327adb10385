package preferences_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/preferences"
)

func TestSetTouchesOnlySuppliedFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()

	p, err := e.store.Set(ctx, " u1 ", "  Ada@X.io ", preferences.Change{Category: "news", CategoryValue: no()})
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != "u1" || p.Email != "ada@x.io" || p.UnsubscribedAll || p.Suppressed || len(p.Categories) != 1 {
		t.Fatalf("created %+v", p)
	}
	if v, ok := p.Categories["news"]; !ok || v {
		t.Fatalf("categories %v, want news explicitly false", p.Categories)
	}
	if p.ID.Version() != 7 {
		t.Errorf("id %s is not a uuid v7", p.ID)
	}
	if _, err := e.store.Set(ctx, "u1", "ada@x.io", preferences.Change{Suppressed: yes()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Set(ctx, "u1", "ADA@x.io", preferences.Change{Category: "beta", CategoryValue: yes()}); err != nil {
		t.Fatal(err)
	}
	r := e.oneRow("ada@x.io")
	if !r.Suppressed || r.SuppressedAt == nil || !r.SuppressedAt.Equal(now) || r.UnsubscribedAll ||
		r.Categories["news"] != false || r.Categories["beta"] != true || len(r.Categories) != 2 {
		t.Fatalf("row %+v", r)
	}
	// Un-suppressing clears suppressed_at.
	if _, err := e.store.Set(ctx, "u1", "ada@x.io", preferences.Change{Suppressed: no()}); err != nil {
		t.Fatal(err)
	}
	if r := e.oneRow("ada@x.io"); r.Suppressed || r.SuppressedAt != nil || len(r.Categories) != 2 {
		t.Fatalf("after unsuppress %+v", r)
	}
	// Replace, then flip.
	p, err = e.store.Set(ctx, "u1", "ada@x.io", preferences.Change{
		ReplaceCategories: map[string]bool{"weekly": true}, Category: "news", CategoryValue: yes(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Categories) != 2 || !p.Categories["weekly"] || !p.Categories["news"] {
		t.Fatalf("replaced %+v", p.Categories)
	}
	// A blank user id falls back to the address.
	p, err = e.store.Set(ctx, "", "Solo@X.io", preferences.Change{})
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != "solo@x.io" || p.Email != "solo@x.io" {
		t.Fatalf("keyless row %+v", p)
	}
	if e.countRows() != 2 {
		t.Fatalf("rows = %d, want 2", e.countRows())
	}
	// Invalid changes.
	if _, err := e.store.Set(ctx, "u1", " ", preferences.Change{}); !errcode.Is(err, errcode.CodeInvalidRequest) {
		t.Errorf("blank email: %v", err)
	}
	if _, err := e.store.Set(ctx, "u1", "ada@x.io", preferences.Change{Category: "news"}); !errcode.Is(err, errcode.CodeInvalidRequest) {
		t.Errorf("category without value: %v", err)
	}
}

func TestSetFindsLegacyMixedCaseRow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO email_preferences (id, user_id, email) VALUES (gen_random_uuid(), 'u1', 'Ada@X.io')`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Set(ctx, "u1", "ada@x.io", preferences.Change{UnsubscribedAll: yes()}); err != nil {
		t.Fatal(err)
	}
	if r := e.oneRow("ada@x.io"); !r.UnsubscribedAll || r.Email != "Ada@X.io" {
		t.Fatalf("legacy row not updated in place: %+v", r)
	}
}

func TestSetEmitsOptOuts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	set := func(ch preferences.Change) {
		t.Helper()
		if _, err := e.store.Set(ctx, "u1", "Ada@x.io", ch); err != nil {
			t.Fatal(err)
		}
	}
	set(preferences.Change{UnsubscribedAll: yes()})
	set(preferences.Change{UnsubscribedAll: yes()}) // repeated: emitted again
	set(preferences.Change{Category: "news", CategoryValue: no()})
	set(preferences.Change{UnsubscribedAll: no()})                  // resubscribe: nothing
	set(preferences.Change{Category: "news", CategoryValue: yes()}) // nothing
	set(preferences.Change{Suppressed: yes()})                      // not an opt-out
	// A replace reports the entries that turned false only.
	set(preferences.Change{ReplaceCategories: map[string]bool{"news": false, "beta": true, "weekly": false}})
	set(preferences.Change{ReplaceCategories: map[string]bool{"news": false, "weekly": false}})
	got := e.events.take()
	want := []preferences.ContactUnsubscribed{
		{ExternalID: "u1", Email: "ada@x.io", Scope: preferences.ScopeAll},
		{ExternalID: "u1", Email: "ada@x.io", Scope: preferences.ScopeAll},
		{ExternalID: "u1", Email: "ada@x.io", Category: "news", Scope: preferences.ScopeCategory},
		{ExternalID: "u1", Email: "ada@x.io", Category: "news", Scope: preferences.ScopeCategory},
		{ExternalID: "u1", Email: "ada@x.io", Category: "weekly", Scope: preferences.ScopeCategory},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n got %+v\nwant %+v", got, want)
	}
}

// Concurrent first writes of one key end in one row holding every change.
func TestSetConcurrentSameKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.store.Set(ctx, "u1", "race@x.io", preferences.Change{Category: fmt.Sprintf("c%d", i), CategoryValue: yes()})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if r := e.oneRow("race@x.io"); len(r.Categories) != n {
		t.Fatalf("categories %v, want %d entries", r.Categories, n)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	set := func(user, email string, ch preferences.Change) {
		t.Helper()
		if _, err := e.store.Set(ctx, user, email, ch); err != nil {
			t.Fatal(err)
		}
	}
	set("a", "optin@x.io", preferences.Change{Category: "beta", CategoryValue: yes()})
	set("b", "optout@x.io", preferences.Change{Category: "news", CategoryValue: no()})
	set("c", "weekly@x.io", preferences.Change{Category: "weekly", CategoryValue: no()})
	set("d", "all@x.io", preferences.Change{UnsubscribedAll: yes()})
	set("e", "both@x.io", preferences.Change{UnsubscribedAll: yes(), Suppressed: yes()})
	// Two rows of one address under two user ids: any blocking row blocks.
	set("f1", "multi@x.io", preferences.Change{Category: "beta", CategoryValue: yes()})
	set("f2", "MULTI@x.io", preferences.Change{Category: "news", CategoryValue: no()})
	if _, err := e.pool.Exec(ctx, `INSERT INTO email_preferences (id, user_id, email, categories) VALUES (gen_random_uuid(), 'g', 'Legacy@X.io', '{"news": false, "beta": "true"}')`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		email, category string
		blocked         bool
		reason          string
	}{
		{"nobody@x.io", "", false, ""},
		{"nobody@x.io", "news", false, ""},
		{"nobody@x.io", "beta", true, preferences.ReasonCategoryUnsubscribed}, // opt-in list without a row
		{"nobody@x.io", "filtered", false, ""},                                // filtered out: unknown, opt-out
		{"nobody@x.io", "transactional", false, ""},
		{"optin@x.io", "beta", false, ""},
		{" OPTIN@X.IO ", "beta", false, ""},
		{"optin@x.io", "news", false, ""},
		{"optout@x.io", "news", true, preferences.ReasonCategoryUnsubscribed},
		{"optout@x.io", "", false, ""},
		{"optout@x.io", "beta", true, preferences.ReasonCategoryUnsubscribed},
		{"weekly@x.io", "weekly", true, preferences.ReasonCategoryUnsubscribed},
		{"weekly@x.io", "journey", false, ""},
		{"all@x.io", "", true, preferences.ReasonUnsubscribed},
		{"all@x.io", "transactional", true, preferences.ReasonUnsubscribed},
		{"both@x.io", "news", true, preferences.ReasonSuppressed},
		{"multi@x.io", "news", true, preferences.ReasonCategoryUnsubscribed},
		{"multi@x.io", "beta", true, preferences.ReasonCategoryUnsubscribed}, // f2 has no explicit true
		{"legacy@x.io", "news", true, preferences.ReasonCategoryUnsubscribed},
		{"legacy@x.io", "beta", true, preferences.ReasonCategoryUnsubscribed}, // "true" is not true
	}
	for _, tc := range tests {
		blocked, reason := e.check(tc.email, tc.category)
		if blocked != tc.blocked || reason != tc.reason {
			t.Errorf("Check(%q, %q) = %v %q, want %v %q", tc.email, tc.category, blocked, reason, tc.blocked, tc.reason)
		}
	}
}

// Spec 20 §7 scenario 19 and the [Go] rule of §2.5.6.
func TestRecordBounce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	t1, t2, t3, t4 := now, now.Add(time.Minute), now.Add(2*time.Minute), now.Add(3*time.Minute)

	// No row: the first bounce creates one under the send's user id.
	rows, err := e.store.RecordBounce(ctx, "u1", " Bob@X.io", t1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].UserID != "u1" || rows[0].Email != "bob@x.io" || rows[0].BounceCount != 1 || rows[0].Suppressed {
		t.Fatalf("first bounce %+v", rows)
	}
	if blocked, _ := e.check("bob@x.io", ""); blocked {
		t.Fatal("blocked after one bounce")
	}
	if _, err := e.store.RecordBounce(ctx, "u1", "bob@x.io", t2); err != nil {
		t.Fatal(err)
	}
	if r := e.oneRow("bob@x.io"); r.BounceCount != 2 || r.Suppressed || r.SuppressedAt != nil || !r.LastBounceAt.Equal(t2) {
		t.Fatalf("second bounce %+v", r)
	}
	if _, err := e.store.RecordBounce(ctx, "u1", "bob@x.io", t3); err != nil {
		t.Fatal(err)
	}
	if r := e.oneRow("bob@x.io"); r.BounceCount != 3 || !r.Suppressed || !r.SuppressedAt.Equal(t3) {
		t.Fatalf("third bounce %+v", r)
	}
	if blocked, reason := e.check("bob@x.io", "news"); !blocked || reason != preferences.ReasonSuppressed {
		t.Fatalf("after threshold: %v %q", blocked, reason)
	}
	// Later bounces re-stamp suppressed_at.
	if _, err := e.store.RecordBounce(ctx, "other-user", "BOB@x.io", t4); err != nil {
		t.Fatal(err)
	}
	if r := e.oneRow("bob@x.io"); r.BounceCount != 4 || !r.SuppressedAt.Equal(t4) {
		t.Fatalf("fourth bounce %+v", r)
	}

	// Existing rows (two user ids) all count; no new row is created.
	for _, u := range []string{"a", "b"} {
		if _, err := e.store.Set(ctx, u, "carol@x.io", preferences.Change{}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err = e.store.RecordBounce(ctx, "", "carol@x.io", t1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].BounceCount != 1 || rows[1].BounceCount != 1 {
		t.Fatalf("bounce on two rows %+v", rows)
	}
	// Without a user id the address keys the new row.
	rows, err = e.store.RecordBounce(ctx, "", "Dan@x.io", t1)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].UserID != "dan@x.io" {
		t.Fatalf("keyless bounce %+v", rows)
	}
}

// Spec 20 §7 scenario 20 with the [Go] rule: a complaint suppresses even
// an address without a row.
func TestRecordComplaint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if blocked, _ := e.check("eve@x.io", ""); blocked {
		t.Fatal("blocked before the complaint")
	}
	rows, err := e.store.RecordComplaint(ctx, "u9", "Eve@X.io", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || !rows[0].Suppressed || rows[0].UserID != "u9" || rows[0].BounceCount != 0 {
		t.Fatalf("complaint %+v", rows)
	}
	if r := e.oneRow("eve@x.io"); !r.Suppressed || !r.SuppressedAt.Equal(now) {
		t.Fatalf("row %+v", r)
	}
	if blocked, reason := e.check("eve@x.io", ""); !blocked || reason != preferences.ReasonSuppressed {
		t.Fatalf("after complaint: %v %q", blocked, reason)
	}
	// Existing row: suppressed in place, re-stamped.
	later := now.Add(time.Hour)
	if _, err := e.store.RecordComplaint(ctx, "someone-else", "eve@x.io", later); err != nil {
		t.Fatal(err)
	}
	if r := e.oneRow("eve@x.io"); !r.SuppressedAt.Equal(later) {
		t.Fatalf("row %+v", r)
	}
}

type failingEmitter struct{ calls int }

func (f *failingEmitter) Unsubscribed(context.Context, preferences.ContactUnsubscribed) error {
	f.calls++
	return fmt.Errorf("bus down")
}

// The emitter is optional, and its failure does not undo or fail the
// committed opt-out.
func TestSetEmitterOptionalAndBestEffort(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	bare := preferences.NewStore(e.pool, preferences.StoreOptions{})
	if _, err := bare.Set(ctx, "u1", "a@x.io", preferences.Change{UnsubscribedAll: yes()}); err != nil {
		t.Fatal(err)
	}
	f := &failingEmitter{}
	failing := preferences.NewStore(e.pool, preferences.StoreOptions{Emitter: f, Logger: slog.New(slog.DiscardHandler)})
	p, err := failing.Set(ctx, "u1", "a@x.io", preferences.Change{Category: "news", CategoryValue: no()})
	if err != nil {
		t.Fatal(err)
	}
	if f.calls != 1 || !p.UnsubscribedAll || p.Categories["news"] {
		t.Fatalf("calls %d, prefs %+v", f.calls, p)
	}
}
