package templates

import (
	"errors"
	htmltemplate "html/template"
	"io"
	"maps"
	"strings"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// Template is the definition of one email template (spec 20 §1.1). Its
// strings are Go templates executed with the send's props (a
// map[string]any, usually decoded JSON) as dot.
type Template struct {
	// Key identifies the template in send commands, the API and reports:
	// letters, digits, '-' and '_', at most 100 characters.
	Key string
	// Subject is the default subject, a text/template. Senders may pass
	// their own. The rendered subject is folded onto one line.
	Subject string
	// Category is the preference category sends of this template fall
	// under when the sender gives none (spec 20 §1.2.3): "" for none, else
	// a list id or a built-in such as "journey", "transactional" or
	// "marketing" (letters, digits, '-' and '_', like a list id, because
	// it ends up in unsubscribe tokens).
	Category string
	// Preheader is the optional preview line clients show after the
	// subject, a text/template. It is hidden in the body.
	Preheader string
	// HTML is the body, an html/template rendered inside the shared
	// layout. It may call the partials "button" and "signoff" and the
	// functions described in the package documentation.
	HTML string
	// Text is the optional plain-text body, a text/template. When it is
	// empty the text part is derived from the rendered HTML body with
	// HTMLToText. Either way the footer links are appended.
	Text string
	// ExampleProps are the props a preview uses. When set, Define renders
	// the template with them once and rejects it if that fails.
	ExampleProps map[string]any
}

// Limits on definitions.
const (
	maxKeyLen = 100
)

// compiled is a validated definition with its parsed templates. The
// templates are never modified after Define, so renders share them.
type compiled struct {
	def       Template
	subject   *texttemplate.Template
	preheader *texttemplate.Template // nil when there is none
	html      *htmltemplate.Template
	text      *texttemplate.Template // nil: derive the text from html
}

// compile validates t and parses its templates, cloning base (the partials)
// for the HTML body. Errors are errcode invalid_request errors naming the
// field, joined.
func compile(t Template, base *htmltemplate.Template) (*compiled, error) {
	prefix := "templates[" + t.Key + "]"
	if !isKey(t.Key) {
		prefix = "templates[" + quote(t.Key) + "]"
	}
	var errs []error
	bad := func(field, msg string) {
		errs = append(errs, errcode.InvalidField(prefix+"."+field, msg))
	}

	switch {
	case t.Key == "":
		bad("key", "is required")
	case len(t.Key) > maxKeyLen:
		bad("key", "must be at most 100 characters")
	case !isKey(t.Key):
		bad("key", "must contain only letters, digits, '-' and '_'")
	}
	switch {
	case len(t.Category) > maxKeyLen:
		bad("category", "must be at most 100 characters")
	case t.Category != "" && !isKey(t.Category):
		bad("category", "must contain only letters, digits, '-' and '_'")
	}
	if strings.TrimSpace(t.Subject) == "" {
		bad("subject", "is required")
	}
	if strings.TrimSpace(t.HTML) == "" {
		bad("html", "is required")
	}

	c := &compiled{def: t}
	c.def.ExampleProps = maps.Clone(t.ExampleProps)
	name := t.Key
	parseText := func(field, src string) *texttemplate.Template {
		if strings.TrimSpace(src) == "" {
			return nil
		}
		tt, err := newText(name + "." + field).Parse(src)
		if err != nil {
			bad(field, "parse: "+err.Error())
			return nil
		}
		guardText(tt)
		return tt
	}
	c.subject = parseText("subject", t.Subject)
	c.preheader = parseText("preheader", t.Preheader)
	c.text = parseText("text", t.Text)

	if strings.TrimSpace(t.HTML) != "" {
		set, err := base.Clone()
		if err == nil {
			c.html, err = set.New(name + ".html").Parse(t.HTML)
		}
		if err == nil {
			// html/template escapes lazily, on the first Execute, and
			// reports context errors (an action inside an unquoted
			// attribute, an unclosed tag) only then: force it now.
			var te *htmltemplate.Error
			if xerr := c.html.Execute(io.Discard, nil); errors.As(xerr, &te) {
				err = xerr
			}
		}
		if err != nil {
			bad("html", "parse: "+err.Error())
			c.html = nil
		}
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// newText returns an empty text template with the text functions.
func newText(name string) *texttemplate.Template {
	return texttemplate.New(name).Funcs(textFuncs)
}

// textGuard is the function guardText appends to every printing action of
// a text template. It prints nil (a missing or null prop) as "" where
// text/template would print "<no value>", the same treatment html/template
// gives HTML bodies.
const textGuard = "_hogsend_text"

// guardText rewrites every printing action of t and its associated
// templates ({{.x}} becomes {{.x | _hogsend_text}}). Actions that declare
// or assign variables print nothing and are left alone.
func guardText(t *texttemplate.Template) {
	for _, tt := range t.Templates() {
		if tt.Tree != nil && tt.Tree.Root != nil {
			guardNode(tt.Tree, tt.Tree.Root)
		}
	}
}

func guardNode(tree *parse.Tree, n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			guardNode(tree, c)
		}
	case *parse.ActionNode:
		if n.Pipe == nil || len(n.Pipe.Decl) > 0 {
			return
		}
		id := parse.NewIdentifier(textGuard).SetTree(tree).SetPos(n.Pos)
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{
			NodeType: parse.NodeCommand, Pos: n.Pos, Args: []parse.Node{id},
		})
	case *parse.IfNode:
		guardNode(tree, n.List)
		guardNode(tree, n.ElseList)
	case *parse.RangeNode:
		guardNode(tree, n.List)
		guardNode(tree, n.ElseList)
	case *parse.WithNode:
		guardNode(tree, n.List)
		guardNode(tree, n.ElseList)
	}
}

// isKey reports whether s is a non-empty run of letters, digits, '-' and
// '_' (the list id alphabet of spec 20 §3.2).
func isKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !('0' <= c && c <= '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// quote quotes a key for an error message, shortened so a pasted document
// does not flood the log.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
