package journeyapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/ingest"
	"github.com/seed-eeb360f6/hogsend/services/journeys"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

const (
	maxBodyBytes = 64 << 10
	// recentStates is how many most recently updated states the journey
	// detail shows.
	recentStates = 10
	// maxOffset keeps a huge offset inside the int32 the statement takes;
	// no journey has that many states, so the page is empty either way.
	maxOffset = 1<<31 - 1
	// actionCancelled is the journey_logs action of an admin cancel.
	actionCancelled = "cancelled"
)

// configs returns the enabled overrides by journey id.
func (s *Service) configs(ctx context.Context) (map[string]bool, error) {
	rows, err := s.q().JourneyAdminConfigList(ctx)
	if err != nil {
		return nil, fmt.Errorf("read journey configs: %w", err)
	}
	out := make(map[string]bool, len(rows))
	for _, r := range rows {
		out[r.JourneyID] = r.Enabled
	}
	return out, nil
}

// effectiveEnabled is the override, else the static switch. An override
// of true shows a statically disabled journey as enabled although it
// still skips every trigger (spec 10 §5.2 notes).
func effectiveEnabled(j *journey.Journey, cfgs map[string]bool) bool {
	if v, ok := cfgs[j.ID()]; ok {
		return v
	}
	return j.Enabled()
}

// stats reads the live-state aggregates of ids in one statement; journeys
// without states get zeros.
func (s *Service) stats(ctx context.Context, ids []string) (map[string]stats, error) {
	out := make(map[string]stats, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.q().JourneyAdminStateStats(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("count journey states: %w", err)
	}
	for _, row := range rows {
		out[row.JourneyID] = statsOf(row)
	}
	return out, nil
}

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
	cfgs, err := s.configs(ctx)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	type entry struct {
		j       *journey.Journey
		enabled bool
	}
	var matched []entry
	for _, j := range s.reg.All() {
		on := effectiveEnabled(j, cfgs)
		if filter == nil || *filter == on {
			matched = append(matched, entry{j, on})
		}
	}
	page := httpapi.PageOf(matched, limit, offset)
	ids := make([]string, len(page))
	for i, e := range page {
		ids[i] = e.j.ID()
	}
	st, err := s.stats(ctx, ids)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]Journey, len(page))
	for i, e := range page {
		out[i] = journeyShape(e.j, e.enabled, st[e.j.ID()].Counts)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"journeys": out, "total": len(matched), "limit": limit, "offset": offset})
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	j, err := s.journey(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	cfgs, err := s.configs(ctx)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	st, err := s.stats(ctx, []string{j.ID()})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	recent, err := s.q().JourneyAdminStateRecent(ctx, dbsqlc.JourneyAdminStateRecentParams{JourneyID: j.ID(), Lim: recentStates})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("read recent journey states: %w", err))
		return
	}
	detail := detailShape(j, effectiveEnabled(j, cfgs), st[j.ID()].Counts, statesShape(recent))
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"journey": detail})
}

func (s *Service) patch(w http.ResponseWriter, r *http.Request) {
	enabled, err := httpapi.DecodeEnabled(w, r, maxBodyBytes)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	j, err := s.journey(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	row, err := s.q().JourneyAdminConfigSetEnabled(r.Context(), dbsqlc.JourneyAdminConfigSetEnabledParams{
		ID: uuid.Must(uuid.NewV7()), JourneyID: j.ID(), Enabled: enabled, At: s.now(),
	})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("set journey %s enabled: %w", j.ID(), err))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"journey": EnabledJourney{
		ID: j.ID(), Name: j.Name(), Enabled: row.Enabled, UpdatedAt: httpapi.NewTime(row.UpdatedAt),
	}})
}

func (s *Service) states(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	status := q.Get("status")
	if status != "" && !slices.Contains(journeys.Statuses(), status) {
		httpapi.WriteError(w, r, errcode.InvalidField("status", "must be one of "+strings.Join(journeys.Statuses(), ", ")))
		return
	}
	j, err := s.journey(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	db := s.q()
	userID := q.Get("userId")
	rows, err := db.JourneyAdminStateList(ctx, dbsqlc.JourneyAdminStateListParams{
		JourneyID: j.ID(), Status: status, UserID: userID, Lim: int32(limit), Off: int32(min(offset, maxOffset)),
	})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("list journey states: %w", err))
		return
	}
	total, err := db.JourneyAdminStateCount(ctx, dbsqlc.JourneyAdminStateCountParams{JourneyID: j.ID(), Status: status, UserID: userID})
	if err != nil {
		httpapi.WriteError(w, r, fmt.Errorf("count journey states: %w", err))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"states": statesShape(rows), "total": total, "limit": limit, "offset": offset})
}

// stateWithLogs reads a live state and its log. A nil journeyID accepts a
// state of any journey; a missing state is notFound.
func (s *Service) stateWithLogs(ctx context.Context, id uuid.UUID, journeyID *string, notFound string) (StateWithLogs, error) {
	db := s.q()
	st, err := db.JourneyAdminStateGet(ctx, dbsqlc.JourneyAdminStateGetParams{ID: id, JourneyID: journeyID})
	if errors.Is(err, pgx.ErrNoRows) {
		return StateWithLogs{}, errcode.NotFound(notFound)
	}
	if err != nil {
		return StateWithLogs{}, fmt.Errorf("read journey state: %w", err)
	}
	logs, err := db.JourneyAdminLogList(ctx, id)
	if err != nil {
		return StateWithLogs{}, fmt.Errorf("read journey logs: %w", err)
	}
	return StateWithLogs{State: stateShape(st), Logs: logsShape(logs)}, nil
}

// state serves a state of the journey in the path, registered or not: the
// states of a journey dropped from the registry stay inspectable.
func (s *Service) state(w http.ResponseWriter, r *http.Request) {
	id, err := httpapi.ParamUUID(r, "stateId")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	journeyID := httpapi.Param(r, "id")
	out, err := s.stateWithLogs(r.Context(), id, &journeyID, msgStateNotFound)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (s *Service) logs(w http.ResponseWriter, r *http.Request) {
	id, err := httpapi.ParamUUID(r, "stateId")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out, err := s.stateWithLogs(r.Context(), id, nil, msgJourneyStateNotFound)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// cancel exits an active or waiting state. Like the state route it does
// not need the journey to be registered, so runs of a removed journey can
// still be stopped.
func (s *Service) cancel(w http.ResponseWriter, r *http.Request) {
	id, err := httpapi.ParamUUID(r, "stateId")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out, err := s.cancelState(r.Context(), httpapi.Param(r, "id"), id)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// cancelState sets the state exited and logs it in one transaction. The
// UPDATE is conditional on the status, so a run that completes or fails
// concurrently is never overwritten: the loser of that race gets the 409.
func (s *Service) cancelState(ctx context.Context, journeyID string, id uuid.UUID) (Cancelled, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Cancelled{}, fmt.Errorf("begin cancel: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	q := dbsqlc.New(tx)
	now := s.now()
	row, err := q.JourneyAdminStateCancel(ctx, dbsqlc.JourneyAdminStateCancelParams{At: now, ID: id, JourneyID: journeyID})
	if errors.Is(err, pgx.ErrNoRows) {
		st, err := q.JourneyAdminStateGet(ctx, dbsqlc.JourneyAdminStateGetParams{ID: id, JourneyID: &journeyID})
		if errors.Is(err, pgx.ErrNoRows) {
			return Cancelled{}, errcode.NotFound(msgStateNotFound)
		}
		if err != nil {
			return Cancelled{}, fmt.Errorf("read journey state: %w", err)
		}
		return Cancelled{}, errcode.Conflict(fmt.Sprintf("Cannot cancel journey in '%s' status", st.Status))
	}
	if err != nil {
		return Cancelled{}, fmt.Errorf("cancel journey state: %w", err)
	}
	detail, err := json.Marshal(cancelDetail(ctx))
	if err != nil {
		return Cancelled{}, fmt.Errorf("encode cancel detail: %w", err)
	}
	if err := q.JourneyAdminLogInsert(ctx, dbsqlc.JourneyAdminLogInsertParams{
		ID: uuid.Must(uuid.NewV7()), JourneyStateID: row.ID, FromNodeID: &row.CurrentNodeID,
		Action: actionCancelled, Detail: detail, At: now,
	}); err != nil {
		return Cancelled{}, fmt.Errorf("log journey cancel: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Cancelled{}, fmt.Errorf("commit cancel: %w", err)
	}
	return Cancelled{
		State: CancelledState{ID: row.ID.String(), Status: journeys.StatusExited, ExitedAt: httpapi.NewTime(row.ExitedAt)},
		// The run needs no separate cancel: its next wake-up finds the
		// state exited and stops.
		HatchetCancelled: true,
	}, nil
}

// cancelDetail records who cancelled, so the log tells an admin cancel
// from the runtime's own exits.
func cancelDetail(ctx context.Context) map[string]string {
	d := map[string]string{"source": "admin"}
	if p, ok := httpapi.PrincipalFrom(ctx); ok && p.KeyID != "" {
		d["keyId"] = p.KeyID
	}
	return d
}

type enrollRequest struct {
	UserID    *string `json:"userId"`
	UserEmail *string `json:"userEmail"`
	// Properties is raw so that only an object (or null) is accepted.
	Properties json.RawMessage `json:"properties"`
}

// validate checks the body; null fields count as absent.
func (req *enrollRequest) validate() error {
	switch {
	case req.UserID == nil:
		return errcode.InvalidField("userId", "is required")
	case *req.UserID == "":
		return errcode.InvalidField("userId", "must not be empty")
	}
	if req.UserEmail != nil && !httpapi.ValidEmail(*req.UserEmail) {
		return errcode.InvalidField("userEmail", "must be a valid email address")
	}
	switch t := bytes.TrimSpace(req.Properties); {
	case len(t) == 0, bytes.Equal(t, []byte("null")):
		req.Properties = nil
	case t[0] != '{':
		return errcode.InvalidField("properties", "must be an object")
	}
	return nil
}

// enroll publishes the journey's trigger event for the user. It goes
// through ingestion rather than inserting a state, so the entry guards,
// the other journeys bound to the event and bucket evaluation all see it
// as they would a product event (spec 10 §5.7).
func (s *Service) enroll(w http.ResponseWriter, r *http.Request) {
	var req enrollRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBodyBytes); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := req.validate(); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	j, err := s.journey(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if s.enroller == nil {
		httpapi.WriteError(w, r, errcode.Unavailable("Event ingestion unavailable", errors.New("journeyapi: no enroller configured")))
		return
	}
	event := j.TriggerEvent()
	// No idempotency key: an admin enrolling twice means it, and the
	// journey's own guards decide what the second event does.
	if _, err := s.enroller.Ingest(r.Context(), &ingest.EventRequest{
		Name: &event, UserID: req.UserID, Email: req.UserEmail, EventProperties: req.Properties,
	}, nil, EnrollSource); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, Enrolled{Enrolled: true, Event: event, UserID: *req.UserID})
}

// maxBatchEnroll bounds POST /{id}/enroll/batch (spec 10 §2.9).
const maxBatchEnroll = 500

// batchEnrolled is one user's outcome in a batch enrolment.
type batchEnrolled struct {
	UserID   string `json:"userId"`
	Enrolled bool   `json:"enrolled"`
	Error    string `json:"error,omitempty"`
}

// enrollBatch ingests the trigger event for each user, 25 at a time. A
// user whose entry is invalid or whose event cannot be ingested is skipped
// with the reason; the others are not held back by it.
func (s *Service) enrollBatch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Users []enrollRequest `json:"users"`
	}
	if err := httpapi.DecodeJSON(w, r, &req, maxBodyBytes); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if len(req.Users) == 0 || len(req.Users) > maxBatchEnroll {
		httpapi.WriteError(w, r, errcode.InvalidField("users", fmt.Sprintf("must hold 1 to %d users", maxBatchEnroll)))
		return
	}
	j, err := s.journey(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if s.enroller == nil {
		httpapi.WriteError(w, r, errcode.Unavailable("Event ingestion unavailable", errors.New("journeyapi: no enroller configured")))
		return
	}
	event := j.TriggerEvent()
	results := make([]batchEnrolled, len(req.Users))
	sem := make(chan struct{}, 25)
	var wg sync.WaitGroup
	for i := range req.Users {
		u := &req.Users[i]
		if u.UserID != nil {
			results[i].UserID = *u.UserID
		}
		if err := u.validate(); err != nil {
			results[i].Error = err.Error()
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := s.enroller.Ingest(r.Context(), &ingest.EventRequest{
				Name: &event, UserID: u.UserID, Email: u.UserEmail, EventProperties: u.Properties,
			}, nil, EnrollSource)
			if err != nil {
				results[i].Error = err.Error()
				return
			}
			results[i].Enrolled = true
		}()
	}
	wg.Wait()
	enrolled := 0
	for _, res := range results {
		if res.Enrolled {
			enrolled++
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"enrolled": enrolled, "skipped": len(results) - enrolled, "results": results})
}

func (s *Service) metrics(w http.ResponseWriter, r *http.Request) {
	all := s.reg.All()
	ids := make([]string, len(all))
	for i, j := range all {
		ids[i] = j.ID()
	}
	st, err := s.stats(r.Context(), ids)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]JourneyMetrics, len(all))
	for i, j := range all {
		out[i] = metricsOf(j, st[j.ID()])
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"journeys": out})
}

func (s *Service) journeyMetrics(w http.ResponseWriter, r *http.Request) {
	j, err := s.journey(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	all, err := s.stats(r.Context(), []string{j.ID()})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	st := all[j.ID()]
	// The email counts come from email_sends linked to the journey's
	// live states, a table that arrives with the mailer; until then no
	// journey has sent anything, so they are 0.
	httpapi.WriteJSON(w, http.StatusOK, JourneyMetricsDetail{
		JourneyID: j.ID(), Enrolled: st.enrolled(),
		Completed: st.Completed, Failed: st.Failed, Exited: st.Exited,
	})
}
