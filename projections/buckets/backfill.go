package buckets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Job formats: the import_jobs.format of bucket jobs (spec 10 §4.9).
const (
	// JobFirstTime joins every current matcher; nobody leaves.
	JobFirstTime = "bucket-backfill"
	// JobReeval joins every current matcher and makes the active members
	// that no longer match leave.
	JobReeval = "bucket-reeval"
)

// Job statuses.
const (
	JobPending    = "pending"
	JobProcessing = "processing"
	JobCompleted  = "completed"
	JobFailed     = "failed"
)

// errUnregistered is the error a job for a bucket this process does not
// run records (the reference's wording; manual buckets cannot be defined).
var errUnregistered = errors.New("bucket_unregistered_or_manual")

// errDisabled is recorded by a job for a statically disabled bucket: its
// memberships would have nobody to keep them up to date.
var errDisabled = errors.New("bucket_disabled")

// Job is a bucket backfill or re-evaluation job: an import_jobs row whose
// file_name is the bucket id.
type Job struct {
	ID       uuid.UUID
	BucketID string
	// Format is JobFirstTime or JobReeval.
	Format string
	// Status is JobPending, JobProcessing, JobCompleted or JobFailed.
	Status string
	// TotalRows is the number of matchers, nil until they are computed.
	TotalRows *int
	// ProcessedRows is the running number of joins, then of joins plus
	// leaves.
	ProcessedRows int
	FailedRows    int
	// Errors is [{row: 0, error}] for a failed job.
	Errors    []JobError
	CreatedAt time.Time
	UpdatedAt time.Time
}

// JobError is one entry of a job's errors; bucket jobs only use row 0.
type JobError struct {
	Row   int    `json:"row"`
	Error string `json:"error"`
}

// Backfiller computes bucket memberships from stored state when a bucket
// is new or its criteria changed (spec 10 §4.9): the boot check enqueues a
// job per such bucket, and running a job joins every current matcher
// silently (source "backfill", no bucket:entered) and, for a re-eval,
// makes the members that no longer match leave, emitting bucket:left.
//
// Everything a job writes is keyed so that running it again changes
// nothing: joins skip keys with an active row, leaves are a
// compare-and-set from active, and transitions carry the deterministic
// id and idempotency key of spec §4.5.
type Backfiller struct {
	pool *pgxpool.Pool
	pub  Publisher
	reg  *Registry
	log  *slog.Logger

	// Now is the clock. Matching windows, entered_at and left_at of one
	// job all use the instant the job started.
	Now func() time.Time
	// PageSize is how many live contacts one query reads when the
	// criteria are evaluated in Go.
	PageSize int
	// ChunkSize is how many joins or leaves one statement writes; the
	// job's processed_rows moves after each chunk.
	ChunkSize int
	// Writers is how many chunks are written at once, each on its own
	// connection.
	Writers int
	// Timeout bounds one job (the reference gives it 600 s, no retries).
	Timeout time.Duration
}

// NewBackfiller returns the backfill of the buckets in reg. pub carries
// the bucket:left transitions of re-eval jobs into EVENTS.
func NewBackfiller(pool *pgxpool.Pool, pub Publisher, reg *Registry, log *slog.Logger) *Backfiller {
	if log == nil {
		log = slog.Default()
	}
	return &Backfiller{
		pool: pool, pub: pub, reg: reg, log: log,
		Now:       time.Now,
		PageSize:  2000,
		ChunkSize: 1000,
		Writers:   2,
		Timeout:   600 * time.Second,
	}
}

// Check is the boot check (spec 10 §4.9.1). For each registered,
// statically enabled bucket it compares the criteria hash with
// bucket_configs.criteria_hash and enqueues a job: JobFirstTime when no
// hash is stored, JobReeval when it differs, nothing when it is equal. It
// returns the jobs it added; a bucket that already has a pending or
// processing job of that format gets no second one, even when several
// processes boot at once. A failure for one bucket is logged and the next
// bucket is checked; the failures are returned joined.
func (f *Backfiller) Check(ctx context.Context) ([]Job, error) {
	hashes, err := f.storedHashes(ctx)
	if err != nil {
		return nil, err
	}
	var jobs []Job
	var errs []error
	for _, b := range f.reg.All() {
		if !b.Enabled() {
			continue
		}
		format := formatFor(b, hashes)
		if format == "" {
			continue
		}
		job, created, err := f.enqueue(ctx, b.ID(), format)
		if err != nil {
			f.log.Error("enqueue bucket backfill", "bucket", b.ID(), "format", format, "err", err)
			errs = append(errs, fmt.Errorf("enqueue %s of bucket %s: %w", format, b.ID(), err))
			continue
		}
		if created {
			f.log.Info("bucket backfill enqueued", "bucket", b.ID(), "format", format, "job", job.ID)
			jobs = append(jobs, job)
		}
	}
	return jobs, errors.Join(errs...)
}

// Enqueue adds a job for bucketID on demand (`hogsend buckets backfill
// <id>`): a re-eval when a criteria hash is stored, a first-time backfill
// otherwise. When the bucket already has a pending or processing job of
// that format, Enqueue returns it instead of adding another. An
// unregistered bucket is a not_found error, a statically disabled one an
// invalid_request error.
func (f *Backfiller) Enqueue(ctx context.Context, bucketID string) (Job, error) {
	b, ok := f.reg.Get(bucketID)
	if !ok {
		return Job{}, errcode.NotFound(fmt.Sprintf("bucket %q is not registered", bucketID))
	}
	if !b.Enabled() {
		return Job{}, errcode.Invalidf("bucket %q is disabled; only enabled buckets are backfilled", bucketID)
	}
	hashes, err := f.storedHashes(ctx)
	if err != nil {
		return Job{}, err
	}
	format := JobFirstTime
	if hashes[bucketID] != nil {
		format = JobReeval
	}
	job, _, err := f.enqueue(ctx, bucketID, format)
	if err != nil {
		return Job{}, fmt.Errorf("enqueue %s of bucket %s: %w", format, bucketID, err)
	}
	return job, nil
}

// RunPending runs pending bucket jobs one after another until none is
// left. Several workers may call it at once: each job is claimed by
// exactly one of them. A failed job is recorded on the job and logged,
// and the next one runs; the failures are returned joined.
func (f *Backfiller) RunPending(ctx context.Context) error {
	var errs []error
	for {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		row, err := dbsqlc.New(f.pool).BucketBackfillJobClaimNext(ctx)
		if errors.Is(err, pgx.ErrNoRows) {
			return errors.Join(errs...)
		}
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("claim bucket job: %w", err))...)
		}
		if err := f.run(ctx, toJob(row)); err != nil {
			errs = append(errs, err)
		}
	}
}

// Run runs one job: a pending one, or a finished one again (which
// changes nothing when nothing changed since). A job another worker is
// processing is a conflict error, an unknown job not_found. The returned
// error says why the job failed; the job records it too, and it is
// logged.
func (f *Backfiller) Run(ctx context.Context, jobID uuid.UUID) error {
	q := dbsqlc.New(f.pool)
	row, err := q.BucketBackfillJobClaim(ctx, jobID)
	if errors.Is(err, pgx.ErrNoRows) {
		cur, gerr := q.BucketBackfillJobGet(ctx, jobID)
		switch {
		case errors.Is(gerr, pgx.ErrNoRows):
			return errcode.NotFound(fmt.Sprintf("job %s not found", jobID))
		case gerr != nil:
			return fmt.Errorf("read job %s: %w", jobID, gerr)
		case cur.Format != JobFirstTime && cur.Format != JobReeval:
			return errcode.Invalidf("job %s is a %q import, not a bucket job", jobID, cur.Format)
		default:
			return errcode.Conflict(fmt.Sprintf("job %s is already being processed", jobID))
		}
	}
	if err != nil {
		return fmt.Errorf("claim job %s: %w", jobID, err)
	}
	return f.run(ctx, toJob(row))
}

// run executes a claimed job and records its outcome.
func (f *Backfiller) run(ctx context.Context, job Job) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	res, err := f.execute(ctx, job)
	if err != nil {
		// The job must be marked failed even when ctx is what failed.
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer fcancel()
		if ferr := dbsqlc.New(f.pool).BucketBackfillJobFail(fctx, dbsqlc.BucketBackfillJobFailParams{ID: job.ID, Message: err.Error()}); ferr != nil {
			err = errors.Join(err, fmt.Errorf("record failure: %w", ferr))
		}
		f.log.Error("bucket backfill failed", "bucket", job.BucketID, "job", job.ID, "format", job.Format, "err", err)
		return fmt.Errorf("%s job %s of bucket %s: %w", job.Format, job.ID, job.BucketID, err)
	}
	f.log.Info("bucket backfill completed", "bucket", job.BucketID, "job", job.ID, "format", job.Format,
		"matchers", res.matchers, "joined", res.joined, "left", res.left, "elapsed", time.Since(start))
	return nil
}

type jobResult struct{ matchers, joined, left int }

// execute is the job of spec 10 §4.9 items 2–5, the status already set to
// processing.
func (f *Backfiller) execute(ctx context.Context, job Job) (jobResult, error) {
	var res jobResult
	b, ok := f.reg.Get(job.BucketID)
	if !ok {
		return res, errUnregistered
	}
	if !b.Enabled() {
		return res, errDisabled
	}
	at := f.Now().UTC().Truncate(time.Microsecond) // Postgres keeps microseconds
	q := dbsqlc.New(f.pool)
	bulk := dbsqlc.New(customPlans{f.pool})

	ms, err := f.matchers(ctx, bulk, b, at)
	if err != nil {
		return res, fmt.Errorf("compute matchers: %w", err)
	}
	res.matchers = len(ms.list)
	total := int32(min(len(ms.list), math.MaxInt32))
	if err := q.BucketBackfillJobSetTotal(ctx, dbsqlc.BucketBackfillJobSetTotalParams{ID: job.ID, TotalRows: &total}); err != nil {
		return res, fmt.Errorf("record total: %w", err)
	}
	if res.joined, err = f.join(ctx, bulk, b, job.ID, ms.list, at); err != nil {
		return res, err
	}
	if job.Format == JobReeval {
		if res.left, err = f.leave(ctx, b, job.ID, ms.keys, at); err != nil {
			return res, err
		}
	}

	tx, err := f.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("begin completion: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	qtx := dbsqlc.New(tx)
	hash := b.Hash()
	if err := qtx.BucketBackfillConfigSetHash(ctx, dbsqlc.BucketBackfillConfigSetHashParams{
		ID: uuid.Must(uuid.NewV7()), BucketID: b.ID(), CriteriaHash: &hash,
	}); err != nil {
		return res, fmt.Errorf("store criteria hash: %w", err)
	}
	processed := int32(min(res.joined+res.left, math.MaxInt32))
	if err := qtx.BucketBackfillJobComplete(ctx, dbsqlc.BucketBackfillJobCompleteParams{ID: job.ID, ProcessedRows: processed}); err != nil {
		return res, fmt.Errorf("complete job: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit completion: %w", err)
	}
	return res, nil
}

// matcher is a live contact the criteria match.
type matcher struct {
	key   string
	email string // "" when the contact has none
	// anchor is dwell_anchor_at (spec §4.9.3); zero when none.
	anchor time.Time
}

type matcherSet struct {
	list []matcher
	keys map[string]struct{}
}

// add keeps the first contact of a key: two live contacts can share a
// key only when one's external id equals the other's anonymous id or
// uuid, and a key has one membership.
func (s *matcherSet) add(m matcher) {
	if _, dup := s.keys[m.key]; dup {
		return
	}
	s.keys[m.key] = struct{}{}
	s.list = append(s.list, m)
}

// matchers are the live contacts the bucket's criteria match now (spec
// §4.9.2): in SQL for a single event leaf, else by evaluating every live
// contact against its stored properties and the event history.
func (f *Backfiller) matchers(ctx context.Context, q *dbsqlc.Queries, b *Bucket, at time.Time) (*matcherSet, error) {
	set := &matcherSet{keys: map[string]struct{}{}}
	crit := b.Criteria()
	if crit.Type == condition.TypeEvent {
		return set, f.eventLeafMatchers(ctx, q, &crit, at, set)
	}
	return set, f.evaluatedMatchers(ctx, q, b, crit, at, set)
}

// eventLeafMatchers computes a single event leaf's matchers in one
// statement. Unlike evaluation, only contacts that fired the event can
// match, so atMost, lessThan and exactly(0) never backfill a contact
// without any occurrence (the reference's behaviour).
func (f *Backfiller) eventLeafMatchers(ctx context.Context, q *dbsqlc.Queries, n *condition.Node, at time.Time, set *matcherSet) error {
	rule, value := eventLeafRule(n)
	if rule == "" {
		return nil // a leaf that can never be true
	}
	var since time.Time // the zero time: all of history
	if n.Within != nil {
		since = at.Add(-n.Within.Std())
	}
	rows, err := q.BucketBackfillEventMatchers(ctx, dbsqlc.BucketBackfillEventMatchersParams{
		Event: n.EventName, Since: since, Rule: rule, Value: value,
	})
	if err != nil {
		return fmt.Errorf("match event %q: %w", n.EventName, err)
	}
	for _, r := range rows {
		m := matcher{key: r.Key, email: deref(r.Email)}
		if n.Within != nil {
			m.anchor = r.LastAt
		}
		set.add(m)
	}
	return nil
}

// eventLeafRule translates an event leaf into the @rule and @value of
// BucketBackfillEventMatchers, following spec §3.3.1. An empty rule
// matches nothing.
func eventLeafRule(n *condition.Node) (rule string, value float64) {
	switch n.Check {
	case condition.CheckExists:
		return "any", 0
	case condition.CheckNotExists:
		if n.Within != nil {
			return "absent", 0
		}
		// All-time absence cannot be enumerated from history (and
		// registration rejects it as all-negative).
		return "", 0
	case condition.CheckCount:
		if n.Operator == "" || n.Value == nil {
			return "any", 0
		}
		v, ok := countValue(n.Value)
		if !ok {
			return "", 0
		}
		switch n.Operator {
		case condition.OpGt, condition.OpGte, condition.OpLt, condition.OpLte, condition.OpEq:
			return string(n.Operator), v
		}
	}
	return "", 0
}

// countValue reads a count node's value as the evaluator does: only
// numbers compare.
func countValue(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil || math.IsInf(f, 0)
	}
	return 0, false
}

// contactPage is one page of live contacts with the history of every
// event leaf for their keys.
type contactPage struct {
	rows []dbsqlc.BucketBackfillContactsPageRow
	hist *pageHistory
}

// evaluatedMatchers evaluates every live contact against the criteria,
// with stored properties and the event history. Pages are read by one
// goroutine while the previous page is evaluated, and a page is
// evaluated on every CPU, so reading (Postgres) and decoding and
// evaluating (Go) overlap.
func (f *Backfiller) evaluatedMatchers(ctx context.Context, q *dbsqlc.Queries, b *Bucket, crit condition.Node, at time.Time, set *matcherSet) error {
	leaves := eventStatKeys(crit, at)
	anchorEv := anchorEvent(crit)
	anchorKey := statKey{event: anchorEv}
	if anchorEv != "" && !containsStat(leaves, anchorKey) {
		leaves = append(leaves, anchorKey)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan contactPage, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(pages)
		readErr <- f.readPages(ctx, q, leaves, pages)
	}()

	usesProps := b.UsesProperties()
	workers := max(1, min(runtime.GOMAXPROCS(0), 4))
	var evalErr error
	for p := range pages {
		if evalErr != nil {
			continue // drain, so the reader can finish
		}
		parts := make([][]matcher, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		per := (len(p.rows) + workers - 1) / workers
		for w := range workers {
			lo, hi := min(w*per, len(p.rows)), min((w+1)*per, len(p.rows))
			if lo == hi {
				continue
			}
			wg.Go(func() {
				parts[w], errs[w] = evaluatePage(ctx, crit, p.rows[lo:hi], p.hist, usesProps, anchorEv, anchorKey, at)
			})
		}
		wg.Wait()
		if evalErr = errors.Join(errs...); evalErr != nil {
			cancel()
			continue
		}
		for _, part := range parts {
			for _, m := range part {
				set.add(m)
			}
		}
	}
	if err := <-readErr; err != nil && evalErr == nil {
		return err
	}
	return evalErr
}

// readPages sends the pages of live contacts, each with the history its
// event leaves read, until there are no more.
func (f *Backfiller) readPages(ctx context.Context, q *dbsqlc.Queries, leaves []statKey, out chan<- contactPage) error {
	page := max(f.PageSize, 1)
	fallback := &history{q: q, maxSeq: math.MaxInt64}
	after := uuid.Nil
	for {
		rows, err := q.BucketBackfillContactsPage(ctx, dbsqlc.BucketBackfillContactsPageParams{After: after, Lim: int32(min(page, math.MaxInt32))})
		if err != nil {
			return fmt.Errorf("read contacts: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		after = rows[len(rows)-1].ID
		hist := &pageHistory{stats: make(map[statKey]map[string]eventStat, len(leaves)), fallback: fallback}
		if len(leaves) > 0 {
			keys := make([]string, len(rows))
			for i, c := range rows {
				keys[i] = c.Key
			}
			for _, sk := range leaves {
				if err := hist.load(ctx, q, sk, keys); err != nil {
					return err
				}
			}
		}
		select {
		case out <- contactPage{rows: rows, hist: hist}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if len(rows) < page {
			return nil
		}
	}
}

// evaluatePage returns the matchers among rows, in order.
func evaluatePage(ctx context.Context, crit condition.Node, rows []dbsqlc.BucketBackfillContactsPageRow, hist *pageHistory,
	usesProps bool, anchorEv string, anchorKey statKey, at time.Time) ([]matcher, error) {
	var out []matcher
	for _, c := range rows {
		var props map[string]any
		if usesProps {
			var err error
			if props, err = streams.DecodeObject(c.Properties); err != nil {
				return nil, fmt.Errorf("contact %s properties: %w", c.ID, err)
			}
		}
		in := condition.Input{Key: c.Key, Email: deref(c.Email), Properties: props, Now: at}
		ok, err := condition.Evaluate(ctx, crit, in, hist)
		if err != nil {
			return nil, fmt.Errorf("evaluate contact %s: %w", c.ID, err)
		}
		if !ok {
			continue
		}
		m := matcher{key: c.Key, email: deref(c.Email)}
		if anchorEv != "" {
			m.anchor = hist.stats[anchorKey][c.Key].last
		}
		out = append(out, m)
	}
	return out, nil
}

// anchorEvent is the event whose latest occurrence anchors dwell timing
// (spec §4.9.3): that of a single windowed event leaf, or X of
// all(event X exists with no window, event X not_exists within W) in
// either order; "" for any other criteria.
func anchorEvent(n condition.Node) string {
	if n.Type == condition.TypeEvent {
		if n.Within != nil {
			return n.EventName
		}
		return ""
	}
	if n.Type != condition.TypeComposite || n.Operator != condition.OpAnd || len(n.Conditions) != 2 {
		return ""
	}
	a, c := n.Conditions[0], n.Conditions[1]
	if a.Check == condition.CheckNotExists {
		a, c = c, a
	}
	if a.Type == condition.TypeEvent && c.Type == condition.TypeEvent && a.EventName == c.EventName &&
		a.Check == condition.CheckExists && a.Within == nil &&
		c.Check == condition.CheckNotExists && c.Within != nil {
		return a.EventName
	}
	return ""
}

// statKey names the history one event leaf reads: an event name and the
// start of its window (none for all of history).
type statKey struct {
	event    string
	windowed bool
	since    int64 // UnixNano of the window start
}

func statKeyOf(event string, since *time.Time) statKey {
	if since == nil {
		return statKey{event: event}
	}
	return statKey{event: event, windowed: true, since: since.UnixNano()}
}

// eventStatKeys lists the distinct histories the criteria's event leaves
// read, with windows anchored at at exactly as the evaluator anchors
// them.
func eventStatKeys(n condition.Node, at time.Time) []statKey {
	var out []statKey
	condition.Walk(n, func(c condition.Node) bool {
		if c.Type != condition.TypeEvent {
			return true
		}
		var since *time.Time
		if c.Within != nil {
			s := at.Add(-c.Within.Std())
			since = &s
		}
		if k := statKeyOf(c.EventName, since); !containsStat(out, k) {
			out = append(out, k)
		}
		return true
	})
	return out
}

func containsStat(ks []statKey, k statKey) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

type eventStat struct {
	n    int64
	last time.Time
}

// pageHistory answers the evaluator from the history loaded for one page
// of contacts, as of now (no stream position bound: a
// backfill evaluates the present). A question it has not loaded goes to
// Postgres directly. Once loaded it is only read, so the page's
// evaluators share it.
type pageHistory struct {
	stats    map[statKey]map[string]eventStat
	fallback condition.History
}

// load reads the page's history of one event leaf.
func (h *pageHistory) load(ctx context.Context, q *dbsqlc.Queries, k statKey, keys []string) error {
	var since time.Time // zero: all of history
	if k.windowed {
		since = time.Unix(0, k.since).UTC()
	}
	rows, err := q.BucketBackfillEventStats(ctx, dbsqlc.BucketBackfillEventStatsParams{Keys: keys, Event: k.event, Since: since})
	if err != nil {
		return fmt.Errorf("read %q history: %w", k.event, err)
	}
	m := make(map[string]eventStat, len(rows))
	h.stats[k] = m
	for _, r := range rows {
		m[r.UserID] = eventStat{n: r.N, last: r.LastAt}
	}
	return nil
}

func (h *pageHistory) CountEvents(ctx context.Context, key, eventName string, since *time.Time) (int64, error) {
	if m, ok := h.stats[statKeyOf(eventName, since)]; ok {
		return m[key].n, nil
	}
	return h.fallback.CountEvents(ctx, key, eventName, since)
}

func (h *pageHistory) LatestEmail(ctx context.Context, email, templateKey string) (condition.EmailState, error) {
	return h.fallback.LatestEmail(ctx, email, templateKey)
}

// join inserts the matchers' active rows in chunks of one statement each
// (spec §4.9.3), skipping keys that already have one, and returns how
// many it inserted. Backfill joins emit nothing and arm no timer. Keys
// are inserted in order, which keeps the writes to the key indexes
// local.
func (f *Backfiller) join(ctx context.Context, q *dbsqlc.Queries, b *Bucket, jobID uuid.UUID, ms []matcher, at time.Time) (int, error) {
	meta := b.Meta()
	var expiresAt, maxDwellAt *time.Time
	if w := b.ExpiryWindow(); w != nil {
		t := at.Add(*w)
		expiresAt = &t
	}
	if meta.MaxDwell > 0 {
		t := at.Add(meta.MaxDwell)
		maxDwellAt = &t
	}
	slices.SortFunc(ms, func(a, b matcher) int { return strings.Compare(a.key, b.key) })
	var joined atomic.Int64
	err := f.forChunks(ctx, len(ms), func(ctx context.Context, lo, hi int) error {
		p := dbsqlc.BucketBackfillJoinParams{
			BucketID: b.ID(), At: at, JobID: jobID, ExpiresAt: expiresAt, MaxDwellAt: maxDwellAt,
			Ids: make([]uuid.UUID, 0, hi-lo), Keys: make([]string, 0, hi-lo),
			Emails: make([]string, 0, hi-lo), Anchors: make([]time.Time, 0, hi-lo),
		}
		for _, m := range ms[lo:hi] {
			p.Ids = append(p.Ids, uuid.Must(uuid.NewV7()))
			p.Keys = append(p.Keys, m.key)
			p.Emails = append(p.Emails, m.email)
			// The zero time (0001-01-01) stands for no anchor.
			p.Anchors = append(p.Anchors, m.anchor)
		}
		n, err := q.BucketBackfillJoin(ctx, p)
		if err != nil {
			return fmt.Errorf("insert joins: %w", err)
		}
		joined.Add(n)
		return nil
	})
	return int(joined.Load()), err
}

// forChunks calls fn for consecutive ranges of n items, ChunkSize long,
// on up to Writers connections at once. It stops at the first error.
func (f *Backfiller) forChunks(ctx context.Context, n int, fn func(ctx context.Context, lo, hi int) error) error {
	chunk := max(f.ChunkSize, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make([]error, max(f.Writers, 1))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for lo := range next {
				if errs[w] != nil {
					continue
				}
				if errs[w] = fn(ctx, lo, min(lo+chunk, n)); errs[w] != nil {
					cancel()
				}
			}
		})
	}
feed:
	for lo := 0; lo < n; lo += chunk {
		select {
		case next <- lo:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// leave makes the active members with a live contact whose key is not
// among the matchers leave (spec §4.9.4), ignoring minDwell, and returns
// how many rows it flipped. Only the members that no longer match are
// looked up in contacts.
func (f *Backfiller) leave(ctx context.Context, b *Bucket, jobID uuid.UUID, matchers map[string]struct{}, at time.Time) (int, error) {
	members, err := dbsqlc.New(customPlans{f.pool}).BucketBackfillActiveMembers(ctx, b.ID())
	if err != nil {
		return 0, fmt.Errorf("read members: %w", err)
	}
	cands := members[:0]
	for _, m := range members {
		if _, ok := matchers[m.UserID]; !ok {
			cands = append(cands, m)
		}
	}
	var left atomic.Int64
	err = f.forChunks(ctx, len(cands), func(ctx context.Context, lo, hi int) error {
		n, err := f.leaveChunk(ctx, b, jobID, cands[lo:hi], at)
		left.Add(int64(n))
		return err
	})
	return int(left.Load()), err
}

// leaveChunk flips one chunk and publishes a bucket:left for each row the
// statement flipped before committing: rows another writer flipped first
// are not returned, so only the writer that changed a row emits (spec
// §4.3.4). If the commit fails after the publish, the next run flips the
// same rows and publishes the very same events, which the stream's
// dedupe and the history's idempotency key absorb.
func (f *Backfiller) leaveChunk(ctx context.Context, b *Bucket, jobID uuid.UUID, cands []dbsqlc.BucketBackfillActiveMembersRow, at time.Time) (int, error) {
	ids := make([]uuid.UUID, len(cands))
	keys := make([]string, len(cands))
	var uuidKeys []uuid.UUID // keys of contacts with neither external nor anonymous id
	for i, c := range cands {
		ids[i], keys[i] = c.ID, c.UserID
		if id, err := uuid.Parse(c.UserID); err == nil && id.String() == c.UserID {
			uuidKeys = append(uuidKeys, id)
		}
	}
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin leaves: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	flipped, err := dbsqlc.New(customPlans{tx}).BucketBackfillLeave(ctx, dbsqlc.BucketBackfillLeaveParams{
		At: at, Ids: ids, Keys: keys, UuidKeys: uuidKeys, BucketID: b.ID(), JobID: jobID,
	})
	if err != nil {
		return 0, fmt.Errorf("leave members: %w", err)
	}
	if len(flipped) > 0 {
		if f.pub == nil {
			return 0, errors.New("publish leaves: no publisher")
		}
		msgs := make([]bus.OutMsg, 0, len(flipped))
		for _, r := range flipped {
			m, err := f.reg.transitionMsgs(b, r.UserID, r.ContactID.String(), deref(r.UserEmail), "left", int(r.EntryCount), SourceBackfill, "criteria", at)
			if err != nil {
				return 0, err
			}
			msgs = append(msgs, m...)
		}
		if err := f.pub.PublishAsyncBatch(ctx, msgs); err != nil {
			return 0, fmt.Errorf("publish leaves: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit leaves: %w", err)
	}
	return len(flipped), nil
}

// enqueue adds a pending job of format for bucketID unless one is pending
// or processing; then it returns that one and created false. Enqueueing
// holds a per-bucket advisory lock for its transaction, so processes
// booting together add one job between them.
func (f *Backfiller) enqueue(ctx context.Context, bucketID, format string) (job Job, created bool, err error) {
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		return Job{}, false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	q := dbsqlc.New(tx)
	if err := q.BucketBackfillJobLock(ctx, bucketID); err != nil {
		return Job{}, false, fmt.Errorf("lock bucket jobs: %w", err)
	}
	// A job processing well past its timeout has lost its worker.
	stale := (f.Timeout + time.Minute).Seconds()
	if err := q.BucketBackfillJobAbandon(ctx, dbsqlc.BucketBackfillJobAbandonParams{BucketID: bucketID, Format: format, StaleSecs: stale}); err != nil {
		return Job{}, false, fmt.Errorf("fail abandoned jobs: %w", err)
	}
	row, err := q.BucketBackfillJobInsert(ctx, dbsqlc.BucketBackfillJobInsertParams{ID: uuid.Must(uuid.NewV7()), BucketID: bucketID, Format: format})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		row, err = q.BucketBackfillJobActive(ctx, dbsqlc.BucketBackfillJobActiveParams{BucketID: bucketID, Format: format})
		if err != nil {
			return Job{}, false, fmt.Errorf("read queued job: %w", err)
		}
	case err != nil:
		return Job{}, false, fmt.Errorf("insert job: %w", err)
	default:
		created = true
	}
	if err := tx.Commit(ctx); err != nil {
		return Job{}, false, fmt.Errorf("commit: %w", err)
	}
	return toJob(row), created, nil
}

// storedHashes are the criteria hashes of bucket_configs by bucket id
// (nil for a row without one).
func (f *Backfiller) storedHashes(ctx context.Context) (map[string]*string, error) {
	rows, err := dbsqlc.New(f.pool).BucketConfigsAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("read bucket configs: %w", err)
	}
	out := make(map[string]*string, len(rows))
	for _, r := range rows {
		out[r.BucketID] = r.CriteriaHash
	}
	return out, nil
}

// formatFor is the boot check's decision (spec §4.9.1): a first-time
// job without a stored hash, a re-eval for a different one, "" for the
// same.
func formatFor(b *Bucket, hashes map[string]*string) string {
	h := hashes[b.ID()]
	switch {
	case h == nil:
		return JobFirstTime
	case *h != b.Hash():
		return JobReeval
	default:
		return ""
	}
}

func toJob(r dbsqlc.ImportJob) Job {
	j := Job{
		ID: r.ID, BucketID: deref(r.FileName), Format: r.Format, Status: r.Status,
		ProcessedRows: int(r.ProcessedRows), FailedRows: int(r.FailedRows),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.TotalRows != nil {
		n := int(*r.TotalRows)
		j.TotalRows = &n
	}
	if len(r.Errors) > 0 && string(r.Errors) != "null" {
		if err := json.Unmarshal(r.Errors, &j.Errors); err != nil {
			// Not written by a bucket job; keep it readable.
			j.Errors = []JobError{{Row: 0, Error: string(r.Errors)}}
		}
	}
	return j
}

// customPlans runs statements as unnamed prepared statements, which
// Postgres plans for their actual arguments every time. The backfill runs
// its statements hundreds of times with arrays of keys and ids; once a
// cached prepared statement has run five times Postgres may switch to a
// generic plan, and the generic plans of these statements guess those
// arrays badly (the leave chunks became six times slower). One more round
// trip per statement is cheap next to that.
type customPlans struct{ db dbsqlc.DBTX }

func (c customPlans) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return c.db.Exec(ctx, sql, append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
}

func (c customPlans) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return c.db.Query(ctx, sql, append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
}

func (c customPlans) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return c.db.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
}
