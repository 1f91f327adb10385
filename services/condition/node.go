package condition

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Type is a node's kind, the JSON "type" discriminator.
type Type string

// The node types of spec §3.1. Any other Type evaluates to false.
const (
	TypeProperty        Type = "property"
	TypeEvent           Type = "event"
	TypeEmailEngagement Type = "email_engagement"
	TypeComposite       Type = "composite"
)

// Operator is the JSON "operator" of a node. Property, event-count and
// composite nodes share the key, so they share the type; each node type
// accepts its own subset.
type Operator string

// Property operators (spec §3.2). Eq, Gt, Gte, Lt and Lte are also the event
// count operators.
const (
	OpEq        Operator = "eq"
	OpNeq       Operator = "neq"
	OpGt        Operator = "gt"
	OpGte       Operator = "gte"
	OpLt        Operator = "lt"
	OpLte       Operator = "lte"
	OpExists    Operator = "exists"
	OpNotExists Operator = "not_exists"
	OpContains  Operator = "contains"
)

// Composite operators.
const (
	OpAnd Operator = "and"
	OpOr  Operator = "or"
)

// Check is the JSON "check" of an event or email_engagement node.
type Check string

// Event checks.
const (
	CheckExists    Check = "exists"
	CheckNotExists Check = "not_exists"
	CheckCount     Check = "count"
)

// Email engagement checks.
const (
	CheckOpened     Check = "opened"
	CheckClicked    Check = "clicked"
	CheckNotOpened  Check = "not_opened"
	CheckNotClicked Check = "not_clicked"
)

// MaxDepth is how deeply nodes may nest (the root is depth 1). Decoding and
// Validate reject deeper trees; no real criteria comes close, and the bound
// keeps hostile input from costing unbounded recursion.
const MaxDepth = 64

// Node is one node of a condition tree: a tagged struct whose Type says which
// fields apply, so that it maps one to one onto the reference's JSON objects.
// Fields that do not belong to Type are ignored by evaluation and analysis and
// dropped by encoding.
//
//	property:          Property, Operator, Value (optional)
//	event:             EventName, Check, Operator and Value (count only), Within (optional)
//	email_engagement:  TemplateKey, Check
//	composite:         Operator (and/or), Conditions
//
// Value holds a string, a float64 or a bool; nil means unset. The builder and
// the decoder store numbers as float64, so their trees compare equal with
// reflect.DeepEqual; other Go numeric types are accepted and compared by
// value.
type Node struct {
	Type        Type
	Property    string
	EventName   string
	TemplateKey string
	Check       Check
	Operator    Operator
	Value       any
	Within      *Duration
	Conditions  []Node
}

// Duration is the reference's duration object {hours?, minutes?, seconds?}.
// Its length is the sum of the parts; a zero part is the same as an absent
// one and is not encoded.
type Duration struct {
	Hours   float64 `json:"hours,omitempty"`
	Minutes float64 `json:"minutes,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
}

// Hours returns a duration of n hours.
func Hours(n float64) Duration { return Duration{Hours: n} }

// Minutes returns a duration of n minutes.
func Minutes(n float64) Duration { return Duration{Minutes: n} }

// Seconds returns a duration of n seconds.
func Seconds(n float64) Duration { return Duration{Seconds: n} }

// Days returns n days, expressed as the reference does: {hours: 24n}.
func Days(n float64) Duration { return Duration{Hours: 24 * n} }

// Milliseconds is the duration's length in milliseconds, the sum of its parts.
func (d Duration) Milliseconds() float64 {
	return d.Hours*3_600_000 + d.Minutes*60_000 + d.Seconds*1_000
}

// Std converts d to a time.Duration, clamped to the representable range (a
// NaN length is 0).
func (d Duration) Std() time.Duration {
	ns := d.Milliseconds() * 1e6
	switch {
	case math.IsNaN(ns):
		return 0
	case ns >= math.MaxInt64:
		return math.MaxInt64
	case ns <= math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(math.Round(ns))
}

// IsZero reports whether d has no length.
func (d Duration) IsZero() bool { return d.Milliseconds() == 0 }

// kind classifies a value the way the reference's JavaScript sees it.
type kind uint8

const (
	kindAbsent kind = iota // no key, or an unset node value
	kindNull
	kindString
	kindNumber
	kindBool
	kindOther // objects, arrays, anything else: present, never equal to a scalar
)

// scalar is a classified value.
type scalar struct {
	k kind
	s string
	f float64
	b bool
}

// classify maps a decoded JSON (or Go) value onto the JavaScript kinds.
func classify(v any) scalar {
	switch x := v.(type) {
	case nil:
		return scalar{k: kindNull}
	case string:
		return scalar{k: kindString, s: x}
	case bool:
		return scalar{k: kindBool, b: x}
	case float64:
		return scalar{k: kindNumber, f: x}
	case float32:
		return scalar{k: kindNumber, f: float64(x)}
	case int:
		return scalar{k: kindNumber, f: float64(x)}
	case int8:
		return scalar{k: kindNumber, f: float64(x)}
	case int16:
		return scalar{k: kindNumber, f: float64(x)}
	case int32:
		return scalar{k: kindNumber, f: float64(x)}
	case int64:
		return scalar{k: kindNumber, f: float64(x)}
	case uint:
		return scalar{k: kindNumber, f: float64(x)}
	case uint8:
		return scalar{k: kindNumber, f: float64(x)}
	case uint16:
		return scalar{k: kindNumber, f: float64(x)}
	case uint32:
		return scalar{k: kindNumber, f: float64(x)}
	case uint64:
		return scalar{k: kindNumber, f: float64(x)}
	case json.Number:
		// JSON.parse turns out-of-range literals into ±Infinity; ParseFloat
		// returns the same ±Inf alongside ErrRange, so only syntax errors
		// make the value something other than a number.
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !math.IsInf(f, 0) {
			return scalar{k: kindOther}
		}
		return scalar{k: kindNumber, f: f}
	default:
		return scalar{k: kindOther}
	}
}

// nodeValue classifies a node's Value, where nil means unset.
func nodeValue(v any) scalar {
	if v == nil {
		return scalar{k: kindAbsent}
	}
	return classify(v)
}

// normalizeValue stores numbers as float64 so that trees built in Go compare
// equal to decoded ones; other values are returned unchanged.
func normalizeValue(v any) any {
	if v == nil {
		return nil
	}
	if s := classify(v); s.k == kindNumber {
		return s.f
	}
	return v
}
