// Package errcode gives domain errors a machine-readable code. Packages
// return *Error values (or wrap them); the HTTP layer turns the code into a
// status through the one table in Status, so no handler picks statuses by
// hand.
package errcode

import (
	"errors"
	"fmt"
	"net/http"
)

// The error codes. They appear verbatim in API responses as "code".
const (
	CodeInvalidRequest  = "invalid_request"
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeRateLimited     = "rate_limited"
	CodePayloadTooLarge = "payload_too_large"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal"
)

// Status maps a code to its HTTP status; unknown codes are 500. This is the
// only place where codes meet statuses.
func Status(code string) int {
	switch code {
	case CodeInvalidRequest:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is a domain error with a code. Message is safe to show to API
// callers; Err is the underlying cause, kept for logs and errors.Is/As.
type Error struct {
	Code    string
	Message string
	Details map[string]any
	Err     error
}

// Error returns the message followed by the cause, if any.
func (e *Error) Error() string {
	switch {
	case e.Err == nil:
		return e.Message
	case e.Message == "":
		return e.Err.Error()
	default:
		return e.Message + ": " + e.Err.Error()
	}
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an error with the given code and message.
func New(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Wrap returns an error with the given code and message around cause.
func Wrap(code, msg string, cause error) *Error {
	return &Error{Code: code, Message: msg, Err: cause}
}

// Invalid is a 400 invalid_request error.
func Invalid(msg string) *Error { return New(CodeInvalidRequest, msg) }

// Invalidf is Invalid with a format.
func Invalidf(format string, args ...any) *Error {
	return New(CodeInvalidRequest, fmt.Sprintf(format, args...))
}

// InvalidField is an invalid_request error about one input field: the
// message reads "<field>: <msg>" and Details["field"] names the field.
func InvalidField(field, msg string) *Error {
	m := msg
	if field != "" {
		m = field + ": " + msg
	}
	return &Error{Code: CodeInvalidRequest, Message: m, Details: map[string]any{"field": field}}
}

// NotFound is a not_found error.
func NotFound(msg string) *Error { return New(CodeNotFound, msg) }

// Conflict is a conflict error.
func Conflict(msg string) *Error { return New(CodeConflict, msg) }

// Unauthorized is an unauthorized error (missing or bad credentials).
func Unauthorized(msg string) *Error { return New(CodeUnauthorized, msg) }

// Forbidden is a forbidden error (valid credentials, not allowed).
func Forbidden(msg string) *Error { return New(CodeForbidden, msg) }

// RateLimited is a rate_limited error.
func RateLimited(msg string) *Error { return New(CodeRateLimited, msg) }

// PayloadTooLarge is a payload_too_large error.
func PayloadTooLarge(msg string) *Error { return New(CodePayloadTooLarge, msg) }

// Unavailable is an unavailable error (a dependency is down).
func Unavailable(msg string, cause error) *Error { return Wrap(CodeUnavailable, msg, cause) }

// Internal wraps an unexpected failure. Its message is never shown to API
// callers.
func Internal(cause error) *Error { return Wrap(CodeInternal, "internal error", cause) }

// Code returns the code of the first *Error in err's chain, "" for nil and
// CodeInternal for errors without a code.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return CodeInternal
}

// Is reports whether err carries the given code.
func Is(err error, code string) bool { return err != nil && Code(err) == code }

// Message returns the caller-facing message of the first *Error in err's
// chain, or "" when there is none.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return ""
}

// Details returns the details of the first *Error in err's chain.
func Details(err error) map[string]any {
	var e *Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}
