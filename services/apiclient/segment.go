package apiclient

import (
	"context"
	"net/http"
)

// SegmentMessage is a track, page, screen or identify call of the Segment
// HTTP Tracking API. MessageID deduplicates.
type SegmentMessage struct {
	Type        string         `json:"type,omitempty"`
	UserID      string         `json:"userId,omitempty"`
	AnonymousID string         `json:"anonymousId,omitempty"`
	Event       string         `json:"event,omitempty"`
	Name        string         `json:"name,omitempty"` // page and screen calls
	Properties  map[string]any `json:"properties,omitempty"`
	Traits      map[string]any `json:"traits,omitempty"`
	MessageID   string         `json:"messageId,omitempty"`
	Timestamp   string         `json:"timestamp,omitempty"`
}

// SegmentResult answers /v1/track and /v1/identify.
type SegmentResult struct {
	Success bool   `json:"success"`
	ID      string `json:"id"`
	Stored  bool   `json:"stored"`
}

// SegmentBatchResult answers /v1/batch.
type SegmentBatchResult struct {
	Success  bool        `json:"success"`
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Results  []BatchItem `json:"results"`
}

// SegmentTrack calls POST /v1/track. Pass WithBasicAuth to authenticate
// the way Segment libraries do.
func (c *Client) SegmentTrack(ctx context.Context, m SegmentMessage, opts ...RequestOption) (SegmentResult, error) {
	var out SegmentResult
	_, err := c.DoRequest(ctx, http.MethodPost, "/v1/track", m, &out, opts...)
	return out, err
}

// SegmentIdentify calls POST /v1/identify.
func (c *Client) SegmentIdentify(ctx context.Context, m SegmentMessage, opts ...RequestOption) (SegmentResult, error) {
	var out SegmentResult
	_, err := c.DoRequest(ctx, http.MethodPost, "/v1/identify", m, &out, opts...)
	return out, err
}

// SegmentBatch calls POST /v1/batch.
func (c *Client) SegmentBatch(ctx context.Context, batch []SegmentMessage, opts ...RequestOption) (SegmentBatchResult, error) {
	var out SegmentBatchResult
	_, err := c.DoRequest(ctx, http.MethodPost, "/v1/batch", map[string]any{"batch": batch}, &out, opts...)
	return out, err
}
