// Package retryafter reads the Retry-After header of an HTTP response, for
// the requests pollhook makes upstream and to destinations.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse returns the wait a Retry-After value asks for, a number of seconds
// or an HTTP date less now, at most limit. ok is false for an empty or
// invalid value (a number too large for an int64 is invalid: it is no
// date either). A negative number or a past date asks for no wait: 0 and
// true.
func Parse(v string, now time.Time, limit time.Duration) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case secs <= 0:
			return 0, true
		case secs > int64(limit/time.Second):
			// Compared in seconds, so that a huge value cannot overflow.
			return limit, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(min(t.Sub(now), limit), 0), true
}
