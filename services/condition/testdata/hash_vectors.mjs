// Generates hash_vectors.json: the criteria hash as the reference computes it
// (spec 10 §4.9): SHA-256 hex of compact JSON as JSON.stringify writes it,
// with object keys sorted and undefined values dropped.
//
//   node services/condition/testdata/hash_vectors.mjs > services/condition/testdata/hash_vectors.json
import { createHash } from "node:crypto";

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v).sort()) if (v[k] !== undefined) out[k] = sortKeys(v[k]);
    return out;
  }
  return v;
}

const prop = (property, operator, value) => ({ type: "property", property, operator, ...(value !== undefined ? { value } : {}) });
const days = (n) => ({ hours: n * 24 });

const cases = {
  "property eq string": prop("plan", "eq", "pro"),
  "property exists": prop("plan", "exists"),
  "event window count": { type: "event", eventName: "login", check: "count", operator: "gte", value: 3, within: { hours: 1 } },
  "event days": { type: "event", eventName: "app_open", check: "not_exists", within: days(7) },
  "event mixed window": { type: "event", eventName: "x", check: "exists", within: { hours: 1.5, minutes: 30, seconds: 0.25 } },
  "email engagement": { type: "email_engagement", templateKey: "welcome", check: "not_opened" },
  "composite": {
    type: "composite", operator: "and", conditions: [
      prop("plan", "eq", "pro"),
      { type: "composite", operator: "or", conditions: [] },
      { type: "event", eventName: "purchase", check: "count", operator: "eq", value: 0 },
    ],
  },
  "numbers": {
    type: "composite", operator: "or", conditions: [
      0.1, 1e21, 1e-7, 1.5e-7, 0.000001, 123456789012345680000, -0, 5e-324, 1.7976931348623157e308, -2.5, 100, 1e300, 4.35, 2 ** 53 + 2,
    ].map((n) => prop("n", "gt", n)),
  },
  "strings": {
    type: "composite", operator: "or", conditions: [
      "<script>&amp;</script>", "line\u2028sep\u2029", "nul\u0000bell\u0007del\u007f", "quote\" back\\ slash/", "tab\tnl\ncr\rff\fbs\b", "é ü 日本 😀", "",
    ].map((s) => prop(s, "contains", s)),
  },
  "booleans": { type: "composite", operator: "and", conditions: [prop("a", "eq", true), prop("b", "neq", false)] },
};

const out = Object.entries(cases).map(([name, condition]) => {
  const canonical = JSON.stringify(sortKeys(condition));
  return { name, condition, canonical, sha256: createHash("sha256").update(canonical).digest("hex") };
});
process.stdout.write(JSON.stringify(out, null, 2) + "\n");
