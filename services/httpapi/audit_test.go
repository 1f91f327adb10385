package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

type memSink struct {
	mu      sync.Mutex
	entries []httpapi.AuditEntry
	block   chan struct{} // when set, Record signals entered and waits on it
	entered chan struct{}
}

func (s *memSink) Record(ctx context.Context, e httpapi.AuditEntry) error {
	if s.block != nil {
		s.entered <- struct{}{}
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, e)
	return nil
}

func (s *memSink) all() []httpapi.AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]httpapi.AuditEntry(nil), s.entries...)
}

func TestAuditMiddleware(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	rt := httpapi.NewRouter()
	rt.Use("/v1/admin", httpapi.Authenticate(fakeAuth), httpapi.Audit(sink))
	status := func(code int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
	}
	rt.Handle("POST", "/v1/admin/webhooks/:id/rotate-secret", status(200), httpapi.Doc{})
	rt.Handle("POST", "/v1/admin/webhooks", status(201), httpapi.Doc{})
	rt.Handle("GET", "/v1/admin/webhooks", status(200), httpapi.Doc{})
	rt.Handle("DELETE", "/v1/admin/api-keys/:id", status(404), httpapi.Doc{})
	rt.Handle("POST", "/v1/admin/contacts/import", status(202), httpapi.Doc{})
	rt.Handle("PATCH", "/v1/admin/journeys/:id", status(200), httpapi.Doc{})

	key := func(k string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + k, "X-Forwarded-For": "203.0.113.9, 10.0.0.1"}
	}
	do(t, rt, "POST", "/v1/admin/webhooks/X/rotate-secret", "", key("hsk_admin"))
	do(t, rt, "POST", "/v1/admin/webhooks", "", key("hsk_read"))
	do(t, rt, "GET", "/v1/admin/webhooks", "", key("hsk_admin"))        // GET: not audited
	do(t, rt, "DELETE", "/v1/admin/api-keys/abc", "", key("hsk_admin")) // 404: not audited
	do(t, rt, "POST", "/v1/admin/webhooks", "", nil)                    // 401: not audited
	do(t, rt, "POST", "/v1/admin/contacts/import", "", map[string]string{"Authorization": "Bearer hsk_admin", "X-Real-IP": "198.51.100.7"})
	do(t, rt, "PATCH", "/v1/admin/journeys/j1", "", key("hsk_admin"))

	want := []httpapi.AuditEntry{
		{Actor: "admin", ActorKeyID: "k2", Action: "webhooks.post", Resource: "webhooks", ResourceID: "X", IPAddress: "203.0.113.9, 10.0.0.1"},
		{Actor: "reader", ActorKeyID: "k1", Action: "webhooks.post", Resource: "webhooks", IPAddress: "203.0.113.9, 10.0.0.1"},
		{Actor: "admin", ActorKeyID: "k2", Action: "contacts.post", Resource: "contacts", ResourceID: "import", IPAddress: "198.51.100.7"},
		{Actor: "admin", ActorKeyID: "k2", Action: "journeys.patch", Resource: "journeys", ResourceID: "j1", IPAddress: "203.0.113.9, 10.0.0.1"},
	}
	got := sink.all()
	if len(got) != len(want) {
		t.Fatalf("entries = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestAuditLegacyActor(t *testing.T) {
	t.Parallel()
	r, _ := http.NewRequest("DELETE", "/v1/admin/dlq/7", nil)
	r = r.WithContext(httpapi.WithPrincipal(r.Context(), httpapi.Principal{KeyID: "legacy", Name: "legacy", Scopes: []string{"full-admin"}, Legacy: true}))
	e, ok := httpapi.AuditEntryFor(r)
	if !ok || e.Actor != "legacy" || e.ActorKeyID != "" || e.Action != "dlq.delete" || e.ResourceID != "7" {
		t.Errorf("entry = %+v, %v", e, ok)
	}
	r, _ = http.NewRequest("POST", "/v1/events", nil)
	if _, ok := httpapi.AuditEntryFor(r); ok {
		t.Error("non-admin path audited")
	}
}

func TestAuditQueue(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sink := &memSink{block: make(chan struct{}), entered: make(chan struct{}, 10)}
	q := httpapi.NewAuditQueue(sink, 2, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()

	// The worker takes the first entry and blocks in the sink; two more fill
	// the buffer; the fourth is dropped without blocking the caller.
	if err := q.Record(ctx, httpapi.AuditEntry{Action: "a.post"}); err != nil {
		t.Fatal(err)
	}
	<-sink.entered
	for _, a := range []string{"b.post", "c.post"} {
		if err := q.Record(ctx, httpapi.AuditEntry{Action: a}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Record(ctx, httpapi.AuditEntry{Action: "d.post"}); !errors.Is(err, httpapi.ErrAuditQueueFull) {
		t.Fatalf("fourth Record = %v, want ErrAuditQueueFull", err)
	}
	cancel()
	close(sink.block)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	var actions []string
	for _, e := range sink.all() {
		actions = append(actions, e.Action)
	}
	if len(actions) != 3 || actions[0] != "a.post" || actions[1] != "b.post" || actions[2] != "c.post" {
		t.Errorf("recorded %v, want [a.post b.post c.post] (drained at shutdown)", actions)
	}
}
