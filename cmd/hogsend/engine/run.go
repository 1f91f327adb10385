// Package engine is the Hogsend engine behind the `hogsend` command:
// `hogsend dev` runs everything in one process on an embedded NATS server;
// `hogsend serve` runs chosen services against an external NATS; the other
// subcommands migrate, replay, publish test events and manage API keys.
//
// It is importable so that a product can run the engine with its own
// definitions (code-first): a main package of the product's calls
//
//	os.Exit(engine.Execute(engine.Options{Buckets: myBuckets}))
//
// and gets the same command line as the stock binary.
package engine

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

const usage = `Hogsend, the code-first lifecycle email engine.

Usage: hogsend <command> [flags]

Commands:
  dev                  run everything in one process (embedded NATS, migrations, all services)
  serve [--only a,b]   run services against NATS_URL (api, contacts, buckets, journeys,
                       mailer; default all); --partitions 0-7
  migrate              apply database migrations
  replay contacts --from-start
                       rebuild contacts, aliases and history from the EVENTS stream
  send --name N [--user-id U] [--email E] [--props JSON]
                       publish a test event over NATS
  apikey create --scope S [--scope S] [--name N]
  apikey list | apikey revoke <id>
  buckets backfill <id>
                       (re)compute a bucket's members from the current contacts
  dlq list|retry <id>|discard <id>
                       inspect and re-drive dead letters
  bench [--events N]   measure throughput, latency and memory (see BENCHMARKS.md)
  version              print the version

Configuration comes from the environment (DATABASE_URL, NATS_URL, PORT,
API_PUBLIC_URL, ADMIN_API_KEY, HOGSEND_DATA_DIR, LOG_LEVEL, LOG_FORMAT, ...);
see the README. 'hogsend <command> -h' lists a command's flags.
`

// Options are the definitions a program runs the engine with.
type Options struct {
	// Buckets are the segment definitions; nil runs the stock examples.
	Buckets []*buckets.Bucket
	// Journeys are the journey definitions; nil runs the stock examples.
	Journeys []*journey.Journey
	// Reactions are handlers of bucket transitions (journey.OnEnter,
	// journey.OnLeave).
	Reactions []journey.Reaction
}

// Execute runs the command line (os.Args) until it is done or SIGINT or
// SIGTERM ends it, and returns the process exit code.
func Execute(opts Options) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runWith(ctx, os.Args[1:], os.Stdout, os.Stderr, opts)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hogsend:", err)
		}
		return 1
	}
	return 0
}

// run is runWith the stock definitions.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWith(ctx, args, stdout, stderr, Options{})
}

// runWith dispatches a subcommand; it returns when the command is done (for
// dev and serve: when ctx is cancelled and shutdown completed).
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, opts Options) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runServer(ctx, "dev", rest, true, stdout, stderr, opts)
	case "serve":
		return runServer(ctx, "serve", rest, false, stdout, stderr, opts)
	case "migrate":
		return runMigrate(ctx, rest, stderr)
	case "replay":
		return runReplay(ctx, rest, stdout, stderr)
	case "send":
		return runSend(ctx, rest, stdout, stderr)
	case "apikey":
		return runAPIKey(ctx, rest, stdout, stderr)
	case "buckets":
		return runBuckets(ctx, rest, stdout, stderr, opts)
	case "dlq":
		return runDLQ(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "hogsend", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hogsend "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func runServer(ctx context.Context, name string, args []string, dev bool, stdout, stderr io.Writer, opts Options) error {
	fs := newFlagSet(name, stderr)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if !dev && cfg.NATSURL == "" {
		return errors.New("NATS_URL: serve needs an external NATS server (use `hogsend dev` for the embedded one)")
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	m := &Main{Config: cfg, Log: log, Dev: dev, Stdout: stdout, Buckets: opts.Buckets, Journeys: opts.Journeys, Reactions: opts.Reactions}
	if err := m.Run(ctx); err != nil {
		return err
	}
	if m.banner != "" {
		fmt.Fprint(stdout, m.banner)
		if u := m.NATSURL(); u != "" {
			fmt.Fprintf(stdout, "  NATS      %s (publish events to hogsend.ingest.events)\n", u)
		}
	}
	log.Info("hogsend ready", "version", Version, "url", m.URL(), "services", cfg.Services)
	<-ctx.Done()
	log.Info("shutting down: draining consumers")
	if err := m.Close(); err != nil {
		return err
	}
	return m.Err()
}
