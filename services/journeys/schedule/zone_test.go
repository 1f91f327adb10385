package schedule

import (
	"testing"
	"time"
)

// TestInstantsBruteForce checks the wall-clock resolution against a brute
// force: on every day with a UTC-offset change between 2010 and 2030, walk
// the instants minute by minute, record which wall-clock times they show, and
// compare every minute of the day with instants().
func TestInstantsBruteForce(t *testing.T) {
	t.Parallel()
	zones := []string{
		"America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata",
		"Australia/Lord_Howe", // 30-minute DST
		"Pacific/Apia",        // skipped 2011-12-30
		"America/Havana",      // changes at midnight
		"America/Santiago",    // changes at 24:00
		"Europe/Dublin",       // negative DST in tzdata
		"Asia/Gaza",           // irregular rules
	}
	for _, name := range zones {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			loc := zone(t, name)
			days := 0
			for d := (date{2010, time.January, 1}); d.year <= 2030; d = d.addDays(1) {
				if !changes(loc, d) {
					continue
				}
				days++
				checkDay(t, loc, d)
			}
			if name != "Asia/Kolkata" && days == 0 {
				t.Fatalf("no transition days found for %s", name)
			}
		})
	}
}

// changes reports whether loc changes offset anywhere near date d.
func changes(loc *time.Location, d date) bool {
	lo := time.Date(d.year, d.month, d.day, 0, 0, 0, 0, time.UTC).Add(-16 * time.Hour)
	_, end := lo.In(loc).ZoneBounds()
	return !end.IsZero() && end.Before(lo.Add(56*time.Hour))
}

func checkDay(t *testing.T, loc *time.Location, d date) {
	t.Helper()
	midnight := time.Date(d.year, d.month, d.day, 0, 0, 0, 0, time.UTC)
	shows := map[int64][]time.Time{} // wall seconds -> instants showing it
	for u := midnight.Add(-18 * time.Hour); u.Before(midnight.Add(42 * time.Hour)); u = u.Add(time.Minute) {
		_, off := u.In(loc).Zone()
		wall := u.Unix() + int64(off)
		shows[wall] = append(shows[wall], u)
	}
	for minute := 0; minute < 24*60; minute++ {
		c := Clock{minute / 60, minute % 60}
		wall := midnight.Add(c.sinceMidnight()).Unix()
		first, last := instants(loc, d, c)
		if got := shows[wall]; len(got) > 0 {
			if !first.Equal(got[0]) || !last.Equal(got[len(got)-1]) {
				t.Fatalf("%v %s: instants %s..%s, brute force %s..%s", d, c, first, last, got[0], got[len(got)-1])
			}
			continue
		}
		// In a gap: the result shows the wall time pushed forward by the
		// gap's length, which is the offset change across it.
		if !first.Equal(last) {
			t.Fatalf("%v %s: gap time resolved to two instants", d, c)
		}
		_, before := first.Add(-time.Duration(maxGap) * time.Second).In(loc).Zone()
		_, after := first.In(loc).Zone()
		shownWall := first.Unix() + int64(after)
		if shownWall-wall != int64(after-before) || after <= before {
			t.Fatalf("%v %s: gap time resolved to %s (shift %ds, offsets %d->%d)",
				d, c, first.In(loc), shownWall-wall, before, after)
		}
		if len(shows[shownWall]) == 0 {
			t.Fatalf("%v %s: shifted time %s is not a real wall time", d, c, first.In(loc))
		}
	}
}

// maxGap bounds how far back from a gap-shifted instant the offset before the
// gap is read (the Apia gap is 24 h; a later transition is never that close).
const maxGap = 25 * 60 * 60

func TestDateArithmetic(t *testing.T) {
	t.Parallel()
	cases := []struct {
		from date
		n    int
		want date
	}{
		{date{2025, time.December, 31}, 1, date{2026, time.January, 1}},
		{date{2028, time.February, 28}, 1, date{2028, time.February, 29}},
		{date{2025, time.February, 28}, 1, date{2025, time.March, 1}},
		{date{2025, time.December, 29}, 7, date{2026, time.January, 5}},
		{date{2025, time.March, 1}, -1, date{2025, time.February, 28}},
	}
	for _, tc := range cases {
		if got := tc.from.addDays(tc.n); got != tc.want {
			t.Errorf("%v + %d = %v, want %v", tc.from, tc.n, got, tc.want)
		}
	}
	if wd := (date{2025, time.March, 8}).weekday(); wd != time.Saturday {
		t.Errorf("2025-03-08 is %s, want Saturday", wd)
	}
}
