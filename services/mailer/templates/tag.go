package templates

import "strings"

// A small scanner for the start tags of rendered email HTML, shared by Track
// and the plain-text derivation. golang.org/x/net/html is not a dependency,
// and both jobs need only tag names and a few attributes, so this follows
// the attribute states of the HTML tokenizer (WHATWG §13.2.5.32–.39) closely
// enough for markup we render ourselves: quoted values may hold '>' and
// whitespace, unquoted values end at whitespace or '>', names are
// case-insensitive. It never allocates.

// attr is one attribute of a tag, as offsets into the source.
type attr struct {
	nameStart, nameEnd int
	valStart, valEnd   int  // the value without its quotes; equal when absent
	quote              byte // '"', '\'' or 0 (unquoted or no value)
	end                int  // offset just past the attribute
}

// name returns the attribute's name as written.
func (a attr) name(src string) string { return src[a.nameStart:a.nameEnd] }

// value returns the raw (still entity-encoded) value.
func (a attr) value(src string) string { return src[a.valStart:a.valEnd] }

// scanState is what nextAttr found.
type scanState int

const (
	foundAttr    scanState = iota // an attribute; scan on from its end
	tagClosed                     // the tag's '>'; next is just past it
	unterminated                  // the source ended inside the tag
)

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// nextAttr scans from pos (inside a start tag, after its name or a previous
// attribute) to the next attribute or the end of the tag.
func nextAttr(src string, pos int) (a attr, next int, st scanState) {
	n := len(src)
	for pos < n && (isSpace(src[pos]) || src[pos] == '/') {
		pos++
	}
	if pos >= n {
		return attr{}, n, unterminated
	}
	if src[pos] == '>' {
		return attr{}, pos + 1, tagClosed
	}
	a.nameStart = pos
	pos++ // a leading '=' belongs to the name (tokenizer rule)
	for pos < n && !isSpace(src[pos]) && src[pos] != '/' && src[pos] != '>' && src[pos] != '=' {
		pos++
	}
	a.nameEnd = pos
	a.valStart, a.valEnd, a.end = pos, pos, pos
	p := pos
	for p < n && isSpace(src[p]) {
		p++
	}
	if p >= n || src[p] != '=' {
		return a, pos, foundAttr
	}
	p++
	for p < n && isSpace(src[p]) {
		p++
	}
	if p >= n {
		return attr{}, n, unterminated
	}
	if q := src[p]; q == '"' || q == '\'' {
		closeAt := strings.IndexByte(src[p+1:], q)
		if closeAt < 0 {
			return attr{}, n, unterminated
		}
		a.quote = q
		a.valStart, a.valEnd = p+1, p+1+closeAt
		a.end = a.valEnd + 1
		return a, a.end, foundAttr
	}
	a.valStart = p
	for p < n && !isSpace(src[p]) && src[p] != '>' {
		p++
	}
	a.valEnd, a.end = p, p
	return a, p, foundAttr
}

// skipTag returns the offset just past the '>' of the tag whose attributes
// start at pos, or -1 when the source ends inside it.
func skipTag(src string, pos int) int {
	for {
		_, next, st := nextAttr(src, pos)
		switch st {
		case tagClosed:
			return next
		case unterminated:
			return -1
		}
		pos = next
	}
}

// tagName reads the name of a tag starting at pos (just after "<" or "</"):
// ASCII letters and digits. It returns the name as written and the offset
// after it.
func tagName(src string, pos int) (string, int) {
	start := pos
	for pos < len(src) {
		c := src[pos]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			break
		}
		pos++
	}
	return src[start:pos], pos
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// lastIndexFold is strings.LastIndex ignoring ASCII case; sub must be ASCII.
func lastIndexFold(s, sub string) int {
	for i := len(s) - len(sub); i >= 0; i-- {
		if lowerASCII(s[i]) == lowerASCII(sub[0]) && strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// trimHTMLSpace trims the whitespace HTML ignores around a URL attribute.
func trimHTMLSpace(s string) string {
	return strings.Trim(s, " \t\n\r\f")
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
