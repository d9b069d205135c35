package store

import (
	"testing"
	"time"

	"github.com/slogate/slogate"
)

// The idempotency key of a deploy is bound to the hash of its body; a
// stored key must match the same request after an upgrade, so the hash of
// a given body never changes (the values below are those of the first
// release that hashed commits).
func TestTheIdempotencyHashOfABodyNeverChanges(t *testing.T) {
	started := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	committed := started.Add(-time.Hour)
	tests := map[string]struct {
		d    slogate.Deploy
		want string
	}{
		"a deploy without commits": {
			d:    slogate.Deploy{Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: started},
			want: "6c3db53ae6fd63bc1041a04e20e59d6c0689ad0b9f0ba63421b636e51dffc6f1",
		},
		"a deploy with commits and labels": {
			d: slogate.Deploy{Service: "checkout", Environment: "production", Version: "v2", Commit: "abc", PipelineURL: "https://ci/1",
				Strategy: "canary", Labels: map[string]string{"team": "pay"}, StartedAt: started,
				Commits: []slogate.Commit{{SHA: "abc", Time: committed}, {SHA: "def"}}},
			want: "1bcd041c332c4a379b3ba571d1363cedb579562ec6b8729a972e883ceed05a55",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, got, err := prepareDeploy(tc.d, started)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("hash = %s, want %s", got, tc.want)
			}
		})
	}
}
