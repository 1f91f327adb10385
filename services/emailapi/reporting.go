package emailapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

func (s *Service) templateReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := window(q)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	period, err := enum(q, "granularity", "day", Periods()...)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	key := httpapi.Param(r, "key")
	ctx := r.Context()
	db := s.q()
	// The 404 ignores the window: a template sent outside it has a report
	// of zeros.
	sent, err := db.ReportTemplateSent(ctx, key)
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("look up template sends: %w", err))
		return
	}
	if !sent {
		httpapi.WriteError(w, r, errcode.NotFound(msgTemplateNotSent))
		return
	}
	t, err := db.ReportTemplateTotals(ctx, dbsqlc.ReportTemplateTotalsParams{TemplateKey: key, FromAt: from, ToAt: to})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("count template sends: %w", err))
		return
	}
	series, err := db.ReportTemplateSeries(ctx, dbsqlc.ReportTemplateSeriesParams{Period: period, TemplateKey: key, FromAt: from, ToAt: to})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("count template series: %w", err))
		return
	}
	out := TemplateReport{
		TemplateKey: key,
		Window:      Window{From: optString(q, "from"), To: optString(q, "to")},
		Totals: TemplateTotals{
			Sent: t.Sent, Delivered: t.Delivered, Opened: t.Opened, Clicked: t.Clicked, Bounced: t.Bounced, Complained: t.Complained,
			Rates: ratesOf(t.Sent, t.Delivered, t.Opened, t.Clicked),
		},
		Series: make([]SeriesPoint, len(series)),
	}
	for i, p := range series {
		out.Series[i] = SeriesPoint{Date: p.Date, Sent: p.Sent, Delivered: p.Delivered, Opened: p.Opened, Clicked: p.Clicked, Bounced: p.Bounced}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// contact resolves the activity route's id: a live contact with that
// UUID, else a live contact with that external id (no aliases).
func (s *Service) contact(ctx context.Context, ref string) (dbsqlc.ReportContactGetRow, error) {
	db := s.q()
	if id, err := uuid.Parse(ref); err == nil && len(ref) == 36 {
		c, err := db.ReportContactGet(ctx, id)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return c, fmt.Errorf("read contact: %w", err)
		}
	}
	c, err := db.ReportContactByExternalID(ctx, &ref)
	if errors.Is(err, pgx.ErrNoRows) {
		return dbsqlc.ReportContactGetRow{}, errcode.NotFound(msgContactNotFound)
	}
	if err != nil {
		return dbsqlc.ReportContactGetRow{}, fmt.Errorf("read contact: %w", err)
	}
	return dbsqlc.ReportContactGetRow(c), nil
}

func (s *Service) contactActivity(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	c, err := s.contact(ctx, httpapi.Param(r, "id"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	// The contact key: external id, else anonymous id, else the id.
	userKey := c.ID.String()
	if c.ExternalID != nil {
		userKey = *c.ExternalID
	} else if c.AnonymousID != nil {
		userKey = *c.AnonymousID
	}
	db := s.q()
	rows, err := db.ReportContactSends(ctx, dbsqlc.ReportContactSendsParams{
		UserKey: userKey, Email: c.Email, ContactID: c.ID, Lim: int32(limit), Off: int32(min(offset, maxOffset)),
	})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("list contact sends: %w", err))
		return
	}
	total, err := db.ReportContactSendCount(ctx, dbsqlc.ReportContactSendCountParams{UserKey: userKey, Email: c.Email, ContactID: c.ID})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("count contact sends: %w", err))
		return
	}
	out := Activity{
		Contact: ActivityContact{ExternalID: c.ExternalID, Email: c.Email},
		Sends:   make([]ActivitySend, len(rows)),
		Page:    httpapi.Page{Total: int(total), Limit: limit, Offset: offset},
	}
	for i, row := range rows {
		out.Sends[i] = ActivitySend{
			ID: row.ID.String(), TemplateKey: row.TemplateKey, Subject: row.Subject, Status: row.Status,
			SentAt: httpapi.TimePtr(row.SentAt), DeliveredAt: httpapi.TimePtr(row.DeliveredAt), OpenedAt: httpapi.TimePtr(row.OpenedAt),
			ClickedAt: httpapi.TimePtr(row.ClickedAt), BouncedAt: httpapi.TimePtr(row.BouncedAt), ComplainedAt: httpapi.TimePtr(row.ComplainedAt),
			BounceType: row.BounceType, CreatedAt: httpapi.NewTime(row.CreatedAt),
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// exportHeader is the CSV header of the export.
var exportHeader = []string{
	"id", "createdAt", "templateKey", "status", "toEmail", "userId", "subject",
	"sentAt", "deliveredAt", "openedAt", "clickedAt", "bouncedAt", "complainedAt", "bounceType",
}

// export writes the filtered sends as CSV. The quoting is written here
// rather than with encoding/csv, which also quotes cells with a leading
// space and ends every record with a newline; spec 20 §5 quotes only
// cells holding a quote, comma, CR or LF and leaves no trailing newline.
func (s *Service) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := dbsqlc.ReportSendExportParams{
		TemplateKey: optString(q, "templateKey"), Category: optString(q, "category"), UserID: optString(q, "userId"),
		Lim: maxExportRows,
	}
	var err error
	if p.Status, err = optEnum(q, "status", Statuses()...); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	// An unknown engagement does not filter (spec 20 §5).
	if e := q.Get("engagement"); slices.Contains(Engagements(), e) {
		p.Engagement = &e
	}
	if p.FromAt, p.ToAt, err = window(q); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	rows, err := s.q().ReportSendExport(r.Context(), p)
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("export email sends: %w", err))
		return
	}
	var b strings.Builder
	writeCSVRow(&b, exportHeader)
	for _, row := range rows {
		b.WriteByte('\n')
		writeCSVRow(&b, []string{
			row.ID.String(), httpapi.FormatTime(row.CreatedAt), deref(row.TemplateKey), row.Status, row.ToEmail, deref(row.UserID), row.Subject,
			csvTime(row.SentAt), csvTime(row.DeliveredAt), csvTime(row.OpenedAt), csvTime(row.ClickedAt), csvTime(row.BouncedAt),
			csvTime(row.ComplainedAt), deref(row.BounceType),
		})
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="email-sends.csv"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return httpapi.FormatTime(*t)
}

// writeCSVRow writes cells joined by commas, quoting a cell that holds a
// quote, comma, CR or LF with its quotes doubled.
func writeCSVRow(b *strings.Builder, cells []string) {
	for i, c := range cells {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(csvCell(c))
	}
}

func csvCell(s string) string {
	if !strings.ContainsAny(s, "\",\r\n") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
