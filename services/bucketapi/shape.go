package bucketapi

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// Membership statuses, the values of the members route's status filter.
const (
	StatusActive = "active"
	StatusLeft   = "left"
)

// Bucket is the list shape of a bucket (spec 10 §4.11).
type Bucket struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Enabled is the bucket_configs override, else the static value.
	Enabled bool   `json:"enabled"`
	Kind    string `json:"kind"`
	// TimeBased is the explicit flag only, not "has a within".
	TimeBased  bool   `json:"timeBased"`
	EntryLimit string `json:"entryLimit"`
	Counts     Counts `json:"counts"`
}

// Counts are live membership rows by status.
type Counts struct {
	Active int64 `json:"active"`
	Left   int64 `json:"left"`
}

// BucketDetail is the single-bucket shape: the list fields plus the rest
// of the definition, the newest members and the journeys it feeds.
type BucketDetail struct {
	Bucket
	Criteria       condition.Node      `json:"criteria"`
	EntryPeriod    *condition.Duration `json:"entryPeriod,omitempty"`
	MinDwell       *condition.Duration `json:"minDwell,omitempty"`
	MaxDwell       *condition.Duration `json:"maxDwell,omitempty"`
	ReconcileEvery *condition.Duration `json:"reconcileEvery,omitempty"`
	FastExpiry     bool                `json:"fastExpiry"`
	SyncToPostHog  bool                `json:"syncToPostHog"`
	RecentMembers  []Member            `json:"recentMembers"`
	FeedsJourneys  []FedJourney        `json:"feedsJourneys"`
}

// FedJourney is a journey a bucket's transitions trigger. There are no
// journeys yet, so the list is always empty; the shape is the spec's.
type FedJourney struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	Trigger        string  `json:"trigger"`
	SourceBucketID *string `json:"sourceBucketId"`
	Owned          bool    `json:"owned"`
}

// Member is a membership row as the admin shows it. max_dwell_at,
// dwell_state and dwell_anchor_at stay internal.
type Member struct {
	ID              string          `json:"id"`
	UserID          string          `json:"userId"`
	UserEmail       *string         `json:"userEmail"`
	BucketID        string          `json:"bucketId"`
	Status          string          `json:"status"`
	EnteredAt       httpapi.Time    `json:"enteredAt"`
	LeftAt          *httpapi.Time   `json:"leftAt"`
	ExpiresAt       *httpapi.Time   `json:"expiresAt"`
	LastEvaluatedAt *httpapi.Time   `json:"lastEvaluatedAt"`
	EntryCount      int32           `json:"entryCount"`
	Source          *string         `json:"source"`
	Context         json.RawMessage `json:"context"`
	CreatedAt       httpapi.Time    `json:"createdAt"`
	UpdatedAt       httpapi.Time    `json:"updatedAt"`
}

// EnabledBucket answers the enabled switch.
type EnabledBucket struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Enabled   bool         `json:"enabled"`
	UpdatedAt httpapi.Time `json:"updatedAt"`
}

// BucketMetrics are one bucket's totals over live rows.
type BucketMetrics struct {
	BucketID string `json:"bucketId"`
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Entered  int64  `json:"entered"`
	Left     int64  `json:"left"`
	// AvgDwellSecs is nil for a bucket without rows.
	AvgDwellSecs *int64 `json:"avgDwellSecs"`
}

// Point is one period of the series; Date is Postgres's text form of the
// truncated timestamptz in UTC ("2025-03-08 00:00:00+00").
type Point struct {
	Date    string `json:"date"`
	Entered int64  `json:"entered"`
	Left    int64  `json:"left"`
}

// Series answers the per-bucket metrics route.
type Series struct {
	BucketID string  `json:"bucketId"`
	Size     int64   `json:"size"`
	Points   []Point `json:"points"`
}

func bucketShape(b *buckets.Bucket, enabled bool, c Counts) Bucket {
	m := b.Meta()
	return Bucket{
		ID: m.ID, Name: m.Name, Description: m.Description, Enabled: enabled,
		Kind: m.Kind, TimeBased: m.TimeBased, EntryLimit: string(m.EntryLimit), Counts: c,
	}
}

func detailShape(b *buckets.Bucket, enabled bool, c Counts, recent []Member) BucketDetail {
	m := b.Meta()
	return BucketDetail{
		Bucket:   bucketShape(b, enabled, c),
		Criteria: b.Criteria(),
		// The durations are unset when zero (buckets.Meta).
		EntryPeriod:    durationOf(m.EntryPeriod),
		MinDwell:       durationOf(m.MinDwell),
		MaxDwell:       durationOf(m.MaxDwell),
		ReconcileEvery: durationOf(m.ReconcileEvery),
		FastExpiry:     m.FastExpiry,
		SyncToPostHog:  m.SyncToPostHog,
		RecentMembers:  recent,
		FeedsJourneys:  []FedJourney{},
	}
}

// durationOf writes d as the reference's duration object, split into
// whole hours, whole minutes and the remaining (possibly fractional)
// seconds; nil when d is not positive.
func durationOf(d time.Duration) *condition.Duration {
	if d <= 0 {
		return nil
	}
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	return &condition.Duration{Hours: float64(h), Minutes: float64(m), Seconds: d.Seconds()}
}

func memberShape(m dbsqlc.BucketMembership) Member {
	ctx := m.Context
	if t := bytes.TrimSpace(ctx); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		ctx = json.RawMessage("{}")
	}
	return Member{
		ID: m.ID.String(), UserID: m.UserID, UserEmail: m.UserEmail, BucketID: m.BucketID, Status: m.Status,
		EnteredAt: httpapi.NewTime(m.EnteredAt), LeftAt: httpapi.TimePtr(m.LeftAt), ExpiresAt: httpapi.TimePtr(m.ExpiresAt),
		LastEvaluatedAt: httpapi.TimePtr(m.LastEvaluatedAt), EntryCount: m.EntryCount, Source: m.Source, Context: ctx,
		CreatedAt: httpapi.NewTime(m.CreatedAt), UpdatedAt: httpapi.NewTime(m.UpdatedAt),
	}
}

func membersShape(rows []dbsqlc.BucketMembership) []Member {
	out := make([]Member, len(rows))
	for i, r := range rows {
		out[i] = memberShape(r)
	}
	return out
}

// Schemas for the OpenAPI document.

func durationSchema() httpapi.Schema {
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"hours": httpapi.NumberSchema(), "minutes": httpapi.NumberSchema(), "seconds": httpapi.NumberSchema(),
	})
}

func bucketSchema() httpapi.Schema {
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.StringSchema(), "name": httpapi.StringSchema(), "description": httpapi.StringSchema(),
		"enabled": httpapi.BooleanSchema(), "kind": httpapi.EnumSchema(buckets.KindDynamic), "timeBased": httpapi.BooleanSchema(),
		"entryLimit": httpapi.EnumSchema(string(buckets.Unlimited), string(buckets.Once), string(buckets.OncePerPeriod)),
		"counts":     httpapi.ObjectSchema(map[string]httpapi.Schema{"active": httpapi.IntegerSchema(), "left": httpapi.IntegerSchema()}),
	}, "id", "name", "enabled", "kind", "timeBased", "entryLimit", "counts")
}

func memberSchema() httpapi.Schema {
	nt := httpapi.NullableSchema(httpapi.DateTimeSchema())
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.UUIDSchema(), "userId": httpapi.StringSchema(), "userEmail": httpapi.NullableSchema(httpapi.StringSchema()),
		"bucketId": httpapi.StringSchema(), "status": httpapi.EnumSchema(StatusActive, StatusLeft),
		"enteredAt": httpapi.DateTimeSchema(), "leftAt": nt, "expiresAt": nt, "lastEvaluatedAt": nt,
		"entryCount": httpapi.IntegerSchema(), "source": httpapi.NullableSchema(httpapi.StringSchema()),
		"context": httpapi.AnyObjectSchema(), "createdAt": httpapi.DateTimeSchema(), "updatedAt": httpapi.DateTimeSchema(),
	})
}

func detailSchema() httpapi.Schema {
	s := bucketSchema()
	props := s["properties"].(map[string]httpapi.Schema)
	props["criteria"] = httpapi.AnyObjectSchema()
	for _, k := range []string{"entryPeriod", "minDwell", "maxDwell", "reconcileEvery"} {
		props[k] = durationSchema()
	}
	props["fastExpiry"] = httpapi.BooleanSchema()
	props["syncToPostHog"] = httpapi.BooleanSchema()
	props["recentMembers"] = httpapi.ArraySchema(memberSchema())
	props["feedsJourneys"] = httpapi.ArraySchema(httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.StringSchema(), "name": httpapi.StringSchema(), "trigger": httpapi.StringSchema(),
		"sourceBucketId": httpapi.NullableSchema(httpapi.StringSchema()), "owned": httpapi.BooleanSchema(),
	}))
	return s
}
