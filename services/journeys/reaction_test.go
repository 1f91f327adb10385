package journeys_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/journeys"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
)

// Bucket reactions (spec 10 §4.10) run as journeys on the transitions the
// buckets consumer publishes: an enter reaction with firstEntryOnly runs
// for the first membership only (the later one leaves a completed state),
// a leave reaction sees its reason, and a journey on the generic
// bucket:entered gets the generic copy (scenario 27).
func TestBucketReactions(t *testing.T) {
	t.Parallel()
	pro := buckets.MustDefine(buckets.Meta{ID: "pro", Name: "Pro", Criteria: ptr(condition.Prop("plan").Eq("pro"))})
	var mu sync.Mutex
	var seen []string
	note := func(s string) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	enter, err := journey.OnEnter("pro", true, func(ctx *journey.Ctx, u journey.User, r journey.ReactionInfo) error {
		note(fmt.Sprintf("enter %s #%d first=%v", u.Key, r.EntryCount, r.IsFirstEntry))
		return ctx.SendEmail(journey.Email{Template: "welcome", To: "x@example.com"})
	}).Bind("Pro", true)
	if err != nil {
		t.Fatal(err)
	}
	leave, err := journey.OnLeave("pro", func(ctx *journey.Ctx, u journey.User, r journey.ReactionInfo) error {
		note("leave " + u.Key + " " + r.Reason)
		return nil
	}, "criteria").Bind("Pro", true)
	if err != nil {
		t.Fatal(err)
	}
	generic := journey.MustDefine(journey.Meta{ID: "any-entry", Name: "Any entry", EntryLimit: journey.Unlimited, Trigger: journey.OnEvent("bucket:entered")},
		func(ctx *journey.Ctx, u journey.User) error {
			note("generic " + fmt.Sprint(u.Properties["bucketId"]))
			return nil
		})
	e := startEngine(t, []*journey.Journey{enter, leave, generic}, engineOptions{buckets: []*buckets.Bucket{pro}})

	e.sendContact("u1", map[string]any{"plan": "pro"})
	e.waitStatus("u1", enter.ID(), journeys.StatusCompleted, 5*time.Second)
	e.sendContact("u1", map[string]any{"plan": "free"})
	e.waitStatus("u1", leave.ID(), journeys.StatusCompleted, 5*time.Second)
	e.sendContact("u1", map[string]any{"plan": "pro"})
	deadline := time.Now().Add(5 * time.Second)
	for len(e.states("u1", enter.ID())) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	e.waitStatus("u1", enter.ID(), journeys.StatusCompleted, 5*time.Second)
	deadline = time.Now().Add(5 * time.Second)
	for len(e.states("u1", generic.ID())) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	e.waitStatus("u1", generic.ID(), journeys.StatusCompleted, 5*time.Second)

	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"enter u1 #1 first=true": 1, "leave u1 criteria": 1, "generic pro": 2}
	got := map[string]int{}
	for _, s := range seen {
		got[s]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("handlers ran %v, want %v", got, want)
	}
	if n := len(e.emails()); n != 1 {
		t.Errorf("%d emails, want 1: the second entry is filtered", n)
	}
	var stored int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM user_events WHERE user_id = 'u1' AND event = 'bucket:entered'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 2 {
		t.Errorf("%d generic copies stored, want 2", stored)
	}
}

func ptr[T any](v T) *T { return &v }
