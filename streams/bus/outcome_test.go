package bus_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

func TestClassification(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	perm := fmt.Errorf("apply: %w", bus.Permanent(base))
	if !bus.IsPermanent(perm) || !errors.Is(perm, base) {
		t.Errorf("wrapped Permanent: IsPermanent=%v Is(base)=%v", bus.IsPermanent(perm), errors.Is(perm, base))
	}
	if bus.IsPermanent(base) || bus.Permanent(nil) != nil || bus.RetryAfter(nil, time.Second) != nil {
		t.Error("plain errors and nil must stay as they are")
	}
	ra := fmt.Errorf("send: %w", bus.RetryAfter(base, 3*time.Second))
	if d, ok := bus.RetryDelay(ra); !ok || d != 3*time.Second || !errors.Is(ra, base) || bus.IsPermanent(ra) {
		t.Errorf("RetryDelay = %v, %v", d, ok)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		b       bus.Backoff
		attempt int
		want    time.Duration
	}{
		{"first, no jitter", bus.Backoff{Initial: time.Second, Jitter: -1}, 1, time.Second},
		{"doubles", bus.Backoff{Initial: time.Second, Jitter: -1}, 4, 8 * time.Second},
		{"capped", bus.Backoff{Initial: time.Second, Max: 5 * time.Second, Jitter: -1}, 10, 5 * time.Second},
		{"jitter low end", bus.Backoff{Initial: time.Second, Jitter: 0.5, Rand: func() float64 { return 0 }}, 1, 500 * time.Millisecond},
		{"jitter high end", bus.Backoff{Initial: time.Second, Jitter: 0.5, Rand: func() float64 { return 0.999999 }}, 2, 2999998 * time.Microsecond},
		{"jitter never exceeds max", bus.Backoff{Initial: time.Second, Max: time.Second, Rand: func() float64 { return 0.99 }}, 3, time.Second},
		{"defaults", bus.Backoff{Rand: func() float64 { return 0.5 }}, 1, 200 * time.Millisecond},
		{"huge attempt", bus.Backoff{Jitter: -1}, 1000, time.Minute},
	} {
		if got := tc.b.Delay(tc.attempt); got.Round(time.Microsecond) != tc.want {
			t.Errorf("%s: Delay(%d) = %v, want %v", tc.name, tc.attempt, got, tc.want)
		}
	}
}

func TestParsePartitions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []int
		err  bool
	}{
		{in: "0-7,9", want: []int{0, 1, 2, 3, 4, 5, 6, 7, 9}},
		{in: " 15, 3 ,3-4", want: []int{3, 4, 15}},
		{in: "", want: bus.AllPartitions()},
		{in: "all", want: bus.AllPartitions()},
		{in: "16", err: true},
		{in: "7-3", err: true},
		{in: "x", err: true},
		{in: "1,", err: true},
		{in: "-1", err: true},
	} {
		got, err := bus.ParsePartitions(tc.in)
		if (err != nil) != tc.err || (!tc.err && !slices.Equal(got, tc.want)) {
			t.Errorf("ParsePartitions(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestPartitionedConfigValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ok := bus.PartitionedConfig{JetStream: e.js, Stream: "EVENTS", Root: "hogsend.events", Name: "x"}
	h := bus.BatchHandlerFunc(nil)
	for name, mutate := range map[string]func(*bus.PartitionedConfig){
		"no jetstream":        func(c *bus.PartitionedConfig) { c.JetStream = nil },
		"bad name":            func(c *bus.PartitionedConfig) { c.Name = "a.b" },
		"partition too large": func(c *bus.PartitionedConfig) { c.Partitions = []int{16} },
		"partition twice":     func(c *bus.PartitionedConfig) { c.Partitions = []int{1, 1} },
		"pinned ttl too low":  func(c *bus.PartitionedConfig) { c.PinnedTTL = 500 * time.Millisecond },
		"ack wait below ttl":  func(c *bus.PartitionedConfig) { c.PinnedTTL, c.AckWait = 5*time.Second, 2*time.Second },
		"fetch wait too long": func(c *bus.PartitionedConfig) { c.PinnedTTL, c.FetchWait = time.Second, time.Second },
	} {
		c := ok
		mutate(&c)
		if _, err := bus.NewPartitioned(c, h); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := bus.NewPartitioned(ok, h); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
