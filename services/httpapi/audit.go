package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// AuditEntry is one successful admin mutation (spec 30 §3.5). Empty
// strings stand for NULL columns.
type AuditEntry struct {
	Actor      string // key name; "legacy" for ADMIN_API_KEY; "unknown" without a key
	ActorKeyID string // key id; empty for ADMIN_API_KEY and logins
	Action     string // "<resource>.<method in lower case>"
	Resource   string // first path segment after /v1/admin/
	ResourceID string // second segment, or empty
	IPAddress  string // raw X-Forwarded-For, else X-Real-IP, else empty
	RequestID  string
}

// AuditSink stores audit entries. Failures are only logged.
type AuditSink interface {
	Record(ctx context.Context, e AuditEntry) error
}

// NopAuditSink discards entries.
type NopAuditSink struct{}

// Record does nothing.
func (NopAuditSink) Record(context.Context, AuditEntry) error { return nil }

// AdminPrefix is the path prefix of the admin API.
const AdminPrefix = "/v1/admin/"

// AuditEntryFor builds the audit entry of a mutation request, and reports
// false for requests that are not audited (not under /v1/admin/, or not
// POST/PUT/PATCH/DELETE).
func AuditEntryFor(r *http.Request) (AuditEntry, bool) {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return AuditEntry{}, false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, AdminPrefix)
	if !ok {
		return AuditEntry{}, false
	}
	segs := strings.SplitN(rest, "/", 3)
	e := AuditEntry{
		Actor:     "unknown",
		Resource:  segs[0],
		Action:    segs[0] + "." + strings.ToLower(r.Method),
		RequestID: RequestIDFrom(r.Context()),
	}
	if len(segs) > 1 {
		e.ResourceID = segs[1]
	}
	if p, ok := PrincipalFrom(r.Context()); ok {
		e.Actor = p.Name
		if !p.Legacy {
			e.ActorKeyID = p.KeyID
		}
	}
	if ip := r.Header.Get("X-Forwarded-For"); ip != "" {
		e.IPAddress = ip
	} else {
		e.IPAddress = r.Header.Get("X-Real-IP")
	}
	return e, true
}

// Audit records, through sink, every POST/PUT/PATCH/DELETE under
// /v1/admin/ answered below 400, after the handler ran. It reads the actor
// from the context, so it must run inside Authenticate (typically
// Router.Use("/v1/admin", Authenticate(a), RateLimit(l), Audit(q))). Pass
// an AuditQueue to keep the write off the request path. A nil sink disables
// auditing.
func Audit(sink AuditSink) Middleware {
	return func(next http.Handler) http.Handler {
		if sink == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e, audited := AuditEntryFor(r)
			if !audited {
				next.ServeHTTP(w, r)
				return
			}
			sw := wrapStatus(w)
			next.ServeHTTP(sw, r)
			if sw.Status() >= 400 {
				return
			}
			if err := sink.Record(context.WithoutCancel(r.Context()), e); err != nil {
				Logger(r.Context()).WarnContext(r.Context(), "record audit entry", "error", err, "action", e.Action)
			}
		})
	}
}

// AuditQueue is an AuditSink that hands entries to one background worker
// (Run), so a slow store never delays responses. Record never blocks: when
// the buffer is full the entry is dropped with a warning.
type AuditQueue struct {
	sink   AuditSink
	ch     chan AuditEntry
	logger *slog.Logger
}

// NewAuditQueue returns a queue in front of sink holding up to size
// entries (default 1024).
func NewAuditQueue(sink AuditSink, size int, logger *slog.Logger) *AuditQueue {
	if size <= 0 {
		size = 1024
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &AuditQueue{sink: sink, ch: make(chan AuditEntry, size), logger: logger}
}

// ErrAuditQueueFull is returned by AuditQueue.Record when the buffer is
// full.
var ErrAuditQueueFull = errors.New("audit queue full, entry dropped")

// Record enqueues e without blocking.
func (q *AuditQueue) Record(_ context.Context, e AuditEntry) error {
	select {
	case q.ch <- e:
		return nil
	default:
		return ErrAuditQueueFull
	}
}

// Bounds on the worker: one write may take auditWriteTimeout; after Run's
// context ends, queued entries are written for at most auditDrainTimeout.
const (
	auditWriteTimeout = 10 * time.Second
	auditDrainTimeout = 5 * time.Second
)

// Run writes queued entries until ctx is cancelled, then drains what is
// left (for at most a few seconds) and returns nil. A write in progress
// when ctx ends is allowed to finish.
func (q *AuditQueue) Run(ctx context.Context) error {
	for {
		select {
		case e := <-q.ch:
			q.write(ctx, e)
		case <-ctx.Done():
			drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditDrainTimeout)
			defer cancel()
			for {
				select {
				case e := <-q.ch:
					if drainCtx.Err() != nil {
						q.logger.Warn("audit entry dropped at shutdown", "action", e.Action)
						continue
					}
					q.write(drainCtx, e)
				default:
					return nil
				}
			}
		}
	}
}

func (q *AuditQueue) write(ctx context.Context, e AuditEntry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer cancel()
	if err := q.sink.Record(ctx, e); err != nil {
		q.logger.WarnContext(ctx, "record audit entry", "error", err, "action", e.Action)
	}
}
