package alerting

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxExcerpt bounds the part of a peer's answer an error message quotes.
const maxExcerpt = 200

// RetryAfter reads an answer's Retry-After header, delay-seconds or an
// HTTP date (RFC 9110, section 10.2.3), as the instant a peer may be
// called again; false when the header is absent or unreadable.
func RetryAfter(h http.Header, now time.Time) (time.Time, bool) {
	s := strings.TrimSpace(h.Get("Retry-After"))
	if s == "" {
		return time.Time{}, false
	}
	if secs, err := strconv.Atoi(s); err == nil {
		if secs < 0 {
			return time.Time{}, false
		}
		return now.Add(time.Duration(secs) * time.Second), true
	}
	if t, err := http.ParseTime(s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// Excerpt is a peer's answer as an error message quotes it: secret masked
// as [token] first (so no part of it survives the cut), then trimmed and
// cut to 200 bytes of valid UTF-8, "…" marking the cut.
func Excerpt(body, secret string) string {
	if secret != "" {
		body = strings.ReplaceAll(body, secret, "[token]")
	}
	body = strings.TrimSpace(body)
	if len(body) > maxExcerpt {
		body = strings.ToValidUTF8(body[:maxExcerpt], "") + "…"
	}
	return body
}
