package errcode_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

func TestCodeAndStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		code   string
		status int
	}{
		{"nil", nil, "", http.StatusInternalServerError},
		{"plain", io.EOF, errcode.CodeInternal, http.StatusInternalServerError},
		{"invalid", errcode.Invalid("bad"), errcode.CodeInvalidRequest, http.StatusBadRequest},
		{"field", errcode.InvalidField("name", "is required"), errcode.CodeInvalidRequest, http.StatusBadRequest},
		{"not found", errcode.NotFound("no"), errcode.CodeNotFound, http.StatusNotFound},
		{"conflict", errcode.Conflict("dup"), errcode.CodeConflict, http.StatusConflict},
		{"unauthorized", errcode.Unauthorized("Unauthorized"), errcode.CodeUnauthorized, http.StatusUnauthorized},
		{"forbidden", errcode.Forbidden("Forbidden"), errcode.CodeForbidden, http.StatusForbidden},
		{"rate", errcode.RateLimited("slow"), errcode.CodeRateLimited, http.StatusTooManyRequests},
		{"too large", errcode.PayloadTooLarge("big"), errcode.CodePayloadTooLarge, http.StatusRequestEntityTooLarge},
		{"unavailable", errcode.Unavailable("db down", io.EOF), errcode.CodeUnavailable, http.StatusServiceUnavailable},
		{"internal", errcode.Internal(io.EOF), errcode.CodeInternal, http.StatusInternalServerError},
		{"wrapped", fmt.Errorf("get thing: %w", errcode.NotFound("no")), errcode.CodeNotFound, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := errcode.Code(tc.err); got != tc.code {
				t.Errorf("Code = %q, want %q", got, tc.code)
			}
			if got := errcode.Status(errcode.Code(tc.err)); got != tc.status {
				t.Errorf("Status = %d, want %d", got, tc.status)
			}
		})
	}
}

func TestErrorMessageAndUnwrap(t *testing.T) {
	t.Parallel()
	e := errcode.InvalidField("eventProperties", "must be an object")
	if e.Error() != "eventProperties: must be an object" {
		t.Errorf("Error() = %q", e.Error())
	}
	if e.Details["field"] != "eventProperties" {
		t.Errorf("Details = %v", e.Details)
	}
	cause := errors.New("boom")
	w := fmt.Errorf("load: %w", errcode.Internal(cause))
	if !errors.Is(w, cause) {
		t.Error("cause not reachable through Unwrap")
	}
	if errcode.Message(w) != "internal error" {
		t.Errorf("Message = %q", errcode.Message(w))
	}
	if !errcode.Is(w, errcode.CodeInternal) || errcode.Is(nil, errcode.CodeInternal) {
		t.Error("Is mismatch")
	}
}
