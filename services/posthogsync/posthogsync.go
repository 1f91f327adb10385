// Package posthogsync mirrors bucket membership into PostHog person
// properties (spec 10 §4.5 rule 4): when a contact enters a bucket whose
// definition sets SyncToPostHog, the property PostHogPropertyKey (default
// hogsend_bucket_<id>) is set to true on the PostHog person whose
// distinct_id is the contact's key; when it leaves, the property is
// $unset.
//
// The mirror reads the bucket transitions from ACTIVITY, after the contacts
// projection applied them, so bucket evaluation never waits for it: it only
// publishes bucket:entered:<id> / bucket:left:<id> events as it always
// does. Sending is best-effort and batched by posthog-go in the background;
// a PostHog outage costs dropped property updates, never engine progress.
package posthogsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/posthog/posthog-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// ConsumerName is the durable name of the mirror's ACTIVITY consumer, the
// consumer label of its metrics and the source of its dead letters.
const ConsumerName = "posthog"

// FilterSubject selects every ACTIVITY message; the handler picks the
// bucket transitions (their subject carries only the contact's partition).
const FilterSubject = streams.ActivityRoot + ".>"

// Defaults.
const (
	// DefaultInterval is how often posthog-go flushes a partial batch.
	DefaultInterval = time.Second
	// DefaultWorkers is RunWorkQueue's default: the mirror reads all of
	// ACTIVITY, so it should keep up with the contacts projection.
	// Concurrent workers may reorder messages; the order per person
	// property that PostHog needs is kept by the handler (see order),
	// which drops an update older than one already sent, and also covers
	// redeliveries.
	DefaultWorkers = 4
	// ackWait and maxAckPending are the values RunWorkQueue would default
	// to; the consumer is created with them so RunWorkQueue's update of it
	// changes nothing.
	ackWait       = 30 * time.Second
	maxAckPending = 1000
)

// Config configures the mirror. With an empty APIKey the mirror is off and
// nothing else is read.
type Config struct {
	// APIKey is the PostHog project API key (POSTHOG_API_KEY); empty turns
	// the mirror off.
	APIKey string
	// Host is the PostHog base URL (POSTHOG_HOST), e.g.
	// https://us.i.posthog.com; empty means posthog-go's default endpoint.
	Host string
	// Registry holds the registered buckets; transitions of buckets that
	// are not registered or do not set SyncToPostHog are skipped.
	Registry  *buckets.Registry
	JetStream jetstream.JetStream
	Logger    *slog.Logger
	// Registerer receives hogsend_posthog_messages_total and the consumer
	// metrics; nil records nothing.
	Registerer prometheus.Registerer
	// Interval is posthog-go's flush interval for a partial batch
	// (default 1s).
	Interval time.Duration
	// BatchSize is the most messages per PostHog /batch/ request
	// (default posthog-go's, 250).
	BatchSize int
	// Workers is how many ACTIVITY messages are handled at once (default
	// DefaultWorkers). With one, every transition is sent in stream order
	// and none is dropped as superseded.
	Workers int
	// DeadLetters records ACTIVITY messages that cannot be decoded; nil
	// logs them instead.
	DeadLetters bus.DeadLetterRecorder
}

func (c *Config) setDefaults() error {
	switch {
	case c.Registry == nil:
		return errors.New("field Registry is required")
	case c.JetStream == nil:
		return errors.New("field JetStream is required")
	case c.Interval < 0:
		return errors.New("field Interval must not be negative")
	case c.BatchSize < 0:
		return errors.New("field BatchSize must not be negative")
	case c.Workers < 0:
		return errors.New("field Workers must not be negative")
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Run mirrors bucket transitions to PostHog until ctx is cancelled, then
// lets the message in progress finish, flushes what posthog-go still holds
// (one attempt per batch, bounded by its 10s HTTP timeout) and returns nil.
// With an empty APIKey it returns nil at once.
//
// The ACTIVITY consumer is durable: a restart continues after the last
// message handled. A fresh install starts at the end of ACTIVITY instead
// of replaying its retention (see ensureConsumer).
func Run(ctx context.Context, cfg Config) error {
	if cfg.APIKey == "" {
		return nil
	}
	if err := cfg.setDefaults(); err != nil {
		return fmt.Errorf("run posthog sync: %w", err)
	}
	metrics, err := newMetrics(cfg.Registerer)
	if err != nil {
		return fmt.Errorf("run posthog sync: %w", err)
	}
	log := cfg.Logger.With("consumer", ConsumerName)
	since, err := ensureConsumer(ctx, cfg.JetStream, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("run posthog sync: %w", err)
	}

	// A transport of our own, so its idle connections can be closed on the
	// way out instead of lingering in http.DefaultTransport.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	client, err := posthog.NewWithConfig(cfg.APIKey, posthog.Config{
		Endpoint:  cfg.Host,
		Interval:  cfg.Interval,
		BatchSize: cfg.BatchSize,
		Transport: transport,
		Logger:    slogAdapter{log},
		Callback:  metrics,
	})
	if err != nil {
		return fmt.Errorf("run posthog sync: new posthog client: %w", err)
	}
	m := &mirror{reg: cfg.Registry, client: client, order: newOrder(), since: since, metrics: metrics, log: log}
	runErr := bus.RunWorkQueue(ctx, bus.WorkQueueConfig{
		JetStream:     cfg.JetStream,
		Stream:        streams.StreamActivity,
		Name:          ConsumerName,
		FilterSubject: FilterSubject,
		Workers:       cfg.Workers,
		AckWait:       ackWait,
		MaxAckPending: maxAckPending,
		DeadLetters:   cfg.DeadLetters,
		Logger:        cfg.Logger,
		Registerer:    cfg.Registerer,
	}, m.handle)
	// RunWorkQueue has returned, so no handler enqueues any more: Close
	// drains the client's queue and sends the last batches.
	if err := client.Close(); err != nil {
		log.Warn("close posthog client", "err", err)
	}
	if runErr != nil {
		return fmt.Errorf("run posthog sync: %w", runErr)
	}
	return nil
}

// slogAdapter routes posthog-go's background logs to slog. posthog-go's
// Logf reports non-2xx answers and Errorf failed or dropped sends; both
// are a degraded external service, not an engine fault, hence Warn.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Logf(format string, args ...any) {
	a.log.Warn("posthog: " + fmt.Sprintf(format, args...))
}

func (a slogAdapter) Errorf(format string, args ...any) {
	a.log.Warn("posthog: " + fmt.Sprintf(format, args...))
}
