package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Bucket is a bucket as GET /v1/admin/buckets lists it.
type Bucket struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Enabled     bool         `json:"enabled"`
	Kind        string       `json:"kind"`
	TimeBased   bool         `json:"timeBased"`
	EntryLimit  string       `json:"entryLimit"`
	Counts      BucketCounts `json:"counts"`
}

// BucketCounts are live membership rows by status.
type BucketCounts struct {
	Active int64 `json:"active"`
	Left   int64 `json:"left"`
}

// BucketDuration is the API's duration object {hours?, minutes?, seconds?};
// its length is the sum of the parts.
type BucketDuration struct {
	Hours   float64 `json:"hours,omitempty"`
	Minutes float64 `json:"minutes,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
}

// Std is the duration's length.
func (d BucketDuration) Std() time.Duration {
	return time.Duration((d.Hours*3600 + d.Minutes*60 + d.Seconds) * float64(time.Second))
}

// BucketDetail is GET /v1/admin/buckets/{id}'s bucket. Unset durations
// are nil.
type BucketDetail struct {
	Bucket
	Criteria       json.RawMessage    `json:"criteria"`
	EntryPeriod    *BucketDuration    `json:"entryPeriod"`
	MinDwell       *BucketDuration    `json:"minDwell"`
	MaxDwell       *BucketDuration    `json:"maxDwell"`
	ReconcileEvery *BucketDuration    `json:"reconcileEvery"`
	FastExpiry     bool               `json:"fastExpiry"`
	SyncToPostHog  bool               `json:"syncToPostHog"`
	RecentMembers  []BucketMember     `json:"recentMembers"`
	FeedsJourneys  []BucketFedJourney `json:"feedsJourneys"`
}

// BucketFedJourney is a journey a bucket's transitions trigger.
type BucketFedJourney struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	Trigger        string  `json:"trigger"`
	SourceBucketID *string `json:"sourceBucketId"`
	Owned          bool    `json:"owned"`
}

// BucketMember is a membership row.
type BucketMember struct {
	ID              string         `json:"id"`
	UserID          string         `json:"userId"`
	UserEmail       *string        `json:"userEmail"`
	BucketID        string         `json:"bucketId"`
	Status          string         `json:"status"`
	EnteredAt       time.Time      `json:"enteredAt"`
	LeftAt          *time.Time     `json:"leftAt"`
	ExpiresAt       *time.Time     `json:"expiresAt"`
	LastEvaluatedAt *time.Time     `json:"lastEvaluatedAt"`
	EntryCount      int            `json:"entryCount"`
	Source          *string        `json:"source"`
	Context         map[string]any `json:"context"`
	CreatedAt       time.Time      `json:"createdAt"`
	UpdatedAt       time.Time      `json:"updatedAt"`
}

// BucketList is a page of buckets.
type BucketList struct {
	Buckets []Bucket `json:"buckets"`
	Total   int      `json:"total"`
	Limit   int      `json:"limit"`
	Offset  int      `json:"offset"`
}

// ListBucketsParams filters GET /v1/admin/buckets; zero values are unset
// (Enabled nil lists both).
type ListBucketsParams struct {
	Enabled       *bool
	Limit, Offset int
}

// ListBuckets calls GET /v1/admin/buckets.
func (c *Client) ListBuckets(ctx context.Context, p ListBucketsParams) (BucketList, error) {
	var out BucketList
	enabled := ""
	if p.Enabled != nil {
		enabled = strconv.FormatBool(*p.Enabled)
	}
	q := query("enabled", enabled, "limit", intOrEmpty(p.Limit), "offset", intOrEmpty(p.Offset))
	err := c.Do(ctx, http.MethodGet, "/v1/admin/buckets"+q, nil, &out)
	return out, err
}

// GetBucket calls GET /v1/admin/buckets/{id}.
func (c *Client) GetBucket(ctx context.Context, id string) (BucketDetail, error) {
	var out struct {
		Bucket BucketDetail `json:"bucket"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/admin/buckets/"+url.PathEscape(id), nil, &out)
	return out.Bucket, err
}

// EnabledBucket answers SetBucketEnabled.
type EnabledBucket struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Enabled   bool      `json:"enabled"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// SetBucketEnabled calls PATCH /v1/admin/buckets/{id} with {enabled}.
func (c *Client) SetBucketEnabled(ctx context.Context, id string, enabled bool) (EnabledBucket, error) {
	var out struct {
		Bucket EnabledBucket `json:"bucket"`
	}
	err := c.Do(ctx, http.MethodPatch, "/v1/admin/buckets/"+url.PathEscape(id), map[string]bool{"enabled": enabled}, &out)
	return out.Bucket, err
}

// BucketMemberList is a page of membership rows.
type BucketMemberList struct {
	Members []BucketMember `json:"members"`
	Total   int            `json:"total"`
	Limit   int            `json:"limit"`
	Offset  int            `json:"offset"`
}

// BucketMembersParams filters GET /v1/admin/buckets/{id}/members; zero
// values are unset (Status defaults to active on the server).
type BucketMembersParams struct {
	Status        string // "active" or "left"
	UserID        string // the exact contact key
	Limit, Offset int
}

// BucketMembers calls GET /v1/admin/buckets/{id}/members.
func (c *Client) BucketMembers(ctx context.Context, id string, p BucketMembersParams) (BucketMemberList, error) {
	var out BucketMemberList
	q := query("status", p.Status, "userId", p.UserID, "limit", intOrEmpty(p.Limit), "offset", intOrEmpty(p.Offset))
	err := c.Do(ctx, http.MethodGet, "/v1/admin/buckets/"+url.PathEscape(id)+"/members"+q, nil, &out)
	return out, err
}

// BucketMetric is one bucket's totals over live rows.
type BucketMetric struct {
	BucketID     string `json:"bucketId"`
	Name         string `json:"name"`
	Size         int64  `json:"size"`
	Entered      int64  `json:"entered"`
	Left         int64  `json:"left"`
	AvgDwellSecs *int64 `json:"avgDwellSecs"`
}

// BucketMetrics calls GET /v1/admin/metrics/buckets.
func (c *Client) BucketMetrics(ctx context.Context) ([]BucketMetric, error) {
	var out struct {
		Buckets []BucketMetric `json:"buckets"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/admin/metrics/buckets", nil, &out)
	return out.Buckets, err
}

// BucketPoint is one period of a bucket's series; Date is Postgres's text
// form of the period start in UTC ("2025-03-08 00:00:00+00").
type BucketPoint struct {
	Date    string `json:"date"`
	Entered int64  `json:"entered"`
	Left    int64  `json:"left"`
}

// BucketSeries answers GET /v1/admin/metrics/buckets/{id}.
type BucketSeries struct {
	BucketID string        `json:"bucketId"`
	Size     int64         `json:"size"`
	Points   []BucketPoint `json:"points"`
}

// BucketSeriesParams selects the series; zero values are unset (period
// day, the 30 days up to now).
type BucketSeriesParams struct {
	Period   string // "day", "week" or "month"
	From, To time.Time
}

// BucketMetricsSeries calls GET /v1/admin/metrics/buckets/{id}.
func (c *Client) BucketMetricsSeries(ctx context.Context, id string, p BucketSeriesParams) (BucketSeries, error) {
	var out BucketSeries
	from, to := "", ""
	if !p.From.IsZero() {
		from = FormatTime(p.From)
	}
	if !p.To.IsZero() {
		to = FormatTime(p.To)
	}
	q := query("period", p.Period, "from", from, "to", to)
	err := c.Do(ctx, http.MethodGet, "/v1/admin/metrics/buckets/"+url.PathEscape(id)+q, nil, &out)
	return out, err
}
