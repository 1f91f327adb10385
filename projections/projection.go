// Package projections holds the contract and the runner shared by the
// projections: an ordered batch from one partition is applied in one
// Postgres transaction together with the partition's checkpoint and the
// messages it derives (a transactional outbox); after commit the outbox is
// published and the batch acknowledged. Redelivered messages at or below
// the checkpoint are skipped, so at-least-once delivery applies exactly once.
package projections

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

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

// Publisher publishes a projection's outbox and waits for every ack. A
// replay runner has none: it publishes nothing.
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

	mu    sync.Mutex
	parts map[int]*partState
}

// partState is what this process knows of a partition it applies. Batches
// of one partition never run concurrently within a process.
type partState struct {
	// committed is the checkpoint this process last committed; a
	// different value in the database means another instance ran the
	// partition since, and may have left an unpublished outbox.
	committed int64
	// unpublished is set from commit until the outbox is published.
	unpublished bool
	known       bool
}

// NewRunner returns the runner of the consumer called name.
func NewRunner(name string, pool *pgxpool.Pool, pub Publisher, proj Projector, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.Default()
	}
	return &Runner{name: name, pool: pool, pub: pub, proj: proj, log: log, parts: map[int]*partState{}}
}

func (r *Runner) state(partition int) *partState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.parts[partition]
	if st == nil {
		st = &partState{}
		r.parts[partition] = st
	}
	return st
}

// HandleBatch implements bus.BatchHandler: one transaction applies the
// batch, advances the checkpoint and replaces the partition's outbox row;
// after commit the outbox is published.
func (r *Runner) HandleBatch(ctx context.Context, partition int, msgs []bus.Msg) error {
	st := r.state(partition)
	out, err := r.apply(ctx, partition, msgs, st)
	if err != nil {
		return err
	}
	if len(out.msgs) > 0 && r.pub != nil {
		if err := r.pub.PublishAsyncBatch(ctx, out.msgs); err != nil {
			// Committed but not out: the next attempt republishes the row.
			return fmt.Errorf("publish outbox: %w", err)
		}
	}
	st.unpublished = false
	if out.after != nil {
		out.after(ctx)
	}
	return nil
}

type applied struct {
	msgs  []bus.OutMsg
	after func(ctx context.Context)
}

func (r *Runner) apply(ctx context.Context, partition int, msgs []bus.Msg, st *partState) (applied, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return applied{}, fmt.Errorf("begin batch: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	q := dbsqlc.New(tx)
	key := dbsqlc.CheckpointLockParams{Consumer: r.name, Partition: int32(partition)}
	checkpoint, err := q.CheckpointLock(ctx, key)
	if err != nil {
		return applied{}, fmt.Errorf("lock checkpoint: %w", err)
	}
	// Messages a previous batch committed but may not have published: ours
	// after a failed publish, or another instance's after a takeover.
	var pending []bus.OutMsg
	hadRows := st.known || st.unpublished
	if !st.known || st.unpublished || checkpoint != st.committed {
		rows, err := q.OutboxList(ctx, dbsqlc.OutboxListParams{Consumer: r.name, Partition: int32(partition)})
		if err != nil {
			return applied{}, fmt.Errorf("read outbox: %w", err)
		}
		for _, row := range rows {
			m, err := decodeOutbox(row.Payload)
			if err != nil {
				return applied{}, bus.Permanent(fmt.Errorf("decode outbox row %d: %w", row.Seq, err))
			}
			pending = append(pending, m...)
		}
		hadRows = len(rows) > 0
	}
	fresh := msgs[:0:0]
	for _, m := range msgs {
		if int64(m.Seq) > checkpoint {
			fresh = append(fresh, m)
		}
	}
	var out Output
	if len(fresh) > 0 {
		if out, err = r.proj.Apply(ctx, tx, partition, fresh); err != nil {
			return applied{}, classify(err)
		}
	}
	all := append(pending, out.Outbox...)
	last := checkpoint
	if len(fresh) > 0 {
		last = int64(fresh[len(fresh)-1].Seq)
	}
	if hadRows {
		// The previous row was published (or is folded into this one).
		if err := q.OutboxDeletePartition(ctx, dbsqlc.OutboxDeletePartitionParams{Consumer: r.name, Partition: int32(partition)}); err != nil {
			return applied{}, fmt.Errorf("clear outbox: %w", err)
		}
	}
	if len(all) > 0 {
		if err := q.OutboxInsert(ctx, dbsqlc.OutboxInsertParams{Consumer: r.name, Partition: int32(partition), Seq: last, Messages: int32(len(all)), Payload: encodeOutbox(all)}); err != nil {
			return applied{}, fmt.Errorf("store outbox: %w", err)
		}
	}
	if last != checkpoint {
		if err := q.CheckpointSet(ctx, dbsqlc.CheckpointSetParams{Consumer: r.name, Partition: int32(partition), LastSeq: last}); err != nil {
			return applied{}, fmt.Errorf("advance checkpoint: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return applied{}, classify(fmt.Errorf("commit batch: %w", err))
	}
	st.known, st.committed, st.unpublished = true, last, len(all) > 0
	if len(pending) > 0 {
		r.log.Info("republishing outbox left by an interrupted batch", "consumer", r.name, "partition", partition, "messages", len(pending))
	}
	return applied{msgs: all, after: out.AfterPublish}, nil
}

// encodeOutbox frames messages as (subject, msg id, data) length-prefixed
// triples; one row per batch keeps the outbox to one insert.
func encodeOutbox(msgs []bus.OutMsg) []byte {
	n := 0
	for _, m := range msgs {
		n += len(m.Subject) + len(m.MsgID) + len(m.Data) + 3*binary.MaxVarintLen32
	}
	b := make([]byte, 0, n)
	for _, m := range msgs {
		b = binary.AppendUvarint(b, uint64(len(m.Subject)))
		b = append(b, m.Subject...)
		b = binary.AppendUvarint(b, uint64(len(m.MsgID)))
		b = append(b, m.MsgID...)
		b = binary.AppendUvarint(b, uint64(len(m.Data)))
		b = append(b, m.Data...)
	}
	return b
}

func decodeOutbox(b []byte) ([]bus.OutMsg, error) {
	var out []bus.OutMsg
	field := func() ([]byte, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errors.New("truncated outbox payload")
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, nil
	}
	for len(b) > 0 {
		subj, err := field()
		if err != nil {
			return nil, err
		}
		id, err := field()
		if err != nil {
			return nil, err
		}
		data, err := field()
		if err != nil {
			return nil, err
		}
		out = append(out, bus.OutMsg{Subject: string(subj), MsgID: string(id), Data: data})
	}
	return out, nil
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
