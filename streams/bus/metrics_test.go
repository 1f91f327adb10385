package bus_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

func TestNewMetricsTwice(t *testing.T) {
	t.Parallel()
	a, b := prometheus.NewRegistry(), prometheus.NewRegistry()
	for _, reg := range []*prometheus.Registry{a, a, b} {
		if m, err := bus.NewMetrics(reg); err != nil || m == nil {
			t.Fatalf("NewMetrics = %v, %v", m, err)
		}
	}
	if m, err := bus.NewMetrics(nil); m != nil || err != nil {
		t.Errorf("NewMetrics(nil) = %v, %v; want no metrics", m, err)
	}
	// A foreign collector with a clashing name is an error, not a panic.
	c := prometheus.NewRegistry()
	c.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "hogsend_consumer_pending"}))
	if _, err := bus.NewMetrics(c); err == nil {
		t.Error("NewMetrics accepted a clashing collector")
	}
}
