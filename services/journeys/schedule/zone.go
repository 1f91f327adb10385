package schedule

import (
	"sort"
	"time"

	// Time zones are compiled in: journeys resolve contacts' IANA zones on
	// hosts and images without a zoneinfo database (distroless, scratch).
	_ "time/tzdata"
)

// date is a calendar date with no zone. Day arithmetic happens on dates, not
// on instants, so "tomorrow" keeps the wall-clock time across DST changes.
type date struct {
	year  int
	month time.Month
	day   int
}

// localDate is the calendar date of t in loc.
func localDate(t time.Time, loc *time.Location) date {
	y, m, d := t.In(loc).Date()
	return date{y, m, d}
}

// addDays moves d by n calendar days (time.Date normalises month and year
// overflow; UTC has no DST to get in the way).
func (d date) addDays(n int) date {
	y, m, dd := time.Date(d.year, d.month, d.day+n, 12, 0, 0, 0, time.UTC).Date()
	return date{y, m, dd}
}

func (d date) weekday() time.Weekday {
	return time.Date(d.year, d.month, d.day, 12, 0, 0, 0, time.UTC).Weekday()
}

// zoneSpan is how far around a wall-clock time the zone history is scanned.
// Every real UTC offset is within ±16 h, so every instant that can show a
// given wall-clock time lies inside this span.
const zoneSpan = 48 * time.Hour

// segment is a stretch of time with one UTC offset, as reported by
// time.Time.ZoneBounds.
type segment struct {
	start  int64 // unix seconds, clipped to the scan start
	end    int64 // unix seconds, exclusive; noEnd when the zone goes on forever
	offset int64 // seconds east of UTC
}

const noEnd = int64(1<<63 - 1)

// instants resolves the wall-clock time c on date d in loc. It returns the
// earliest and the latest instant showing that wall-clock time: equal for an
// ordinary time, the two occurrences for a time in a fall-back overlap. For a
// time in a spring-forward gap, which no instant shows, both are the wall time
// read with the offset in force before the gap, which is the wall time pushed
// forward by the length of the gap (spec 10 §5.6.6).
//
// time.Date is not used because its choice in gaps and overlaps is documented
// as unspecified.
func instants(loc *time.Location, d date, c Clock) (first, last time.Time) {
	// wall is the wall-clock time written as if it were UTC; an instant u
	// shows it iff u + offset(u) = wall.
	wall := time.Date(d.year, d.month, d.day, c.Hour, c.Minute, 0, 0, time.UTC).Unix()
	segs := segments(loc, wall)

	var found []int64
	for _, s := range segs {
		u := wall - s.offset
		if u >= s.start && u < s.end {
			found = append(found, u)
		}
	}
	if len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return found[i] < found[j] })
		return time.Unix(found[0], 0).UTC(), time.Unix(found[len(found)-1], 0).UTC()
	}

	// A gap: a transition at T from offset before to offset after (> before)
	// skips the wall times [T+before, T+after).
	for i := 1; i < len(segs); i++ {
		before, after, at := segs[i-1].offset, segs[i].offset, segs[i].start
		if after > before && wall >= at+before && wall < at+after {
			u := time.Unix(wall-before, 0).UTC()
			return u, u
		}
	}
	// Unreachable with real zone data; fall back to the standard library
	// rather than fail a send.
	u := time.Date(d.year, d.month, d.day, c.Hour, c.Minute, 0, 0, loc).UTC()
	return u, u
}

// segments lists the offsets in force around the wall time, oldest first.
func segments(loc *time.Location, wall int64) []segment {
	lo := wall - int64(zoneSpan/time.Second)
	hi := wall + int64(zoneSpan/time.Second)
	var segs []segment
	at := lo
	for {
		t := time.Unix(at, 0).In(loc)
		_, offset := t.Zone()
		_, end := t.ZoneBounds()
		s := segment{start: at, end: noEnd, offset: int64(offset)}
		if !end.IsZero() {
			s.end = end.Unix()
		}
		segs = append(segs, s)
		// The end <= at guard stops the loop on malformed zone data.
		if s.end == noEnd || s.end > hi || s.end <= at {
			return segs
		}
		at = s.end
	}
}

// resolve is the instant the spec picks for wall-clock time c on date d:
// the gap-shifted time, or the earlier occurrence of an ambiguous one.
func resolve(loc *time.Location, d date, c Clock) time.Time {
	first, _ := instants(loc, d, c)
	return first
}

// resolveNotBefore is resolve, except that an ambiguous time whose earlier
// occurrence is before floor takes its later one. The window uses it so that
// clamping a time in the second pass of a fall-back hour never moves it
// earlier.
func resolveNotBefore(loc *time.Location, d date, c Clock, floor time.Time) time.Time {
	first, last := instants(loc, d, c)
	if first.Before(floor) && !last.Before(floor) {
		return last
	}
	return first
}
