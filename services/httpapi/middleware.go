package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the wrapper.
func (sw *statusWriter) Flush() {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	http.NewResponseController(sw.ResponseWriter).Flush() //nolint:errcheck // not every writer flushes
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// Status returns the written status (200 when the handler wrote nothing).
func (sw *statusWriter) Status() int {
	if sw.status == 0 {
		return http.StatusOK
	}
	return sw.status
}

func wrapStatus(w http.ResponseWriter) *statusWriter {
	return &statusWriter{ResponseWriter: w}
}

// RequestIDHeader is the request id header, reused from the request when
// valid and always echoed on the response.
const RequestIDHeader = "X-Request-Id"

// validRequestID accepts 1–255 ASCII letters, digits, '_', '-' or '='.
func validRequestID(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '=':
		default:
			return false
		}
	}
	return true
}

// RequestID reuses a valid incoming X-Request-Id or assigns a new UUID,
// stores it in the context and echoes it on the response.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// RequestLog stores a request-scoped logger (carrying requestId) in the
// context and logs one debug entry per request: method, path, status,
// duration in milliseconds, requestId. now is the clock (nil = time.Now).
func RequestLog(logger *slog.Logger, now func() time.Time) Middleware {
	if logger == nil {
		logger = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := now()
			id := RequestIDFrom(r.Context())
			l := logger
			if id != "" {
				l = logger.With("requestId", id)
			}
			sw := wrapStatus(w)
			next.ServeHTTP(sw, r.WithContext(WithLogger(r.Context(), l)))
			l.DebugContext(r.Context(), "request",
				"method", r.Method,
				"path", r.URL.Path,
				"status", sw.Status(),
				"duration", float64(now().Sub(start).Microseconds())/1000,
			)
		})
	}
}

// Recover turns a panic into a 500 internal error (logged with its stack
// by WriteError). http.ErrAbortHandler is re-raised, as net/http expects.
func Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := wrapStatus(w)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			err := errcode.Internal(fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			if sw.status != 0 {
				// Headers are gone; all we can do is log.
				Logger(r.Context()).ErrorContext(r.Context(), "panic after response started",
					"error", err, "method", r.Method, "path", r.URL.Path)
				return
			}
			WriteError(sw, r, err)
		}()
		next.ServeHTTP(sw, r)
	})
}

// Stack wraps h in the global middleware, outermost first: request id,
// request log, recover.
func Stack(h http.Handler, logger *slog.Logger) http.Handler {
	return Chain(h, RequestID, RequestLog(logger, nil), Recover)
}
