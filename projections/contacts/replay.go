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

	// One ordered pass over the whole stream: across partitions the live
	// run applied dependent events in stream order (a write route waits
	// for its event), so replaying in that order rebuilds the same rows.
	runner := projections.NewRunner(Name, pool, nil, New(Options{Replay: true, Logger: opts.Logger}), opts.Logger)
	cons, err := js.OrderedConsumer(ctx, streams.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{streams.EventsRoot + ".>"},
	})
	if err != nil {
		return ReplayResult{}, fmt.Errorf("read EVENTS: %w", err)
	}
	var done uint64
	for done < info.State.LastSeq && info.State.Msgs > 0 {
		batch, err := cons.Fetch(replayBatch, jetstream.FetchMaxWait(opts.PollEvery*10))
		if err != nil {
			return ReplayResult{}, fmt.Errorf("read EVENTS: %w", err)
		}
		var msgs []bus.Msg
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return ReplayResult{}, fmt.Errorf("read EVENTS: %w", err)
			}
			msgs = append(msgs, bus.Msg{Subject: m.Subject(), Seq: md.Sequence.Stream, NumDelivered: 1, Data: m.Data(), Header: m.Headers(), Timestamp: md.Timestamp})
		}
		if err := batch.Error(); err != nil && len(msgs) == 0 {
			return ReplayResult{}, fmt.Errorf("read EVENTS: %w", err)
		}
		if len(msgs) == 0 {
			if ctx.Err() != nil {
				return ReplayResult{}, ctx.Err()
			}
			continue
		}
		if err := applyWithRetry(ctx, runner, msgs, opts.Logger); err != nil {
			return ReplayResult{}, err
		}
		done = msgs[len(msgs)-1].Seq
	}
	return ReplayResult{Events: info.State.Msgs, Took: time.Since(start)}, nil
}

// replayBatch is the events applied per replay transaction.
const replayBatch = 1000

// applyWithRetry retries a batch that failed for a passing reason (a lock
// conflict, a brief outage) and gives up, failing the replay, after a few
// attempts: a replay never skips an event.
func applyWithRetry(ctx context.Context, r *projections.Runner, msgs []bus.Msg, log *slog.Logger) error {
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if err = r.ApplyInOrder(ctx, msgs); err == nil {
			return nil
		}
		log.Warn("replay batch failed, retrying", "attempt", attempt, "first_seq", msgs[0].Seq, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	return fmt.Errorf("replay stopped at event seq %d..%d: %w", msgs[0].Seq, msgs[len(msgs)-1].Seq, err)
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
