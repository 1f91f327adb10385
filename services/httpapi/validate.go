package httpapi

import (
	"regexp"
	"strings"
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
