package httpapi_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	var seen string
	h := httpapi.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = httpapi.RequestIDFrom(r.Context())
	}))
	tests := []struct {
		name, in string
		kept     bool
	}{
		{"plain", "abc-123", true},
		{"equals", "a=b", true},
		{"underscore", "A_z_09", true},
		{"max length", strings.Repeat("x", 255), true},
		{"space", "a b", false},
		{"too long", strings.Repeat("x", 256), false},
		{"empty", "", false},
		{"slash", "a/b", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.in != "" {
				hdr["X-Request-Id"] = tc.in
			}
			rec := do(t, h, "GET", "/", "", hdr)
			got := rec.Header().Get("X-Request-Id")
			if got != seen {
				t.Errorf("echoed %q, context %q", got, seen)
			}
			if tc.kept {
				if got != tc.in {
					t.Errorf("id = %q, want %q", got, tc.in)
				}
				return
			}
			if _, err := uuid.Parse(got); err != nil || got == tc.in {
				t.Errorf("id = %q, want a fresh UUID", got)
			}
		})
	}
}

func TestRecoverAndRequestLog(t *testing.T) {
	t.Parallel()
	logger, buf := testLogger()
	clock := time.Unix(1_700_000_000, 0)
	now := func() time.Time { clock = clock.Add(1500 * time.Microsecond); return clock }
	rt := httpapi.NewRouter()
	rt.HandleFunc("GET", "/panic", func(http.ResponseWriter, *http.Request) { panic("kaboom") }, httpapi.Doc{})
	rt.HandleFunc("GET", "/fail", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, r, errors.New("db exploded"))
	}, httpapi.Doc{})
	rt.HandleFunc("GET", "/missing", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, r, errcode.NotFound("Thing not found"))
	}, httpapi.Doc{})
	h := httpapi.Chain(rt, httpapi.RequestID, httpapi.RequestLog(logger, now), httpapi.Recover)

	rec := do(t, h, "GET", "/panic", "", map[string]string{"X-Request-Id": "req-1"})
	if rec.Code != 500 {
		t.Fatalf("status = %d", rec.Code)
	}
	if body := decodeBody(t, rec); body["error"] != "Internal Server Error" || body["code"] != "internal" {
		t.Errorf("body = %v", body)
	}
	if rec.Header().Get("X-Request-Id") != "req-1" {
		t.Error("request id not echoed on a panic")
	}

	rec = do(t, h, "GET", "/fail", "", nil)
	if body := decodeBody(t, rec); rec.Code != 500 || body["error"] != "Internal Server Error" {
		t.Errorf("fail: %d %v", rec.Code, body)
	}
	if strings.Contains(rec.Body.String(), "db exploded") {
		t.Error("internal error message leaked to the client")
	}

	rec = do(t, h, "GET", "/missing", "", nil)
	if body := decodeBody(t, rec); rec.Code != 404 || body["error"] != "Thing not found" || body["code"] != "not_found" {
		t.Errorf("missing: %d %v", rec.Code, body)
	}

	logs := buf.String()
	for _, want := range []string{`"level":"ERROR"`, "kaboom", "db exploded", `"requestId":"req-1"`, `"status":500`, `"duration":1.5`, `"path":"/panic"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Count(logs, `"level":"ERROR"`) != 2 {
		t.Errorf("want exactly 2 error entries (panic and internal), got:\n%s", logs)
	}
	if !strings.Contains(logs, `"status":404`) || !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Errorf("request log entries missing:\n%s", logs)
	}
}

func TestRecoverReraisesAbort(t *testing.T) {
	t.Parallel()
	h := httpapi.Recover(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want ErrAbortHandler", v)
		}
	}()
	do(t, h, "GET", "/", "", nil)
}
