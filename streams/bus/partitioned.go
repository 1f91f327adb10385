package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/streams"
)

// PinGroup is the priority group of every partition consumer.
const PinGroup = "pin"

// pinHeader is set by the server on every message it delivers to the
// pinned client; a new value means the pin moved.
const pinHeader = "Nats-Pin-Id"

// BatchHandler applies ordered batches of one partition.
//
// msgs are in stream order and hold no message twice. A batch may be
// delivered again after a crash or a failover, so the handler must be
// idempotent: apply the batch and record the partition's checkpoint (last
// applied Seq) in one transaction, and skip messages at or below it. The
// runner guarantees at most one batch in flight per partition across all
// instances. Return Permanent for a message that can never be applied, and
// any other error to have the batch retried.
type BatchHandler interface {
	HandleBatch(ctx context.Context, partition int, msgs []Msg) error
}

// BatchHandlerFunc adapts a function to BatchHandler.
type BatchHandlerFunc func(ctx context.Context, partition int, msgs []Msg) error

// HandleBatch calls f.
func (f BatchHandlerFunc) HandleBatch(ctx context.Context, partition int, msgs []Msg) error {
	return f(ctx, partition, msgs)
}

// PartitionedConfig configures an ordered, partitioned consumer group.
type PartitionedConfig struct {
	JetStream jetstream.JetStream
	// Stream is streams.StreamEvents or streams.StreamActivity.
	Stream string
	// Root is the stream's subject root (streams.EventsRoot, ...).
	Root string
	// Name prefixes the durables <Name>-p00 … <Name>-p15; it is also the
	// consumer label of metrics and the source of dead letters.
	Name string
	// Partitions this instance serves (default all). Several instances
	// may serve the same partition: one is active, the others stand by.
	Partitions []int
	// BatchSize is the most messages handled in one HandleBatch call and
	// the consumers' MaxAckPending (default 256).
	BatchSize int
	// PinnedTTL is how long a partition stays pinned to an instance that
	// stopped pulling: the failover time (default 5s, at least 1s).
	PinnedTTL time.Duration
	// AckWait is the redelivery timeout of a message handed to an instance
	// that vanished (default PinnedTTL, at least PinnedTTL). The runner
	// extends it while a handler works.
	AckWait time.Duration
	// FetchWait is how long one pull waits for the first message of a
	// batch (default PinnedTTL/4, capped at 2s; below PinnedTTL so the
	// active instance keeps its pin while idle).
	FetchWait time.Duration
	// Linger bounds the wait for the rest of a batch once its first
	// message came (default 2ms). Usually the pull is sized to what is
	// pending and returns at once.
	Linger time.Duration
	// DeliverPolicy of new durables (default DeliverAllPolicy).
	DeliverPolicy jetstream.DeliverPolicy
	// StartTime is where new durables begin with
	// DeliverByStartTimePolicy. A durable that exists keeps its own start:
	// a deliver policy cannot change, and its position is what matters.
	StartTime time.Time
	// MaxAttempts is how often a batch, then a single message, is tried
	// before the runner splits it up or dead-letters it (default 5).
	MaxAttempts int
	// Backoff spaces the attempts (default Initial 100ms, Max 5s).
	Backoff Backoff
	// DeadLetters records messages given up on; nil logs them instead.
	DeadLetters DeadLetterRecorder
	// DrainTimeout bounds how long the batch in progress may take to
	// finish after ctx is cancelled (default 30s).
	DrainTimeout time.Duration
	Logger       *slog.Logger
	// Registerer receives the consumer metrics; nil records nothing.
	Registerer prometheus.Registerer
}

func (c *PartitionedConfig) setDefaults() error {
	switch {
	case c.JetStream == nil:
		return errors.New("JetStream is required")
	case c.DeliverPolicy == jetstream.DeliverByStartTimePolicy && c.StartTime.IsZero():
		return errors.New("StartTime is required with DeliverByStartTimePolicy")
	case c.Stream == "":
		return errors.New("Stream is required")
	case c.Root == "":
		return errors.New("Root is required")
	case c.Name == "" || strings.ContainsAny(c.Name, ".*> \t"):
		return fmt.Errorf("Name %q must be a non-empty durable name", c.Name)
	}
	if len(c.Partitions) == 0 {
		c.Partitions = AllPartitions()
	}
	seen := map[int]bool{}
	for _, p := range c.Partitions {
		if p < 0 || p >= streams.Partitions {
			return fmt.Errorf("Partitions: %d out of range 0-%d", p, streams.Partitions-1)
		}
		if seen[p] {
			return fmt.Errorf("Partitions: %d listed twice", p)
		}
		seen[p] = true
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.PinnedTTL == 0 {
		c.PinnedTTL = 5 * time.Second
	}
	if c.PinnedTTL < time.Second {
		return fmt.Errorf("PinnedTTL %s is below 1s", c.PinnedTTL)
	}
	if c.AckWait == 0 {
		c.AckWait = c.PinnedTTL
	}
	if c.AckWait < c.PinnedTTL {
		return fmt.Errorf("AckWait %s is below PinnedTTL %s", c.AckWait, c.PinnedTTL)
	}
	if c.FetchWait == 0 {
		c.FetchWait = min(c.PinnedTTL/4, 2*time.Second)
	}
	if c.FetchWait < 10*time.Millisecond || c.FetchWait >= c.PinnedTTL {
		return fmt.Errorf("FetchWait %s must be between 10ms and PinnedTTL %s", c.FetchWait, c.PinnedTTL)
	}
	if c.Linger <= 0 {
		c.Linger = 2 * time.Millisecond
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.Backoff.Initial == 0 {
		c.Backoff.Initial = 100 * time.Millisecond
	}
	if c.Backoff.Max == 0 {
		c.Backoff.Max = 5 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = defaultDrainTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// AllPartitions returns 0 … streams.Partitions-1.
func AllPartitions() []int {
	ps := make([]int, streams.Partitions)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// ParsePartitions parses a partition list such as "0-7,9" (the
// --partitions flag). An empty string means all partitions.
func ParsePartitions(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return AllPartitions(), nil
	}
	seen := map[int]bool{}
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("parse partitions %q: bad number %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				return nil, fmt.Errorf("parse partitions %q: bad number %q", s, hi)
			}
		}
		if a < 0 || b >= streams.Partitions || a > b {
			return nil, fmt.Errorf("parse partitions %q: %q is not within 0-%d", s, part, streams.Partitions-1)
		}
		for p := a; p <= b; p++ {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// DurableName is the durable consumer of partition p of group name.
func DurableName(name string, p int) string { return fmt.Sprintf("%s-p%02d", name, p) }

// Partitioned consumes the partitions of one stream in order: one durable
// per partition, pinned to one instance at a time, one batch in flight.
type Partitioned struct {
	cfg     PartitionedConfig
	h       BatchHandler
	metrics *Metrics
	// pending holds the last NumPending seen per served partition, summed
	// into the pending gauge.
	pending []atomic.Uint64
}

// NewPartitioned validates cfg and returns a runner; Run starts it.
func NewPartitioned(cfg PartitionedConfig, h BatchHandler) (*Partitioned, error) {
	if h == nil {
		return nil, errors.New("new partitioned consumer: handler is required")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("new partitioned consumer %s: %w", cfg.Name, err)
	}
	m, err := NewMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new partitioned consumer %s: %w", cfg.Name, err)
	}
	return &Partitioned{cfg: cfg, h: h, metrics: m, pending: make([]atomic.Uint64, len(cfg.Partitions))}, nil
}

// RunPartitioned is NewPartitioned followed by Run.
func RunPartitioned(ctx context.Context, cfg PartitionedConfig, h BatchHandler) error {
	r, err := NewPartitioned(cfg, h)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// consumerConfigFor is consumerConfig(p), keeping the deliver policy and
// start of the durable when it exists already.
func (r *Partitioned) consumerConfigFor(ctx context.Context, p int) jetstream.ConsumerConfig {
	cfg := r.consumerConfig(p)
	if cfg.DeliverPolicy != jetstream.DeliverByStartTimePolicy {
		return cfg
	}
	if c, err := r.cfg.JetStream.Consumer(ctx, r.cfg.Stream, cfg.Durable); err == nil {
		old := c.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartTime = old.DeliverPolicy, old.OptStartTime
	}
	return cfg
}

func (r *Partitioned) consumerConfig(p int) jetstream.ConsumerConfig {
	var start *time.Time
	if r.cfg.DeliverPolicy == jetstream.DeliverByStartTimePolicy {
		t := r.cfg.StartTime
		start = &t
	}
	return jetstream.ConsumerConfig{
		OptStartTime:  start,
		Durable:       DurableName(r.cfg.Name, p),
		Description:   fmt.Sprintf("%s, partition %d (ordered, pinned)", r.cfg.Name, p),
		FilterSubject: streams.PartitionFilter(r.cfg.Root, p),
		DeliverPolicy: r.cfg.DeliverPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.cfg.AckWait,
		// The runner, not the server, gives up on a message: a server-side
		// limit would silently skip it and break the partition's order.
		MaxDeliver: -1,
		// One batch in flight: what a crashed instance held is all that can
		// come back out of order, and the next holder sorts it.
		MaxAckPending:  r.cfg.BatchSize,
		PriorityGroups: []string{PinGroup},
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PinnedTTL:      r.cfg.PinnedTTL,
	}
}

// Run creates or updates the durables of the served partitions and
// consumes them until ctx is cancelled. On cancel it finishes the batch in
// progress (within DrainTimeout), hands back messages it fetched but did
// not start, and returns nil. It returns an error when a durable cannot be
// created or the connection is closed.
func (r *Partitioned) Run(ctx context.Context) error {
	parts := make([]*partition, len(r.cfg.Partitions))
	for i, p := range r.cfg.Partitions {
		cons, err := r.cfg.JetStream.CreateOrUpdateConsumer(ctx, r.cfg.Stream, r.consumerConfigFor(ctx, p))
		if err != nil {
			return fmt.Errorf("create consumer %s: %w", DurableName(r.cfg.Name, p), err)
		}
		parts[i] = &partition{r: r, idx: i, p: p,
			log: r.cfg.Logger.With("consumer", r.cfg.Name, "partition", p)}
		parts[i].cons.Store(&cons)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	for i, pt := range parts {
		wg.Go(func() {
			errs[i] = pt.run(ctx)
			if errs[i] != nil {
				// The connection is gone: every partition fails alike, and
				// the caller decides whether to restart.
				cancel()
			}
			pt.wg.Wait()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Lag returns, per served partition, the messages not yet acknowledged
// (pending plus in flight), for readiness checks and the pending gauge.
func (r *Partitioned) Lag(ctx context.Context) (map[int]uint64, error) {
	lag := make(map[int]uint64, len(r.cfg.Partitions))
	var total uint64
	for i, p := range r.cfg.Partitions {
		c, err := r.cfg.JetStream.Consumer(ctx, r.cfg.Stream, DurableName(r.cfg.Name, p))
		if err != nil {
			return nil, fmt.Errorf("get consumer %s: %w", DurableName(r.cfg.Name, p), err)
		}
		info := c.CachedInfo()
		n := info.NumPending + uint64(info.NumAckPending)
		lag[p] = n
		total += info.NumPending
		r.pending[i].Store(info.NumPending)
	}
	r.metrics.setPending(r.cfg.Name, total)
	return lag, nil
}

// Reset deletes the durables of group name on stream, so the next Run
// starts again according to its DeliverPolicy (a replay from the start
// with the default). Stop every instance first.
func Reset(ctx context.Context, js jetstream.JetStream, stream, name string) error {
	for p := range streams.Partitions {
		err := js.DeleteConsumer(ctx, stream, DurableName(name, p))
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("delete consumer %s: %w", DurableName(name, p), err)
		}
	}
	return nil
}

func (r *Partitioned) setPending(idx int, n uint64) {
	if r.metrics == nil {
		return
	}
	r.pending[idx].Store(n)
	var total uint64
	for i := range r.pending {
		total += r.pending[i].Load()
	}
	r.metrics.setPending(r.cfg.Name, total)
}

// partition is the loop of one partition.
type partition struct {
	r   *Partitioned
	idx int
	p   int
	// cons is replaced when the durable is recreated; the pin keeper reads
	// it concurrently.
	cons atomic.Pointer[jetstream.Consumer]
	log  *slog.Logger
	// lastPin and lastDSeq are the pin id and the consumer (delivery)
	// sequence of the last message received. While the pin stays and
	// delivery sequences are contiguous, every delivery came to this
	// instance and was settled before the next pull.
	lastPin  string
	lastDSeq uint64
	// lastPull is when the last pull was sent (unix ns); the server
	// resets the pin timer on each. pulling is set while the loop waits
	// for a pull's answer.
	lastPull atomic.Int64
	pulling  atomic.Bool
	// wg tracks keepalive pulls still waiting for the server's answer.
	wg sync.WaitGroup
}

func (pt *partition) consumer() jetstream.Consumer { return *pt.cons.Load() }

func (pt *partition) lastPullTime() time.Time { return time.Unix(0, pt.lastPull.Load()) }

// held is a fetched message with its parsed metadata.
type held struct {
	jm   jetstream.Msg
	msg  Msg
	pin  string
	dseq uint64
}

var (
	errStopped       = errors.New("runner stopped")
	errBatchReleased = errors.New("batch released")
)

func (pt *partition) run(ctx context.Context) error {
	cfg := &pt.r.cfg
	stopPin := pt.keepPin()
	defer stopPin()
	var batch []held
	// verify is set until the instance has checked that nothing before
	// its batch is still out with another instance (see checkComplete).
	verify := true
	missing := 0
	failures := 0
	for {
		if ctx.Err() != nil {
			pt.release(batch)
			return nil
		}
		got, err := pt.fetchBatch(ctx, batch, missing)
		for _, jm := range got {
			h, perr := toHeld(jm)
			if perr != nil {
				pt.log.Error("drop message without metadata", "error", perr)
				continue
			}
			if h.pin != pt.lastPin || h.dseq != pt.lastDSeq+1 || h.msg.NumDelivered > 1 {
				verify = true
			}
			pt.lastPin, pt.lastDSeq = h.pin, h.dseq
			if h.msg.NumDelivered > 1 {
				pt.r.metrics.redelivery(cfg.Name, 1)
			}
			batch = addHeld(batch, h)
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				pt.release(batch)
				return nil
			case fatalConnErr(err):
				return fmt.Errorf("consume %s: %w", DurableName(cfg.Name, pt.p), err)
			case errors.Is(err, errBatchReleased):
				batch, verify = nil, true
				continue
			case errors.Is(err, jetstream.ErrPinIDMismatch):
				// Another instance holds the partition now; it waits for
				// what we fetched, so hand it back at once.
				pt.log.Info("partition pinned elsewhere, standing by")
				pt.release(batch)
				batch, verify = nil, true
				continue
			}
			failures++
			pt.log.Warn("fetch failed", "error", err, "failures", failures)
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				pt.release(batch)
				batch, verify = nil, true
				pt.recreate(ctx)
			}
			pt.inProgress(batch)
			sleepCtx(ctx, cfg.Backoff.Delay(failures))
			continue
		}
		failures = 0
		if len(batch) == 0 {
			continue
		}
		if verify {
			missing, err = pt.checkComplete(ctx, len(batch))
			if err != nil {
				if ctx.Err() == nil {
					pt.log.Warn("read consumer info", "error", err)
				}
				pt.inProgress(batch)
				continue
			}
			if missing > 0 {
				// Messages before ours were delivered to an instance that
				// stopped; wait for them to come back instead of applying
				// later messages first.
				pt.log.Debug("waiting for messages held elsewhere", "missing", missing, "held", len(batch))
				pt.inProgress(batch)
				continue
			}
			verify = false
		}
		if err := pt.handle(ctx, batch); err != nil {
			// Stopped while retrying: the batch is not applied.
			pt.release(batch)
			return nil
		}
		batch = nil
	}
}

// fetchBatch pulls the next batch or, when a batch is held while missing
// messages are out elsewhere, more messages (sized to the missing ones so
// the pull returns as soon as they come back).
func (pt *partition) fetchBatch(ctx context.Context, batch []held, missing int) ([]jetstream.Msg, error) {
	cfg := &pt.r.cfg
	room := cfg.BatchSize - len(batch)
	if len(batch) > 0 {
		if room <= 0 {
			// A full batch and still messages out elsewhere: only possible
			// when another instance configured a larger MaxAckPending.
			// Hand everything back and start over rather than pull past
			// the batch size.
			pt.log.Warn("batch full while messages are out elsewhere; check that every instance uses the same BatchSize")
			pt.release(batch)
			sleepCtx(ctx, cfg.FetchWait)
			return nil, errBatchReleased
		}
		return pt.fetch(ctx, min(room, max(missing, 1)), cfg.FetchWait)
	}
	// Wait for one message, then take what is pending up to a full batch:
	// a pull for exactly what is there returns at once, where a pull for a
	// full batch would wait out its expiry whenever less is pending.
	first, err := pt.fetch(ctx, 1, cfg.FetchWait)
	if err != nil || len(first) == 0 {
		return first, err
	}
	md, err := first[0].Metadata()
	if err != nil {
		return first, nil
	}
	pt.r.setPending(pt.idx, md.NumPending)
	want := uint64(room - 1)
	if md.NumDelivered == 1 {
		want = min(want, md.NumPending)
	}
	if want == 0 {
		return first, nil
	}
	more, err := pt.fetch(ctx, int(want), cfg.Linger)
	if len(more) > 0 {
		if md, merr := more[len(more)-1].Metadata(); merr == nil {
			pt.r.setPending(pt.idx, md.NumPending)
		}
	}
	return append(first, more...), err
}

// fetch runs one pull of up to n messages that the server ends after wait.
//
// The expiry is left to the server: a client that gives up first (as with
// a context deadline racing the expiry on a loaded machine) abandons a
// request the server may still serve, and the message, and with it the pin
// id, is lost in transit until AckWait. When ctx ends, fetch returns at
// once; what still arrives for the pull is handed back in the background.
func (pt *partition) fetch(ctx context.Context, n int, wait time.Duration) ([]jetstream.Msg, error) {
	pt.pulling.Store(true)
	defer pt.pulling.Store(false)
	pt.lastPull.Store(time.Now().UnixNano())
	b, err := pt.consumer().Fetch(n, jetstream.FetchMaxWait(wait), jetstream.FetchPriorityGroup(PinGroup))
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	ch := b.Messages()
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return msgs, b.Error()
			}
			msgs = append(msgs, m)
		case <-ctx.Done():
			pt.wg.Go(func() {
				for m := range ch {
					_ = m.Nak()
				}
			})
			return msgs, ctx.Err()
		}
	}
}

// checkComplete returns how many messages are delivered but unacknowledged
// outside the batch in hand. The server delivers a partition in stream
// order, so when everything in flight is in hand, every earlier message is
// acknowledged and the sorted batch may be applied. A batch is only checked
// when the pin moved, a delivery sequence was skipped or a message came
// again: otherwise every delivery came to this instance and was
// acknowledged before the next pull.
func (pt *partition) checkComplete(ctx context.Context, inHand int) (int, error) {
	info, err := pt.consumer().Info(ctx)
	if err != nil {
		return 0, err
	}
	return max(info.NumAckPending-inHand, 0), nil
}

// handle applies a batch: retried whole in process (never nak'ed, which
// could reorder it), then message by message, dead-lettering what still
// fails. It returns errStopped when ctx was cancelled before the batch was
// settled; the batch is then neither acked nor terminated.
func (pt *partition) handle(ctx context.Context, batch []held) error {
	cfg := &pt.r.cfg
	hctx, cancel := drainContext(ctx, cfg.DrainTimeout)
	defer cancel()
	stopKeepalive := pt.keepalive(batch)
	defer stopKeepalive()

	err := pt.attempts(ctx, hctx, batch)
	if err == nil {
		pt.ack(hctx, batch)
		return nil
	}
	if errors.Is(err, errStopped) {
		return err
	}
	if len(batch) > 1 {
		pt.log.Warn("batch failed, handling its messages one by one", "size", len(batch), "error", err)
	}
	for i := range batch {
		if err := pt.handleOne(ctx, hctx, batch[i], err, len(batch) == 1); err != nil {
			return err
		}
	}
	return nil
}

// handleOne settles one message of a failed batch. When the batch was this
// message alone, its error is already final.
func (pt *partition) handleOne(ctx, hctx context.Context, h held, err error, alreadyTried bool) error {
	cfg := &pt.r.cfg
	dl := deadLetterer{rec: cfg.DeadLetters, source: cfg.Name, log: pt.log, metrics: pt.r.metrics}
	one := []held{h}
	for round := 1; ; round++ {
		if !alreadyTried || round > 1 {
			err = pt.attempts(ctx, hctx, one)
			if err == nil {
				pt.ack(hctx, one)
				return nil
			}
			if errors.Is(err, errStopped) {
				return err
			}
		}
		// Terminate only once the dead letter is stored: if storing fails
		// (the database is down), keep the message and try it again.
		rerr := dl.record(hctx, h.msg, err)
		if rerr == nil {
			pt.r.metrics.handledAdd(cfg.Name, outcomeDeadLetter, 1)
			if terr := h.jm.Term(); terr != nil {
				pt.log.Warn("terminate message", "seq", h.msg.Seq, "error", terr)
			}
			return nil
		}
		pt.log.Error("record dead letter failed; retrying the message", "seq", h.msg.Seq, "error", rerr)
		if !sleepCtx(ctx, cfg.Backoff.Delay(round+cfg.MaxAttempts)) {
			return errStopped
		}
	}
}

// attempts calls the handler up to MaxAttempts times. It stops early on a
// permanent error, and returns errStopped when ctx ends during a backoff.
func (pt *partition) attempts(ctx, hctx context.Context, batch []held) error {
	cfg := &pt.r.cfg
	msgs := make([]Msg, len(batch))
	for i := range batch {
		msgs[i] = batch[i].msg
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := safeCall(func() error { return pt.r.h.HandleBatch(hctx, pt.p, msgs) })
		pt.r.metrics.observe(cfg.Name, time.Since(start))
		if err == nil {
			return nil
		}
		if IsPermanent(err) || attempt >= cfg.MaxAttempts {
			return err
		}
		if ctx.Err() != nil {
			return errStopped
		}
		pt.r.metrics.handledAdd(cfg.Name, outcomeRetry, len(batch))
		d := cfg.Backoff.retryDelay(err, attempt)
		pt.log.Warn("batch failed, retrying", "size", len(batch), "attempt", attempt, "in", d, "error", err)
		if !sleepCtx(ctx, d) {
			return errStopped
		}
	}
}

// ack acknowledges a handled batch. The last ack waits for the server's
// confirmation: acks are processed in order, so afterwards the whole batch
// is settled and the next pull sees a free MaxAckPending window.
func (pt *partition) ack(ctx context.Context, batch []held) {
	for i, h := range batch {
		var err error
		if i == len(batch)-1 {
			err = h.jm.DoubleAck(ctx)
		} else {
			err = h.jm.Ack()
		}
		if err != nil {
			// The batch is applied; a redelivery is skipped by the
			// handler's checkpoint.
			pt.log.Warn("ack failed", "seq", h.msg.Seq, "error", err)
			break
		}
	}
	pt.r.metrics.handledAdd(pt.r.cfg.Name, outcomeAck, len(batch))
}

// keepalive extends the ack deadline of the batch while the handler works
// and acks, so a slow batch (or one being retried) is not redelivered. A
// crashed process stops it, and the batch comes back after AckWait. It
// checks often and acts when a quarter of AckWait has passed, so a loaded
// machine that runs the ticker late still extends in time.
func (pt *partition) keepalive(batch []held) (stop func()) {
	cfg := &pt.r.cfg
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cfg.AckWait / 10)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				if now.Sub(last) >= cfg.AckWait/4 {
					pt.inProgress(batch)
					last = now
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// keepPin keeps the instance's pin while the partition loop is between
// pulls (handling, acking, waiting on the server): the server moves the
// partition to a standby when no pull arrived for PinnedTTL, which must
// mean the process is gone, not busy. The loop pulls at least every
// FetchWait by itself; this fills the gaps.
func (pt *partition) keepPin() (stop func()) {
	cfg := &pt.r.cfg
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cfg.PinnedTTL / 10)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				if !pt.pulling.Load() && now.Sub(pt.lastPullTime()) >= cfg.PinnedTTL/4 {
					pt.renewPin()
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// renewPin sends a pull that cannot be served (max bytes 1): the server
// resets the pin timer on every pull that carries the current pin id, and
// answers this one with 409 or a timeout instead of a message.
func (pt *partition) renewPin() {
	pt.lastPull.Store(time.Now().UnixNano())
	b, err := pt.consumer().Fetch(1, jetstream.FetchMaxBytes(1),
		jetstream.FetchMaxWait(50*time.Millisecond), jetstream.FetchPriorityGroup(PinGroup))
	if err != nil {
		return
	}
	pt.wg.Go(func() {
		for m := range b.Messages() {
			// Cannot happen with max bytes 1; hand it back to be safe.
			_ = m.Nak()
		}
	})
}

func (pt *partition) inProgress(batch []held) {
	for _, h := range batch {
		_ = h.jm.InProgress()
	}
}

// release hands fetched messages back for immediate redelivery, so the
// next holder need not wait out AckWait. The next holder sorts them.
func (pt *partition) release(batch []held) {
	for _, h := range batch {
		_ = h.jm.Nak()
	}
}

func (pt *partition) recreate(ctx context.Context) {
	cons, err := pt.r.cfg.JetStream.CreateOrUpdateConsumer(ctx, pt.r.cfg.Stream, pt.r.consumerConfigFor(ctx, pt.p))
	if err != nil {
		pt.log.Warn("recreate consumer", "error", err)
		return
	}
	pt.cons.Store(&cons)
	pt.lastPin, pt.lastDSeq = "", 0
}

func toHeld(jm jetstream.Msg) (held, error) {
	m, err := toMsg(jm)
	if err != nil {
		return held{}, err
	}
	md, _ := jm.Metadata() // toMsg parsed it already
	return held{jm: jm, msg: m, pin: jm.Headers().Get(pinHeader), dseq: md.Sequence.Consumer}, nil
}

// addHeld inserts h in stream order. A message received twice keeps its
// latest delivery, the one the server accepts acks for.
func addHeld(batch []held, h held) []held {
	i, found := slices.BinarySearchFunc(batch, h.msg.Seq, func(e held, seq uint64) int {
		return cmp.Compare(e.msg.Seq, seq)
	})
	if found {
		batch[i] = h
		return batch
	}
	return slices.Insert(batch, i, h)
}
