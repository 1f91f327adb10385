package emailapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// untemplated is the key the metrics show for sends without a template.
const untemplated = "(none)"

func (s *Service) templateMetrics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := window(q)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	include, err := httpapi.QueryBool(r, "includeUntemplated", false)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	rows, err := s.q().ReportTemplateMetrics(r.Context(), dbsqlc.ReportTemplateMetricsParams{IncludeUntemplated: include, FromAt: from, ToAt: to})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("count sends per template: %w", err))
		return
	}
	out := make([]TemplateMetrics, len(rows))
	for i, row := range rows {
		key := untemplated
		if row.TemplateKey != nil {
			key = *row.TemplateKey
		}
		rt := ratesOf(row.Sent, row.Delivered, row.Opened, row.Clicked)
		out[i] = TemplateMetrics{
			TemplateKey: key, Sent: row.Sent, Delivered: row.Delivered, Opened: row.Opened, Clicked: row.Clicked, Bounced: row.Bounced,
			DeliveryRate: rt.DeliveryRate, OpenRate: rt.OpenRate, ClickRate: rt.ClickRate, ClickToDeliveryRate: rt.ClickToDeliveryRate,
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"templates": out})
}

func (s *Service) deliverability(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	period, err := enum(q, "period", "day", Periods()...)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	from, to, err := window(q)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	now := s.now()
	p := dbsqlc.ReportDeliverabilityParams{Period: period, FromAt: now.Add(-defaultWindow), ToAt: now}
	if from != nil {
		p.FromAt = *from
	}
	if to != nil {
		p.ToAt = *to
	}
	rows, err := s.q().ReportDeliverability(r.Context(), p)
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("count deliverability: %w", err))
		return
	}
	out := make([]Point, len(rows))
	for i, row := range rows {
		out[i] = Point{
			Date: row.Date, Total: row.Total, Delivered: row.Delivered, Bounced: row.Bounced, Complained: row.Complained,
			DeliveryRate: rate(row.Delivered, row.Total),
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"points": out})
}

func (s *Service) overview(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	row, err := s.q().ReportOverview(r.Context(), dbsqlc.ReportOverviewParams{
		Since24h: now.Add(-24 * time.Hour), Since7d: now.Add(-7 * 24 * time.Hour), Since30d: now.Add(-30 * 24 * time.Hour),
	})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("read overview: %w", err))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, Overview{
		TotalContacts: row.TotalContacts, ActiveJourneys: row.ActiveJourneys, ActiveBuckets: row.ActiveBuckets, BucketMembers: row.BucketMembers,
		EmailsSent24h: row.Sent24h, EmailsSent7d: row.Sent7d, EmailsSent30d: row.Sent30d,
		BounceRate30d: rate(row.Bounced30d, row.Sent30d), UnsubscribeRate: rate(row.PrefsUnsubscribed, row.PrefsTotal),
	})
}
