package apikey_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/apikey"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStore(t *testing.T, opts apikey.Options) (*apikey.Store, *pgxpool.Pool, *clock) {
	t.Helper()
	pool := schematest.NewPool(t)
	c := newClock()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	return apikey.New(pool, opts), pool, c
}

var keyRE = regexp.MustCompile(`^hsk_[A-Za-z0-9_-]{43}$`)

func TestKeyFormatVector(t *testing.T) {
	t.Parallel()
	// K1: 32 zero bytes.
	const k1 = "hsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if got := apikey.HashKey(k1); got != "53e356931424348e093ef376c7c98ceca01c0d892b8a9a1581b66db0e3e918d9" {
		t.Errorf("HashKey(K1) = %s", got)
	}
	s, _, _ := newStore(t, apikey.Options{Rand: bytes.NewReader(make([]byte, 32))})
	ctx := context.Background()
	created, err := s.Create(ctx, apikey.CreateParams{Name: "zero"})
	if err != nil {
		t.Fatal(err)
	}
	if created.Plaintext != k1 || created.Key.KeyPrefix != "hsk_AAAA" {
		t.Errorf("key %q prefix %q", created.Plaintext, created.Key.KeyPrefix)
	}

	s2, _, _ := newStore(t, apikey.Options{})
	for i := 0; i < 5; i++ {
		c, err := s2.Create(ctx, apikey.CreateParams{Name: "random"})
		if err != nil {
			t.Fatal(err)
		}
		if !keyRE.MatchString(c.Plaintext) || c.Key.KeyPrefix != c.Plaintext[:8] {
			t.Errorf("key %q prefix %q", c.Plaintext, c.Key.KeyPrefix)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	s, _, c := newStore(t, apikey.Options{})
	ctx := context.Background()
	past := c.Now().Add(-time.Hour)
	tests := []struct {
		name   string
		params apikey.CreateParams
		scopes []string
		field  string
	}{
		{"default scope", apikey.CreateParams{Name: "a"}, []string{"read"}, ""},
		{"several scopes, duplicates dropped", apikey.CreateParams{Name: "b", Scopes: []string{"ingest", "full-admin", "ingest"}}, []string{"ingest", "full-admin"}, ""},
		{"100 characters", apikey.CreateParams{Name: strings.Repeat("é", 100)}, []string{"read"}, ""},
		{"past expiry accepted", apikey.CreateParams{Name: "c", ExpiresAt: &past}, []string{"read"}, ""},
		{"empty name", apikey.CreateParams{Name: ""}, nil, "name"},
		{"101 characters", apikey.CreateParams{Name: strings.Repeat("x", 101)}, nil, "name"},
		{"no scopes", apikey.CreateParams{Name: "d", Scopes: []string{}}, nil, "scopes"},
		{"unknown scope", apikey.CreateParams{Name: "e", Scopes: []string{"read", "admin"}}, nil, "scopes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Create(ctx, tc.params)
			if tc.field != "" {
				if !errcode.Is(err, errcode.CodeInvalidRequest) || errcode.Details(err)["field"] != tc.field {
					t.Fatalf("err = %v, want invalid %s", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Key.Scopes, ",") != strings.Join(tc.scopes, ",") {
				t.Errorf("scopes = %v, want %v", got.Key.Scopes, tc.scopes)
			}
			if got.Key.Name != tc.params.Name || !got.Key.CreatedAt.Equal(c.Now()) {
				t.Errorf("key = %+v", got.Key)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	s, pool, c := newStore(t, apikey.Options{AdminKey: "env-secret"})
	ctx := context.Background()
	creator := "ci"
	created, err := s.Create(ctx, apikey.CreateParams{Name: "worker", Scopes: []string{"ingest"}, CreatedBy: &creator})
	if err != nil {
		t.Fatal(err)
	}
	past := c.Now().Add(-time.Second)
	expired, err := s.Create(ctx, apikey.CreateParams{Name: "old", ExpiresAt: &past})
	if err != nil {
		t.Fatal(err)
	}

	p, err := s.Authenticate(ctx, created.Plaintext)
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyID != created.Key.ID.String() || p.Name != "worker" || len(p.Scopes) != 1 || p.Scopes[0] != "ingest" || p.Legacy {
		t.Errorf("principal = %+v", p)
	}

	p, err = s.Authenticate(ctx, "env-secret")
	if err != nil || p.KeyID != "legacy" || p.Name != "legacy" || !p.Legacy || !httpapi.HasScope(p.Scopes, "full-admin") {
		t.Errorf("legacy principal = %+v, %v", p, err)
	}

	for name, tc := range map[string]struct{ bearer, msg string }{
		"empty":        {"", "Unauthorized"},
		"unknown":      {"hsk_doesnotexist", "Unauthorized"},
		"admin prefix": {"env-secre", "Unauthorized"},
		"expired":      {expired.Plaintext, "API key expired"},
	} {
		_, err := s.Authenticate(ctx, tc.bearer)
		if !errcode.Is(err, errcode.CodeUnauthorized) || errcode.Message(err) != tc.msg {
			t.Errorf("%s: err = %v, want unauthorized %q", name, err, tc.msg)
		}
	}

	// Without ADMIN_API_KEY the env value means nothing.
	plain := apikey.New(pool, apikey.Options{Now: c.Now})
	if _, err := plain.Authenticate(ctx, "env-secret"); !errcode.Is(err, errcode.CodeUnauthorized) {
		t.Errorf("no admin key configured: err = %v", err)
	}
}

func lastUsed(t *testing.T, pool *pgxpool.Pool, id string) *time.Time {
	t.Helper()
	var ts *time.Time
	if err := pool.QueryRow(context.Background(), "SELECT last_used_at FROM api_keys WHERE id = $1", id).Scan(&ts); err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestLastUsedDebounce(t *testing.T) {
	t.Parallel()
	s, pool, c := newStore(t, apikey.Options{})
	ctx := context.Background()
	created, err := s.Create(ctx, apikey.CreateParams{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Key.ID.String()
	if lastUsed(t, pool, id) != nil {
		t.Fatal("last_used_at set before use")
	}
	first := c.Now()
	if _, err := s.Authenticate(ctx, created.Plaintext); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(t, pool, id); got == nil || !got.Equal(first) {
		t.Fatalf("last_used_at = %v, want %v", got, first)
	}
	// A cache miss two minutes later does not write again…
	c.Advance(2 * time.Minute)
	if _, err := s.Authenticate(ctx, created.Plaintext); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(t, pool, id); !got.Equal(first) {
		t.Errorf("last_used_at rewritten within 5 min: %v", got)
	}
	// …one after five minutes does.
	c.Advance(3*time.Minute + time.Second)
	if _, err := s.Authenticate(ctx, created.Plaintext); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(t, pool, id); !got.Equal(c.Now()) {
		t.Errorf("last_used_at = %v, want %v", got, c.Now())
	}
}

func TestCacheExpiryAndRevocation(t *testing.T) {
	t.Parallel()
	s, pool, c := newStore(t, apikey.Options{})
	ctx := context.Background()
	soon := c.Now().Add(30 * time.Second)
	short, err := s.Create(ctx, apikey.CreateParams{Name: "short", ExpiresAt: &soon})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, short.Plaintext); err != nil {
		t.Fatal(err)
	}
	// Still cached after 31 s, but expiry is rechecked on the hit.
	c.Advance(31 * time.Second)
	if _, err := s.Authenticate(ctx, short.Plaintext); errcode.Message(err) != "API key expired" {
		t.Errorf("cached expired key: err = %v", err)
	}

	// Revocation through this store bites at once.
	k1, _ := s.Create(ctx, apikey.CreateParams{Name: "k1"})
	if _, err := s.Authenticate(ctx, k1.Plaintext); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, k1.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, k1.Plaintext); !errcode.Is(err, errcode.CodeUnauthorized) {
		t.Errorf("revoked here: err = %v", err)
	}
	if err := s.Revoke(ctx, k1.Key.ID); !errcode.Is(err, errcode.CodeNotFound) || errcode.Message(err) != "API key not found or already revoked" {
		t.Errorf("second revoke: %v", err)
	}

	// Revocation by another process lags up to the cache TTL.
	k2, _ := s.Create(ctx, apikey.CreateParams{Name: "k2"})
	if _, err := s.Authenticate(ctx, k2.Plaintext); err != nil {
		t.Fatal(err)
	}
	other := apikey.New(pool, apikey.Options{Now: c.Now})
	if err := other.Revoke(ctx, k2.Key.ID); err != nil {
		t.Fatal(err)
	}
	c.Advance(59 * time.Second)
	if _, err := s.Authenticate(ctx, k2.Plaintext); err != nil {
		t.Errorf("within the cache TTL: %v", err)
	}
	c.Advance(time.Second)
	if _, err := s.Authenticate(ctx, k2.Plaintext); !errcode.Is(err, errcode.CodeUnauthorized) || errcode.Message(err) != "Unauthorized" {
		t.Errorf("after the cache TTL: err = %v", err)
	}
}

func TestListAndRevoke(t *testing.T) {
	t.Parallel()
	s, _, c := newStore(t, apikey.Options{})
	ctx := context.Background()
	var created []apikey.Created
	for i := 0; i < 5; i++ {
		name := string(rune('a' + i))
		k, err := s.Create(ctx, apikey.CreateParams{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, k)
		c.Advance(time.Second)
	}
	if err := s.Revoke(ctx, created[1].Key.ID); err != nil {
		t.Fatal(err)
	}
	keyNames := func(keys []apikey.APIKey) string {
		var out []string
		for _, k := range keys {
			out = append(out, k.Name)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name   string
		params apikey.ListParams
		want   string
		total  int
	}{
		{"live, newest first", apikey.ListParams{Limit: 50}, "e,d,c,a", 4},
		{"with revoked", apikey.ListParams{Limit: 50, IncludeRevoked: true}, "e,d,c,b,a", 5},
		{"page", apikey.ListParams{Limit: 2, Offset: 1, IncludeRevoked: true}, "d,c", 5},
		{"past the end", apikey.ListParams{Limit: 2, Offset: 10}, "", 4},
	}
	for _, tc := range tests {
		keys, total, err := s.List(ctx, tc.params)
		if err != nil {
			t.Fatal(err)
		}
		if got := keyNames(keys); got != tc.want || total != tc.total {
			t.Errorf("%s: got %s (total %d), want %s (total %d)", tc.name, got, total, tc.want, tc.total)
		}
	}
	keys, _, _ := s.List(ctx, apikey.ListParams{Limit: 50, IncludeRevoked: true})
	for _, k := range keys {
		if (k.Name == "b") != (k.RevokedAt != nil) {
			t.Errorf("%s revokedAt = %v", k.Name, k.RevokedAt)
		}
	}
}
