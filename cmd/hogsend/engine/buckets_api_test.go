package engine

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
)

// TestBucketAdminRoutes drives the bucket admin API of a whole process: an
// ingested event makes a contact join the stock pro-plan bucket, the
// members route shows the row, and the enabled switch sticks.
func TestBucketAdminRoutes(t *testing.T) {
	t.Parallel()
	_, admin := startApp(t, withBuckets("pro-plan"))
	ctx := ctxT(t)

	if _, err := admin.SendEvent(ctx, apiclient.Event{
		Name: "plan_changed", UserID: "bk-admin-1", Email: "bk-admin-1@example.com",
		ContactProperties: map[string]any{"plan": "pro"},
	}); err != nil {
		t.Fatal(err)
	}
	var members apiclient.BucketMemberList
	var last error
	eventually(t, 10*time.Second, func() bool {
		members, last = admin.BucketMembers(ctx, "pro-plan", apiclient.BucketMembersParams{UserID: "bk-admin-1"})
		var e *apiclient.Error
		if errors.As(last, &e) && e.Status == http.StatusNotFound && e.Message == "Not Found" {
			t.Fatalf("GET /v1/admin/buckets/pro-plan/members is not routed: %v", last)
		}
		return last == nil && len(members.Members) == 1
	}, func() string { return fmt.Sprintf("bk-admin-1 in pro-plan (last: %v, %+v)", last, members) })
	m := members.Members[0]
	if m.BucketID != "pro-plan" || m.Status != "active" || m.EntryCount != 1 || str(m.Source) != "event" || members.Total != 1 {
		t.Errorf("member %+v (total %d)", m, members.Total)
	}

	b, err := admin.GetBucket(ctx, "pro-plan")
	if err != nil {
		t.Fatal(err)
	}
	if !b.Enabled || b.Counts.Active != 1 || len(b.RecentMembers) != 1 || b.RecentMembers[0].UserID != "bk-admin-1" {
		t.Errorf("pro-plan %+v", b)
	}

	set, err := admin.SetBucketEnabled(ctx, "pro-plan", false)
	if err != nil {
		t.Fatal(err)
	}
	if set.ID != "pro-plan" || set.Enabled {
		t.Errorf("PATCH answered %+v", set)
	}
	if b, err = admin.GetBucket(ctx, "pro-plan"); err != nil || b.Enabled {
		t.Errorf("pro-plan after disabling: %v %+v", err, b)
	}
	disabled := false
	list, err := admin.ListBuckets(ctx, apiclient.ListBucketsParams{Enabled: &disabled})
	if err != nil || list.Total != 1 || list.Buckets[0].ID != "pro-plan" {
		t.Errorf("disabled buckets: %v %+v", err, list)
	}
	// Buckets outside ENABLED_BUCKETS are not registered.
	_, err = admin.GetBucket(ctx, "power-users")
	wantAPIError(t, err, http.StatusNotFound, "not_found", "Bucket not found")
}
