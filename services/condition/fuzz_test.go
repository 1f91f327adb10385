package condition_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	c "github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// fuzzSeeds are the decode seeds: the golden inputs and hash vectors plus
// hand-picked edge cases.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	seeds := [][]byte{
		[]byte(`{"type":"property","property":"plan","operator":"eq","value":"pro"}`),
		[]byte(`{"property":"n","operator":"gt","value":3}`),
		[]byte(`{"eventName":"login","check":"count","operator":"gte","value":3,"within":{"hours":1}}`),
		[]byte(`{"type":"event","eventName":"x","check":"not_exists","within":{"seconds":-1,"minutes":1e-7}}`),
		[]byte(`{"templateKey":"t","check":"not_opened"}`),
		[]byte(`{"operator":"or","conditions":[{"operator":"and","conditions":[]},{"property":"a","operator":"neq"}]}`),
		[]byte(`{"type":"cohort","x":[1,{"y":null}]}`),
		[]byte(`{"type":"property","property":"\u0000\ud800","operator":"contains","value":"\u2028<>&"}`),
		[]byte(`{"type":"property","property":"a","operator":"eq","value":-0}`),
		[]byte(`{"type":"property","property":"a","operator":"eq","value":1e308,"value":5e-324}`),
		[]byte(`{"property":"a","operator":"eq","value":"\xff\xfe"}`),
		[]byte(`{"conditions":null,"eventName":null,"property":"a"}`),
		[]byte(`null`),
		[]byte(`{"conditions":[{"conditions":[{"conditions":[]}]}]} `),
		[]byte(`{"type":"event","value":1,"within":{"hours":null}}x`),
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	return seeds
}

// FuzzDecode: decoding never panics, fails only with invalid_request, and
// what it accepts round-trips exactly.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := c.Parse(data)
		if err != nil {
			if errcode.Code(err) != errcode.CodeInvalidRequest {
				t.Fatalf("Parse error without invalid_request: %v", err)
			}
			return
		}
		enc, err := n.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a decoded tree: %v", err)
		}
		if !json.Valid(enc) {
			t.Fatalf("MarshalJSON wrote invalid JSON: %s", enc)
		}
		back, err := c.Parse(enc)
		if err != nil {
			t.Fatalf("Parse(MarshalJSON) = %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(n, back) {
			t.Fatalf("round trip changed the tree:\n %#v\n %#v", n, back)
		}
		enc2, err := back.MarshalJSON()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %v\n %s\n %s", err, enc, enc2)
		}
		canon := c.Canonical(n)
		fromCanon, err := c.Parse(canon)
		if err != nil || !reflect.DeepEqual(n, fromCanon) {
			t.Fatalf("canonical form does not decode to the tree: %v\n%s", err, canon)
		}
		if c.Hash(n) != c.Hash(back) {
			t.Fatal("hash not stable")
		}
		// encoding/json agrees with Parse.
		var viaStd c.Node
		if err := json.Unmarshal(data, &viaStd); err != nil || !reflect.DeepEqual(n, viaStd) {
			t.Fatalf("json.Unmarshal disagrees with Parse: %v", err)
		}
		std, err := json.Marshal(n)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		if fromStd, err := c.Parse(std); err != nil || !reflect.DeepEqual(n, fromStd) {
			t.Fatalf("json.Marshal output does not decode to the tree: %v", err)
		}
		// Analysis and validation are total.
		_ = c.Validate(n)
		_ = c.AllNegative(n)
		_ = c.EventNames(n)
		_ = c.PropertyNames(n)
		_ = c.FirstWithin(n)
		_ = c.HasEmailEngagement(n)
		if c.Validate(n) == nil && len(c.Leaves(n)) == 0 {
			t.Fatal("a valid tree without leaves")
		}
	})
}

// fuzzHistory builds a history for the tree's event names and an email
// state, from seed.
func fuzzHistory(n c.Node, seed uint64) *memHistory {
	r := rand.New(rand.NewPCG(seed, seed>>7))
	h := &memHistory{}
	for _, name := range c.EventNames(n) {
		for range r.IntN(5) {
			h.addEvent("u1", name, now.Add(-time.Duration(r.Int64N(int64(30*24*time.Hour)))))
		}
	}
	c.Walk(n, func(x c.Node) bool {
		if x.Type == c.TypeEmailEngagement && r.IntN(3) > 0 {
			h.addSend("a@x.com", x.TemplateKey, now.Add(-time.Duration(r.IntN(1000))*time.Minute), r.IntN(2) == 0, r.IntN(2) == 0)
		}
		return true
	})
	return h
}

func decodeProps(data []byte, useNumber bool) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(data))
	if useNumber {
		dec.UseNumber()
	}
	var props map[string]any
	if err := dec.Decode(&props); err != nil {
		return nil
	}
	return props
}

// FuzzEvaluate: evaluating decoded trees against arbitrary property bags
// never panics or fails with a working history, and the operators keep their
// algebra (eq/neq and exists/not_exists are complements, a composite of one
// child is that child).
func FuzzEvaluate(f *testing.F) {
	bags := []string{
		`{"plan":"pro","n":5,"name":"bob","k":"1","x":null}`,
		`{"n":"5","a":1.0,"b":[1],"c":{"d":true}}`,
		`{"":false,"a.b":-0,"big":1e308}`,
		`{}`,
		`not json`,
	}
	for i, s := range fuzzSeeds(f) {
		f.Add(s, []byte(bags[i%len(bags)]), uint64(i), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, tree, bag []byte, seed uint64, useNumber bool) {
		n, err := c.Parse(tree)
		if err != nil {
			return
		}
		props := decodeProps(bag, useNumber)
		h := fuzzHistory(n, seed)
		in := c.Input{Key: "u1", Email: "a@x.com", Properties: props, Now: now}
		ctx := context.Background()
		eval := func(x c.Node) bool {
			got, err := c.Evaluate(ctx, x, in, h)
			if err != nil {
				t.Fatalf("Evaluate(%s): %v", c.Canonical(x), err)
			}
			return got
		}
		got := eval(n)
		if eval(c.All(n)) != got || eval(c.Any(n)) != got {
			t.Fatal("a one-child composite differs from its child")
		}
		if eval(c.All(n, c.All())) != got || eval(c.Any(c.Any(), n)) != got {
			t.Fatal("empty composites are not the identities of and/or")
		}
		if len(c.EventNames(n)) == 0 && !c.HasEmailEngagement(n) {
			if m := c.MatchWhere([]c.Node{n}, props); m != got {
				t.Fatalf("MatchWhere = %v, Evaluate = %v for %s", m, got, c.Canonical(n))
			}
		}
		for _, leaf := range c.Leaves(n) {
			complement := leaf
			switch {
			case leaf.Type == c.TypeProperty && leaf.Operator == c.OpEq:
				complement.Operator = c.OpNeq
			case leaf.Type == c.TypeProperty && leaf.Operator == c.OpExists:
				complement.Operator = c.OpNotExists
			case leaf.Type == c.TypeEvent && leaf.Check == c.CheckExists:
				complement.Check = c.CheckNotExists
			case leaf.Type == c.TypeEmailEngagement && leaf.Check == c.CheckOpened:
				// Both are false when nothing was sent.
				st, _ := h.LatestEmail(ctx, in.Email, leaf.TemplateKey)
				if !st.Found {
					continue
				}
				complement.Check = c.CheckNotOpened
			default:
				continue
			}
			if eval(leaf) == eval(complement) {
				t.Fatalf("%s and its complement agree", c.Canonical(leaf))
			}
		}
	})
}

// The golden inputs seed both fuzzers; they must cover every node type.
func TestGoldenSeedsCoverNodeTypes(t *testing.T) {
	t.Parallel()
	seen := map[c.Type]bool{}
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		c.Walk(n, func(x c.Node) bool { seen[x.Type] = true; return true })
	}
	for _, typ := range []c.Type{c.TypeProperty, c.TypeEvent, c.TypeEmailEngagement, c.TypeComposite} {
		if !seen[typ] {
			t.Errorf("no golden seed has a %s node", typ)
		}
	}
}
