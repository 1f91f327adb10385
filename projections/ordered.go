package projections

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// ApplyInOrder applies messages taken from the whole stream in its global
// order (a replay) in one transaction, and advances the checkpoint of every
// partition they came from, so the partitioned consumers resume after them.
// Nothing is published: replayed history must not act again downstream.
func (r *Runner) ApplyInOrder(ctx context.Context, msgs []bus.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin replay batch: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := r.proj.Apply(ctx, tx, msgs); err != nil {
		return classify(err)
	}
	last := map[int]int64{}
	for _, m := range msgs {
		p, err := PartitionOf(m.Subject)
		if err != nil {
			return err
		}
		last[p] = int64(m.Seq)
	}
	params := dbsqlc.CheckpointAdvanceManyParams{Consumer: r.name}
	for p, seq := range last {
		params.Partitions = append(params.Partitions, int32(p))
		params.Seqs = append(params.Seqs, seq)
	}
	if err := dbsqlc.New(tx).CheckpointAdvanceMany(ctx, params); err != nil {
		return fmt.Errorf("advance checkpoints: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return classify(fmt.Errorf("commit replay batch: %w", err))
	}
	return nil
}

// PartitionOf reads the partition from a stored subject
// (<root>.<root>.<partition>.<token>, e.g. hogsend.events.7.ab12).
func PartitionOf(subject string) (int, error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 {
		return 0, fmt.Errorf("subject %q has no partition token", subject)
	}
	p, err := strconv.Atoi(parts[2])
	if err != nil {
		return 0, fmt.Errorf("subject %q has no partition token", subject)
	}
	return p, nil
}
