package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

type eventBody struct {
	Event           string         `json:"event"`
	EventProperties map[string]any `json:"eventProperties"`
	Count           int            `json:"count"`
	Tags            []string       `json:"tags"`
	At              *httpapi.Time  `json:"at"`
	Nested          struct {
		Flag bool `json:"flag"`
	} `json:"nested"`
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		body        string
		limit       int64
		status      int
		message     string
		field       string
	}{
		{name: "ok", contentType: "application/json", body: `{"event":"x","eventProperties":{"a":1},"unknown":true}`, status: 200},
		{name: "content type params", contentType: "application/json; charset=utf-8", body: `{"event":"x"}`, status: 200},
		{name: "trailing whitespace", contentType: "application/json", body: "{\"event\":\"x\"}\n\t ", status: 200},
		{name: "missing content type", contentType: "", body: `{"event":"x"}`, status: 400, message: "Content-Type must be application/json"},
		{name: "wrong content type", contentType: "text/plain", body: `{"event":"x"}`, status: 400, message: "Content-Type must be application/json"},
		{name: "malformed", contentType: "application/json", body: `{"event":`, status: 400, message: "Malformed JSON in request body"},
		{name: "garbage", contentType: "application/json", body: `{bad json`, status: 400, message: "Malformed JSON in request body"},
		{name: "empty body", contentType: "application/json", body: ``, status: 400, message: "Malformed JSON in request body"},
		{name: "object expected", contentType: "application/json", body: `{"eventProperties":"nope"}`, status: 400, message: "eventProperties: must be an object", field: "eventProperties"},
		{name: "string expected", contentType: "application/json", body: `{"event":5}`, status: 400, message: "event: must be a string", field: "event"},
		{name: "integer expected", contentType: "application/json", body: `{"count":1.5}`, status: 400, message: "count: must be an integer", field: "count"},
		{name: "array expected", contentType: "application/json", body: `{"tags":{}}`, status: 400, message: "tags: must be an array", field: "tags"},
		{name: "nested field", contentType: "application/json", body: `{"nested":{"flag":"yes"}}`, status: 400, message: "nested.flag: must be a boolean", field: "nested.flag"},
		{name: "time with offset", contentType: "application/json", body: `{"at":"2030-01-01T00:00:00+01:00"}`, status: 400, message: "at: must be an ISO-8601 UTC date-time ending in Z", field: "at"},
		{name: "time not a string", contentType: "application/json", body: `{"at":5}`, status: 400, field: "at"},
		{name: "body not an object", contentType: "application/json", body: `[1,2]`, status: 400, message: "request body must be an object"},
		{name: "trailing data", contentType: "application/json", body: `{"event":"x"} {"event":"y"}`, status: 400, message: "Request body must contain a single JSON value"},
		{name: "trailing garbage", contentType: "application/json", body: `{"event":"x"}}`, status: 400, message: "Request body must contain a single JSON value"},
		{name: "too large", contentType: "application/json", body: `{"event":"` + strings.Repeat("x", 100) + `"}`, limit: 50, status: 413},
		{name: "default limit", contentType: "application/json", body: `{"event":"` + strings.Repeat("x", 1<<20) + `"}`, status: 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var dst eventBody
				if err := httpapi.DecodeJSON(w, r, &dst, tc.limit); err != nil {
					httpapi.WriteError(w, r, err)
					return
				}
				httpapi.WriteJSON(w, http.StatusOK, dst)
			})
			hdr := map[string]string{}
			if tc.contentType != "" {
				hdr["Content-Type"] = tc.contentType
			}
			rec := do(t, h, "POST", "/", tc.body, hdr)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 200 {
				return
			}
			body := decodeBody(t, rec)
			wantCode := errcode.CodeInvalidRequest
			if tc.status == 413 {
				wantCode = errcode.CodePayloadTooLarge
			}
			if body["code"] != wantCode {
				t.Errorf("code = %v, want %s", body["code"], wantCode)
			}
			if tc.message != "" && body["error"] != tc.message {
				t.Errorf("error = %q, want %q", body["error"], tc.message)
			}
			if tc.field != "" {
				details, _ := body["details"].(map[string]any)
				if details["field"] != tc.field {
					t.Errorf("details = %v, want field %q", body["details"], tc.field)
				}
			}
		})
	}
}

func TestQueryParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query         string
		limit, offset int
		errMsg        string
	}{
		{"", 50, 0, ""},
		{"limit=1&offset=7", 1, 7, ""},
		{"limit=100", 100, 0, ""},
		{"limit=0", 0, 0, "limit: must be between 1 and 100"},
		{"limit=101", 0, 0, "limit: must be between 1 and 100"},
		{"limit=2.5", 0, 0, "limit: must be an integer"},
		{"limit=abc", 0, 0, "limit: must be an integer"},
		{"offset=-1", 0, 0, "offset: must be at least 0"},
		{"offset=1e3", 0, 0, "offset: must be an integer"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/?"+tc.query, nil)
			limit, offset, err := httpapi.Pagination(r)
			if tc.errMsg != "" {
				if !errcode.Is(err, errcode.CodeInvalidRequest) || errcode.Message(err) != tc.errMsg {
					t.Fatalf("err = %v, want %q", err, tc.errMsg)
				}
				return
			}
			if err != nil || limit != tc.limit || offset != tc.offset {
				t.Fatalf("got (%d, %d, %v), want (%d, %d)", limit, offset, err, tc.limit, tc.offset)
			}
		})
	}
	for _, tc := range []struct {
		q     string
		want  bool
		valid bool
	}{{"", false, true}, {"x=true", true, true}, {"x=false", false, true}, {"x=1", false, false}, {"x=TRUE", false, false}} {
		got, err := httpapi.QueryBool(httptest.NewRequest("GET", "/?"+tc.q, nil), "x", false)
		if (err == nil) != tc.valid || got != tc.want {
			t.Errorf("QueryBool(%q) = %v, %v", tc.q, got, err)
		}
	}
}

func TestParamUUID(t *testing.T) {
	t.Parallel()
	rt := httpapi.NewRouter()
	rt.HandleFunc("DELETE", "/things/:id", func(w http.ResponseWriter, r *http.Request) {
		id, err := httpapi.ParamUUID(r, "id")
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		httpapi.WriteJSON(w, 200, map[string]string{"id": id.String()})
	}, httpapi.Doc{})
	for path, status := range map[string]int{
		"/things/0195d4c0-0000-7000-8000-000000000001":  200,
		"/things/not-a-uuid":                            400,
		"/things/0195d4c000007000800000000000000":       400,
		"/things/{0195d4c0-0000-7000-8000-00000000001}": 400,
	} {
		if rec := do(t, rt, "DELETE", path, "", nil); rec.Code != status {
			t.Errorf("%s: status = %d, want %d", path, rec.Code, status)
		}
	}
}

func TestTimeJSON(t *testing.T) {
	t.Parallel()
	loc := time.FixedZone("X", 3600)
	v := struct {
		A httpapi.Time  `json:"a"`
		B *httpapi.Time `json:"b"`
	}{A: httpapi.NewTime(time.Date(2024, 5, 6, 8, 9, 10, 123456789, loc))}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"a":"2024-05-06T07:09:10.123Z","b":null}` {
		t.Errorf("marshal = %s", b)
	}
	for s, ok := range map[string]bool{
		"2024-05-06T07:09:10Z":                true,
		"2024-05-06T07:09:10.1Z":              true,
		"2024-05-06T07:09:10.123456789Z":      true,
		"2024-05-06T07:09:10+00:00":           false,
		"2024-05-06T07:09:10":                 false,
		"2024-05-06":                          false,
		"2024-13-06T07:09:10Z":                false,
		"2024-05-06T07:09:10.123456789+01:00": false,
	} {
		if _, got := httpapi.ParseTime(s); got != ok {
			t.Errorf("ParseTime(%q) ok = %v, want %v", s, got, ok)
		}
	}
}
