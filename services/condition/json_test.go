package condition_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	c "github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// indent renders n as the golden files store it: MarshalJSON, indented.
func indent(t *testing.T, n c.Node) []byte {
	t.Helper()
	b, err := n.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		t.Fatalf("indent %s: %v", b, err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// assertRoundTrip checks that n survives encode → decode unchanged and that
// re-encoding gives the same bytes.
func assertRoundTrip(t *testing.T, n c.Node) {
	t.Helper()
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := c.Parse(b)
	if err != nil {
		t.Fatalf("Parse(%s): %v", b, err)
	}
	assertDeepEqual(t, back, n)
	b2, err := json.Marshal(back)
	if err != nil {
		t.Fatalf("Marshal again: %v", err)
	}
	if !bytes.Equal(b, b2) {
		t.Errorf("encoding not stable:\n %s\n %s", b, b2)
	}
	if c.Hash(back) != c.Hash(n) {
		t.Error("hash changed across the round trip")
	}
}

// Golden decode → encode examples: each testdata/golden/NAME.json decodes and
// encodes to NAME.golden (go test -run TestGolden -update rewrites them).
func TestGolden(t *testing.T) {
	t.Parallel()
	inputs, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			n, err := c.Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := indent(t, n)
			golden := strings.TrimSuffix(in, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs:\n got\n%s\n want\n%s", golden, got, want)
			}
			assertRoundTrip(t, n)
			// The golden output is itself a fixed point.
			again, err := c.Parse(want)
			if err != nil {
				t.Fatal(err)
			}
			assertDeepEqual(t, again, n)
		})
	}
}

func TestParseInfersType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		json string
		want c.Node
	}{
		{`{"property":"a","operator":"exists"}`, c.Prop("a").Exists()},
		{`{"eventName":"x","check":"exists"}`, c.Event("x").Exists()},
		{`{"templateKey":"t","check":"opened"}`, c.EmailEngagement("t", c.CheckOpened)},
		{`{"operator":"and","conditions":[]}`, c.All()},
		{`{"type":"","operator":"or","conditions":[]}`, c.Any()},
		{`{"type":null,"property":"a","operator":"exists"}`, c.Prop("a").Exists()},
		// Keys are case-sensitive: "Type" is an unknown key.
		{`{"Type":"event","property":"a","operator":"exists"}`, c.Prop("a").Exists()},
		// conditions wins over the leaf keys, then eventName, then templateKey.
		{`{"property":"a","eventName":"x","check":"exists","conditions":[{"property":"b","operator":"exists"}],"operator":"or"}`, c.Any(c.Prop("b").Exists())},
		{`{"property":"a","eventName":"x","check":"exists","templateKey":"t"}`, c.Event("x").Exists()},
		{`{"property":"a","templateKey":"t","check":"clicked"}`, c.EmailEngagement("t", c.CheckClicked)},
		// An explicit type wins over inference.
		{`{"type":"property","eventName":"x","property":"a","operator":"exists","check":"count"}`, c.Prop("a").Exists()},
		// Duplicate keys: the last one wins, as in JSON.parse.
		{`{"property":"a","operator":"eq","value":1,"value":"x"}`, c.Prop("a").Eq("x")},
	}
	for _, tt := range tests {
		got, err := c.Parse([]byte(tt.json))
		if err != nil {
			t.Errorf("Parse(%s): %v", tt.json, err)
			continue
		}
		assertDeepEqual(t, got, tt.want)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	deep := func(levels int) string {
		return strings.Repeat(`{"operator":"and","conditions":[`, levels-1) + `{"property":"a","operator":"exists"}` + strings.Repeat(`]}`, levels-1)
	}
	tests := []struct {
		name, json, message string
	}{
		{"empty", ``, "condition: malformed JSON: unexpected EOF"},
		{"truncated", `{"type":"property"`, "condition: malformed JSON: unexpected EOF"},
		{"trailing comma", `{"type":"property",}`, "condition: malformed JSON"},
		{"garbage", `{bad}`, "condition: malformed JSON"},
		{"null", `null`, "condition must be an object"},
		{"array", `[]`, "condition must be an object"},
		{"string", `"x"`, "condition must be an object"},
		{"no type", `{}`, "type: is required (and cannot be inferred from the other keys)"},
		{"no type nested", `{"operator":"and","conditions":[{"operator":"eq"}]}`, "conditions[0].type: is required (and cannot be inferred from the other keys)"},
		{"type not string", `{"type":1}`, "type: must be a string"},
		{"property not string", `{"type":"property","property":5}`, "property: must be a string"},
		{"operator not string", `{"type":"property","operator":true}`, "operator: must be a string"},
		{"value object", `{"type":"property","property":"a","operator":"eq","value":{}}`, "value: must be a string, number or boolean"},
		{"value array", `{"type":"property","value":[1]}`, "value: must be a string, number or boolean"},
		{"value too big", `{"type":"property","value":1e400}`, "value: must be a finite number"},
		{"event value string", `{"type":"event","eventName":"x","check":"count","operator":"gte","value":"3"}`, "value: must be a number"},
		{"event value bool", `{"type":"event","value":true}`, "value: must be a number"},
		{"within not object", `{"type":"event","within":[]}`, "within: must be an object"},
		{"within part string", `{"type":"event","within":{"hours":"1"}}`, "within.hours: must be a number"},
		{"within part huge", `{"type":"event","within":{"seconds":1e999}}`, "within.seconds: must be a finite number"},
		{"conditions not array", `{"type":"composite","conditions":{}}`, "conditions: must be an array"},
		{"condition null", `{"type":"composite","conditions":[null]}`, "conditions[0]: must be an object"},
		{"nested path", `{"type":"composite","conditions":[{"property":"a"},{"type":"composite","conditions":[1]}]}`, "conditions[1].conditions[0]: must be an object"},
		{"nested value", `{"conditions":[{"conditions":[{"property":"a","value":{"x":1}}]}]}`, "conditions[0].conditions[0].value: must be a string, number or boolean"},
		{"trailing value", `{"property":"a"} {}`, "condition: unexpected data after the JSON value"},
		{"trailing garbage", `{"property":"a"}x`, "condition: unexpected data after the JSON value"},
		{"too deep", deep(c.MaxDepth + 1), "nests deeper than 64 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Parse([]byte(tt.json))
			if err == nil {
				t.Fatalf("Parse(%.80s) succeeded", tt.json)
			}
			if code := errcode.Code(err); code != errcode.CodeInvalidRequest {
				t.Errorf("code = %s, want invalid_request", code)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error = %q, want it to contain %q", err, tt.message)
			}
		})
	}
	if _, err := c.Parse([]byte(deep(c.MaxDepth))); err != nil {
		t.Errorf("a tree exactly MaxDepth deep: %v", err)
	}
}

func TestUnmarshalWhereList(t *testing.T) {
	t.Parallel()
	var doc struct {
		Where []c.Node `json:"where"`
	}
	if err := json.Unmarshal([]byte(`{"where":[{"property":"plan","operator":"eq","value":"pro"},{"type":"property","property":"seats","operator":"gte","value":2}]}`), &doc); err != nil {
		t.Fatal(err)
	}
	want := []c.Node{c.Prop("plan").Eq("pro"), c.Prop("seats").Gte(2)}
	if len(doc.Where) != len(want) {
		t.Fatalf("got %d nodes", len(doc.Where))
	}
	for i := range want {
		assertDeepEqual(t, doc.Where[i], want[i])
	}
	// null follows encoding/json's convention: a no-op, here a zero Node
	// that Validate rejects.
	var nulls struct {
		Where []c.Node `json:"where"`
	}
	if err := json.Unmarshal([]byte(`{"where":[null]}`), &nulls); err != nil || len(nulls.Where) != 1 || nulls.Where[0].Type != "" {
		t.Errorf("where [null]: %v %+v", err, nulls.Where)
	}
	err := json.Unmarshal([]byte(`{"where":[{"property":5}]}`), &doc)
	if errcode.Code(err) != errcode.CodeInvalidRequest || !strings.Contains(err.Error(), "property: must be a string") {
		t.Errorf("bad where: %v", err)
	}
}

func TestMarshalErrors(t *testing.T) {
	t.Parallel()
	deep := c.Prop("a").Exists()
	for range c.MaxDepth {
		deep = c.All(deep)
	}
	tests := []struct {
		name string
		node c.Node
	}{
		{"no type", c.Node{}},
		{"nested no type", c.All(c.Node{Property: "a"})},
		{"object value", c.Node{Type: c.TypeProperty, Property: "a", Operator: c.OpEq, Value: map[string]any{}}},
		{"NaN value", c.Prop("a").Gt(math.NaN())},
		{"infinite count", c.Event("x").AtLeast(math.Inf(1))},
		{"NaN window", c.Event("x").Within(c.Hours(math.NaN())).Exists()},
		{"too deep", deep},
	}
	for _, tt := range tests {
		if b, err := json.Marshal(tt.node); err == nil {
			t.Errorf("%s: Marshal = %s, want an error", tt.name, b)
		}
		// Canonical and Hash are total.
		if len(c.Canonical(tt.node)) == 0 || len(c.Hash(tt.node)) != 64 {
			t.Errorf("%s: Canonical/Hash gave nothing", tt.name)
		}
	}
	if got := string(c.Canonical(c.Prop("a").Gt(math.NaN()))); got != `{"operator":"gt","property":"a","type":"property","value":null}` {
		t.Errorf("Canonical with NaN = %s", got)
	}
}

// Fields that do not belong to a node's type are not encoded.
func TestMarshalDropsForeignFields(t *testing.T) {
	t.Parallel()
	n := c.Node{Type: c.TypeEmailEngagement, TemplateKey: "t", Check: c.CheckOpened, Property: "p", Operator: c.OpEq, Value: 1, Within: &c.Duration{Hours: 1}, Conditions: []c.Node{{}}}
	if got := mustJSON(t, n); got != `{"type":"email_engagement","templateKey":"t","check":"opened"}` {
		t.Errorf("got %s", got)
	}
	if got := mustJSON(t, c.Node{Type: "cohort", Property: "p"}); got != `{"type":"cohort"}` {
		t.Errorf("unknown type: got %s", got)
	}
	if got := mustJSON(t, c.Node{Type: c.TypeComposite, Operator: c.OpAnd}); got != `{"type":"composite","operator":"and","conditions":[]}` {
		t.Errorf("nil conditions: got %s", got)
	}
}

// Hash vectors computed by the reference's algorithm in JavaScript
// (testdata/hash_vectors.mjs): a Go tree hashes like the same tree in the
// reference, so stored criteria hashes carry over.
func TestHashMatchesReference(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "hash_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Name      string          `json:"name"`
		Condition json.RawMessage `json:"condition"`
		Canonical string          `json:"canonical"`
		SHA256    string          `json:"sha256"`
	}
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) < 5 {
		t.Fatalf("only %d vectors", len(vectors))
	}
	for _, v := range vectors {
		n, err := c.Parse(v.Condition)
		if err != nil {
			t.Errorf("%s: Parse: %v", v.Name, err)
			continue
		}
		if got := string(c.Canonical(n)); got != v.Canonical {
			t.Errorf("%s: canonical\n got  %s\n want %s", v.Name, got, v.Canonical)
		}
		if got := c.Hash(n); got != v.SHA256 {
			t.Errorf("%s: hash %s, want %s", v.Name, got, v.SHA256)
		}
	}
}

func TestHashStability(t *testing.T) {
	t.Parallel()
	same := []string{
		`{"type":"composite","operator":"and","conditions":[{"type":"property","property":"plan","operator":"eq","value":"pro"},{"type":"event","eventName":"x","check":"count","operator":"gte","value":2,"within":{"hours":1,"minutes":30}}]}`,
		`{"conditions":[{"value":"pro","operator":"eq","property":"plan","type":"property"},{"within":{"minutes":30,"hours":1},"value":2.0,"operator":"gte","check":"count","eventName":"x","type":"event"}],"operator":"and","type":"composite"}`,
		"{ \"operator\" : \"and\",\n \"conditions\": [ {\"property\":\"plan\",\"operator\":\"eq\",\"value\":\"pro\",\"unknown\":1},\n {\"eventName\":\"x\",\"check\":\"count\",\"operator\":\"gte\",\"value\":2e0,\"within\":{\"hours\":1,\"minutes\":30,\"seconds\":0}} ] }",
	}
	built := c.All(c.Prop("plan").Eq("pro"), c.Event("x").Within(c.Duration{Hours: 1, Minutes: 30}).AtLeast(2))
	want := c.Hash(built)
	if len(want) != 64 {
		t.Fatalf("hash %q is not SHA-256 hex", want)
	}
	for _, s := range same {
		n, err := c.Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Hash(n); got != want {
			t.Errorf("Hash(%s) = %s, want %s", s, got, want)
		}
	}
	// An int value hashes like the float64 the builder stores.
	if c.Hash(c.Node{Type: c.TypeProperty, Property: "a", Operator: c.OpEq, Value: 1}) != c.Hash(c.Prop("a").Eq(1.0)) {
		t.Error("int and float64 values hash differently")
	}
	different := []c.Node{
		c.All(c.Prop("plan").Eq("pro"), c.Event("x").Within(c.Duration{Hours: 1, Minutes: 30}).AtLeast(3)),
		c.All(c.Event("x").Within(c.Duration{Hours: 1, Minutes: 30}).AtLeast(2), c.Prop("plan").Eq("pro")), // order matters
		c.Any(c.Prop("plan").Eq("pro"), c.Event("x").Within(c.Duration{Hours: 1, Minutes: 30}).AtLeast(2)),
		c.All(c.Prop("plan").Eq("pro"), c.Event("x").Within(c.Duration{Minutes: 90}).AtLeast(2)), // same length, other form
		c.All(c.Prop("plan").Eq("pro"), c.Event("x").AtLeast(2)),
		c.Prop("a").Eq("1"),
		c.Prop("a").Eq(1),
		c.Prop("a").Eq(true),
		c.Prop("a").Eq(nil),
	}
	seen := map[string]int{want: -1}
	for i, n := range different {
		h := c.Hash(n)
		if j, dup := seen[h]; dup {
			t.Errorf("trees %d and %d hash alike", i, j)
		}
		seen[h] = i
	}
}
