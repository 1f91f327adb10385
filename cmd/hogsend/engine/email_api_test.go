package engine

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
)

// POST /v1/emails input rules (spec 20 §1.10, scenarios 3, 4 and 8): no
// identity, unknown templates and addresses without a contact email are
// refused before anything is stored or sent; skipPreferenceCheck needs a
// full-admin key and then reaches a suppressed address without unsubscribe
// headers; a suppressed address is withheld otherwise.
func TestSendEmailAPI(t *testing.T) {
	t.Parallel()
	_, admin := startApp(t)
	ctx := ctxT(t)
	ingest := admin.WithKey(newKey(t, admin, "ingest"))
	post := func(c *apiclient.Client, body map[string]any) (map[string]any, error) {
		var res map[string]any
		_, err := c.DoRequest(ctx, http.MethodPost, "/v1/emails", body, &res)
		return res, err
	}
	_, err := post(ingest, map[string]any{"template": "welcome"})
	wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "to or userId is required")
	_, err = post(ingest, map[string]any{"to": "ada@example.com", "template": "nope"})
	wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "Unknown template: nope")
	_, err = post(ingest, map[string]any{"to": "not-an-address", "template": "welcome"})
	wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "to")
	// Oversize props (the body is capped at 256 KiB).
	_, err = post(ingest, map[string]any{"to": "ada@example.com", "template": "welcome", "props": map[string]any{"blob": strings.Repeat("x", 300<<10)}})
	if e := wantAPIError(t, err, http.StatusRequestEntityTooLarge, "", ""); e.Code == "" {
		t.Errorf("oversize body answered without a code: %+v", e)
	}
	// A contact with no email cannot be mailed by userId.
	if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "registered", UserID: "no-mail"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return len(eventsOf(t, admin, "no-mail")) == 1 }, func() string { return "the contact" })
	_, err = post(ingest, map[string]any{"userId": "no-mail", "template": "welcome"})
	wantAPIError(t, err, http.StatusNotFound, "not_found", "No resolvable email for recipient")
	_, err = post(ingest, map[string]any{"to": "ada@example.com", "template": "welcome", "skipPreferenceCheck": true})
	wantAPIError(t, err, http.StatusForbidden, "forbidden", "skipPreferenceCheck requires a full-admin key")
	if got := outbox(t, admin); len(got) != 0 {
		t.Fatalf("refused requests sent %d emails", len(got))
	}

	// Suppress an address through the admin preferences route of its
	// contact, then send to it both ways.
	if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "registered", UserID: "sup", Email: "sup@example.com"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return len(eventsOf(t, admin, "sup")) == 1 }, func() string { return "the contact" })
	if err := admin.Do(ctx, http.MethodPut, "/v1/admin/contacts/sup/preferences", map[string]any{"suppressed": true}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := post(ingest, map[string]any{"to": "sup@example.com", "template": "welcome"})
	if err != nil || res["status"] != "suppressed" {
		t.Fatalf("suppressed address: %v %v", res, err)
	}
	res, err = post(admin, map[string]any{"to": "sup@example.com", "template": "welcome", "skipPreferenceCheck": true})
	if err != nil || res["status"] != "sent" {
		t.Fatalf("bypass: %v %v", res, err)
	}
	sent := outbox(t, admin)
	if len(sent) != 1 || sent[0].Headers["List-Unsubscribe"] != "" {
		t.Errorf("bypass sent %d emails, headers %v: want one, without List-Unsubscribe", len(sent), sent)
	}
}
