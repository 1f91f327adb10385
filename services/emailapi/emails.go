package emailapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
)

// maxResendBody bounds the resend body (props included).
const maxResendBody = 256 << 10

// listFilter reads the send list's query. Every enum and time is checked;
// a bad one is invalid_request naming the parameter.
func listFilter(r *http.Request) (dbsqlc.ReportSendListParams, error) {
	q := r.URL.Query()
	p := dbsqlc.ReportSendListParams{
		ToEmail: optString(q, "toEmail"), TemplateKey: optString(q, "templateKey"), Category: optString(q, "category"),
		JourneyID: optString(q, "journeyId"), UserID: optString(q, "userId"),
	}
	var err error
	if p.Status, err = optEnum(q, "status", Statuses()...); err != nil {
		return p, err
	}
	if p.Engagement, err = optEnum(q, "engagement", Engagements()...); err != nil {
		return p, err
	}
	if p.Sort, err = enum(q, "sort", SortCreatedAt, Sorts()...); err != nil {
		return p, err
	}
	order, err := enum(q, "order", OrderDesc, OrderAsc, OrderDesc)
	if err != nil {
		return p, err
	}
	p.SortDesc = order == OrderDesc
	if p.FromAt, p.ToAt, err = window(q); err != nil {
		return p, err
	}
	return p, nil
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	p, err := listFilter(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	p.Lim, p.Off = int32(limit), int32(min(offset, maxOffset))
	ctx := r.Context()
	db := s.q()
	rows, err := db.ReportSendList(ctx, p)
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("list email sends: %w", err))
		return
	}
	total, err := db.ReportSendCount(ctx, dbsqlc.ReportSendCountParams{
		ToEmail: p.ToEmail, TemplateKey: p.TemplateKey, Status: p.Status, Category: p.Category, JourneyID: p.JourneyID,
		UserID: p.UserID, Engagement: p.Engagement, FromAt: p.FromAt, ToAt: p.ToAt,
	})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("count email sends: %w", err))
		return
	}
	out := EmailList{Emails: make([]Email, len(rows)), Page: httpapi.Page{Total: int(total), Limit: limit, Offset: offset}}
	for i, row := range rows {
		out.Emails[i] = listEmail(row)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// send reads the send named by the id parameter; a missing one is
// not_found.
func (s *Service) send(r *http.Request) (dbsqlc.ReportSendGetRow, error) {
	id, err := httpapi.ParamUUID(r, "id")
	if err != nil {
		return dbsqlc.ReportSendGetRow{}, err
	}
	row, err := s.q().ReportSendGet(r.Context(), id)
	if errors.Is(err, pgx.ErrNoRows) {
		return row, errcode.NotFound(msgEmailNotFound)
	}
	if err != nil {
		return row, fmt.Errorf("read email send: %w", err)
	}
	return row, nil
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	row, err := s.send(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	db := s.q()
	links, err := db.ReportSendLinks(ctx, row.ID)
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("read tracked links: %w", err))
		return
	}
	clicks, err := db.ReportSendClicks(ctx, row.ID)
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("read link clicks: %w", err))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, detailOf(row, links, clicks))
}

// detailOf assembles the detail. The events are the lifecycle timestamps
// in lifecycle order, then the clicks link by link, sorted stably by time,
// so events at the same instant keep that order.
func detailOf(row dbsqlc.ReportSendGetRow, links []dbsqlc.ReportSendLinksRow, clicks []dbsqlc.ReportSendClicksRow) Detail {
	d := Detail{Email: detailEmail(row), Events: []Event{}, TrackedLinks: make([]TrackedLink, len(links))}
	d.Events = append(d.Events, Event{Type: StatusQueued, Timestamp: httpapi.NewTime(row.CreatedAt)})
	for _, e := range []struct {
		typ string
		at  *httpapi.Time
	}{
		{StatusSent, d.Email.SentAt}, {StatusDelivered, d.Email.DeliveredAt}, {StatusOpened, d.Email.OpenedAt},
		{StatusBounced, d.Email.BouncedAt}, {StatusComplained, d.Email.ComplainedAt},
	} {
		if e.at != nil {
			d.Events = append(d.Events, Event{Type: e.typ, Timestamp: *e.at})
		}
	}
	if row.Status == StatusFailed {
		// The row keeps no failure time; its last update is when it
		// failed.
		d.Events = append(d.Events, Event{Type: StatusFailed, Timestamp: httpapi.NewTime(row.UpdatedAt)})
	}
	byLink := make(map[uuid.UUID][]dbsqlc.ReportSendClicksRow, len(links))
	for _, c := range clicks {
		byLink[c.LinkID] = append(byLink[c.LinkID], c)
	}
	for i, l := range links {
		cs := byLink[l.ID]
		tl := TrackedLink{ID: l.ID.String(), OriginalURL: l.Url, ClickCount: len(cs), Clicks: make([]LinkClick, len(cs))}
		for j, c := range cs {
			tl.Clicks[j] = LinkClick{ID: c.ID.String(), ClickedAt: httpapi.NewTime(c.CreatedAt), IPAddress: c.IpAddress, UserAgent: c.UserAgent, Automated: c.Automated}
			d.Events = append(d.Events, Event{Type: StatusClicked, Timestamp: httpapi.NewTime(c.CreatedAt), ClickDetail: &ClickDetail{
				URL: l.Url, IPAddress: c.IpAddress, UserAgent: c.UserAgent, Automated: c.Automated,
			}})
		}
		d.TrackedLinks[i] = tl
	}
	sort.SliceStable(d.Events, func(i, j int) bool { return d.Events[i].Timestamp.Before(d.Events[j].Timestamp.Time) })
	if row.JourneyID != nil {
		d.JourneyContext = &JourneyContext{
			JourneyID: *row.JourneyID, UserID: deref(row.JourneyUserID), Status: deref(row.JourneyStatus), CurrentNodeID: deref(row.JourneyCurrentNodeID),
		}
	}
	return d
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type resendRequest struct {
	// Props is raw so that only an object (or null) is accepted.
	Props json.RawMessage `json:"props"`
}

// resendBody reads the optional body: none at all is no props.
func resendBody(w http.ResponseWriter, r *http.Request) (json.RawMessage, error) {
	if r.ContentLength == 0 {
		return nil, nil
	}
	var req resendRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxResendBody); err != nil {
		return nil, err
	}
	switch t := bytes.TrimSpace(req.Props); {
	case len(t) == 0, bytes.Equal(t, []byte("null")):
		return nil, nil
	case t[0] != '{':
		return nil, errcode.InvalidField("props", "must be an object")
	default:
		return t, nil
	}
}

// resend sends a failed or bounced send again as a new tracked send (spec
// 20 §1.9 [Go]). The command copies the row's recipient, identity,
// template, subject, sender, category and journey state; the mailer
// renders the template with the given props, applies the suppression
// check and tracking, and writes the new row. The key is fresh each time:
// a resend is an explicit admin action, and two clicks mean two sends.
func (s *Service) resend(w http.ResponseWriter, r *http.Request) {
	if _, err := httpapi.ParamUUID(r, "id"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	props, err := resendBody(w, r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	row, err := s.send(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if row.Status != StatusFailed && row.Status != StatusBounced {
		httpapi.WriteError(w, r, errcode.Conflict(msgNotResendable))
		return
	}
	if row.TemplateKey == nil || *row.TemplateKey == "" {
		httpapi.WriteError(w, r, errcode.Conflict(msgNoTemplateKey))
		return
	}
	if s.dispatcher == nil {
		httpapi.WriteError(w, r, errcode.Unavailable(msgDispatchDisabled, errors.New("emailapi: no dispatcher configured")))
		return
	}
	cmd := resendCommand(row, props)
	cmd.RequestedAt = s.now().UTC()
	key := "resend:" + row.ID.String() + ":" + uuid.Must(uuid.NewV7()).String()
	res, ok, err := s.dispatcher.Dispatch(r.Context(), cmd, key)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if !ok {
		httpapi.WriteJSON(w, http.StatusAccepted, Resent{EmailID: cmd.ID, Status: StatusQueued})
		return
	}
	if res.Error != "" {
		httpapi.WriteError(w, r, fmt.Errorf("resend email %s: %s", row.ID, res.Error))
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, Resent{EmailID: res.EmailSendID, Status: res.Status, Reason: res.Reason})
}

// resendCommand builds the send command from the row. user_id and
// contact_id are copied (the reference dropped them), so the new send is
// attributed and its engagement recorded like the first one.
func resendCommand(row dbsqlc.ReportSendGetRow, props json.RawMessage) *streams.EmailCommand {
	cmd := &streams.EmailCommand{
		V: 1, To: row.ToEmail, From: row.FromEmail, UserID: deref(row.UserID), Template: *row.TemplateKey,
		Subject: row.Subject, Props: props, Category: deref(row.Category), JourneyID: deref(row.JourneyID),
	}
	if row.ContactID != nil {
		cmd.ContactID = row.ContactID.String()
	}
	if row.JourneyStateID != nil {
		cmd.JourneyStateID = row.JourneyStateID.String()
	}
	return cmd
}
