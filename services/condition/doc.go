// Package condition is Hogsend's condition language: the predicates behind
// journey trigger and exit `where` lists and bucket criteria (spec 10 §3).
//
// A condition is a tree of [Node] values. There are four node types:
//
//	property          {"type":"property","property":"plan","operator":"eq","value":"pro"}
//	event             {"type":"event","eventName":"login","check":"count","operator":"gte","value":3,"within":{"hours":1}}
//	email_engagement  {"type":"email_engagement","templateKey":"welcome","check":"opened"}
//	composite         {"type":"composite","operator":"and","conditions":[...]}
//
// # JSON
//
// The JSON form is the reference engine's plain objects. Encoding always
// writes the "type" discriminator and omits optional keys that are unset
// (event operator, value and within; property value). Decoding accepts a
// missing, null or empty "type" and then infers the kind from the keys present
// ("conditions" → composite, "eventName" → event, "templateKey" →
// email_engagement, "property" → property). Keys are matched case-sensitively,
// keys that do not belong to the node's type are dropped (as the reference's
// schema strips them), and a null optional field counts as absent. A node of
// an unknown type decodes to a Node holding only its Type, which evaluates to
// false and fails [Validate]. Decoding then encoding is stable, and [Hash]
// gives a change-detection digest of the canonical form.
//
// # Values and numbers
//
// Property values are strings, numbers or booleans; numbers are float64 (the
// reference runs on JavaScript numbers), so 1 and 1.0 are the same value. The
// property bag of an [Input] is decoded JSON: it may hold float64 or
// json.Number (and Go integer types from Go callers); all compare by numeric
// value, while a string never equals a number ("1" ≠ 1).
//
// # Evaluation
//
// [Evaluate] itself does no I/O: event counts and email engagement are read
// through the small [History] interface, implemented over Postgres elsewhere.
// [MatchWhere] evaluates property-only `where` lists with no history at all.
//
// # Static analysis
//
// Bucket registration and indexing use [Walk], [Leaves], [EventNames],
// [PropertyNames], [AllNegative], [HasEmailEngagement], [FirstWithin] and
// [Validate].
package condition
