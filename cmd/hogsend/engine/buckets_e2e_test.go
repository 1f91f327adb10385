package engine

import (
	"net/http"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
)

// The stock example bucket reacts to the quickstart's events: a contact
// that gets plan=pro enters pro-plan, and the transition is in its history.
func TestExampleBucketJoinsFromIngestedEvents(t *testing.T) {
	t.Parallel()
	_, admin := startApp(t, withBuckets("pro-plan"))
	ctx := ctxT(t)
	if _, err := admin.SendEvent(ctx, apiclient.Event{Name: "upgraded", UserID: "bk-1", ContactProperties: map[string]any{"plan": "pro"}}); err != nil {
		t.Fatal(err)
	}
	var events []apiclient.StoredEvent
	eventually(t, 5*time.Second, func() bool {
		events = eventsOf(t, admin, "bk-1")
		return len(events) == 2
	}, func() string { return "the upgrade and its bucket:entered:pro-plan" })
	var entered *apiclient.StoredEvent
	for i := range events {
		if events[i].Event == "bucket:entered:pro-plan" {
			entered = &events[i]
		}
	}
	if entered == nil || entered.IdempotencyKey == nil || *entered.IdempotencyKey != "bucket:pro-plan:bk-1:entered:1" {
		t.Fatalf("history %+v", events)
	}
	// Outside callers cannot forge transitions.
	_, err := admin.SendEvent(ctx, apiclient.Event{Name: "bucket:entered:pro-plan", UserID: "bk-2"})
	wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "emitted by the engine")
}
