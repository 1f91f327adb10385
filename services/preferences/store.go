package preferences

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/lists/list"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// BounceThreshold is the bounce count that suppresses an address (fixed,
// spec 20 §0).
const BounceThreshold = 3

// Why Check blocks a send. The mailer stores them in email_sends.reason;
// the API reports category_unsubscribed as "unsubscribed".
const (
	ReasonSuppressed           = "suppressed"
	ReasonUnsubscribed         = "unsubscribed"
	ReasonCategoryUnsubscribed = "category_unsubscribed"
)

// Scopes of a contact.unsubscribed event.
const (
	ScopeAll      = "all"
	ScopeCategory = "category"
)

// ErrNotFound is returned (wrapped in a not_found errcode error) when a
// preferences row does not exist.
var ErrNotFound = errors.New("preferences not found")

// Preferences is one email_preferences row.
type Preferences struct {
	ID              uuid.UUID
	UserID          string
	Email           string
	UnsubscribedAll bool
	Suppressed      bool
	BounceCount     int
	// Categories holds the explicit choices (boolean values only; never
	// nil).
	Categories   map[string]bool
	SuppressedAt *time.Time
	LastBounceAt *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Change is what Set writes; nil and zero fields are left as stored.
type Change struct {
	UnsubscribedAll *bool
	// Suppressed also stamps suppressed_at (now when true, null when
	// false).
	Suppressed *bool
	// Category and CategoryValue flip one entry of the categories map;
	// they go together.
	Category      string
	CategoryValue *bool
	// ReplaceCategories, when non-nil, replaces the whole map (before the
	// Category flip, if both are given). Keys are not validated: the map
	// also carries the lists of contact upserts.
	ReplaceCategories map[string]bool
}

// ContactUnsubscribed is the outbound contact.unsubscribed payload.
type ContactUnsubscribed struct {
	ExternalID string // the row's user_id
	Email      string
	Category   string // "" for scope all
	Scope      string // ScopeAll or ScopeCategory
}

// Emitter publishes contact.unsubscribed. The store calls it after the
// write committed; an error is logged, not returned, because the opt-out
// itself succeeded (the reference emits fire-and-forget as well).
type Emitter interface {
	Unsubscribed(ctx context.Context, e ContactUnsubscribed) error
}

// StoreOptions configure a Store.
type StoreOptions struct {
	// Lists is the registry the polarity rule consults; nil is the empty
	// registry (every category behaves as defaultOptIn true).
	Lists *list.Registry
	// Emitter receives opt-outs; nil drops them.
	Emitter Emitter
	// Now is the clock for updated_at, suppressed_at and the like.
	// Default time.Now.
	Now func() time.Time
	// Logger logs emitter failures. Default slog.Default().
	Logger *slog.Logger
}

// Store reads and writes email_preferences. It is the table's only writer.
type Store struct {
	pool    *pgxpool.Pool
	lists   *list.Registry
	emitter Emitter
	now     func() time.Time
	log     *slog.Logger
}

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool, opts StoreOptions) *Store {
	s := &Store{pool: pool, lists: opts.Lists, emitter: opts.Emitter, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// Lists returns the store's list registry.
func (s *Store) Lists() *list.Registry { return s.lists }

// NormalizeEmail trims and lower-cases an address, the form rows are keyed
// and matched by.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func (s *Store) q(db dbsqlc.DBTX) *dbsqlc.Queries { return dbsqlc.New(db) }

// Set upserts the row of (userID, email) changing only what ch supplies
// (spec 20 §3.4). email is normalised; a blank userID falls back to the
// address (§3.1). Opt-outs — UnsubscribedAll set to true, Category set to
// false (every time, so a repeated unsubscribe re-emits), or a
// ReplaceCategories entry turning false — are passed to the Emitter after
// commit; re-subscribes emit nothing.
func (s *Store) Set(ctx context.Context, userID, email string, ch Change) (Preferences, error) {
	userID, email, err := identity(userID, email)
	if err != nil {
		return Preferences{}, err
	}
	if (ch.Category == "") != (ch.CategoryValue == nil) {
		return Preferences{}, errcode.Invalid("category and its value go together")
	}
	// A concurrent writer can insert the key between our lock attempt and
	// our insert; the second round then finds and locks that row.
	for range 2 {
		p, events, retry, err := s.setOnce(ctx, userID, email, ch)
		if err != nil {
			return Preferences{}, err
		}
		if retry {
			continue
		}
		for _, e := range events {
			s.emit(ctx, e)
		}
		return p, nil
	}
	return Preferences{}, fmt.Errorf("set preferences: the row of %q kept changing", email)
}

func (s *Store) setOnce(ctx context.Context, userID, email string, ch Change) (Preferences, []ContactUnsubscribed, bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Preferences{}, nil, false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	q := s.q(tx)
	now := s.now()
	row, err := q.PrefLockByKey(ctx, dbsqlc.PrefLockByKeyParams{UserID: userID, Email: email})
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Preferences{}, nil, false, fmt.Errorf("lock preferences: %w", err)
	}
	var cats map[string]any
	if found {
		cats = rawCategories(row.Categories)
	} else {
		cats = map[string]any{}
	}
	before := boolCategories(cats)
	unsubAll, suppressed, suppressedAt := row.UnsubscribedAll, row.Suppressed, row.SuppressedAt
	if ch.UnsubscribedAll != nil {
		unsubAll = *ch.UnsubscribedAll
	}
	if ch.Suppressed != nil {
		suppressed = *ch.Suppressed
		// Deviation: the reference leaves suppressed_at null on a row
		// created suppressed; stamping it keeps the suppression list's
		// "since" meaningful.
		if suppressed {
			suppressedAt = &now
		} else {
			suppressedAt = nil
		}
	}
	if ch.ReplaceCategories != nil {
		cats = map[string]any{}
		for k, v := range ch.ReplaceCategories {
			cats[k] = v
		}
	}
	if ch.Category != "" {
		cats[ch.Category] = *ch.CategoryValue
	}
	catsJSON, err := json.Marshal(cats)
	if err != nil {
		return Preferences{}, nil, false, fmt.Errorf("encode categories: %w", err)
	}
	if found {
		row, err = q.PrefUpdate(ctx, dbsqlc.PrefUpdateParams{
			ID: row.ID, UnsubscribedAll: unsubAll, Suppressed: suppressed, SuppressedAt: suppressedAt, Categories: catsJSON, At: now,
		})
		if err != nil {
			return Preferences{}, nil, false, fmt.Errorf("update preferences: %w", err)
		}
	} else {
		id, err := uuid.NewV7()
		if err != nil {
			return Preferences{}, nil, false, fmt.Errorf("new id: %w", err)
		}
		row, err = q.PrefInsert(ctx, dbsqlc.PrefInsertParams{
			ID: id, UserID: userID, Email: email, UnsubscribedAll: unsubAll, Suppressed: suppressed,
			Categories: catsJSON, SuppressedAt: suppressedAt, At: now,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return Preferences{}, nil, true, nil
		}
		if err != nil {
			return Preferences{}, nil, false, fmt.Errorf("insert preferences: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Preferences{}, nil, false, fmt.Errorf("commit preferences: %w", err)
	}
	return fromRow(row), optOuts(row.UserID, row.Email, ch, before), false, nil
}

// optOuts lists the contact.unsubscribed events of a committed change.
func optOuts(userID, email string, ch Change, before map[string]bool) []ContactUnsubscribed {
	var out []ContactUnsubscribed
	if ch.UnsubscribedAll != nil && *ch.UnsubscribedAll {
		out = append(out, ContactUnsubscribed{ExternalID: userID, Email: email, Scope: ScopeAll})
	}
	flipped := map[string]bool{}
	if ch.ReplaceCategories != nil {
		// A bulk replace reports only the entries that turned false.
		for _, k := range slices.Sorted(maps.Keys(ch.ReplaceCategories)) {
			if v, ok := before[k]; !ch.ReplaceCategories[k] && (!ok || v) {
				flipped[k] = true
				out = append(out, ContactUnsubscribed{ExternalID: userID, Email: email, Category: k, Scope: ScopeCategory})
			}
		}
	}
	if ch.Category != "" && !*ch.CategoryValue && !flipped[ch.Category] {
		out = append(out, ContactUnsubscribed{ExternalID: userID, Email: email, Category: ch.Category, Scope: ScopeCategory})
	}
	return out
}

func (s *Store) emit(ctx context.Context, e ContactUnsubscribed) {
	if s.emitter == nil {
		return
	}
	if err := s.emitter.Unsubscribed(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "emit contact.unsubscribed", "error", err, "user_id", e.ExternalID, "scope", e.Scope, "category", e.Category)
	}
}

// Get returns the row of (userID, email); ErrNotFound (a not_found error)
// when there is none.
func (s *Store) Get(ctx context.Context, userID, email string) (Preferences, error) {
	row, err := s.q(s.pool).PrefGetByKey(ctx, dbsqlc.PrefGetByKeyParams{UserID: strings.TrimSpace(userID), Email: NormalizeEmail(email)})
	if err != nil {
		return Preferences{}, notFound(err, "get preferences")
	}
	return fromRow(row), nil
}

// ForUser returns a row of userID, preferring the one of email (the
// contact's current address) and else the oldest; ErrNotFound when the
// user has none.
func (s *Store) ForUser(ctx context.Context, userID, email string) (Preferences, error) {
	row, err := s.q(s.pool).PrefGetByUser(ctx, dbsqlc.PrefGetByUserParams{UserID: userID, Email: NormalizeEmail(email)})
	if err != nil {
		return Preferences{}, notFound(err, "get preferences")
	}
	return fromRow(row), nil
}

func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errcode.Wrap(errcode.CodeNotFound, "No preferences found", ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Check is the suppression check of a send to email in category ("" for
// none), spec 20 §1.3 with the [Go] rule: every row whose normalised email
// matches is read and the send is blocked if any of them blocks. A
// suppressed row wins (ReasonSuppressed), then unsubscribed_all
// (ReasonUnsubscribed), then the polarity rule over each row's categories
// — or over no choices when there is no row, so an opt-in list blocks an
// unknown address (ReasonCategoryUnsubscribed).
func (s *Store) Check(ctx context.Context, email, category string) (blocked bool, reason string, err error) {
	rows, err := s.q(s.pool).PrefListByEmail(ctx, NormalizeEmail(email))
	if err != nil {
		return false, "", fmt.Errorf("read preferences: %w", err)
	}
	for _, r := range rows {
		if r.Suppressed {
			return true, ReasonSuppressed, nil
		}
	}
	for _, r := range rows {
		if r.UnsubscribedAll {
			return true, ReasonUnsubscribed, nil
		}
	}
	if category == "" {
		return false, "", nil
	}
	if len(rows) == 0 {
		if !s.lists.Subscribed(nil, category) {
			return true, ReasonCategoryUnsubscribed, nil
		}
		return false, "", nil
	}
	for _, r := range rows {
		if !s.lists.Subscribed(boolCategories(rawCategories(r.Categories)), category) {
			return true, ReasonCategoryUnsubscribed, nil
		}
	}
	return false, "", nil
}

// identity normalises the key of a preferences row: the address trimmed
// and lower-cased (required), the user id trimmed, falling back to the
// address for sends to addresses without a contact (spec 20 §3.1).
func identity(userID, email string) (string, string, error) {
	email, userID = NormalizeEmail(email), strings.TrimSpace(userID)
	if email == "" {
		return "", "", errcode.InvalidField("email", "is required")
	}
	if userID == "" {
		userID = email
	}
	return userID, email, nil
}

// RecordBounce counts a bounce of email (spec 20 §2.5.4): every row of
// the normalised address gets bounce_count + 1 and last_bounce_at = at;
// reaching BounceThreshold suppresses it and (re-)stamps suppressed_at.
// With no row, one is created for (userID, email) first — the [Go] rule
// (§2.5.6); a blank userID falls back to the address. It returns the rows
// after the change.
func (s *Store) RecordBounce(ctx context.Context, userID, email string, at time.Time) ([]Preferences, error) {
	userID, email, err := identity(userID, email)
	if err != nil {
		return nil, err
	}
	q := s.q(s.pool)
	rows, err := q.PrefBounce(ctx, dbsqlc.PrefBounceParams{At: at, Threshold: BounceThreshold, Email: email})
	if err != nil {
		return nil, fmt.Errorf("record bounce: %w", err)
	}
	if len(rows) == 0 {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("new id: %w", err)
		}
		row, err := q.PrefBounceInsert(ctx, dbsqlc.PrefBounceInsertParams{ID: id, UserID: userID, Email: email, At: at, Threshold: BounceThreshold})
		if err != nil {
			return nil, fmt.Errorf("record bounce: %w", err)
		}
		rows = append(rows, row)
	}
	return fromRows(rows), nil
}

// RecordComplaint suppresses every row of the normalised address
// (suppressed_at = at, spec 20 §2.5.5), creating the row of (userID,
// email) when there is none ([Go], §2.5.6). It returns the rows after the
// change.
func (s *Store) RecordComplaint(ctx context.Context, userID, email string, at time.Time) ([]Preferences, error) {
	userID, email, err := identity(userID, email)
	if err != nil {
		return nil, err
	}
	q := s.q(s.pool)
	rows, err := q.PrefComplaint(ctx, dbsqlc.PrefComplaintParams{At: at, Email: email})
	if err != nil {
		return nil, fmt.Errorf("record complaint: %w", err)
	}
	if len(rows) == 0 {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("new id: %w", err)
		}
		row, err := q.PrefComplaintInsert(ctx, dbsqlc.PrefComplaintInsertParams{ID: id, UserID: userID, Email: email, At: at})
		if err != nil {
			return nil, fmt.Errorf("record complaint: %w", err)
		}
		rows = append(rows, row)
	}
	return fromRows(rows), nil
}

// Suppression list filters (GET /v1/admin/suppressions?type=).
const (
	KindBounced      = "bounced"
	KindUnsubscribed = "unsubscribed"
	KindComplained   = "complained"
)

// Suppressions lists rows newest update first: kind "" is every row,
// KindBounced those with bounces, KindUnsubscribed those unsubscribed from
// all, KindComplained those suppressed without bounces (which also catches
// manual suppression). It returns the page and the total.
func (s *Store) Suppressions(ctx context.Context, kind string, limit, offset int) ([]Preferences, int64, error) {
	q := s.q(s.pool)
	rows, err := q.PrefSuppressionList(ctx, dbsqlc.PrefSuppressionListParams{Kind: kind, Lim: int32(limit), Off: int32(offset)})
	if err != nil {
		return nil, 0, fmt.Errorf("list suppressions: %w", err)
	}
	total, err := q.PrefSuppressionCount(ctx, kind)
	if err != nil {
		return nil, 0, fmt.Errorf("count suppressions: %w", err)
	}
	return fromRows(rows), total, nil
}

func fromRows(rows []dbsqlc.EmailPreference) []Preferences {
	out := make([]Preferences, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out
}

func fromRow(r dbsqlc.EmailPreference) Preferences {
	return Preferences{
		ID: r.ID, UserID: r.UserID, Email: r.Email, UnsubscribedAll: r.UnsubscribedAll, Suppressed: r.Suppressed,
		BounceCount: int(r.BounceCount), Categories: boolCategories(rawCategories(r.Categories)),
		SuppressedAt: r.SuppressedAt, LastBounceAt: r.LastBounceAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// rawCategories decodes the stored map; null, a non-object or bad JSON is
// the empty map (readers treat null as {}).
func rawCategories(raw json.RawMessage) map[string]any {
	m := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			m = map[string]any{}
		}
	}
	return m
}

// boolCategories keeps the boolean entries: the polarity rule compares with
// true and false strictly, so anything else is "no choice".
func boolCategories(m map[string]any) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		if b, ok := v.(bool); ok {
			out[k] = b
		}
	}
	return out
}
