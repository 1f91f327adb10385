package engine

import (
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
)

// A duplicate (same idempotency key) is not stored again and answers the
// stored event's id, but its contact properties still apply (spec 10
// §1.3 rule 3).
func TestDuplicateKeepsIDAndReappliesContactProperties(t *testing.T) {
	t.Parallel()
	_, admin := startApp(t)
	ctx := ctxT(t)
	first, err := admin.SendEvent(ctx, apiclient.Event{Name: "paid", UserID: "dup-1", IdempotencyKey: "dup-k", ContactProperties: map[string]any{"a": 1}})
	if err != nil || !first.Stored {
		t.Fatalf("first send: %+v %v", first, err)
	}
	again, err := admin.SendEvent(ctx, apiclient.Event{Name: "paid", UserID: "dup-1", IdempotencyKey: "dup-k", ContactProperties: map[string]any{"b": 2}})
	if err != nil || again.Stored {
		t.Fatalf("duplicate: %+v %v", again, err)
	}
	if again.ID != first.ID {
		t.Fatalf("duplicate answered id %s, want the stored event's %s", again.ID, first.ID)
	}
	waitContact(t, admin, "dup-1", func(c apiclient.Contact) bool {
		return c.Properties["a"] == float64(1) && c.Properties["b"] == float64(2)
	})
	if rows := waitEvents(t, admin, "dup-1", 1); len(rows) != 1 {
		t.Fatalf("history has %d rows, want 1", len(rows))
	}
}
