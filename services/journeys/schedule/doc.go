// Package schedule is the journey scheduler of spec 10 §5.6 ("ctx.when"): it
// turns "next 09:00 in the contact's zone, inside the send window" into a UTC
// instant to pass to a sleep.
//
// It is pure: the current time and the zone are passed in, nothing is read
// from the clock, the environment or the disk, so journey replays resolve to
// the same instant as the first run.
//
// A resolution runs in four steps, always in the builder's zone:
//
//  1. Resolver: pick a local date and a wall-clock time — NextLocal (today),
//     Tomorrow, Next(weekday) (today included) or In(d) (the local date of
//     now+d), each at an "H:mm"/"HH:mm" time.
//  2. DST: a wall-clock time in a spring-forward gap is pushed forward by the
//     length of the gap (02:30 in New York on 2025-03-09 becomes 03:30 EDT); an
//     ambiguous time in a fall-back overlap takes the earlier instant.
//  3. Past results: a result ≤ now rolls forward one calendar day (seven for
//     Next) keeping the requested wall-clock time, or with IfPast(PastNow)
//     becomes now.
//  4. Window: applied last and only ever moves the time later. An [start,end)
//     window clamps an early time to that day's start and a late one to the
//     next day's start; an overnight window (start > end) moves a time in the
//     daytime gap to that evening's start; start = end is always open.
//
// Day arithmetic is calendar-based: "tomorrow" across a DST change is 23 or 25
// hours away, never 24 hours that would shift the wall-clock time.
//
// Argument errors (bad times, bad weekdays, a nil zone, an unknown IfPast
// policy, a negative In duration) are reported by Time, when the chain
// resolves, as *ArgError values matching ErrInvalid; the builder methods
// themselves never fail, so chains stay fluent.
package schedule
