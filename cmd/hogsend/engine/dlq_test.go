package engine

import (
	"net/http"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
)

type dlqEntry struct {
	ID         string `json:"id"`
	Source     string `json:"source"`
	Status     string `json:"status"`
	RetryCount int    `json:"retryCount"`
	Error      string `json:"error"`
}

type dlqPage struct {
	Entries []dlqEntry `json:"entries"`
	Total   int        `json:"total"`
}

// An event the projection cannot decode is dead-lettered, never blocks its
// partition, and can be listed, re-driven and discarded.
func TestDeadLettersListRetryDiscard(t *testing.T) {
	t.Parallel()
	m, admin := startApp(t)
	ctx := ctxT(t)
	if _, err := m.js.Publish(ctx, "hogsend.events.poison", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	// Events after the poison one on any partition still apply.
	if _, err := admin.SendEvent(ctx, apiclient.Event{Name: "after", UserID: "dl-1"}); err != nil {
		t.Fatal(err)
	}
	waitContact(t, admin, "dl-1", nil)

	var page dlqPage
	eventually(t, 5*time.Second, func() bool {
		page = dlqPage{}
		return admin.Do(ctx, http.MethodGet, "/v1/admin/dlq?status=pending", nil, &page) == nil && page.Total == 1 && len(page.Entries) == 1
	}, func() string { return "one pending dead letter" })
	e := page.Entries[0]
	if e.Source != "contacts" || e.Error == "" {
		t.Fatalf("entry %+v", e)
	}
	readOnly := admin.WithKey(newKey(t, admin, "read"))
	err := readOnly.Do(ctx, http.MethodPost, "/v1/admin/dlq/"+e.ID+"/retry", nil, nil)
	wantAPIError(t, err, http.StatusForbidden, "forbidden", "")

	if err := admin.Do(ctx, http.MethodPost, "/v1/admin/dlq/"+e.ID+"/retry", nil, nil); err != nil {
		t.Fatal(err)
	}
	err = admin.Do(ctx, http.MethodPost, "/v1/admin/dlq/"+e.ID+"/retry", nil, nil)
	wantAPIError(t, err, http.StatusConflict, "conflict", "not in pending state")
	// Still undecodable: the re-driven copy comes back as a new entry.
	eventually(t, 5*time.Second, func() bool {
		page = dlqPage{}
		return admin.Do(ctx, http.MethodGet, "/v1/admin/dlq?status=pending", nil, &page) == nil && len(page.Entries) == 1 && page.Entries[0].ID != e.ID
	}, func() string { return "the re-driven message dead-lettered again" })
	again := page.Entries[0]
	if err := admin.Do(ctx, http.MethodDelete, "/v1/admin/dlq/"+again.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, http.MethodGet, "/v1/admin/dlq?status=pending", nil, &page); err != nil || page.Total != 0 {
		t.Fatalf("pending after discard: %+v %v", page, err)
	}
	err = admin.Do(ctx, http.MethodGet, "/v1/admin/dlq/not-a-uuid", nil, nil)
	wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "")
	err = admin.Do(ctx, http.MethodGet, "/v1/admin/dlq/00000000-0000-7000-8000-000000000000", nil, nil)
	wantAPIError(t, err, http.StatusNotFound, "not_found", "DLQ entry not found")
}
