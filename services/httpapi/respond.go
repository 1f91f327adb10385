package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// ErrorBody is the JSON shape of every error response. Reference clients
// read the string "error"; "code" is the errcode code.
type ErrorBody struct {
	Error   string         `json:"error"`
	Code    string         `json:"code"`
	Details map[string]any `json:"details,omitempty"`
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// A value that cannot be encoded is a programming error; answer
		// 500 rather than a truncated body.
		slog.Default().Error("encode response", "error", err)
		b, status = []byte(`{"error":"Internal Server Error","code":"internal"}`), http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// WriteError renders err as {"error","code","details"} with the status of
// its code. Errors without a code are internal: they are logged at error
// level with the request's logger and shown as "Internal Server Error".
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	code := errcode.Code(err)
	if code == "" {
		code = errcode.CodeInternal
	}
	body := ErrorBody{Error: errcode.Message(err), Code: code, Details: errcode.Details(err)}
	if code == errcode.CodeInternal {
		Logger(r.Context()).ErrorContext(r.Context(), "request failed",
			"error", err, "method", r.Method, "path", r.URL.Path)
		body = ErrorBody{Error: "Internal Server Error", Code: code}
	}
	if body.Error == "" {
		body.Error = http.StatusText(errcode.Status(code))
	}
	WriteJSON(w, errcode.Status(code), body)
}
