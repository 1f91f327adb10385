package buckets_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// bfEnv is a database and a JetStream with EVENTS, written to directly:
// the backfill reads stored state only.
type bfEnv struct {
	t    *testing.T
	ctx  context.Context
	pool *pgxpool.Pool
	js   jetstream.JetStream
	pub  *bus.Publisher
	now  time.Time
}

func newBFEnv(t *testing.T) *bfEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	pool := schematest.NewPool(t)
	_, _, js := natstest.Start(t)
	if err := bus.Provision(ctx, js, streams.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	return &bfEnv{t: t, ctx: ctx, pool: pool, js: js, pub: pub, now: time.Now().UTC().Truncate(time.Second)}
}

// backfiller runs the given definitions with the env's clock.
func (e *bfEnv) backfiller(pub buckets.Publisher, defs ...*buckets.Bucket) *buckets.Backfiller {
	e.t.Helper()
	reg, err := buckets.NewRegistry("", defs...)
	if err != nil {
		e.t.Fatal(err)
	}
	if pub == nil {
		pub = e.pub
	}
	bf := buckets.NewBackfiller(e.pool, pub, reg, nil)
	bf.Now = func() time.Time { return e.now }
	return bf
}

type bfContact struct {
	ID    string
	Key   string
	Email string
}

// contact inserts a live contact; empty strings are null.
func (e *bfEnv) contact(ext, anon, email string, props map[string]any) bfContact {
	e.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	raw, err := json.Marshal(props)
	if err != nil {
		e.t.Fatal(err)
	}
	if props == nil {
		raw = []byte(`{}`)
	}
	if _, err := e.pool.Exec(e.ctx, `INSERT INTO contacts (id, external_id, anonymous_id, email, properties) VALUES ($1, $2, $3, $4, $5)`,
		id, bfNull(ext), bfNull(anon), bfNull(email), string(raw)); err != nil {
		e.t.Fatal(err)
	}
	key := ext
	if key == "" {
		key = anon
	}
	if key == "" {
		key = id
	}
	return bfContact{ID: id, Key: key, Email: email}
}

func (e *bfEnv) deleteContact(c bfContact) {
	e.t.Helper()
	if _, err := e.pool.Exec(e.ctx, `UPDATE contacts SET deleted_at = now() WHERE id = $1`, c.ID); err != nil {
		e.t.Fatal(err)
	}
}

// events stores history rows for key, one per time ago.
func (e *bfEnv) events(key, name string, ago ...time.Duration) {
	e.t.Helper()
	for _, d := range ago {
		if _, err := e.pool.Exec(e.ctx, `INSERT INTO user_events (id, user_id, event, occurred_at) VALUES ($1, $2, $3, $4)`,
			uuid.Must(uuid.NewV7()), key, name, e.now.Add(-d)); err != nil {
			e.t.Fatal(err)
		}
	}
}

func bfNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

type bfRow struct {
	Key          string
	Email        *string
	Status       string
	Source       string
	EntryCount   int
	EnteredAt    time.Time
	LeftAt       *time.Time
	ExpiresAt    *time.Time
	MaxDwellAt   *time.Time
	EvaluatedAt  *time.Time
	AnchorAt     *time.Time
	DwellStateJS string
}

func (e *bfEnv) rows(bucket string) []bfRow {
	e.t.Helper()
	rows, err := e.pool.Query(e.ctx, `SELECT user_id, user_email, status, coalesce(source, ''), entry_count, entered_at, left_at,
		expires_at, max_dwell_at, last_evaluated_at, dwell_anchor_at, dwell_state::text
		FROM bucket_memberships WHERE bucket_id = $1 ORDER BY user_id, entry_count`, bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (bfRow, error) {
		var m bfRow
		err := r.Scan(&m.Key, &m.Email, &m.Status, &m.Source, &m.EntryCount, &m.EnteredAt, &m.LeftAt,
			&m.ExpiresAt, &m.MaxDwellAt, &m.EvaluatedAt, &m.AnchorAt, &m.DwellStateJS)
		return m, err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// keys are the keys of the rows with the given status, sorted.
func bfKeys(rows []bfRow, status string) []string {
	var out []string
	for _, r := range rows {
		if r.Status == status {
			out = append(out, r.Key)
		}
	}
	slices.Sort(out)
	return out
}

func bfContactKeys(cs ...bfContact) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Key)
	}
	slices.Sort(out)
	return out
}

type bfEmitted struct {
	Event streams.Event
	MsgID string
	Props map[string]any
}

// emitted returns the bucket transitions stored in EVENTS.
func (e *bfEnv) emitted() []bfEmitted {
	e.t.Helper()
	s, err := e.js.Stream(e.ctx, streams.StreamEvents)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []bfEmitted
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(e.ctx, seq)
		if err != nil {
			e.t.Fatalf("get EVENTS #%d: %v", seq, err)
		}
		var got bfEmitted
		if err := json.Unmarshal(m.Data, &got.Event); err != nil {
			e.t.Fatal(err)
		}
		if !strings.HasPrefix(got.Event.Name, "bucket:") {
			continue
		}
		got.MsgID = m.Header.Get("Nats-Msg-Id")
		if err := json.Unmarshal(got.Event.EventProperties, &got.Props); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

func (e *bfEnv) hash(bucket string) *string {
	e.t.Helper()
	var h *string
	err := e.pool.QueryRow(e.ctx, `SELECT criteria_hash FROM bucket_configs WHERE bucket_id = $1`, bucket).Scan(&h)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		e.t.Fatal(err)
	}
	return h
}

type bfJobRow struct {
	Format    string
	Status    string
	Total     *int
	Processed int
	Errors    []buckets.JobError
}

func (e *bfEnv) job(id uuid.UUID) bfJobRow {
	e.t.Helper()
	var j bfJobRow
	var raw []byte
	if err := e.pool.QueryRow(e.ctx, `SELECT format, status, total_rows, processed_rows, errors FROM import_jobs WHERE id = $1`, id).
		Scan(&j.Format, &j.Status, &j.Total, &j.Processed, &raw); err != nil {
		e.t.Fatal(err)
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &j.Errors); err != nil {
			e.t.Fatal(err)
		}
	}
	return j
}

func (e *bfEnv) jobCount(bucket string) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(e.ctx, `SELECT count(*) FROM import_jobs WHERE file_name = $1`, bucket).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// checkAndRun is a worker boot: the check, then every pending job.
func (e *bfEnv) checkAndRun(bf *buckets.Backfiller) []buckets.Job {
	e.t.Helper()
	jobs, err := bf.Check(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := bf.RunPending(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return jobs
}

func bfDefine(t *testing.T, m buckets.Meta) *buckets.Bucket {
	t.Helper()
	if m.Name == "" {
		m.Name = "Bucket " + m.ID
	}
	b, err := buckets.Define(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bfCrit(n condition.Node) *condition.Node { return &n }

func bfWant[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func bfWantKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// Scenario 26: a new bucket is backfilled silently; a criteria change
// makes non-matchers leave with bucket:left (source backfill) and new
// matchers join silently.
func TestBackfillScenario26(t *testing.T) {
	t.Parallel()
	e := newBFEnv(t)

	var pro, free []bfContact
	for i := range 50 {
		props := map[string]any{"plan": "pro", "score": i}
		var c bfContact
		switch i % 3 {
		case 0:
			c = e.contact(fmt.Sprintf("user-%02d", i), "", fmt.Sprintf("u%02d@example.com", i), props)
		case 1: // anonymous only: the reference never backfilled these
			c = e.contact("", fmt.Sprintf("anon-%02d", i), "", props)
		default: // email only: keyed by the contact id
			c = e.contact("", "", fmt.Sprintf("e%02d@example.com", i), props)
		}
		pro = append(pro, c)
	}
	for i := range 10 {
		free = append(free, e.contact(fmt.Sprintf("free-%02d", i), "", "", map[string]any{"plan": "free", "score": 100}))
	}
	gone := e.contact("gone", "", "gone@example.com", map[string]any{"plan": "pro", "score": 99})
	e.deleteContact(gone)

	v1 := bfDefine(t, buckets.Meta{ID: "B", Criteria: bfCrit(condition.Prop("plan").Eq("pro"))})
	jobs := e.checkAndRun(e.backfiller(nil, v1))
	if len(jobs) != 1 || jobs[0].Format != buckets.JobFirstTime || jobs[0].BucketID != "B" || jobs[0].Status != buckets.JobPending {
		t.Fatalf("boot check jobs = %+v, want one pending %s job for B", jobs, buckets.JobFirstTime)
	}
	rows := e.rows("B")
	bfWantKeys(t, "members after the first backfill", bfKeys(rows, "active"), bfContactKeys(pro...))
	emails := map[string]string{}
	for _, c := range pro {
		emails[c.Key] = c.Email
	}
	for _, r := range rows {
		bfWant(t, r.Key+" source", r.Source, buckets.SourceBackfill)
		bfWant(t, r.Key+" entry_count", r.EntryCount, 1)
		bfWant(t, r.Key+" email", bfDeref(r.Email), emails[r.Key])
		if r.EvaluatedAt == nil || !r.EvaluatedAt.Equal(e.now) || !r.EnteredAt.Equal(e.now) {
			t.Errorf("%s entered %v evaluated %v, want both %v", r.Key, r.EnteredAt, r.EvaluatedAt, e.now)
		}
		if r.ExpiresAt != nil || r.MaxDwellAt != nil || r.AnchorAt != nil {
			t.Errorf("%s expires %v maxDwell %v anchor %v, want none", r.Key, r.ExpiresAt, r.MaxDwellAt, r.AnchorAt)
		}
	}
	if got := e.emitted(); len(got) != 0 {
		t.Errorf("the first backfill emitted %d transitions, want none: %+v", len(got), got)
	}
	if h := e.hash("B"); h == nil || *h != v1.Hash() {
		t.Errorf("stored hash = %v, want %s", h, v1.Hash())
	}
	j := e.job(jobs[0].ID)
	if j.Status != buckets.JobCompleted || j.Total == nil || *j.Total != 50 || j.Processed != 50 {
		t.Errorf("job = %+v, want completed with 50 of 50", j)
	}

	// Booting again with the same criteria enqueues nothing.
	if jobs := e.checkAndRun(e.backfiller(nil, v1)); len(jobs) != 0 {
		t.Errorf("second boot enqueued %+v, want nothing", jobs)
	}

	// The criteria change: scores below 25 no longer match, free plans do.
	// A member whose contact was deleted since is left alone.
	e.deleteContact(pro[0])
	e.now = e.now.Add(time.Hour)
	v2 := bfDefine(t, buckets.Meta{ID: "B", Criteria: bfCrit(condition.Any(condition.Prop("plan").Eq("free"), condition.Prop("score").Gte(25)))})
	jobs = e.checkAndRun(e.backfiller(nil, v2))
	if len(jobs) != 1 || jobs[0].Format != buckets.JobReeval {
		t.Fatalf("boot check after the change = %+v, want one %s job", jobs, buckets.JobReeval)
	}
	stay, leave := pro[25:], pro[1:25]
	rows = e.rows("B")
	bfWantKeys(t, "members after the re-eval", bfKeys(rows, "active"), bfContactKeys(append(slices.Clone(stay), append(free, pro[0])...)...))
	bfWantKeys(t, "left after the re-eval", bfKeys(rows, "left"), bfContactKeys(leave...))
	for _, r := range rows {
		switch {
		case r.Status == "left" && (r.LeftAt == nil || !r.LeftAt.Equal(e.now) || !r.EvaluatedAt.Equal(e.now)):
			t.Errorf("%s left_at %v evaluated %v, want %v", r.Key, r.LeftAt, r.EvaluatedAt, e.now)
		case r.Status == "active" && strings.HasPrefix(r.Key, "free-") && (r.Source != buckets.SourceBackfill || !r.EnteredAt.Equal(e.now)):
			t.Errorf("new matcher %s source %q entered %v", r.Key, r.Source, r.EnteredAt)
		}
	}

	ems := e.emitted()
	contactOf := map[string]bfContact{}
	for _, c := range pro {
		contactOf[c.Key] = c
	}
	var leftKeys []string
	for _, m := range ems {
		ev := m.Event
		if ev.Name != "bucket:left:B" {
			t.Errorf("emitted %s for %s, want only bucket:left:B", ev.Name, ev.UserID)
			continue
		}
		c := contactOf[ev.UserID]
		leftKeys = append(leftKeys, ev.UserID)
		wantKey := buckets.TransitionKey("B", c.Key, "left", 1)
		bfWant(t, "idempotency key", ev.IdempotencyKey, wantKey)
		bfWant(t, "msg id", m.MsgID, "idem:"+wantKey)
		bfWant(t, "event id", ev.ID, uuid.NewSHA1(uuid.NameSpaceOID, []byte(wantKey)).String())
		bfWant(t, ev.UserID+" email", ev.Email, c.Email)
		bfWant(t, ev.UserID+" contact", ev.ContactID, c.ID)
		bfWant(t, "envelope source", ev.Source, "bucket")
		bfWant(t, "received at", ev.ReceivedAt.Equal(e.now), true)
		for k, want := range map[string]any{"bucketId": "B", "bucketName": "Bucket B", "userId": c.Key, "transition": "left",
			"source": "backfill", "reason": "criteria", "entryCount": float64(1)} {
			bfWant(t, ev.UserID+" "+k, m.Props[k], want)
		}
	}
	slices.Sort(leftKeys)
	bfWantKeys(t, "bucket:left emitted for", leftKeys, bfContactKeys(leave...))
	if h := e.hash("B"); h == nil || *h != v2.Hash() {
		t.Errorf("stored hash = %v, want the new %s", h, v2.Hash())
	}
	j = e.job(jobs[0].ID)
	if j.Status != buckets.JobCompleted || j.Total == nil || *j.Total != 35 || j.Processed != 10+24 {
		t.Errorf("re-eval job = %+v, want completed, 35 matchers, 10 joins + 24 leaves", j)
	}

	// Back to the first criteria: the leavers re-join with epoch 2, the
	// free plans leave, all silently but the leaves.
	e.now = e.now.Add(time.Hour)
	before := len(e.emitted())
	e.checkAndRun(e.backfiller(nil, v1))
	rows = e.rows("B")
	bfWantKeys(t, "members after reverting", bfKeys(rows, "active"), bfContactKeys(pro...))
	for _, r := range rows {
		if r.Status == "active" && slices.Contains(bfContactKeys(leave...), r.Key) {
			bfWant(t, r.Key+" epoch on re-join", r.EntryCount, 2)
		}
	}
	ems = e.emitted()[before:]
	bfWant(t, "leaves emitted on revert", len(ems), len(free))
	for _, m := range ems {
		bfWant(t, "emitted on revert", m.Event.Name, "bucket:left:B")
	}
}

// A job run twice, and a second job with the same criteria, change
// nothing and emit nothing.
func TestBackfillRerunIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newBFEnv(t)
	var cs []bfContact
	for i := range 12 {
		plan := "pro"
		if i%2 == 1 {
			plan = "free"
		}
		cs = append(cs, e.contact("", fmt.Sprintf("anon-%d", i), "", map[string]any{"plan": plan}))
		e.events(cs[i].Key, "purchase", time.Duration(i)*time.Hour)
	}
	v1 := bfDefine(t, buckets.Meta{ID: "idem", Criteria: bfCrit(condition.Prop("plan").Eq("pro"))})
	e.checkAndRun(e.backfiller(nil, v1))
	v2 := bfDefine(t, buckets.Meta{ID: "idem", Criteria: bfCrit(condition.Event("purchase").Within(condition.Hours(5.5)).Exists())})
	bf := e.backfiller(nil, v2)
	bf.ChunkSize = 2
	jobs := e.checkAndRun(bf)
	if len(jobs) != 1 {
		t.Fatalf("jobs = %+v", jobs)
	}
	rows, ems := e.rows("idem"), e.emitted()
	bfWantKeys(t, "members", bfKeys(rows, "active"), bfContactKeys(cs[:6]...))
	bfWant(t, "leaves emitted", len(ems), 3) // pro 6, 8 and 10

	for round := range 2 {
		if err := bf.Run(e.ctx, jobs[0].ID); err != nil {
			t.Fatalf("run again #%d: %v", round, err)
		}
		j := e.job(jobs[0].ID)
		if j.Status != buckets.JobCompleted || j.Processed != 0 || *j.Total != 6 {
			t.Errorf("job run again = %+v, want completed with nothing processed", j)
		}
	}
	job, err := bf.Enqueue(e.ctx, "idem")
	if err != nil {
		t.Fatal(err)
	}
	bfWant(t, "enqueued format", job.Format, buckets.JobReeval)
	if err := bf.RunPending(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.rows("idem"); !reflect.DeepEqual(got, rows) {
		t.Errorf("rows changed on re-runs:\n got %+v\nwant %+v", got, rows)
	}
	if got := e.emitted(); len(got) != len(ems) {
		t.Errorf("re-runs emitted %d more transitions", len(got)-len(ems))
	}
	bfWant(t, "second job processed", e.job(job.ID).Processed, 0)
}

// Workers booting together add one job per bucket; Enqueue returns the
// queued one; a job stuck in processing past its timeout is failed and
// replaced.
func TestBackfillDuplicateJobs(t *testing.T) {
	t.Parallel()
	e := newBFEnv(t)
	e.contact("u1", "", "", map[string]any{"plan": "pro"})
	defs := []*buckets.Bucket{
		bfDefine(t, buckets.Meta{ID: "one", Criteria: bfCrit(condition.Prop("plan").Eq("pro"))}),
		bfDefine(t, buckets.Meta{ID: "two", Criteria: bfCrit(condition.Prop("plan").Exists())}),
		bfDefine(t, buckets.Meta{ID: "off", Enabled: new(false), Criteria: bfCrit(condition.Prop("plan").Exists())}),
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var created []buckets.Job
	for range 8 {
		wg.Go(func() {
			jobs, err := e.backfiller(nil, defs...).Check(e.ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			created = append(created, jobs...)
			mu.Unlock()
		})
	}
	wg.Wait()
	bfWant(t, "jobs created by 8 concurrent boots", len(created), 2)
	bfWant(t, "jobs of one", e.jobCount("one"), 1)
	bfWant(t, "jobs of two", e.jobCount("two"), 1)
	bfWant(t, "jobs of the disabled bucket", e.jobCount("off"), 0)

	bf := e.backfiller(nil, defs...)
	queued, err := bf.Enqueue(e.ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	var first buckets.Job
	for _, j := range created {
		if j.BucketID == "one" {
			first = j
		}
	}
	bfWant(t, "Enqueue with a job pending returns it", queued.ID, first.ID)

	if _, err := bf.Enqueue(e.ctx, "nope"); !errcode.Is(err, errcode.CodeNotFound) {
		t.Errorf("Enqueue(unknown) = %v, want not_found", err)
	}
	if _, err := bf.Enqueue(e.ctx, "off"); !errcode.Is(err, errcode.CodeInvalidRequest) {
		t.Errorf("Enqueue(disabled) = %v, want invalid_request", err)
	}
	if err := bf.Run(e.ctx, uuid.Must(uuid.NewV7())); !errcode.Is(err, errcode.CodeNotFound) {
		t.Errorf("Run(unknown job) = %v, want not_found", err)
	}

	// Three workers drain the queue together.
	for range 3 {
		wg.Go(func() {
			if err := e.backfiller(nil, defs...).RunPending(e.ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, j := range created {
		bfWant(t, j.BucketID+" job status", e.job(j.ID).Status, buckets.JobCompleted)
		bfWant(t, j.BucketID+" members", len(bfKeys(e.rows(j.BucketID), "active")), 1)
	}

	// A job another worker is processing is not run twice.
	busy := uuid.Must(uuid.NewV7())
	if _, err := e.pool.Exec(e.ctx, `INSERT INTO import_jobs (id, file_name, format, status) VALUES ($1, 'two', 'bucket-reeval', 'processing')`, busy); err != nil {
		t.Fatal(err)
	}
	if err := bf.Run(e.ctx, busy); !errcode.Is(err, errcode.CodeConflict) {
		t.Errorf("Run(processing job) = %v, want conflict", err)
	}
	again, err := bf.Enqueue(e.ctx, "two")
	if err != nil {
		t.Fatal(err)
	}
	bfWant(t, "Enqueue with a job processing returns it", again.ID, busy)

	// Once it has made no progress for longer than the timeout, it is
	// abandoned and a new job takes its place.
	if _, err := e.pool.Exec(e.ctx, `UPDATE import_jobs SET updated_at = now() - interval '1 hour' WHERE id = $1`, busy); err != nil {
		t.Fatal(err)
	}
	fresh, err := bf.Enqueue(e.ctx, "two")
	if err != nil {
		t.Fatal(err)
	}
	if fresh.ID == busy || fresh.Status != buckets.JobPending {
		t.Errorf("Enqueue after the stale job = %+v, want a new pending job", fresh)
	}
	stale := e.job(busy)
	if stale.Status != buckets.JobFailed || len(stale.Errors) != 1 || !strings.Contains(stale.Errors[0].Error, "abandoned") {
		t.Errorf("stale job = %+v, want failed as abandoned", stale)
	}
}

// A single event leaf is matched in SQL: by the contact key (email-only
// and anonymous contacts included), live contacts only, and only contacts
// that fired the event.
func TestBackfillSingleEventLeaf(t *testing.T) {
	t.Parallel()
	e := newBFEnv(t)
	day := 24 * time.Hour
	a := e.contact("a", "", "a@example.com", nil)
	e.events(a.Key, "purchase", 1*day, 2*day, 3*day)
	b := e.contact("", "anon-b", "", nil)
	e.events(b.Key, "purchase", 1*day, 2*day)
	c := e.contact("", "", "c@example.com", nil)
	e.events(c.Key, "purchase", 36*time.Hour)
	d := e.contact("d", "", "", nil)
	e.events(d.Key, "purchase", 20*day, 30*day)
	e.events(d.Key, "other", 1*day)
	e.contact("e", "", "", nil) // never purchased
	f := e.contact("f", "", "", nil)
	e.events(f.Key, "purchase", 1*day, 1*day, 1*day)
	e.deleteContact(f)
	e.events("ghost", "purchase", 1*day) // history without a contact

	week := condition.Days(7)
	cases := []struct {
		name     string
		crit     condition.Node
		want     []bfContact
		anchored bool
	}{
		{"exists within", condition.Event("purchase").Within(week).Exists(), []bfContact{a, b, c}, true},
		{"exists ever", condition.Event("purchase").Exists(), []bfContact{a, b, c, d}, false},
		{"at least 2", condition.Event("purchase").Within(week).AtLeast(2), []bfContact{a, b}, true},
		{"more than 2", condition.Event("purchase").Within(week).MoreThan(2), []bfContact{a}, true},
		{"at most 1 skips contacts without any", condition.Event("purchase").Within(week).AtMost(1), []bfContact{c}, true},
		{"less than 3", condition.Event("purchase").Within(week).LessThan(3), []bfContact{b, c}, true},
		{"exactly 0 never backfills", condition.Event("purchase").Within(week).Exactly(0), nil, true},
		{"exactly 2 ever", condition.Event("purchase").Exactly(2), []bfContact{b, d}, false},
		{"not within: fired before only", condition.Event("purchase").Within(week).NotExists(), []bfContact{d}, true},
	}
	latest := map[string]time.Time{a.Key: e.now.Add(-day), b.Key: e.now.Add(-day), c.Key: e.now.Add(-36 * time.Hour), d.Key: e.now.Add(-20 * day)}
	for i, tc := range cases {
		id := fmt.Sprintf("ev%d", i)
		bk := bfDefine(t, buckets.Meta{ID: id, Criteria: &tc.crit, TimeBased: true, MaxDwell: 48 * time.Hour})
		jobs := e.checkAndRun(e.backfiller(nil, bk))
		rows := e.rows(id)
		bfWantKeys(t, tc.name, bfKeys(rows, "active"), bfContactKeys(tc.want...))
		for _, r := range rows {
			switch {
			case tc.anchored && (r.AnchorAt == nil || !r.AnchorAt.Equal(latest[r.Key])):
				t.Errorf("%s: %s anchor %v, want %v", tc.name, r.Key, r.AnchorAt, latest[r.Key])
			case !tc.anchored && r.AnchorAt != nil:
				t.Errorf("%s: %s anchor %v, want none", tc.name, r.Key, r.AnchorAt)
			}
			if tc.anchored && (r.ExpiresAt == nil || !r.ExpiresAt.Equal(e.now.Add(7*day))) {
				t.Errorf("%s: %s expires %v, want now+7d", tc.name, r.Key, r.ExpiresAt)
			}
			if r.MaxDwellAt == nil || !r.MaxDwellAt.Equal(e.now.Add(48*time.Hour)) {
				t.Errorf("%s: %s max dwell %v, want now+48h", tc.name, r.Key, r.MaxDwellAt)
			}
		}
		if j := e.job(jobs[0].ID); *j.Total != len(tc.want) {
			t.Errorf("%s: total_rows %d, want %d", tc.name, *j.Total, len(tc.want))
		}
	}
}

// The SQL path and the general evaluation agree where the spec says they
// must (positive counts).
func TestBackfillSQLPathMatchesEvaluation(t *testing.T) {
	t.Parallel()
	e := newBFEnv(t)
	for i := range 40 {
		var c bfContact
		switch i % 3 {
		case 0:
			c = e.contact(fmt.Sprintf("x%d", i), "", "", nil)
		case 1:
			c = e.contact("", fmt.Sprintf("anon%d", i), "", nil)
		default:
			c = e.contact("", "", fmt.Sprintf("m%d@example.com", i), nil)
		}
		for k := range i % 5 {
			e.events(c.Key, "open", time.Duration(k*i)*time.Hour)
		}
	}
	for _, leaf := range []condition.Node{
		condition.Event("open").Exists(),
		condition.Event("open").Within(condition.Days(2)).Exists(),
		condition.Event("open").Within(condition.Days(3)).AtLeast(2),
		condition.Event("open").MoreThan(2),
	} {
		sqlB := bfDefine(t, buckets.Meta{ID: "sql", Criteria: &leaf})
		goB := bfDefine(t, buckets.Meta{ID: "go", Criteria: bfCrit(condition.All(leaf))})
		bf := e.backfiller(nil, sqlB, goB)
		bf.PageSize = 7
		e.checkAndRun(bf)
		sqlKeys, goKeys := bfKeys(e.rows("sql"), "active"), bfKeys(e.rows("go"), "active")
		if len(sqlKeys) == 0 || !slices.Equal(sqlKeys, goKeys) {
			t.Errorf("%+v: SQL path %q, evaluation %q", leaf, sqlKeys, goKeys)
		}
		for _, stmt := range []string{`DELETE FROM bucket_memberships`, `DELETE FROM bucket_configs`} {
			if _, err := e.pool.Exec(e.ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Other criteria are evaluated in Go over every live contact, with stored
// properties and the event history, paged and chunked.
func TestBackfillGeneralPath(t *testing.T) {
	t.Parallel()
	e := newBFEnv(t)
	day := 24 * time.Hour
	var buyers, lapsed []bfContact
	for i := range 9 {
		plan := []string{"pro", "free", "pro"}[i%3]
		var c bfContact
		switch i % 3 {
		case 0:
			c = e.contact(fmt.Sprintf("g%d", i), "", fmt.Sprintf("g%d@example.com", i), map[string]any{"plan": plan})
		case 1:
			c = e.contact("", fmt.Sprintf("anon-g%d", i), "", map[string]any{"plan": plan})
		default:
			c = e.contact("", "", fmt.Sprintf("m%d@example.com", i), map[string]any{"plan": plan})
		}
		if i < 6 {
			e.events(c.Key, "purchase", time.Duration(i)*day)
			if plan == "pro" && i < 5 {
				buyers = append(buyers, c)
			}
		}
		// Signed up, but not in the last 3 days.
		if i%2 == 0 {
			e.events(c.Key, "signup", 10*day, time.Duration(4+i)*day)
			lapsed = append(lapsed, c)
		} else {
			e.events(c.Key, "signup", 1*day)
		}
	}
	gone := e.contact("", "", "gone@example.com", map[string]any{"plan": "pro"})
	e.events(gone.Key, "purchase", day)
	e.events(gone.Key, "signup", 10*day)
	e.deleteContact(gone)

	buy := bfDefine(t, buckets.Meta{ID: "buyers", Criteria: bfCrit(condition.All(
		condition.Prop("plan").Eq("pro"),
		condition.Event("purchase").Within(condition.Hours(24*4+12)).Exists(),
	))})
	quiet := bfDefine(t, buckets.Meta{ID: "quiet", FastExpiry: true, Criteria: bfCrit(condition.All(
		condition.Event("signup").Within(condition.Days(3)).NotExists(),
		condition.Event("signup").Exists(),
	))})
	bf := e.backfiller(nil, buy, quiet)
	bf.PageSize, bf.ChunkSize = 2, 2
	e.checkAndRun(bf)

	rows := e.rows("buyers")
	bfWantKeys(t, "buyers", bfKeys(rows, "active"), bfContactKeys(buyers...))
	for _, r := range rows {
		if r.AnchorAt != nil || r.ExpiresAt != nil {
			t.Errorf("buyers %s anchor %v expires %v, want none", r.Key, r.AnchorAt, r.ExpiresAt)
		}
	}
	rows = e.rows("quiet")
	bfWantKeys(t, "quiet", bfKeys(rows, "active"), bfContactKeys(lapsed...))
	for _, r := range rows {
		var i int
		for k, c := range lapsed {
			if c.Key == r.Key {
				i = 2 * k
			}
		}
		// Signups 10 days and 4+i days ago: the anchor is the latest.
		want := e.now.Add(-time.Duration(min(10, 4+i)) * day)
		if r.AnchorAt == nil || !r.AnchorAt.Equal(want) {
			t.Errorf("quiet %s anchor %v, want the latest signup %v", r.Key, r.AnchorAt, want)
		}
		if r.ExpiresAt == nil || !r.ExpiresAt.Equal(e.now.Add(3*day)) {
			t.Errorf("quiet %s expires %v, want now+3d (fastExpiry)", r.Key, r.ExpiresAt)
		}
	}
	if got := e.emitted(); len(got) != 0 {
		t.Errorf("emitted %d transitions, want none", len(got))
	}
}

// bfFailingPub fails every publish.
type bfFailingPub struct{}

func (bfFailingPub) PublishAsyncBatch(context.Context, []bus.OutMsg) error {
	return errors.New("nats: no responders")
}

// A failed job records why, keeps the old hash, and the next boot
// retries it.
func TestBackfillFailureKeepsOldHash(t *testing.T) {
	t.Parallel()
	e := newBFEnv(t)
	for i := range 6 {
		e.contact(fmt.Sprintf("u%d", i), "", "", map[string]any{"n": i})
	}
	v1 := bfDefine(t, buckets.Meta{ID: "h", Criteria: bfCrit(condition.Prop("n").Lt(3))})
	e.checkAndRun(e.backfiller(nil, v1))
	old := e.hash("h")

	v2 := bfDefine(t, buckets.Meta{ID: "h", Criteria: bfCrit(condition.Prop("n").Gte(2))})
	bf := e.backfiller(bfFailingPub{}, v2)
	jobs, err := bf.Check(e.ctx)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("check = %+v, %v", jobs, err)
	}
	err = bf.Run(e.ctx, jobs[0].ID)
	if err == nil || !strings.Contains(err.Error(), "no responders") {
		t.Fatalf("run = %v, want the publish failure", err)
	}
	j := e.job(jobs[0].ID)
	if j.Status != buckets.JobFailed || len(j.Errors) != 1 || j.Errors[0].Row != 0 || !strings.Contains(j.Errors[0].Error, "no responders") {
		t.Errorf("failed job = %+v", j)
	}
	if h := e.hash("h"); h == nil || *h != *old {
		t.Errorf("hash after failure = %v, want the old %s", h, *old)
	}
	if got := bfKeys(e.rows("h"), "left"); len(got) != 0 {
		t.Errorf("left %q although the transitions were not published", got)
	}

	// The next boot retries and succeeds.
	jobs = e.checkAndRun(e.backfiller(nil, v2))
	if len(jobs) != 1 || jobs[0].Format != buckets.JobReeval {
		t.Fatalf("retry jobs = %+v", jobs)
	}
	rows := e.rows("h")
	bfWantKeys(t, "members", bfKeys(rows, "active"), []string{"u2", "u3", "u4", "u5"})
	bfWantKeys(t, "left", bfKeys(rows, "left"), []string{"u0", "u1"})
	bfWant(t, "emitted", len(e.emitted()), 2)
	if h := e.hash("h"); h == nil || *h != v2.Hash() {
		t.Errorf("hash = %v, want %s", h, v2.Hash())
	}

	// A job for a bucket this process does not run fails as the
	// reference's does, and the hash stays.
	other := bfDefine(t, buckets.Meta{ID: "elsewhere", Criteria: bfCrit(condition.Prop("n").Exists())})
	queued, err := e.backfiller(nil, other).Enqueue(e.ctx, "elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.backfiller(nil, v2).RunPending(e.ctx); err == nil {
		t.Error("RunPending hid the failed job")
	}
	j = e.job(queued.ID)
	if j.Status != buckets.JobFailed || len(j.Errors) != 1 || j.Errors[0].Error != "bucket_unregistered_or_manual" {
		t.Errorf("job of an unregistered bucket = %+v", j)
	}
	if h := e.hash("elsewhere"); h != nil {
		t.Errorf("hash of the unregistered bucket = %s, want none", *h)
	}
}

func bfDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// bfCountingPub acknowledges every message without sending it.
type bfCountingPub struct{ n atomic.Int64 }

func (p *bfCountingPub) PublishAsyncBatch(_ context.Context, msgs []bus.OutMsg) error {
	p.n.Add(int64(len(msgs)))
	return nil
}

// bfTracer remembers the last single-event-leaf statement, to explain it.
type bfTracer struct {
	mu   sync.Mutex
	sql  string
	args []any
}

func (tr *bfTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "name: BucketBackfillEventMatchers") {
		tr.mu.Lock()
		tr.sql, tr.args = d.SQL, d.Args
		tr.mu.Unlock()
	}
	return ctx
}

func (*bfTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// BenchmarkBackfill200k backfills a property bucket (evaluated in Go) and
// a single-event-leaf bucket (in SQL) over 200,000 contacts, a third each
// keyed by external id, anonymous id and contact id, with about 300,000
// events: half the contacts join the property bucket, about a quarter the
// event bucket. contacts/s covers these two first-time backfills; a
// re-eval that makes half of the property bucket leave is reported apart
// (its transitions go to a publisher that discards them).
func BenchmarkBackfill200k(b *testing.B) {
	const n = 200_000
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(schematest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	tracer := &bfTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)

	now := time.Now().UTC().Truncate(time.Second)
	contacts := make([][]any, 0, n)
	events := make([][]any, 0, n*3/2)
	for i := range n {
		id := uuid.Must(uuid.NewV7())
		var ext, anon, email any
		key := id.String()
		switch i % 3 {
		case 0:
			ext, key = fmt.Sprintf("user-%06d", i), fmt.Sprintf("user-%06d", i)
			email = fmt.Sprintf("user%06d@example.com", i)
		case 1:
			anon, key = fmt.Sprintf("anon-%06d", i), fmt.Sprintf("anon-%06d", i)
		default:
			email = fmt.Sprintf("mail%06d@example.com", i)
		}
		plan := "free"
		if i%2 == 0 {
			plan = "pro"
		}
		props := fmt.Sprintf(`{"plan":%q,"score":%d,"country":"de","signup_source":"web"}`, plan, i%100)
		contacts = append(contacts, []any{id, ext, anon, email, props})
		for k := range i % 4 { // 0–3 purchases spread over 30 days
			at := now.Add(-time.Duration((i*7+k*97)%(30*24)) * time.Hour)
			events = append(events, []any{uuid.Must(uuid.NewV7()), key, "purchase", at})
		}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"contacts"}, []string{"id", "external_id", "anonymous_id", "email", "properties"}, pgx.CopyFromRows(contacts)); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"user_events"}, []string{"id", "user_id", "event", "occurred_at"}, pgx.CopyFromRows(events)); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d contacts, %d events", n, len(events))

	var propTime, eventTime, reevalTime time.Duration
	pub := &bfCountingPub{}
	run := func(bk *buckets.Bucket) (time.Duration, int) {
		reg, err := buckets.NewRegistry("", bk)
		if err != nil {
			b.Fatal(err)
		}
		bf := buckets.NewBackfiller(pool, pub, reg, nil)
		start := time.Now()
		job, err := bf.Enqueue(ctx, bk.ID())
		if err != nil {
			b.Fatal(err)
		}
		if err := bf.Run(ctx, job.ID); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		var joined int
		if err := pool.QueryRow(ctx, `SELECT processed_rows FROM import_jobs WHERE id = $1`, job.ID).Scan(&joined); err != nil {
			b.Fatal(err)
		}
		return elapsed, joined
	}
	b.ResetTimer()
	for i := range b.N {
		prop := buckets.MustDefine(buckets.Meta{ID: fmt.Sprintf("bench-prop-%d", i), Name: "Pro",
			Criteria: bfCrit(condition.Prop("plan").Eq("pro"))})
		ev := buckets.MustDefine(buckets.Meta{ID: fmt.Sprintf("bench-event-%d", i), Name: "Recent buyers",
			Criteria: bfCrit(condition.Event("purchase").Within(condition.Days(7)).Exists())})
		d, joined := run(prop)
		propTime += d
		b.Logf("property bucket: %d joins in %v (%.0f contacts/s)", joined, d, n/d.Seconds())
		d, joined = run(ev)
		eventTime += d
		b.Logf("event bucket: %d joins in %v (%.0f contacts/s)", joined, d, n/d.Seconds())
		// A criteria change: half of the property bucket's members leave.
		narrowed := buckets.MustDefine(buckets.Meta{ID: prop.ID(), Name: "Pro",
			Criteria: bfCrit(condition.All(condition.Prop("plan").Eq("pro"), condition.Prop("score").Gte(50)))})
		sent := pub.n.Load()
		d, processed := run(narrowed)
		reevalTime += d
		b.Logf("re-eval of the property bucket: %d leaves (%d published) in %v (%.0f contacts/s)", processed, pub.n.Load()-sent, d, n/d.Seconds())
	}
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/propTime.Seconds(), "prop-contacts/s")
	b.ReportMetric(float64(n*b.N)/eventTime.Seconds(), "event-contacts/s")
	b.ReportMetric(float64(n*b.N)/reevalTime.Seconds(), "reeval-contacts/s")
	b.ReportMetric(float64(2*n*b.N)/(propTime+eventTime).Seconds(), "contacts/s")

	tracer.mu.Lock()
	sql, args := tracer.sql, tracer.args
	tracer.mu.Unlock()
	rows, err := pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
	if err != nil {
		b.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("plan of the single-event-leaf statement:\n%s", strings.Join(plan, "\n"))
}
