package mailer_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// recorder records deliverability calls.
type recorder struct {
	mu                  sync.Mutex
	bounces, complaints []string
}

func (r *recorder) RecordBounce(_ context.Context, userID, email string, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bounces = append(r.bounces, userID+"|"+email)
	return nil
}

func (r *recorder) RecordComplaint(_ context.Context, userID, email string, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.complaints = append(r.complaints, userID+"|"+email)
	return nil
}

// Provider webhooks move statuses forward only, fill timestamps only when
// empty, record bounces on the address, and refuse bad signatures.
func TestResendWebhook(t *testing.T) {
	t.Parallel()
	f := newFixture(t, newConfig(), nil)
	ctx := context.Background()
	cmd := journeyCommand("journey:w1:0", "ada@example.com")
	if _, err := f.m.Send(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	// The dev outbox answers its own id; stand in a Resend id.
	if _, err := f.pool.Exec(ctx, `UPDATE email_sends SET resend_id = 're_123', opened_at = '2026-01-01T00:00:00Z' WHERE id = $1`, uuid.MustParse(cmd.ID)); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	router := httpapi.NewRouter()
	f.m.WebhookRoutes(router, webhookSecret, rec)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	wh, err := svix.NewWebhook(webhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string, sign bool) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/webhooks/resend", bytes.NewBufferString(body))
		id, ts := "msg_"+uuid.NewString(), time.Now()
		sig, err := wh.Sign(id, ts, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if !sign {
			sig = "v1,AAAA"
		}
		req.Header.Set("svix-id", id)
		req.Header.Set("svix-timestamp", strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set("svix-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	event := func(typ string, extra string) string {
		return `{"type":"` + typ + `","created_at":"2026-11-26T10:00:00Z","data":{"email_id":"re_123","from":"a@b.c","to":["Ada@Example.com"],"subject":"x"` + extra + `}}`
	}
	if code := post(event("email.delivered", ""), false); code != 401 {
		t.Errorf("bad signature: %d, want 401", code)
	}
	for _, tc := range []struct{ typ, extra, want string }{
		{"email.delivered", "", "delivered"},
		{"email.opened", "", "opened"},
		{"email.sent", "", "opened"}, // late: never moves back
		{"email.bounced", `,"bounce":{"type":"Permanent","message":"mailbox full"}`, "bounced"},
		{"email.delivered", "", "bounced"},
		{"email.delivery_delayed", "", "bounced"},
	} {
		if code := post(event(tc.typ, tc.extra), true); code != 200 {
			t.Fatalf("%s: %d", tc.typ, code)
		}
		row, err := dbsqlc.New(f.pool).MailerSendGet(ctx, uuid.MustParse(cmd.ID))
		if err != nil {
			t.Fatal(err)
		}
		if row.Status != tc.want {
			t.Errorf("after %s: status %s, want %s", tc.typ, row.Status, tc.want)
		}
		if row.OpenedAt == nil || row.OpenedAt.Year() != 2026 || row.OpenedAt.Month() != 1 {
			t.Errorf("the first-party opened_at was overwritten: %v", row.OpenedAt)
		}
		if tc.typ == "email.bounced" && (row.BounceType == nil || *row.BounceType != "Permanent" || row.BounceReason == nil || *row.BounceReason != "mailbox full") {
			t.Errorf("bounce fields %v %v", row.BounceType, row.BounceReason)
		}
	}
	if code := post(`{"type":"email.complained","data":{"email_id":"re_unknown","to":["x@example.com"]}}`, true); code != 200 {
		t.Errorf("complaint for an unknown send: %d", code)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.bounces) != 1 || rec.bounces[0] != "u1|ada@example.com" || len(rec.complaints) != 1 || rec.complaints[0] != "x@example.com|x@example.com" {
		t.Errorf("bounces %v complaints %v", rec.bounces, rec.complaints)
	}
	names := map[string]int{}
	for _, e := range eventsOn(t, f.js) {
		names[e.Name]++
	}
	if names["email.delivered"] != 1 || names["email.bounced"] != 1 {
		t.Errorf("ingested %v, want one delivered (the late one is the same key) and one bounced", names)
	}
}
