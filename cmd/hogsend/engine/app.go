package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/seed-eeb360f6/hogsend/projections"
	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/projections/contacts"
	"github.com/seed-eeb360f6/hogsend/schema"
	"github.com/seed-eeb360f6/hogsend/services/admin"
	"github.com/seed-eeb360f6/hogsend/services/apikey"
	"github.com/seed-eeb360f6/hogsend/services/bucketapi"
	"github.com/seed-eeb360f6/hogsend/services/contactapi"
	"github.com/seed-eeb360f6/hogsend/services/emailapi"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/ingest"
	"github.com/seed-eeb360f6/hogsend/services/journeyapi"
	"github.com/seed-eeb360f6/hogsend/services/journeys"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/services/lists/list"
	"github.com/seed-eeb360f6/hogsend/services/mailer"
	"github.com/seed-eeb360f6/hogsend/services/mailer/devoutbox"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
	"github.com/seed-eeb360f6/hogsend/services/posthogsync"
	"github.com/seed-eeb360f6/hogsend/services/preferences"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/embedded"
)

// Version is the engine version reported by health and the banner.
const Version = "0.1.0"

// Main is one running Hogsend process: storage, the bus, the consumers and
// the HTTP server. Run starts it, Close stops it gracefully; end-to-end
// tests drive the same type the binary runs.
type Main struct {
	Config Config
	Log    *slog.Logger
	// Dev creates the database if missing, applies migrations and prints
	// the first-start banner; otherwise the schema must be current.
	Dev    bool
	Stdout io.Writer
	// Buckets are the segment definitions; nil means the stock examples.
	Buckets []*buckets.Bucket
	// Journeys are the journey definitions; nil means the stock examples.
	Journeys []*journey.Journey
	// Reactions are bucket reactions (spec 10 §4.10), bound to their
	// buckets at start.
	Reactions []journey.Reaction
	// Templates are the email templates; nil means the stock ones.
	Templates []templates.Template
	// Lists are the subscription lists; nil means the stock examples.
	Lists []list.List

	banner    string
	unlock    func()
	started   time.Time
	natsSrv   *embedded.Server
	nc        *nats.Conn
	js        jetstream.JetStream
	pool      *pgxpool.Pool
	reg       *prometheus.Registry
	listener  net.Listener
	http      *http.Server
	contacts  *bus.Partitioned
	buckets   *bus.Partitioned
	registry  *buckets.Registry
	journeys  *journey.Registry
	journeyC  *bus.Partitioned
	tpls      *templates.Registry
	provider  provider.Provider
	mailer    *mailer.Mailer
	lists     *list.Registry
	prefStore *preferences.Store
	prefs     *preferences.Service
	analytics *posthogsync.Analytics // nil without POSTHOG_API_KEY

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	errs   []error
	closed sync.Once
}

// Run starts everything and returns once the process serves requests.
// Background failures are reported by Wait.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.Log == nil {
		m.Log = slog.Default()
	}
	if m.Stdout == nil {
		m.Stdout = os.Stdout
	}
	m.started = time.Now()
	defer func() {
		if err != nil {
			_ = m.Close()
		}
	}()
	if err := m.openDatabase(ctx); err != nil {
		return err
	}
	if err := m.openNATS(ctx); err != nil {
		return err
	}
	m.reg = prometheus.NewRegistry()
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: m.js, Registerer: m.reg})
	if err != nil {
		return err
	}
	deadLetters := bus.NewDeadLetterStore(m.pool, m.js)
	keys := apikey.New(m.pool, apikey.Options{AdminKey: m.Config.AdminAPIKey})
	if m.Dev {
		if err := m.firstStart(ctx, keys); err != nil {
			return err
		}
	}

	defs := m.Buckets
	if defs == nil {
		defs = exampleBuckets()
	}
	if m.registry, err = buckets.NewRegistry(m.Config.EnabledBuckets, defs...); err != nil {
		return fmt.Errorf("register buckets: %w", err)
	}

	if m.Config.PostHogAPIKey != "" {
		if m.analytics, err = posthogsync.NewAnalytics(m.Config.PostHogAPIKey, m.Config.PostHogHost, 0, m.Log); err != nil {
			return err
		}
	}
	jdefs := m.Journeys
	if jdefs == nil {
		jdefs = exampleJourneys()
	}
	reactions, err := bindReactions(m.Reactions, defs, m.registry)
	if err != nil {
		return err
	}
	if m.journeys, err = journey.NewRegistry(m.Config.EnabledJourneys, append(slices.Clone(jdefs), reactions...)...); err != nil {
		return fmt.Errorf("register journeys: %w", err)
	}
	for _, j := range m.journeys.All() {
		switch j.TriggerEvent() {
		case "bucket:entered":
			m.registry.TriggerGeneric("entered")
		case "bucket:left":
			m.registry.TriggerGeneric("left")
		}
	}

	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel

	if m.Config.runs(ServiceContacts) {
		if err := m.startContacts(runCtx, pub, deadLetters); err != nil {
			return err
		}
	}
	if m.Config.runs(ServiceBuckets) {
		if err := m.startBuckets(runCtx, pub, deadLetters); err != nil {
			return err
		}
	}
	if m.Config.runs(ServiceJourneys) {
		if err := m.startJourneys(runCtx, pub, deadLetters); err != nil {
			return err
		}
	}
	if m.Config.runs(ServiceAPI) || m.Config.runs(ServiceMailer) {
		if err := m.setupEmail(pub); err != nil {
			return err
		}
	}
	if m.Config.runs(ServiceMailer) {
		if err := m.startMailer(runCtx, deadLetters); err != nil {
			return err
		}
	}
	router := httpapi.NewRouter()
	m.healthRoutes(router)
	if m.Config.runs(ServiceAPI) {
		ing, err := ingest.New(pub, ingest.Options{Logger: m.Log, Registry: m.reg, Exits: exitReport{journeys.NewExitChecker(m.pool, m.journeys)}})
		if err != nil {
			return err
		}
		m.apiRoutes(router, keys, ing, pub, deadLetters)
		sub, err := ing.SubscribeNATS(runCtx, m.nc)
		if err != nil {
			return err
		}
		m.goRun("nats ingest", func() error { <-runCtx.Done(); return sub.Drain() })
	}
	return m.serveHTTP(router)
}

func (m *Main) goRun(name string, f func() error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := f(); err != nil && !errors.Is(err, context.Canceled) {
			m.Log.Error("component stopped", "component", name, "err", err)
			m.errMu.Lock()
			m.errs = append(m.errs, fmt.Errorf("%s: %w", name, err))
			m.errMu.Unlock()
		}
	}()
}

func (m *Main) openDatabase(ctx context.Context) error {
	pool, err := connectPostgres(ctx, m.Config.DatabaseURL, m.Dev, m.Log)
	if err != nil {
		return err
	}
	m.pool = pool
	if m.Dev {
		if err := schema.Migrate(ctx, pool); err != nil {
			return err
		}
		return nil
	}
	applied, latest, err := schema.Status(ctx, pool)
	if err != nil {
		return err
	}
	if applied < latest {
		return fmt.Errorf("database schema is at version %d, this build needs %d: run `hogsend migrate` first", applied, latest)
	}
	return nil
}

// connectPostgres opens a pool; with create set, a missing database is
// created first (the dev default works on a fresh server).
func connectPostgres(ctx context.Context, dsn string, create bool, log *slog.Logger) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if cfg.MaxConns < 20 {
		// 16 partitions each hold a connection during a batch.
		cfg.MaxConns = 20
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	err = pool.Ping(ctx)
	var pgErr *pgconn.PgError
	if err != nil && create && errors.As(err, &pgErr) && pgErr.Code == "3D000" {
		pool.Close()
		if err := createDatabase(ctx, cfg.ConnConfig); err != nil {
			return nil, err
		}
		log.Info("created database", "database", cfg.ConnConfig.Database)
		if pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		err = pool.Ping(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at DATABASE_URL (is it running? `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` starts the local one): %w", err)
	}
	return pool, nil
}

func createDatabase(ctx context.Context, cc *pgx.ConnConfig) error {
	admin := cc.Copy()
	name := admin.Database
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to create database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" {
			return nil // created concurrently
		}
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func (m *Main) openNATS(ctx context.Context) error {
	var err error
	if m.Config.NATSURL == "" {
		if m.unlock, err = lockDataDir(m.Config.DataDir); err != nil {
			return err
		}
		m.natsSrv, err = embedded.Start(embedded.Options{
			DataDir:    filepath.Join(m.Config.DataDir, "nats"),
			Listen:     m.Config.NATSListen,
			SyncAlways: m.Config.NATSSync,
			ServerName: "hogsend",
		})
		if err != nil {
			return err
		}
		m.nc, err = m.natsSrv.Connect(nats.Name("hogsend"))
	} else {
		m.nc, err = nats.Connect(m.Config.NATSURL, nats.Name("hogsend"), nats.MaxReconnects(-1))
		if err != nil {
			err = fmt.Errorf("connect to NATS at NATS_URL %s: %w", m.Config.NATSURL, err)
		}
	}
	if err != nil {
		return err
	}
	if m.js, err = jetstream.New(m.nc); err != nil {
		return fmt.Errorf("open jetstream: %w", err)
	}
	return bus.Provision(ctx, m.js, m.Config.Retention)
}

func (m *Main) startContacts(ctx context.Context, pub *bus.Publisher, dl *bus.DeadLetterStore) error {
	proj := contacts.New(contacts.Options{Notifier: m.nc, Logger: m.Log, DeadLetter: func(ctx context.Context, msg bus.Msg, err error) {
		if rerr := dl.Record(ctx, bus.DeadLetter{Source: contacts.Name, Subject: msg.Subject, StreamSeq: msg.Seq, Data: msg.Data, Error: err.Error()}); rerr != nil {
			m.Log.Error("record dead letter", "consumer", contacts.Name, "seq", msg.Seq, "err", rerr)
		}
	}})
	runner := projections.NewRunner(contacts.Name, m.pool, pub, proj, m.Log)
	p, err := bus.NewPartitioned(bus.PartitionedConfig{
		JetStream: m.js, Stream: streams.StreamEvents, Root: streams.EventsRoot, Name: contacts.Name,
		Partitions: m.Config.Partitions, PinnedTTL: m.Config.PinnedTTL, DeadLetters: dl,
		Logger: m.Log, Registerer: m.reg,
	}, runner)
	if err != nil {
		return err
	}
	m.contacts = p
	m.goRun("contacts projection", func() error { return p.Run(ctx) })
	// Keep hogsend_consumer_pending current between readiness probes.
	m.goRun("contacts lag", func() error {
		tick := time.NewTicker(15 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				if _, err := p.Lag(ctx); err != nil && ctx.Err() == nil {
					m.Log.Debug("read contacts lag", "err", err)
				}
			}
		}
	})
	return nil
}

// startBuckets runs the real-time segment evaluation on ACTIVITY.
func (m *Main) startBuckets(ctx context.Context, pub *bus.Publisher, dl *bus.DeadLetterStore) error {
	runner := projections.NewRunner(buckets.Name, m.pool, pub, buckets.NewProjector(m.registry, m.Log), m.Log)
	p, err := bus.NewPartitioned(bus.PartitionedConfig{
		JetStream: m.js, Stream: streams.StreamActivity, Root: streams.ActivityRoot, Name: buckets.Name,
		Partitions: m.Config.Partitions, PinnedTTL: m.Config.PinnedTTL, DeadLetters: dl,
		Logger: m.Log, Registerer: m.reg,
	}, runner)
	if err != nil {
		return err
	}
	m.buckets = p
	m.goRun("buckets evaluation", func() error { return p.Run(ctx) })
	// Every buckets instance sweeps on its ticker; an advisory lock lets
	// one sweep run at a time across instances.
	sweeper := buckets.NewReconciler(m.pool, pub, m.registry, m.Log, nil)
	m.goRun("buckets reconcile", func() error { return sweeper.RunSweeps(ctx, m.Config.ReconcileEvery) })
	expiry := buckets.NewExpiryHandler(m.pool, pub, m.registry, m.Log, nil)
	m.goRun("buckets expiry timers", func() error {
		return bus.RunWorkQueue(ctx, bus.WorkQueueConfig{
			JetStream: m.js, Stream: streams.StreamTimers, Name: "bucket-expiry", FilterSubject: buckets.ExpiryDueSubject,
			DeadLetters: dl, Logger: m.Log, Registerer: m.reg,
		}, expiry.Handle)
	})
	// A new bucket, or one whose criteria changed, gets its memberships
	// computed from the current contacts (spec 10 §4.9); jobs are claimed
	// with SKIP LOCKED, so several instances share them.
	backfill := buckets.NewBackfiller(m.pool, pub, m.registry, m.Log)
	m.goRun("buckets backfill", func() error {
		if _, err := backfill.Check(ctx); err != nil && ctx.Err() == nil {
			m.Log.Error("bucket backfill check", "err", err)
		}
		if err := backfill.RunPending(ctx); err != nil && ctx.Err() == nil {
			m.Log.Error("bucket backfill", "err", err)
		}
		return nil
	})
	// Off (returns at once) unless POSTHOG_API_KEY is set.
	m.goRun("posthog sync", func() error {
		return posthogsync.Run(ctx, posthogsync.Config{
			APIKey: m.Config.PostHogAPIKey, Host: m.Config.PostHogHost,
			Registry: m.registry, JetStream: m.js, DeadLetters: dl,
			Logger: m.Log, Registerer: m.reg,
		})
	})
	return nil
}

// exitReport adapts the journeys' exit check to the ingest answer.
type exitReport struct{ c *journeys.ExitChecker }

func (r exitReport) Exits(ctx context.Context, e *streams.Event) ([]ingest.Exit, error) {
	exits, err := r.c.Exits(ctx, e)
	if err != nil || exits == nil {
		return nil, err
	}
	out := make([]ingest.Exit, len(exits))
	for i, x := range exits {
		out[i] = ingest.Exit{JourneyID: x.JourneyID, StateID: x.StateID, Exited: x.Exited}
	}
	return out, nil
}

// bindReactions turns reactions into journeys. A reaction names a defined
// bucket (else the start fails); one whose bucket ENABLED_BUCKETS filtered
// out is not registered (spec 10 §5.1).
func bindReactions(rs []journey.Reaction, defs []*buckets.Bucket, reg *buckets.Registry) ([]*journey.Journey, error) {
	var out []*journey.Journey
	for _, r := range rs {
		i := slices.IndexFunc(defs, func(b *buckets.Bucket) bool { return b.ID() == r.BucketID })
		if i < 0 {
			return nil, fmt.Errorf("reaction %s: bucket %q is not defined", r.ID(), r.BucketID)
		}
		b, ok := reg.Get(r.BucketID)
		if !ok {
			continue
		}
		j, err := r.Bind(b.Name(), b.Enabled())
		if err != nil {
			return nil, fmt.Errorf("register reactions: %w", err)
		}
		if d := j.Meta().DwellSchedule; d != nil {
			// The bucket sweep fires dwell schedules.
			reg.AddDwell(r.BucketID, buckets.DwellSchedule{Label: d.Label, After: d.After, Every: d.Every})
		}
		out = append(out, j)
	}
	return out, nil
}

// setupEmail builds the templates, the provider and the mailer.
func (m *Main) setupEmail(pub *bus.Publisher) error {
	if err := m.setupPreferences(pub); err != nil {
		return err
	}
	var err error
	if m.tpls, err = m.emailTemplates(); err != nil {
		return err
	}
	if m.provider, err = m.emailProvider(); err != nil {
		return err
	}
	opts := mailer.Options{
		Suppression: m.prefStore, Links: m.prefs,
		Publisher: pub, Notifier: m.nc, Logger: m.Log, Registerer: m.reg,
	}
	if m.analytics != nil {
		opts.Analytics = m.analytics
	}
	m.mailer, err = m.newMailer(m.tpls, m.provider, opts)
	return err
}

// startMailer runs the mailer consumer on EMAILS and the lists consumer on
// ACTIVITY.
func (m *Main) startMailer(ctx context.Context, dl *bus.DeadLetterStore) error {
	lists, err := bus.NewPartitioned(bus.PartitionedConfig{
		JetStream: m.js, Stream: streams.StreamActivity, Root: streams.ActivityRoot, Name: preferences.ListsConsumer,
		Partitions: m.Config.Partitions, PinnedTTL: m.Config.PinnedTTL, DeadLetters: dl,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, StartTime: m.consumersStart(),
		Logger: m.Log, Registerer: m.reg,
	}, bus.BatchHandlerFunc(m.prefStore.ApplyLists))
	if err != nil {
		return err
	}
	m.goRun("lists", func() error { return lists.Run(ctx) })
	m.goRun("mailer", func() error {
		// Batches of up to 100 commands: a few statements and (with a
		// batch-safe provider) one provider call per batch.
		return bus.RunWorkQueueBatch(ctx, bus.WorkQueueBatchConfig{
			WorkQueueConfig: bus.WorkQueueConfig{
				JetStream: m.js, Stream: streams.StreamEmails, Name: mailer.Name, FilterSubject: streams.EmailSendSubject,
				Workers: mailerWorkers, MaxDeliver: mailerMaxDeliver, DeadLetters: dl, Logger: m.Log, Registerer: m.reg,
			},
			BatchSize: mailerBatchSize, Linger: 5 * time.Millisecond,
		}, m.mailer.HandleBatch)
	})
	return nil
}

// newConsumerLookback is how far back a consumer of ACTIVITY with effects
// starts when its durables do not exist yet: a journeys or lists service
// added to a running install acts on the last minutes only (services
// started in any order still see each other's first events), never on the
// weeks of history ACTIVITY keeps, which would enrol and mail contacts for
// old events.
const newConsumerLookback = 5 * time.Minute

func (m *Main) consumersStart() time.Time { return m.started.Add(-newConsumerLookback) }

// startJourneys runs enrolment, exits and resumes on ACTIVITY and the
// wake-up worker on TIMERS.
func (m *Main) startJourneys(ctx context.Context, pub *bus.Publisher, dl *bus.DeadLetterStore) error {
	opts := journeys.Options{Logger: m.Log, Registerer: m.reg, NoLifecycleEvents: !m.Config.JourneyLifecycleEvents, RunTimeout: m.Config.JourneyRunTimeout,
		EventsPosition: func(ctx context.Context) (uint64, error) { return bus.LastSequence(ctx, m.js, streams.StreamEvents) }}
	if m.analytics != nil {
		opts.Analytics = m.analytics
	}
	svc, err := journeys.New(m.pool, pub, m.journeys, opts)
	if err != nil {
		return err
	}
	runner := projections.NewRunner(journeys.Name, m.pool, pub, svc, m.Log)
	p, err := bus.NewPartitioned(bus.PartitionedConfig{
		JetStream: m.js, Stream: streams.StreamActivity, Root: streams.ActivityRoot, Name: journeys.Name,
		Partitions: m.Config.Partitions, PinnedTTL: m.Config.PinnedTTL, DeadLetters: dl,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, StartTime: m.consumersStart(),
		Logger: m.Log, Registerer: m.reg,
	}, runner)
	if err != nil {
		return err
	}
	m.journeyC = p
	m.goRun("journeys", func() error { return p.Run(ctx) })
	m.goRun("journey wake-ups", func() error {
		// Timers due together are woken in batches: one transaction, a few
		// statements and one publish per batch.
		return bus.RunWorkQueueBatch(ctx, bus.WorkQueueBatchConfig{
			WorkQueueConfig: bus.WorkQueueConfig{
				JetStream: m.js, Stream: streams.StreamTimers, Name: "journey-timers", FilterSubject: journeys.TimerDueSubject,
				Workers: 4, DeadLetters: dl, Logger: m.Log, Registerer: m.reg,
			},
			BatchSize: 100, Linger: 5 * time.Millisecond,
		}, svc.HandleTimers)
	})
	return nil
}

func (m *Main) apiRoutes(router *httpapi.Router, keys *apikey.Store, ing *ingest.Service, pub *bus.Publisher, dl *bus.DeadLetterStore) {
	limiter := httpapi.NewRateLimiter(httpapi.RateLimitOptions{Limit: m.Config.RateLimit, Disabled: m.Config.RateLimit == 0})
	router.Use("/v1/admin", httpapi.Authenticate(keys), httpapi.RateLimit(limiter))
	ing.Routes(router, keys)
	contactapi.New(m.pool, m.nc, pub, contactapi.Options{Logger: m.Log, ApplyTimeout: m.Config.ApplyTimeout}).Routes(router, keys)
	keys.Routes(router, keys)
	admin.NewDLQ(dl).Routes(router, keys)
	bucketapi.New(m.pool, m.registry).Routes(router, keys)
	journeyapi.New(m.pool, m.journeys, ing).Routes(router, keys)
	emailAPI := mailer.NewAPI(m.pool, m.tpls, pub, m.nc, mailer.APIOptions{})
	emailAPI.Routes(router, keys)
	emailapi.New(m.pool, emailAPI).Routes(router, keys)
	m.mailer.TrackingRoutes(router)
	m.mailer.WebhookRoutes(router, m.Config.ResendWebhookSecret, deliverability{store: m.prefStore})
	m.prefs.Routes(router, keys)
	devoutbox.New(m.pool).Routes(router, keys)
	router.Handle(http.MethodGet, "/v1/openapi.json", httpapi.OpenAPIHandler(router, httpapi.OpenAPIInfo{Title: "Hogsend API", Version: Version}), httpapi.Doc{
		Summary: "This OpenAPI document", Tags: []string{"meta"},
	})
}

func (m *Main) serveHTTP(router *httpapi.Router) error {
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (PORT): %w", m.Config.Addr, err)
	}
	m.listener = ln
	m.http = &http.Server{
		Handler:           httpapi.Stack(router, m.Log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       72 * time.Second,
	}
	m.goRun("http", func() error {
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}

// URL is the base URL the HTTP server listens on.
func (m *Main) URL() string {
	if m.listener == nil {
		return ""
	}
	addr := m.listener.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "localhost"
	}
	return fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(addr.Port)))
}

// NATSURL is where other processes reach the embedded NATS server ("" when
// external or not listening).
func (m *Main) NATSURL() string {
	if m.natsSrv == nil {
		return ""
	}
	return m.natsSrv.ClientURL()
}

// Err returns the background failures so far.
func (m *Main) Err() error {
	m.errMu.Lock()
	defer m.errMu.Unlock()
	return errors.Join(m.errs...)
}

// Close stops accepting requests, drains the consumers (the batch in hand
// finishes and is acknowledged), then closes NATS and Postgres.
func (m *Main) Close() error {
	m.closed.Do(func() {
		if m.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = m.http.Shutdown(ctx)
			cancel()
		}
		if m.cancel != nil {
			m.cancel()
		}
		m.wg.Wait()
		if m.analytics != nil {
			// Every run and tracking hit has stopped: send what is queued.
			if err := m.analytics.Close(); err != nil {
				m.Log.Warn("close posthog analytics", "err", err)
			}
		}
		if m.nc != nil {
			_ = m.nc.Drain()
			for i := 0; i < 100 && !m.nc.IsClosed(); i++ {
				time.Sleep(10 * time.Millisecond)
			}
			m.nc.Close()
		}
		if m.natsSrv != nil {
			m.natsSrv.Shutdown()
		}
		if m.unlock != nil {
			m.unlock()
		}
		if m.pool != nil {
			m.pool.Close()
		}
	})
	return nil
}
