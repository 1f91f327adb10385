package templates

import (
	"html"
	"strings"
)

// NoTrackAttr is the attribute that keeps Track away from a link. The layout
// puts it on the footer's unsubscribe and preferences links; a template can
// put it on any <a> whose destination must stay visible and first-party
// (a link to a token-bearing page, say). It is a boolean attribute:
// <a data-hogsend-notrack href="…">.
const NoTrackAttr = "data-hogsend-notrack"

// Link is one distinct URL that Track found.
type Link struct {
	// Index is the link's position in Track's result, the index linkURL
	// was called with.
	Index int
	// URL is the original destination, entity-decoded ("&amp;" → "&",
	// spec §2.1.5 [Go]) and trimmed of surrounding whitespace: the URL a
	// click redirects to.
	URL string
}

// unsubscribePaths are the engine's own token pages. A link to them is
// never tracked even without NoTrackAttr (spec §2.1.2), so a user template
// that prints {{.unsubscribeUrl}} in its own markup stays safe: a link
// scanner following a tracked redirect must not land on an unsubscribe.
var unsubscribePaths = [...]string{"/v1/email/unsubscribe", "/v1/email/preferences"}

// Track prepares rendered HTML for a tracked send (spec §2.1) and returns it
// with the distinct links it rewrote, in order of first appearance.
//
// It rewrites the href of every <a> start tag (case-insensitive names, the
// href quoted with ", ' or not at all) whose value, entity-decoded and
// trimmed, starts with http:// or https://. Untouched are: relative links
// and anchors, mailto:, tel: and other schemes; links carrying NoTrackAttr;
// links to /v1/email/unsubscribe or /v1/email/preferences; hrefs on other
// elements (the reference's substring match also rewrote data-href and VML
// hrefs; buttons here are plain <a> elements, so nothing is lost). Comments
// are not special: an <a> inside an Outlook conditional comment is tracked
// like any other.
//
// linkURL is called once per distinct URL with its index and the decoded
// URL, and its result replaces every occurrence, written as a double-quoted,
// entity-encoded href="…" (the attribute's other text and the rest of the
// tag are kept byte for byte). When linkURL returns "" the link is left as
// it is and not listed; a nil linkURL lists the links without rewriting.
//
// When pixelURL is not empty, a 1×1 open pixel
// <img src="…" width="1" height="1" alt="" style="display:none" /> goes
// before the last </body> (any case), or at the end when there is none.
//
// Track is pure and does no I/O, so the caller decides how link ids are
// made (the mailer stores one tracked_links row per Link).
func Track(src string, linkURL func(index int, original string) string, pixelURL string) (string, []Link) {
	var (
		b     strings.Builder
		links []Link
		seen  []seenLink // distinct URLs so far, with their replacement
		last  int        // src[:last] is already in b
	)
	var pixel string
	bodyEnd := -1
	if pixelURL != "" {
		pixel = `<img src="` + html.EscapeString(pixelURL) + `" width="1" height="1" alt="" style="display:none" />`
		bodyEnd = lastIndexFold(src, "</body")
	}
	// emit copies src[last:end] into b, dropping the pixel in on the way.
	emit := func(end int) {
		if pixel != "" && bodyEnd >= last && bodyEnd <= end {
			b.WriteString(src[last:bodyEnd])
			b.WriteString(pixel)
			last, pixel = bodyEnd, ""
		}
		b.WriteString(src[last:end])
		last = end
	}

	pos := 0
scan:
	for {
		k := strings.IndexByte(src[pos:], '<')
		if k < 0 || pos+k+2 >= len(src) {
			break
		}
		lt := pos + k
		pos = lt + 1
		if c := src[lt+1]; c != 'a' && c != 'A' {
			continue
		}
		if d := src[lt+2]; !isSpace(d) && d != '>' && d != '/' {
			continue // <abbr>, <address>, …
		}

		var href attr
		hasHref, notrack := false, false
		p := lt + 2
	attrs:
		for {
			a, next, st := nextAttr(src, p)
			switch st {
			case unterminated:
				break scan // no complete tag follows
			case tagClosed:
				p = next
				break attrs
			}
			switch name := a.name(src); {
			case !hasHref && strings.EqualFold(name, "href"):
				href, hasHref = a, true // the first href wins, as in browsers
			case strings.EqualFold(name, NoTrackAttr):
				notrack = true
			}
			p = next
		}
		pos = p
		if !hasHref || notrack {
			continue
		}
		orig := trimHTMLSpace(html.UnescapeString(href.value(src)))
		if !trackable(orig) {
			continue
		}

		repl, known := "", false
		for _, s := range seen {
			if s.orig == orig {
				repl, known = s.repl, true
				break
			}
		}
		if !known {
			idx := len(links)
			if linkURL != nil {
				repl = linkURL(idx, orig)
			}
			if linkURL == nil || repl != "" {
				links = append(links, Link{Index: idx, URL: orig})
			}
			seen = append(seen, seenLink{orig: orig, repl: repl})
		}
		if repl == "" {
			continue
		}
		if b.Cap() == 0 {
			b.Grow(len(src) + len(pixel) + 64*8)
		}
		emit(href.nameStart)
		b.WriteString(`href="`)
		b.WriteString(html.EscapeString(repl))
		b.WriteByte('"')
		last = href.end
	}

	if b.Cap() == 0 { // nothing rewritten: at most the pixel to add
		if pixel == "" {
			return src, links
		}
		if bodyEnd < 0 {
			return src + pixel, links
		}
		return src[:bodyEnd] + pixel + src[bodyEnd:], links
	}
	emit(len(src))
	if pixel != "" { // no </body>, or it sat inside a rewritten attribute
		b.WriteString(pixel)
	}
	return b.String(), links
}

// seenLink is a distinct URL and what Track replaced it with.
type seenLink struct{ orig, repl string }

// trackable reports whether a decoded href is an absolute http(s) URL that
// is not one of the engine's unsubscribe pages.
func trackable(u string) bool {
	if !hasPrefixFold(u, "http://") && !hasPrefixFold(u, "https://") {
		return false
	}
	for _, p := range unsubscribePaths {
		if strings.Contains(u, p) {
			return false
		}
	}
	return true
}
