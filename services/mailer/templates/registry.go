package templates

import (
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"maps"
	"sync"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

//go:embed layout.html partials.html stock/*.html
var files embed.FS

// ErrUnknownTemplate is the cause of Render's error for a key that is not
// registered. The error itself is an errcode not_found error with the
// message "Unknown template: <key>"; a route that must answer 400 instead
// (POST /v1/emails, spec 20 §1.10) tests errors.Is(err, ErrUnknownTemplate).
var ErrUnknownTemplate = errors.New("template is not registered")

// Registry holds the templates of one process in registration order. Build
// it with NewRegistry; it is safe for concurrent use, Define included.
type Registry struct {
	layout *htmltemplate.Template // executed by every render
	base   *htmltemplate.Template // the partials; cloned per body, never executed

	mu    sync.RWMutex
	list  []*compiled
	byKey map[string]*compiled
}

// NewRegistry returns a registry holding defs, in order. An empty registry
// is valid (spec 20 §1.1.1). The error joins every definition's problems.
func NewRegistry(defs ...Template) (*Registry, error) {
	layoutSrc, err := files.ReadFile("layout.html")
	if err != nil {
		return nil, fmt.Errorf("read layout: %w", err)
	}
	partialsSrc, err := files.ReadFile("partials.html")
	if err != nil {
		return nil, fmt.Errorf("read partials: %w", err)
	}
	layout, err := htmltemplate.New("layout.html").Funcs(layoutFuncs).Parse(string(layoutSrc))
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	if err := layout.Execute(io.Discard, layoutData{}); err != nil {
		return nil, fmt.Errorf("escape layout: %w", err)
	}
	base, err := htmltemplate.New("partials.html").Funcs(htmlFuncs).Parse(string(partialsSrc))
	if err != nil {
		return nil, fmt.Errorf("parse partials: %w", err)
	}

	r := &Registry{layout: layout, base: base, byKey: make(map[string]*compiled, len(defs))}
	var errs []error
	for _, d := range defs {
		if err := r.Define(d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// Define validates t, parses its templates once and registers it. Errors
// are errcode invalid_request errors naming the field, like
// "templates[welcome].html: parse: template: welcome.html:3: unexpected EOF";
// a template whose key is taken is rejected. When t has ExampleProps it is
// rendered with them, and a failure is reported against exampleProps.
func (r *Registry) Define(t Template) error {
	c, err := compile(t, r.base)
	if err != nil {
		return err
	}
	if t.ExampleProps != nil {
		if _, err := r.render(c, t.ExampleProps, RenderOptions{}); err != nil {
			return errcode.InvalidField("templates["+t.Key+"].exampleProps",
				"the template does not render with its example props: "+err.Error())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byKey[t.Key]; dup {
		return errcode.InvalidField("templates["+t.Key+"].key", "duplicate template key")
	}
	r.list = append(r.list, c)
	r.byKey[t.Key] = c
	return nil
}

// Get returns the definition registered under key. ExampleProps is a
// shallow copy.
func (r *Registry) Get(key string) (Template, bool) {
	r.mu.RLock()
	c := r.byKey[key]
	r.mu.RUnlock()
	if c == nil {
		return Template{}, false
	}
	return c.definition(), true
}

// All returns the definitions in registration order.
func (r *Registry) All() []Template {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Template, len(r.list))
	for i, c := range r.list {
		out[i] = c.definition()
	}
	return out
}

// Render renders the template registered under key with props. An unknown
// key is a not_found error wrapping ErrUnknownTemplate; a failing execution
// (a template calling len on a missing prop, say) is an internal error
// naming the template and the part. Missing props do not fail: see the
// package documentation.
func (r *Registry) Render(key string, props map[string]any, opts RenderOptions) (Rendered, error) {
	r.mu.RLock()
	c := r.byKey[key]
	r.mu.RUnlock()
	if c == nil {
		return Rendered{}, errcode.Wrap(errcode.CodeNotFound, "Unknown template: "+key, ErrUnknownTemplate)
	}
	out, err := r.render(c, props, opts)
	if err != nil {
		return Rendered{}, fmt.Errorf("render template %s: %w", key, err)
	}
	return out, nil
}

func (c *compiled) definition() Template {
	d := c.def
	d.ExampleProps = maps.Clone(d.ExampleProps)
	return d
}
