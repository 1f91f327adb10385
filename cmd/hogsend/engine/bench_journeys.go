package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/seed-eeb360f6/hogsend/services/journeys"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/streams"
)

// The journeys part of `hogsend bench` measures the performance goals of the
// journeys issue on an in-process engine running the API, the contacts
// projection and the journeys runtime:
//
//   - wake-up throughput: many sleeps ending at one instant, until every
//     run completed;
//   - the cost of a sleeping journey (rows, Postgres and JetStream bytes)
//     and whether process memory grows with sleepers;
//   - trigger-to-first-effect latency: from an event's POST to its journey's
//     email command on EMAILS.

// Journey ids and trigger events of the bench journeys.
const (
	benchSleepID       = "bench-sleep"
	benchSleepEvent    = "bench_sleep"
	benchSleepersID    = "bench-sleepers"
	benchSleepersEvent = "bench_sleepers"
	benchEffectID      = "bench-first-effect"
	benchEffectEvent   = "bench_first_effect"
	// benchContactEvent enrols nowhere: it creates the sleepers' contacts
	// before the memory baseline is read.
	benchContactEvent = "bench_contact"
	// benchWakeAtProp carries the wake-up instant, unix milliseconds.
	benchWakeAtProp = "wakeAtMs"
)

const (
	// wakeContacts is the wake-up run's size and wakeGoal its goal.
	wakeContacts = 20000
	wakeGoal     = 10 * time.Second
	// wakeLead places the instant after the start of enrolment; enrolment
	// must finish before it, or the measurement would time enrolment too.
	wakeLead = 60 * time.Second
	// The latency run: its steady rate, duration and goal (p99).
	effectRate = 500
	effectFor  = 10 * time.Second
	effectGoal = 100 * time.Millisecond
	// settle lets consumers go idle and the NATS block caches expire
	// before memory is read, so both readings see the same kind of state.
	settle = 5 * time.Second
	// pollEvery spaces the database polls that detect completion.
	pollEvery = 100 * time.Millisecond
)

// journeyServices are what the journeys measurements run: enrolment needs
// the contacts projection's ACTIVITY messages.
var journeyServices = []string{ServiceAPI, ServiceContacts, ServiceJourneys}

// benchJourneys are the journeys the measurements enrol into.
func benchJourneys() []*journey.Journey {
	return []*journey.Journey{
		journey.MustDefine(journey.Meta{
			ID: benchSleepID, Name: "Bench: sleep until an instant, then email",
			Trigger: journey.OnEvent(benchSleepEvent), EntryLimit: journey.Once,
		}, func(ctx *journey.Ctx, u journey.User) error {
			// The instant comes from the trigger so that every run sleeps
			// until the same one; a fixed delay would spread the wake-ups
			// over the enrolment time.
			ms, err := intProp(u.Properties, benchWakeAtProp)
			if err != nil {
				return err
			}
			ctx.SleepUntil(time.UnixMilli(ms))
			return ctx.SendEmail(journey.Email{Template: "bench-woken"})
		}),
		journey.MustDefine(journey.Meta{
			ID: benchSleepersID, Name: "Bench: sleep for a year",
			Trigger: journey.OnEvent(benchSleepersEvent), EntryLimit: journey.Once,
		}, func(ctx *journey.Ctx, _ journey.User) error {
			ctx.Sleep(365 * 24 * time.Hour)
			return ctx.SendEmail(journey.Email{Template: "bench-never"})
		}),
		journey.MustDefine(journey.Meta{
			ID: benchEffectID, Name: "Bench: email at once",
			Trigger: journey.OnEvent(benchEffectEvent), EntryLimit: journey.Once,
		}, func(ctx *journey.Ctx, _ journey.User) error {
			return ctx.SendEmail(journey.Email{Template: "bench-first-effect"})
		}),
	}
}

// intProp reads an integer trigger property: a json.Number on the first
// run (the consumer decodes with UseNumber), a float64 on the runs that
// replay from the stored context.
func intProp(props map[string]any, name string) (int64, error) {
	switch v := props[name].(type) {
	case json.Number:
		return v.Int64()
	case float64:
		return int64(v), nil
	default:
		return 0, fmt.Errorf("property %s is %T, want a number", name, v)
	}
}

// journeysPart runs the three measurements and prints one table, a row at
// a time so that a failure keeps the rows measured before it.
func (b *bench) journeysPart(ctx context.Context) error {
	b.journeys = benchJourneys()
	defer func() { b.journeys = nil }()
	// The machine may be shared: the load tells how much of it the run had.
	fmt.Fprintf(b.out, "\nJourneys (services %s; load average at start %s):\n", strings.Join(journeyServices, ", "), loadAvg())
	fmt.Fprintf(b.out, "| measurement | result | goal |\n|---|---|---|\n")

	w, err := b.journeyWakeUps(ctx)
	if err != nil {
		return fmt.Errorf("wake-ups: %w", err)
	}
	fmt.Fprintf(b.out, "| wake-up: %d sleeps ending at one instant → all completed | %s after the instant (%.0f wake-ups/s; enrolled in %s) | ≤ %s %s |\n",
		wakeContacts, w.done.Round(10*time.Millisecond), float64(wakeContacts)/w.done.Seconds(), w.enrol.Round(10*time.Millisecond), wakeGoal, verdict(w.done <= wakeGoal))

	s, err := b.journeySleepers(ctx)
	if err != nil {
		return fmt.Errorf("sleepers: %w", err)
	}
	n := float64(s.n)
	fmt.Fprintf(b.out, "| %d sleepers: enrolment (ingest → contacts → journeys → TIMERS) | %s (%.0f/s) | |\n", s.n, s.enrol.Round(10*time.Millisecond), n/s.enrol.Seconds())
	fmt.Fprintf(b.out, "| rows per sleeping journey (states + steps + logs) | %.2f (%.2f + %.2f + %.2f) | |\n",
		float64(s.rows[0]+s.rows[1]+s.rows[2])/n, float64(s.rows[0])/n, float64(s.rows[1])/n, float64(s.rows[2])/n)
	fmt.Fprintf(b.out, "| Postgres bytes per sleeping journey (states + steps + logs, with indexes) | %.0f (%.0f + %.0f + %.0f) | |\n",
		float64(s.pgBytes[0]+s.pgBytes[1]+s.pgBytes[2])/n, float64(s.pgBytes[0])/n, float64(s.pgBytes[1])/n, float64(s.pgBytes[2])/n)
	fmt.Fprintf(b.out, "| JetStream bytes per sleeping journey (TIMERS) | %.0f | |\n", float64(s.timerBytes)/n)
	// In-process, so RSS and heap include the embedded NATS server's.
	memRow := func(name string, get func(memSnap) float64) {
		m0, m1, m2 := get(s.before), get(s.asleep), get(s.steady)
		fmt.Fprintf(b.out, "| %s (engine + embedded NATS): before → all asleep → %s later | %.1f → %.1f → %.1f MB (%+.0f, %+.0f B per sleeper) | flat |\n",
			name, s.dedupe, m0/(1<<20), m1/(1<<20), m2/(1<<20), (m1-m0)/n, (m2-m0)/n)
	}
	memRow("process RSS", func(m memSnap) float64 { return m.rss })
	memRow("Go heap in use", func(m memSnap) float64 { return m.heapInuse })
	fmt.Fprintf(b.out, "| goroutines: before → all asleep → %s later | %d → %d → %d | no per-run goroutine %s |\n",
		s.dedupe, s.before.goroutines, s.asleep.goroutines, s.steady.goroutines,
		verdict(max(s.asleep.goroutines, s.steady.goroutines) <= s.before.goroutines))

	if err := b.firstEffectRows(ctx); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "\nLoad average at the end: %s\n", loadAvg())
	return nil
}

// firstEffectPart is the latency row of the journeys part alone, for
// working on it without the minutes the other rows take.
func (b *bench) firstEffectPart(ctx context.Context) error {
	b.journeys = benchJourneys()
	defer func() { b.journeys = nil }()
	fmt.Fprintf(b.out, "\nFirst effect (services %s; load average at start %s):\n", strings.Join(journeyServices, ", "), loadAvg())
	fmt.Fprintf(b.out, "| measurement | result | goal |\n|---|---|---|\n")
	if err := b.firstEffectRows(ctx); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "\nLoad average at the end: %s\n", loadAvg())
	return nil
}

// firstEffectRows measures and prints the trigger-to-first-effect rows.
func (b *bench) firstEffectRows(ctx context.Context) error {
	fe, err := b.journeyFirstEffect(ctx)
	if err != nil {
		return fmt.Errorf("first effect: %w", err)
	}
	spread := func(d []time.Duration) string {
		out := fmt.Sprintf("p50 %s, p99 %s, max %s", pct(d, 50), pct(d, 99), pct(d, 100))
		if len(d) < fe.sent {
			out += fmt.Sprintf("; only %d of %d arrived", len(d), fe.sent)
		}
		return out
	}
	fmt.Fprintf(b.out, "| trigger → ACTIVITY (contacts projection alone, the baseline of the next row), %d events/s for %s | %s | |\n",
		effectRate, effectFor, spread(fe.activity))
	met := len(fe.email) == fe.sent && fe.email[(len(fe.email)-1)*99/100] < effectGoal
	fmt.Fprintf(b.out, "| trigger → first effect (POST /v1/events → command on EMAILS), %d events/s for %s | %s | p99 < %s %s |\n",
		effectRate, effectFor, spread(fe.email), effectGoal, verdict(met))
	return nil
}

// loadAvg is the 1-minute load average, "?" when unknown.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func verdict(met bool) string {
	if met {
		return "(met)"
	}
	return "(**missed**)"
}

type wakeResult struct {
	enrol time.Duration // from the first POST until every state waits
	done  time.Duration // from the instant until every state completed
}

// journeyWakeUps enrols wakeContacts contacts into a journey sleeping until
// one instant and times how long after it the last run completed.
func (b *bench) journeyWakeUps(ctx context.Context) (wakeResult, error) {
	m, stop, err := b.app(ctx, journeyServices)
	if err != nil {
		return wakeResult{}, err
	}
	defer stop()
	db, err := pgx.Connect(ctx, m.Config.DatabaseURL)
	if err != nil {
		return wakeResult{}, err
	}
	defer db.Close(context.Background())

	start := time.Now()
	wakeAt := start.Add(wakeLead)
	events := make([][]byte, wakeContacts)
	for i := range events {
		events[i] = fmt.Appendf(nil, `{"name":%q,"userId":"wake-%d","email":"wake-%d@example.com","eventProperties":{%q:%d}}`,
			benchSleepEvent, i, i, benchWakeAtProp, wakeAt.UnixMilli())
	}
	if err := postBatches(ctx, m, batchBodies(events, 500)); err != nil {
		return wakeResult{}, err
	}
	if err := waitStates(ctx, db, benchSleepID, journeys.StatusWaiting, wakeContacts, wakeAt); err != nil {
		return wakeResult{}, fmt.Errorf("enrolment did not finish within the %s lead (raise wakeLead): %w", wakeLead, err)
	}
	res := wakeResult{enrol: time.Since(start)}

	// The runs complete once woken; poll the database rather than
	// JetStream consumer info, whose requests queue behind the consumers'.
	if err := waitStates(ctx, db, benchSleepID, journeys.StatusCompleted, wakeContacts, wakeAt.Add(5*time.Minute)); err != nil {
		return wakeResult{}, err
	}
	res.done = time.Since(wakeAt)
	return res, m.Err()
}

// waitStates polls until want states of journeyID have status, failing
// at deadline or as soon as a run failed (the count would never arrive).
func waitStates(ctx context.Context, db *pgx.Conn, journeyID, status string, want int, deadline time.Time) error {
	for {
		var n, failed int
		err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = $2), count(*) FILTER (WHERE status = 'failed')
			FROM journey_states WHERE journey_id = $1`, journeyID, status).Scan(&n, &failed)
		if err != nil {
			return err
		}
		switch {
		case failed > 0:
			var msg string
			_ = db.QueryRow(ctx, `SELECT coalesce(error_message, '') FROM journey_states WHERE journey_id = $1 AND status = 'failed' LIMIT 1`, journeyID).Scan(&msg)
			return fmt.Errorf("%d runs of %s failed, e.g.: %s", failed, journeyID, msg)
		case n >= want:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%d of %d states of %s %s by %s", n, want, journeyID, status, deadline.Format(time.TimeOnly))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

type memSnap struct {
	rss, heapInuse float64 // bytes
	goroutines     int
}

// snapshot reads the process's memory after returning what it can to the
// OS, so that garbage does not count as growth.
func snapshot() memSnap {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnap{rss: rssMB(os.Getpid(), "VmRSS") * (1 << 20), heapInuse: float64(ms.HeapInuse), goroutines: runtime.NumGoroutine()}
}

type sleepersResult struct {
	n     int
	enrol time.Duration
	// Memory before enrolling, once all are asleep, and dedupe later: the
	// NATS server keeps every message id for its duplicates window, so
	// only the last reading shows what the sleepers hold for good.
	before, asleep, steady memSnap
	dedupe                 time.Duration
	// rows and pgBytes of journey_states, journey_steps, journey_logs
	// added by the sleepers.
	rows, pgBytes [3]int64
	timerBytes    uint64
}

// journeySleepers puts b.n contacts to sleep at once and reports what each
// sleeping journey costs, and the process's memory before and after.
func (b *bench) journeySleepers(ctx context.Context) (sleepersResult, error) {
	res := sleepersResult{n: b.n}
	m, stop, err := b.app(ctx, journeyServices)
	if err != nil {
		return res, err
	}
	defer stop()
	db, err := pgx.Connect(ctx, m.Config.DatabaseURL)
	if err != nil {
		return res, err
	}
	defer db.Close(context.Background())
	timers, err := m.js.Stream(ctx, streams.StreamTimers)
	if err != nil {
		return res, err
	}
	activity, err := m.js.Stream(ctx, streams.StreamActivity)
	if err != nil {
		return res, err
	}

	// The contacts exist before the baseline, so that the difference is
	// the sleepers': the contacts' rows and the per-subject state of
	// EVENTS and ACTIVITY (their subjects are per contact) grow with
	// contacts, whether they sleep or not.
	if err := postBatches(ctx, m, benchEvents(b.n, benchContactEvent)); err != nil {
		return res, err
	}
	for created := time.Now(); ; time.Sleep(250 * time.Millisecond) {
		info, err := activity.Info(ctx)
		if err != nil {
			return res, err
		}
		if info.State.Msgs >= uint64(b.n) {
			break
		}
		if time.Since(created) > 15*time.Minute {
			return res, fmt.Errorf("ACTIVITY holds %d of %d events", info.State.Msgs, b.n)
		}
	}
	time.Sleep(settle)
	res.before = snapshot()
	rows0, bytes0, err := journeyTables(ctx, db)
	if err != nil {
		return res, err
	}

	start := time.Now()
	if err := postBatches(ctx, m, benchEvents(b.n, benchSleepersEvent)); err != nil {
		return res, err
	}
	if err := waitStates(ctx, db, benchSleepersID, journeys.StatusWaiting, b.n, start.Add(15*time.Minute)); err != nil {
		return res, err
	}
	// A run's timer is published after its transaction commits: wait for
	// TIMERS to hold every one.
	for ; ; time.Sleep(250 * time.Millisecond) {
		info, err := timers.Info(ctx)
		if err != nil {
			return res, err
		}
		if info.State.Msgs >= uint64(b.n) {
			res.timerBytes = info.State.Bytes
			break
		}
		if time.Since(start) > 15*time.Minute {
			return res, fmt.Errorf("TIMERS holds %d of %d schedules", info.State.Msgs, b.n)
		}
	}
	res.enrol = time.Since(start)
	time.Sleep(settle)
	res.asleep = snapshot()
	rows1, bytes1, err := journeyTables(ctx, db)
	if err != nil {
		return res, err
	}
	for i := range res.rows {
		res.rows[i] = rows1[i] - rows0[i]
		res.pgBytes[i] = bytes1[i] - bytes0[i]
	}
	res.dedupe = m.Config.Retention.Duplicates + 10*time.Second
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(res.dedupe):
	}
	res.steady = snapshot()
	return res, m.Err()
}

// benchEvents are n batch bodies of the event name for contacts
// sleeper-0…n-1, with an email so that journeys can send.
func benchEvents(n int, name string) [][]byte {
	events := make([][]byte, n)
	for i := range events {
		events[i] = fmt.Appendf(nil, `{"name":%q,"userId":"sleeper-%d","email":"sleeper-%d@example.com"}`, name, i, i)
	}
	return batchBodies(events, 500)
}

// journeyTables reads the row counts and total sizes (indexes and TOAST
// included) of journey_states, journey_steps and journey_logs.
func journeyTables(ctx context.Context, db *pgx.Conn) (rows, size [3]int64, err error) {
	err = db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM journey_states), (SELECT count(*) FROM journey_steps), (SELECT count(*) FROM journey_logs),
		pg_total_relation_size('journey_states'), pg_total_relation_size('journey_steps'), pg_total_relation_size('journey_logs')`).
		Scan(&rows[0], &rows[1], &rows[2], &size[0], &size[1], &size[2])
	return rows, size, err
}

type firstEffect struct {
	sent int
	// activity and email are the latencies, sorted, from just before an
	// event's POST until its ACTIVITY message, and until its journey's
	// email command, were seen.
	activity, email []time.Duration
}

// journeyFirstEffect posts one event per request for a new contact at a
// steady effectRate and times each event's way to its journey's email
// command on EMAILS, and to its ACTIVITY message on the way: the part
// before the journeys runtime.
func (b *bench) journeyFirstEffect(ctx context.Context) (firstEffect, error) {
	var res firstEffect
	m, stop, err := b.app(ctx, journeyServices)
	if err != nil {
		return res, err
	}
	defer stop()

	var (
		sentAt        sync.Map // user id → time.Time of the POST
		mu            sync.Mutex
		activity, ems []time.Duration // appended by the callbacks under mu
	)
	// seen records the latency of user's event when its t0 is known; del
	// drops the user so that a re-published message counts once.
	seen := func(user string, at time.Time, into *[]time.Duration, del bool) {
		var t0 any
		var ok bool
		if del {
			t0, ok = sentAt.LoadAndDelete(user)
		} else {
			t0, ok = sentAt.Load(user)
		}
		if ok {
			mu.Lock()
			*into = append(*into, at.Sub(t0.(time.Time)))
			mu.Unlock()
		}
	}
	// Core subscriptions see each message as it is published to its
	// stream. EMAILS is a work-queue stream, which takes no ordered
	// (ack-none) consumer, and no mailer runs to take the commands.
	actSub, err := m.nc.Subscribe(streams.ActivityRoot+".>", func(msg *nats.Msg) {
		at := time.Now()
		var a struct {
			Key   string `json:"key"`
			Event struct {
				Name string `json:"name"`
			} `json:"event"`
		}
		if json.Unmarshal(msg.Data, &a) == nil && a.Event.Name == benchEffectEvent {
			seen(a.Key, at, &activity, false)
		}
	})
	if err != nil {
		return res, err
	}
	defer actSub.Unsubscribe() //nolint:errcheck
	emailSub, err := m.nc.Subscribe(streams.EmailSendSubject, func(msg *nats.Msg) {
		at := time.Now()
		var cmd streams.EmailCommand
		if json.Unmarshal(msg.Data, &cmd) == nil && cmd.JourneyID == benchEffectID {
			seen(cmd.UserID, at, &ems, true)
		}
	})
	if err != nil {
		return res, err
	}
	defer emailSub.Unsubscribe() //nolint:errcheck

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()
	// pace posts n events for users prefix-0..n-1 at effectRate and waits
	// until n email commands were seen since the call.
	pace := func(prefix string, n int) error {
		mu.Lock()
		seenBefore := len(ems)
		mu.Unlock()
		interval := time.Second / effectRate
		var wg sync.WaitGroup
		var firstErr atomic.Value
		start := time.Now()
		for i := 0; i < n; i++ {
			if w := time.Until(start.Add(time.Duration(i) * interval)); w > 0 {
				time.Sleep(w)
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				user := fmt.Sprintf("%s-%d", prefix, i)
				body := fmt.Sprintf(`{"name":%q,"userId":%q,"email":"%s@example.com"}`, benchEffectEvent, user, user)
				// Stored before the POST: the messages may arrive before the
				// response does.
				sentAt.Store(user, time.Now())
				if err := postOne(ctx, hc, m, "/v1/events", []byte(body)); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}(i)
		}
		wg.Wait()
		if v := firstErr.Load(); v != nil {
			return v.(error)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			mu.Lock()
			got := len(ems) - seenBefore
			mu.Unlock()
			if got >= n {
				break
			}
		}
		return nil
	}
	// Warm-up: a second at the same rate, not counted. A fresh process
	// opens its database connections and prepares its statements on first
	// use, which delays the first few hundred milliseconds of events by
	// tens of milliseconds; the goal is about the steady state.
	if err := pace("warm", effectRate); err != nil {
		return res, err
	}
	mu.Lock()
	activity, ems = nil, nil
	mu.Unlock()
	sentAt.Clear()
	res.sent = int(effectRate * effectFor.Seconds())
	if err := pace("fe", res.sent); err != nil {
		return res, err
	}
	// Copies: a callback may still run until the subscriptions end.
	mu.Lock()
	res.activity, res.email = slices.Clone(activity), slices.Clone(ems)
	mu.Unlock()
	if len(res.email) == 0 {
		return res, errors.New("no email command arrived on EMAILS")
	}
	slices.Sort(res.activity)
	slices.Sort(res.email)
	return res, m.Err()
}

// postBatches posts bodies to the batch route from 8 clients, like
// postAll, but closes the client's connections afterwards: the sleepers
// measurement counts goroutines, and a kept-alive connection holds some on
// both ends.
func postBatches(ctx context.Context, m *Main, bodies [][]byte) error {
	const clients = 8
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer hc.CloseIdleConnections()
	var next atomic.Int64
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(bodies) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				if err := postOne(ctx, hc, m, "/v1/events/batch", bodies[i]); err != nil {
					errs[c] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// postOne posts body to the engine's route and expects 202 Accepted.
func postOne(ctx context.Context, hc *http.Client, m *Main, route string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL()+route, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+m.Config.AdminAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("POST %s: status %d: %s", route, resp.StatusCode, msg)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}
