package journey

import "time"

// The reasons an enrolment attempt is skipped, one per guard of spec §5.2 in
// the order they are checked. They are recorded verbatim.
const (
	ReasonDisabled           = "journey_disabled"
	ReasonDisabledByAdmin    = "journey_disabled_by_admin"
	ReasonTriggerNotMet      = "trigger_conditions_not_met"
	ReasonAlreadyEnteredOnce = "already_entered_once"
	ReasonPeriodNotElapsed   = "period_not_elapsed"
	ReasonUnsubscribed       = "user_unsubscribed"
	ReasonAlreadyActive      = "already_active"
)

// CheckTrigger applies spec §5.2 guards 1–3 to an event that names j's
// trigger: the static switch, then the journey_configs override
// (configEnabled, nil when there is no row), then the trigger's where list
// on the event's scalar properties. A config true cannot override a static
// false. It returns the first failing guard's reason, or ok.
func CheckTrigger(j *Journey, configEnabled *bool, scalarProps map[string]any) (ok bool, reason string) {
	switch {
	case !j.Enabled():
		return false, ReasonDisabled
	case configEnabled != nil && !*configEnabled:
		return false, ReasonDisabledByAdmin
	case !j.Matches(j.TriggerEvent(), scalarProps):
		return false, ReasonTriggerNotMet
	}
	return true, ""
}

// PriorStates summarises a contact's earlier state rows for one journey:
// all of them, any status, deleted ones included (spec §5.2 guard 4).
type PriorStates struct {
	Count int
	// NewestCreatedAt is the created_at of the newest row, nil when there
	// is none.
	NewestCreatedAt *time.Time
}

// EntryAllowed applies the entry limit (spec §5.2 guard 4):
//
//   - Once: any prior row skips with already_entered_once;
//   - OncePerPeriod: a newest row created less than the entry period before
//     now skips with period_not_elapsed (exactly one period later enrols);
//   - Unlimited: always allowed.
func EntryAllowed(j *Journey, prior PriorStates, now time.Time) (ok bool, reason string) {
	switch j.EntryLimit() {
	case Once:
		if prior.Count > 0 || prior.NewestCreatedAt != nil {
			return false, ReasonAlreadyEnteredOnce
		}
	case OncePerPeriod:
		// A newest row in the future (clock skew between writers) is
		// within the period too.
		if prior.NewestCreatedAt != nil && now.Sub(*prior.NewestCreatedAt) < j.EntryPeriod() {
			return false, ReasonPeriodNotElapsed
		}
	}
	return true, ""
}
