package condition

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// Parse decodes one condition from JSON (see the package documentation for
// the accepted form). Errors are errcode invalid_request errors; shape errors
// name the field ("conditions[1].value: must be a string, number or
// boolean"). Parse checks JSON types only: use Validate for operators,
// required fields and the like.
func Parse(data []byte) (Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := decodeNode(dec, "", 1)
	if err != nil {
		return Node{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Node{}, errcode.Invalid("condition: unexpected data after the JSON value")
	}
	return n, nil
}

// UnmarshalJSON decodes n with Parse. A JSON null leaves n unchanged, as
// encoding/json does for other types.
func (n *Node) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	v, err := Parse(data)
	if err != nil {
		return err
	}
	*n = v
	return nil
}

// MarshalJSON encodes n in the reference's form: "type" first, then the
// node's own keys, with unset optional keys omitted. It fails on a node
// without a Type and on values JSON cannot hold (non-finite numbers, values
// that are not a string, number or bool).
func (n Node) MarshalJSON() ([]byte, error) {
	e := encoder{strict: true}
	e.node(&n, 1)
	if e.err != nil {
		return nil, e.err
	}
	return e.buf, nil
}

// Canonical returns the canonical JSON of n: compact, object keys sorted,
// unset keys dropped, numbers and strings formatted as JavaScript's
// JSON.stringify writes them. It is the input of Hash and matches what the
// reference hashes, so a tree built here and the same tree built in the
// reference hash alike. Canonical never fails: values JSON cannot hold are
// written as null (as JSON.stringify does for NaN); Validate rejects them.
func Canonical(n Node) []byte {
	e := encoder{sorted: true}
	e.node(&n, 1)
	return e.buf
}

// Hash is the SHA-256 hex digest of Canonical(n), used to detect criteria
// changes (spec §4.9): key order and Go-side representation (1 vs 1.0) do not
// change it.
func Hash(n Node) string {
	sum := sha256.Sum256(Canonical(n))
	return hex.EncodeToString(sum[:])
}

// decoding

func fieldErr(path, msg string) error {
	if path == "" {
		return errcode.Invalid("condition " + msg)
	}
	return errcode.InvalidField(path, msg)
}

func syntaxErr(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return errcode.Wrap(errcode.CodeInvalidRequest, "condition: malformed JSON", err)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// wireNode collects the keys of one JSON object before the node's type is
// known. present records keys with a non-null value.
type wireNode struct {
	typ, property, eventName, templateKey, check, operator string

	value      any
	within     *Duration
	conditions []Node
	present    map[string]bool
}

func decodeNode(dec *json.Decoder, path string, depth int) (Node, error) {
	if depth > MaxDepth {
		return Node{}, fieldErr(path, fmt.Sprintf("nests deeper than %d levels", MaxDepth))
	}
	tok, err := dec.Token()
	if err != nil {
		return Node{}, syntaxErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return Node{}, fieldErr(path, "must be an object")
	}
	w := wireNode{present: map[string]bool{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Node{}, syntaxErr(err)
		}
		key, _ := tok.(string)
		field := join(path, key)
		var ok bool
		switch key {
		case "type":
			w.typ, ok, err = decodeString(dec, field)
		case "property":
			w.property, ok, err = decodeString(dec, field)
		case "eventName":
			w.eventName, ok, err = decodeString(dec, field)
		case "templateKey":
			w.templateKey, ok, err = decodeString(dec, field)
		case "check":
			w.check, ok, err = decodeString(dec, field)
		case "operator":
			w.operator, ok, err = decodeString(dec, field)
		case "value":
			w.value, err = decodeScalar(dec, field)
			ok = w.value != nil
		case "within":
			w.within, err = decodeDuration(dec, field)
			ok = w.within != nil
		case "conditions":
			w.conditions, ok, err = decodeList(dec, field, depth)
		default:
			// Unknown keys are dropped, as the reference's schema strips them.
			var skip json.RawMessage
			err = dec.Decode(&skip)
			if err != nil {
				err = syntaxErr(err)
			}
		}
		if err != nil {
			return Node{}, err
		}
		w.present[key] = ok
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return Node{}, syntaxErr(err)
	}
	return w.build(path)
}

func (w *wireNode) build(path string) (Node, error) {
	typ := Type(w.typ)
	if typ == "" {
		switch {
		case w.present["conditions"]:
			typ = TypeComposite
		case w.present["eventName"]:
			typ = TypeEvent
		case w.present["templateKey"]:
			typ = TypeEmailEngagement
		case w.present["property"]:
			typ = TypeProperty
		default:
			return Node{}, fieldErr(join(path, "type"), "is required (and cannot be inferred from the other keys)")
		}
	}
	switch typ {
	case TypeProperty:
		return Node{Type: typ, Property: w.property, Operator: Operator(w.operator), Value: w.value}, nil
	case TypeEvent:
		if w.value != nil {
			if _, ok := w.value.(float64); !ok {
				return Node{}, fieldErr(join(path, "value"), "must be a number")
			}
		}
		return Node{Type: typ, EventName: w.eventName, Check: Check(w.check), Operator: Operator(w.operator), Value: w.value, Within: w.within}, nil
	case TypeEmailEngagement:
		return Node{Type: typ, TemplateKey: w.templateKey, Check: Check(w.check)}, nil
	case TypeComposite:
		c := w.conditions
		if c == nil {
			c = []Node{}
		}
		return Node{Type: typ, Operator: Operator(w.operator), Conditions: c}, nil
	default:
		// Kept so that it evaluates to false (spec §3.1) and Validate can
		// name it; its other keys have no defined meaning.
		return Node{Type: typ}, nil
	}
}

// decodeString reads a string or null (ok false).
func decodeString(dec *json.Decoder, field string) (string, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", false, syntaxErr(err)
	}
	switch v := tok.(type) {
	case string:
		return v, true, nil
	case nil:
		return "", false, nil
	default:
		return "", false, fieldErr(field, "must be a string")
	}
}

// decodeScalar reads a string, number or boolean; null gives nil.
func decodeScalar(dec *json.Decoder, field string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxErr(err)
	}
	switch v := tok.(type) {
	case string, bool, nil:
		return v, nil
	case json.Number:
		return decodeNumber(v, field)
	default:
		return nil, fieldErr(field, "must be a string, number or boolean")
	}
}

func decodeNumber(v json.Number, field string) (float64, error) {
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fieldErr(field, "must be a finite number")
	}
	return f, nil
}

// decodeDuration reads {hours?, minutes?, seconds?} or null (nil). Unknown
// keys are dropped.
func decodeDuration(dec *json.Decoder, field string) (*Duration, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxErr(err)
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fieldErr(field, "must be an object")
	}
	var d Duration
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxErr(err)
		}
		key, _ := tok.(string)
		var part *float64
		switch key {
		case "hours":
			part = &d.Hours
		case "minutes":
			part = &d.Minutes
		case "seconds":
			part = &d.Seconds
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, syntaxErr(err)
			}
			continue
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, syntaxErr(err)
		}
		switch v := tok.(type) {
		case nil:
			*part = 0
		case json.Number:
			f, err := decodeNumber(v, join(field, key))
			if err != nil {
				return nil, err
			}
			*part = f
		default:
			return nil, fieldErr(join(field, key), "must be a number")
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxErr(err)
	}
	return &d, nil
}

// decodeList reads an array of nodes, or null (ok false).
func decodeList(dec *json.Decoder, field string, depth int) ([]Node, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, false, syntaxErr(err)
	}
	if tok == nil {
		return nil, false, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, false, fieldErr(field, "must be an array")
	}
	list := []Node{}
	for i := 0; dec.More(); i++ {
		n, err := decodeNode(dec, field+"["+strconv.Itoa(i)+"]", depth+1)
		if err != nil {
			return nil, false, err
		}
		list = append(list, n)
	}
	if _, err := dec.Token(); err != nil {
		return nil, false, syntaxErr(err)
	}
	return list, true, nil
}

// encoding

// encoder writes nodes. sorted selects the canonical key order; strict makes
// unencodable values an error instead of null.
type encoder struct {
	buf    []byte
	sorted bool
	strict bool
	err    error
}

func (e *encoder) fail(msg string) {
	if e.err == nil {
		e.err = errors.New("encode condition: " + msg)
	}
}

// objField is one key of an object being written.
type objField struct {
	key   string
	write func()
}

func (e *encoder) object(fields []objField) {
	if e.sorted {
		// Keys are few and fixed: insertion sort keeps this allocation-free.
		for i := 1; i < len(fields); i++ {
			for j := i; j > 0 && fields[j].key < fields[j-1].key; j-- {
				fields[j], fields[j-1] = fields[j-1], fields[j]
			}
		}
	}
	e.buf = append(e.buf, '{')
	for i, f := range fields {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, f.key)
		e.buf = append(e.buf, ':')
		f.write()
	}
	e.buf = append(e.buf, '}')
}

func (e *encoder) str(s string) func() {
	return func() { e.buf = appendString(e.buf, s) }
}

func (e *encoder) node(n *Node, depth int) {
	if depth > MaxDepth {
		e.fail(fmt.Sprintf("nests deeper than %d levels", MaxDepth))
	}
	if n.Type == "" && e.strict {
		e.fail("node has no type")
	}
	fields := []objField{{"type", e.str(string(n.Type))}}
	switch n.Type {
	case TypeProperty:
		fields = append(fields, objField{"property", e.str(n.Property)}, objField{"operator", e.str(string(n.Operator))})
		if n.Value != nil {
			fields = append(fields, objField{"value", func() { e.value(n.Value) }})
		}
	case TypeEvent:
		fields = append(fields, objField{"eventName", e.str(n.EventName)}, objField{"check", e.str(string(n.Check))})
		if n.Operator != "" {
			fields = append(fields, objField{"operator", e.str(string(n.Operator))})
		}
		if n.Value != nil {
			fields = append(fields, objField{"value", func() { e.value(n.Value) }})
		}
		if n.Within != nil {
			fields = append(fields, objField{"within", func() { e.duration(*n.Within) }})
		}
	case TypeEmailEngagement:
		fields = append(fields, objField{"templateKey", e.str(n.TemplateKey)}, objField{"check", e.str(string(n.Check))})
	case TypeComposite:
		fields = append(fields, objField{"operator", e.str(string(n.Operator))}, objField{"conditions", func() {
			e.buf = append(e.buf, '[')
			for i := range n.Conditions {
				if i > 0 {
					e.buf = append(e.buf, ',')
				}
				e.node(&n.Conditions[i], depth+1)
			}
			e.buf = append(e.buf, ']')
		}})
	}
	e.object(fields)
}

func (e *encoder) value(v any) {
	s := classify(v)
	switch s.k {
	case kindString:
		e.buf = appendString(e.buf, s.s)
	case kindBool:
		e.buf = strconv.AppendBool(e.buf, s.b)
	case kindNumber:
		e.number(s.f)
	default:
		if e.strict {
			e.fail(fmt.Sprintf("value of type %T is not a string, number or boolean", v))
		}
		e.buf = append(e.buf, "null"...)
	}
}

func (e *encoder) number(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		if e.strict {
			e.fail("value is not a finite number")
		}
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = appendNumber(e.buf, f)
}

func (e *encoder) duration(d Duration) {
	var fields []objField
	for _, p := range []struct {
		key string
		v   float64
	}{{"hours", d.Hours}, {"minutes", d.Minutes}, {"seconds", d.Seconds}} {
		if p.v != 0 { // NaN included
			v := p.v
			fields = append(fields, objField{p.key, func() { e.number(v) }})
		}
	}
	e.object(fields)
}

// appendNumber formats f as JavaScript's Number#toString does (the shortest
// round-trip digits; exponent form below 1e-6 and from 1e21), which is also
// what JSON.stringify writes. -0 is written as 0.
func appendNumber(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Go writes e-07 and e+07 where JavaScript writes e-7 and e+7.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString quotes s as JSON.stringify does: only '"', '\\' and control
// characters are escaped (\b \f \n \r \t, others as lower-case \u00xx).
// Invalid UTF-8 becomes U+FFFD, as decoding would make it.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"':
				b = append(b, '\\', '"')
			case c == '\\':
				b = append(b, '\\', '\\')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
