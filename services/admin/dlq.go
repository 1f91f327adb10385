// Package admin serves operational admin routes that belong to no single
// service: the dead-letter queue.
package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// DLQ serves /v1/admin/dlq over the bus's dead-letter store.
type DLQ struct {
	store *bus.DeadLetterStore
}

// NewDLQ returns the dead-letter routes.
func NewDLQ(store *bus.DeadLetterStore) *DLQ { return &DLQ{store: store} }

// Entry is a dead letter as the API shows it.
type Entry struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	SourceID   *string         `json:"sourceId"`
	Subject    string          `json:"subject"`
	StreamSeq  uint64          `json:"streamSeq"`
	Payload    json.RawMessage `json:"payload"`
	Error      string          `json:"error"`
	RetryCount int             `json:"retryCount"`
	Status     string          `json:"status"`
	RetriedAt  *httpapi.Time   `json:"retriedAt"`
	CreatedAt  httpapi.Time    `json:"createdAt"`
}

func entry(dl bus.DeadLetter) Entry {
	e := Entry{
		ID: dl.ID.String(), Source: dl.Source, Subject: dl.Subject, StreamSeq: dl.StreamSeq, Error: dl.Error,
		RetryCount: dl.RetryCount, Status: dl.Status, RetriedAt: httpapi.TimePtr(dl.RetriedAt), CreatedAt: httpapi.NewTime(dl.CreatedAt),
	}
	if dl.SourceID != "" {
		e.SourceID = &dl.SourceID
	}
	// Bodies are JSON on every stream; anything else is shown as a string.
	if json.Valid(dl.Data) {
		e.Payload = dl.Data
	} else {
		e.Payload, _ = json.Marshal(string(dl.Data))
	}
	return e
}

// Routes registers the routes: reads need read, actions full-admin.
func (d *DLQ) Routes(r *httpapi.Router, auth httpapi.Authenticator) {
	read := httpapi.RequireScope(auth, httpapi.ScopeRead)
	full := httpapi.RequireScope(auth, httpapi.ScopeFullAdmin)
	tags := []string{"admin", "dlq"}
	r.Handle(http.MethodGet, "/v1/admin/dlq", read(http.HandlerFunc(d.list)), httpapi.Doc{
		Summary: "List dead letters, newest first", Tags: tags, Scope: httpapi.ScopeRead,
		Query: append(httpapi.PaginationQuery(),
			httpapi.QueryParam{Name: "source", Description: "consumer that gave up", Schema: httpapi.StringSchema()},
			httpapi.QueryParam{Name: "status", Schema: httpapi.EnumSchema(bus.DeadLetterPending, bus.DeadLetterRetried, bus.DeadLetterDiscarded)}),
	})
	r.Handle(http.MethodGet, "/v1/admin/dlq/:id", read(http.HandlerFunc(d.get)), httpapi.Doc{
		Summary: "Get a dead letter", Tags: tags, Scope: httpapi.ScopeRead,
	})
	r.Handle(http.MethodPost, "/v1/admin/dlq/:id/retry", full(http.HandlerFunc(d.retry)), httpapi.Doc{
		Summary: "Re-drive a pending dead letter", Tags: tags, Scope: httpapi.ScopeFullAdmin,
		Description: "Publishes the message again to the subject it came from; it is consumed after what arrived since.",
		Responses:   map[int]httpapi.Response{200: {Description: "{retried: true}"}, 404: {Description: "Not found"}, 409: {Description: "Not pending"}},
	})
	r.Handle(http.MethodDelete, "/v1/admin/dlq/:id", full(http.HandlerFunc(d.discard)), httpapi.Doc{
		Summary: "Discard a pending dead letter", Tags: tags, Scope: httpapi.ScopeFullAdmin,
	})
}

const msgNotFound = "DLQ entry not found"

func (d *DLQ) list(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	status := q.Get("status")
	switch status {
	case "", bus.DeadLetterPending, bus.DeadLetterRetried, bus.DeadLetterDiscarded:
	default:
		httpapi.WriteError(w, r, errcode.InvalidField("status", "must be pending, retried or discarded"))
		return
	}
	rows, total, err := d.store.List(r.Context(), bus.DeadLetterFilter{Source: q.Get("source"), Status: status, Limit: limit, Offset: offset})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]Entry, len(rows))
	for i, dl := range rows {
		out[i] = entry(dl)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"entries": out, "total": total, "limit": limit, "offset": offset})
}

func (d *DLQ) get(w http.ResponseWriter, r *http.Request) {
	dl, ok := d.load(w, r)
	if !ok {
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"entry": entry(dl)})
}

func (d *DLQ) retry(w http.ResponseWriter, r *http.Request) {
	dl, ok := d.load(w, r)
	if !ok {
		return
	}
	if dl.Status != bus.DeadLetterPending {
		httpapi.WriteError(w, r, errcode.Conflict("Entry is not in pending state"))
		return
	}
	if _, err := d.store.Retry(r.Context(), dl.ID); err != nil {
		if errors.Is(err, bus.ErrNotFound) {
			// Retried or discarded concurrently.
			httpapi.WriteError(w, r, errcode.Conflict("Entry is not in pending state"))
			return
		}
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"retried": true})
}

func (d *DLQ) discard(w http.ResponseWriter, r *http.Request) {
	dl, ok := d.load(w, r)
	if !ok {
		return
	}
	if dl.Status == bus.DeadLetterPending {
		if _, err := d.store.Discard(r.Context(), dl.ID); err != nil && !errors.Is(err, bus.ErrNotFound) {
			httpapi.WriteError(w, r, err)
			return
		}
	} else if dl.Status == bus.DeadLetterRetried {
		httpapi.WriteError(w, r, errcode.Conflict("Entry was retried; only pending entries can be discarded"))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"discarded": true})
}

// load reads the dead letter the path names, or answers 400/404.
func (d *DLQ) load(w http.ResponseWriter, r *http.Request) (bus.DeadLetter, bool) {
	id, err := httpapi.ParamUUID(r, "id")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return bus.DeadLetter{}, false
	}
	dl, err := d.store.Get(r.Context(), id)
	if err != nil {
		httpapi.WriteError(w, r, notFound(err))
		return bus.DeadLetter{}, false
	}
	return dl, true
}

func notFound(err error) error {
	if errors.Is(err, bus.ErrNotFound) {
		return errcode.NotFound(msgNotFound)
	}
	return err
}
