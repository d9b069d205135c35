package alerting

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfterReadsSecondsAndHTTPDates(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, header string
		want         time.Time
		ok           bool
	}{
		{"seconds", "120", now.Add(2 * time.Minute), true},
		{"seconds with spaces", " 5 ", now.Add(5 * time.Second), true},
		{"zero", "0", now, true},
		{"an HTTP date", "Tue, 01 Dec 2026 12:30:00 GMT", now.Add(30 * time.Minute), true},
		{"absent", "", time.Time{}, false},
		{"negative", "-3", time.Time{}, false},
		{"garbage", "soon", time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Retry-After", tc.header)
			}
			got, ok := RetryAfter(h, now)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Errorf("RetryAfter(%q) = %s, %v; want %s, %v", tc.header, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestExcerptMasksTheSecretBeforeItCuts(t *testing.T) {
	secret := "ghs_0123456789abcdef"
	for _, tc := range []struct{ name, body, want string }{
		{"short", "  bad credentials  ", "bad credentials"},
		{"a secret in it", "token " + secret + " refused", "token [token] refused"},
		// The secret straddles the 200th byte: cut first, its prefix
		// would be quoted.
		{"a secret across the cut", strings.Repeat("x", 190) + secret, strings.Repeat("x", 190) + "[token]"},
		{"long", strings.Repeat("é", 150), strings.Repeat("é", 100) + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Excerpt(tc.body, secret); got != tc.want {
				t.Errorf("Excerpt = %q, want %q", got, tc.want)
			}
		})
	}
}
