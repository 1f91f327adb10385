package posthogsync

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/posthog/posthog-go"
)

// Analytics sends journey Identify/Capture calls and email engagement to
// PostHog through posthog-go's batching queue: a call only enqueues, so it
// never holds up a journey or a tracking hit.
type Analytics struct {
	client    posthog.Client
	transport *http.Transport
}

// NewAnalytics returns the client for apiKey (host "" is posthog-go's
// default endpoint); interval 0 is posthog-go's default flush interval.
func NewAnalytics(apiKey, host string, interval time.Duration, log *slog.Logger) (*Analytics, error) {
	if log == nil {
		log = slog.Default()
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	client, err := posthog.NewWithConfig(apiKey, posthog.Config{
		Endpoint: host, Interval: interval, Transport: transport, Logger: slogAdapter{log},
	})
	if err != nil {
		return nil, fmt.Errorf("new posthog client: %w", err)
	}
	return &Analytics{client: client, transport: transport}, nil
}

// Identify sets person properties of distinctID.
func (a *Analytics) Identify(distinctID string, props map[string]any) {
	p := posthog.NewProperties()
	for k, v := range props {
		p.Set(k, v)
	}
	_ = a.client.Enqueue(posthog.Identify{DistinctId: distinctID, Properties: p})
}

// Capture records event for distinctID.
func (a *Analytics) Capture(distinctID, event string, props map[string]any) {
	p := posthog.NewProperties()
	for k, v := range props {
		p.Set(k, v)
	}
	_ = a.client.Enqueue(posthog.Capture{DistinctId: distinctID, Event: event, Properties: p})
}

// Close sends what is queued and stops the client.
func (a *Analytics) Close() error {
	defer a.transport.CloseIdleConnections()
	return a.client.Close()
}
