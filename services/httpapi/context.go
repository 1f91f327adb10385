package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

type ctxKey int

const (
	principalKey ctxKey = iota
	loggerKey
	requestIDKey
)

func contextWithParams(ctx context.Context, ps httprouter.Params) context.Context {
	return context.WithValue(ctx, httprouter.ParamsKey, ps)
}

// Param returns the value of the route parameter name ("" when absent).
func Param(r *http.Request, name string) string {
	return httprouter.ParamsFromContext(r.Context()).ByName(name)
}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the authenticated caller stored by the auth
// middleware, and whether there is one.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

// WithLogger returns ctx carrying l; RequestLog stores a logger that already
// holds the request id.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey, l)
}

// Logger returns the request logger, or slog.Default() outside a request.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.Default()
}

// RequestIDFrom returns the request id set by RequestID ("" when absent).
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}
