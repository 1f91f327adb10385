package templates

import (
	"html"
	"strings"
)

// HTMLToText derives a readable plain-text part from rendered HTML. It is
// what Render uses for templates without a Text template, applied to the
// rendered body (not the layout), and is exported for callers holding HTML
// from elsewhere (a raw send).
//
// The rules, chosen for mail clients that show the text part:
//   - tags are dropped and whitespace collapses as a browser would;
//     character references are decoded;
//   - block elements (p, div, headings, tables, lists, blockquote, …) are
//     separated by a blank line; <br>, table rows and list items start a new
//     line;
//   - a list item starts with "- ", indented two spaces per nesting level;
//   - a link reads "text (url)" for http(s) and mailto: destinations, just
//     the URL when the text is empty or the URL itself, and just the text
//     for other destinations (anchors, relative links, tel:); an image-only
//     link uses the image's alt text;
//   - <hr> becomes a "----" line; the content of head, title, style and
//     script is dropped, as are comments.
//
// The result has no trailing whitespace on any line and ends without a
// newline.
func HTMLToText(src string) string {
	var w textWriter
	w.b.Grow(len(src) / 2)
	listDepth := 0
	var link struct {
		open  bool
		url   string // "" when the destination is not shown
		start int    // w.b.Len() when the link opened
		alt   string // alt of an image inside the link
	}

	pos := 0
	for pos < len(src) {
		lt := strings.IndexByte(src[pos:], '<')
		if lt < 0 {
			w.text(src[pos:])
			break
		}
		w.text(src[pos : pos+lt])
		pos += lt

		switch {
		case strings.HasPrefix(src[pos:], "<!--"):
			end := strings.Index(src[pos+4:], "-->")
			if end < 0 {
				return w.String()
			}
			pos += 4 + end + 3
			continue
		case strings.HasPrefix(src[pos:], "<!") || strings.HasPrefix(src[pos:], "<?"):
			end := strings.IndexByte(src[pos:], '>')
			if end < 0 {
				return w.String()
			}
			pos += end + 1
			continue
		}

		closing := pos+1 < len(src) && src[pos+1] == '/'
		nameAt := pos + 1
		if closing {
			nameAt++
		}
		rawName, afterName := tagName(src, nameAt)
		if rawName == "" || !isLetter(rawName[0]) {
			w.text("<") // a stray '<' in text
			pos++
			continue
		}
		name := strings.ToLower(rawName)

		// Attributes we need: href on <a>, alt on <img>.
		var href, alt string
		p := afterName
		for {
			a, next, st := nextAttr(src, p)
			if st == unterminated {
				return w.String()
			}
			if st == tagClosed {
				p = next
				break
			}
			switch an := a.name(src); {
			case name == "a" && strings.EqualFold(an, "href"):
				href = trimHTMLSpace(html.UnescapeString(a.value(src)))
			case name == "img" && strings.EqualFold(an, "alt"):
				alt = html.UnescapeString(a.value(src))
			}
			p = next
		}
		pos = p

		switch name {
		case "head", "title", "style", "script":
			if !closing {
				pos = skipElement(src, pos, name)
			}
		case "br":
			w.newline()
		case "hr":
			w.paragraph()
			w.text("----")
			w.paragraph()
		case "ul", "ol":
			w.paragraph()
			if closing {
				listDepth = max(listDepth-1, 0)
			} else {
				listDepth++
			}
		case "li":
			if closing {
				w.line()
				w.bullet = ""
			} else {
				w.line()
				w.bullet = strings.Repeat("  ", max(listDepth-1, 0)) + "- "
			}
		case "tr":
			w.line()
		case "td", "th":
			w.space = true
		case "p", "div", "table", "tbody", "thead", "tfoot", "blockquote", "center",
			"section", "article", "header", "footer", "aside", "nav", "main",
			"h1", "h2", "h3", "h4", "h5", "h6", "pre", "dl", "dt", "dd", "figure", "address":
			w.paragraph()
		case "img":
			if link.open && alt != "" {
				link.alt = alt
			}
		case "a":
			if !closing {
				link.open, link.url, link.alt = true, "", ""
				link.start = w.b.Len()
				switch {
				case hasPrefixFold(href, "http://") || hasPrefixFold(href, "https://"):
					link.url = href
				case hasPrefixFold(href, "mailto:"):
					link.url = href[len("mailto:"):]
					if q := strings.IndexByte(link.url, '?'); q >= 0 {
						link.url = link.url[:q]
					}
				}
				continue
			}
			if !link.open {
				continue
			}
			link.open = false
			text := strings.TrimSpace(w.b.String()[link.start:])
			switch {
			case text == "" && link.url == "":
				w.words(link.alt)
			case text == "" && link.alt != "":
				w.words(link.alt)
				w.space = true
				w.word("(" + link.url + ")")
			case text == "":
				w.word(link.url)
			case link.url != "" && text != link.url:
				w.space = true
				w.word("(" + link.url + ")")
			}
		}
	}
	return w.String()
}

// skipElement returns the offset just past the end tag </name> that closes
// a raw-text element whose content starts at pos, or len(src) without one.
func skipElement(src string, pos int, name string) int {
	for {
		k := strings.Index(src[pos:], "</")
		if k < 0 {
			return len(src)
		}
		pos += k + 2
		if n, after := tagName(src, pos); strings.EqualFold(n, name) {
			if end := skipTag(src, after); end >= 0 {
				return end
			}
			return len(src)
		}
	}
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// textWriter writes collapsed text with deferred breaks: a break or space
// is only written when text follows it, so blocks never leave blank lines
// or trailing spaces behind.
type textWriter struct {
	b      strings.Builder
	brk    int    // pending line breaks before the next text: 0, 1 or 2
	space  bool   // a space is pending before the next text
	bullet string // a list marker pending before the next text
	bol    bool   // the last byte written ended a line
}

func (w *textWriter) newline() {
	if w.b.Len() > 0 {
		w.brk++
		if w.brk > 2 {
			w.brk = 2
		}
	}
	w.space = false
}

func (w *textWriter) line() {
	if w.b.Len() > 0 && w.brk < 1 {
		w.brk = 1
	}
	w.space = false
}

func (w *textWriter) paragraph() {
	if w.b.Len() > 0 {
		w.brk = 2
	}
	w.space = false
}

// text writes character data as found in HTML: decoded, with whitespace
// collapsed.
func (w *textWriter) text(s string) {
	if s != "" {
		w.words(html.UnescapeString(s))
	}
}

// words writes already decoded text, collapsing whitespace. (Decoding
// twice would turn a URL's "&copy=1" into "©=1".)
func (w *textWriter) words(s string) {
	for len(s) > 0 {
		i := 0
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i > 0 {
			w.space = true
			s = s[i:]
			continue
		}
		j := 0
		for j < len(s) && !isSpace(s[j]) {
			j++
		}
		w.word(s[:j])
		s = s[j:]
	}
}

// word writes a run of non-space text after any pending break, marker or
// space. Invisible characters used as preheader padding are dropped and a
// no-break space prints as a space.
func (w *textWriter) word(s string) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\u200b', '\u200c', '\u200d', '\u2007', '\u034f', '\ufeff', '\u00ad':
			return -1
		case '\u00a0':
			return ' '
		}
		return r
	}, s)
	if s == "" {
		return
	}
	if w.brk > 0 && w.b.Len() > 0 {
		w.b.WriteString("\n\n"[:w.brk])
		w.bol = true
	}
	w.brk = 0
	if w.bullet != "" {
		w.b.WriteString(w.bullet)
		w.bullet = ""
		w.bol, w.space = false, false
	}
	if w.space && !w.bol && w.b.Len() > 0 {
		w.b.WriteByte(' ')
	}
	w.space, w.bol = false, false
	w.b.WriteString(s)
}

// String returns the text with each line's trailing spaces removed (a
// no-break space can leave some).
func (w *textWriter) String() string {
	s := w.b.String()
	if !strings.Contains(s, " \n") && !strings.HasSuffix(s, " ") {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), " ")
}
