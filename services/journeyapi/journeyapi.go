// Package journeyapi serves the journey admin routes (/v1/admin/journeys,
// /v1/admin/journey-logs) and the journey metrics (/v1/admin/metrics/journeys)
// of spec 10 §5.7. Definitions come from the process's registry; states,
// logs and counts are read from the journeys runtime's tables.
//
// Two routes write: the enabled switch upserts journey_configs, and the
// cancel route exits one state with a conditional UPDATE (and logs it), which
// the runtime tolerates because it never resumes an exited state. Enrolling
// does not touch the tables at all: it publishes the journey's trigger event
// through the ingestion pipeline, like any product event.
package journeyapi

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/ingest"
	"github.com/seed-eeb360f6/hogsend/services/journeys"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// The reference's 404 bodies.
const (
	msgJourneyNotFound      = "Journey not found"
	msgStateNotFound        = "State not found"
	msgJourneyStateNotFound = "Journey state not found"
)

// EnrollSource is the envelope source of the events the enroll route
// publishes.
const EnrollSource = "admin"

// Enroller publishes one event through the ingestion pipeline (validation,
// idempotency, EVENTS), where journey triggers see it. *ingest.Service
// satisfies it.
type Enroller interface {
	Ingest(ctx context.Context, req *ingest.EventRequest, headerKey *string, source string) (ingest.EventResult, error)
}

// Service serves the routes.
type Service struct {
	pool     *pgxpool.Pool
	reg      *journey.Registry
	enroller Enroller
	now      func() time.Time
}

// Options configure the service.
type Options struct {
	// Now is the clock of the writes: the override's updatedAt and a
	// cancelled state's exitedAt. Default time.Now.
	Now func() time.Time
}

// New returns the service over the journeys of reg, enrolling through
// enroller. A nil reg serves no journeys; with a nil enroller the enroll
// route answers 503.
func New(pool *pgxpool.Pool, reg *journey.Registry, enroller Enroller) *Service {
	return NewWithOptions(pool, reg, enroller, Options{})
}

// NewWithOptions is New with options.
func NewWithOptions(pool *pgxpool.Pool, reg *journey.Registry, enroller Enroller, opts Options) *Service {
	if reg == nil {
		// An empty enabled list cannot fail.
		reg, _ = journey.NewRegistry("")
	}
	s := &Service{pool: pool, reg: reg, enroller: enroller, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Routes registers the routes: reads need the read scope, the writes
// (enabled switch, cancel, enroll) journey-admin.
func (s *Service) Routes(r *httpapi.Router, auth httpapi.Authenticator) {
	read := httpapi.RequireScope(auth, httpapi.ScopeRead)
	write := httpapi.RequireScope(auth, httpapi.ScopeJourneyAdmin)
	tags := []string{"admin", "journeys"}
	metricTags := []string{"admin", "metrics", "journeys"}
	stateResponse := httpapi.ObjectSchema(map[string]httpapi.Schema{
		"state": stateSchema(), "logs": httpapi.ArraySchema(logSchema()),
	}, "state", "logs")

	r.Handle(http.MethodGet, "/v1/admin/journeys", read(http.HandlerFunc(s.list)), httpapi.Doc{
		Summary: "List the registered journeys with their state counts", Tags: tags, Scope: httpapi.ScopeRead,
		Description: "Every registered journey (statically disabled ones and bucket reactions included) in registration order. " +
			"enabled is the admin override, else the definition's value; the enabled filter applies to it and total counts after filtering. " +
			"Counts are over live states.",
		Query: append(httpapi.PaginationQuery(), httpapi.QueryParam{Name: "enabled", Schema: httpapi.EnumSchema("true", "false")}),
		Responses: map[int]httpapi.Response{200: {Description: "{journeys, total, limit, offset}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"journeys": httpapi.ArraySchema(journeySchema()), "total": httpapi.IntegerSchema(), "limit": httpapi.IntegerSchema(), "offset": httpapi.IntegerSchema(),
		})}},
	})
	r.Handle(http.MethodGet, "/v1/admin/journeys/:id", read(http.HandlerFunc(s.get)), httpapi.Doc{
		Summary: "Get a journey: definition, counts and the most recently updated states", Tags: tags, Scope: httpapi.ScopeRead,
		Responses: map[int]httpapi.Response{
			200: {Description: "{journey}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{"journey": detailSchema()})},
			404: {Description: msgJourneyNotFound},
		},
	})
	r.Handle(http.MethodPatch, "/v1/admin/journeys/:id", write(http.HandlerFunc(s.patch)), httpapi.Doc{
		Summary: "Enable or disable a journey", Tags: tags, Scope: httpapi.ScopeJourneyAdmin,
		Description: "Stores the admin override in journey_configs. It wins over the definition's value in the admin, " +
			"but cannot start a statically disabled journey; runs in flight are not stopped.",
		Request: httpapi.ObjectSchema(map[string]httpapi.Schema{"enabled": httpapi.BooleanSchema()}, "enabled"),
		Responses: map[int]httpapi.Response{200: {Description: "{journey: {id, name, enabled, updatedAt}}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"journey": httpapi.ObjectSchema(map[string]httpapi.Schema{
				"id": httpapi.StringSchema(), "name": httpapi.StringSchema(), "enabled": httpapi.BooleanSchema(), "updatedAt": httpapi.DateTimeSchema(),
			}),
		})}, 404: {Description: msgJourneyNotFound}},
	})
	r.Handle(http.MethodGet, "/v1/admin/journeys/:id/states", read(http.HandlerFunc(s.states)), httpapi.Doc{
		Summary: "List a journey's live states, newest first", Tags: tags, Scope: httpapi.ScopeRead,
		Query: append(httpapi.PaginationQuery(),
			httpapi.QueryParam{Name: "status", Schema: httpapi.EnumSchema(journeys.Statuses()...)},
			httpapi.QueryParam{Name: "userId", Description: "the exact contact key", Schema: httpapi.StringSchema()}),
		Responses: map[int]httpapi.Response{200: {Description: "{states, total, limit, offset}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"states": httpapi.ArraySchema(stateSchema()), "total": httpapi.IntegerSchema(), "limit": httpapi.IntegerSchema(), "offset": httpapi.IntegerSchema(),
		})}, 404: {Description: msgJourneyNotFound}},
	})
	r.Handle(http.MethodGet, "/v1/admin/journeys/:id/states/:stateId", read(http.HandlerFunc(s.state)), httpapi.Doc{
		Summary: "Get one state of a journey with its log, oldest entry first", Tags: tags, Scope: httpapi.ScopeRead,
		Description: "The state must be live and belong to the journey; the journey need not be registered.",
		Responses: map[int]httpapi.Response{
			200: {Description: "{state, logs}", Schema: stateResponse},
			400: {Description: "stateId is not a UUID"},
			404: {Description: msgStateNotFound},
		},
	})
	r.Handle(http.MethodDelete, "/v1/admin/journeys/:id/states/:stateId", write(http.HandlerFunc(s.cancel)), httpapi.Doc{
		Summary: "Cancel an active or waiting state", Tags: tags, Scope: httpapi.ScopeJourneyAdmin,
		Description: "Sets the state exited and logs a cancelled entry. The run stops at its next wake-up, which ignores an exited state, " +
			"so hatchetCancelled is always true. The journey need not be registered.",
		Responses: map[int]httpapi.Response{
			200: {Description: "{state: {id, status, exitedAt}, hatchetCancelled}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
				"state": httpapi.ObjectSchema(map[string]httpapi.Schema{
					"id": httpapi.UUIDSchema(), "status": httpapi.EnumSchema(journeys.StatusExited), "exitedAt": httpapi.DateTimeSchema(),
				}),
				"hatchetCancelled": httpapi.BooleanSchema(),
			})},
			400: {Description: "stateId is not a UUID"},
			404: {Description: msgStateNotFound},
			409: {Description: "Cannot cancel journey in '<status>' status"},
		},
	})
	r.Handle(http.MethodPost, "/v1/admin/journeys/:id/enroll", write(http.HandlerFunc(s.enroll)), httpapi.Doc{
		Summary: "Enrol a contact by ingesting the journey's trigger event", Tags: tags, Scope: httpapi.ScopeJourneyAdmin,
		Description: "Publishes the trigger event for userId (properties as eventProperties, no idempotency key). " +
			"Like any event it enrols in every journey bound to it and is evaluated by buckets; " +
			"the answer is 202 even when an enrolment guard skips it.",
		Request: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"userId": httpapi.StringSchema(), "userEmail": {"type": "string", "format": "email"}, "properties": httpapi.AnyObjectSchema(),
		}, "userId"),
		Responses: map[int]httpapi.Response{
			202: {Description: "{enrolled: true, event, userId}", Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{
				"enrolled": httpapi.BooleanSchema(), "event": httpapi.StringSchema(), "userId": httpapi.StringSchema(),
			})},
			404: {Description: msgJourneyNotFound},
		},
	})
	r.Handle(http.MethodPost, "/v1/admin/journeys/:id/enroll/batch", write(http.HandlerFunc(s.enrollBatch)), httpapi.Doc{
		Summary: "Enrol up to 500 contacts by ingesting the journey's trigger event for each", Tags: tags, Scope: httpapi.ScopeJourneyAdmin,
		Description: "Publishes the trigger event for each user, 25 at a time. enrolled counts events ingested (a guard may still skip them), skipped the users whose event was refused or could not be ingested.",
		Request: httpapi.ObjectSchema(map[string]httpapi.Schema{
			"users": httpapi.ArraySchema(httpapi.ObjectSchema(map[string]httpapi.Schema{
				"userId": httpapi.StringSchema(), "userEmail": {"type": "string", "format": "email"}, "properties": httpapi.AnyObjectSchema(),
			}, "userId")),
		}, "users"),
		Responses: map[int]httpapi.Response{
			200: {Description: "{enrolled, skipped, results: [{userId, enrolled, error?}]}"},
			400: {Description: "users missing, empty or over 500"},
			404: {Description: msgJourneyNotFound},
		},
	})
	r.Handle(http.MethodGet, "/v1/admin/journey-logs/:stateId", read(http.HandlerFunc(s.logs)), httpapi.Doc{
		Summary: "Get any live state with its log, oldest entry first", Tags: tags, Scope: httpapi.ScopeRead,
		Responses: map[int]httpapi.Response{
			200: {Description: "{state, logs}", Schema: stateResponse},
			400: {Description: "stateId is not a UUID"},
			404: {Description: msgJourneyStateNotFound},
		},
	})
	r.Handle(http.MethodGet, "/v1/admin/metrics/journeys", read(http.HandlerFunc(s.metrics)), httpapi.Doc{
		Summary: "State totals of every registered journey", Tags: metricTags, Scope: httpapi.ScopeRead,
		Description: "Over live states: enrolled counts all of them, active counts active and waiting, completionRate is completed ÷ enrolled " +
			"(4 decimals, 0 without states), avgDurationSecs the rounded mean run time of completed and exited states (null without any).",
		Responses: map[int]httpapi.Response{200: {Description: "{journeys: [{journeyId, name, enrolled, completed, failed, exited, active, completionRate, avgDurationSecs}]}",
			Schema: httpapi.ObjectSchema(map[string]httpapi.Schema{"journeys": httpapi.ArraySchema(metricsSchema())})}},
	})
	r.Handle(http.MethodGet, "/v1/admin/metrics/journeys/:id", read(http.HandlerFunc(s.journeyMetrics)), httpapi.Doc{
		Summary: "State and email totals of one journey", Tags: metricTags, Scope: httpapi.ScopeRead,
		Description: "The email counts are always 0 until email sends are recorded.",
		Responses: map[int]httpapi.Response{
			200: {Description: "{journeyId, enrolled, emailSent, emailOpened, emailClicked, completed, failed, exited}", Schema: journeyMetricsSchema()},
			404: {Description: msgJourneyNotFound},
		},
	})
}

func (s *Service) q() *dbsqlc.Queries { return dbsqlc.New(s.pool) }

// journey returns the registered journey named by the :id parameter.
func (s *Service) journey(r *http.Request) (*journey.Journey, error) {
	j, ok := s.reg.Get(httpapi.Param(r, "id"))
	if !ok {
		return nil, errcode.NotFound(msgJourneyNotFound)
	}
	return j, nil
}
