package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/projections/contacts"
	"github.com/seed-eeb360f6/hogsend/schema"
	"github.com/seed-eeb360f6/hogsend/services/apikey"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/embedded"
)

func runMigrate(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadConfig(newFlagSet("migrate", stderr), args)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	pool, err := connectPostgres(ctx, cfg.DatabaseURL, true, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := schema.Migrate(ctx, pool); err != nil {
		return err
	}
	applied, _, err := schema.Status(ctx, pool)
	if err != nil {
		return err
	}
	log.Info("database migrated", "version", applied)
	return nil
}

// bareBus connects to NATS_URL, or starts the embedded server on the data
// directory (dev must not be running then: the store is single-process).
func bareBus(cfg Config) (jetstream.JetStream, func(), error) {
	var nc *nats.Conn
	var err error
	closeFn := func() {}
	if cfg.NATSURL != "" {
		nc, err = nats.Connect(cfg.NATSURL, nats.Name("hogsend-cli"))
	} else {
		unlock, lerr := lockDataDir(cfg.DataDir)
		if lerr != nil {
			return nil, nil, lerr
		}
		var srv *embedded.Server
		srv, err = embedded.Start(embedded.Options{DataDir: filepath.Join(cfg.DataDir, "nats"), Listen: "off"})
		if err != nil {
			unlock()
			return nil, nil, err
		}
		nc, err = srv.Connect()
		closeFn = func() { srv.Shutdown(); unlock() }
	}
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		closeFn()
		return nil, nil, err
	}
	return js, func() { nc.Close(); closeFn() }, nil
}

// openStores connects a command to PostgreSQL and to the bus (NATS_URL or
// the embedded store of the data directory) with the streams provisioned.
func openStores(ctx context.Context, cfg Config, log *slog.Logger) (*pgxpool.Pool, jetstream.JetStream, func(), error) {
	pool, err := connectPostgres(ctx, cfg.DatabaseURL, false, log)
	if err != nil {
		return nil, nil, nil, err
	}
	js, closeBus, err := bareBus(cfg)
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	closeAll := func() { closeBus(); pool.Close() }
	if err := bus.Provision(ctx, js, cfg.Retention); err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return pool, js, closeAll, nil
}

// Replay rebuilds the contacts projection from EVENTS: it refuses while
// another process consumes the group, deletes the group's durables,
// truncates the tables, and re-applies every event without republishing.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", stderr)
	if len(args) == 0 || args[0] != contacts.Name {
		return errors.New("usage: hogsend replay contacts --from-start")
	}
	fromStart := fs.Bool("from-start", false, "required: rebuild from the first event")
	force := fs.Bool("force", false, "replay even when a consumer looks active")
	cfg, err := loadConfig(fs, args[1:])
	if err != nil {
		return err
	}
	if !*fromStart {
		return errors.New("replay contacts: --from-start is required (the only supported mode: it rebuilds contacts, aliases and history)")
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	pool, js, closeAll, err := openStores(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	res, err := contacts.Replay(ctx, pool, js, contacts.ReplayOptions{Force: *force, Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replayed %d events in %s (%.0f events/s)\n", res.Events, res.Took.Round(time.Millisecond), float64(res.Events)/res.Took.Seconds())
	return nil
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("send", stderr)
	name := fs.String("name", "", "event name (required)")
	userID := fs.String("user-id", "", "userId")
	email := fs.String("email", "", "email")
	props := fs.String("props", "", "event properties as a JSON object")
	contactProps := fs.String("contact-props", "", "contact properties as a JSON object")
	idem := fs.String("idempotency-key", "", "idempotency key")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	url := cfg.NATSURL
	if url == "" {
		if cfg.NATSListen == "off" {
			return errors.New("send: set NATS_URL, or run `hogsend dev` with HOGSEND_NATS_LISTEN enabled")
		}
		url = "nats://" + cfg.NATSListen
	}
	body := map[string]any{"name": *name}
	if *userID != "" {
		body["userId"] = *userID
	}
	if *email != "" {
		body["email"] = *email
	}
	if *idem != "" {
		body["idempotencyKey"] = *idem
	}
	for _, f := range []struct{ field, flag, raw string }{{"eventProperties", "props", *props}, {"contactProperties", "contact-props", *contactProps}} {
		if f.raw == "" {
			continue
		}
		if !json.Valid([]byte(f.raw)) {
			return fmt.Errorf("send: --%s is not valid JSON", f.flag)
		}
		body[f.field] = json.RawMessage(f.raw)
	}
	data, _ := json.Marshal(body)
	nc, err := nats.Connect(url, nats.Name("hogsend-send"), nats.Timeout(3*time.Second))
	if err != nil {
		return fmt.Errorf("send: connect to %s (is `hogsend dev` running?): %w", url, err)
	}
	defer nc.Close()
	reply, err := nc.RequestWithContext(ctx, streams.IngestSubject, data)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	fmt.Fprintln(stdout, string(reply.Data))
	var res struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(reply.Data, &res) == nil && res.Error != "" {
		return errors.New("send: event rejected")
	}
	return nil
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, strings.Split(v, ",")...); return nil }

func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: hogsend apikey create|list|revoke")
	}
	sub, rest := args[0], args[1:]
	fs := newFlagSet("apikey "+sub, stderr)
	var scopes stringList
	name := fs.String("name", "cli", "key name")
	fs.Var(&scopes, "scope", "scope (repeatable): ingest, read, journey-admin, full-admin")
	cfg, err := loadConfig(fs, rest)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	pool, err := connectPostgres(ctx, cfg.DatabaseURL, false, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	keys := apikey.New(pool, apikey.Options{Logger: log})
	switch sub {
	case "create":
		if len(scopes) == 0 {
			return errors.New("apikey create: at least one --scope is required")
		}
		created, err := keys.Create(ctx, apikey.CreateParams{Name: *name, Scopes: scopes})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, created.Plaintext)
		return nil
	case "list":
		list, _, err := keys.List(ctx, apikey.ListParams{Limit: 100})
		if err != nil {
			return err
		}
		for _, k := range list {
			fmt.Fprintf(stdout, "%s  %-8s  %-20s  %s\n", k.ID, k.KeyPrefix, k.Name, strings.Join(k.Scopes, ","))
		}
		return nil
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("usage: hogsend apikey revoke <id>")
		}
		id, err := uuid.Parse(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("apikey revoke: %q is not a key id", fs.Arg(0))
		}
		if err := keys.Revoke(ctx, id); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "revoked", id)
		return nil
	default:
		return fmt.Errorf("apikey: unknown subcommand %q (create, list, revoke)", sub)
	}
}

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: hogsend dlq list [--source S] [--status pending] | dlq retry <id> | dlq discard <id>")
	}
	sub, rest := args[0], args[1:]
	fs := newFlagSet("dlq "+sub, stderr)
	source := fs.String("source", "", "only dead letters of this consumer")
	status := fs.String("status", bus.DeadLetterPending, "pending, retried or discarded (empty: all)")
	cfg, err := loadConfig(fs, rest)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	pool, err := connectPostgres(ctx, cfg.DatabaseURL, false, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	var store *bus.DeadLetterStore
	if sub == "retry" {
		js, closeBus, err := bareBus(cfg)
		if err != nil {
			return err
		}
		defer closeBus()
		store = bus.NewDeadLetterStore(pool, js)
	} else {
		store = bus.NewDeadLetterStore(pool, nil)
	}
	idArg := func() (uuid.UUID, error) {
		if fs.NArg() != 1 {
			return uuid.Nil, fmt.Errorf("usage: hogsend dlq %s <id>", sub)
		}
		id, err := uuid.Parse(fs.Arg(0))
		if err != nil {
			return uuid.Nil, fmt.Errorf("dlq %s: %q is not a dead letter id", sub, fs.Arg(0))
		}
		return id, nil
	}
	switch sub {
	case "list":
		rows, total, err := store.List(ctx, bus.DeadLetterFilter{Source: *source, Status: *status, Limit: 100})
		if err != nil {
			return err
		}
		for _, dl := range rows {
			fmt.Fprintf(stdout, "%s  %-10s  %-9s  %s  %s\n", dl.ID, dl.Source, dl.Status, dl.CreatedAt.Format(time.RFC3339), dl.Error)
		}
		fmt.Fprintf(stdout, "%d of %d shown\n", len(rows), total)
		return nil
	case "retry":
		id, err := idArg()
		if err != nil {
			return err
		}
		if _, err := store.Retry(ctx, id); err != nil {
			return fmt.Errorf("dlq retry: %w", err)
		}
		fmt.Fprintln(stdout, "re-published", id)
		return nil
	case "discard":
		id, err := idArg()
		if err != nil {
			return err
		}
		if _, err := store.Discard(ctx, id); err != nil {
			return fmt.Errorf("dlq discard: %w", err)
		}
		fmt.Fprintln(stdout, "discarded", id)
		return nil
	default:
		return fmt.Errorf("dlq: unknown subcommand %q (list, retry, discard)", sub)
	}
}

// runBuckets is `hogsend buckets backfill <id>`: (re)compute one bucket's
// memberships from the current contacts, as a new or changed bucket gets at
// start, and wait for the job.
func runBuckets(ctx context.Context, args []string, stdout, stderr io.Writer, opts Options) error {
	if len(args) < 1 || args[0] != "backfill" {
		return errors.New("usage: hogsend buckets backfill <bucket id>")
	}
	fs := newFlagSet("buckets backfill", stderr)
	cfg, err := loadConfig(fs, args[1:])
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: hogsend buckets backfill <bucket id>")
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	pool, js, closeAll, err := openStores(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		return err
	}
	defs := opts.Buckets
	if defs == nil {
		defs = exampleBuckets()
	}
	reg, err := buckets.NewRegistry(cfg.EnabledBuckets, defs...)
	if err != nil {
		return err
	}
	bf := buckets.NewBackfiller(pool, pub, reg, log)
	job, err := bf.Enqueue(ctx, fs.Arg(0))
	if err != nil {
		return fmt.Errorf("buckets backfill: %w", err)
	}
	if err := bf.Run(ctx, job.ID); err != nil {
		return fmt.Errorf("buckets backfill: %w", err)
	}
	fmt.Fprintf(stdout, "backfilled %s (job %s)\n", fs.Arg(0), job.ID)
	return nil
}
