package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalid is matched by every argument error of this package
// (errors.Is(err, schedule.ErrInvalid)), so callers can classify them as
// invalid_request without inspecting messages.
var ErrInvalid = errors.New("invalid argument")

// ArgError reports a bad builder argument. Arg names the builder call or
// parameter ("nextLocal", "at", "window start", "window end", "next", "in",
// "ifPast", "tz", "loc"), Value is the offending value as given.
type ArgError struct {
	Arg    string
	Value  string
	Reason string
}

// Error renders `schedule: <arg> "<value>": <reason>`.
func (e *ArgError) Error() string {
	return fmt.Sprintf("schedule: %s %q: %s", e.Arg, e.Value, e.Reason)
}

// Unwrap makes every ArgError match ErrInvalid.
func (e *ArgError) Unwrap() error { return ErrInvalid }

// Clock is a wall-clock time of day with minute precision, as written in
// "H:mm"/"HH:mm" arguments.
type Clock struct {
	Hour   int // 0–23
	Minute int // 0–59
}

// String renders the clock as "HH:MM".
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }

// sinceMidnight is the wall-clock offset of c from local midnight.
func (c Clock) sinceMidnight() time.Duration {
	return time.Duration(c.Hour)*time.Hour + time.Duration(c.Minute)*time.Minute
}

// ParseClock parses "H:mm" or "HH:mm" (hours 0–23, minutes 0–59, exactly two
// minute digits). Surrounding whitespace is ignored, as the spec allows;
// anything else ("24:00", "9:5", "09:00:00", "+9:00") is an error. Use it to
// validate a configured send window at startup; the builder parses its own
// arguments when it resolves.
func ParseClock(s string) (Clock, error) {
	c, reason := parseClock(s)
	if reason != "" {
		return Clock{}, &ArgError{Arg: "time", Value: s, Reason: reason}
	}
	return c, nil
}

// parseClock returns the clock or a reason it is invalid; callers attach the
// argument name.
func parseClock(s string) (Clock, string) {
	t := strings.TrimSpace(s)
	h, m, ok := strings.Cut(t, ":")
	if !ok {
		return Clock{}, `want "H:mm" or "HH:mm"`
	}
	if len(h) < 1 || len(h) > 2 || len(m) != 2 || !digits(h) || !digits(m) {
		return Clock{}, `want "H:mm" or "HH:mm"`
	}
	hour := atoi(h)
	minute := atoi(m)
	if hour > 23 {
		return Clock{}, "hour out of range 0-23"
	}
	if minute > 59 {
		return Clock{}, "minute out of range 0-59"
	}
	return Clock{Hour: hour, Minute: minute}, ""
}

// digits reports whether s is all ASCII digits; strconv.Atoi would also take
// signs, which "H:mm" does not allow.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// ParseWeekday parses a weekday given by its short ("mon") or full ("Monday")
// English name, case-insensitively, as the spec's next(wd) accepts.
func ParseWeekday(name string) (time.Weekday, error) {
	n := strings.ToLower(name)
	for d := time.Sunday; d <= time.Saturday; d++ {
		full := strings.ToLower(d.String())
		if n == full || n == full[:3] {
			return d, nil
		}
	}
	return 0, &ArgError{Arg: "weekday", Value: name, Reason: "want a short or full weekday name"}
}
