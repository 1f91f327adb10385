package preferences

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/lists/list"
)

// maxFormBytes bounds the form bodies of the public POST routes.
const maxFormBytes = 8 << 10

// journeyLabel is the preference center's label of journey mail.
const journeyLabel = "Journey & lifecycle emails"

// The pages share one layout: a single centred card, system fonts, text
// and controls at WCAG AA contrast or better, visible focus rings, and
// rows that wrap on narrow screens. html/template escapes every value.
const layoutHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{.Title}}</title>
<style>
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:40rem;margin:2rem auto;padding:1.5rem;background:#fff;border:1px solid #d1d5db;border-radius:.75rem}
@media (max-width:40rem){main{margin:0;border:0;border-radius:0;min-height:100vh}}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}
p{margin:0 0 1rem}
.muted{color:#374151}
.notice{padding:.75rem 1rem;border-radius:.5rem;background:#eff6ff;border:1px solid #93c5fd;color:#1e3a8a}
.error{background:#fef2f2;border-color:#fca5a5;color:#7f1d1d}
ul.prefs{list-style:none;margin:0 0 1rem;padding:0;border-top:1px solid #e5e7eb}
ul.prefs li{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem 1rem;padding:.875rem 0;border-bottom:1px solid #e5e7eb}
ul.prefs li.all{border-top:2px solid #9ca3af}
.name{font-weight:600;display:block}
.status{display:inline-block;margin-top:.25rem;padding:.125rem .5rem;border-radius:999px;font-size:.875rem;font-weight:600}
.on{background:#dcfce7;color:#14532d}
.off{background:#fee2e2;color:#7f1d1d}
.actions{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem .75rem}
form{margin:0}
button{font:inherit;font-weight:600;cursor:pointer;padding:.5rem 1rem;border-radius:.5rem;border:1px solid #1d4ed8;background:#1d4ed8;color:#fff}
button.secondary{background:#fff;color:#1e40af}
a{color:#1e40af;text-decoration:underline}
a:focus-visible,button:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
</style>
</head>
<body>
<main>
{{template "content" .}}
</main>
</body>
</html>
`

const invalidHTML = `{{define "content"}}<h1>Invalid Link</h1>
<p class="notice error" role="alert">{{.Reason}}</p>
<p class="muted">This link cannot be used. It may have expired or been copied incompletely; the link in a more recent email will work.</p>
{{end}}`

const confirmHTML = `{{define "content"}}<h1>{{.Heading}}</h1>
<p role="status">{{.Message}}</p>
<p class="muted">This applies to <strong>{{.Email}}</strong>.</p>
<p><a href="{{.PreferencesURL}}">Manage your email preferences</a></p>
{{end}}`

const centerHTML = `{{define "content"}}<h1>Email preferences</h1>
<p class="muted">Choose which emails <strong>{{.Email}}</strong> receives.</p>
{{if .Notice}}<p class="notice" role="status">{{.Notice}}</p>{{end}}
<ul class="prefs" aria-label="Email categories">
{{range .Rows}}<li>
<div><span class="name" id="pref-{{.ID}}">{{.Label}}</span><span class="status {{if .Subscribed}}on{{else}}off{{end}}">{{if .Subscribed}}Subscribed{{else}}Unsubscribed{{end}}</span></div>
<div class="actions">
<form method="post" action="{{$.FormAction}}"><input type="hidden" name="category" value="{{.ID}}"><input type="hidden" name="subscribed" value="{{if .Subscribed}}false{{else}}true{{end}}"><button type="submit" {{if .Subscribed}}class="secondary" {{end}}aria-describedby="pref-{{.ID}}">{{if .Subscribed}}Unsubscribe{{else}}Resubscribe{{end}}</button></form>
<a href="{{.LinkURL}}">{{if .Subscribed}}Unsubscribe{{else}}Resubscribe{{end}} by link<span class="sr-only"> ({{.Label}})</span></a>
</div>
</li>
{{end}}<li class="all">
<div><span class="name" id="pref-all">All emails</span><span class="status {{if .UnsubscribedAll}}off{{else}}on{{end}}">{{if .UnsubscribedAll}}Unsubscribed from all{{else}}Receiving emails{{end}}</span></div>
<div class="actions">
<form method="post" action="{{.FormAction}}"><input type="hidden" name="category" value=""><input type="hidden" name="subscribed" value="{{if .UnsubscribedAll}}true{{else}}false{{end}}"><button type="submit" {{if not .UnsubscribedAll}}class="secondary" {{end}}aria-describedby="pref-all">{{if .UnsubscribedAll}}Resubscribe to all{{else}}Unsubscribe from all{{end}}</button></form>
<a href="{{.AllLinkURL}}">{{if .UnsubscribedAll}}Resubscribe to all{{else}}Unsubscribe from all{{end}} by link</a>
</div>
</li>
</ul>
{{end}}`

var (
	layoutTmpl  = template.Must(template.New("layout").Parse(layoutHTML))
	invalidTmpl = template.Must(template.Must(layoutTmpl.Clone()).Parse(invalidHTML))
	confirmTmpl = template.Must(template.Must(layoutTmpl.Clone()).Parse(confirmHTML))
	centerTmpl  = template.Must(template.Must(layoutTmpl.Clone()).Parse(centerHTML))
)

type invalidPage struct{ Title, Reason string }

type confirmPage struct {
	Title, Heading, Message, Email string
	PreferencesURL                 string
}

type centerRow struct {
	ID, Label  string
	Subscribed bool
	LinkURL    string
}

type centerPage struct {
	Title, Email, Notice string
	Rows                 []centerRow
	UnsubscribedAll      bool
	AllLinkURL           string
	FormAction           string
}

// writePage renders t with status; a template failure is a 500 JSON error
// (it would be a bug: the data is fixed-shape).
func writePage(w http.ResponseWriter, r *http.Request, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		httpapi.WriteError(w, r, errcode.Internal(err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// The URL carries the token: never leak it to linked sites.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func writeInvalid(w http.ResponseWriter, r *http.Request, reason string) {
	writePage(w, r, http.StatusBadRequest, invalidTmpl, invalidPage{Title: "Invalid Link", Reason: reason})
}

// claims reads and verifies the token query parameter: a missing token is
// a 400 JSON error (as the reference's validator), a bad one or a category
// failing the list-id rule the 400 "Invalid Link" page. ok is false when
// the response is written.
func (s *Service) claims(w http.ResponseWriter, r *http.Request) (Claims, bool) {
	token := r.URL.Query().Get("token")
	if token == "" {
		httpapi.WriteError(w, r, errcode.InvalidField("token", "is required"))
		return Claims{}, false
	}
	c, err := Verify(s.secret, token, s.now())
	if err != nil {
		writeInvalid(w, r, err.Error())
		return Claims{}, false
	}
	if c.Category != "" && !list.ValidCategory(c.Category) {
		writeInvalid(w, r, "Invalid category")
		return Claims{}, false
	}
	return c, true
}

// label names a category for people.
func (s *Service) label(category string) string {
	if category == list.CategoryJourney {
		return journeyLabel
	}
	if l, ok := s.lists.Get(category); ok {
		return l.Name
	}
	return category
}

// unsubscribe serves GET and POST /v1/email/unsubscribe. GET applies the
// token as the reference does (it mutates on GET, which link scanners can
// trigger; HEAD does not), except that a manage token redirects to the
// preference center. POST is RFC 8058 one-click: the mailbox provider
// posts List-Unsubscribe=One-Click; the body is not required, and every
// non-resubscribe token — manage included — unsubscribes.
func (s *Service) unsubscribe(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		_ = r.ParseForm() // the body is informational only
	}
	c, ok := s.claims(w, r)
	if !ok {
		return
	}
	if r.Method != http.MethodPost && c.Action == ActionManage {
		http.Redirect(w, r, s.PreferencesURL(c.ExternalID, c.Email), http.StatusSeeOther)
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	resub := c.Action == ActionResubscribe
	var ch Change
	if c.Category != "" {
		ch.Category, ch.CategoryValue = c.Category, &resub
	}
	if resub {
		f := false
		ch.UnsubscribedAll = &f
	} else if c.Category == "" {
		t := true
		ch.UnsubscribedAll = &t
	}
	if _, err := s.store.Set(r.Context(), c.ExternalID, c.Email, ch); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	page := confirmPage{Email: c.Email, PreferencesURL: s.PreferencesURL(c.ExternalID, c.Email)}
	switch {
	case resub && c.Category != "":
		page.Title, page.Heading = "Resubscribed", "You are resubscribed"
		page.Message = "You will receive " + s.label(c.Category) + " again."
	case resub:
		page.Title, page.Heading = "Resubscribed", "You are resubscribed"
		page.Message = "You will receive our emails again."
	case c.Category != "":
		page.Title, page.Heading = "Unsubscribed", "You are unsubscribed"
		page.Message = "You will no longer receive " + s.label(c.Category) + "."
	default:
		page.Title, page.Heading = "Unsubscribed", "You are unsubscribed from all emails"
		page.Message = "You will no longer receive any of our emails."
	}
	writePage(w, r, http.StatusOK, confirmTmpl, page)
}

// center serves GET /v1/email/preferences.
func (s *Service) center(w http.ResponseWriter, r *http.Request) {
	c, ok := s.claims(w, r)
	if !ok {
		return
	}
	s.renderCenter(w, r, c, "")
}

// centerPost serves the preference center's form: category ("" for all
// mail) and subscribed. Subscribing also clears unsubscribed_all, the
// resubscribe link's semantics, so the choice takes effect.
func (s *Service) centerPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeInvalid(w, r, "Invalid form submission")
		return
	}
	c, ok := s.claims(w, r)
	if !ok {
		return
	}
	category := r.PostForm.Get("category")
	var subscribed bool
	switch r.PostForm.Get("subscribed") {
	case "true":
		subscribed = true
	case "false":
	default:
		writeInvalid(w, r, "Invalid form submission")
		return
	}
	if category != "" && !list.ValidCategory(category) {
		writeInvalid(w, r, "Invalid category")
		return
	}
	var ch Change
	if category != "" {
		ch.Category, ch.CategoryValue = category, &subscribed
	}
	if subscribed || category == "" {
		unsub := !subscribed
		ch.UnsubscribedAll = &unsub
	}
	if _, err := s.store.Set(r.Context(), c.ExternalID, c.Email, ch); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var notice string
	switch {
	case category == "" && subscribed:
		notice = "Saved: you will receive our emails again."
	case category == "":
		notice = "Saved: you are unsubscribed from all emails."
	case subscribed:
		notice = "Saved: you are subscribed to " + s.label(category) + "."
	default:
		notice = "Saved: you are unsubscribed from " + s.label(category) + "."
	}
	s.renderCenter(w, r, c, notice)
}

func (s *Service) renderCenter(w http.ResponseWriter, r *http.Request, c Claims, notice string) {
	p, err := s.store.Get(r.Context(), c.ExternalID, c.Email)
	if err != nil && !errcode.Is(err, errcode.CodeNotFound) {
		httpapi.WriteError(w, r, err)
		return
	}
	page := centerPage{
		Title: "Email preferences", Email: c.Email, Notice: notice, UnsubscribedAll: p.UnsubscribedAll,
		FormAction: PathPreferences + "?token=" + url.QueryEscape(s.token(ActionManage, c.ExternalID, c.Email, "")),
	}
	ids := []string{list.CategoryJourney}
	for _, l := range s.lists.Visible() {
		ids = append(ids, l.ID)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		row := centerRow{ID: id, Label: s.label(id), Subscribed: !p.UnsubscribedAll && s.lists.Subscribed(p.Categories, id)}
		if row.Subscribed {
			row.LinkURL = s.UnsubscribeURL(c.ExternalID, c.Email, id)
		} else {
			row.LinkURL = s.ResubscribeURL(c.ExternalID, c.Email, id)
		}
		page.Rows = append(page.Rows, row)
	}
	if p.UnsubscribedAll {
		page.AllLinkURL = s.ResubscribeURL(c.ExternalID, c.Email, "")
	} else {
		page.AllLinkURL = s.UnsubscribeURL(c.ExternalID, c.Email, "")
	}
	writePage(w, r, http.StatusOK, centerTmpl, page)
}
