package preferences_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/preferences"
)

const formType = "application/x-www-form-urlencoded"

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

func wantHTML(t *testing.T, r response, fragments ...string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	for _, f := range fragments {
		if !strings.Contains(r.body, f) {
			t.Errorf("page lacks %q:\n%s", f, r.body)
		}
	}
}

// Scenario 21: global token unsubscribe, repeatable.
func TestUnsubscribeAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := e.tokenPath(preferences.PathUnsubscribe, preferences.ActionUnsubscribe, "u1", "Ada@X.io", "")
	for i := range 2 {
		r := e.get(path)
		wantStatus(t, r, http.StatusOK)
		wantHTML(t, r, "<h1>You are unsubscribed from all emails</h1>", "Ada@X.io", "Manage your email preferences")
		if r.header.Get("Referrer-Policy") != "no-referrer" || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("headers %v", r.header)
		}
		row := e.oneRow("ada@x.io")
		if !row.UnsubscribedAll || row.UserID != "u1" || row.Email != "ada@x.io" || len(row.Categories) != 0 {
			t.Fatalf("round %d: row %+v", i, row)
		}
		ev := e.events.take()
		if len(ev) != 1 || ev[0] != (preferences.ContactUnsubscribed{ExternalID: "u1", Email: "ada@x.io", Scope: preferences.ScopeAll}) {
			t.Fatalf("round %d: events %+v", i, ev)
		}
	}
	// The page links to the preference center with a fresh manage token.
	r := e.get(path)
	var found bool
	for _, l := range links(r.body) {
		if strings.HasPrefix(l, base+preferences.PathPreferences+"?token=") {
			c := claimsOf(t, l)
			found = c.Action == preferences.ActionManage && c.ExternalID == "u1" && c.Email == "ada@x.io" && c.Exp.Equal(now.Add(preferences.TokenLifetime))
		}
	}
	if !found {
		t.Fatalf("no manage link in %s", r.body)
	}
	if blocked, reason := e.check("ada@x.io", ""); !blocked || reason != preferences.ReasonUnsubscribed {
		t.Fatalf("Check: %v %q", blocked, reason)
	}
}

// Scenario 22: a category token flips that category only.
func TestUnsubscribeCategory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.get(e.tokenPath(preferences.PathUnsubscribe, preferences.ActionUnsubscribe, "u1", "ada@x.io", "news"))
	wantStatus(t, r, http.StatusOK)
	wantHTML(t, r, "You will no longer receive Product news.")
	row := e.oneRow("ada@x.io")
	if row.UnsubscribedAll || len(row.Categories) != 1 || row.Categories["news"] != false {
		t.Fatalf("row %+v", row)
	}
	ev := e.events.take()
	if len(ev) != 1 || ev[0] != (preferences.ContactUnsubscribed{ExternalID: "u1", Email: "ada@x.io", Category: "news", Scope: preferences.ScopeCategory}) {
		t.Fatalf("events %+v", ev)
	}
	if blocked, _ := e.check("ada@x.io", "news"); !blocked {
		t.Fatal("news still allowed")
	}
	if blocked, _ := e.check("ada@x.io", "journey"); blocked {
		t.Fatal("journey mail blocked")
	}
}

// Scenario 23: resubscribe on a globally unsubscribed row.
func TestResubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.store.Set(context.Background(), "u1", "ada@x.io", preferences.Change{UnsubscribedAll: yes()}); err != nil {
		t.Fatal(err)
	}
	e.events.take()
	r := e.get(e.tokenPath(preferences.PathUnsubscribe, preferences.ActionResubscribe, "u1", "ada@x.io", "news"))
	wantStatus(t, r, http.StatusOK)
	wantHTML(t, r, "You are resubscribed", "You will receive Product news again.")
	row := e.oneRow("ada@x.io")
	if row.UnsubscribedAll || row.Categories["news"] != true {
		t.Fatalf("row %+v", row)
	}
	if ev := e.events.take(); len(ev) != 0 {
		t.Fatalf("resubscribe emitted %+v", ev)
	}
	// Category-less resubscribe clears unsubscribed_all only.
	if _, err := e.store.Set(context.Background(), "u1", "ada@x.io", preferences.Change{UnsubscribedAll: yes()}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.get(e.tokenPath(preferences.PathUnsubscribe, preferences.ActionResubscribe, "u1", "ada@x.io", "")), http.StatusOK)
	if row := e.oneRow("ada@x.io"); row.UnsubscribedAll || row.Categories["news"] != true {
		t.Fatalf("row %+v", row)
	}
}

// Scenario 24: bad tokens answer the Invalid Link page and write nothing.
func TestBadTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good := e.token(preferences.ActionUnsubscribe, "u1", "ada@x.io", "", now.Add(time.Hour))
	payload, sig, _ := strings.Cut(good, ".")
	other := preferences.Sign([]byte("wrong"), preferences.Claims{ExternalID: "u1", Email: "ada@x.io", Action: preferences.ActionUnsubscribe, Exp: now.Add(time.Hour)})
	forged := preferences.Sign(secret, preferences.Claims{ExternalID: "evil", Email: "ada@x.io", Action: preferences.ActionUnsubscribe, Exp: now.Add(time.Hour)})
	forgedPayload, _, _ := strings.Cut(forged, ".")
	tests := []struct {
		name, token, reason string
	}{
		{"tampered payload", forgedPayload + "." + sig, "Invalid token signature"},
		{"wrong secret", other, "Invalid token signature"},
		{"no dot", payload + sig, "Malformed token"},
		{"expired", e.token(preferences.ActionUnsubscribe, "u1", "ada@x.io", "", now.Add(-time.Second)), "Token has expired"},
		{"category a.b", e.token(preferences.ActionUnsubscribe, "u1", "ada@x.io", "a.b", now.Add(time.Hour)), "Invalid category"},
		{"category with markup", e.token(preferences.ActionUnsubscribe, "u1", "ada@x.io", "<b>", now.Add(time.Hour)), "Invalid category"},
	}
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			for _, path := range []string{preferences.PathUnsubscribe, preferences.PathPreferences} {
				if path == preferences.PathPreferences && strings.HasPrefix(tc.name, "category") {
					continue // the center ignores the token's category
				}
				body := ""
				if method == http.MethodPost {
					body = "List-Unsubscribe=One-Click"
					if path == preferences.PathPreferences {
						body = "category=&subscribed=false"
					}
				}
				r := e.do(method, path+"?token="+url.QueryEscape(tc.token), "", formType, body)
				wantStatus(t, r, http.StatusBadRequest)
				wantHTML(t, r, "<h1>Invalid Link</h1>", tc.reason)
			}
		}
	}
	if n := e.countRows(); n != 0 {
		t.Fatalf("%d rows written", n)
	}
	if ev := e.events.take(); len(ev) != 0 {
		t.Fatalf("events %+v", ev)
	}
	// A missing or empty token is a JSON validation error, not a page.
	for _, p := range []string{preferences.PathUnsubscribe, preferences.PathUnsubscribe + "?token=", preferences.PathPreferences} {
		r := e.get(p)
		wantStatus(t, r, http.StatusBadRequest)
		if m := r.json(t); m["code"] != "invalid_request" || m["error"] == "" {
			t.Fatalf("%s: %v", p, m)
		}
	}
	r := e.do(http.MethodPost, preferences.PathUnsubscribe, "", formType, "List-Unsubscribe=One-Click")
	wantStatus(t, r, http.StatusBadRequest)
	if r.json(t)["code"] != "invalid_request" {
		t.Fatal(r.body)
	}
}

// Scenario 25: RFC 8058 one-click POST.
func TestOneClickPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := e.tokenPath(preferences.PathUnsubscribe, preferences.ActionUnsubscribe, "u1", "ada@x.io", "")
	r := e.do(http.MethodPost, path, "", formType, "List-Unsubscribe=One-Click")
	wantStatus(t, r, http.StatusOK)
	wantHTML(t, r, "You are unsubscribed from all emails")
	if blocked, reason := e.check("ada@x.io", "news"); !blocked || reason != preferences.ReasonUnsubscribed {
		t.Fatalf("Check: %v %q", blocked, reason)
	}
	if ev := e.events.take(); len(ev) != 1 || ev[0].Scope != preferences.ScopeAll {
		t.Fatalf("events %+v", ev)
	}
	// Without a body, too, and for a category.
	r = e.do(http.MethodPost, e.tokenPath(preferences.PathUnsubscribe, preferences.ActionUnsubscribe, "u2", "bo@x.io", "beta"), "", "", "")
	wantStatus(t, r, http.StatusOK)
	if row := e.oneRow("bo@x.io"); row.UnsubscribedAll || row.Categories["beta"] != false {
		t.Fatalf("row %+v", row)
	}
}

// A manage token redirects on GET; HEAD never writes.
func TestManageTokenAndHead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.get(e.tokenPath(preferences.PathUnsubscribe, preferences.ActionManage, "u1", "ada@x.io", ""))
	wantStatus(t, r, http.StatusSeeOther)
	loc := r.header.Get("Location")
	if !strings.HasPrefix(loc, base+preferences.PathPreferences+"?token=") || claimsOf(t, loc).Action != preferences.ActionManage {
		t.Fatalf("Location %q", loc)
	}
	r = e.do(http.MethodHead, e.tokenPath(preferences.PathUnsubscribe, preferences.ActionUnsubscribe, "u1", "ada@x.io", ""), "", "", "")
	wantStatus(t, r, http.StatusOK)
	if e.countRows() != 0 {
		t.Fatal("HEAD wrote a row")
	}
	// A one-click POST with a manage token still unsubscribes.
	r = e.do(http.MethodPost, e.tokenPath(preferences.PathUnsubscribe, preferences.ActionManage, "u1", "ada@x.io", ""), "", formType, "List-Unsubscribe=One-Click")
	wantStatus(t, r, http.StatusOK)
	if !e.oneRow("ada@x.io").UnsubscribedAll {
		t.Fatal("manage one-click did not unsubscribe")
	}
}

type centerRow struct {
	label, status, action string
	link                  preferences.Claims
}

// parseCenter reads the rows of a rendered preference center: label,
// status, the form's button and the decoded link token.
func parseCenter(t *testing.T, body string) []centerRow {
	t.Helper()
	var out []centerRow
	items := strings.Split(body, "<li")[1:]
	for _, item := range items {
		item = item[:strings.Index(item, "</li>")]
		between := func(s, start, end string) string {
			i := strings.Index(s, start)
			if i < 0 {
				t.Fatalf("no %q in %s", start, s)
			}
			s = s[i+len(start):]
			s = s[strings.Index(s, ">")+1:]
			return s[:strings.Index(s, end)]
		}
		row := centerRow{
			label:  between(item, `<span class="name"`, "</span>"),
			status: between(item, `<span class="status`, "</span>"),
			action: between(item, `<button`, "</button>"),
		}
		ls := links(item)
		if len(ls) != 1 {
			t.Fatalf("row links %v", ls)
		}
		row.link = claimsOf(t, ls[0])
		if !strings.HasPrefix(ls[0], base+preferences.PathUnsubscribe+"?token=") {
			t.Fatalf("row link %q", ls[0])
		}
		out = append(out, row)
	}
	return out
}

// Scenario 26: the preference center.
func TestPreferenceCenter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.store.Set(ctx, "u1", "ada@x.io", preferences.Change{ReplaceCategories: map[string]bool{"beta": true, "news": false}}); err != nil {
		t.Fatal(err)
	}
	path := e.tokenPath(preferences.PathPreferences, preferences.ActionUnsubscribe, "u1", "ada@x.io", "news") // any action works
	r := e.get(path)
	wantStatus(t, r, http.StatusOK)
	wantHTML(t, r, `<html lang="en">`, "<title>Email preferences</title>", "<h1>Email preferences</h1>", "<strong>ada@x.io</strong>",
		`<meta name="viewport"`, `<ul class="prefs" aria-label="Email categories">`)
	for _, absent := range []string{"Hidden list", "transactional", "Filtered"} {
		if strings.Contains(r.body, absent) {
			t.Errorf("page shows %q", absent)
		}
	}
	rows := parseCenter(t, r.body)
	type want struct{ label, status, action, linkAction, linkCategory string }
	got := func(rows []centerRow) []want {
		var out []want
		for _, r := range rows {
			out = append(out, want{r.label, r.status, r.action[strings.Index(r.action, ">")+1:], r.link.Action, r.link.Category})
		}
		return out
	}
	expect := []want{
		{"Journey &amp; lifecycle emails", "Subscribed", "Unsubscribe", "unsubscribe", "journey"},
		{"Product news", "Unsubscribed", "Resubscribe", "resubscribe", "news"},
		{"Beta program", "Subscribed", "Unsubscribe", "unsubscribe", "beta"},
		{"All emails", "Receiving emails", "Unsubscribe from all", "unsubscribe", ""},
	}
	if g := got(rows); !slices.Equal(g, expect) {
		t.Fatalf("rows\n got %+v\nwant %+v", g, expect)
	}
	for _, row := range rows {
		if row.link.ExternalID != "u1" || row.link.Email != "ada@x.io" {
			t.Fatalf("link claims %+v", row.link)
		}
	}

	// Globally unsubscribed: every row is unsubscribed with a resubscribe
	// link, and the last offers "Resubscribe to all".
	if _, err := e.store.Set(ctx, "u1", "ada@x.io", preferences.Change{UnsubscribedAll: yes()}); err != nil {
		t.Fatal(err)
	}
	r = e.get(path)
	wantStatus(t, r, http.StatusOK)
	expect = []want{
		{"Journey &amp; lifecycle emails", "Unsubscribed", "Resubscribe", "resubscribe", "journey"},
		{"Product news", "Unsubscribed", "Resubscribe", "resubscribe", "news"},
		{"Beta program", "Unsubscribed", "Resubscribe", "resubscribe", "beta"},
		{"All emails", "Unsubscribed from all", "Resubscribe to all", "resubscribe", ""},
	}
	if g := got(parseCenter(t, r.body)); !slices.Equal(g, expect) {
		t.Fatalf("rows\n got %+v\nwant %+v", g, expect)
	}
	wantHTML(t, r, "Resubscribe to all by link")

	// No row: defaults by polarity, not unsubscribed.
	r = e.get(e.tokenPath(preferences.PathPreferences, preferences.ActionManage, "nobody", "nobody@x.io", ""))
	wantStatus(t, r, http.StatusOK)
	expect = []want{
		{"Journey &amp; lifecycle emails", "Subscribed", "Unsubscribe", "unsubscribe", "journey"},
		{"Product news", "Subscribed", "Unsubscribe", "unsubscribe", "news"},
		{"Beta program", "Unsubscribed", "Resubscribe", "resubscribe", "beta"},
		{"All emails", "Receiving emails", "Unsubscribe from all", "unsubscribe", ""},
	}
	if g := got(parseCenter(t, r.body)); !slices.Equal(g, expect) {
		t.Fatalf("rows\n got %+v\nwant %+v", g, expect)
	}
	if e.countRows() != 1 {
		t.Fatal("the center wrote a row")
	}
}

func TestPreferenceCenterEscapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.get(e.tokenPath(preferences.PathPreferences, preferences.ActionManage, `u"1`, `<script>alert(1)</script>@x.io`, ""))
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(r.body, "<script>") {
		t.Fatalf("unescaped markup:\n%s", r.body)
	}
	wantHTML(t, r, "&lt;script&gt;alert(1)&lt;/script&gt;@x.io")
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
}

// The center's form changes one preference and re-renders.
func TestPreferenceCenterForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.get(e.tokenPath(preferences.PathPreferences, preferences.ActionManage, "u1", "ada@x.io", ""))
	wantStatus(t, r, http.StatusOK)
	// The form posts to the center with a fresh manage token.
	i := strings.Index(r.body, `<form method="post" action="`)
	action := r.body[i+len(`<form method="post" action="`):]
	action = html.UnescapeString(action[:strings.Index(action, `"`)])
	if !strings.HasPrefix(action, preferences.PathPreferences+"?token=") {
		t.Fatalf("form action %q", action)
	}
	post := func(form string) response {
		t.Helper()
		r := e.do(http.MethodPost, action, "", formType, form)
		wantStatus(t, r, http.StatusOK)
		return r
	}

	r = post("category=news&subscribed=false")
	wantHTML(t, r, `role="status">Saved: you are unsubscribed from Product news.`)
	if rows := parseCenter(t, r.body); rows[1].status != "Unsubscribed" {
		t.Fatalf("news row %+v", rows[1])
	}
	if ev := e.events.take(); len(ev) != 1 || ev[0].Category != "news" {
		t.Fatalf("events %+v", ev)
	}
	r = post("category=beta&subscribed=true")
	wantHTML(t, r, "Saved: you are subscribed to Beta program.")
	if rows := parseCenter(t, r.body); rows[2].status != "Subscribed" {
		t.Fatalf("beta row %+v", rows[2])
	}
	r = post("category=&subscribed=false")
	wantHTML(t, r, "Saved: you are unsubscribed from all emails.", "Unsubscribed from all")
	if row := e.oneRow("ada@x.io"); !row.UnsubscribedAll || row.Categories["news"] != false || row.Categories["beta"] != true {
		t.Fatalf("row %+v", row)
	}
	// Subscribing to one category lifts the global opt-out, as the
	// resubscribe link does.
	r = post("category=news&subscribed=true")
	if row := e.oneRow("ada@x.io"); row.UnsubscribedAll || row.Categories["news"] != true {
		t.Fatalf("row %+v", row)
	}
	for _, bad := range []string{"category=news&subscribed=maybe", "category=a.b&subscribed=true", "category=news"} {
		r := e.do(http.MethodPost, action, "", formType, bad)
		wantStatus(t, r, http.StatusBadRequest)
		wantHTML(t, r, "<h1>Invalid Link</h1>")
	}
}

// Scenario 27 and the lists API rules of §3.8.
func TestListsAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.getJSON("/v1/lists", ingestKey)
	wantStatus(t, r, http.StatusOK)
	want := `{"lists":[{"id":"news","name":"Product news","description":"What shipped this month.","defaultOptIn":true},{"id":"beta","name":"Beta program","defaultOptIn":false}]}` + "\n"
	if r.body != want {
		t.Fatalf("lists %s", r.body)
	}
	wantStatus(t, e.getJSON("/v1/lists", ""), http.StatusUnauthorized)
	wantStatus(t, e.getJSON("/v1/lists", readKey), http.StatusForbidden)

	// A new address: keyed by the address, no contact created.
	r = e.sendJSON(http.MethodPost, "/v1/lists/beta/subscribe", ingestKey, `{"email":"  New@X.io "}`)
	wantStatus(t, r, http.StatusOK)
	if r.body != `{"list":"beta","subscribed":true}`+"\n" {
		t.Fatal(r.body)
	}
	if row := e.oneRow("new@x.io"); row.UserID != "new@x.io" || row.Categories["beta"] != true {
		t.Fatalf("row %+v", row)
	}
	if blocked, _ := e.check("new@x.io", "beta"); blocked {
		t.Fatal("subscribed address blocked for beta")
	}
	r = e.sendJSON(http.MethodPost, "/v1/lists/beta/unsubscribe", ingestKey, `{"email":"new@x.io"}`)
	wantStatus(t, r, http.StatusOK)
	if r.body != `{"list":"beta","subscribed":false}`+"\n" {
		t.Fatal(r.body)
	}
	if row := e.oneRow("new@x.io"); row.Categories["beta"] != false {
		t.Fatalf("row %+v", row)
	}
	if ev := e.events.take(); len(ev) != 1 || ev[0] != (preferences.ContactUnsubscribed{ExternalID: "new@x.io", Email: "new@x.io", Category: "beta", Scope: preferences.ScopeCategory}) {
		t.Fatalf("events %+v", ev)
	}

	// Known contacts are keyed by external id, else uuid; found by
	// external id, email or alias. Subscribing leaves unsubscribed_all.
	e.contact(str("ext-1"), str("Known@X.io"))
	anon := e.contact(nil, str("anon@x.io"))
	aliased := e.contact(str("ext-2"), str("current@x.io"))
	if _, err := e.pool.Exec(context.Background(),
		`INSERT INTO contact_aliases (id, contact_id, alias_kind, alias_value, reason) VALUES (gen_random_uuid(), $1, 'email', 'old@x.io', 'merge'), (gen_random_uuid(), $1, 'external', 'old-ext', 'merge')`, aliased); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Set(context.Background(), "ext-1", "known@x.io", preferences.Change{UnsubscribedAll: yes()}); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ body, user, email string }{
		{`{"userId":"ext-1"}`, "ext-1", "known@x.io"},
		{`{"email":"KNOWN@x.io"}`, "ext-1", "known@x.io"},
		{`{"email":"anon@x.io"}`, anon.String(), "anon@x.io"},
		{`{"email":"old@x.io"}`, "ext-2", "current@x.io"},
		{`{"userId":"old-ext"}`, "ext-2", "current@x.io"},
		{`{"userId":"fresh","email":"fresh@x.io"}`, "fresh", "fresh@x.io"},
	}
	for _, c := range cases {
		r := e.sendJSON(http.MethodPost, "/v1/lists/news/subscribe", ingestKey, c.body)
		wantStatus(t, r, http.StatusOK)
		var hit bool
		for _, row := range e.rows(c.email) {
			hit = hit || (row.UserID == c.user && row.Categories["news"] == true)
		}
		if !hit {
			t.Errorf("%s: no row (%s, %s) with news: %+v", c.body, c.user, c.email, e.rows(c.email))
		}
	}
	if !e.oneRow("known@x.io").UnsubscribedAll {
		t.Error("subscribe cleared unsubscribed_all")
	}

	// Errors: unknown list (before identity), no identity, no email.
	e.contact(str("no-mail"), nil)
	errCases := []struct {
		path, body string
		status     int
		msg        string
	}{
		{"/v1/lists/zzz/subscribe", `{}`, http.StatusNotFound, "Unknown list: zzz"},
		{"/v1/lists/beta/subscribe", `{}`, http.StatusBadRequest, "email or userId is required"},
		{"/v1/lists/beta/subscribe", `{"email":"  ","userId":""}`, http.StatusBadRequest, "email or userId is required"},
		{"/v1/lists/beta/subscribe", `{"userId":"nobody"}`, http.StatusBadRequest, "Contact has no email; cannot manage list membership"},
		{"/v1/lists/beta/unsubscribe", `{"userId":"no-mail"}`, http.StatusBadRequest, "Contact has no email; cannot manage list membership"},
		{"/v1/lists/beta/subscribe", `{"email":5}`, http.StatusBadRequest, "email: must be a string"},
	}
	for _, c := range errCases {
		r := e.sendJSON(http.MethodPost, c.path, ingestKey, c.body)
		wantStatus(t, r, c.status)
		if m := r.json(t); m["error"] != c.msg {
			t.Errorf("%s %s: %v, want %q", c.path, c.body, m, c.msg)
		}
	}
	// The disabled list is still accepted.
	wantStatus(t, e.sendJSON(http.MethodPost, "/v1/lists/hidden/unsubscribe", ingestKey, `{"email":"new@x.io"}`), http.StatusOK)
	// Idempotent.
	for range 2 {
		wantStatus(t, e.sendJSON(http.MethodPost, "/v1/lists/news/subscribe", ingestKey, `{"email":"new@x.io"}`), http.StatusOK)
	}
	if row := e.oneRow("new@x.io"); row.Categories["news"] != true || row.Categories["hidden"] != false {
		t.Fatalf("row %+v", row)
	}
}

func TestAdminPreferences(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.contact(str("ext-1"), str("Ada@X.io"))
	anon := e.contact(nil, str("anon@x.io"))
	noMail := e.contact(str("no-mail"), nil)
	prefsPath := func(key string) string { return "/v1/admin/contacts/" + key + "/preferences" }

	for _, c := range []struct {
		key, msg string
	}{
		{"missing", "Contact not found"},
		{"0190a8a5-0000-7000-8000-000000000000", "Contact not found"},
		{"ext-1", "No preferences found for this contact"},
		{id.String(), "No preferences found for this contact"},
	} {
		r := e.getJSON(prefsPath(c.key), readKey)
		wantStatus(t, r, http.StatusNotFound)
		if m := r.json(t); m["error"] != c.msg {
			t.Errorf("%s: %v", c.key, m)
		}
	}
	wantStatus(t, e.getJSON(prefsPath("ext-1"), ""), http.StatusUnauthorized)
	wantStatus(t, e.sendJSON(http.MethodPut, prefsPath("ext-1"), readKey, `{}`), http.StatusForbidden)
	r := e.sendJSON(http.MethodPut, prefsPath("missing"), adminKey, `{}`)
	wantStatus(t, r, http.StatusNotFound)
	r = e.sendJSON(http.MethodPut, prefsPath(noMail.String()), adminKey, `{"suppressed":true}`)
	wantStatus(t, r, http.StatusBadRequest)
	if m := r.json(t); m["error"] != "Contact has no email address" {
		t.Fatal(m)
	}
	r = e.sendJSON(http.MethodPut, prefsPath("ext-1"), adminKey, `{"suppressed":"yes"}`)
	wantStatus(t, r, http.StatusBadRequest)

	// Create: unsent flags false, categories as given.
	r = e.sendJSON(http.MethodPut, prefsPath(id.String()), adminKey, `{"suppressed":true,"categories":{"news":false,"beta":true}}`)
	wantStatus(t, r, http.StatusOK)
	p := r.json(t)["preferences"].(map[string]any)
	if p["userId"] != "ext-1" || p["email"] != "ada@x.io" || p["suppressed"] != true || p["unsubscribedAll"] != false ||
		p["bounceCount"] != float64(0) || p["suppressedAt"] != "2026-03-10T12:00:00.000Z" || p["lastBounceAt"] != nil {
		t.Fatalf("created %v", p)
	}
	if cats := p["categories"].(map[string]any); len(cats) != 2 || cats["news"] != false || cats["beta"] != true {
		t.Fatalf("categories %v", cats)
	}
	if ev := e.events.take(); len(ev) != 1 || ev[0].Category != "news" {
		t.Fatalf("events %+v", ev)
	}
	// Update: categories replace the map; absent fields are kept.
	r = e.sendJSON(http.MethodPut, prefsPath("ext-1"), adminKey, `{"categories":{"weekly":true}}`)
	wantStatus(t, r, http.StatusOK)
	p = r.json(t)["preferences"].(map[string]any)
	if cats := p["categories"].(map[string]any); len(cats) != 1 || cats["weekly"] != true || p["suppressed"] != true {
		t.Fatalf("updated %v", p)
	}
	r = e.sendJSON(http.MethodPut, prefsPath("ext-1"), adminKey, `{"suppressed":false,"unsubscribedAll":true,"categories":null}`)
	wantStatus(t, r, http.StatusOK)
	p = r.json(t)["preferences"].(map[string]any)
	if p["suppressed"] != false || p["suppressedAt"] != nil || p["unsubscribedAll"] != true || len(p["categories"].(map[string]any)) != 1 {
		t.Fatalf("updated %v", p)
	}
	for _, key := range []string{"ext-1", id.String()} {
		r := e.getJSON(prefsPath(key), readKey)
		wantStatus(t, r, http.StatusOK)
		if got := r.json(t)["preferences"].(map[string]any); got["id"] != p["id"] || got["unsubscribedAll"] != true {
			t.Fatalf("%s: %v", key, got)
		}
	}
	// A contact without external id is keyed by its uuid.
	r = e.sendJSON(http.MethodPut, prefsPath(anon.String()), adminKey, `{"unsubscribedAll":false}`)
	wantStatus(t, r, http.StatusOK)
	if p := r.json(t)["preferences"].(map[string]any); p["userId"] != anon.String() || p["email"] != "anon@x.io" {
		t.Fatalf("anon %v", p)
	}
}

func TestAdminSuppressions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	// Rows with increasing updated_at: writes use the store's clock, so
	// stamp them directly.
	mk := func(user, email string, ch preferences.Change, bounces int, at time.Time) {
		t.Helper()
		if _, err := e.store.Set(ctx, user, email, ch); err != nil {
			t.Fatal(err)
		}
		for range bounces {
			if _, err := e.store.RecordBounce(ctx, user, email, at); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.pool.Exec(ctx, `UPDATE email_preferences SET updated_at = $1 WHERE user_id = $2`, at, user); err != nil {
			t.Fatal(err)
		}
	}
	mk("plain", "plain@x.io", preferences.Change{}, 0, now.Add(1*time.Minute))
	mk("bounced", "bounced@x.io", preferences.Change{}, 1, now.Add(2*time.Minute))
	mk("unsub", "unsub@x.io", preferences.Change{UnsubscribedAll: yes()}, 0, now.Add(3*time.Minute))
	mk("complained", "complained@x.io", preferences.Change{Suppressed: yes()}, 0, now.Add(4*time.Minute))
	mk("hard", "hard@x.io", preferences.Change{}, 3, now.Add(5*time.Minute))

	users := func(r response) []string {
		t.Helper()
		var out []string
		for _, s := range r.json(t)["suppressions"].([]any) {
			out = append(out, s.(map[string]any)["userId"].(string))
		}
		return out
	}
	for _, c := range []struct {
		query string
		users []string
		total float64
	}{
		{"", []string{"hard", "complained", "unsub", "bounced", "plain"}, 5},
		{"?type=bounced", []string{"hard", "bounced"}, 2},
		{"?type=unsubscribed", []string{"unsub"}, 1},
		{"?type=complained", []string{"complained"}, 1},
		{"?limit=2&offset=1", []string{"complained", "unsub"}, 5},
		{"?offset=99", nil, 5},
	} {
		r := e.getJSON("/v1/admin/suppressions"+c.query, readKey)
		wantStatus(t, r, http.StatusOK)
		if got := users(r); !slices.Equal(got, c.users) {
			t.Errorf("%s: %v, want %v", c.query, got, c.users)
		}
		if m := r.json(t); m["total"] != c.total {
			t.Errorf("%s: total %v", c.query, m["total"])
		}
	}
	r := e.getJSON("/v1/admin/suppressions?limit=200", readKey)
	wantStatus(t, r, http.StatusOK)
	if m := r.json(t); m["limit"] != float64(200) || m["offset"] != float64(0) {
		t.Fatal(m)
	}
	for _, q := range []string{"?type=spam", "?limit=0", "?limit=201", "?offset=-1"} {
		wantStatus(t, e.getJSON("/v1/admin/suppressions"+q, readKey), http.StatusBadRequest)
	}
	wantStatus(t, e.getJSON("/v1/admin/suppressions", ""), http.StatusUnauthorized)
}

func TestURLHelpers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.svc.UnsubscribeURL("", " Ada@X.io", "news")
	if !strings.HasPrefix(u, base+preferences.PathUnsubscribe+"?token=") {
		t.Fatal(u)
	}
	c := claimsOf(t, u)
	if c.ExternalID != "ada@x.io" || c.Email != "ada@x.io" || c.Action != preferences.ActionUnsubscribe || c.Category != "news" || !c.Exp.Equal(now.Add(30*24*time.Hour)) {
		t.Fatalf("claims %+v", c)
	}
	c = claimsOf(t, e.svc.PreferencesURL("u1", "ada@x.io"))
	if c.Action != preferences.ActionManage || c.ExternalID != "u1" || c.Category != "" {
		t.Fatalf("claims %+v", c)
	}
	// The link works end to end.
	wantStatus(t, e.get(pathOf(t, u)), http.StatusOK)
	if row := e.oneRow("ada@x.io"); row.Categories["news"] != false {
		t.Fatalf("row %+v", row)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	store := preferences.NewStore(nil, preferences.StoreOptions{})
	for _, c := range []struct {
		name  string
		cfg   preferences.Config
		field string
	}{
		{"no secret", preferences.Config{Store: store}, "Secret"},
		{"no store", preferences.Config{Secret: secret}, "Store"},
		{"relative URL", preferences.Config{Secret: secret, Store: store, PublicURL: "api.test"}, "PublicURL"},
	} {
		if _, err := preferences.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := preferences.New(preferences.Config{Secret: secret, Store: store}); err != nil {
		t.Fatal(err)
	}
}

func TestRoutesDocumented(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	public := map[string]bool{preferences.PathUnsubscribe: true, preferences.PathPreferences: true}
	var n int
	for _, r := range e.router.Routes() {
		n++
		if r.Doc.Summary == "" || len(r.Doc.Tags) == 0 {
			t.Errorf("%s %s: undocumented", r.Method, r.Path)
		}
		if public[r.Path] != (r.Doc.Scope == "") {
			t.Errorf("%s %s: scope %q", r.Method, r.Path, r.Doc.Scope)
		}
	}
	if n != 10 {
		t.Errorf("%d routes, want 10", n)
	}
	doc := e.router.OpenAPI(httpapi.OpenAPIInfo{Title: "t", Version: "1"})
	if _, ok := doc["paths"].(map[string]map[string]any)["/v1/admin/contacts/{contactId}/preferences"]; !ok {
		t.Fatalf("paths %v", doc["paths"])
	}
}
