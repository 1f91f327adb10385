package templates

import (
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strconv"
	"strings"
	texttemplate "text/template"
)

// htmlFuncs are the functions an HTML body can call.
var htmlFuncs = htmltemplate.FuncMap{
	"button":    newButton,
	"plural":    plural,
	"withQuery": withQuery,
}

// textFuncs are the functions a subject, preheader or text body can call.
var textFuncs = texttemplate.FuncMap{
	"plural":    plural,
	"withQuery": withQuery,
	textGuard:   printable,
}

// layoutFuncs print Outlook's conditional comments, which html/template
// would strip from the layout source: its document settings and font
// fallback in the head, and the fixed-width "ghost table" that keeps the
// 600px column from stretching in Word-based Outlook (which ignores
// max-width).
var layoutFuncs = htmltemplate.FuncMap{
	"msoHead": func() htmltemplate.HTML {
		return `<!--[if mso]><noscript><xml><o:OfficeDocumentSettings><o:AllowPNG/><o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml></noscript><style>table,td,p,h1,h2,h3,li,a{font-family:Arial,Helvetica,sans-serif !important;}</style><![endif]-->`
	},
	"msoOpen": func() htmltemplate.HTML {
		return `<!--[if mso]><table role="presentation" width="600" align="center" border="0" cellpadding="0" cellspacing="0"><tr><td><![endif]-->`
	},
	"msoClose": func() htmltemplate.HTML {
		return `<!--[if mso]></td></tr></table><![endif]-->`
	},
}

// button is the argument of the "button" partial.
type button struct {
	Label any
	URL   any
}

// newButton is the template function "button": button "Label" .url.
func newButton(label, url any) button { return button{Label: label, URL: url} }

// withQuery is the template function "withQuery": withQuery .url "key"
// value appends key=value (query-escaped) to the URL's query, before any
// fragment, keeping the rest of the URL as given. An empty or missing URL
// stays "". In an HTML body html/template still filters the result as a
// URL, so a javascript: URL never reaches an href.
func withQuery(u any, key string, value any) string {
	s := printable(u)
	if s == "" {
		return ""
	}
	frag := ""
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s, frag = s[:i], s[i:]
	}
	sep := "?"
	switch {
	case strings.HasSuffix(s, "?") || strings.HasSuffix(s, "&"):
		sep = ""
	case strings.Contains(s, "?"):
		sep = "&"
	}
	return s + sep + url.QueryEscape(key) + "=" + url.QueryEscape(printable(value)) + frag
}

// plural is the template function "plural": plural .n "day" "days" is
// "day" when n is 1 and "days" otherwise. n may be any number (JSON
// numbers decode as float64) or a numeric string; anything else, missing
// included, is not 1.
func plural(n any, one, many string) string {
	var f float64
	switch v := n.(type) {
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	case int32:
		f = float64(v)
	case uint:
		f = float64(v)
	case uint64:
		f = float64(v)
	case float64:
		f = v
	case float32:
		f = float64(v)
	case json.Number:
		f, _ = v.Float64()
	case string:
		f, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
	}
	if f == 1 {
		return one
	}
	return many
}

// printable formats a prop for text output: nil (missing or null) is "".
func printable(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}
