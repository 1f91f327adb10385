package engine

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Config is the process configuration, read once from the environment
// (flags may override) and validated before anything starts.
type Config struct {
	DatabaseURL  string
	NATSURL      string // empty: embedded server
	Port         int
	Addr         string // listen address; defaults to ":<Port>"
	PublicURL    string
	AdminAPIKey  string
	DataDir      string
	NATSListen   string // embedded server's TCP listener; "off" disables it
	NATSSync     bool
	LogLevel     string
	LogFormat    string // auto, text, json
	Retention    streams.Retention
	Services     []string
	Partitions   []int
	PinnedTTL    time.Duration
	ApplyTimeout time.Duration
	RateLimit    int // admin requests per minute per key; 0 disables
	// EnabledBuckets is ENABLED_BUCKETS: "*" (default) or a csv of ids.
	EnabledBuckets string
	// EnabledJourneys is ENABLED_JOURNEYS, with the same rules.
	EnabledJourneys string
	// ReconcileEvery spaces the bucket reconcile sweeps.
	ReconcileEvery time.Duration
	// PostHogAPIKey is POSTHOG_API_KEY; empty turns the PostHog mirror off.
	PostHogAPIKey string
	// PostHogHost is POSTHOG_HOST; empty is posthog-go's default.
	PostHogHost string

	// Email. With neither RESEND_API_KEY nor SMTP_URL the dev outbox is
	// the provider.
	ResendAPIKey        string // RESEND_API_KEY
	ResendBaseURL       string // RESEND_BASE_URL: another endpoint (a proxy, a fake)
	ResendWebhookSecret string // RESEND_WEBHOOK_SECRET: webhooks are refused without it
	SMTPURL             string // SMTP_URL: smtp://user:pass@host:port
	FromEmail           string // RESEND_FROM_EMAIL
	// Secret signs unsubscribe and preference tokens (HOGSEND_SECRET, else
	// BETTER_AUTH_SECRET for tokens the reference issued). `dev` keeps a
	// generated one in the data dir when unset.
	Secret string
	// EmailRate caps provider calls per second per process
	// (HOGSEND_EMAIL_RATE); 0 is the provider's default.
	EmailRate float64
	// EnabledLists is ENABLED_LISTS, with the ENABLED_BUCKETS rules.
	EnabledLists string
	// JourneyLifecycleEvents publishes journey:completed and
	// journey:failed (HOGSEND_JOURNEY_LIFECYCLE_EVENTS, default true).
	JourneyLifecycleEvents bool
	// JourneyRunTimeout bounds one run of journey code
	// (HOGSEND_JOURNEY_RUN_TIMEOUT, default journeys.DefaultRunTimeout).
	JourneyRunTimeout time.Duration
}

// Service names for serve --only.
const (
	ServiceAPI      = "api"
	ServiceContacts = "contacts"
	ServiceBuckets  = "buckets"
	ServiceJourneys = "journeys"
	ServiceMailer   = "mailer"
)

// allServices are started when --only is not given.
var allServices = []string{ServiceAPI, ServiceContacts, ServiceBuckets, ServiceJourneys, ServiceMailer}

// defaultDatabaseURL is the local server of `hogsend dev`.
const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/hogsend?sslmode=disable"

// envConfig reads the environment into a Config with defaults; empty values
// count as unset. Errors name the variable.
func envConfig(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:    defaultDatabaseURL,
		Port:           3002,
		DataDir:        ".hogsend",
		NATSListen:     "127.0.0.1:4223",
		LogLevel:       "info",
		LogFormat:      "auto",
		Retention:      streams.DefaultRetention,
		Services:       allServices,
		PinnedTTL:      5 * time.Second,
		ApplyTimeout:   5 * time.Second,
		RateLimit:      100,
		ReconcileEvery: 5 * time.Minute,

		JourneyLifecycleEvents: true,
	}
	var errs []error
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	str("DATABASE_URL", &c.DatabaseURL)
	str("NATS_URL", &c.NATSURL)
	str("API_PUBLIC_URL", &c.PublicURL)
	str("ADMIN_API_KEY", &c.AdminAPIKey)
	str("HOGSEND_DATA_DIR", &c.DataDir)
	str("HOGSEND_NATS_LISTEN", &c.NATSListen)
	str("LOG_LEVEL", &c.LogLevel)
	str("LOG_FORMAT", &c.LogFormat)
	str("POSTHOG_API_KEY", &c.PostHogAPIKey)
	str("POSTHOG_HOST", &c.PostHogHost)
	str("RESEND_API_KEY", &c.ResendAPIKey)
	str("RESEND_BASE_URL", &c.ResendBaseURL)
	str("RESEND_WEBHOOK_SECRET", &c.ResendWebhookSecret)
	str("SMTP_URL", &c.SMTPURL)
	str("RESEND_FROM_EMAIL", &c.FromEmail)
	str("BETTER_AUTH_SECRET", &c.Secret)
	str("HOGSEND_SECRET", &c.Secret)
	c.EnabledLists = getenv("ENABLED_LISTS")
	if v := getenv("HOGSEND_EMAIL_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			errs = append(errs, fmt.Errorf("HOGSEND_EMAIL_RATE: %q must be a non-negative number of sends per second", v))
		}
		c.EmailRate = f
	}
	// ENABLED_BUCKETS keeps whitespace: a blank value enables none.
	c.EnabledBuckets = getenv("ENABLED_BUCKETS")
	c.EnabledJourneys = getenv("ENABLED_JOURNEYS")
	if v := getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("PORT: %q is not a port number (0-65535)", v))
		}
		c.Port = p
	}
	boolVar := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a boolean (true or false)", name, v))
			}
			*dst = b
		}
	}
	boolVar("HOGSEND_NATS_SYNC_ALWAYS", &c.NATSSync)
	boolVar("HOGSEND_JOURNEY_LIFECYCLE_EVENTS", &c.JourneyLifecycleEvents)
	dur := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a positive duration (e.g. 720h)", name, v))
			}
			*dst = d
		}
	}
	dur("HOGSEND_EVENTS_MAX_AGE", &c.Retention.EventsMaxAge)
	dur("HOGSEND_ACTIVITY_MAX_AGE", &c.Retention.ActivityMaxAge)
	dur("HOGSEND_DEDUPE_WINDOW", &c.Retention.Duplicates)
	dur("HOGSEND_PINNED_TTL", &c.PinnedTTL)
	dur("HOGSEND_BUCKET_RECONCILE_EVERY", &c.ReconcileEvery)
	dur("HOGSEND_JOURNEY_RUN_TIMEOUT", &c.JourneyRunTimeout)
	if v := getenv("HOGSEND_STREAM_REPLICAS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 1 && n != 3 && n != 5) {
			errs = append(errs, fmt.Errorf("HOGSEND_STREAM_REPLICAS: %q must be 1, 3 or 5", v))
		}
		c.Retention.Replicas = n
	}
	if v := getenv("HOGSEND_ADMIN_RATE_LIMIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("HOGSEND_ADMIN_RATE_LIMIT: %q must be a non-negative integer (0 disables)", v))
		}
		c.RateLimit = n
	}
	if v := getenv("HOGSEND_PARTITIONS"); v != "" {
		p, err := bus.ParsePartitions(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("HOGSEND_PARTITIONS: %w", err))
		}
		c.Partitions = p
	}
	return c, errors.Join(errs...)
}

// bindFlags lets flags override the environment.
func (c *Config) bindFlags(fs *flag.FlagSet) (only, partitions *string) {
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL (DATABASE_URL)")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "NATS URL; empty runs an embedded server (NATS_URL)")
	fs.IntVar(&c.Port, "port", c.Port, "HTTP port (PORT)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "embedded NATS data directory (HOGSEND_DATA_DIR)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "auto, text or json (LOG_FORMAT)")
	only = fs.String("only", "", "comma-separated services to run: "+strings.Join(allServices, ","))
	partitions = fs.String("partitions", "", "partitions this instance consumes, e.g. 0-7 (HOGSEND_PARTITIONS; default all)")
	return only, partitions
}

// finish applies flag values that need parsing and validates the result.
func (c *Config) finish(only, partitions string) error {
	var errs []error
	if only != "" {
		c.Services = nil
		for _, s := range strings.Split(only, ",") {
			s = strings.TrimSpace(s)
			if s == "ingest" {
				s = ServiceAPI // the ingestion routes live in the API service
			}
			if !contains(allServices, s) {
				errs = append(errs, fmt.Errorf("--only: unknown service %q (known: %s)", s, strings.Join(allServices, ", ")))
				continue
			}
			c.Services = append(c.Services, s)
		}
	}
	if partitions != "" {
		p, err := bus.ParsePartitions(partitions)
		if err != nil {
			errs = append(errs, fmt.Errorf("--partitions: %w", err))
		}
		c.Partitions = p
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		errs = append(errs, fmt.Errorf("DATABASE_URL: %q is not a postgres:// URL", c.DatabaseURL))
	}
	if c.NATSURL != "" {
		if u, err := url.Parse(c.NATSURL); err != nil || u.Scheme == "" {
			errs = append(errs, fmt.Errorf("NATS_URL: %q is not a URL like nats://127.0.0.1:4222", c.NATSURL))
		}
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error", "http":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %q must be debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT: %q must be auto, text or json", c.LogFormat))
	}
	if c.PinnedTTL < time.Second {
		errs = append(errs, fmt.Errorf("HOGSEND_PINNED_TTL: must be at least 1s"))
	}
	if c.PublicURL == "" {
		c.PublicURL = fmt.Sprintf("http://localhost:%d", c.Port)
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		errs = append(errs, fmt.Errorf("API_PUBLIC_URL: %q is not an http(s) URL", c.PublicURL))
	}
	if c.Addr == "" {
		c.Addr = fmt.Sprintf(":%d", c.Port)
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			errs = append(errs, fmt.Errorf("SMTP_URL: %q is not a URL like smtp://user:password@host:587", c.SMTPURL))
		}
	}
	if c.ResendAPIKey != "" && c.SMTPURL != "" {
		errs = append(errs, errors.New("RESEND_API_KEY and SMTP_URL: set one provider, not both"))
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *Config) runs(service string) bool { return contains(c.Services, service) }

// loadConfig is envConfig + flags + validation for one subcommand.
func loadConfig(fs *flag.FlagSet, args []string) (Config, error) {
	c, err := envConfig(os.Getenv)
	if err != nil {
		return c, err
	}
	only, partitions := c.bindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.finish(*only, *partitions)
}
