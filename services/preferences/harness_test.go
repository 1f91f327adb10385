package preferences_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/schema/schematest"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/lists/list"
	"github.com/seed-eeb360f6/hogsend/services/preferences"
)

// Fixtures of spec 20 §7: secret s3cret, base https://api.test, lists news
// (defaultOptIn true) and beta (false); "hidden" is registered but
// disabled, "filtered" is left out by ENABLED_LISTS.
var (
	secret = []byte("s3cret")
	now    = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
)

const base = "https://api.test"

// Bearer tokens of the fake authenticator.
const (
	ingestKey = "ingest-key"
	readKey   = "read-key"
	adminKey  = "admin-key"
)

func registry(t *testing.T) *list.Registry {
	t.Helper()
	off := false
	reg, err := list.NewRegistry("news,beta,hidden",
		list.MustDefine(list.List{ID: "news", Name: "Product news", Description: "What shipped this month.", DefaultOptIn: true}),
		list.MustDefine(list.List{ID: "beta", Name: "Beta program", DefaultOptIn: false}),
		list.MustDefine(list.List{ID: "hidden", Name: "Hidden list", DefaultOptIn: true, Enabled: &off}),
		list.MustDefine(list.List{ID: "filtered", Name: "Filtered", DefaultOptIn: false}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// recorder is an Emitter that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []preferences.ContactUnsubscribed
}

func (r *recorder) Unsubscribed(_ context.Context, e preferences.ContactUnsubscribed) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) take() []preferences.ContactUnsubscribed {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

type env struct {
	t      *testing.T
	pool   *pgxpool.Pool
	store  *preferences.Store
	svc    *preferences.Service
	events *recorder
	router *httpapi.Router
	srv    *httptest.Server
	client *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := schematest.NewPool(t)
	rec := &recorder{}
	reg := registry(t)
	clock := func() time.Time { return now }
	store := preferences.NewStore(pool, preferences.StoreOptions{Lists: reg, Emitter: rec, Now: clock})
	svc, err := preferences.New(preferences.Config{Secret: secret, PublicURL: base + "/", Lists: reg, Store: store, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	router := httpapi.NewRouter()
	auth := httpapi.AuthenticatorFunc(func(_ context.Context, bearer string) (httpapi.Principal, error) {
		switch bearer {
		case ingestKey:
			return httpapi.Principal{KeyID: "k1", Scopes: []string{httpapi.ScopeIngest}}, nil
		case readKey:
			return httpapi.Principal{KeyID: "k2", Scopes: []string{httpapi.ScopeRead}}, nil
		case adminKey:
			return httpapi.Principal{KeyID: "k3", Scopes: []string{httpapi.ScopeJourneyAdmin}}, nil
		}
		return httpapi.Principal{}, errcode.Unauthorized("")
	})
	svc.Routes(router, auth)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &env{t: t, pool: pool, store: store, svc: svc, events: rec, router: router, srv: srv, client: client}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return m
}

func (e *env) do(method, path, key, contentType, body string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (e *env) get(path string) response { return e.do(http.MethodGet, path, "", "", "") }

func (e *env) getJSON(path, key string) response { return e.do(http.MethodGet, path, key, "", "") }

func (e *env) sendJSON(method, path, key, body string) response {
	return e.do(method, path, key, "application/json", body)
}

// pathOf turns an absolute link of the service into a request path.
func pathOf(t *testing.T, link string) string {
	t.Helper()
	if !strings.HasPrefix(link, base+"/") {
		t.Fatalf("link %q is not under %s", link, base)
	}
	return strings.TrimPrefix(link, base)
}

func (e *env) token(action, userID, email, category string, exp time.Time) string {
	return preferences.Sign(secret, preferences.Claims{ExternalID: userID, Email: email, Action: action, Exp: exp, Category: category})
}

func (e *env) tokenPath(path, action, userID, email, category string) string {
	return path + "?token=" + url.QueryEscape(e.token(action, userID, email, category, now.Add(time.Hour)))
}

// row reads the stored row of (userID, email) straight from the table.
type row struct {
	UserID, Email   string
	UnsubscribedAll bool
	Suppressed      bool
	BounceCount     int
	Categories      map[string]any
	SuppressedAt    *time.Time
	LastBounceAt    *time.Time
}

func (e *env) rows(email string) []row {
	e.t.Helper()
	rs, err := e.pool.Query(context.Background(),
		`SELECT user_id, email, unsubscribed_all, suppressed, bounce_count, categories, suppressed_at, last_bounce_at
		 FROM email_preferences WHERE lower(email) = lower($1) ORDER BY created_at, id`, email)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		var cats []byte
		if err := rs.Scan(&r.UserID, &r.Email, &r.UnsubscribedAll, &r.Suppressed, &r.BounceCount, &cats, &r.SuppressedAt, &r.LastBounceAt); err != nil {
			e.t.Fatal(err)
		}
		if err := json.Unmarshal(cats, &r.Categories); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) oneRow(email string) row {
	e.t.Helper()
	rs := e.rows(email)
	if len(rs) != 1 {
		e.t.Fatalf("rows of %s: %d, want 1 (%+v)", email, len(rs), rs)
	}
	return rs[0]
}

func (e *env) countRows() int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM email_preferences`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// contact inserts a live contact row (the contacts projection's table)
// and returns its id.
func (e *env) contact(externalID, email *string) uuid.UUID {
	e.t.Helper()
	id := uuid.Must(uuid.NewV7())
	if _, err := e.pool.Exec(context.Background(),
		`INSERT INTO contacts (id, external_id, email) VALUES ($1, $2, $3)`, id, externalID, email); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) check(email, category string) (bool, string) {
	e.t.Helper()
	blocked, reason, err := e.store.Check(context.Background(), email, category)
	if err != nil {
		e.t.Fatal(err)
	}
	return blocked, reason
}

func str(s string) *string { return &s }
func yes() *bool           { v := true; return &v }
func no() *bool            { v := false; return &v }

var hrefRE = regexp.MustCompile(`href="([^"]+)"`)

// links returns the unescaped hrefs of a page.
func links(body string) []string {
	var out []string
	for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// claimsOf verifies the token of a service link.
func claimsOf(t *testing.T, link string) preferences.Claims {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	c, err := preferences.Verify(secret, u.Query().Get("token"), now)
	if err != nil {
		t.Fatalf("token of %s: %v", link, err)
	}
	return c
}
