package templates_test

import (
	"errors"
	"flag"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenOptions are the options every golden file is rendered with.
var goldenOptions = templates.RenderOptions{
	UnsubscribeURL: "https://api.test/v1/email/unsubscribe?token=tok.unsub",
	PreferencesURL: "https://api.test/v1/email/preferences?token=tok.manage",
	Brand: templates.Brand{
		Name:    "Acme",
		URL:     "https://acme.example",
		Address: "Acme Inc., 1 Main Street, Springfield",
	},
}

func stockRegistry(t testing.TB) *templates.Registry {
	t.Helper()
	r, err := templates.StockRegistry()
	if err != nil {
		t.Fatalf("StockRegistry: %v", err)
	}
	return r
}

func mustRegistry(t *testing.T, defs ...templates.Template) *templates.Registry {
	t.Helper()
	r, err := templates.NewRegistry(defs...)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return r
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (regenerate with go test ./services/mailer/templates -update): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (inspect, then regenerate with -update):\n%s", path, firstDiff(string(want), got))
	}
}

// firstDiff shows the first differing line.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + itoa(i+1) + ":\n want: " + w + "\n  got: " + g
		}
	}
	return "(no line differs)"
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestStockGolden renders every stock template with its example props:
// testdata/<key>.html is the HTML, testdata/<key>.txt the subject line, a
// blank line and the text part.
func TestStockGolden(t *testing.T) {
	r := stockRegistry(t)
	for _, def := range r.All() {
		t.Run(def.Key, func(t *testing.T) {
			out, err := r.Render(def.Key, def.ExampleProps, goldenOptions)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if out.Category != def.Category {
				t.Errorf("Category = %q, want %q", out.Category, def.Category)
			}
			golden(t, def.Key+".html", out.HTML)
			golden(t, def.Key+".txt", "Subject: "+out.Subject+"\n\n"+out.Text+"\n")
		})
	}
}

func TestStockDefinitions(t *testing.T) {
	want := map[string]string{
		"welcome": "journey", "nudge": "journey", "trial-ending": "transactional",
		"payment-failed": "transactional", "win-back": "marketing", "nps": "journey",
	}
	var keys []string
	for _, d := range templates.Stock() {
		keys = append(keys, d.Key)
		if cat, ok := want[d.Key]; !ok || cat != d.Category {
			t.Errorf("%s: category %q, want %q", d.Key, d.Category, cat)
		}
		if d.Subject == "" || d.Preheader == "" || d.HTML == "" || len(d.ExampleProps) == 0 {
			t.Errorf("%s: subject, preheader, HTML and example props are all expected", d.Key)
		}
		if !strings.Contains(d.HTML, `{{template "button"`) {
			t.Errorf("%s: no call-to-action button", d.Key)
		}
	}
	if got := strings.Join(keys, ","); got != "welcome,nudge,trial-ending,payment-failed,win-back,nps" {
		t.Errorf("stock keys = %s", got)
	}
}

// TestStockWithoutProps renders every stock template as a journey might:
// no props, no options. Nothing may fail or leak a placeholder.
func TestStockWithoutProps(t *testing.T) {
	r := stockRegistry(t)
	for _, def := range r.All() {
		t.Run(def.Key, func(t *testing.T) {
			for name, props := range map[string]map[string]any{
				"nil":   nil,
				"nulls": {"name": nil, "productName": nil, "url": nil, "steps": nil, "highlights": nil, "daysLeft": nil},
				"empty": {"name": "", "steps": []any{}, "highlights": []any{}},
			} {
				out, err := r.Render(def.Key, props, templates.RenderOptions{})
				if err != nil {
					t.Fatalf("%s: Render: %v", name, err)
				}
				if out.Subject == "" || strings.HasSuffix(out.Subject, ", ") || strings.Contains(out.Subject, "  ") {
					t.Errorf("%s: subject %q", name, out.Subject)
				}
				for part, s := range map[string]string{"subject": out.Subject, "html": out.HTML, "text": out.Text} {
					for _, bad := range []string{"<no value>", "<nil>", "ZgotmplZ", "%!"} {
						if strings.Contains(s, bad) {
							t.Errorf("%s: %s contains %q", name, part, bad)
						}
					}
				}
				if strings.Contains(out.HTML, "Unsubscribe") || strings.Contains(out.Text, "--\n") {
					t.Errorf("%s: a footer without any link or brand", name)
				}
				if strings.Contains(out.HTML, `href=""`) {
					t.Errorf("%s: an empty link", name)
				}
			}
		})
	}
}

func TestRenderMissingProps(t *testing.T) {
	r := mustRegistry(t, templates.Template{
		Key:       "t",
		Subject:   `[{{.a}}][{{.user.name}}][{{or .name "there"}}][{{if .plan}}plan{{end}}][{{range .items}}x{{end}}]`,
		Preheader: `pre[{{.a}}]`,
		HTML:      `<p>[{{.a}}][{{.user.name}}][{{or .name "there"}}]</p><a href="{{.url}}">[{{.label}}]</a><a href="https://x.test/?q={{.q}}">q</a>`,
		Text:      "[{{.a}}][{{.user.name}}]{{with .b}}[{{.}}]{{end}}[{{template \"inner\" .}}]{{define \"inner\"}}{{.c}}{{end}}",
	})
	props := map[string]any{"user": nil, "n": nil}
	out, err := r.Render("t", props, templates.RenderOptions{})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if want := "[][][there][][]"; out.Subject != want {
		t.Errorf("Subject = %q, want %q", out.Subject, want)
	}
	for _, want := range []string{`<p>[][][there]</p>`, `<a href="">[]</a>`, `<a href="https://x.test/?q=">q</a>`, `>pre[]`} {
		if !strings.Contains(out.HTML, want) {
			t.Errorf("HTML lacks %s", want)
		}
	}
	if out.Text != "[][][]" {
		t.Errorf("Text = %q", out.Text)
	}
	if len(props) != 2 {
		t.Errorf("the caller's props were modified: %v", props)
	}
}

func TestRenderUnknownKey(t *testing.T) {
	r := stockRegistry(t)
	_, err := r.Render("nope", nil, templates.RenderOptions{})
	if err == nil {
		t.Fatal("no error for an unknown key")
	}
	if got := errcode.Code(err); got != errcode.CodeNotFound {
		t.Errorf("code = %q, want not_found", got)
	}
	if got := errcode.Status(errcode.Code(err)); got != http.StatusNotFound {
		t.Errorf("status = %d", got)
	}
	if got := errcode.Message(err); got != "Unknown template: nope" {
		t.Errorf("message = %q", got)
	}
	if !errors.Is(err, templates.ErrUnknownTemplate) {
		t.Error("errors.Is(err, ErrUnknownTemplate) is false")
	}
	if _, ok := r.Get("nope"); ok {
		t.Error("Get found an unknown key")
	}
}

func TestRenderExecutionError(t *testing.T) {
	r := mustRegistry(t, templates.Template{Key: "counted", Subject: "s", HTML: `<p>{{len .items}} items</p>`})
	_, err := r.Render("counted", nil, templates.RenderOptions{})
	if err == nil {
		t.Fatal("len of a missing prop rendered")
	}
	if !strings.Contains(err.Error(), "render template counted: html:") {
		t.Errorf("error %q does not name the template and part", err)
	}
	if errcode.Code(err) != errcode.CodeInternal {
		t.Errorf("code = %q, want internal", errcode.Code(err))
	}
	if _, err := r.Render("counted", map[string]any{"items": []any{1, 2}}, templates.RenderOptions{}); err != nil {
		t.Errorf("with the prop: %v", err)
	}
}

func TestRenderEngineProps(t *testing.T) {
	r := mustRegistry(t, templates.Template{
		Key:     "p",
		Subject: "s",
		HTML:    `<p>[{{.unsubscribeUrl}}][{{.preferencesUrl}}][{{.productName}}][{{.productUrl}}]</p>`,
	})
	opts := templates.RenderOptions{
		UnsubscribeURL: "https://api.test/v1/email/unsubscribe?token=opt",
		PreferencesURL: "https://api.test/v1/email/preferences?token=opt",
		Brand:          templates.Brand{Name: "Acme", URL: "https://acme.example"},
	}
	tests := []struct {
		name      string
		props     map[string]any
		wantBody  string
		wantUnsub string
	}{
		{"filled from options", nil,
			`[https://api.test/v1/email/unsubscribe?token=opt][https://api.test/v1/email/preferences?token=opt][Acme][https://acme.example]`,
			"https://api.test/v1/email/unsubscribe?token=opt"},
		{"given values win", map[string]any{"unsubscribeUrl": "https://j.test/u", "productName": "Other"},
			`[https://j.test/u][https://api.test/v1/email/preferences?token=opt][Other][https://acme.example]`,
			"https://j.test/u"},
		{"empty and null count as missing", map[string]any{"unsubscribeUrl": "", "productName": nil},
			`[https://api.test/v1/email/unsubscribe?token=opt][https://api.test/v1/email/preferences?token=opt][Acme][https://acme.example]`,
			"https://api.test/v1/email/unsubscribe?token=opt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(tt.props)
			out, err := r.Render("p", tt.props, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.HTML, "<p>"+tt.wantBody+"</p>") {
				t.Errorf("body: want %s in\n%s", tt.wantBody, out.HTML)
			}
			if !strings.Contains(out.HTML, `data-hogsend-notrack href="`+tt.wantUnsub+`"`) {
				t.Errorf("footer unsubscribe link is not %s", tt.wantUnsub)
			}
			if !strings.Contains(out.Text, "\nUnsubscribe: "+tt.wantUnsub) {
				t.Errorf("text footer lacks %s:\n%s", tt.wantUnsub, out.Text)
			}
			if !maps.Equal(before, tt.props) {
				t.Errorf("props modified: %v", tt.props)
			}
		})
	}
}

func TestRenderEscaping(t *testing.T) {
	r := stockRegistry(t)
	props := map[string]any{
		"name": `<script>alert(1)</script>`,
		"url":  "javascript:alert(1)",
	}
	out, err := r.Render("welcome", props, templates.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.HTML, "<script>") || !strings.Contains(out.HTML, "&lt;script&gt;") {
		t.Error("the name prop is not escaped in the HTML")
	}
	if strings.Contains(out.HTML, "javascript:") || !strings.Contains(out.HTML, `href="#ZgotmplZ"`) {
		t.Error("a javascript: URL reached an href")
	}
	if !strings.Contains(out.Text, "Welcome, <script>alert(1)</script>!") {
		t.Errorf("the text part should show the name as typed:\n%s", out.Text)
	}
	if !strings.HasSuffix(out.Subject, ", <script>alert(1)</script>") {
		t.Errorf("subject %q", out.Subject)
	}
}

func TestRenderSubjectOneLine(t *testing.T) {
	r := mustRegistry(t, templates.Template{Key: "s", Subject: "  Hello\n{{.name}}  \t!  ", HTML: "<p>x</p>"})
	out, err := r.Render("s", map[string]any{"name": "Ada\r\nBcc: evil@x.test"}, templates.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hello Ada Bcc: evil@x.test !"; out.Subject != want {
		t.Errorf("Subject = %q, want %q", out.Subject, want)
	}
	if !strings.Contains(out.HTML, "<title>Hello Ada Bcc: evil@x.test !</title>") {
		t.Error("the title is not the subject")
	}
}

func TestRenderExplicitText(t *testing.T) {
	r := mustRegistry(t, templates.Template{
		Key: "t", Subject: "s", HTML: "<p>html</p>",
		Text: "\n\nHi {{.name}},  \n\n{{if .x}}x{{end}}\n\n\nBye {{withQuery .url \"a\" 1}}\n\n",
	})
	out, err := r.Render("t", map[string]any{"name": "Ada", "url": "https://x.test/p?b=2#top"}, templates.RenderOptions{UnsubscribeURL: "https://u.test/"})
	if err != nil {
		t.Fatal(err)
	}
	want := "Hi Ada,\n\nBye https://x.test/p?b=2&a=1#top\n\n--\nUnsubscribe: https://u.test/"
	if out.Text != want {
		t.Errorf("Text = %q, want %q", out.Text, want)
	}
}

func TestRenderConcurrent(t *testing.T) {
	r := stockRegistry(t)
	defs := r.All()
	want := make(map[string]string, len(defs))
	for _, d := range defs {
		out, err := r.Render(d.Key, d.ExampleProps, goldenOptions)
		if err != nil {
			t.Fatal(err)
		}
		want[d.Key] = out.HTML
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				d := defs[(i+j)%len(defs)]
				out, err := r.Render(d.Key, d.ExampleProps, goldenOptions)
				if err != nil || out.HTML != want[d.Key] {
					t.Errorf("concurrent render of %s differs (err %v)", d.Key, err)
					return
				}
			}
		}()
	}
	_ = r.Define(templates.Template{Key: "late", Subject: "s", HTML: "<p>x</p>"}) // Define while rendering
	wg.Wait()
}

// TestStockJourneyProps renders stock templates with props as journeys send
// them (JSON numbers as float64, the subject as body) and checks the copy.
func TestStockJourneyProps(t *testing.T) {
	r := stockRegistry(t)
	tests := []struct {
		key         string
		props       map[string]any
		wantSubject string
		wantText    []string
	}{
		{"trial-ending", map[string]any{"daysLeft": 1.0, "url": "https://app.example.com/billing/upgrade"},
			"Your trial ends in 1 day",
			[]string{"Your trial ends in 1 day\n", "Choose a plan (https://app.example.com/billing/upgrade)"}},
		{"trial-ending", map[string]any{"daysLeft": "3", "trialEndDate": "May 2"},
			"Your trial ends in 3 days", []string{"ends in 3 days."}},
		{"trial-ending", map[string]any{"trialEndDate": "May 2"},
			"Your trial ends on May 2", []string{"ends on May 2."}},
		{"payment-failed", map[string]any{"amount": 49.0, "currency": "usd", "final": true, "attempt": 3.0, "url": "https://app.example.com/billing"},
			"Final notice: your payment of 49 usd didn't go through",
			[]string{"Your subscription is at risk", "We tried to charge 49 usd, but", "This is our last reminder", "Update payment method (https://app.example.com/billing)"}},
		{"nudge", map[string]any{"body": "Next step: Connect your data", "step": 2.0, "steps": 4.0, "title": "Connect your data", "url": "https://app.example.com/connect"},
			"Ready for your next step?",
			[]string{"Next step: Connect your data\n\nHi there,\n\nStep 2 of 4: Connect your data\n", "Continue (https://app.example.com/connect)"}},
		{"nudge", map[string]any{"name": "ada", "message": "You left something in your cart.", "cta": "Back to my cart", "url": "https://shop.example/cart"},
			"Ready for your next step, ada?",
			[]string{"Hi ada,\n\nYou left something in your cart.\n", "Back to my cart (https://shop.example/cart)"}},
		{"win-back", map[string]any{"plan": "Pro", "offer": "50% off for 2 months", "url": "https://app.example.com/billing?coupon=HALF&x=1", "daysInactive": 1.0},
			"It's been a while: here's what's new",
			[]string{"It's been 1 day since", "on the Pro plan is still waiting", "To welcome you back: 50% off for 2 months", "Take a look (https://app.example.com/billing?coupon=HALF&x=1)"}},
		{"nps", map[string]any{"url": "https://app.example.com/nps", "projects": 10.0},
			"Quick question: how likely are you to recommend us?",
			[]string{"0: https://app.example.com/nps?score=0\n", "10: https://app.example.com/nps?score=10\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			out, err := r.Render(tt.key, tt.props, templates.RenderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if out.Subject != tt.wantSubject {
				t.Errorf("Subject = %q, want %q", out.Subject, tt.wantSubject)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(out.Text, w) {
					t.Errorf("text lacks %q:\n%s", w, out.Text)
				}
			}
		})
	}
}
