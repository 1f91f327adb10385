package engine

import (
	"strings"
	"testing"
	"time"
)

// Duration settings parse as Go durations; a bad value fails the start
// with an error naming the variable.
func TestEnvDurations(t *testing.T) {
	t.Parallel()
	env := func(vals map[string]string) func(string) string {
		return func(k string) string { return vals[k] }
	}
	cfg, err := envConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JourneyRunTimeout != 0 {
		t.Errorf("JourneyRunTimeout %s by default, want 0 (the journeys service's default)", cfg.JourneyRunTimeout)
	}
	cfg, err = envConfig(env(map[string]string{"HOGSEND_JOURNEY_RUN_TIMEOUT": "5s", "HOGSEND_PINNED_TTL": "3s"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JourneyRunTimeout != 5*time.Second || cfg.PinnedTTL != 3*time.Second {
		t.Errorf("JourneyRunTimeout %s, PinnedTTL %s; want 5s and 3s", cfg.JourneyRunTimeout, cfg.PinnedTTL)
	}
	for _, bad := range []string{"soon", "-1s", "0s"} {
		_, err := envConfig(env(map[string]string{"HOGSEND_JOURNEY_RUN_TIMEOUT": bad}))
		if err == nil || !strings.Contains(err.Error(), "HOGSEND_JOURNEY_RUN_TIMEOUT") {
			t.Errorf("HOGSEND_JOURNEY_RUN_TIMEOUT=%s: err %v, want one naming the variable", bad, err)
		}
	}
}
