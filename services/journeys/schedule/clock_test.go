package schedule

import (
	"errors"
	"testing"
	"time"
)

func TestParseClock(t *testing.T) {
	t.Parallel()
	valid := map[string]Clock{
		"0:00":    {0, 0},
		"00:00":   {0, 0},
		"9:05":    {9, 5},
		"09:05":   {9, 5},
		"23:59":   {23, 59},
		" 7:30\t": {7, 30},
	}
	for in, want := range valid {
		got, err := ParseClock(in)
		if err != nil || got != want {
			t.Errorf("ParseClock(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", ":", "24:00", "23:60", "9:5", "123:00", "09:00:00", "+9:00", "-0:00", "9:0a", "09.00", "0900", "9 :00", "١:٠٠"} {
		_, err := ParseClock(in)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseClock(%q) error %v, want ErrInvalid", in, err)
		}
	}
	if s := (Clock{7, 5}).String(); s != "07:05" {
		t.Errorf("String = %q", s)
	}
}

func TestParseWeekday(t *testing.T) {
	t.Parallel()
	valid := map[string]time.Weekday{
		"sun": time.Sunday, "Sunday": time.Sunday, "SUN": time.Sunday,
		"mon": time.Monday, "MONDAY": time.Monday,
		"tue": time.Tuesday, "wed": time.Wednesday, "Thu": time.Thursday,
		"friday": time.Friday, "sAtUrDaY": time.Saturday,
	}
	for in, want := range valid {
		got, err := ParseWeekday(in)
		if err != nil || got != want {
			t.Errorf("ParseWeekday(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "mo", "tues", "thurs", " monday", "lundi", "1", "weekday"} {
		_, err := ParseWeekday(in)
		var ae *ArgError
		if !errors.As(err, &ae) || ae.Arg != "weekday" {
			t.Errorf("ParseWeekday(%q) error %v, want ArgError for weekday", in, err)
		}
	}
}
