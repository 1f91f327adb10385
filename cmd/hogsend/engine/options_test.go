package engine

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/apiclient"
	"github.com/seed-eeb360f6/hogsend/services/condition"
)

// A program embedding the engine runs its own bucket definitions.
func TestEmbeddingProgramRunsItsOwnBuckets(t *testing.T) {
	t.Parallel()
	vip := condition.Prop("tier").Eq("vip")
	cfg := testConfig(t, withBuckets("*"))
	m := &Main{Config: cfg, Dev: true, Stdout: io.Discard, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Buckets: []*buckets.Bucket{buckets.MustDefine(buckets.Meta{ID: "vip", Name: "VIPs", Criteria: &vip})}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	admin := apiclient.New(m.URL(), testAdminKey)
	if _, err := admin.SendEvent(ctxT(t), apiclient.Event{Name: "upgraded", UserID: "v1", ContactProperties: map[string]any{"tier": "vip", "plan": "pro"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool {
		for _, e := range eventsOf(t, admin, "v1") {
			if e.Event == "bucket:entered:vip" {
				return true
			}
		}
		return false
	}, func() string { return "bucket:entered:vip in v1's history" })
	for _, e := range eventsOf(t, admin, "v1") {
		if e.Event == "bucket:entered:pro-plan" {
			t.Fatal("the stock examples ran beside the program's own buckets")
		}
	}
}
