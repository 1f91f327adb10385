// Package projections holds the contract and the runner shared by the
// projections: an ordered batch from one partition is applied in one
// Postgres transaction together with the partition's checkpoint and the
// messages it derives (a transactional outbox); after commit the outbox is
// published and the batch acknowledged. Redelivered messages at or below
// the checkpoint are skipped, so at-least-once delivery applies exactly once.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Projector applies the messages of one partition, in stream order, inside
// tx. It returns the durable messages to publish once tx commits and an
// optional callback run after they were published (for best-effort
// notifications).
type Projector interface {
	Apply(ctx context.Context, tx pgx.Tx, partition int, msgs []bus.Msg) (Output, error)
}

// Output is what a batch derives.
type Output struct {
	// Outbox messages are stored with the batch and published after commit
	// with their MsgID, so a crash in between republishes them harmlessly.
	Outbox []bus.OutMsg
	// AfterPublish runs after the outbox was published; failures there are
	// not retried (used for core-NATS notifications).
	AfterPublish func(ctx context.Context)
}

// Publisher publishes a projection's outbox and waits for every ack.
type Publisher interface {
	PublishAsyncBatch(ctx context.Context, msgs []bus.OutMsg) error
}

// Runner adapts a Projector to the bus's partitioned batch handler.
type Runner struct {
	name string
	pool *pgxpool.Pool
	pub  Publisher
	proj Projector
	log  *slog.Logger
}

// NewRunner returns the runner of the consumer called name.
func NewRunner(name string, pool *pgxpool.Pool, pub Publisher, proj Projector, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.Default()
	}
	return &Runner{name: name, pool: pool, pub: pub, proj: proj, log: log}
}

// HandleBatch implements bus.BatchHandler.
func (r *Runner) HandleBatch(ctx context.Context, partition int, msgs []bus.Msg) error {
	// A previous run may have committed a batch and died before publishing
	// its outbox: publish what is left before going on, keeping order.
	if err := r.flushOutbox(ctx, partition); err != nil {
		return err
	}
	out, last, err := r.apply(ctx, partition, msgs)
	if err != nil {
		return err
	}
	if len(out.Outbox) > 0 {
		if err := r.pub.PublishAsyncBatch(ctx, out.Outbox); err != nil {
			return fmt.Errorf("publish outbox: %w", err)
		}
		q := dbsqlc.New(r.pool)
		if err := q.OutboxDelete(ctx, dbsqlc.OutboxDeleteParams{Consumer: r.name, Partition: int32(partition), ThroughSeq: int64(last)}); err != nil {
			// The messages are out; a later flush republishes them and
			// JetStream (or the consumers' keys) drop the copies.
			r.log.Warn("delete published outbox", "consumer", r.name, "partition", partition, "err", err)
		}
	}
	if out.AfterPublish != nil {
		out.AfterPublish(ctx)
	}
	return nil
}

func (r *Runner) apply(ctx context.Context, partition int, msgs []bus.Msg) (Output, uint64, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return Output{}, 0, fmt.Errorf("begin batch: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	q := dbsqlc.New(tx)
	key := dbsqlc.CheckpointEnsureParams{Consumer: r.name, Partition: int32(partition)}
	if err := q.CheckpointEnsure(ctx, key); err != nil {
		return Output{}, 0, fmt.Errorf("ensure checkpoint: %w", err)
	}
	applied, err := q.CheckpointLock(ctx, dbsqlc.CheckpointLockParams{Consumer: r.name, Partition: int32(partition)})
	if err != nil {
		return Output{}, 0, fmt.Errorf("lock checkpoint: %w", err)
	}
	fresh := msgs[:0:0]
	for _, m := range msgs {
		if int64(m.Seq) > applied {
			fresh = append(fresh, m)
		}
	}
	if len(fresh) == 0 {
		return Output{}, 0, nil
	}
	out, err := r.proj.Apply(ctx, tx, partition, fresh)
	if err != nil {
		return Output{}, 0, classify(err)
	}
	last := fresh[len(fresh)-1].Seq
	if len(out.Outbox) > 0 {
		p := dbsqlc.OutboxInsertParams{Consumer: r.name, Partition: int32(partition)}
		for i, m := range out.Outbox {
			p.Seqs = append(p.Seqs, int64(last))
			p.Ords = append(p.Ords, int32(i))
			p.Subjects = append(p.Subjects, m.Subject)
			p.MsgIds = append(p.MsgIds, m.MsgID)
			p.Payloads = append(p.Payloads, m.Data)
		}
		if err := q.OutboxInsert(ctx, p); err != nil {
			return Output{}, 0, fmt.Errorf("store outbox: %w", err)
		}
	}
	if err := q.CheckpointSet(ctx, dbsqlc.CheckpointSetParams{Consumer: r.name, Partition: int32(partition), LastSeq: int64(last)}); err != nil {
		return Output{}, 0, fmt.Errorf("advance checkpoint: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Output{}, 0, classify(fmt.Errorf("commit batch: %w", err))
	}
	return out, last, nil
}

func (r *Runner) flushOutbox(ctx context.Context, partition int) error {
	if r.pub == nil {
		return nil // a replay runner publishes nothing
	}
	q := dbsqlc.New(r.pool)
	rows, err := q.OutboxList(ctx, dbsqlc.OutboxListParams{Consumer: r.name, Partition: int32(partition)})
	if err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	msgs := make([]bus.OutMsg, len(rows))
	for i, row := range rows {
		msgs[i] = bus.OutMsg{Subject: row.Subject, MsgID: row.MsgID, Data: row.Payload}
	}
	if err := r.pub.PublishAsyncBatch(ctx, msgs); err != nil {
		return fmt.Errorf("republish outbox: %w", err)
	}
	last := rows[len(rows)-1].Seq
	if err := q.OutboxDelete(ctx, dbsqlc.OutboxDeleteParams{Consumer: r.name, Partition: int32(partition), ThroughSeq: last}); err != nil {
		return fmt.Errorf("delete outbox: %w", err)
	}
	r.log.Info("republished outbox left by an interrupted batch", "consumer", r.name, "partition", partition, "messages", len(rows))
	return nil
}

// Reset forgets the consumer's checkpoints and outbox (replay from start).
func Reset(ctx context.Context, db dbsqlc.DBTX, name string) error {
	q := dbsqlc.New(db)
	if err := q.CheckpointReset(ctx, name); err != nil {
		return fmt.Errorf("reset checkpoints: %w", err)
	}
	if err := q.OutboxReset(ctx, name); err != nil {
		return fmt.Errorf("reset outbox: %w", err)
	}
	return nil
}

// classify keeps permanent errors permanent and makes lock conflicts
// (deadlock, serialization) plain retryable errors.
func classify(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
		return fmt.Errorf("batch lost a lock race, retrying: %w", err)
	}
	return err
}
