// Package apikey owns the api_keys table: minting keys (shown once, stored
// as a SHA-256 hash), listing and revoking them, authenticating bearer
// tokens for httpapi (with a short per-process cache), and the
// /v1/admin/api-keys routes.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// Key format (spec 30 §3.1): "hsk_" + unpadded base64url of 32 random
// bytes, 47 characters; the first 8 are the displayed prefix.
const (
	KeyPrefix    = "hsk_"
	keyBytes     = 32
	prefixLength = 8
)

// Defaults of Options.
const (
	DefaultCacheTTL    = 60 * time.Second
	DefaultTouchPeriod = 5 * time.Minute
)

// Messages callers see.
const (
	MsgExpired           = "API key expired"
	MsgNotFoundOrRevoked = "API key not found or already revoked"
)

// APIKey is a stored key, without its secret.
type APIKey struct {
	ID         uuid.UUID
	Name       string
	KeyPrefix  string
	Scopes     []string
	CreatedBy  *string
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	ExpiresAt  *time.Time
	CreatedAt  time.Time
}

// Options configures a Store.
type Options struct {
	// AdminKey is ADMIN_API_KEY: when non-empty it is matched before any
	// lookup and authenticates as the legacy full-admin principal.
	AdminKey string
	// CacheTTL bounds how long a successful lookup is reused (default 60 s,
	// so a revocation elsewhere takes up to that long to bite).
	CacheTTL time.Duration
	// TouchPeriod debounces last_used_at writes (default 5 min).
	TouchPeriod time.Duration
	Now         func() time.Time // default time.Now
	Rand        io.Reader        // key material; default crypto/rand.Reader
	Logger      *slog.Logger     // default slog.Default()
}

// Store manages API keys in Postgres.
type Store struct {
	pool *pgxpool.Pool
	opts Options

	mu    sync.Mutex
	cache map[string]cacheEntry // by key hash
}

type cacheEntry struct {
	principal httpapi.Principal
	expiresAt *time.Time
	until     time.Time
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool, opts Options) *Store {
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.TouchPeriod <= 0 {
		opts.TouchPeriod = DefaultTouchPeriod
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Store{pool: pool, opts: opts, cache: map[string]cacheEntry{}}
}

// HashKey returns the stored form of a key: lowercase hex SHA-256.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// generateKey returns a new plaintext key.
func generateKey(r io.Reader) (string, error) {
	b := make([]byte, keyBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read key material: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// CreateParams are the inputs of Create.
type CreateParams struct {
	Name string
	// Scopes: nil means the default ["read"]; a non-nil empty slice is
	// refused (at least one scope).
	Scopes    []string
	ExpiresAt *time.Time // past values are accepted
	CreatedBy *string    // creator key name; nil for logins
}

// Created is a new key with its plaintext, which is never stored.
type Created struct {
	Key       APIKey
	Plaintext string
}

func validateCreate(p CreateParams) ([]string, error) {
	if n := utf8.RuneCountInString(p.Name); n < 1 || n > 100 {
		return nil, errcode.InvalidField("name", "must be between 1 and 100 characters")
	}
	if p.Scopes == nil {
		return []string{httpapi.ScopeRead}, nil
	}
	if len(p.Scopes) == 0 {
		return nil, errcode.InvalidField("scopes", "must contain at least one scope")
	}
	scopes := make([]string, 0, len(p.Scopes))
	for _, s := range p.Scopes {
		if !httpapi.ValidScope(s) {
			return nil, errcode.InvalidField("scopes", fmt.Sprintf("unknown scope %q (want read, journey-admin, full-admin or ingest)", s))
		}
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return scopes, nil
}

// Create mints a key. Invalid input is an invalid_request error naming the
// field.
func (s *Store) Create(ctx context.Context, p CreateParams) (Created, error) {
	scopes, err := validateCreate(p)
	if err != nil {
		return Created{}, err
	}
	plaintext, err := generateKey(s.opts.Rand)
	if err != nil {
		return Created{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Created{}, fmt.Errorf("new api key id: %w", err)
	}
	row, err := dbsqlc.New(s.pool).ApiKeyInsert(ctx, dbsqlc.ApiKeyInsertParams{
		ID:        id,
		Name:      p.Name,
		KeyPrefix: plaintext[:prefixLength],
		KeyHash:   HashKey(plaintext),
		Scopes:    scopes,
		CreatedBy: p.CreatedBy,
		ExpiresAt: p.ExpiresAt,
		CreatedAt: s.opts.Now().UTC().Truncate(time.Microsecond),
	})
	if err != nil {
		return Created{}, fmt.Errorf("insert api key: %w", err)
	}
	return Created{Key: fromRow(row), Plaintext: plaintext}, nil
}

// ListParams selects a page of keys, newest first.
type ListParams struct {
	IncludeRevoked bool
	Limit, Offset  int
}

// List returns a page of keys and the total matching.
func (s *Store) List(ctx context.Context, p ListParams) (keys []APIKey, total int, err error) {
	q := dbsqlc.New(s.pool)
	n, err := q.ApiKeyCount(ctx, p.IncludeRevoked)
	if err != nil {
		return nil, 0, fmt.Errorf("count api keys: %w", err)
	}
	rows, err := q.ApiKeyList(ctx, dbsqlc.ApiKeyListParams{
		IncludeRevoked: p.IncludeRevoked,
		MaxRows:        int64(p.Limit),
		SkipRows:       int64(p.Offset),
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list api keys: %w", err)
	}
	keys = make([]APIKey, len(rows))
	for i, r := range rows {
		keys[i] = fromRow(r)
	}
	return keys, int(n), nil
}

// Revoke revokes a live key: unknown or already revoked keys are not_found.
// This process stops accepting the key at once; others within CacheTTL.
func (s *Store) Revoke(ctx context.Context, id uuid.UUID) error {
	n, err := dbsqlc.New(s.pool).ApiKeyRevoke(ctx, dbsqlc.ApiKeyRevokeParams{ID: id, Now: s.opts.Now().UTC()})
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	if n == 0 {
		return errcode.NotFound(MsgNotFoundOrRevoked)
	}
	s.forget(id.String())
	return nil
}

// getByHash maps the driver's no-rows to not_found at the package edge.
func (s *Store) getByHash(ctx context.Context, hash string) (dbsqlc.ApiKey, error) {
	row, err := dbsqlc.New(s.pool).ApiKeyGetByHash(ctx, hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return dbsqlc.ApiKey{}, errcode.NotFound("API key not found")
	}
	if err != nil {
		return dbsqlc.ApiKey{}, fmt.Errorf("get api key: %w", err)
	}
	return row, nil
}

func fromRow(r dbsqlc.ApiKey) APIKey {
	return APIKey{
		ID:         r.ID,
		Name:       r.Name,
		KeyPrefix:  r.KeyPrefix,
		Scopes:     r.Scopes,
		CreatedBy:  r.CreatedBy,
		LastUsedAt: utc(r.LastUsedAt),
		RevokedAt:  utc(r.RevokedAt),
		ExpiresAt:  utc(r.ExpiresAt),
		CreatedAt:  r.CreatedAt.UTC(),
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}
