package journeys

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-eeb360f6/hogsend/services/journeys/journey"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
)

// ExitChecker answers the exits part of POST /v1/events (spec 10 §1.4):
// the live states of the event's contact whose journey is registered and
// has exitOn, each with whether the event matches it. It reads; the
// journeys consumer performs the exits when the event reaches it, against
// the states as they are then.
type ExitChecker struct {
	pool *pgxpool.Pool
	reg  *journey.Registry
}

// NewExitChecker returns the checker of reg's journeys.
func NewExitChecker(pool *pgxpool.Pool, reg *journey.Registry) *ExitChecker {
	return &ExitChecker{pool: pool, reg: reg}
}

// Exit is one state an event was checked against.
type Exit struct {
	JourneyID string
	StateID   string
	Exited    bool
}

// Exits checks e against the live states of its contact.
func (c *ExitChecker) Exits(ctx context.Context, e *streams.Event) ([]Exit, error) {
	if len(c.reg.WithExitOn()) == 0 || e.Type != streams.TypeTrack || e.Engine() {
		return nil, nil
	}
	p := dbsqlc.JourneyLiveStatesOfEventParams{}
	if e.UserID != "" {
		p.ExternalID = &e.UserID
	}
	if e.Email != "" {
		p.Email = &e.Email
	}
	if e.AnonymousID != "" {
		p.AnonymousID = &e.AnonymousID
	}
	// One round trip: this runs on the ingest path, for every event.
	states, err := dbsqlc.New(c.pool).JourneyLiveStatesOfEvent(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("read live states: %w", err)
	}
	var props map[string]any
	var out []Exit
	for _, st := range states {
		j, ok := c.reg.Get(st.JourneyID)
		if !ok || !j.HasExitOn() {
			continue
		}
		if props == nil {
			if props, err = streams.DecodeObject(e.EventProperties); err != nil {
				props = map[string]any{}
			}
		}
		out = append(out, Exit{JourneyID: st.JourneyID, StateID: st.ID.String(), Exited: j.ExitMatches(e.Name, props)})
	}
	return out, nil
}
