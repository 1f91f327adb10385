package journeyapi

import (
	"bytes"
	"encoding/json"
	"math"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/services/journeys"
	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// Journey is the list shape of a journey (spec 10 §5.7).
type Journey struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Enabled is the journey_configs override, else the static value.
	Enabled    bool    `json:"enabled"`
	Trigger    Trigger `json:"trigger"`
	EntryLimit string  `json:"entryLimit"`
	Counts     Counts  `json:"counts"`
}

// Trigger is the event that enrols; Where is shown by the detail only,
// and left out when the definition has none.
type Trigger struct {
	Event string           `json:"event"`
	Where []condition.Node `json:"where,omitempty"`
}

// Counts are live states by status.
type Counts struct {
	Active    int64 `json:"active"`
	Waiting   int64 `json:"waiting"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
	Exited    int64 `json:"exited"`
}

// JourneyDetail is the single-journey shape: the list fields plus the rest
// of the definition and the most recently updated states.
type JourneyDetail struct {
	Journey
	// EntryPeriod is set for once_per_period journeys only.
	EntryPeriod *condition.Duration `json:"entryPeriod,omitempty"`
	ExitOn      []Exit              `json:"exitOn,omitempty"`
	// Suppress is shown for parity with the reference, where it is
	// required; it has no effect.
	Suppress condition.Duration `json:"suppress"`
	// The reaction tags of a journey built from a bucket reaction
	// (spec 10 §4.10), absent on other journeys.
	SourceBucketID string         `json:"sourceBucketId,omitempty"`
	ReactionKind   string         `json:"reactionKind,omitempty"`
	DwellSchedule  *DwellSchedule `json:"dwellSchedule,omitempty"`
	RecentStates   []State        `json:"recentStates"`
}

// Exit is one exitOn entry.
type Exit struct {
	Event string           `json:"event"`
	Where []condition.Node `json:"where,omitempty"`
}

// DwellSchedule tags a dwell reaction: its label and exactly one of After
// and Every, in milliseconds as the reference writes them.
type DwellSchedule struct {
	Label string `json:"label"`
	After int64  `json:"after,omitempty"`
	Every int64  `json:"every,omitempty"`
}

// State is a journey_states row as the admin shows it. The run id keeps
// the reference's name, hatchetRunId.
type State struct {
	ID            string          `json:"id"`
	UserID        string          `json:"userId"`
	UserEmail     string          `json:"userEmail"`
	JourneyID     string          `json:"journeyId"`
	CurrentNodeID string          `json:"currentNodeId"`
	Status        string          `json:"status"`
	HatchetRunID  *string         `json:"hatchetRunId"`
	Context       json.RawMessage `json:"context"`
	ErrorMessage  *string         `json:"errorMessage"`
	EntryCount    int32           `json:"entryCount"`
	CompletedAt   *httpapi.Time   `json:"completedAt"`
	ExitedAt      *httpapi.Time   `json:"exitedAt"`
	CreatedAt     httpapi.Time    `json:"createdAt"`
	UpdatedAt     httpapi.Time    `json:"updatedAt"`
}

// Log is one journey_logs row.
type Log struct {
	ID         string  `json:"id"`
	FromNodeID *string `json:"fromNodeId"`
	ToNodeID   *string `json:"toNodeId"`
	Action     string  `json:"action"`
	// Detail is JSON null when the row has none.
	Detail    json.RawMessage `json:"detail"`
	CreatedAt httpapi.Time    `json:"createdAt"`
}

// StateWithLogs answers the state detail and journey-logs routes.
type StateWithLogs struct {
	State State `json:"state"`
	Logs  []Log `json:"logs"`
}

// EnabledJourney answers the enabled switch.
type EnabledJourney struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Enabled   bool         `json:"enabled"`
	UpdatedAt httpapi.Time `json:"updatedAt"`
}

// CancelledState is the state part of the cancel answer.
type CancelledState struct {
	ID       string       `json:"id"`
	Status   string       `json:"status"`
	ExitedAt httpapi.Time `json:"exitedAt"`
}

// Cancelled answers the cancel route. HatchetCancelled keeps the
// reference's name; it is always true, since the runtime's wake-up ignores
// an exited state.
type Cancelled struct {
	State            CancelledState `json:"state"`
	HatchetCancelled bool           `json:"hatchetCancelled"`
}

// Enrolled answers the enroll route.
type Enrolled struct {
	Enrolled bool   `json:"enrolled"`
	Event    string `json:"event"`
	UserID   string `json:"userId"`
}

// JourneyMetrics are one journey's totals over live states.
type JourneyMetrics struct {
	JourneyID string `json:"journeyId"`
	Name      string `json:"name"`
	Enrolled  int64  `json:"enrolled"`
	Completed int64  `json:"completed"`
	Failed    int64  `json:"failed"`
	Exited    int64  `json:"exited"`
	// Active counts active and waiting states.
	Active         int64   `json:"active"`
	CompletionRate float64 `json:"completionRate"`
	// AvgDurationSecs is nil without completed or exited states.
	AvgDurationSecs *int64 `json:"avgDurationSecs"`
}

// JourneyMetricsDetail answers the per-journey metrics route.
type JourneyMetricsDetail struct {
	JourneyID    string `json:"journeyId"`
	Enrolled     int64  `json:"enrolled"`
	EmailSent    int64  `json:"emailSent"`
	EmailOpened  int64  `json:"emailOpened"`
	EmailClicked int64  `json:"emailClicked"`
	Completed    int64  `json:"completed"`
	Failed       int64  `json:"failed"`
	Exited       int64  `json:"exited"`
}

// stats are the live-state aggregates of one journey.
type stats struct {
	Counts
	// ended is the number of completed and exited states with an end
	// time; avgSecs is their mean run time, meaningful when ended > 0.
	ended   int64
	avgSecs int64
}

func (st stats) enrolled() int64 {
	return st.Active + st.Waiting + st.Completed + st.Failed + st.Exited
}

func statsOf(row dbsqlc.JourneyAdminStateStatsRow) stats {
	return stats{
		Counts: Counts{
			Active: row.ActiveCount, Waiting: row.WaitingCount, Completed: row.CompletedCount,
			Failed: row.FailedCount, Exited: row.ExitedCount,
		},
		ended: row.EndedCount, avgSecs: row.AvgDurationSecs,
	}
}

func metricsOf(j *journey.Journey, st stats) JourneyMetrics {
	m := JourneyMetrics{
		JourneyID: j.ID(), Name: j.Name(), Enrolled: st.enrolled(),
		Completed: st.Completed, Failed: st.Failed, Exited: st.Exited, Active: st.Active + st.Waiting,
		CompletionRate: rate(st.Completed, st.enrolled()),
	}
	if st.ended > 0 {
		avg := st.avgSecs
		m.AvgDurationSecs = &avg
	}
	return m
}

// rate is n ÷ of rounded to 4 decimals, 0 when of is 0 (spec 10 §5.7).
func rate(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(of)*1e4) / 1e4
}

func journeyShape(j *journey.Journey, enabled bool, c Counts) Journey {
	m := j.Meta()
	return Journey{
		ID: m.ID, Name: m.Name, Description: m.Description, Enabled: enabled,
		Trigger: Trigger{Event: m.Trigger.Event}, EntryLimit: string(m.EntryLimit), Counts: c,
	}
}

func detailShape(j *journey.Journey, enabled bool, c Counts, recent []State) JourneyDetail {
	m := j.Meta()
	d := JourneyDetail{
		Journey:        journeyShape(j, enabled, c),
		Suppress:       durationOf(m.Suppress),
		SourceBucketID: m.SourceBucketID,
		ReactionKind:   m.ReactionKind,
		RecentStates:   recent,
	}
	d.Trigger.Where = m.Trigger.Where
	if m.EntryLimit == journey.OncePerPeriod {
		p := durationOf(m.EntryPeriod)
		d.EntryPeriod = &p
	}
	for _, e := range m.ExitOn {
		d.ExitOn = append(d.ExitOn, Exit{Event: e.Event, Where: e.Where})
	}
	if ds := m.DwellSchedule; ds != nil {
		d.DwellSchedule = &DwellSchedule{Label: ds.Label, After: ds.After.Milliseconds(), Every: ds.Every.Milliseconds()}
	}
	return d
}

// durationOf writes d as the reference's duration object, split into
// whole hours, whole minutes and the remaining (possibly fractional)
// seconds; zero parts are left out, so a zero duration is {}.
func durationOf(d time.Duration) condition.Duration {
	if d <= 0 {
		return condition.Duration{}
	}
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	return condition.Duration{Hours: float64(h), Minutes: float64(m), Seconds: d.Seconds()}
}

func stateShape(s dbsqlc.JourneyState) State {
	ctx := s.Context
	if t := bytes.TrimSpace(ctx); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		ctx = json.RawMessage("{}")
	}
	return State{
		ID: s.ID.String(), UserID: s.UserID, UserEmail: s.UserEmail, JourneyID: s.JourneyID,
		CurrentNodeID: s.CurrentNodeID, Status: s.Status, HatchetRunID: s.HatchetRunID, Context: ctx,
		ErrorMessage: s.ErrorMessage, EntryCount: s.EntryCount,
		CompletedAt: httpapi.TimePtr(s.CompletedAt), ExitedAt: httpapi.TimePtr(s.ExitedAt),
		CreatedAt: httpapi.NewTime(s.CreatedAt), UpdatedAt: httpapi.NewTime(s.UpdatedAt),
	}
}

func statesShape(rows []dbsqlc.JourneyState) []State {
	out := make([]State, len(rows))
	for i, r := range rows {
		out[i] = stateShape(r)
	}
	return out
}

func logsShape(rows []dbsqlc.JourneyAdminLogListRow) []Log {
	out := make([]Log, len(rows))
	for i, r := range rows {
		detail := r.Detail
		if len(bytes.TrimSpace(detail)) == 0 {
			// A SQL NULL scans as an empty value, which is not JSON.
			detail = json.RawMessage("null")
		}
		out[i] = Log{
			ID: r.ID.String(), FromNodeID: r.FromNodeID, ToNodeID: r.ToNodeID, Action: r.Action,
			Detail: detail, CreatedAt: httpapi.NewTime(r.CreatedAt),
		}
	}
	return out
}

// Schemas for the OpenAPI document.

func durationSchema() httpapi.Schema {
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"hours": httpapi.NumberSchema(), "minutes": httpapi.NumberSchema(), "seconds": httpapi.NumberSchema(),
	})
}

func countsSchema() httpapi.Schema {
	props := map[string]httpapi.Schema{}
	for _, st := range journeys.Statuses() {
		props[st] = httpapi.IntegerSchema()
	}
	return httpapi.ObjectSchema(props, journeys.Statuses()...)
}

func journeySchema() httpapi.Schema {
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.StringSchema(), "name": httpapi.StringSchema(), "description": httpapi.StringSchema(),
		"enabled":    httpapi.BooleanSchema(),
		"trigger":    httpapi.ObjectSchema(map[string]httpapi.Schema{"event": httpapi.StringSchema()}, "event"),
		"entryLimit": httpapi.EnumSchema(string(journey.Once), string(journey.OncePerPeriod), string(journey.Unlimited)),
		"counts":     countsSchema(),
	}, "id", "name", "enabled", "trigger", "entryLimit", "counts")
}

func whereSchema() httpapi.Schema { return httpapi.ArraySchema(httpapi.AnyObjectSchema()) }

func detailSchema() httpapi.Schema {
	s := journeySchema()
	props := s["properties"].(map[string]httpapi.Schema)
	props["trigger"] = httpapi.ObjectSchema(map[string]httpapi.Schema{"event": httpapi.StringSchema(), "where": whereSchema()}, "event")
	props["entryPeriod"] = durationSchema()
	props["exitOn"] = httpapi.ArraySchema(httpapi.ObjectSchema(map[string]httpapi.Schema{
		"event": httpapi.StringSchema(), "where": whereSchema(),
	}, "event"))
	props["suppress"] = durationSchema()
	props["sourceBucketId"] = httpapi.StringSchema()
	props["reactionKind"] = httpapi.EnumSchema(journey.ReactionEnter, journey.ReactionLeave, journey.ReactionDwell)
	props["dwellSchedule"] = httpapi.ObjectSchema(map[string]httpapi.Schema{
		"label": httpapi.StringSchema(), "after": httpapi.IntegerSchema(), "every": httpapi.IntegerSchema(),
	}, "label")
	props["recentStates"] = httpapi.ArraySchema(stateSchema())
	return s
}

func stateSchema() httpapi.Schema {
	nt := httpapi.NullableSchema(httpapi.DateTimeSchema())
	ns := httpapi.NullableSchema(httpapi.StringSchema())
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.UUIDSchema(), "userId": httpapi.StringSchema(), "userEmail": httpapi.StringSchema(),
		"journeyId": httpapi.StringSchema(), "currentNodeId": httpapi.StringSchema(), "status": httpapi.EnumSchema(journeys.Statuses()...),
		"hatchetRunId": ns, "context": httpapi.AnyObjectSchema(), "errorMessage": ns, "entryCount": httpapi.IntegerSchema(),
		"completedAt": nt, "exitedAt": nt, "createdAt": httpapi.DateTimeSchema(), "updatedAt": httpapi.DateTimeSchema(),
	})
}

func logSchema() httpapi.Schema {
	ns := httpapi.NullableSchema(httpapi.StringSchema())
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"id": httpapi.UUIDSchema(), "fromNodeId": ns, "toNodeId": ns, "action": httpapi.StringSchema(),
		"detail": httpapi.NullableSchema(httpapi.AnyObjectSchema()), "createdAt": httpapi.DateTimeSchema(),
	})
}

func metricsSchema() httpapi.Schema {
	return httpapi.ObjectSchema(map[string]httpapi.Schema{
		"journeyId": httpapi.StringSchema(), "name": httpapi.StringSchema(),
		"enrolled": httpapi.IntegerSchema(), "completed": httpapi.IntegerSchema(), "failed": httpapi.IntegerSchema(),
		"exited": httpapi.IntegerSchema(), "active": httpapi.IntegerSchema(), "completionRate": httpapi.NumberSchema(),
		"avgDurationSecs": httpapi.NullableSchema(httpapi.IntegerSchema()),
	})
}

func journeyMetricsSchema() httpapi.Schema {
	props := map[string]httpapi.Schema{"journeyId": httpapi.StringSchema()}
	for _, k := range []string{"enrolled", "emailSent", "emailOpened", "emailClicked", "completed", "failed", "exited"} {
		props[k] = httpapi.IntegerSchema()
	}
	return httpapi.ObjectSchema(props)
}
