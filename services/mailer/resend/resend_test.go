package resend_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/services/mailer/resend"
)

// call is one request the fake Resend API received.
type call struct {
	Path           string
	IdempotencyKey string
	Auth           string
	Body           []byte
}

// reply is what the fake answers; an empty Body on a 2xx means a
// generated id (or ids for a batch).
type reply struct {
	Status int
	Body   string
}

// fakeAPI speaks the part of Resend's HTTP API the provider uses. script
// picks the reply to the n-th (0-based) call.
type fakeAPI struct {
	mu     sync.Mutex
	calls  []call
	script func(n int, c call) reply
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := call{Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key"), Auth: r.Header.Get("Authorization"), Body: body}
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if r.Method != http.MethodPost || (r.URL.Path != "/emails" && r.URL.Path != "/emails/batch") {
		http.NotFound(w, r)
		return
	}
	rep := reply{Status: http.StatusOK}
	if f.script != nil {
		rep = f.script(n, c)
	}
	if rep.Status/100 == 2 && rep.Body == "" {
		rep.Body = okBody(n, c)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.Status)
	io.WriteString(w, rep.Body)
}

// okBody answers like Resend: {"id"} for one email, {"data":[{"id"}…]} for
// a batch, ids naming the call and position.
func okBody(n int, c call) string {
	if c.Path == "/emails" {
		return fmt.Sprintf(`{"id":"email-%d"}`, n)
	}
	var reqs []json.RawMessage
	_ = json.Unmarshal(c.Body, &reqs)
	data := make([]map[string]string, len(reqs))
	for i := range reqs {
		data[i] = map[string]string{"id": fmt.Sprintf("batch-%d-%d", n, i)}
	}
	b, _ := json.Marshal(map[string]any{"data": data})
	return string(b)
}

func (f *fakeAPI) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func errorBody(status int, name, msg string) string {
	b, _ := json.Marshal(map[string]any{"statusCode": status, "name": name, "message": msg})
	return string(b)
}

// setup starts the fake and a provider whose sleeps are recorded, not
// waited, and whose jitter is always a quarter of the base delay.
func setup(t *testing.T, script func(n int, c call) reply) (*resend.Provider, *fakeAPI, *[]time.Duration) {
	t.Helper()
	api := &fakeAPI{script: script}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	var delays []time.Duration
	p, err := resend.New(resend.Config{
		APIKey:  "re_test",
		BaseURL: srv.URL,
		Sleep: func(_ context.Context, d time.Duration) error {
			delays = append(delays, d)
			return nil
		},
		Jitter: func(max time.Duration) time.Duration { return max / 4 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, api, &delays
}

func message(key string) provider.Message {
	return provider.Message{
		From:           "Acme <hello@acme.test>",
		To:             []string{"ada@example.com"},
		Subject:        "Welcome",
		HTML:           "<p>Hi</p>",
		Text:           "Hi",
		ReplyTo:        []string{"support@acme.test"},
		Headers:        map[string]string{"List-Unsubscribe": "<https://acme.test/u>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
		Tags:           []provider.Tag{{Name: "template", Value: "welcome"}},
		IdempotencyKey: key,
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	p, api, delays := setup(t, nil)
	sent, err := p.Send(context.Background(), message("send-1"))
	if err != nil {
		t.Fatal(err)
	}
	if sent.ID != "email-0" {
		t.Errorf("id = %q, want email-0", sent.ID)
	}
	calls := api.Calls()
	if len(calls) != 1 || len(*delays) != 0 {
		t.Fatalf("%d calls, %d sleeps; want 1, 0", len(calls), len(*delays))
	}
	c := calls[0]
	if c.IdempotencyKey != "send-1" {
		t.Errorf("Idempotency-Key = %q, want send-1", c.IdempotencyKey)
	}
	if c.Auth != "Bearer re_test" {
		t.Errorf("Authorization = %q", c.Auth)
	}
	var got struct {
		From    string            `json:"from"`
		To      []string          `json:"to"`
		Subject string            `json:"subject"`
		HTML    string            `json:"html"`
		Text    string            `json:"text"`
		ReplyTo string            `json:"reply_to"`
		Headers map[string]string `json:"headers"`
		Tags    []provider.Tag    `json:"tags"`
	}
	if err := json.Unmarshal(c.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.From != "Acme <hello@acme.test>" || len(got.To) != 1 || got.To[0] != "ada@example.com" ||
		got.Subject != "Welcome" || got.HTML != "<p>Hi</p>" || got.Text != "Hi" || got.ReplyTo != "support@acme.test" {
		t.Errorf("body = %s", c.Body)
	}
	if got.Headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" || got.Headers["List-Unsubscribe"] != "<https://acme.test/u>" {
		t.Errorf("headers = %v", got.Headers)
	}
	if len(got.Tags) != 1 || got.Tags[0] != (provider.Tag{Name: "template", Value: "welcome"}) {
		t.Errorf("tags = %v", got.Tags)
	}
}

func TestSendNoIdempotencyKey(t *testing.T) {
	t.Parallel()
	p, api, _ := setup(t, nil)
	if _, err := p.Send(context.Background(), message("")); err != nil {
		t.Fatal(err)
	}
	if k := api.Calls()[0].IdempotencyKey; k != "" {
		t.Errorf("Idempotency-Key = %q, want none", k)
	}
}

func TestSendRetries(t *testing.T) {
	t.Parallel()
	const base = resend.DefaultBaseDelay
	tests := []struct {
		name      string
		replies   []reply // then 200 for the rest
		wantCalls int
		wantErr   bool
		retryable bool
		status    int
		message   string
	}{
		{
			name:      "429 then 500 then success",
			replies:   []reply{{429, errorBody(429, "rate_limit_exceeded", "Too many requests")}, {500, errorBody(500, "internal_server_error", "boom")}},
			wantCalls: 3,
		},
		{
			name:      "502 without json then success",
			replies:   []reply{{502, "bad gateway"}},
			wantCalls: 2,
		},
		{
			name:      "success without an id is retried",
			replies:   []reply{{200, `{}`}},
			wantCalls: 2,
		},
		{
			name:      "500 exhausts the retries",
			replies:   []reply{{500, ""}, {500, ""}, {500, ""}, {500, ""}},
			wantCalls: 4, wantErr: true, retryable: true, status: 500,
		},
		{
			name:      "429 exhausts the retries",
			replies:   []reply{{429, `{"message":"slow down"}`}, {429, ""}, {429, ""}, {429, `{"message":"slow down"}`}},
			wantCalls: 4, wantErr: true, retryable: true, status: 429, message: "slow down",
		},
		{
			name:      "422 fails at once",
			replies:   []reply{{422, errorBody(422, "validation_error", "Invalid `to` field.")}},
			wantCalls: 1, wantErr: true, status: 422, message: "Failed to send email: Invalid `to` field. (status 422)",
		},
		{
			name:      "400 fails at once",
			replies:   []reply{{400, errorBody(400, "validation_error", "bad")}},
			wantCalls: 1, wantErr: true, status: 400, message: "bad",
		},
		{
			name:      "401 fails at once",
			replies:   []reply{{401, errorBody(401, "missing_api_key", "Missing API key")}},
			wantCalls: 1, wantErr: true, status: 401, message: "Missing API key",
		},
		{
			name:      "403 after a 500 fails at once",
			replies:   []reply{{500, ""}, {403, errorBody(403, "invalid_api_key", "API key is invalid")}},
			wantCalls: 2, wantErr: true, status: 403, message: "API key is invalid",
		},
		{
			name:      "409 concurrent request with the same key is retried",
			replies:   []reply{{409, errorBody(409, "concurrent_idempotent_requests", "Same idempotency key used while original request is still in progress.")}},
			wantCalls: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, api, delays := setup(t, func(n int, _ call) reply {
				if n < len(tt.replies) {
					return tt.replies[n]
				}
				return reply{Status: 200}
			})
			sent, err := p.Send(context.Background(), message("k"))
			calls := api.Calls()
			if len(calls) != tt.wantCalls {
				t.Errorf("%d calls, want %d", len(calls), tt.wantCalls)
			}
			for i, c := range calls {
				if c.IdempotencyKey != "k" {
					t.Errorf("call %d: Idempotency-Key = %q", i, c.IdempotencyKey)
				}
			}
			// One sleep between consecutive attempts, doubling from base,
			// each with the (fixed) jitter.
			if len(*delays) != tt.wantCalls-1 {
				t.Errorf("%d sleeps, want %d", len(*delays), tt.wantCalls-1)
			}
			for i, d := range *delays {
				if want := base<<i + base/4; d != want {
					t.Errorf("sleep %d = %v, want %v", i, d, want)
				}
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("email-%d", tt.wantCalls-1); sent.ID != want {
					t.Errorf("id = %q, want %q", sent.ID, want)
				}
				return
			}
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *provider.Error", err, err)
			}
			if pe.Retryable != tt.retryable || pe.StatusCode != tt.status {
				t.Errorf("retryable %v status %d, want %v %d (%v)", pe.Retryable, pe.StatusCode, tt.retryable, tt.status, err)
			}
			if provider.Retryable(err) != tt.retryable {
				t.Errorf("provider.Retryable = %v", provider.Retryable(err))
			}
			if !strings.Contains(err.Error(), tt.message) || strings.Contains(err.Error(), "[ERROR]") {
				t.Errorf("err = %q, want it to contain %q", err, tt.message)
			}
		})
	}
}

func TestSendNetworkError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more: connection refused
	sleeps := 0
	p, err := resend.New(resend.Config{
		APIKey: "re_test", BaseURL: url, MaxRetries: 2,
		Sleep: func(context.Context, time.Duration) error { sleeps++; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Send(context.Background(), message("k"))
	var pe *provider.Error
	if !errors.As(err, &pe) || !pe.Retryable || pe.StatusCode != 0 {
		t.Fatalf("err = %#v, want a retryable provider error without status", err)
	}
	if sleeps != 2 {
		t.Errorf("%d sleeps, want 2 (MaxRetries)", sleeps)
	}
}

func TestSendNoRetries(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{script: func(int, call) reply { return reply{Status: 503} }}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	p, err := resend.New(resend.Config{APIKey: "re_test", BaseURL: srv.URL, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Send(context.Background(), message("k"))
	if !provider.Retryable(err) || len(api.Calls()) != 1 {
		t.Fatalf("err = %v after %d calls, want retryable after 1", err, len(api.Calls()))
	}
}

func TestSendCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{script: func(int, call) reply { return reply{Status: 500} }}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	p, err := resend.New(resend.Config{APIKey: "re_test", BaseURL: srv.URL, BaseDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Send(ctx, message("k"))
	if !provider.Retryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a retryable deadline error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("waited %v: the backoff ignored the context", time.Since(start))
	}
}

func TestBackoffDelays(t *testing.T) {
	t.Parallel()
	var delays []time.Duration
	api := &fakeAPI{script: func(int, call) reply { return reply{Status: 500} }}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	p, err := resend.New(resend.Config{
		APIKey: "re_test", BaseURL: srv.URL, MaxRetries: 8,
		Sleep:  func(_ context.Context, d time.Duration) error { delays = append(delays, d); return nil },
		Jitter: func(max time.Duration) time.Duration { return max }, // the largest jitter allowed
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = p.Send(context.Background(), message("k"))
	// min(500ms·2ⁿ + 500ms, 30s)
	want := []time.Duration{1 * time.Second, 1500 * time.Millisecond, 2500 * time.Millisecond, 4500 * time.Millisecond,
		8500 * time.Millisecond, 16500 * time.Millisecond, 30 * time.Second, 30 * time.Second}
	if fmt.Sprint(delays) != fmt.Sprint(want) {
		t.Errorf("delays = %v, want %v", delays, want)
	}
}

func TestDefaultJitterInRange(t *testing.T) {
	t.Parallel()
	var delays []time.Duration
	api := &fakeAPI{script: func(int, call) reply { return reply{Status: 500} }}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	p, err := resend.New(resend.Config{
		APIKey: "re_test", BaseURL: srv.URL, BaseDelay: 100 * time.Millisecond, MaxRetries: 3,
		Sleep: func(_ context.Context, d time.Duration) error { delays = append(delays, d); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = p.Send(context.Background(), message("k"))
	for i, d := range delays {
		lo := 100 * time.Millisecond << i
		if d < lo || d > lo+100*time.Millisecond {
			t.Errorf("sleep %d = %v, want within [%v, %v]", i, d, lo, lo+100*time.Millisecond)
		}
	}
}

func messages(n int) []provider.Message {
	msgs := make([]provider.Message, n)
	for i := range msgs {
		msgs[i] = message(fmt.Sprintf("send-%d", i))
		msgs[i].To = []string{fmt.Sprintf("user%d@example.com", i)}
	}
	return msgs
}

func batchTo(t *testing.T, c call) []string {
	t.Helper()
	var reqs []struct {
		To []string `json:"to"`
	}
	if err := json.Unmarshal(c.Body, &reqs); err != nil {
		t.Fatalf("batch body: %v", err)
	}
	var to []string
	for _, r := range reqs {
		to = append(to, r.To...)
	}
	return to
}

func TestSendBatchChunks(t *testing.T) {
	t.Parallel()
	p, api, _ := setup(t, nil)
	msgs := messages(250)
	sent, err := p.SendBatch(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	calls := api.Calls()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3", len(calls))
	}
	next := 0
	for i, size := range []int{100, 100, 50} {
		c := calls[i]
		if c.Path != "/emails/batch" {
			t.Errorf("call %d path = %q", i, c.Path)
		}
		to := batchTo(t, c)
		if len(to) != size {
			t.Fatalf("call %d carried %d messages, want %d", i, len(to), size)
		}
		for _, addr := range to {
			if want := fmt.Sprintf("user%d@example.com", next); addr != want {
				t.Fatalf("message %d to %q, want %q (order kept)", next, addr, want)
			}
			next++
		}
		if !strings.HasPrefix(c.IdempotencyKey, "batch-") {
			t.Errorf("call %d Idempotency-Key = %q", i, c.IdempotencyKey)
		}
	}
	if calls[0].IdempotencyKey == calls[1].IdempotencyKey {
		t.Error("different chunks share an idempotency key")
	}
	if len(sent) != 250 || sent[0].ID != "batch-0-0" || sent[99].ID != "batch-0-99" || sent[100].ID != "batch-1-0" || sent[249].ID != "batch-2-49" {
		t.Errorf("ids = %d, first %v, last %v", len(sent), sent[0], sent[len(sent)-1])
	}

	// The same chunk sent again carries the same key, so Resend can drop it.
	p2, api2, _ := setup(t, nil)
	if _, err := p2.SendBatch(context.Background(), msgs[:100]); err != nil {
		t.Fatal(err)
	}
	if k := api2.Calls()[0].IdempotencyKey; k != calls[0].IdempotencyKey {
		t.Errorf("repeat key %q, first %q", k, calls[0].IdempotencyKey)
	}
}

func TestSendBatchChunkRetriedAndAborted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		script    func(n int) reply
		wantCalls int
		wantErr   bool
		retryable bool
	}{
		{
			name: "a retried chunk then the rest",
			script: func(n int) reply {
				if n == 1 || n == 2 {
					return reply{Status: 500}
				}
				return reply{Status: 200}
			},
			wantCalls: 5, // chunk 1, chunk 2 ×3, chunk 3
		},
		{
			name: "a rejected chunk aborts the rest",
			script: func(n int) reply {
				if n == 1 {
					return reply{422, errorBody(422, "validation_error", "Invalid `from` field.")}
				}
				return reply{Status: 200}
			},
			wantCalls: 2, wantErr: true,
		},
		{
			name:      "an exhausted chunk aborts the rest",
			script:    func(n int) reply { return reply{Status: 500 + n%2} }, // 500, 501, …
			wantCalls: 4, wantErr: true, retryable: true,
		},
		{
			name: "a short batch answer is retried",
			script: func(n int) reply {
				if n == 0 {
					return reply{200, `{"data":[{"id":"x"}]}`}
				}
				return reply{Status: 200}
			},
			wantCalls: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, api, _ := setup(t, func(n int, _ call) reply { return tt.script(n) })
			sent, err := p.SendBatch(context.Background(), messages(201))
			if got := len(api.Calls()); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
			if !tt.wantErr {
				if err != nil || len(sent) != 201 {
					t.Fatalf("sent %d, err %v", len(sent), err)
				}
				return
			}
			if err == nil || sent != nil {
				t.Fatalf("sent %d, err %v; want an error and no results", len(sent), err)
			}
			if provider.Retryable(err) != tt.retryable {
				t.Errorf("retryable = %v, want %v (%v)", provider.Retryable(err), tt.retryable, err)
			}
		})
	}
}

func TestSendBatchWithoutKeys(t *testing.T) {
	t.Parallel()
	p, api, _ := setup(t, nil)
	msgs := messages(3)
	msgs[1].IdempotencyKey = ""
	if _, err := p.SendBatch(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if k := api.Calls()[0].IdempotencyKey; k != "" {
		t.Errorf("Idempotency-Key = %q, want none when a message has no key", k)
	}
}

func TestSendBatchEmpty(t *testing.T) {
	t.Parallel()
	p, api, _ := setup(t, nil)
	sent, err := p.SendBatch(context.Background(), nil)
	if err != nil || len(sent) != 0 || len(api.Calls()) != 0 {
		t.Fatalf("sent %v, err %v, %d calls", sent, err, len(api.Calls()))
	}
}

func TestBaseURLWithPath(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{}
	mux := http.NewServeMux()
	mux.Handle("/proxy/", http.StripPrefix("/proxy", api))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, err := resend.New(resend.Config{APIKey: "re_test", BaseURL: srv.URL + "/proxy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(context.Background(), message("k")); err != nil {
		t.Fatal(err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]resend.Config{
		"no key":       {},
		"relative url": {APIKey: "k", BaseURL: "api.resend.com"},
	} {
		if _, err := resend.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	p, err := resend.New(resend.Config{APIKey: "k"})
	if err != nil || p.Name() != "resend" {
		t.Fatalf("p %v err %v", p, err)
	}
}
