package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// The API key scopes. read < journey-admin < full-admin is a ladder;
// ingest stands beside it and is granted explicitly or by full-admin.
const (
	ScopeRead         = "read"
	ScopeJourneyAdmin = "journey-admin"
	ScopeFullAdmin    = "full-admin"
	ScopeIngest       = "ingest"
)

// Scopes lists every valid scope.
func Scopes() []string {
	return []string{ScopeRead, ScopeJourneyAdmin, ScopeFullAdmin, ScopeIngest}
}

// ValidScope reports whether s is one of Scopes.
func ValidScope(s string) bool { return slices.Contains(Scopes(), s) }

func ladderRank(s string) int {
	switch s {
	case ScopeRead:
		return 1
	case ScopeJourneyAdmin:
		return 2
	case ScopeFullAdmin:
		return 3
	default:
		return 0
	}
}

// HasScope reports whether granted satisfies required (spec 30 §3.1):
// ladder scopes pass when the highest granted rank reaches the required
// one; ingest passes with an explicit ingest grant or full-admin.
func HasScope(granted []string, required string) bool {
	if required == ScopeIngest {
		return slices.Contains(granted, ScopeIngest) || slices.Contains(granted, ScopeFullAdmin)
	}
	need := ladderRank(required)
	if need == 0 {
		return false
	}
	for _, g := range granted {
		if ladderRank(g) >= need {
			return true
		}
	}
	return false
}

// Principal is the authenticated caller.
type Principal struct {
	KeyID  string // API key id; "legacy" for ADMIN_API_KEY
	Name   string // API key name; "legacy" for ADMIN_API_KEY
	Scopes []string
	Legacy bool // authenticated with ADMIN_API_KEY
}

// Authenticator resolves a bearer token to a principal. Bad credentials
// are errcode unauthorized errors whose message is shown to the caller
// ("Unauthorized", "API key expired"); any other error is a failure of the
// authenticator itself.
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (Principal, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, bearer string) (Principal, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, bearer string) (Principal, error) {
	return f(ctx, bearer)
}

// Messages of the auth failures, as the reference clients expect them.
const (
	MsgUnauthorized      = "Unauthorized"
	MsgInsufficientScope = "Forbidden: insufficient scope"
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header (exact "Bearer " prefix), or "" when there is none.
func BearerToken(r *http.Request) string {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return token
}

// authenticate stores the principal of the request's bearer key in the
// context, or writes the 401 (or the authenticator's failure) and returns
// false.
func authenticate(auth Authenticator, w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	token := BearerToken(r)
	if token == "" {
		WriteError(w, r, errcode.Unauthorized(MsgUnauthorized))
		return r, false
	}
	p, err := auth.Authenticate(r.Context(), token)
	if err != nil {
		if errcode.Is(err, errcode.CodeUnauthorized) && errcode.Message(err) == "" {
			err = errcode.Unauthorized(MsgUnauthorized)
		}
		WriteError(w, r, fmt.Errorf("authenticate: %w", err))
		return r, false
	}
	return r.WithContext(WithPrincipal(r.Context(), p)), true
}

// Authenticate requires a valid bearer key and stores its principal in the
// context (see PrincipalFrom); failures are 401. Use it as prefix
// middleware so unknown paths under a guarded prefix still answer 401.
func Authenticate(auth Authenticator) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r, ok := authenticate(auth, w, r)
			if !ok {
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireScope authenticates the request (unless a principal is already in
// the context, e.g. from Authenticate) and requires scope: no or bad key →
// 401, missing scope → 403 "Forbidden: insufficient scope". It panics on an
// unknown scope.
func RequireScope(auth Authenticator, scope string) Middleware {
	if !ValidScope(scope) {
		panic(fmt.Sprintf("httpapi: unknown scope %q", scope))
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				if auth == nil {
					WriteError(w, r, errcode.Unauthorized(MsgUnauthorized))
					return
				}
				if r, ok = authenticate(auth, w, r); !ok {
					return
				}
				p, _ = PrincipalFrom(r.Context())
			}
			if !HasScope(p.Scopes, scope) {
				WriteError(w, r, errcode.Forbidden(MsgInsufficientScope))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
