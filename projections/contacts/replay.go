package contacts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/projections"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// ReplayOptions configure Replay.
type ReplayOptions struct {
	// Force replays even when a consumer of the group looks active.
	Force  bool
	Logger *slog.Logger
	// PollEvery is how often progress is checked (default 100ms).
	PollEvery time.Duration
}

// ReplayResult reports a replay.
type ReplayResult struct {
	Events uint64
	Took   time.Duration
}

// ErrConsumerActive means a contacts consumer is running; replaying under
// it would race two writers on the same tables.
var ErrConsumerActive = errors.New("a contacts consumer is active: stop the contacts service (or `hogsend dev`) before replaying, or pass --force")

// Replay rebuilds contacts, contact_aliases and user_events from EVENTS:
// it deletes the group's durables, truncates the tables with the
// checkpoints, and re-applies every stored event in order. Nothing is
// republished to ACTIVITY, so consumers downstream never act twice.
//
// Because contact and alias ids derive from event ids and every timestamp
// is the event's receive time, the rebuilt rows equal the live ones.
func Replay(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream, opts ReplayOptions) (ReplayResult, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = 100 * time.Millisecond
	}
	if !opts.Force {
		if active, err := groupActive(ctx, js); err != nil {
			return ReplayResult{}, err
		} else if active {
			return ReplayResult{}, ErrConsumerActive
		}
	}
	stream, err := js.Stream(ctx, streams.StreamEvents)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("open EVENTS: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("read EVENTS: %w", err)
	}
	start := time.Now()
	if err := bus.Reset(ctx, js, streams.StreamEvents, Name); err != nil {
		return ReplayResult{}, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return ReplayResult{}, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if err := dbsqlc.New(tx).ContactsReset(ctx); err != nil {
		return ReplayResult{}, fmt.Errorf("reset contacts tables: %w", err)
	}
	if err := projections.Reset(ctx, tx, Name); err != nil {
		return ReplayResult{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return ReplayResult{}, fmt.Errorf("reset contacts tables: %w", err)
	}

	runner := projections.NewRunner(Name, pool, nil, New(Options{Replay: true, Logger: opts.Logger}), opts.Logger)
	group, err := bus.NewPartitioned(bus.PartitionedConfig{
		JetStream: js, Stream: streams.StreamEvents, Root: streams.EventsRoot, Name: Name,
		PinnedTTL: time.Second, Logger: opts.Logger, BatchSize: 512,
	}, runner)
	if err != nil {
		return ReplayResult{}, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- group.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(opts.PollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ReplayResult{}, ctx.Err()
		case err := <-done:
			done <- err
			return ReplayResult{}, fmt.Errorf("replay stopped: %w", err)
		case <-tick.C:
		}
		lag, err := group.Lag(ctx)
		if err != nil {
			continue // durables not created yet
		}
		var left uint64
		for _, n := range lag {
			left += n
		}
		if left == 0 {
			return ReplayResult{Events: info.State.Msgs, Took: time.Since(start)}, nil
		}
	}
}

func groupActive(ctx context.Context, js jetstream.JetStream) (bool, error) {
	for p := range streams.Partitions {
		c, err := js.Consumer(ctx, streams.StreamEvents, bus.DurableName(Name, p))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("inspect consumer: %w", err)
		}
		for _, g := range c.CachedInfo().PriorityGroups {
			if g.PinnedClientID != "" {
				return true, nil
			}
		}
	}
	return false, nil
}
