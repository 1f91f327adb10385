package emailapi

import (
	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// Email is a send as the admin shows it. UserID is the send's user_id,
// else its live journey state's user; JourneyID that state's journey.
type Email struct {
	ID             string        `json:"id"`
	JourneyStateID *string       `json:"journeyStateId"`
	TemplateKey    *string       `json:"templateKey"`
	ResendID       *string       `json:"resendId"`
	FromEmail      string        `json:"fromEmail"`
	ToEmail        string        `json:"toEmail"`
	Subject        string        `json:"subject"`
	Category       *string       `json:"category"`
	Status         string        `json:"status"`
	UserID         *string       `json:"userId"`
	JourneyID      *string       `json:"journeyId"`
	SentAt         *httpapi.Time `json:"sentAt"`
	DeliveredAt    *httpapi.Time `json:"deliveredAt"`
	OpenedAt       *httpapi.Time `json:"openedAt"`
	ClickedAt      *httpapi.Time `json:"clickedAt"`
	BouncedAt      *httpapi.Time `json:"bouncedAt"`
	ComplainedAt   *httpapi.Time `json:"complainedAt"`
	CreatedAt      httpapi.Time  `json:"createdAt"`
	UpdatedAt      httpapi.Time  `json:"updatedAt"`
}

// EmailList is the send list.
type EmailList struct {
	Emails []Email `json:"emails"`
	httpapi.Page
}

// Detail is one send with its timeline.
type Detail struct {
	Email          Email           `json:"email"`
	Events         []Event         `json:"events"`
	TrackedLinks   []TrackedLink   `json:"trackedLinks"`
	JourneyContext *JourneyContext `json:"journeyContext"`
}

// Event is one entry of a send's timeline. Clicked events carry the
// click's details; the others only a type and a time.
type Event struct {
	Type      string       `json:"type"`
	Timestamp httpapi.Time `json:"timestamp"`
	*ClickDetail
}

// ClickDetail is what a clicked event adds: the link's URL and the hit.
// Automated marks a hit that looked like a link scanner (recorded, never
// dropped).
type ClickDetail struct {
	URL       string  `json:"url"`
	IPAddress *string `json:"ipAddress"`
	UserAgent *string `json:"userAgent"`
	Automated bool    `json:"automated"`
}

// TrackedLink is a rewritten link of a send with its clicks, oldest first.
type TrackedLink struct {
	ID          string      `json:"id"`
	OriginalURL string      `json:"originalUrl"`
	ClickCount  int         `json:"clickCount"`
	Clicks      []LinkClick `json:"clicks"`
}

// LinkClick is one recorded click.
type LinkClick struct {
	ID        string       `json:"id"`
	ClickedAt httpapi.Time `json:"clickedAt"`
	IPAddress *string      `json:"ipAddress"`
	UserAgent *string      `json:"userAgent"`
	Automated bool         `json:"automated"`
}

// JourneyContext is the live journey state a send belongs to.
type JourneyContext struct {
	JourneyID     string `json:"journeyId"`
	UserID        string `json:"userId"`
	Status        string `json:"status"`
	CurrentNodeID string `json:"currentNodeId"`
}

// TemplateMetrics are one template's counts and rates. TemplateKey is
// "(none)" for the sends without a template.
type TemplateMetrics struct {
	TemplateKey         string  `json:"templateKey"`
	Sent                int64   `json:"sent"`
	Delivered           int64   `json:"delivered"`
	Opened              int64   `json:"opened"`
	Clicked             int64   `json:"clicked"`
	Bounced             int64   `json:"bounced"`
	DeliveryRate        float64 `json:"deliveryRate"`
	OpenRate            float64 `json:"openRate"`
	ClickRate           float64 `json:"clickRate"`
	ClickToDeliveryRate float64 `json:"clickToDeliveryRate"`
}

// Rates are the four engagement rates of spec 20 §5.
type Rates struct {
	DeliveryRate        float64 `json:"deliveryRate"`
	OpenRate            float64 `json:"openRate"`
	ClickRate           float64 `json:"clickRate"`
	ClickToDeliveryRate float64 `json:"clickToDeliveryRate"`
}

// ratesOf computes the rates; the open rate falls back to sent as its
// denominator when nothing was reported delivered, so opens are not
// zeroed where delivery webhooks do not arrive.
func ratesOf(sent, delivered, opened, clicked int64) Rates {
	openDen := delivered
	if openDen <= 0 {
		openDen = sent
	}
	return Rates{
		DeliveryRate:        rate(delivered, sent),
		OpenRate:            rate(opened, openDen),
		ClickRate:           rate(clicked, opened),
		ClickToDeliveryRate: rate(clicked, delivered),
	}
}

// Point is one period of the deliverability series.
type Point struct {
	Date         string  `json:"date"`
	Total        int64   `json:"total"`
	Delivered    int64   `json:"delivered"`
	Bounced      int64   `json:"bounced"`
	Complained   int64   `json:"complained"`
	DeliveryRate float64 `json:"deliveryRate"`
}

// Overview is the overview of spec 10 §5.7.
type Overview struct {
	TotalContacts   int64   `json:"totalContacts"`
	ActiveJourneys  int64   `json:"activeJourneys"`
	ActiveBuckets   int64   `json:"activeBuckets"`
	BucketMembers   int64   `json:"bucketMembers"`
	EmailsSent24h   int64   `json:"emailsSent24h"`
	EmailsSent7d    int64   `json:"emailsSent7d"`
	EmailsSent30d   int64   `json:"emailsSent30d"`
	BounceRate30d   float64 `json:"bounceRate30d"`
	UnsubscribeRate float64 `json:"unsubscribeRate"`
}

// TemplateReport is one template's totals and series.
type TemplateReport struct {
	TemplateKey string         `json:"templateKey"`
	Window      Window         `json:"window"`
	Totals      TemplateTotals `json:"totals"`
	Series      []SeriesPoint  `json:"series"`
}

// Window echoes the query's from and to as given.
type Window struct {
	From *string `json:"from"`
	To   *string `json:"to"`
}

// TemplateTotals are a template's counts (bounced and complained by
// timestamp) and rates.
type TemplateTotals struct {
	Sent       int64 `json:"sent"`
	Delivered  int64 `json:"delivered"`
	Opened     int64 `json:"opened"`
	Clicked    int64 `json:"clicked"`
	Bounced    int64 `json:"bounced"`
	Complained int64 `json:"complained"`
	Rates
}

// SeriesPoint is one period of a template's series.
type SeriesPoint struct {
	Date      string `json:"date"`
	Sent      int64  `json:"sent"`
	Delivered int64  `json:"delivered"`
	Opened    int64  `json:"opened"`
	Clicked   int64  `json:"clicked"`
	Bounced   int64  `json:"bounced"`
}

// Activity is a contact's sends.
type Activity struct {
	Contact ActivityContact `json:"contact"`
	Sends   []ActivitySend  `json:"sends"`
	httpapi.Page
}

// ActivityContact names the contact of an activity report.
type ActivityContact struct {
	ExternalID *string `json:"externalId"`
	Email      *string `json:"email"`
}

// ActivitySend is one send of a contact.
type ActivitySend struct {
	ID           string        `json:"id"`
	TemplateKey  *string       `json:"templateKey"`
	Subject      string        `json:"subject"`
	Status       string        `json:"status"`
	SentAt       *httpapi.Time `json:"sentAt"`
	DeliveredAt  *httpapi.Time `json:"deliveredAt"`
	OpenedAt     *httpapi.Time `json:"openedAt"`
	ClickedAt    *httpapi.Time `json:"clickedAt"`
	BouncedAt    *httpapi.Time `json:"bouncedAt"`
	ComplainedAt *httpapi.Time `json:"complainedAt"`
	BounceType   *string       `json:"bounceType"`
	CreatedAt    httpapi.Time  `json:"createdAt"`
}

// Resent answers the resend route.
type Resent struct {
	EmailID string `json:"emailId"`
	Status  string `json:"status"`
	// Reason is the mailer's reason for a withheld or skipped send.
	Reason string `json:"reason,omitempty"`
}

func uuidPtr(id *uuid.UUID) *string {
	if id == nil {
		return nil
	}
	s := id.String()
	return &s
}

// coalesce returns a, else b.
func coalesce(a, b *string) *string {
	if a != nil {
		return a
	}
	return b
}

func listEmail(r dbsqlc.ReportSendListRow) Email {
	return Email{
		ID: r.ID.String(), JourneyStateID: uuidPtr(r.JourneyStateID), TemplateKey: r.TemplateKey, ResendID: r.ResendID,
		FromEmail: r.FromEmail, ToEmail: r.ToEmail, Subject: r.Subject, Category: r.Category, Status: r.Status,
		UserID: coalesce(r.UserID, r.JourneyUserID), JourneyID: r.JourneyID,
		SentAt: httpapi.TimePtr(r.SentAt), DeliveredAt: httpapi.TimePtr(r.DeliveredAt), OpenedAt: httpapi.TimePtr(r.OpenedAt),
		ClickedAt: httpapi.TimePtr(r.ClickedAt), BouncedAt: httpapi.TimePtr(r.BouncedAt), ComplainedAt: httpapi.TimePtr(r.ComplainedAt),
		CreatedAt: httpapi.NewTime(r.CreatedAt), UpdatedAt: httpapi.NewTime(r.UpdatedAt),
	}
}

func detailEmail(r dbsqlc.ReportSendGetRow) Email {
	return Email{
		ID: r.ID.String(), JourneyStateID: uuidPtr(r.JourneyStateID), TemplateKey: r.TemplateKey, ResendID: r.ResendID,
		FromEmail: r.FromEmail, ToEmail: r.ToEmail, Subject: r.Subject, Category: r.Category, Status: r.Status,
		UserID: coalesce(r.UserID, r.JourneyUserID), JourneyID: r.JourneyID,
		SentAt: httpapi.TimePtr(r.SentAt), DeliveredAt: httpapi.TimePtr(r.DeliveredAt), OpenedAt: httpapi.TimePtr(r.OpenedAt),
		ClickedAt: httpapi.TimePtr(r.ClickedAt), BouncedAt: httpapi.TimePtr(r.BouncedAt), ComplainedAt: httpapi.TimePtr(r.ComplainedAt),
		CreatedAt: httpapi.NewTime(r.CreatedAt), UpdatedAt: httpapi.NewTime(r.UpdatedAt),
	}
}

// OpenAPI schemas.

func nullString() httpapi.Schema   { return httpapi.NullableSchema(httpapi.StringSchema()) }
func nullDateTime() httpapi.Schema { return httpapi.NullableSchema(httpapi.DateTimeSchema()) }

func emailSchema() httpapi.Schema {
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.UUIDSchema(), "journeyStateId": httpapi.NullableSchema(httpapi.UUIDSchema()), "templateKey": nullString(),
		"resendId": nullString(), "fromEmail": httpapi.StringSchema(), "toEmail": httpapi.StringSchema(), "subject": httpapi.StringSchema(),
		"category": nullString(), "status": httpapi.EnumSchema(Statuses()...), "userId": nullString(), "journeyId": nullString(),
		"sentAt": nullDateTime(), "deliveredAt": nullDateTime(), "openedAt": nullDateTime(), "clickedAt": nullDateTime(),
		"bouncedAt": nullDateTime(), "complainedAt": nullDateTime(), "createdAt": httpapi.DateTimeSchema(), "updatedAt": httpapi.DateTimeSchema(),
	})
}

func detailSchema() httpapi.Schema {
	event := httpapi.ObjectSchema(map[string]httpapi.Schema{
		"type":      httpapi.EnumSchema(StatusQueued, StatusSent, StatusDelivered, StatusOpened, StatusBounced, StatusComplained, StatusFailed, StatusClicked),
		"timestamp": httpapi.DateTimeSchema(), "url": httpapi.StringSchema(), "ipAddress": nullString(), "userAgent": nullString(),
		"automated": httpapi.BooleanSchema(),
	}, "type", "timestamp")
	click := httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.UUIDSchema(), "clickedAt": httpapi.DateTimeSchema(), "ipAddress": nullString(), "userAgent": nullString(),
		"automated": httpapi.BooleanSchema(),
	})
	link := httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.UUIDSchema(), "originalUrl": httpapi.StringSchema(), "clickCount": httpapi.IntegerSchema(), "clicks": httpapi.ArraySchema(click),
	})
	journey := httpapi.NullableSchema(httpapi.ObjectSchema(map[string]httpapi.Schema{
		"journeyId": httpapi.StringSchema(), "userId": httpapi.StringSchema(), "status": httpapi.StringSchema(), "currentNodeId": httpapi.StringSchema(),
	}))
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"email": emailSchema(), "events": httpapi.ArraySchema(event), "trackedLinks": httpapi.ArraySchema(link), "journeyContext": journey,
	}, "email", "events", "trackedLinks", "journeyContext")
}

func rateProps(props map[string]httpapi.Schema) map[string]httpapi.Schema {
	for _, k := range []string{"deliveryRate", "openRate", "clickRate", "clickToDeliveryRate"} {
		props[k] = httpapi.NumberSchema()
	}
	return props
}

func templateMetricsSchema() httpapi.Schema {
	return httpapi.ObjectSchema(rateProps(map[string]httpapi.Schema{
		"templateKey": httpapi.StringSchema(), "sent": httpapi.IntegerSchema(), "delivered": httpapi.IntegerSchema(),
		"opened": httpapi.IntegerSchema(), "clicked": httpapi.IntegerSchema(), "bounced": httpapi.IntegerSchema(),
	}))
}

func pointSchema() httpapi.Schema {
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"date": httpapi.StringSchema(), "total": httpapi.IntegerSchema(), "delivered": httpapi.IntegerSchema(),
		"bounced": httpapi.IntegerSchema(), "complained": httpapi.IntegerSchema(), "deliveryRate": httpapi.NumberSchema(),
	})
}

func overviewSchema() httpapi.Schema {
	props := map[string]httpapi.Schema{"bounceRate30d": httpapi.NumberSchema(), "unsubscribeRate": httpapi.NumberSchema()}
	for _, k := range []string{"totalContacts", "activeJourneys", "activeBuckets", "bucketMembers", "emailsSent24h", "emailsSent7d", "emailsSent30d"} {
		props[k] = httpapi.IntegerSchema()
	}
	return httpapi.ObjectSchema(props)
}

func templateReportSchema() httpapi.Schema {
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"templateKey": httpapi.StringSchema(),
		"window":      httpapi.ObjectSchema(map[string]httpapi.Schema{"from": nullString(), "to": nullString()}),
		"totals": httpapi.ObjectSchema(rateProps(map[string]httpapi.Schema{
			"sent": httpapi.IntegerSchema(), "delivered": httpapi.IntegerSchema(), "opened": httpapi.IntegerSchema(),
			"clicked": httpapi.IntegerSchema(), "bounced": httpapi.IntegerSchema(), "complained": httpapi.IntegerSchema(),
		})),
		"series": httpapi.ArraySchema(httpapi.ObjectSchema(map[string]httpapi.Schema{
			"date": httpapi.StringSchema(), "sent": httpapi.IntegerSchema(), "delivered": httpapi.IntegerSchema(),
			"opened": httpapi.IntegerSchema(), "clicked": httpapi.IntegerSchema(), "bounced": httpapi.IntegerSchema(),
		})),
	})
}

func activitySchema() httpapi.Schema {
	send := httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.UUIDSchema(), "templateKey": nullString(), "subject": httpapi.StringSchema(), "status": httpapi.EnumSchema(Statuses()...),
		"sentAt": nullDateTime(), "deliveredAt": nullDateTime(), "openedAt": nullDateTime(), "clickedAt": nullDateTime(),
		"bouncedAt": nullDateTime(), "complainedAt": nullDateTime(), "bounceType": nullString(), "createdAt": httpapi.DateTimeSchema(),
	})
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"contact": httpapi.ObjectSchema(map[string]httpapi.Schema{"externalId": nullString(), "email": nullString()}),
		"sends":   httpapi.ArraySchema(send), "total": httpapi.IntegerSchema(), "limit": httpapi.IntegerSchema(), "offset": httpapi.IntegerSchema(),
	})
}
