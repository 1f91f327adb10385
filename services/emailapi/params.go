package emailapi

import (
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
)

// Send statuses (email_sends.status, spec 20 §1.5).
const (
	StatusQueued     = "queued"
	StatusRendered   = "rendered"
	StatusSent       = "sent"
	StatusDelivered  = "delivered"
	StatusOpened     = "opened"
	StatusClicked    = "clicked"
	StatusBounced    = "bounced"
	StatusComplained = "complained"
	StatusFailed     = "failed"
)

// Statuses returns the send statuses, the values of the status filters.
func Statuses() []string {
	return []string{StatusQueued, StatusRendered, StatusSent, StatusDelivered, StatusOpened, StatusClicked, StatusBounced, StatusComplained, StatusFailed}
}

// Engagements returns the values of the engagement filter: each keeps
// the sends whose timestamp of that name is set.
func Engagements() []string {
	return []string{StatusOpened, StatusClicked, StatusBounced, StatusComplained}
}

// Sort keys of the send list.
const (
	SortCreatedAt = "createdAt"
	SortSentAt    = "sentAt"
	SortOpenedAt  = "openedAt"
	SortClickedAt = "clickedAt"
)

// Sorts returns the sort keys of the send list.
func Sorts() []string { return []string{SortCreatedAt, SortSentAt, SortOpenedAt, SortClickedAt} }

// Sort directions of the send list.
const (
	OrderAsc  = "asc"
	OrderDesc = "desc"
)

// Periods returns the date bucket units of the series.
func Periods() []string { return []string{"day", "week", "month"} }

const (
	// maxOffset keeps an offset inside the int32 the statements take; no
	// table is that large, so the page is empty either way.
	maxOffset = math.MaxInt32
	// maxExportRows bounds the CSV export (spec 20 §5).
	maxExportRows = 50000
	// defaultWindow is the deliverability range without from.
	defaultWindow = 30 * 24 * time.Hour
)

// optString is the query value of name, nil when absent or empty.
func optString(q url.Values, name string) *string {
	v := q.Get(name)
	if v == "" {
		return nil
	}
	return &v
}

// optEnum is optString restricted to values; another value is
// invalid_request naming the parameter.
func optEnum(q url.Values, name string, values ...string) (*string, error) {
	v := optString(q, name)
	if v != nil && !slices.Contains(values, *v) {
		return nil, errcode.InvalidField(name, "must be one of "+strings.Join(values, ", "))
	}
	return v, nil
}

// enum is optEnum with a default.
func enum(q url.Values, name, def string, values ...string) (string, error) {
	v, err := optEnum(q, name, values...)
	if err != nil || v == nil {
		return def, err
	}
	return *v, nil
}

// optTime parses the query value of name as an ISO-8601 UTC date-time
// ending in Z; nil when absent or empty.
func optTime(q url.Values, name string) (*time.Time, error) {
	raw := q.Get(name)
	if raw == "" {
		return nil, nil
	}
	t, ok := httpapi.ParseTime(raw)
	if !ok {
		return nil, errcode.InvalidField(name, "must be an ISO-8601 UTC date-time ending in Z")
	}
	return &t, nil
}

// window reads from and to.
func window(q url.Values) (from, to *time.Time, err error) {
	if from, err = optTime(q, "from"); err != nil {
		return nil, nil, err
	}
	if to, err = optTime(q, "to"); err != nil {
		return nil, nil, err
	}
	return from, to, nil
}

// rate is n/d rounded to 4 decimals, 0 when d ≤ 0 (spec 20 §5).
func rate(n, d int64) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/float64(d)*10000) / 10000
}
