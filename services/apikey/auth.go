package apikey

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// LegacyPrincipal is who ADMIN_API_KEY authenticates as.
func LegacyPrincipal() httpapi.Principal {
	return httpapi.Principal{KeyID: "legacy", Name: "legacy", Scopes: []string{httpapi.ScopeFullAdmin}, Legacy: true}
}

// Authenticate implements httpapi.Authenticator (spec 30 §3.1): the admin
// key first (constant time), then a live key by hash. Unknown or revoked
// keys are unauthorized "Unauthorized", expired ones "API key expired".
// Hits are cached for CacheTTL with expiry rechecked on every use;
// last_used_at is written at most once per TouchPeriod, and a failure to
// write it does not fail the request.
func (s *Store) Authenticate(ctx context.Context, bearer string) (httpapi.Principal, error) {
	if bearer == "" {
		return httpapi.Principal{}, errcode.Unauthorized(httpapi.MsgUnauthorized)
	}
	if s.opts.AdminKey != "" {
		// Compare digests so the comparison takes the same time whatever
		// the lengths.
		a, b := sha256.Sum256([]byte(bearer)), sha256.Sum256([]byte(s.opts.AdminKey))
		if subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
			return LegacyPrincipal(), nil
		}
	}
	now := s.opts.Now()
	hash := HashKey(bearer)
	if e, ok := s.cached(hash, now); ok {
		if e.expiresAt != nil && e.expiresAt.Before(now) {
			return httpapi.Principal{}, errcode.Unauthorized(MsgExpired)
		}
		return e.principal, nil
	}
	row, err := s.getByHash(ctx, hash)
	if errcode.Is(err, errcode.CodeNotFound) {
		return httpapi.Principal{}, errcode.Unauthorized(httpapi.MsgUnauthorized)
	}
	if err != nil {
		return httpapi.Principal{}, fmt.Errorf("authenticate api key: %w", err)
	}
	if row.ExpiresAt != nil && row.ExpiresAt.Before(now) {
		return httpapi.Principal{}, errcode.Unauthorized(MsgExpired)
	}
	if row.LastUsedAt == nil || now.Sub(*row.LastUsedAt) >= s.opts.TouchPeriod {
		s.touch(ctx, row, now)
	}
	p := httpapi.Principal{KeyID: row.ID.String(), Name: row.Name, Scopes: row.Scopes}
	s.remember(hash, cacheEntry{principal: p, expiresAt: row.ExpiresAt, until: now.Add(s.opts.CacheTTL)}, now)
	return p, nil
}

// touch records the use. The SQL repeats the debounce so replicas racing
// on one key write once.
func (s *Store) touch(ctx context.Context, row dbsqlc.ApiKey, now time.Time) {
	_, err := dbsqlc.New(s.pool).ApiKeyTouch(context.WithoutCancel(ctx), dbsqlc.ApiKeyTouchParams{
		ID:          row.ID,
		Now:         now.UTC(),
		StaleBefore: now.Add(-s.opts.TouchPeriod).UTC(),
	})
	if err != nil {
		s.opts.Logger.WarnContext(ctx, "record api key use", "error", err, "keyId", row.ID)
	}
}

// Sweep expired cache entries once the cache holds this many. Only valid
// keys are cached, so the cache is bounded by the number of live keys.
const cacheSweepAbove = 1024

func (s *Store) cached(hash string, now time.Time) (cacheEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.cache[hash]
	if !ok || !now.Before(e.until) {
		return cacheEntry{}, false
	}
	return e, true
}

func (s *Store) remember(hash string, e cacheEntry, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= cacheSweepAbove {
		for h, old := range s.cache {
			if !now.Before(old.until) {
				delete(s.cache, h)
			}
		}
	}
	s.cache[hash] = e
}

func (s *Store) forget(keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, e := range s.cache {
		if e.principal.KeyID == keyID {
			delete(s.cache, h)
		}
	}
}
