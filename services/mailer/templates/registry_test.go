package templates_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
)

func TestDefineValidation(t *testing.T) {
	ok := templates.Template{Key: "k", Subject: "Hi {{.name}}", HTML: "<p>Hello</p>"}
	with := func(f func(*templates.Template)) templates.Template {
		d := ok
		f(&d)
		return d
	}
	tests := []struct {
		name      string
		def       templates.Template
		wantField string // the field of the (first) error
		wantMsg   string
	}{
		{"no key", with(func(d *templates.Template) { d.Key = "" }), `templates[""].key`, "is required"},
		{"bad key", with(func(d *templates.Template) { d.Key = "a b" }), `templates["a b"].key`, "letters, digits"},
		{"long key", with(func(d *templates.Template) { d.Key = strings.Repeat("k", 101) }), "templates[" + strings.Repeat("k", 101) + "].key", "at most 100"},
		{"bad category", with(func(d *templates.Template) { d.Category = "a.b" }), "templates[k].category", "letters, digits"},
		{"no subject", with(func(d *templates.Template) { d.Subject = "  " }), "templates[k].subject", "is required"},
		{"no html", with(func(d *templates.Template) { d.HTML = "" }), "templates[k].html", "is required"},
		{"subject syntax", with(func(d *templates.Template) { d.Subject = "Hi {{.name" }), "templates[k].subject", "parse: template: k.subject:1:"},
		{"preheader syntax", with(func(d *templates.Template) { d.Preheader = "{{end}}" }), "templates[k].preheader", "parse: template: k.preheader:1:"},
		{"text syntax", with(func(d *templates.Template) { d.Text = "{{if .x}}" }), "templates[k].text", "parse: template: k.text:1:"},
		{"html syntax", with(func(d *templates.Template) { d.HTML = "<p>{{.name</p>" }), "templates[k].html", "parse: template: k.html:1:"},
		{"html unknown function", with(func(d *templates.Template) { d.HTML = "<p>{{shout .name}}</p>" }), "templates[k].html", `function "shout" not defined`},
		{"html context", with(func(d *templates.Template) { d.HTML = `{{if .x}}<a href="{{end}}">` }), "templates[k].html", "branches end in different contexts"},
		{"example props", with(func(d *templates.Template) {
			d.HTML = "<p>{{len .items}}</p>"
			d.ExampleProps = map[string]any{"name": "Ada"}
		}), "templates[k].exampleProps", "does not render with its example props"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := templates.NewRegistry(tt.def)
			if err == nil {
				t.Fatal("accepted")
			}
			if errcode.Code(err) != errcode.CodeInvalidRequest {
				t.Errorf("code = %q, want invalid_request", errcode.Code(err))
			}
			if got := errcode.Details(err)["field"]; got != tt.wantField {
				t.Errorf("field = %v, want %s (error %q)", got, tt.wantField, err)
			}
			if !strings.Contains(err.Error(), tt.wantField+": ") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q lacks %q and %q", err, tt.wantField, tt.wantMsg)
			}
		})
	}
}

func TestDefineReportsEveryProblem(t *testing.T) {
	_, err := templates.NewRegistry(templates.Template{Key: "k", Category: "a b", Text: "{{"})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, f := range []string{"templates[k].category", "templates[k].subject", "templates[k].html", "templates[k].text"} {
		if !strings.Contains(err.Error(), f+": ") {
			t.Errorf("error does not name %s:\n%v", f, err)
		}
	}
}

func TestDuplicateKey(t *testing.T) {
	def := templates.Template{Key: "welcome", Subject: "s", HTML: "<p>x</p>"}
	r := mustRegistry(t, def)
	err := r.Define(def)
	if err == nil || !strings.Contains(err.Error(), "templates[welcome].key: duplicate template key") {
		t.Fatalf("Define twice: %v", err)
	}
	if errcode.Code(err) != errcode.CodeInvalidRequest {
		t.Errorf("code = %q", errcode.Code(err))
	}
	if len(r.All()) != 1 {
		t.Errorf("All has %d templates", len(r.All()))
	}
	if _, err := templates.NewRegistry(append(templates.Stock(), def)...); err == nil {
		t.Error("NewRegistry accepted a stock key twice")
	}
}

func TestRegistryGetAll(t *testing.T) {
	r := mustRegistry(t)
	if got := r.All(); len(got) != 0 {
		t.Fatalf("an empty registry lists %d templates", len(got))
	}
	for _, k := range []string{"zeta", "alpha", "mid"} {
		if err := r.Define(templates.Template{Key: k, Subject: k, HTML: "<p>" + k + "</p>", Category: "journey",
			ExampleProps: map[string]any{"k": k}}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for _, d := range r.All() {
		keys = append(keys, d.Key)
	}
	if strings.Join(keys, ",") != "zeta,alpha,mid" {
		t.Errorf("All order = %v, want registration order", keys)
	}
	d, ok := r.Get("alpha")
	if !ok || d.Subject != "alpha" || d.Category != "journey" || d.ExampleProps["k"] != "alpha" {
		t.Fatalf("Get = %+v, %v", d, ok)
	}
	d.ExampleProps["k"] = "changed"
	if again, _ := r.Get("alpha"); again.ExampleProps["k"] != "alpha" {
		t.Error("Get exposes the registry's example props")
	}
}

func TestDefineDoesNotKeepCallerMaps(t *testing.T) {
	props := map[string]any{"name": "Ada"}
	r := mustRegistry(t, templates.Template{Key: "k", Subject: "s", HTML: "<p>{{.name}}</p>", ExampleProps: props})
	props["name"] = "changed"
	if d, _ := r.Get("k"); d.ExampleProps["name"] != "Ada" {
		t.Error("the registry aliases the caller's example props")
	}
}

func TestUnknownKeyIsNotAValidationError(t *testing.T) {
	r := mustRegistry(t)
	_, err := r.Render("x", nil, templates.RenderOptions{})
	if !errors.Is(err, templates.ErrUnknownTemplate) || errcode.Code(err) != errcode.CodeNotFound {
		t.Errorf("Render on an empty registry: %v", err)
	}
}
