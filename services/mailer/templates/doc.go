// Package templates is the email template registry and renderer (spec 20
// §1.1, DESIGN §4): templates are defined in Go as html/template bodies with
// a text/template subject, preheader and optional text part, rendered
// inside one shared responsive layout, and prepared for a tracked send by
// the pure function Track (spec 20 §2.1).
//
// # Defining
//
// A Template is validated and parsed once, when it is registered
// (NewRegistry or Registry.Define); syntax and html/template context errors
// fail there, as errcode invalid_request errors naming the template and the
// field ("templates[welcome].html: parse: …"). Stock returns the templates
// the binary ships; the layout, the partials and the stock bodies are
// embedded files (layout.html, partials.html, stock/<key>.html).
//
// # Props
//
// Dot is the send's props. Render works on a copy: null values are dropped
// and the engine fills in unsubscribeUrl, preferencesUrl, productName and
// productUrl from RenderOptions when the props lack them (see the Prop
// constants).
//
// Missing props never fail a render and never print placeholders. A
// missing (or null) prop prints as "" in every part: html/template already
// does so for map data, and text templates are rewritten at registration so
// each printed value passes through a function that prints nil as ""
// (text/template alone would print "<no value>"). The option missingkey is
// left at its default: missingkey=error would turn every optional prop into
// a failed send, and missingkey=zero still prints "<no value>" for
// map[string]any. So {{.name}} is "", {{.user.name}} without a user is "",
// {{if .plan}} is false, {{range .items}} runs zero times, and fallbacks
// read naturally: {{or .name "there"}}, {{with .amount}} of {{.}}{{end}}.
// Only a function given a missing value can fail ({{len .items}}); that is
// a render error, reported by Render, and rejected at Define when the
// template's ExampleProps trigger it.
//
// Props are untrusted: HTML bodies escape them by context (a javascript:
// URL prop becomes "#ZgotmplZ"), and the subject is folded onto one line so
// a prop cannot inject a header.
//
// # Functions and partials
//
// HTML bodies can call
//
//	{{template "button" (button "Label" .url)}}  a bulletproof call-to-action button
//	{{template "signoff" .}}                     senderName, "The <productName> team" or "The team"
//	withQuery .url "key" value                   the URL with key=value appended to its query
//	plural .n "day" "days"                       "day" when n is 1 (any number type or numeric string)
//
// and subjects, preheaders and text parts can call withQuery and plural.
//
// # Layout and text part
//
// The layout is table-based with inline styles, a 600px column (held by a
// ghost table in Outlook for Windows), a hidden preheader, and a footer
// with the brand, postal address, preferences and unsubscribe links when
// they are known. The footer links carry NoTrackAttr, so Track leaves them
// alone. The text part is the Text template when there is one, else
// HTMLToText of the rendered body; the footer's links follow it after a
// "--" line.
package templates
