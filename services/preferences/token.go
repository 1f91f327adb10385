package preferences

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"
)

// Token actions (spec 20 §3.5).
const (
	ActionUnsubscribe = "unsubscribe"
	ActionResubscribe = "resubscribe"
	ActionManage      = "manage"
)

// TokenLifetime is the default lifetime of the tokens the URL helpers
// issue.
const TokenLifetime = 30 * 24 * time.Hour

// The verification failures, in the order Verify checks them. The messages
// are the reference's and are shown on the "Invalid Link" page.
var (
	ErrMalformedToken    = errors.New("Malformed token")
	ErrTokenSignature    = errors.New("Invalid token signature")
	ErrMalformedPayload  = errors.New("Malformed token payload")
	ErrIncompletePayload = errors.New("Incomplete token payload")
	ErrTokenExpired      = errors.New("Token has expired")
	ErrInvalidToken      = errors.New("Invalid token")
)

// Claims are the contents of an unsubscribe / preferences token.
type Claims struct {
	ExternalID string // the preferences row's user_id
	Email      string
	Action     string // ActionUnsubscribe, ActionResubscribe or ActionManage
	// Exp is the expiry, carried in whole unix seconds; the token is still
	// valid at Exp itself.
	Exp      time.Time
	Category string // "" for all mail
}

// wireClaims is the payload JSON in the reference's field order, so tokens
// signed here read the same as the reference's.
type wireClaims struct {
	ExternalID string `json:"externalId"`
	Email      string `json:"email"`
	Action     string `json:"action"`
	Exp        int64  `json:"exp"`
	Category   string `json:"category,omitempty"`
}

// Sign returns base64url(payload) "." base64url(HMAC-SHA256(secret,
// encoded payload)), both unpadded. Exp must be set: a zero exp is
// "incomplete" to every verifier.
func Sign(secret []byte, c Claims) string {
	payload, _ := json.Marshal(wireClaims{ // strings and an int64 always encode
		ExternalID: c.ExternalID, Email: c.Email, Action: c.Action, Exp: c.Exp.Unix(), Category: c.Category,
	})
	enc := base64.RawURLEncoding.EncodeToString(payload)
	return enc + "." + signature(secret, enc)
}

func signature(secret []byte, encodedPayload string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(encodedPayload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks token against secret at now. Failures are, in order of
// checking: ErrMalformedToken (not two dot-separated parts),
// ErrTokenSignature, ErrMalformedPayload (not base64url JSON),
// ErrIncompletePayload (externalId, email, action or exp missing or falsy
// in the JavaScript sense), ErrTokenExpired (exp before now's unix second)
// and ErrInvalidToken for anything else (a payload that is JSON but not an
// object, fields of the wrong type, an unknown action). The signature is
// computed over the payload segment as received, never re-encoded, so
// tokens the reference issued stay valid.
func Verify(secret []byte, token string, now time.Time) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 2 {
		return Claims{}, ErrMalformedToken
	}
	want := signature(secret, parts[0])
	if subtle.ConstantTimeCompare([]byte(parts[1]), []byte(want)) != 1 {
		return Claims{}, ErrTokenSignature
	}
	// Node's base64url decoder, which the reference uses, accepts padding.
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil {
		return Claims{}, ErrMalformedPayload
	}
	if !json.Valid(raw) {
		return Claims{}, ErrMalformedPayload
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep exp exact and tell numbers from other types
	if err := dec.Decode(&v); err != nil {
		return Claims{}, ErrMalformedPayload
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Claims{}, ErrInvalidToken
	}
	for _, k := range [...]string{"externalId", "email", "action", "exp"} {
		if !truthy(obj[k]) {
			return Claims{}, ErrIncompletePayload
		}
	}
	expNum, ok := obj["exp"].(json.Number)
	if !ok {
		return Claims{}, ErrInvalidToken
	}
	exp, err := expNum.Float64()
	if err != nil || math.IsInf(exp, 0) {
		return Claims{}, ErrInvalidToken
	}
	if exp < float64(now.Unix()) {
		return Claims{}, ErrTokenExpired
	}
	c := Claims{}
	if c.ExternalID, ok = obj["externalId"].(string); !ok {
		return Claims{}, ErrInvalidToken
	}
	if c.Email, ok = obj["email"].(string); !ok {
		return Claims{}, ErrInvalidToken
	}
	if c.Action, ok = obj["action"].(string); !ok {
		return Claims{}, ErrInvalidToken
	}
	switch c.Action {
	case ActionUnsubscribe, ActionResubscribe, ActionManage:
	default:
		return Claims{}, ErrInvalidToken
	}
	switch cat := obj["category"].(type) {
	case nil:
	case string:
		c.Category = cat
	default:
		return Claims{}, ErrInvalidToken
	}
	// Beyond ±2^62 seconds the value means "never" / "long ago"; clamp so
	// the conversion cannot overflow.
	c.Exp = time.Unix(int64(math.Min(exp, 1<<62)), 0)
	return c, nil
}

// truthy is JavaScript truthiness of a decoded JSON value.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		// A number too large for a float64 is ±Infinity in JavaScript:
		// truthy.
		return err != nil || (f != 0 && !math.IsNaN(f))
	default:
		return true // objects and arrays, empty ones too
	}
}
