package posthogsync_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakePostHog speaks PostHog's batch capture endpoint, POST /batch/, and
// records every message it accepted.
type fakePostHog struct {
	srv *httptest.Server

	mu       sync.Mutex
	msgs     []phMessage
	apiKeys  map[string]bool
	requests int
	// status is the answer to every request; 0 means 200.
	status int
	errs   []string
}

// phMessage is one element of a batch, as posthog-go encodes a capture.
type phMessage struct {
	Type       string         `json:"type"`
	Event      string         `json:"event"`
	DistinctID string         `json:"distinct_id"`
	UUID       string         `json:"uuid"`
	Timestamp  time.Time      `json:"timestamp"`
	Properties map[string]any `json:"properties"`
}

func newFakePostHog(t *testing.T, status int) *fakePostHog {
	t.Helper()
	f := &fakePostHog{apiKeys: map[string]bool{}, status: status}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePostHog) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if r.Method != http.MethodPost || r.URL.Path != "/batch/" {
		f.errs = append(f.errs, "unexpected request "+r.Method+" "+r.URL.Path)
		http.NotFound(w, r)
		return
	}
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			f.errs = append(f.errs, "gzip: "+err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	var batch struct {
		APIKey string      `json:"api_key"`
		Batch  []phMessage `json:"batch"`
	}
	if err := json.NewDecoder(body).Decode(&batch); err != nil {
		f.errs = append(f.errs, "decode batch: "+err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if f.status != 0 && f.status != http.StatusOK {
		http.Error(w, "unavailable", f.status)
		return
	}
	f.apiKeys[batch.APIKey] = true
	f.msgs = append(f.msgs, batch.Batch...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":1}`)
}

// messages returns what was accepted so far, in arrival order.
func (f *fakePostHog) messages() []phMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]phMessage(nil), f.msgs...)
}

func (f *fakePostHog) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// check fails the test on malformed requests and foreign API keys.
func (f *fakePostHog) check(t *testing.T, apiKey string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.errs {
		t.Errorf("fake posthog: %s", e)
	}
	for k := range f.apiKeys {
		if k != apiKey {
			t.Errorf("fake posthog: api_key %q, want %q", k, apiKey)
		}
	}
}

// hasDistinctID reports whether a message for id arrived.
func (f *fakePostHog) hasDistinctID(id string) bool {
	for _, m := range f.messages() {
		if m.DistinctID == id {
			return true
		}
	}
	return false
}
