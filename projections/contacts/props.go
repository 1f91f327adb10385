package contacts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// props is a contact's property bag. Values stay raw JSON so numbers and
// nested objects round-trip exactly and only touched keys are re-encoded.
type props map[string]json.RawMessage

var jsonNull = []byte("null")

func isNull(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), jsonNull) }

func decodeProps(raw json.RawMessage) (props, error) {
	if len(raw) == 0 || isNull(raw) {
		return props{}, nil
	}
	var p props
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode properties: %w", err)
	}
	if p == nil {
		p = props{}
	}
	return p, nil
}

// encode writes the bag with sorted keys (deterministic, so replay
// reproduces byte-identical rows).
func (p props) encode() json.RawMessage {
	if len(p) == 0 {
		return json.RawMessage("{}")
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(p[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// withoutNulls returns the patch minus its top-level nulls (create and
// merge, spec 10 §2.4).
func (p props) withoutNulls() props {
	out := make(props, len(p))
	for k, v := range p {
		if !isNull(v) {
			out[k] = v
		}
	}
	return out
}

// overlay applies patch on top of p: the patch wins, a null deletes the
// key. Used by merge, where only top-level nulls are dropped.
func (p props) overlay(patch props) {
	for k, v := range patch {
		if isNull(v) {
			delete(p, k)
			continue
		}
		p[k] = v
	}
}

// link applies a fill-in-link patch (spec 10 §2.4 rule 3): an empty patch
// leaves the bag untouched; a non-empty one overlays, then drops every
// null-valued key, top level and nested.
func (p props) link(patch props) {
	if len(patch) == 0 {
		return
	}
	p.overlay(patch)
	for k, v := range p {
		if isNull(v) {
			delete(p, k)
			continue
		}
		if t := bytes.TrimSpace(v); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
			p[k] = stripNestedNulls(v)
		}
	}
}

// stripNestedNulls removes null-valued object fields at any depth.
func stripNestedNulls(v json.RawMessage) json.RawMessage {
	var x any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&x); err != nil {
		return v
	}
	out, err := json.Marshal(strip(x))
	if err != nil {
		return v
	}
	return out
}

func strip(x any) any {
	switch t := x.(type) {
	case map[string]any:
		for k, v := range t {
			if v == nil {
				delete(t, k)
				continue
			}
			t[k] = strip(v)
		}
		return t
	case []any:
		for i, v := range t {
			t[i] = strip(v)
		}
		return t
	default:
		return x
	}
}
