package schedule

import (
	"strconv"
	"time"
)

// PastPolicy says what happens to a resolved time that is not after now.
type PastPolicy string

const (
	// PastNext rolls a past result forward one calendar day (seven for Next),
	// keeping the requested wall-clock time. It is the default.
	PastNext PastPolicy = "next"
	// PastNow replaces a past result with now.
	PastNow PastPolicy = "now"
)

// resolver is the kind of date a chain asks for.
type resolver int

const (
	resolverNone resolver = iota
	resolverToday
	resolverTomorrow
	resolverNext
	resolverIn
)

// arg names the call that took the time string, in the spec's builder
// vocabulary, for errors.
func (r resolver) arg() string {
	switch r {
	case resolverToday:
		return "nextLocal"
	case resolverTomorrow:
		return "tomorrow().at"
	case resolverNext:
		return "next().at"
	case resolverIn:
		return "in().at"
	}
	return "at"
}

// When is the scheduler builder of spec 10 §5.6. It is an immutable value:
// every method returns a changed copy, so a base builder bound to a zone and
// a send window can be shared and extended freely.
//
// Arguments are validated when Time resolves the chain, as the spec asks;
// builder methods never fail.
type When struct {
	now    time.Time
	loc    *time.Location
	locArg string // "loc" (New) or "tz" (TZ): where a nil zone came from

	windowSet  bool
	windowFrom string
	windowTo   string

	ifPast PastPolicy

	kind    resolver
	weekday time.Weekday
	in      time.Duration
	at      string
}

// New returns a builder for instant now in zone loc, with no send window and
// IfPast(PastNext). Build a fresh one (or call AsOf) for each resolution: the
// spec reads the current time afresh every time a chain resolves.
func New(now time.Time, loc *time.Location) When {
	return When{now: now, loc: loc, locArg: "loc", ifPast: PastNext}
}

// AsOf returns the builder with now replaced, keeping zone, window, policy
// and resolver. It lets a builder configured once (client zone and
// sendWindow) be resolved at a later time.
func (w When) AsOf(now time.Time) When {
	w.now = now
	return w
}

// TZ returns the builder bound to zone loc. A nil zone fails at resolution
// (argument "tz"); validate zone names where they are loaded.
func (w When) TZ(loc *time.Location) When {
	w.loc = loc
	w.locArg = "tz"
	return w
}

// Window returns the builder with a send window (quiet hours are the time
// outside it). start and end are "H:mm"/"HH:mm" wall-clock times in the
// builder's zone:
//
//   - start < end: open on [start, end); an earlier time moves to that day's
//     start, a time at or after end to the next day's start.
//   - start > end: an overnight window, open from start to the next day's end
//     (22:00–06:00 is open at 23:00 and at 05:59); a time in the daytime gap
//     [end, start) moves to that evening's start.
//   - start = end: always open; this is also how to drop a window.
//
// The window is applied after the past-time policy and only moves times
// later.
func (w When) Window(start, end string) When {
	w.windowSet = true
	w.windowFrom, w.windowTo = start, end
	return w
}

// IfPast returns the builder with the given policy for results ≤ now.
// Values other than PastNext and PastNow fail at resolution.
func (w When) IfPast(p PastPolicy) When {
	w.ifPast = p
	return w
}

// NextLocal resolves to today (in the builder's zone) at wall-clock time t,
// "H:mm" or "HH:mm". With the default policy a time already passed today
// becomes tomorrow at t.
func (w When) NextLocal(t string) When {
	w.kind = resolverToday
	w.at = t
	return w
}

// Day is a chosen date waiting for its time of day; only At completes it.
type Day struct{ w When }

// Tomorrow selects the calendar day after today in the builder's zone.
func (w When) Tomorrow() Day {
	w.kind = resolverTomorrow
	return Day{w}
}

// Next selects the next date that falls on weekday wd, today included; with
// the default policy a time already passed today moves seven days on. Use
// ParseWeekday for names. A weekday outside Sunday–Saturday fails at
// resolution (argument "next").
func (w When) Next(wd time.Weekday) Day {
	w.kind = resolverNext
	w.weekday = wd
	return Day{w}
}

// In selects the local date of now+d. d is elapsed time, added to the
// instant now before the date is taken; a negative d fails at resolution
// (argument "in").
func (w When) In(d time.Duration) Day {
	w.kind = resolverIn
	w.in = d
	return Day{w}
}

// At completes the chosen day with wall-clock time t, "H:mm" or "HH:mm".
func (d Day) At(t string) When {
	w := d.w
	w.at = t
	return w
}

// Time resolves the chain to a UTC instant, or returns the first argument
// error (an *ArgError). Order: resolver date and time, DST rule, past-time
// policy, window.
func (w When) Time() (time.Time, error) {
	if err := w.check(); err != nil {
		return time.Time{}, err
	}
	at, reason := parseClock(w.at)
	if reason != "" {
		return time.Time{}, &ArgError{Arg: w.kind.arg(), Value: w.at, Reason: reason}
	}
	var from, to Clock
	if w.windowSet {
		if from, reason = parseClock(w.windowFrom); reason != "" {
			return time.Time{}, &ArgError{Arg: "window start", Value: w.windowFrom, Reason: reason}
		}
		if to, reason = parseClock(w.windowTo); reason != "" {
			return time.Time{}, &ArgError{Arg: "window end", Value: w.windowTo, Reason: reason}
		}
	}

	loc := w.loc
	today := localDate(w.now, loc)
	var day date
	roll := 1
	switch w.kind {
	case resolverToday:
		day = today
	case resolverTomorrow:
		day = today.addDays(1)
	case resolverNext:
		day = today.addDays((int(w.weekday) - int(today.weekday()) + 7) % 7)
		roll = 7
	case resolverIn:
		day = localDate(w.now.Add(w.in), loc)
	}

	t := resolve(loc, day, at)
	if !t.After(w.now) {
		if w.ifPast == PastNow {
			t = w.now.UTC()
		} else {
			// One roll always suffices: every resolver's date is today or
			// later (In rejects negative durations), and only a today date
			// can be past; today+1 at any time is after now.
			t = resolve(loc, day.addDays(roll), at)
		}
	}

	if w.windowSet {
		t = clamp(loc, t, from, to)
	}
	return t.UTC(), nil
}

// check validates the arguments that are not clock strings.
func (w When) check() error {
	switch {
	case w.loc == nil:
		arg := w.locArg
		if arg == "" { // a zero When, not built by New
			arg = "loc"
		}
		return &ArgError{Arg: arg, Value: "<nil>", Reason: "zone is nil"}
	case w.kind == resolverNone:
		return &ArgError{Arg: "resolver", Value: "", Reason: "call NextLocal, Tomorrow, Next or In"}
	case w.kind == resolverNext && (w.weekday < time.Sunday || w.weekday > time.Saturday):
		return &ArgError{Arg: "next", Value: strconv.Itoa(int(w.weekday)), Reason: "weekday out of range Sunday-Saturday"}
	case w.kind == resolverIn && w.in < 0:
		return &ArgError{Arg: "in", Value: w.in.String(), Reason: "duration must not be negative"}
	case w.ifPast != PastNext && w.ifPast != PastNow:
		return &ArgError{Arg: "ifPast", Value: string(w.ifPast), Reason: `want "next" or "now"`}
	}
	return nil
}

// clamp moves t into the window [from, to) in loc (overnight when from > to,
// always open when equal). It never moves t earlier.
func clamp(loc *time.Location, t time.Time, from, to Clock) time.Time {
	if from == to {
		return t
	}
	local := t.In(loc)
	h, m, s := local.Clock()
	// Wall-clock position in the day, not elapsed time since midnight, so the
	// comparison is with what a clock on the wall shows.
	tod := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(local.Nanosecond())
	day := localDate(t, loc)
	start, end := from.sinceMidnight(), to.sinceMidnight()

	if start < end {
		switch {
		case tod < start:
			return resolveNotBefore(loc, day, from, t)
		case tod >= end:
			return resolve(loc, day.addDays(1), from)
		}
		return t
	}
	// Overnight: open on [start, 24:00) and [00:00, end).
	if tod >= end && tod < start {
		return resolveNotBefore(loc, day, from, t)
	}
	return t
}
