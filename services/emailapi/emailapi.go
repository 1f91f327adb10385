// Package emailapi serves the email admin and reporting routes of spec 20
// §5: the send list and detail (/v1/admin/emails), the email metrics
// (/v1/admin/metrics/emails, …/deliverability), the overview
// (/v1/admin/metrics/overview, spec 10 §5.7), the per-template and
// per-contact reports and the CSV export (/v1/admin/reporting), and the
// admin resend (spec 20 §1.9).
//
// Everything but the resend only reads: the mailer owns email_sends,
// tracked_links and link_clicks. The resend writes nothing either; it
// hands a new send command to the mailer (the [Go] variant of §1.9: a real
// tracked send with rendering, tracking and the suppression check, where
// the reference inserted a row that never advanced).
package emailapi

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
)

// The reference's error messages.
const (
	msgEmailNotFound    = "Email not found"
	msgNotResendable    = "Email is not in a resendable state"
	msgNoTemplateKey    = "Cannot resend: no template key to re-render from"
	msgTemplateNotSent  = "Template has never been sent"
	msgContactNotFound  = "Contact not found"
	msgDispatchDisabled = "Email sending unavailable"
)

// Dispatcher hands one send command to the mailer and waits for its
// outcome: ok is false when the mailer did not answer in time (the send
// stays queued and still happens), and a result with Error set is a send
// that failed for good. *mailer.API satisfies it; it sets cmd.ID and
// cmd.IdempotencyKey from key.
type Dispatcher interface {
	Dispatch(ctx context.Context, cmd *streams.EmailCommand, key string) (streams.EmailResult, bool, error)
}

// Service serves the routes.
type Service struct {
	pool       *pgxpool.Pool
	dispatcher Dispatcher
	now        func() time.Time
}

// Options configure the service.
type Options struct {
	// Now is the clock of the relative windows (the overview's 24 h, 7 d
	// and 30 d, the default deliverability range) and of a resend's
	// RequestedAt. Default time.Now.
	Now func() time.Time
}

// New returns the service over pool, resending through dispatcher. With a
// nil dispatcher the resend route answers 503.
func New(pool *pgxpool.Pool, dispatcher Dispatcher) *Service {
	return NewWithOptions(pool, dispatcher, Options{})
}

// NewWithOptions is New with options.
func NewWithOptions(pool *pgxpool.Pool, dispatcher Dispatcher, opts Options) *Service {
	s := &Service{pool: pool, dispatcher: dispatcher, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

func (s *Service) q() *dbsqlc.Queries { return dbsqlc.New(s.pool) }

// Routes registers the routes: reads need the read scope, the resend
// journey-admin.
func (s *Service) Routes(r *httpapi.Router, auth httpapi.Authenticator) {
	read := httpapi.RequireScope(auth, httpapi.ScopeRead)
	write := httpapi.RequireScope(auth, httpapi.ScopeJourneyAdmin)
	emailTags := []string{"admin", "emails"}
	metricTags := []string{"admin", "metrics", "emails"}
	reportTags := []string{"admin", "reporting"}
	window := []httpapi.QueryParam{
		{Name: "from", Description: "created_at lower bound, inclusive (ISO-8601 UTC ending in Z)", Schema: httpapi.DateTimeSchema()},
		{Name: "to", Description: "created_at upper bound, inclusive (ISO-8601 UTC ending in Z)", Schema: httpapi.DateTimeSchema()},
	}
	badParam := httpapi.Response{Description: "A query parameter is invalid (invalid_request naming it)"}

	r.Handle(http.MethodGet, "/v1/admin/emails", read(http.HandlerFunc(s.list)), httpapi.Doc{
		Summary: "List email sends with filters and sorting", Tags: emailTags, Scope: httpapi.ScopeRead,
		Description: "journeyId and the journey half of userId go through the send's live journey state; userId matches the send's " +
			"user_id or that state's user. engagement keeps sends whose matching timestamp is set. Sorting uses Postgres's null " +
			"ordering (NULLs first descending, last ascending).",
		Query: append(append(httpapi.PaginationQuery(),
			httpapi.QueryParam{Name: "toEmail", Description: "exact recipient", Schema: httpapi.StringSchema()},
			httpapi.QueryParam{Name: "templateKey", Schema: httpapi.StringSchema()},
			httpapi.QueryParam{Name: "status", Schema: httpapi.EnumSchema(Statuses()...)},
			httpapi.QueryParam{Name: "journeyId", Schema: httpapi.StringSchema()},
			httpapi.QueryParam{Name: "userId", Schema: httpapi.StringSchema()},
			httpapi.QueryParam{Name: "category", Schema: httpapi.StringSchema()},
			httpapi.QueryParam{Name: "engagement", Schema: httpapi.EnumSchema(Engagements()...)},
			httpapi.QueryParam{Name: "sort", Description: "default createdAt", Schema: httpapi.EnumSchema(Sorts()...)},
			httpapi.QueryParam{Name: "order", Description: "default desc", Schema: httpapi.EnumSchema(OrderAsc, OrderDesc)},
		), window...),
		Responses: map[int]httpapi.Response{
			200: {Description: "{emails, total, limit, offset}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
				"emails": httpapi.ArraySchema(emailSchema()), "total": httpapi.IntegerSchema(), "limit": httpapi.IntegerSchema(), "offset": httpapi.IntegerSchema(),
			})},
			400: badParam,
		},
	})
	r.Handle(http.MethodGet, "/v1/admin/emails/:id", read(http.HandlerFunc(s.get)), httpapi.Doc{
		Summary: "Get a send with its event timeline, tracked links and journey context", Tags: emailTags, Scope: httpapi.ScopeRead,
		Description: "events, oldest first: queued (created), sent, delivered, opened, bounced, complained when set, failed (last update) " +
			"when failed, and one clicked per recorded click with its url, ipAddress and userAgent. trackedLinks in creation order with " +
			"their clicks, oldest first. journeyContext is the live journey state, or null.",
		Responses: map[int]httpapi.Response{
			200: {Description: "{email, events, trackedLinks, journeyContext}", Schema: detailSchema()},
			400: {Description: "id is not a UUID"},
			404: {Description: msgEmailNotFound},
		},
	})
	r.Handle(http.MethodPost, "/v1/admin/emails/:id/resend", write(http.HandlerFunc(s.resend)), httpapi.Doc{
		Summary: "Resend a failed or bounced email as a new tracked send", Tags: emailTags, Scope: httpapi.ScopeJourneyAdmin,
		Description: "Sends the row's template again to its recipient through the mailer (rendering, tracking, suppression check), " +
			"with the row's subject, sender, category, user, contact and journey state and the props given here. The new send gets " +
			"its own row; the answer names it. status queued means the mailer had not decided yet when the request stopped waiting.",
		Request: httpapi.ObjectSchema(map[string]httpapi.Schema{"props": httpapi.AnyObjectSchema()}),
		Responses: map[int]httpapi.Response{
			202: {Description: "{emailId, status, reason?}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
				"emailId": httpapi.StringSchema(), "status": httpapi.StringSchema(), "reason": httpapi.StringSchema(),
			}, "emailId", "status")},
			400: {Description: "id is not a UUID, or props is not an object"},
			404: {Description: msgEmailNotFound},
			409: {Description: msgNotResendable + ", or " + msgNoTemplateKey},
			500: {Description: "The provider refused the send"},
			503: {Description: "No mailer is configured"},
		},
	})

	r.Handle(http.MethodGet, "/v1/admin/metrics/emails", read(http.HandlerFunc(s.templateMetrics)), httpapi.Doc{
		Summary: "Per-template email counts and rates", Tags: metricTags, Scope: httpapi.ScopeRead,
		Description: "Over sends created in the window: sent (sent_at), delivered (status delivered or delivered_at), opened, clicked " +
			"(timestamps), bounced (status). deliveryRate = delivered/sent, openRate = opened/(delivered, else sent), " +
			"clickRate = clicked/opened, clickToDeliveryRate = clicked/delivered; rates have 4 decimals and are 0 without a denominator. " +
			"includeUntemplated adds the sends without a template as \"(none)\".",
		Query: append(append([]httpapi.QueryParam{}, window...),
			httpapi.QueryParam{Name: "includeUntemplated", Description: "default false", Schema: httpapi.EnumSchema("true", "false")}),
		Responses: map[int]httpapi.Response{
			200: {Description: "{templates}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{"templates": httpapi.ArraySchema(templateMetricsSchema())})},
			400: badParam,
		},
	})
	r.Handle(http.MethodGet, "/v1/admin/metrics/emails/deliverability", read(http.HandlerFunc(s.deliverability)), httpapi.Doc{
		Summary: "Deliverability per day, week or month", Tags: metricTags, Scope: httpapi.ScopeRead,
		Description: "Sends created in the window (default the last 30 days) per period, ascending: total, delivered (status delivered or " +
			"delivered_at), bounced and complained (status), deliveryRate = delivered/total. date is the UTC period start as Postgres " +
			"prints a timestamptz (\"2025-03-08 00:00:00+00\").",
		Query: append([]httpapi.QueryParam{{Name: "period", Description: "default day", Schema: httpapi.EnumSchema(Periods()...)}}, window...),
		Responses: map[int]httpapi.Response{
			200: {Description: "{points}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{"points": httpapi.ArraySchema(pointSchema())})},
			400: badParam,
		},
	})
	r.Handle(http.MethodGet, "/v1/admin/metrics/overview", read(http.HandlerFunc(s.overview)), httpapi.Doc{
		Summary: "System-wide overview counts", Tags: []string{"admin", "metrics"}, Scope: httpapi.ScopeRead,
		Description: "Live contacts; live active or waiting journey states; distinct buckets with a live active membership; live active " +
			"memberships; sends with sent_at in the last 24 h, 7 d and 30 d; bounceRate30d = sends with status bounced created in the " +
			"last 30 d ÷ emailsSent30d; unsubscribeRate = preference rows unsubscribed from everything ÷ all preference rows.",
		Responses: map[int]httpapi.Response{200: {Description: "The overview", Schema: overviewSchema()}},
	})

	r.Handle(http.MethodGet, "/v1/admin/reporting/templates/:key", read(http.HandlerFunc(s.templateReport)), httpapi.Doc{
		Summary: "One template's totals and time series", Tags: reportTags, Scope: httpapi.ScopeRead,
		Description: "Like the metrics, but bounced and complained count the timestamps. The window echoes the query values. " +
			"404 when no send ever used the key, whatever the window.",
		Query: append(append([]httpapi.QueryParam{}, window...),
			httpapi.QueryParam{Name: "granularity", Description: "default day", Schema: httpapi.EnumSchema(Periods()...)}),
		Responses: map[int]httpapi.Response{
			200: {Description: "{templateKey, window, totals, series}", Schema: templateReportSchema()},
			400: badParam,
			404: {Description: msgTemplateNotSent},
		},
	})
	r.Handle(http.MethodGet, "/v1/admin/reporting/contacts/:id/activity", read(http.HandlerFunc(s.contactActivity)), httpapi.Doc{
		Summary: "A contact's sends with their engagement, newest first", Tags: reportTags, Scope: httpapi.ScopeRead,
		Description: "id is a live contact's UUID, else its external id (aliases are not followed). A send belongs to the contact when " +
			"its user_id is the contact key (external id, else anonymous id, else id), its user_email is the contact's email " +
			"(case-insensitively) or its contact_id names the contact.",
		Query: httpapi.PaginationQuery(),
		Responses: map[int]httpapi.Response{
			200: {Description: "{contact, sends, total, limit, offset}", Schema: activitySchema()},
			400: badParam,
			404: {Description: msgContactNotFound},
		},
	})
	r.Handle(http.MethodGet, "/v1/admin/reporting/sends/export", read(http.HandlerFunc(s.export)), httpapi.Doc{
		Summary: "Export sends as CSV, newest first", Tags: reportTags, Scope: httpapi.ScopeRead,
		Description: "At most 50000 rows. Header id,createdAt,templateKey,status,toEmail,userId,subject,sentAt,deliveredAt,openedAt," +
			"clickedAt,bouncedAt,complainedAt,bounceType; NULL is empty, times are ISO-8601 UTC, a cell holding a quote, comma, CR or LF " +
			"is quoted with quotes doubled; rows are joined by LF with no trailing newline. userId filters the send's own column; an " +
			"unknown engagement does not filter.",
		Query: append([]httpapi.QueryParam{
			{Name: "templateKey", Schema: httpapi.StringSchema()},
			{Name: "status", Schema: httpapi.EnumSchema(Statuses()...)},
			{Name: "category", Schema: httpapi.StringSchema()},
			{Name: "userId", Schema: httpapi.StringSchema()},
			{Name: "engagement", Schema: httpapi.StringSchema()},
		}, window...),
		Responses: map[int]httpapi.Response{
			200: {Description: "text/csv attachment email-sends.csv", Schema: httpapi.StringSchema()},
			400: badParam,
		},
	})
}
