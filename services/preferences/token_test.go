package preferences

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var testSecret = []byte("s3cret")

// Vectors computed independently (Python hmac/base64) in the reference's
// format.
const (
	// {"externalId":"user_1","email":"ada@x.io","action":"unsubscribe","exp":1893456000,"category":"news"}
	vectorUnsubscribe = "eyJleHRlcm5hbElkIjoidXNlcl8xIiwiZW1haWwiOiJhZGFAeC5pbyIsImFjdGlvbiI6InVuc3Vic2NyaWJlIiwiZXhwIjoxODkzNDU2MDAwLCJjYXRlZ29yeSI6Im5ld3MifQ.WKV8aba3dbeQ9VeNXPZGtplfzsDRmu8mYX2tkozAcZg"
	// Fields in another order plus an unknown field: verified over the
	// received bytes, so it stays valid.
	vectorManageReordered = "eyJlbWFpbCI6ImFkYUB4LmlvIiwiZXhwIjoxODkzNDU2MDAwLCJhY3Rpb24iOiJtYW5hZ2UiLCJleHRlcm5hbElkIjoidXNlcl8xIiwiZXh0cmEiOnsiYSI6WzEsMl19fQ.4B1mKV6xzB8FTVbI2eShRmlCccz7sE3gkJDk6ekY04E"
)

var vectorExp = time.Unix(1893456000, 0) // 2030-01-01

func TestSignMatchesReferenceFormat(t *testing.T) {
	t.Parallel()
	got := Sign(testSecret, Claims{ExternalID: "user_1", Email: "ada@x.io", Action: ActionUnsubscribe, Exp: vectorExp, Category: "news"})
	if got != vectorUnsubscribe {
		t.Fatalf("Sign = %s\nwant   %s", got, vectorUnsubscribe)
	}
}

// signRaw signs an arbitrary payload the way the reference does.
func signRaw(secret []byte, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(enc))
	return enc + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1800000000, 0)
	valid := Sign(testSecret, Claims{ExternalID: "u1", Email: "a@x.io", Action: ActionUnsubscribe, Exp: now.Add(time.Hour)})
	payload, sig, _ := strings.Cut(valid, ".")
	// Flip one character of the payload / signature.
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name    string
		token   string
		secret  []byte
		want    Claims
		wantErr error
	}{
		{"reference vector", vectorUnsubscribe, testSecret,
			Claims{ExternalID: "user_1", Email: "ada@x.io", Action: ActionUnsubscribe, Exp: vectorExp, Category: "news"}, nil},
		{"reordered fields and unknown field", vectorManageReordered, testSecret,
			Claims{ExternalID: "user_1", Email: "ada@x.io", Action: ActionManage, Exp: vectorExp}, nil},
		{"round trip", valid, testSecret, Claims{ExternalID: "u1", Email: "a@x.io", Action: ActionUnsubscribe, Exp: now.Add(time.Hour)}, nil},
		{"exp equal to now is still valid", signRaw(testSecret, `{"externalId":"u","email":"e","action":"manage","exp":1800000000}`), testSecret,
			Claims{ExternalID: "u", Email: "e", Action: ActionManage, Exp: now}, nil},
		{"null category is no category", signRaw(testSecret, `{"externalId":"u","email":"e","action":"resubscribe","exp":1900000000,"category":null}`), testSecret,
			Claims{ExternalID: "u", Email: "e", Action: ActionResubscribe, Exp: time.Unix(1900000000, 0)}, nil},
		{"padded payload segment", func() string {
			p := `{"externalId":"u","email":"e","action":"manage","exp":1900000000}`
			enc := base64.URLEncoding.EncodeToString([]byte(p)) + ""
			m := hmac.New(sha256.New, testSecret)
			m.Write([]byte(enc))
			return enc + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}(), testSecret, Claims{ExternalID: "u", Email: "e", Action: ActionManage, Exp: time.Unix(1900000000, 0)}, nil},

		{"empty", "", testSecret, Claims{}, ErrMalformedToken},
		{"no dot", payload + sig, testSecret, Claims{}, ErrMalformedToken},
		{"three parts", valid + ".x", testSecret, Claims{}, ErrMalformedToken},
		{"tampered signature", payload + "." + flip(sig, 3), testSecret, Claims{}, ErrTokenSignature},
		{"tampered payload", flip(payload, 5) + "." + sig, testSecret, Claims{}, ErrTokenSignature},
		{"wrong secret", valid, []byte("other"), Claims{}, ErrTokenSignature},
		{"padded signature", valid + "=", testSecret, Claims{}, ErrTokenSignature},
		{"empty parts", ".", testSecret, Claims{}, ErrTokenSignature},
		{"payload not base64", signRaw(testSecret, "x")[:0] + func() string {
			enc := "!!!"
			m := hmac.New(sha256.New, testSecret)
			m.Write([]byte(enc))
			return enc + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}(), testSecret, Claims{}, ErrMalformedPayload},
		{"payload not JSON", signRaw(testSecret, `{"externalId":`), testSecret, Claims{}, ErrMalformedPayload},
		{"trailing data", signRaw(testSecret, `{"externalId":"u","email":"e","action":"manage","exp":1900000000} x`), testSecret, Claims{}, ErrMalformedPayload},
		{"missing exp", signRaw(testSecret, `{"externalId":"u","email":"e","action":"manage"}`), testSecret, Claims{}, ErrIncompletePayload},
		{"empty externalId", signRaw(testSecret, `{"externalId":"","email":"e","action":"manage","exp":1900000000}`), testSecret, Claims{}, ErrIncompletePayload},
		{"null email", signRaw(testSecret, `{"externalId":"u","email":null,"action":"manage","exp":1900000000}`), testSecret, Claims{}, ErrIncompletePayload},
		{"false action", signRaw(testSecret, `{"externalId":"u","email":"e","action":false,"exp":1900000000}`), testSecret, Claims{}, ErrIncompletePayload},
		{"zero exp", signRaw(testSecret, `{"externalId":"u","email":"e","action":"manage","exp":0}`), testSecret, Claims{}, ErrIncompletePayload},
		{"empty object", signRaw(testSecret, `{}`), testSecret, Claims{}, ErrIncompletePayload},
		{"expired", Sign(testSecret, Claims{ExternalID: "u", Email: "e", Action: ActionManage, Exp: now.Add(-time.Second)}), testSecret, Claims{}, ErrTokenExpired},
		{"expired before incomplete types", signRaw(testSecret, `{"externalId":1,"email":"e","action":"manage","exp":5}`), testSecret, Claims{}, ErrTokenExpired},
		{"JSON array", signRaw(testSecret, `[1,2]`), testSecret, Claims{}, ErrInvalidToken},
		{"JSON string", signRaw(testSecret, `"token"`), testSecret, Claims{}, ErrInvalidToken},
		{"JSON null", signRaw(testSecret, `null`), testSecret, Claims{}, ErrInvalidToken},
		{"JSON number", signRaw(testSecret, `42`), testSecret, Claims{}, ErrInvalidToken},
		{"exp as string", signRaw(testSecret, `{"externalId":"u","email":"e","action":"manage","exp":"1900000000"}`), testSecret, Claims{}, ErrInvalidToken},
		{"externalId as number", signRaw(testSecret, `{"externalId":7,"email":"e","action":"manage","exp":1900000000}`), testSecret, Claims{}, ErrInvalidToken},
		{"unknown action", signRaw(testSecret, `{"externalId":"u","email":"e","action":"delete","exp":1900000000}`), testSecret, Claims{}, ErrInvalidToken},
		{"category as number", signRaw(testSecret, `{"externalId":"u","email":"e","action":"manage","exp":1900000000,"category":3}`), testSecret, Claims{}, ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Verify(tc.secret, tc.token, now)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got.ExternalID != tc.want.ExternalID || got.Email != tc.want.Email || got.Action != tc.want.Action ||
				got.Category != tc.want.Category || !got.Exp.Equal(tc.want.Exp) {
				t.Fatalf("Verify = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzVerify checks that Verify never panics, that only the documented
// errors come out, and that whatever verifies re-signs to a token that
// verifies to the same claims.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1800000000, 0)
	f.Add(vectorUnsubscribe)
	f.Add(vectorManageReordered)
	f.Add("")
	f.Add(".")
	f.Add("a.b.c")
	f.Add(signRaw(testSecret, `{"externalId":"u","email":"e","action":"manage","exp":1900000000}`))
	f.Add(signRaw(testSecret, `{"externalId":"u","email":"e","action":"unsubscribe","exp":1e300,"category":"x"}`))
	f.Add(signRaw(testSecret, `[]`))
	f.Add(signRaw(testSecret, `{"exp":-1}`))
	known := []error{ErrMalformedToken, ErrTokenSignature, ErrMalformedPayload, ErrIncompletePayload, ErrTokenExpired, ErrInvalidToken}
	f.Fuzz(func(t *testing.T, token string) {
		for _, secret := range [][]byte{testSecret, []byte("other")} {
			c, err := Verify(secret, token, now)
			if err != nil {
				ok := false
				for _, k := range known {
					ok = ok || err == k
				}
				if !ok {
					t.Fatalf("undocumented error %v", err)
				}
				continue
			}
			if c.ExternalID == "" || c.Email == "" || c.Exp.Before(now) {
				t.Fatalf("verified incomplete or expired claims %+v", c)
			}
			again, err := Verify(secret, Sign(secret, c), now)
			if err != nil || again != c {
				t.Fatalf("re-signed claims %+v: %+v, %v", c, again, err)
			}
		}
		// Any signed payload must get past the signature check.
		tok := signRaw(testSecret, token)
		if _, err := Verify(testSecret, tok, now); errors.Is(err, ErrTokenSignature) || errors.Is(err, ErrMalformedToken) {
			t.Fatalf("signed payload %q: %v", token, err)
		}
	})
}
