package templates

import (
	"fmt"
	htmltemplate "html/template"
	"strings"
)

// Props the engine fills in when the caller's props lack them (absent, null
// or ""), so bodies can print them; a given value is never overwritten
// (spec 20 §1.2.4.3).
const (
	PropUnsubscribeURL = "unsubscribeUrl" // RenderOptions.UnsubscribeURL
	PropPreferencesURL = "preferencesUrl" // RenderOptions.PreferencesURL
	PropProductName    = "productName"    // RenderOptions.Brand.Name
	PropProductURL     = "productUrl"     // RenderOptions.Brand.URL
)

// RenderOptions are the per-send inputs of Render that are not props.
type RenderOptions struct {
	// UnsubscribeURL is the one-click unsubscribe link (spec 20 §3.5) for
	// the layout's footer and the text part, also offered to the body as
	// props.unsubscribeUrl. A non-empty props.unsubscribeUrl wins, so the
	// link a journey built (spec 20 §1.8) is the one shown. "" (a system
	// mail sent with skipPreferenceCheck) shows none.
	UnsubscribeURL string
	// PreferencesURL is the preference-center link, handled the same way
	// through props.preferencesUrl.
	PreferencesURL string
	// Brand is the sender's identity for the layout's header and footer.
	Brand Brand
}

// Brand is who the email is from, as the layout shows it. Every field is
// optional.
type Brand struct {
	// Name heads the email and the footer, and is props.productName when
	// the props lack one.
	Name string
	// URL is where the header's name links to, and props.productUrl when
	// the props lack one (stock buttons fall back to it).
	URL string
	// Address is the postal address commercial email must carry (CAN-SPAM),
	// shown in the footer.
	Address string
}

// Rendered is a rendered email.
type Rendered struct {
	// Subject is the rendered default subject, on one line.
	Subject string
	// HTML is the complete document: the body inside the layout, ready
	// for Track.
	HTML string
	// Text is the plain-text part, footer included.
	Text string
	// Category is the template's category ("" for none).
	Category string
}

// layoutData is what layout.html executes with.
type layoutData struct {
	Subject        string
	Preheader      string
	Body           htmltemplate.HTML
	UnsubscribeURL string
	PreferencesURL string
	Brand          Brand
}

// render executes c's templates with props and opts.
func (r *Registry) render(c *compiled, props map[string]any, opts RenderOptions) (Rendered, error) {
	data := mergeProps(props, opts)
	var sb strings.Builder

	if err := c.subject.Execute(&sb, data); err != nil {
		return Rendered{}, fmt.Errorf("subject: %w", err)
	}
	subject := oneLine(sb.String())

	var preheader string
	if c.preheader != nil {
		sb = strings.Builder{}
		if err := c.preheader.Execute(&sb, data); err != nil {
			return Rendered{}, fmt.Errorf("preheader: %w", err)
		}
		preheader = oneLine(sb.String())
	}

	var bb strings.Builder
	bb.Grow(2 * len(c.def.HTML))
	if err := c.html.Execute(&bb, data); err != nil {
		return Rendered{}, fmt.Errorf("html: %w", err)
	}
	body := strings.TrimSpace(bb.String())

	ld := layoutData{
		Subject:        subject,
		Preheader:      preheader,
		Body:           htmltemplate.HTML(body),
		UnsubscribeURL: printable(data[PropUnsubscribeURL]),
		PreferencesURL: printable(data[PropPreferencesURL]),
		Brand:          opts.Brand,
	}
	var hb strings.Builder
	hb.Grow(len(body) + layoutSize)
	if err := r.layout.Execute(&hb, ld); err != nil {
		return Rendered{}, fmt.Errorf("layout: %w", err)
	}

	var text string
	if c.text != nil {
		sb = strings.Builder{}
		if err := c.text.Execute(&sb, data); err != nil {
			return Rendered{}, fmt.Errorf("text: %w", err)
		}
		text = trimLines(sb.String())
	} else {
		text = HTMLToText(body)
	}

	return Rendered{
		Subject:  subject,
		HTML:     hb.String(),
		Text:     text + textFooter(ld),
		Category: c.def.Category,
	}, nil
}

// layoutSize is about what the layout adds around a body.
const layoutSize = 5 << 10

// mergeProps returns a copy of props without null values (so {{.a.b}}
// through a null a prints nothing instead of failing) and with the
// engine's props filled in.
func mergeProps(props map[string]any, opts RenderOptions) map[string]any {
	m := make(map[string]any, len(props)+4)
	for k, v := range props {
		if v != nil {
			m[k] = v
		}
	}
	fill := func(k, v string) {
		if v == "" {
			return
		}
		if cur, ok := m[k]; ok && cur != "" {
			return
		}
		m[k] = v
	}
	fill(PropUnsubscribeURL, opts.UnsubscribeURL)
	fill(PropPreferencesURL, opts.PreferencesURL)
	fill(PropProductName, opts.Brand.Name)
	fill(PropProductURL, opts.Brand.URL)
	return m
}

// textFooter is the text part's counterpart of the layout's footer: the
// sender and the unsubscribe links, after a "--" line. It is "" when there
// is nothing to show.
func textFooter(d layoutData) string {
	b := d.Brand
	if b.Name == "" && b.Address == "" && d.UnsubscribeURL == "" && d.PreferencesURL == "" {
		return ""
	}
	var sb strings.Builder
	sb.WriteString("\n\n--\n")
	switch {
	case b.Name != "" && b.Address != "":
		sb.WriteString(b.Name + " · " + b.Address + "\n")
	case b.Name != "" || b.Address != "":
		sb.WriteString(b.Name + b.Address + "\n")
	}
	if d.PreferencesURL != "" {
		sb.WriteString("Email preferences: " + d.PreferencesURL + "\n")
	}
	if d.UnsubscribeURL != "" {
		sb.WriteString("Unsubscribe: " + d.UnsubscribeURL + "\n")
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

// oneLine folds whitespace runs, line breaks included, into single spaces
// and trims the ends: a subject is a header, and a newline in it would be a
// header injection.
func oneLine(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == 0x7f || c == ' ' && (i == 0 || i == len(s)-1 || s[i+1] == ' ') || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)), " ")
}

// trimLines tidies an explicit text body: no trailing whitespace on any
// line, no blank lines at the ends, and at most one blank line in a row (so
// {{if}} blocks that print nothing leave no holes).
func trimLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	out := lines[:0]
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" && len(out) > 0 && out[len(out)-1] == "" {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
