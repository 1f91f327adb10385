package schedule

import (
	"errors"
	"testing"
	"time"
)

// zone loads an IANA zone or fails the test; the machine's tzdata is used
// (the Go toolchain's embedded copy would hide a missing system database
// from production, so it is deliberately not imported).
func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v (install tzdata)", name, err)
	}
	return loc
}

// ts parses a time written with its UTC offset, so every expectation states
// the instant and the offset it must show ("2025-03-09 03:30 -0400").
func ts(t testing.TB, s string) time.Time {
	t.Helper()
	for _, layout := range []string{"2006-01-02 15:04 -0700", "2006-01-02 15:04:05 -0700"} {
		if v, err := time.Parse(layout, s); err == nil {
			return v
		}
	}
	t.Fatalf("bad test time %q", s)
	return time.Time{}
}

type whenCase struct {
	name  string
	zone  string
	now   string
	build func(When) When
	want  string // with the offset the zone must show at the result
}

func runWhenCases(t *testing.T, cases []whenCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loc := zone(t, tc.zone)
			got, err := tc.build(New(ts(t, tc.now), loc)).Time()
			if err != nil {
				t.Fatalf("Time: %v", err)
			}
			want := ts(t, tc.want)
			if !got.Equal(want) {
				t.Fatalf("got %s, want %s", got.In(loc).Format(time.RFC3339), want.Format(time.RFC3339))
			}
			if got.Location() != time.UTC {
				t.Errorf("result location %v, want UTC", got.Location())
			}
			// The offset in the expectation must be the one the zone shows,
			// or the case is asserting a wall-clock time that is not there.
			if _, off := got.In(loc).Zone(); off != offsetOf(want) {
				t.Errorf("zone shows offset %d at result, expectation says %d", off, offsetOf(want))
			}
		})
	}
}

func offsetOf(t time.Time) int {
	_, off := t.Zone()
	return off
}

func TestScenario32(t *testing.T) {
	t.Parallel()
	// spec 10 §7 scenario 32, verbatim.
	ny := zone(t, "America/New_York")
	now := time.Date(2025, 3, 8, 20, 0, 0, 0, ny) // Saturday
	got, err := New(now, ny).Window("09:00", "17:00").NextLocal("02:30").Time()
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 3, 9, 9, 0, 0, 0, ny)
	if !got.Equal(want) {
		t.Fatalf("got %s, want %s", got.In(ny), want)
	}
	// Without the window the gap shift alone shows: 02:30 -> 03:30 EDT.
	got, err = New(now, ny).NextLocal("02:30").Time()
	if err != nil {
		t.Fatal(err)
	}
	if want := ts(t, "2025-03-09 03:30 -0400"); !got.Equal(want) {
		t.Fatalf("without window: got %s, want %s", got.In(ny), want)
	}
}

func TestDSTNewYork(t *testing.T) {
	t.Parallel()
	const z = "America/New_York" // 2025: gap 03-09 02:00-03:00, overlap 11-02 01:00-02:00
	runWhenCases(t, []whenCase{
		{"gap middle", z, "2025-03-09 00:30 -0500", func(w When) When { return w.NextLocal("02:30") }, "2025-03-09 03:30 -0400"},
		{"gap first minute", z, "2025-03-09 00:30 -0500", func(w When) When { return w.NextLocal("2:00") }, "2025-03-09 03:00 -0400"},
		{"gap last minute", z, "2025-03-09 00:30 -0500", func(w When) When { return w.NextLocal("02:59") }, "2025-03-09 03:59 -0400"},
		{"just before gap", z, "2025-03-09 00:30 -0500", func(w When) When { return w.NextLocal("01:59") }, "2025-03-09 01:59 -0500"},
		{"gap end is real", z, "2025-03-09 00:30 -0500", func(w When) When { return w.NextLocal("03:00") }, "2025-03-09 03:00 -0400"},
		{"gap via tomorrow", z, "2025-03-08 20:00 -0500", func(w When) When { return w.Tomorrow().At("02:30") }, "2025-03-09 03:30 -0400"},
		// 02:30 today is shifted to 03:30, which has passed; the roll keeps
		// the requested 02:30, not the shifted 03:30.
		{"gap shifted then past rolls to requested time", z, "2025-03-09 04:00 -0400", func(w When) When { return w.NextLocal("02:30") }, "2025-03-10 02:30 -0400"},
		{"overlap takes earlier instant", z, "2025-11-01 20:00 -0400", func(w When) When { return w.Tomorrow().At("01:30") }, "2025-11-02 01:30 -0400"},
		{"overlap first minute", z, "2025-11-01 20:00 -0400", func(w When) When { return w.Tomorrow().At("01:00") }, "2025-11-02 01:00 -0400"},
		{"after overlap", z, "2025-11-01 20:00 -0400", func(w When) When { return w.Tomorrow().At("02:00") }, "2025-11-02 02:00 -0500"},
		// The earlier 01:30 (EDT) is past, so the result rolls a day even
		// though 01:30 EST is still ahead: the spec picks the earlier
		// instant before the past check.
		{"overlap earlier past during first pass", z, "2025-11-02 01:40 -0400", func(w When) When { return w.NextLocal("01:30") }, "2025-11-03 01:30 -0500"},
		{"overlap earlier past during second pass", z, "2025-11-02 01:10 -0500", func(w When) When { return w.NextLocal("01:30") }, "2025-11-03 01:30 -0500"},
		{"overlap ahead during first pass", z, "2025-11-02 01:10 -0400", func(w When) When { return w.NextLocal("01:30") }, "2025-11-02 01:30 -0400"},
		{"tomorrow across spring forward is 23h", z, "2025-03-08 09:00 -0500", func(w When) When { return w.Tomorrow().At("09:00") }, "2025-03-09 09:00 -0400"},
		{"tomorrow across fall back is 25h", z, "2025-11-01 09:00 -0400", func(w When) When { return w.Tomorrow().At("09:00") }, "2025-11-02 09:00 -0500"},
		{"far future uses the zone rule", z, "2040-03-10 12:00 -0500", func(w When) When { return w.Tomorrow().At("02:30") }, "2040-03-11 03:30 -0400"},
	})
}

func TestDSTBerlin(t *testing.T) {
	t.Parallel()
	const z = "Europe/Berlin" // 2025: gap 03-30 02:00-03:00, overlap 10-26 02:00-03:00
	runWhenCases(t, []whenCase{
		{"gap", z, "2025-03-29 12:00 +0100", func(w When) When { return w.Tomorrow().At("02:30") }, "2025-03-30 03:30 +0200"},
		{"gap via next weekday", z, "2025-03-28 10:00 +0100", func(w When) When { return w.Next(time.Sunday).At("02:15") }, "2025-03-30 03:15 +0200"},
		{"overlap takes earlier instant", z, "2025-10-25 12:00 +0200", func(w When) When { return w.Tomorrow().At("02:30") }, "2025-10-26 02:30 +0200"},
		{"overlap end is unambiguous", z, "2025-10-25 12:00 +0200", func(w When) When { return w.Tomorrow().At("03:00") }, "2025-10-26 03:00 +0100"},
		{"overnight window through fall back", z, "2025-10-25 12:00 +0200", func(w When) When {
			return w.Window("22:00", "06:00").Tomorrow().At("02:30")
		}, "2025-10-26 02:30 +0200"},
		{"in 24h across spring forward lands a wall-clock hour later", z, "2025-03-29 23:30 +0100", func(w When) When {
			// 23:30 CET + 24h = 2025-03-31 00:30 CEST: the local date is the 31st.
			return w.In(24 * time.Hour).At("08:00")
		}, "2025-03-31 08:00 +0200"},
	})
}

func TestDSTSydney(t *testing.T) {
	t.Parallel()
	// Southern hemisphere, 2025: overlap 04-06 02:00-03:00, gap 10-05 02:00-03:00.
	const z = "Australia/Sydney"
	runWhenCases(t, []whenCase{
		{"gap", z, "2025-10-04 20:00 +1000", func(w When) When { return w.Tomorrow().At("02:30") }, "2025-10-05 03:30 +1100"},
		{"overlap takes earlier instant", z, "2025-04-05 20:00 +1100", func(w When) When { return w.Tomorrow().At("02:30") }, "2025-04-06 02:30 +1100"},
		{"scenario 32 mirrored", z, "2025-10-04 20:00 +1000", func(w When) When {
			return w.Window("09:00", "17:00").NextLocal("02:30")
		}, "2025-10-05 09:00 +1100"},
		{"year end in summer time", z, "2025-12-31 22:00 +1100", func(w When) When { return w.NextLocal("08:00") }, "2026-01-01 08:00 +1100"},
		{"next weekday across fall back", z, "2025-04-02 10:00 +1100", func(w When) When { return w.Next(time.Monday).At("09:00") }, "2025-04-07 09:00 +1000"},
	})
}

func TestDSTOddZones(t *testing.T) {
	t.Parallel()
	runWhenCases(t, []whenCase{
		// A 30-minute DST change: the shift is the gap's length, not an hour.
		{"Lord Howe half-hour gap", "Australia/Lord_Howe", "2025-10-04 20:00 +1030", func(w When) When { return w.Tomorrow().At("02:15") }, "2025-10-05 02:45 +1100"},
		{"Lord Howe half-hour overlap", "Australia/Lord_Howe", "2025-04-05 20:00 +1100", func(w When) When { return w.Tomorrow().At("01:45") }, "2025-04-06 01:45 +1100"},
		// Samoa skipped 2011-12-30 entirely: a 24-hour gap.
		{"Apia skipped day", "Pacific/Apia", "2011-12-29 12:00 -1000", func(w When) When { return w.In(24 * time.Hour).At("09:00") }, "2011-12-31 09:00 +1400"},
		// No DST: the control. 02:30 on the US and EU change days is plain.
		{"Kolkata no gap", "Asia/Kolkata", "2025-03-08 20:00 +0530", func(w When) When { return w.Tomorrow().At("02:30") }, "2025-03-09 02:30 +0530"},
		{"Kolkata on EU change day", "Asia/Kolkata", "2025-03-30 01:00 +0530", func(w When) When { return w.NextLocal("02:30") }, "2025-03-30 02:30 +0530"},
		{"Kolkata past rolls 24h", "Asia/Kolkata", "2025-03-30 03:00 +0530", func(w When) When { return w.NextLocal("02:30") }, "2025-03-31 02:30 +0530"},
		{"UTC", "UTC", "2025-03-09 01:00 +0000", func(w When) When { return w.NextLocal("02:30") }, "2025-03-09 02:30 +0000"},
	})
}

func TestWindow(t *testing.T) {
	t.Parallel()
	const ny = "America/New_York"
	day := func(at string) func(When) When {
		return func(w When) When { return w.Window("09:00", "17:00").NextLocal(at) }
	}
	night := func(at string) func(When) When {
		return func(w When) When { return w.Window("22:00", "06:00").NextLocal(at) }
	}
	runWhenCases(t, []whenCase{
		{"day: before start moves to start", ny, "2025-06-10 01:00 -0400", day("08:59"), "2025-06-10 09:00 -0400"},
		{"day: start is open", ny, "2025-06-10 01:00 -0400", day("09:00"), "2025-06-10 09:00 -0400"},
		{"day: last minute is open", ny, "2025-06-10 01:00 -0400", day("16:59"), "2025-06-10 16:59 -0400"},
		{"day: end is closed", ny, "2025-06-10 01:00 -0400", day("17:00"), "2025-06-11 09:00 -0400"},
		{"day: after end moves to next day", ny, "2025-06-10 01:00 -0400", day("23:30"), "2025-06-11 09:00 -0400"},
		{"day: next day across month end", ny, "2025-06-30 01:00 -0400", day("18:00"), "2025-07-01 09:00 -0400"},
		{"day: next day across year end", ny, "2025-12-31 18:00 -0500", day("18:30"), "2026-01-01 09:00 -0500"},
		{"day: no weekend rule", ny, "2025-06-13 18:00 -0400", day("20:00"), "2025-06-14 09:00 -0400"},
		{"day: next day across spring forward", ny, "2025-03-08 18:00 -0500", day("20:00"), "2025-03-09 09:00 -0400"},
		{"night: daytime gap moves to tonight's start", ny, "2025-06-10 12:00 -0400", night("14:00"), "2025-06-10 22:00 -0400"},
		{"night: end is closed", ny, "2025-06-10 01:00 -0400", night("06:00"), "2025-06-10 22:00 -0400"},
		{"night: start is open", ny, "2025-06-10 12:00 -0400", night("22:00"), "2025-06-10 22:00 -0400"},
		{"night: late evening is open", ny, "2025-06-10 12:00 -0400", night("23:00"), "2025-06-10 23:00 -0400"},
		{"night: early morning is open", ny, "2025-06-10 01:00 -0400", night("05:59"), "2025-06-10 05:59 -0400"},
		{"night: midnight is open", ny, "2025-06-09 23:00 -0400", night("00:00"), "2025-06-10 00:00 -0400"},
		{"night: rolled across year end then clamped", ny, "2025-12-31 23:30 -0500", night("07:00"), "2026-01-01 22:00 -0500"},
		{"equal edges are always open", ny, "2025-06-10 01:00 -0400", func(w When) When {
			return w.Window("09:00", "09:00").NextLocal("03:00")
		}, "2025-06-10 03:00 -0400"},
		{"later window replaces earlier", ny, "2025-06-10 01:00 -0400", func(w When) When {
			return w.Window("09:00", "17:00").Window("00:00", "00:00").NextLocal("03:00")
		}, "2025-06-10 03:00 -0400"},
		// The window's start itself falls in the spring-forward gap.
		{"start in a gap is shifted too", ny, "2025-03-09 00:10 -0500", func(w When) When {
			return w.Window("02:30", "05:00").NextLocal("01:00")
		}, "2025-03-09 03:30 -0400"},
		// A window whose open hours do not exist that day: its start is
		// shifted like any wall-clock time and the window is not re-applied
		// (the spec applies it once, last), so the result is 03:15.
		{"window wholly inside a gap", ny, "2025-03-09 00:10 -0500", func(w When) When {
			return w.Window("02:15", "02:45").NextLocal("01:00")
		}, "2025-03-09 03:15 -0400"},
		// now is 01:10 EST, the second 01:10; the window start 01:45 first
		// occurs at 01:45 EDT, which is already past, so the clamp takes the
		// second 01:45 rather than move the time earlier.
		{"clamp never moves earlier in an overlap", ny, "2025-11-02 01:10 -0500", func(w When) When {
			return w.Window("01:45", "06:00").IfPast(PastNow).NextLocal("00:00")
		}, "2025-11-02 01:45 -0500"},
		{"clamp in first pass of an overlap", ny, "2025-11-02 01:10 -0400", func(w When) When {
			return w.Window("01:45", "06:00").IfPast(PastNow).NextLocal("00:00")
		}, "2025-11-02 01:45 -0400"},
		{"kolkata overnight", "Asia/Kolkata", "2025-06-10 12:00 +0530", func(w When) When {
			return w.Window("21:30", "7:00").NextLocal("8:15")
		}, "2025-06-11 21:30 +0530"},
	})
}

func TestIfPast(t *testing.T) {
	t.Parallel()
	const ny = "America/New_York"
	runWhenCases(t, []whenCase{
		{"next: default rolls a day", ny, "2025-06-10 10:15 -0400", func(w When) When { return w.NextLocal("09:00") }, "2025-06-11 09:00 -0400"},
		{"next: equal to now is past", ny, "2025-06-10 09:00 -0400", func(w When) When { return w.NextLocal("09:00") }, "2025-06-11 09:00 -0400"},
		{"next: explicit", ny, "2025-06-10 10:15 -0400", func(w When) When { return w.IfPast(PastNext).NextLocal("09:00") }, "2025-06-11 09:00 -0400"},
		{"next: future untouched", ny, "2025-06-10 08:15 -0400", func(w When) When { return w.NextLocal("09:00") }, "2025-06-10 09:00 -0400"},
		{"next: weekday rolls a week", ny, "2025-06-09 10:00 -0400", func(w When) When { return w.Next(time.Monday).At("09:00") }, "2025-06-16 09:00 -0400"},
		{"next: roll across month end", ny, "2025-06-30 10:00 -0400", func(w When) When { return w.NextLocal("09:00") }, "2025-07-01 09:00 -0400"},
		{"next: in(0) past rolls a day", ny, "2025-06-10 10:00 -0400", func(w When) When { return w.In(0).At("09:00") }, "2025-06-11 09:00 -0400"},
		{"now: past becomes now", ny, "2025-06-10 10:15:42 -0400", func(w When) When { return w.IfPast(PastNow).NextLocal("09:00") }, "2025-06-10 10:15:42 -0400"},
		{"now: equal to now is now", ny, "2025-06-10 09:00 -0400", func(w When) When { return w.IfPast(PastNow).NextLocal("09:00") }, "2025-06-10 09:00 -0400"},
		{"now: future untouched", ny, "2025-06-10 08:15 -0400", func(w When) When { return w.IfPast(PastNow).NextLocal("09:00") }, "2025-06-10 09:00 -0400"},
		{"now: weekday today past becomes now", ny, "2025-06-09 10:00 -0400", func(w When) When { return w.IfPast(PastNow).Next(time.Monday).At("09:00") }, "2025-06-09 10:00 -0400"},
		{"now: then window clamps", ny, "2025-06-10 18:15 -0400", func(w When) When {
			return w.IfPast(PastNow).Window("09:00", "17:00").NextLocal("09:00")
		}, "2025-06-11 09:00 -0400"},
		{"now: inside window stays now", ny, "2025-06-10 10:15 -0400", func(w When) When {
			return w.IfPast(PastNow).Window("09:00", "17:00").NextLocal("09:00")
		}, "2025-06-10 10:15 -0400"},
		{"last policy wins", ny, "2025-06-10 10:15 -0400", func(w When) When {
			return w.IfPast(PastNow).IfPast(PastNext).NextLocal("09:00")
		}, "2025-06-11 09:00 -0400"},
	})
}

func TestCalendarDays(t *testing.T) {
	t.Parallel()
	const ny = "America/New_York"
	runWhenCases(t, []whenCase{
		{"tomorrow across month end", ny, "2025-01-31 10:00 -0500", func(w When) When { return w.Tomorrow().At("08:00") }, "2025-02-01 08:00 -0500"},
		{"tomorrow across year end", ny, "2025-12-31 23:59 -0500", func(w When) When { return w.Tomorrow().At("00:00") }, "2026-01-01 00:00 -0500"},
		{"tomorrow into leap day", ny, "2028-02-28 10:00 -0500", func(w When) When { return w.Tomorrow().At("08:00") }, "2028-02-29 08:00 -0500"},
		{"tomorrow skips missing leap day", ny, "2025-02-28 10:00 -0500", func(w When) When { return w.Tomorrow().At("08:00") }, "2025-03-01 08:00 -0500"},
		// "today" is the zone's date, not UTC's: 23:00 EST is already the
		// next day in UTC.
		{"today is the local date", ny, "2025-06-10 23:00 -0400", func(w When) When { return w.NextLocal("23:30") }, "2025-06-10 23:30 -0400"},
		{"next weekday includes today", ny, "2025-06-09 08:00 -0400", func(w When) When { return w.Next(time.Monday).At("09:00") }, "2025-06-09 09:00 -0400"},
		{"next weekday tomorrow", ny, "2025-06-09 08:00 -0400", func(w When) When { return w.Next(time.Tuesday).At("09:00") }, "2025-06-10 09:00 -0400"},
		{"next weekday six days on", ny, "2025-06-09 08:00 -0400", func(w When) When { return w.Next(time.Sunday).At("09:00") }, "2025-06-15 09:00 -0400"},
		{"next weekday across month end", ny, "2025-01-31 10:00 -0500", func(w When) When { return w.Next(time.Monday).At("09:00") }, "2025-02-03 09:00 -0500"},
		{"next weekday across year end", ny, "2025-12-31 10:00 -0500", func(w When) When { return w.Next(time.Friday).At("09:00") }, "2026-01-02 09:00 -0500"},
		{"next weekday across spring forward", ny, "2025-03-08 10:00 -0500", func(w When) When { return w.Next(time.Monday).At("09:00") }, "2025-03-10 09:00 -0400"},
		{"next weekday onto the gap", ny, "2025-03-08 10:00 -0500", func(w When) When { return w.Next(time.Sunday).At("02:30") }, "2025-03-09 03:30 -0400"},
		{"weekday roll across spring forward", ny, "2025-03-02 10:00 -0500", func(w When) When { return w.Next(time.Sunday).At("09:00") }, "2025-03-09 09:00 -0400"},
		{"weekday roll across fall back", ny, "2025-10-26 10:00 -0400", func(w When) When { return w.Next(time.Sunday).At("09:00") }, "2025-11-02 09:00 -0500"},
		{"in days across year end", ny, "2025-12-30 10:00 -0500", func(w When) When { return w.In(72 * time.Hour).At("09:00") }, "2026-01-02 09:00 -0500"},
		{"in hours stays today", ny, "2025-06-10 08:00 -0400", func(w When) When { return w.In(3 * time.Hour).At("18:00") }, "2025-06-10 18:00 -0400"},
		{"in hours crosses local midnight", ny, "2025-06-10 22:00 -0400", func(w When) When { return w.In(3 * time.Hour).At("09:00") }, "2025-06-11 09:00 -0400"},
		// 25 elapsed hours from 00:30 EDT on the fall-back day end at 00:30
		// EST the next day, so the date is the 3rd, not the 4th.
		{"in is elapsed time across fall back", ny, "2025-11-02 00:30 -0400", func(w When) When { return w.In(25 * time.Hour).At("09:00") }, "2025-11-03 09:00 -0500"},
	})
}

func TestTZ(t *testing.T) {
	t.Parallel()
	ny, berlin := zone(t, "America/New_York"), zone(t, "Europe/Berlin")
	cases := []struct {
		name string
		now  string
		w    func(When) When
		want string
	}{
		{"tz switches zone", "2025-06-10 12:00 -0400", func(w When) When { return w.TZ(berlin).NextLocal("20:00") }, "2025-06-10 20:00 +0200"},
		// 20:00 in New York is already the 11th in Berlin.
		{"tz decides today", "2025-06-10 20:00 -0400", func(w When) When { return w.TZ(berlin).NextLocal("09:00") }, "2025-06-11 09:00 +0200"},
		// The window is read in the zone in force at resolution.
		{"window follows tz", "2025-06-10 12:00 -0400", func(w When) When {
			return w.Window("09:00", "17:00").TZ(berlin).NextLocal("19:00")
		}, "2025-06-11 09:00 +0200"},
		{"last tz wins", "2025-06-10 12:00 -0400", func(w When) When { return w.TZ(berlin).TZ(ny).NextLocal("20:00") }, "2025-06-10 20:00 -0400"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.w(New(ts(t, tc.now), ny)).Time()
			if err != nil {
				t.Fatal(err)
			}
			if want := ts(t, tc.want); !got.Equal(want) {
				t.Fatalf("got %s, want %s", got.In(berlin), want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	ny := zone(t, "America/New_York")
	now := ts(t, "2025-06-10 12:00 -0400")
	base := New(now, ny)
	cases := []struct {
		name string
		w    When
		arg  string
	}{
		{"hour out of range", base.NextLocal("24:00"), "nextLocal"},
		{"minute out of range", base.NextLocal("12:60"), "nextLocal"},
		{"one minute digit", base.NextLocal("9:5"), "nextLocal"},
		{"three hour digits", base.NextLocal("009:00"), "nextLocal"},
		{"seconds", base.NextLocal("09:00:00"), "nextLocal"},
		{"sign", base.NextLocal("+9:00"), "nextLocal"},
		{"no colon", base.NextLocal("0900"), "nextLocal"},
		{"empty", base.NextLocal(""), "nextLocal"},
		{"inner space", base.NextLocal("9: 00"), "nextLocal"},
		{"unicode digits", base.NextLocal("٠٩:٠٠"), "nextLocal"},
		{"tomorrow at", base.Tomorrow().At("noon"), "tomorrow().at"},
		{"next at", base.Next(time.Monday).At("7pm"), "next().at"},
		{"in at", base.In(time.Hour).At("-1:00"), "in().at"},
		{"weekday above range", base.Next(time.Weekday(7)).At("09:00"), "next"},
		{"weekday below range", base.Next(time.Weekday(-1)).At("09:00"), "next"},
		{"negative in", base.In(-time.Hour).At("09:00"), "in"},
		{"window start", base.Window("9", "17:00").NextLocal("09:00"), "window start"},
		{"window end", base.Window("09:00", "25:00").NextLocal("09:00"), "window end"},
		{"window end empty", base.Window("09:00", "").NextLocal("09:00"), "window end"},
		{"if past", base.IfPast("later").NextLocal("09:00"), "ifPast"},
		{"if past empty", base.IfPast("").NextLocal("09:00"), "ifPast"},
		{"nil tz", base.TZ(nil).NextLocal("09:00"), "tz"},
		{"nil loc", New(now, nil).NextLocal("09:00"), "loc"},
		{"zero value", When{}.NextLocal("09:00"), "loc"},
		{"no resolver", base.Window("09:00", "17:00"), "resolver"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.w.Time()
			if err == nil {
				t.Fatalf("got %s, want error", got)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			var ae *ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("error %T, want *ArgError", err)
			}
			if ae.Arg != tc.arg {
				t.Errorf("arg %q, want %q (error: %v)", ae.Arg, tc.arg, err)
			}
			if !got.IsZero() {
				t.Errorf("time %s alongside error, want zero", got)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := New(time.Unix(0, 0), time.UTC).Window("09:00", "25:00").NextLocal("10:00").Time()
	const want = `schedule: window end "25:00": hour out of range 0-23`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestWhitespaceIgnored(t *testing.T) {
	t.Parallel()
	now := ts(t, "2025-06-10 01:00 +0000")
	got, err := New(now, time.UTC).Window(" 9:00 ", "\t17:00\n").NextLocal("  8:05 ").Time()
	if err != nil {
		t.Fatal(err)
	}
	if want := ts(t, "2025-06-10 09:00 +0000"); !got.Equal(want) {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestImmutable(t *testing.T) {
	t.Parallel()
	ny := zone(t, "America/New_York")
	now := ts(t, "2025-06-10 10:00 -0400")
	base := New(now, ny).Window("09:00", "17:00")

	late := base.NextLocal("20:00")
	early := base.IfPast(PastNow).NextLocal("08:00")
	berlin := base.TZ(zone(t, "Europe/Berlin")).NextLocal("20:00")

	if _, err := base.Time(); err == nil {
		t.Fatal("base gained a resolver from a derived builder")
	}
	check := func(name string, w When, want string) {
		t.Helper()
		got, err := w.Time()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !got.Equal(ts(t, want)) {
			t.Errorf("%s: got %s, want %s", name, got.In(ny), want)
		}
	}
	check("late", late, "2025-06-11 09:00 -0400")     // default policy, window from base
	check("early", early, "2025-06-10 10:00 -0400")   // now, inside the window
	check("berlin", berlin, "2025-06-11 09:00 +0200") // 20:00 Berlin is after 17:00
	// Resolving twice gives the same answer: nothing is read from a clock.
	check("late again", late, "2025-06-11 09:00 -0400")
}

func TestAsOf(t *testing.T) {
	t.Parallel()
	ny := zone(t, "America/New_York")
	w := New(ts(t, "2025-06-10 08:00 -0400"), ny).NextLocal("09:00")
	got, err := w.AsOf(ts(t, "2025-06-10 10:00 -0400")).Time()
	if err != nil {
		t.Fatal(err)
	}
	if want := ts(t, "2025-06-11 09:00 -0400"); !got.Equal(want) {
		t.Fatalf("got %s, want %s", got.In(ny), want)
	}
	got, err = w.Time()
	if err != nil {
		t.Fatal(err)
	}
	if want := ts(t, "2025-06-10 09:00 -0400"); !got.Equal(want) {
		t.Fatalf("original: got %s, want %s", got.In(ny), want)
	}
}

// TestResultAfterNow checks the invariant the journey runner relies on: with
// IfPast(PastNext) the result is always strictly after now, and with a
// window it is always inside the window, for every start minute of a DST
// day in several zones.
func TestResultAfterNow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone string
		day  string // a transition day
	}{
		{"America/New_York", "2025-03-09 00:00 -0500"},
		{"America/New_York", "2025-11-02 00:00 -0400"},
		{"Europe/Berlin", "2025-03-30 00:00 +0100"},
		{"Europe/Berlin", "2025-10-26 00:00 +0200"},
		{"Australia/Sydney", "2025-04-06 00:00 +1100"},
		{"Australia/Sydney", "2025-10-05 00:00 +1000"},
		{"Australia/Lord_Howe", "2025-10-05 00:00 +1030"},
		{"Asia/Kolkata", "2025-03-09 00:00 +0530"},
	} {
		t.Run(tc.zone+" "+tc.day[:10], func(t *testing.T) {
			t.Parallel()
			loc := zone(t, tc.zone)
			start := ts(t, tc.day)
			for now := start; now.Before(start.Add(26 * time.Hour)); now = now.Add(10 * time.Minute) {
				for _, at := range []string{"00:00", "01:30", "02:00", "02:30", "03:00", "09:00", "23:59"} {
					for _, win := range [][2]string{{"00:00", "00:00"}, {"09:00", "17:00"}, {"22:00", "06:00"}, {"02:15", "04:00"}} {
						w := New(now, loc).Window(win[0], win[1]).NextLocal(at)
						got, err := w.Time()
						if err != nil {
							t.Fatal(err)
						}
						if !got.After(now) {
							t.Fatalf("now %s at %s window %v: result %s not after now", now.In(loc), at, win, got.In(loc))
						}
						if !inWindow(got.In(loc), win) {
							t.Fatalf("now %s at %s window %v: result %s outside window", now.In(loc), at, win, got.In(loc))
						}
						if got.Sub(now) > 72*time.Hour {
							t.Fatalf("now %s at %s window %v: result %s too far", now.In(loc), at, win, got.In(loc))
						}
					}
				}
			}
		})
	}
}

func inWindow(t time.Time, win [2]string) bool {
	from, _ := ParseClock(win[0])
	to, _ := ParseClock(win[1])
	h, m, _ := t.Clock()
	tod := Clock{h, m}.sinceMidnight()
	s, e := from.sinceMidnight(), to.sinceMidnight()
	switch {
	case s == e:
		return true
	case s < e:
		return tod >= s && tod < e
	default:
		return tod >= s || tod < e
	}
}
