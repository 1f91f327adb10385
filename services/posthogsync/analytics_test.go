package posthogsync_test

import (
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/posthogsync"
)

// Journey analytics and email engagement reach PostHog's batch endpoint as
// identify and capture messages for the contact's key.
func TestAnalyticsSendsToPostHog(t *testing.T) {
	t.Parallel()
	f := newFakePostHog(t, 0)
	a, err := posthogsync.NewAnalytics("phc_test", f.srv.URL, 20*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Identify("u1", map[string]any{"plan": "pro"})
	a.Capture("u1", "email.opened", map[string]any{"templateKey": "welcome"})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		t.Fatal(f.errs)
	}
	byType := map[string]phMessage{}
	for _, m := range f.msgs {
		byType[m.Type] = m
	}
	if m := byType["identify"]; m.DistinctID != "u1" {
		t.Errorf("identify %+v", m)
	}
	if m := byType["capture"]; m.DistinctID != "u1" || m.Event != "email.opened" || m.Properties["templateKey"] != "welcome" {
		t.Errorf("capture %+v", m)
	}
	if !f.apiKeys["phc_test"] {
		t.Errorf("api keys %v", f.apiKeys)
	}
}
