// Package bucketapi serves the bucket admin routes (/v1/admin/buckets) and
// the bucket metrics (/v1/admin/metrics/buckets) of spec 10 §4.11. The
// definitions come from the process's registry; membership counts, members
// and metrics are read from the bucket projection's tables. The one write,
// the enabled override, goes through projections/buckets, which owns
// bucket_configs.
package bucketapi

import (
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// msgBucketNotFound is the reference's 404 body for an unregistered id.
const msgBucketNotFound = "Bucket not found"

// Service serves the routes.
type Service struct {
	pool *pgxpool.Pool
	reg  *buckets.Registry
	now  func() time.Time
}

// Options configure the service.
type Options struct {
	// Now is the clock: active memberships dwell until now in the metrics,
	// and the series defaults to the 30 days before now. Default time.Now.
	Now func() time.Time
}

// New returns the service over the buckets of reg. A nil reg serves no
// buckets.
func New(pool *pgxpool.Pool, reg *buckets.Registry) *Service {
	return NewWithOptions(pool, reg, Options{})
}

// NewWithOptions is New with options.
func NewWithOptions(pool *pgxpool.Pool, reg *buckets.Registry, opts Options) *Service {
	if reg == nil {
		reg, _ = buckets.NewRegistry("")
	}
	s := &Service{pool: pool, reg: reg, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Routes registers the routes: reads need the read scope, the enabled
// switch journey-admin.
func (s *Service) Routes(r *httpapi.Router, auth httpapi.Authenticator) {
	read := httpapi.RequireScope(auth, httpapi.ScopeRead)
	write := httpapi.RequireScope(auth, httpapi.ScopeJourneyAdmin)
	tags := []string{"admin", "buckets"}
	metricTags := []string{"admin", "metrics", "buckets"}

	r.Handle(http.MethodGet, "/v1/admin/buckets", read(http.HandlerFunc(s.list)), httpapi.Doc{
		Summary: "List the registered buckets with their membership counts", Tags: tags, Scope: httpapi.ScopeRead,
		Description: "Every registered bucket (statically disabled ones included) in registration order. " +
			"enabled is the admin override, else the definition's value; the enabled filter applies to it and total counts after filtering.",
		Query: append(httpapi.PaginationQuery(), httpapi.QueryParam{Name: "enabled", Schema: httpapi.EnumSchema("true", "false")}),
		Responses: map[int]httpapi.Response{200: {Description: "{buckets, total, limit, offset}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"buckets": httpapi.ArraySchema(bucketSchema()), "total": httpapi.IntegerSchema(), "limit": httpapi.IntegerSchema(), "offset": httpapi.IntegerSchema(),
		})}},
	})
	r.Handle(http.MethodGet, "/v1/admin/buckets/:id", read(http.HandlerFunc(s.get)), httpapi.Doc{
		Summary: "Get a bucket: definition, counts and the newest members", Tags: tags, Scope: httpapi.ScopeRead,
		Responses: map[int]httpapi.Response{
			200: {Description: "{bucket}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{"bucket": detailSchema()})},
			404: {Description: "Bucket not found"},
		},
	})
	r.Handle(http.MethodPatch, "/v1/admin/buckets/:id", write(http.HandlerFunc(s.patch)), httpapi.Doc{
		Summary: "Enable or disable a bucket", Tags: tags, Scope: httpapi.ScopeJourneyAdmin,
		Description: "Stores the admin override in bucket_configs; it wins over the definition's enabled value.",
		Request:     httpapi.ObjectSchema(map[string]httpapi.Schema{"enabled": httpapi.BooleanSchema()}, "enabled"),
		Responses:   map[int]httpapi.Response{200: {Description: "{bucket: {id, name, enabled, updatedAt}}"}, 404: {Description: "Bucket not found"}},
	})
	r.Handle(http.MethodGet, "/v1/admin/buckets/:id/members", read(http.HandlerFunc(s.members)), httpapi.Doc{
		Summary: "List a bucket's membership rows, newest entry first", Tags: tags, Scope: httpapi.ScopeRead,
		Query: append(httpapi.PaginationQuery(),
			httpapi.QueryParam{Name: "status", Description: "default active", Schema: httpapi.EnumSchema(StatusActive, StatusLeft)},
			httpapi.QueryParam{Name: "userId", Description: "the exact contact key", Schema: httpapi.StringSchema()}),
		Responses: map[int]httpapi.Response{200: {Description: "{members, total, limit, offset}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"members": httpapi.ArraySchema(memberSchema()), "total": httpapi.IntegerSchema(), "limit": httpapi.IntegerSchema(), "offset": httpapi.IntegerSchema(),
		})}, 404: {Description: "Bucket not found"}},
	})
	r.Handle(http.MethodGet, "/v1/admin/metrics/buckets", read(http.HandlerFunc(s.metrics)), httpapi.Doc{
		Summary: "Membership totals of every registered bucket", Tags: metricTags, Scope: httpapi.ScopeRead,
		Responses: map[int]httpapi.Response{200: {Description: "{buckets: [{bucketId, name, size, entered, left, avgDwellSecs}]}"}},
	})
	r.Handle(http.MethodGet, "/v1/admin/metrics/buckets/:id", read(http.HandlerFunc(s.series)), httpapi.Doc{
		Summary: "Joins and leaves of a bucket per day, week or month", Tags: metricTags, Scope: httpapi.ScopeRead,
		Query: []httpapi.QueryParam{
			{Name: "period", Description: "default day", Schema: httpapi.EnumSchema(periods...)},
			{Name: "from", Description: "ISO-8601 UTC ending in Z; default 30 days before to", Schema: httpapi.DateTimeSchema()},
			{Name: "to", Description: "ISO-8601 UTC ending in Z; default now", Schema: httpapi.DateTimeSchema()},
		},
		Responses: map[int]httpapi.Response{200: {Description: "{bucketId, size, points: [{date, entered, left}]}"}, 404: {Description: "Bucket not found"}},
	})
}

func (s *Service) q() *dbsqlc.Queries { return dbsqlc.New(s.pool) }

// bucket returns the registered bucket named by the :id parameter.
func (s *Service) bucket(r *http.Request) (*buckets.Bucket, error) {
	b, ok := s.reg.Get(httpapi.Param(r, "id"))
	if !ok {
		return nil, errcode.NotFound(msgBucketNotFound)
	}
	return b, nil
}
