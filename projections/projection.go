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
	"github.com/nats-io/nats.go"

	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Projector applies messages in order inside tx. Messages of one
// partition come in stream order; messages of different partitions may be
// interleaved (a commit group spans partitions). It returns the durable
// messages to publish once tx commits and an optional callback run after
// they were published (for best-effort notifications).
type Projector interface {
	Apply(ctx context.Context, tx pgx.Tx, msgs []bus.Msg) (Output, error)
}

// Output is what a batch derives.
type Output struct {
	// Outbox messages are stored with the batch and published after commit
	// with their MsgID, so a crash in between republishes them harmlessly.
	Outbox []bus.OutMsg
	// OutboxFrom holds, for each Outbox message, the stream sequence of the
	// input message it derives from (it tells which partition owns it).
	OutboxFrom []uint64
	// AfterPublish runs after the outbox was published; failures there are
	// not retried (used for core-NATS notifications).
	AfterPublish func(ctx context.Context)
}

// Publisher publishes a projection's outbox and waits for every ack. A
// replay runner has none: it publishes nothing.
type Publisher interface {
	PublishAsyncBatch(ctx context.Context, msgs []bus.OutMsg) error
}

// maxCommitters bounds the transactions a runner has open at once; the
// other partitions' batches queue and join the next commit group.
const maxCommitters = 2

// Runner adapts a Projector to the bus's partitioned batch handler.
//
// Batches of several partitions that are ready at the same time are
// applied together in one transaction (group commit): while a transaction
// runs, batches arriving from other partitions queue, and the next
// transaction takes them all. At low rates a batch commits alone and at
// once; under load transactions grow instead of multiplying, which is what
// keeps the per-event cost of the checkpoints, the outbox and the commit
// small.
type Runner struct {
	name string
	pool *pgxpool.Pool
	pub  Publisher
	proj Projector
	log  *slog.Logger

	mu         sync.Mutex
	parts      map[int]*partState
	queue      []*request
	committers int
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

type request struct {
	partition int
	msgs      []bus.Msg
	done      chan error
	// lead tells a waiting request to become the committer.
	lead chan struct{}
}

// NewRunner returns the runner of the consumer called name.
func NewRunner(name string, pool *pgxpool.Pool, pub Publisher, proj Projector, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.Default()
	}
	return &Runner{name: name, pool: pool, pub: pub, proj: proj, log: log, parts: map[int]*partState{}}
}

func (r *Runner) state(partition int) *partState {
	st := r.parts[partition]
	if st == nil {
		st = &partState{}
		r.parts[partition] = st
	}
	return st
}

// HandleBatch implements bus.BatchHandler. The caller that finds fewer
// than maxCommitters transactions running becomes a committer: it applies
// every queued batch, its own included, in one group. Afterwards it hands
// the committer role to the oldest waiting batch (so no partition is kept
// from fetching by serving the others) and returns its own outcome.
func (r *Runner) HandleBatch(ctx context.Context, partition int, msgs []bus.Msg) error {
	req := &request{partition: partition, msgs: msgs, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	r.mu.Lock()
	r.queue = append(r.queue, req)
	if r.committers >= maxCommitters {
		r.mu.Unlock()
		select {
		case err := <-req.done:
			return err
		case <-req.lead:
			r.mu.Lock()
		}
	} else {
		r.committers++
	}
	group := r.queue
	r.queue = nil
	r.mu.Unlock()
	if len(group) > 0 { // the other committer may have taken it meanwhile
		r.commitGroup(ctx, group)
	}
	r.mu.Lock()
	if len(r.queue) > 0 {
		r.queue[0].lead <- struct{}{} // the role passes on; the count stays
	} else {
		r.committers--
	}
	r.mu.Unlock()
	return <-req.done
}

// commitGroup applies a group; if the group fails, each batch is tried in
// a transaction of its own so one bad batch cannot hold the others back.
func (r *Runner) commitGroup(ctx context.Context, group []*request) {
	if len(group) == 1 {
		group[0].done <- r.commit(ctx, group)
		return
	}
	if err := r.commit(ctx, group); err == nil {
		for _, req := range group {
			req.done <- nil
		}
		return
	}
	for _, req := range group {
		req.done <- r.commit(ctx, []*request{req})
	}
}

// commit applies the batches of group (distinct partitions) in one
// transaction, then publishes their outboxes.
func (r *Runner) commit(ctx context.Context, group []*request) error {
	r.mu.Lock()
	states := make([]*partState, len(group))
	for i, req := range group {
		states[i] = r.state(req.partition)
	}
	r.mu.Unlock()
	out, err := r.apply(ctx, group, states)
	if err != nil {
		return err
	}
	if len(out.msgs) > 0 && r.pub != nil {
		if err := r.pub.PublishAsyncBatch(ctx, out.msgs); err != nil {
			// Committed but not out: the next attempt republishes the rows.
			return fmt.Errorf("publish outbox: %w", err)
		}
	}
	for _, st := range states {
		st.unpublished = false
	}
	if out.after != nil {
		out.after(ctx)
	}
	return nil
}

type applied struct {
	msgs  []bus.OutMsg
	after func(ctx context.Context)
}

func (r *Runner) apply(ctx context.Context, group []*request, states []*partState) (applied, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return applied{}, fmt.Errorf("begin batch: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	q := dbsqlc.New(tx)

	partitions := make([]int32, len(group))
	for i, req := range group {
		partitions[i] = int32(req.partition)
	}
	rows, err := q.CheckpointLockMany(ctx, dbsqlc.CheckpointLockManyParams{Consumer: r.name, Partitions: partitions})
	if err != nil {
		return applied{}, fmt.Errorf("lock checkpoints: %w", err)
	}
	checkpoint := make(map[int]int64, len(rows))
	for _, row := range rows {
		checkpoint[int(row.Partition)] = row.LastSeq
	}

	// Messages earlier batches committed but may not have published: ours
	// after a failed publish, or another instance's after a takeover.
	var stale []int32
	for i, req := range group {
		st := states[i]
		if !st.known || st.unpublished || checkpoint[req.partition] != st.committed {
			stale = append(stale, int32(req.partition))
		}
	}
	pending := map[int][]bus.OutMsg{}
	hadRows := map[int]bool{}
	for i, req := range group {
		hadRows[req.partition] = states[i].known
	}
	if len(stale) > 0 {
		leftovers, err := q.OutboxListMany(ctx, dbsqlc.OutboxListManyParams{Consumer: r.name, Partitions: stale})
		if err != nil {
			return applied{}, fmt.Errorf("read outbox: %w", err)
		}
		for _, p := range stale {
			hadRows[int(p)] = false
		}
		for _, row := range leftovers {
			m, err := decodeOutbox(row.Payload)
			if err != nil {
				return applied{}, bus.Permanent(fmt.Errorf("decode outbox row %d: %w", row.Seq, err))
			}
			pending[int(row.Partition)] = append(pending[int(row.Partition)], m...)
			hadRows[int(row.Partition)] = true
		}
	}

	var fresh []bus.Msg
	partOf := map[uint64]int{}
	last := map[int]int64{}
	for _, req := range group {
		cp := checkpoint[req.partition]
		last[req.partition] = cp
		for _, m := range req.msgs {
			if int64(m.Seq) > cp {
				fresh = append(fresh, m)
				partOf[m.Seq] = req.partition
				last[req.partition] = int64(m.Seq)
			}
		}
	}
	var out Output
	if len(fresh) > 0 {
		if out, err = r.proj.Apply(ctx, tx, fresh); err != nil {
			return applied{}, classify(err)
		}
	}
	// derived starts as the leftovers and gains this batch's messages;
	// leftover counts are taken first, for the log below.
	leftover := make(map[int]int, len(pending))
	for p, msgs := range pending {
		leftover[p] = len(msgs)
	}
	derived := pending
	if len(out.OutboxFrom) != len(out.Outbox) {
		return applied{}, fmt.Errorf("projector %s: %d outbox messages but %d origins", r.name, len(out.Outbox), len(out.OutboxFrom))
	}
	for i, m := range out.Outbox {
		p, ok := partOf[out.OutboxFrom[i]]
		if !ok {
			// A message filed under no input of the batch would be lost.
			return applied{}, fmt.Errorf("projector %s: outbox message from sequence %d, which is not in the batch", r.name, out.OutboxFrom[i])
		}
		derived[p] = append(derived[p], m)
	}

	end := dbsqlc.OutboxReplaceAndAdvanceParams{Consumer: r.name,
		ClearPartitions: []int32{}, OutPartitions: []int32{}, OutSeqs: []int64{}, OutMessages: []int32{}, OutPayloads: [][]byte{},
		CpPartitions: []int32{}, CpSeqs: []int64{}}
	var all []bus.OutMsg
	for _, req := range group {
		p := req.partition
		if hadRows[p] {
			end.ClearPartitions = append(end.ClearPartitions, int32(p)) // published, or folded into the new row
		}
		if msgs := derived[p]; len(msgs) > 0 {
			end.OutPartitions = append(end.OutPartitions, int32(p))
			end.OutSeqs = append(end.OutSeqs, last[p])
			end.OutMessages = append(end.OutMessages, int32(len(msgs)))
			end.OutPayloads = append(end.OutPayloads, encodeOutbox(msgs))
			all = append(all, msgs...)
		}
		if last[p] != checkpoint[p] {
			end.CpPartitions = append(end.CpPartitions, int32(p))
			end.CpSeqs = append(end.CpSeqs, last[p])
		}
	}
	if len(end.ClearPartitions)+len(end.OutPartitions)+len(end.CpPartitions) > 0 {
		if err := q.OutboxReplaceAndAdvance(ctx, end); err != nil {
			return applied{}, fmt.Errorf("store outbox and checkpoints: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return applied{}, classify(fmt.Errorf("commit batch: %w", err))
	}
	for i, req := range group {
		st := states[i]
		st.known, st.committed, st.unpublished = true, last[req.partition], len(derived[req.partition]) > 0
		if n := leftover[req.partition]; n > 0 {
			r.log.Info("republishing outbox left by an interrupted batch", "consumer", r.name, "partition", req.partition, "messages", n)
		}
	}
	return applied{msgs: all, after: out.AfterPublish}, nil
}

// encodeOutbox frames messages as length-prefixed (subject, msg id, data,
// header count, header name/value pairs); one row per partition and batch
// keeps the outbox to one insert.
func encodeOutbox(msgs []bus.OutMsg) []byte {
	n := 0
	for _, m := range msgs {
		n += len(m.Subject) + len(m.MsgID) + len(m.Data) + 4*binary.MaxVarintLen32
	}
	b := make([]byte, 0, n)
	str := func(v string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	for _, m := range msgs {
		str(m.Subject)
		str(m.MsgID)
		b = binary.AppendUvarint(b, uint64(len(m.Data)))
		b = append(b, m.Data...)
		pairs := 0
		for _, vs := range m.Header {
			pairs += len(vs)
		}
		b = binary.AppendUvarint(b, uint64(pairs))
		for k, vs := range m.Header {
			for _, v := range vs {
				str(k)
				str(v)
			}
		}
	}
	return b
}

func decodeOutbox(b []byte) ([]bus.OutMsg, error) {
	var out []bus.OutMsg
	errTrunc := errors.New("truncated outbox payload")
	uv := func() (uint64, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, errTrunc
		}
		b = b[k:]
		return n, nil
	}
	field := func() ([]byte, error) {
		n, err := uv()
		if err != nil || uint64(len(b)) < n {
			return nil, errTrunc
		}
		v := b[:n]
		b = b[n:]
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
		m := bus.OutMsg{Subject: string(subj), MsgID: string(id), Data: data}
		pairs, err := uv()
		if err != nil {
			return nil, err
		}
		for range pairs {
			k, err := field()
			if err != nil {
				return nil, err
			}
			v, err := field()
			if err != nil {
				return nil, err
			}
			if m.Header == nil {
				m.Header = nats.Header{}
			}
			m.Header.Add(string(k), string(v))
		}
		out = append(out, m)
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
