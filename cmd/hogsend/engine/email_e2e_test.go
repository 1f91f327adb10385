package engine

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
	"github.com/seed-eeb360f6/hogsend/services/mailer"
)

// fakeResend speaks the part of Resend's HTTP API the provider uses and
// records what it was sent. The first answer is a 500, so the retry path
// runs too.
type fakeResend struct {
	mu       sync.Mutex
	calls    int
	accepted map[string]map[string]any // by Idempotency-Key
}

func (f *fakeResend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if r.URL.Path != "/emails" || r.Header.Get("Authorization") != "Bearer re_test" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if f.calls == 1 {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"statusCode":500,"message":"internal","name":"internal_server_error"}`)
		return
	}
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	key := r.Header.Get("Idempotency-Key")
	if _, seen := f.accepted[key]; !seen {
		f.accepted[key] = body
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"re_`+strconv.Itoa(len(f.accepted))+`"}`)
}

// With RESEND_API_KEY set, POST /v1/emails goes through Resend (here a
// fake speaking its API): the provider gets the send's idempotency key,
// the one-click headers and both parts, and the same Idempotency-Key on
// the API sends one email.
func TestEmailThroughResend(t *testing.T) {
	t.Parallel()
	fake := &fakeResend{accepted: map[string]map[string]any{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg := testConfig(t)
	cfg.ResendAPIKey, cfg.ResendBaseURL, cfg.EmailRate = "re_test", srv.URL+"/", 100
	_, admin := startMain(t, cfg)
	ctx := ctxT(t)
	var first map[string]any
	for range 2 {
		var res map[string]any
		_, err := admin.DoRequest(ctx, http.MethodPost, "/v1/emails", map[string]any{"to": "ada@example.com", "template": "welcome", "props": map[string]any{"name": "Ada"}}, &res,
			apiclient.WithHeader("Idempotency-Key", "receipt-1"))
		if err != nil {
			t.Fatal(err)
		}
		if res["status"] != "sent" {
			t.Fatalf("answer %v", res)
		}
		if first == nil {
			first = res
		} else if res["emailSendId"] != first["emailSendId"] {
			t.Errorf("the repeated key answered another send: %v vs %v", res, first)
		}
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.accepted) != 1 {
		t.Fatalf("Resend accepted %d emails, want 1", len(fake.accepted))
	}
	for key, body := range fake.accepted {
		if key != first["emailSendId"] {
			t.Errorf("Idempotency-Key %q, want the send id %v", key, first["emailSendId"])
		}
		headers, _ := body["headers"].(map[string]any)
		if headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" || body["text"] == "" || body["html"] == "" {
			t.Errorf("sent %v", body)
		}
	}
}

// The lists map of an event sets list membership for the contact's
// address; the mailer's check honours it with each list's polarity
// (newsletter is opt-in, product-updates opt-out).
func TestListsFromEvents(t *testing.T) {
	t.Parallel()
	_, admin := startApp(t)
	ctx := ctxT(t)
	send := func(category string) string {
		var res map[string]any
		if _, err := admin.DoRequest(ctx, http.MethodPost, "/v1/emails", map[string]any{"to": "lin@example.com", "template": "nudge", "category": category}, &res); err != nil {
			t.Fatal(err)
		}
		return res["status"].(string)
	}
	if got := send("newsletter"); got != "unsubscribed" {
		t.Fatalf("opt-in list without a yes: %s, want unsubscribed", got)
	}
	if _, err := admin.SendEvent(ctx, apiclient.Event{Name: "settings_saved", UserID: "lin", Email: "lin@example.com",
		Lists: map[string]bool{"newsletter": true, "product-updates": false}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return send("newsletter") == "sent" },
		func() string { return "the newsletter send after opting in" })
	if got := send("product-updates"); got != "unsubscribed" {
		t.Errorf("opted-out list: %s, want unsubscribed", got)
	}
}

// refusingResend refuses the first message for good (422) and accepts the
// next ones.
type refusingResend struct {
	mu    sync.Mutex
	calls int
}

func (f *refusingResend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	w.Header().Set("Content-Type", "application/json")
	if f.calls == 1 {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, `{"statusCode":422,"message":"Invalid from address","name":"validation_error"}`)
		return
	}
	_, _ = io.WriteString(w, `{"id":"re_`+strconv.Itoa(f.calls)+`"}`)
}

// A send the provider refuses answers 500 and releases its key: the same
// Idempotency-Key again really sends, in a second row (spec 20 scenario 6);
// a NUL byte in a field is a 400.
func TestRefusedSendCanBeRetriedWithItsKey(t *testing.T) {
	t.Parallel()
	fake := &refusingResend{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg := testConfig(t)
	cfg.ResendAPIKey, cfg.ResendBaseURL, cfg.EmailRate = "re_test", srv.URL+"/", 100
	_, admin := startMain(t, cfg)
	ctx := ctxT(t)
	body := map[string]any{"to": "ada@example.com", "template": "welcome"}
	var res map[string]any
	_, err := admin.DoRequest(ctx, http.MethodPost, "/v1/emails", body, &res, apiclient.WithHeader("Idempotency-Key", "k-refused"))
	wantAPIError(t, err, http.StatusInternalServerError, "", "")
	if _, err := admin.DoRequest(ctx, http.MethodPost, "/v1/emails", body, &res, apiclient.WithHeader("Idempotency-Key", "k-refused")); err != nil {
		t.Fatal(err)
	}
	if res["status"] != "sent" {
		t.Errorf("retry with the key: %v, want sent", res)
	}
	_, err = admin.DoRequest(ctx, http.MethodPost, "/v1/emails", map[string]any{"to": "ada@example.com", "template": "welcome", "subject": "a\u0000b"}, &res)
	wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "subject")
}

// The mailer's lease outlasts the slowest attempt: with a slow rate limit
// the wait for every message a process holds, plus the provider's retries.
func TestMailerLease(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rate   float64
		resend bool
		want   time.Duration
	}{
		{0, false, mailer.DefaultLease},
		{100, false, mailer.DefaultLease},
		{0, true, mailer.DefaultLease},                  // Resend's 2/s: 400 s + 10 min
		{0.5, false, 1600*time.Second + 10*time.Minute}, // 800 held at 0.5/s
	} {
		m := &Main{Config: Config{EmailRate: tc.rate}}
		if tc.resend {
			m.Config.ResendAPIKey = "re_x"
		}
		if got := m.mailerLease(); got != tc.want {
			t.Errorf("rate %v resend %v: lease %s, want %s", tc.rate, tc.resend, got, tc.want)
		}
	}
}
