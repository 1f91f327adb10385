package httpapi

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// emailPattern follows the reference's validator: a local part of letters,
// digits and _'+-. and a domain with a TLD of two or more letters. The "no
// leading dot" and "no double dot" rules are checked in code because RE2
// has no look-ahead.
var emailPattern = regexp.MustCompile(`(?i)^[a-z0-9_'+\-.]*[a-z0-9_+\-]@([a-z0-9][a-z0-9\-]*\.)+[a-z]{2,}$`)

// ValidEmail reports whether s is an email address the API accepts.
func ValidEmail(s string) bool {
	return len(s) <= 254 && !strings.HasPrefix(s, ".") && !strings.Contains(s, "..") && emailPattern.MatchString(s)
}

// utcTimestampPattern is ISO-8601 UTC with a trailing Z, seconds optional
// and any number of fraction digits; offsets and date-only values fail.
var utcTimestampPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z$`)

// ParseUTCTimestamp parses the timestamp form the API accepts.
func ParseUTCTimestamp(s string) (time.Time, error) {
	if !utcTimestampPattern.MatchString(s) {
		return time.Time{}, fmt.Errorf("must be an ISO-8601 UTC date-time ending in Z")
	}
	layout := "2006-01-02T15:04Z"
	if len(s) > len(layout) {
		layout = "2006-01-02T15:04:05Z"
		if strings.Contains(s, ".") {
			layout = "2006-01-02T15:04:05." + strings.Repeat("9", len(s)-len("2006-01-02T15:04:05.Z")) + "Z"
		}
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be a valid date-time")
	}
	return t.UTC(), nil
}
