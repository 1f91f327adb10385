package resendhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/mailer/resendhook"
)

// vectors are the golden signatures in testdata/vectors.json, computed
// outside Go so the library is checked against the scheme, not itself.
type vectors struct {
	Secret     string            `json:"secret"`
	ID         string            `json:"svix_id"`
	Timestamp  string            `json:"svix_timestamp"`
	Signatures map[string]string `json:"signatures"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func readBody(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (v vectors) now(t testing.TB) time.Time {
	sec, err := strconv.ParseInt(v.Timestamp, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(sec, 0).Add(30 * time.Second) // delivered a little later
}

func headers(id, ts, sig string) http.Header {
	h := http.Header{}
	h.Set("svix-id", id)
	h.Set("svix-timestamp", ts)
	h.Set("svix-signature", sig)
	return h
}

// sign is the Svix scheme written out, for payloads made up in tests.
func sign(secret, id string, ts int64, body []byte) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifyGolden(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	created := time.Date(2024, 11, 22, 23, 41, 12, 126e6, time.UTC)
	dataCreated := time.Date(2024, 11, 22, 23, 41, 11, 894719e3, time.UTC)

	ev, err := resendhook.Verify(v.Secret, headers(v.ID, v.Timestamp, v.Signatures["bounced.json"]), readBody(t, "bounced.json"), v.now(t))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != resendhook.TypeBounced || !ev.Known() || !ev.CreatedAt.Equal(created) {
		t.Errorf("event %q at %v", ev.Type, ev.CreatedAt)
	}
	d := ev.Data
	if d.EmailID != "56761188-7520-42d8-8898-ff6fc54ce618" || d.From != "Acme <onboarding@resend.dev>" ||
		len(d.To) != 1 || d.To[0] != "delivered@resend.dev" || d.Subject != "Sending this example" || !d.CreatedAt.Equal(dataCreated) {
		t.Errorf("data = %+v", d)
	}
	if d.Bounce == nil || d.Bounce.Type != "Permanent" || d.Bounce.SubType != "Suppressed" || !strings.HasPrefix(d.Bounce.Message, "The recipient's email address") {
		t.Errorf("bounce = %+v", d.Bounce)
	}
	if d.Click != nil {
		t.Errorf("click on a bounce: %+v", d.Click)
	}

	ev, err = resendhook.Verify(v.Secret, headers(v.ID, v.Timestamp, v.Signatures["clicked.json"]), readBody(t, "clicked.json"), v.now(t))
	if err != nil {
		t.Fatal(err)
	}
	c := ev.Data.Click
	if ev.Type != resendhook.TypeClicked || c == nil || c.Link != "https://resend.com" || c.IPAddress != "122.115.53.11" ||
		!strings.HasPrefix(c.UserAgent, "Mozilla/5.0") || !c.Timestamp.Equal(time.Date(2024, 11, 24, 5, 0, 57, 163e6, time.UTC)) {
		t.Errorf("click = %+v", c)
	}
	if ev.Data.Bounce != nil || !ev.Data.CreatedAt.Equal(dataCreated) {
		t.Errorf("data = %+v", ev.Data)
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	body := readBody(t, "bounced.json")
	good := v.Signatures["bounced.json"]
	now := v.now(t)
	ts, _ := strconv.ParseInt(v.Timestamp, 10, 64)
	otherSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret of 32 bytes......"))

	tests := []struct {
		name    string
		secret  string
		headers http.Header
		body    []byte
		now     time.Time
		want    error // nil: accepted
	}{
		{name: "valid", headers: headers(v.ID, v.Timestamp, good)},
		{name: "one of several signatures matches", headers: headers(v.ID, v.Timestamp, "v1,c2lnbmF0dXJl "+good+" v1,b3RoZXI=")},
		{name: "other versions are skipped", headers: headers(v.ID, v.Timestamp, "v2,"+strings.TrimPrefix(good, "v1,")+" "+good)},
		{name: "only another version", headers: headers(v.ID, v.Timestamp, "v2,"+strings.TrimPrefix(good, "v1,")), want: resendhook.ErrInvalidSignature},
		{name: "no matching signature among several", headers: headers(v.ID, v.Timestamp, "v1,c2lnbmF0dXJl v1,b3RoZXI="), want: resendhook.ErrInvalidSignature},
		{name: "wrong secret", secret: otherSecret, headers: headers(v.ID, v.Timestamp, good), want: resendhook.ErrInvalidSignature},
		{name: "no secret", secret: "-", headers: headers(v.ID, v.Timestamp, good), want: resendhook.ErrNoSecret},
		{name: "secret not base64", secret: "whsec_not*base64", headers: headers(v.ID, v.Timestamp, good), want: resendhook.ErrInvalidSecret},
		{name: "missing svix-id", headers: headers("", v.Timestamp, good), want: resendhook.ErrMissingHeaders},
		{name: "missing svix-timestamp", headers: headers(v.ID, "", good), want: resendhook.ErrMissingHeaders},
		{name: "missing svix-signature", headers: headers(v.ID, v.Timestamp, ""), want: resendhook.ErrMissingHeaders},
		{name: "no headers", headers: http.Header{}, want: resendhook.ErrMissingHeaders},
		{name: "unbranded webhook-* headers", headers: http.Header{
			"Webhook-Id": {v.ID}, "Webhook-Timestamp": {v.Timestamp}, "Webhook-Signature": {good},
		}, want: resendhook.ErrMissingHeaders},
		{name: "timestamp not a number", headers: headers(v.ID, "yesterday", good), want: resendhook.ErrInvalidTimestamp},
		{name: "timestamp 5 minutes old", headers: headers(v.ID, v.Timestamp, good), now: time.Unix(ts, 0).Add(5 * time.Minute)},
		{name: "timestamp older than 5 minutes", headers: headers(v.ID, v.Timestamp, good), now: time.Unix(ts, 0).Add(5*time.Minute + time.Second), want: resendhook.ErrTimestampRange},
		{name: "timestamp days old", headers: headers(v.ID, v.Timestamp, good), now: time.Unix(ts, 0).Add(72 * time.Hour), want: resendhook.ErrTimestampRange},
		{name: "timestamp more than 5 minutes ahead", headers: headers(v.ID, v.Timestamp, good), now: time.Unix(ts, 0).Add(-6 * time.Minute), want: resendhook.ErrTimestampRange},
		{name: "timestamp changed", headers: headers(v.ID, strconv.FormatInt(ts+1, 10), good), want: resendhook.ErrInvalidSignature},
		{name: "id changed", headers: headers(v.ID+"x", v.Timestamp, good), want: resendhook.ErrInvalidSignature},
		{name: "body tampered", headers: headers(v.ID, v.Timestamp, good), body: []byte(strings.Replace(string(body), "Permanent", "Transient", 1)), want: resendhook.ErrInvalidSignature},
		{name: "body with a trailing newline", headers: headers(v.ID, v.Timestamp, good), body: append(append([]byte{}, body...), '\n'), want: resendhook.ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret := v.Secret
			switch tt.secret {
			case "":
			case "-":
				secret = ""
			default:
				secret = tt.secret
			}
			b := body
			if tt.body != nil {
				b = tt.body
			}
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			ev, err := resendhook.Verify(secret, tt.headers, b, at)
			if tt.want == nil {
				if err != nil || ev.Type != resendhook.TypeBounced {
					t.Fatalf("event %q, err %v; want accepted", ev.Type, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if ev.Type != "" {
				t.Errorf("rejected webhook returned event %q", ev.Type)
			}
		})
	}
}

// TestVerifyNow signs with the real clock, as Resend does, for the path
// the handler takes.
func TestVerifyNow(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	body := []byte(`{"type":"email.delivered","created_at":"2025-01-01T00:00:00Z","data":{"email_id":"e1","to":["a@example.com"]}}`)
	now := time.Now()
	h := headers("msg_now", strconv.FormatInt(now.Unix(), 10), sign(v.Secret, "msg_now", now.Unix(), body))
	ev, err := resendhook.Verify(v.Secret, h, body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != resendhook.TypeDelivered || ev.Data.EmailID != "e1" {
		t.Errorf("event = %+v", ev)
	}
}

func TestVerifyPayloads(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	now := time.Unix(1_750_000_000, 0)
	tests := []struct {
		name    string
		body    string
		wantErr bool
		check   func(t *testing.T, ev resendhook.Event)
	}{
		{name: "malformed json", body: `{"type":`, wantErr: true},
		{name: "not an object", body: `["email.sent"]`, wantErr: true},
		{name: "null", body: `null`, wantErr: true},
		{name: "no type", body: `{"data":{"email_id":"e"}}`, wantErr: true},
		{name: "data of the wrong shape", body: `{"type":"email.sent","data":"e"}`, wantErr: true},
		{name: "unknown type is returned", body: `{"type":"contact.created","created_at":"2025-01-01T00:00:00Z","data":{"id":"c"}}`,
			check: func(t *testing.T, ev resendhook.Event) {
				if ev.Type != "contact.created" || ev.Known() {
					t.Errorf("event %q known %v", ev.Type, ev.Known())
				}
			}},
		{name: "to as one string", body: `{"type":"email.complained","data":{"email_id":"e","to":"a@example.com"}}`,
			check: func(t *testing.T, ev resendhook.Event) {
				if len(ev.Data.To) != 1 || ev.Data.To[0] != "a@example.com" {
					t.Errorf("to = %v", ev.Data.To)
				}
			}},
		{name: "a timestamp of the wrong JSON type", body: `{"type":"email.opened","created_at":"last tuesday","data":{"email_id":"e","created_at":12}}`, wantErr: true},
		{name: "unparsable timestamp strings are left zero", body: `{"type":"email.opened","created_at":"last tuesday","data":{"email_id":"e","created_at":"soon"}}`,
			check: func(t *testing.T, ev resendhook.Event) {
				if !ev.CreatedAt.IsZero() || !ev.Data.CreatedAt.IsZero() || ev.Data.EmailID != "e" {
					t.Errorf("event = %+v", ev)
				}
			}},
		{name: "sent without data", body: `{"type":"email.sent"}`,
			check: func(t *testing.T, ev resendhook.Event) {
				if ev.Type != resendhook.TypeSent || ev.Data.EmailID != "" {
					t.Errorf("event = %+v", ev)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := []byte(tt.body)
			ev, err := resendhook.Verify(v.Secret, headers("msg_1", strconv.FormatInt(now.Unix(), 10), sign(v.Secret, "msg_1", now.Unix(), body)), body, now)
			if tt.wantErr {
				if !errors.Is(err, resendhook.ErrInvalidPayload) {
					t.Fatalf("err = %v, want ErrInvalidPayload", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, ev)
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	ev, err := resendhook.Parse(readBody(t, "bounced.json"))
	if err != nil || ev.Type != resendhook.TypeBounced || ev.Data.Bounce == nil {
		t.Fatalf("event %+v, err %v", ev, err)
	}
	if _, err := resendhook.Parse([]byte("{}")); !errors.Is(err, resendhook.ErrInvalidPayload) {
		t.Errorf("err = %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	v := loadVectors(f)
	for _, name := range []string{"bounced.json", "clicked.json"} {
		f.Add(v.ID, v.Timestamp, v.Signatures[name], readBody(f, name))
	}
	f.Add("", "", "", []byte{})
	f.Add("msg", "-1", "v1", []byte("null"))
	f.Add("msg", "9223372036854775807", "v1,,, v1 ,", []byte(`{"type":"x","data":{"to":[1]}}`))
	f.Add("msg", "1732318872", "v1,/49bIz2sYWaaU2gqgEOrl3wi+Mqnp2ItsBnQ4FWCeJ0=", []byte(`{"type":"email.clicked","data":{"click":{}}}`))
	now := v.now(f)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h["Svix-Id"] = []string{id}
		h["Svix-Timestamp"] = []string{ts}
		h["Svix-Signature"] = []string{sig}
		ev, err := resendhook.Verify(v.Secret, h, body, now)
		if err != nil {
			if ev.Type != "" {
				t.Fatalf("error %v with event %q", err, ev.Type)
			}
			return
		}
		// Accepted: the signature must really be one of the v1 entries,
		// and the timestamp within the window.
		sec, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil {
			t.Fatalf("accepted timestamp %q", ts)
		}
		if d := now.Sub(time.Unix(sec, 0)); d > resendhook.Tolerance || d < -resendhook.Tolerance {
			t.Fatalf("accepted timestamp %d, %v from now", sec, d)
		}
		want := sign(v.Secret, id, sec, body)
		found := false
		for _, s := range strings.Split(sig, " ") {
			if s == want {
				found = true
			}
		}
		if !found {
			t.Fatalf("accepted signature %q, want %q among them", sig, want)
		}
		if ev.Type == "" {
			t.Fatal("accepted an event without a type")
		}
	})
}
