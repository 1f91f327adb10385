package preferences_test

import (
	"context"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/preferences"
)

// CheckBatch answers every send of a batch as Check answers it alone: the
// same rows (several per address, mixed-case and legacy ones), the same
// polarity rule, one read.
func TestCheckBatchAgreesWithCheck(t *testing.T) {
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
	set("s", "bounced@x.io", preferences.Change{Suppressed: yes()})
	set("f1", "multi@x.io", preferences.Change{Category: "beta", CategoryValue: yes()})
	set("f2", "MULTI@x.io", preferences.Change{Category: "news", CategoryValue: no()})
	if _, err := e.pool.Exec(ctx, `INSERT INTO email_preferences (id, user_id, email, categories) VALUES (gen_random_uuid(), 'g', 'Legacy@X.io', '{"news": false, "beta": "true"}')`); err != nil {
		t.Fatal(err)
	}
	addresses := []string{"nobody@x.io", "optin@x.io", " OPTIN@X.IO ", "optout@x.io", "weekly@x.io", "all@x.io",
		"both@x.io", "Bounced@x.io", "multi@x.io", "legacy@x.io", ""}
	categories := []string{"", "news", "beta", "filtered", "transactional", "weekly", "journey"}
	var emails, cats []string
	for _, a := range addresses {
		for _, c := range categories {
			emails = append(emails, a)
			cats = append(cats, c)
		}
	}
	reasons, err := e.store.CheckBatch(ctx, emails, cats)
	if err != nil {
		t.Fatal(err)
	}
	if len(reasons) != len(emails) {
		t.Fatalf("%d answers for %d checks", len(reasons), len(emails))
	}
	blockedSeen := 0
	for i := range emails {
		blocked, reason := e.check(emails[i], cats[i])
		if reasons[i] != reason || (reasons[i] != "") != blocked {
			t.Errorf("CheckBatch(%q, %q) = %q, Check = %v %q", emails[i], cats[i], reasons[i], blocked, reason)
		}
		if blocked {
			blockedSeen++
		}
	}
	if blockedSeen < 20 {
		t.Errorf("only %d of %d checks blocked: the fixture is not exercising the rules", blockedSeen, len(emails))
	}
	if _, err := e.store.CheckBatch(ctx, []string{"a@x.io"}, nil); err == nil {
		t.Error("mismatched lengths accepted")
	}
	if r, err := e.store.CheckBatch(ctx, nil, nil); err != nil || len(r) != 0 {
		t.Errorf("empty batch: %v %v", r, err)
	}
}
