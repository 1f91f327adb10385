package posthogsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/streams"
)

// ensureConsumer makes sure the durable exists before RunWorkQueue pulls
// from it, and returns the consumer's creation time: messages stored
// before it predate the mirror and are skipped.
//
// Why: ACTIVITY keeps 30 days, and a durable created with the default
// DeliverAll would replay all of it to PostHog on a fresh install (or when
// POSTHOG_API_KEY is first set). bus.WorkQueueConfig has no DeliverPolicy,
// and RunWorkQueue creates-or-updates the durable with DeliverAll, which
// the server refuses to change afterwards ("deliver policy can not be
// updated"), so the durable cannot be pre-created with DeliverNew. Instead:
//
//  1. a missing durable is created here with the very configuration
//     RunWorkQueue uses (its later update is then a no-op) and reset to
//     the stream's last sequence + 1, which is what DeliverNew does;
//  2. as a safety net the handler also skips messages stored before the
//     consumer was created. That covers a crash between creation and
//     reset, and NATS servers without the consumer reset API: there the
//     backlog is read once and acked without being sent.
//
// An existing durable is left as it is, so a restart continues after the
// last message handled, including transitions that happened while the
// mirror was down or turned off.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (time.Time, error) {
	cons, err := js.Consumer(ctx, streams.StreamActivity, ConsumerName)
	if err == nil {
		return cons.CachedInfo().Created, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return time.Time{}, fmt.Errorf("look up consumer %s: %w", ConsumerName, err)
	}
	// Read the end of the stream before the durable exists: whatever is
	// stored after this point is either after the reset sequence or, if
	// it raced the creation, before Created and skipped by the handler.
	stream, err := js.Stream(ctx, streams.StreamActivity)
	if err != nil {
		return time.Time{}, fmt.Errorf("look up stream %s: %w", streams.StreamActivity, err)
	}
	last := stream.CachedInfo().State.LastSeq
	cons, err = js.CreateOrUpdateConsumer(ctx, streams.StreamActivity, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		FilterSubject: FilterSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("create consumer %s: %w", ConsumerName, err)
	}
	created := cons.CachedInfo().Created
	if last == 0 {
		return created, nil
	}
	if _, err := js.ResetConsumerToSequence(ctx, streams.StreamActivity, ConsumerName, last+1); err != nil {
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		log.Warn("skip ACTIVITY backlog by consumer reset failed; skipping it message by message",
			"last_seq", last, "err", err)
		return created, nil
	}
	log.Info("new PostHog mirror starts at the end of ACTIVITY", "start_seq", last+1)
	return created, nil
}
