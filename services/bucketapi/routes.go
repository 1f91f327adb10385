package bucketapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

const (
	maxBodyBytes = 64 << 10
	// recentMembers is how many newest active rows the bucket detail shows.
	recentMembers = 10
	// defaultSeriesSpan is the metrics series window when from is absent.
	defaultSeriesSpan = 30 * 24 * time.Hour
)

// periods are the date_trunc fields the series accepts.
var periods = []string{"day", "week", "month"}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	filter, err := httpapi.QueryFilterBool(r, "enabled")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	cfgs, err := buckets.Configs(ctx, s.pool)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	type entry struct {
		b       *buckets.Bucket
		enabled bool
	}
	var matched []entry
	for _, b := range s.reg.All() {
		on := buckets.EffectiveEnabled(b, cfgs)
		if filter == nil || *filter == on {
			matched = append(matched, entry{b, on})
		}
	}
	page := httpapi.PageOf(matched, limit, offset)
	ids := make([]string, len(page))
	for i, e := range page {
		ids[i] = e.b.ID()
	}
	counts, err := s.counts(ctx, ids)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]Bucket, len(page))
	for i, e := range page {
		out[i] = bucketShape(e.b, e.enabled, counts[e.b.ID()])
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"buckets": out, "total": len(matched), "limit": limit, "offset": offset})
}

// counts reads the live row counts of ids in one statement; buckets
// without rows get zero counts.
func (s *Service) counts(ctx context.Context, ids []string) (map[string]Counts, error) {
	out := make(map[string]Counts, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.q().BucketMembershipCounts(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("count bucket memberships: %w", err)
	}
	for _, row := range rows {
		out[row.BucketID] = Counts{Active: row.ActiveCount, Left: row.LeftCount}
	}
	return out, nil
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	b, err := s.bucket(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	cfgs, err := buckets.Configs(ctx, s.pool)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	counts, err := s.counts(ctx, []string{b.ID()})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	recent, err := s.q().BucketMemberList(ctx, dbsqlc.BucketMemberListParams{BucketID: b.ID(), Status: StatusActive, Lim: recentMembers})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	detail := detailShape(b, buckets.EffectiveEnabled(b, cfgs), counts[b.ID()], membersShape(recent))
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"bucket": detail})
}

func (s *Service) patch(w http.ResponseWriter, r *http.Request) {
	enabled, err := httpapi.DecodeEnabled(w, r, maxBodyBytes)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	b, err := s.bucket(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	cfg, err := buckets.SetEnabled(r.Context(), s.pool, b.ID(), enabled)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"bucket": EnabledBucket{
		ID: b.ID(), Name: b.Name(), Enabled: cfg.Enabled, UpdatedAt: httpapi.NewTime(cfg.UpdatedAt),
	}})
}

func (s *Service) members(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	status := q.Get("status")
	switch status {
	case "":
		status = StatusActive
	case StatusActive, StatusLeft:
	default:
		httpapi.WriteError(w, r, errcode.InvalidField("status", `must be "active" or "left"`))
		return
	}
	b, err := s.bucket(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	db := s.q()
	rows, err := db.BucketMemberList(ctx, dbsqlc.BucketMemberListParams{
		BucketID: b.ID(), Status: status, UserID: q.Get("userId"), Lim: int32(limit), Off: int32(min(offset, maxOffset)),
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	total, err := db.BucketMemberCount(ctx, dbsqlc.BucketMemberCountParams{BucketID: b.ID(), Status: status, UserID: q.Get("userId")})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"members": membersShape(rows), "total": total, "limit": limit, "offset": offset})
}

// maxOffset keeps a huge offset inside the int32 the statement takes; no
// bucket has that many rows, so the page is empty either way.
const maxOffset = 1<<31 - 1

func (s *Service) metrics(w http.ResponseWriter, r *http.Request) {
	all := s.reg.All()
	ids := make([]string, len(all))
	for i, b := range all {
		ids[i] = b.ID()
	}
	byID := map[string]dbsqlc.BucketMetricsRow{}
	if len(ids) > 0 {
		rows, err := s.q().BucketMetrics(r.Context(), dbsqlc.BucketMetricsParams{Now: s.now(), BucketIds: ids})
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		for _, row := range rows {
			byID[row.BucketID] = row
		}
	}
	out := make([]BucketMetrics, len(all))
	for i, b := range all {
		m := BucketMetrics{BucketID: b.ID(), Name: b.Name()}
		if row, ok := byID[b.ID()]; ok {
			avg := row.AvgDwellSecs
			m.Size, m.Entered, m.Left, m.AvgDwellSecs = row.Size, row.Entered, row.LeftCount, &avg
		}
		out[i] = m
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"buckets": out})
}

func (s *Service) series(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	period := q.Get("period")
	if period == "" {
		period = "day"
	} else if !slices.Contains(periods, period) {
		httpapi.WriteError(w, r, errcode.InvalidField("period", `must be "day", "week" or "month"`))
		return
	}
	to := s.now().UTC()
	if raw := q.Get("to"); raw != "" {
		t, ok := httpapi.ParseTime(raw)
		if !ok {
			httpapi.WriteError(w, r, errcode.InvalidField("to", "must be an ISO-8601 UTC date-time ending in Z"))
			return
		}
		to = t
	}
	from := to.Add(-defaultSeriesSpan)
	if raw := q.Get("from"); raw != "" {
		t, ok := httpapi.ParseTime(raw)
		if !ok {
			httpapi.WriteError(w, r, errcode.InvalidField("from", "must be an ISO-8601 UTC date-time ending in Z"))
			return
		}
		from = t
	}
	if from.After(to) {
		httpapi.WriteError(w, r, errcode.InvalidField("from", "must not be after to"))
		return
	}
	b, err := s.bucket(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	counts, err := s.counts(r.Context(), []string{b.ID()})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	rows, err := s.q().BucketMetricsSeries(r.Context(), dbsqlc.BucketMetricsSeriesParams{
		Period: period, BucketID: b.ID(), FromAt: from, ToAt: to,
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	points := make([]Point, len(rows))
	for i, row := range rows {
		points[i] = Point{Date: row.Date, Entered: row.Entered, Left: row.LeftCount}
	}
	httpapi.WriteJSON(w, http.StatusOK, Series{BucketID: b.ID(), Size: counts[b.ID()].Active, Points: points})
}
