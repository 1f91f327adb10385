package engine

import (
	"context"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// maxReadyLag is the consumer backlog above which the process reports
// itself not ready, so a load balancer prefers a caught-up replica.
const maxReadyLag = 100000

func (m *Main) healthRoutes(router *httpapi.Router) {
	router.HandleFunc(http.MethodGet, "/v1/health", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{
			"status": "ok", "version": Version, "uptime": time.Since(m.started).Seconds(),
			"timestamp": httpapi.NewTime(time.Now()),
		})
	}, httpapi.Doc{Summary: "Liveness", Tags: []string{"operations"}})
	router.HandleFunc(http.MethodGet, "/v1/health/ready", m.ready, httpapi.Doc{
		Summary: "Readiness: PostgreSQL, NATS and consumer lag", Tags: []string{"operations"},
		Responses: map[int]httpapi.Response{200: {Description: "Ready"}, 503: {Description: "Not ready"}},
	})
	router.Handle(http.MethodGet, "/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}), httpapi.Doc{
		Summary: "Prometheus metrics (hogsend_*)", Tags: []string{"operations"},
	})
}

func (m *Main) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	ok := true
	components := map[string]any{}

	start := time.Now()
	if err := m.pool.Ping(ctx); err != nil {
		ok = false
		components["database"] = map[string]any{"status": "down", "error": err.Error()}
	} else {
		components["database"] = map[string]any{"status": "up", "latencyMs": time.Since(start).Milliseconds()}
	}
	if m.nc.Status() != nats.CONNECTED {
		ok = false
		components["nats"] = map[string]any{"status": "down", "state": m.nc.Status().String()}
	} else {
		components["nats"] = map[string]any{"status": "up"}
	}
	for name, group := range map[string]*bus.Partitioned{"contacts": m.contacts, "buckets": m.buckets, "journeys": m.journeyC} {
		if group == nil {
			continue
		}
		lag, err := group.Lag(ctx)
		var total uint64
		for _, n := range lag {
			total += n
		}
		c := map[string]any{"status": "up", "lag": total}
		if err != nil {
			ok = false
			c["status"], c["error"] = "down", err.Error()
		} else if total > maxReadyLag {
			ok = false
			c["status"] = "lagging"
		}
		components[name] = c
	}
	status, code := "ready", http.StatusOK
	if !ok {
		status, code = "not_ready", http.StatusServiceUnavailable
	}
	httpapi.WriteJSON(w, code, map[string]any{"status": status, "components": components})
}
