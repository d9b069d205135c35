package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSlogateDeployWithoutAComparableHistorySendsTheCommitAlone(t *testing.T) {
	repo := newGitRepo(t)
	written := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	sha := repo.commit(t, written, "the change")
	tests := map[string]struct {
		previous string // the server's newest deploy's commit
		gitDir   string
		want     string // the commits sent, "sha time" each
		warn     string
	}{
		"a commit the checkout does not have (a shallow clone): the commit alone": {
			previous: "0123456789abcdef0123456789abcdef01234567", gitDir: repo.dir,
			want: sha + " 2026-11-20T08:00:00Z", warn: "git cannot list",
		},
		"no previous deploy: the commit alone": {
			gitDir: repo.dir, want: sha + " 2026-11-20T08:00:00Z",
		},
		"not a checkout: no commits, the deploy recorded all the same": {
			gitDir: t.TempDir(), warn: "no commits recorded",
		},
		`--git-dir "" sends none`: {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var sent struct {
				Commits []commitJSON `json:"commits"`
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch {
				case r.Method == http.MethodGet && r.URL.Path == "/v1/deploys":
					items := []map[string]string{}
					if tc.previous != "" {
						items = append(items, map[string]string{"commit": tc.previous})
					}
					json.NewEncoder(w).Encode(map[string]any{"items": items, "nextCursor": ""})
				case r.Method == http.MethodPost && r.URL.Path == "/v1/deploys":
					json.NewDecoder(r.Body).Decode(&sent)
					w.WriteHeader(http.StatusCreated)
					fmt.Fprint(w, `{"id":"dep_1"}`)
				default:
					w.WriteHeader(http.StatusNotFound)
				}
			}))
			t.Cleanup(srv.Close)
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"deploy", "--server", srv.URL, "--service", "shop", "--environment", "production",
				"--version", "v2", "--commit", sha, "--git-dir", tc.gitDir}, func(string) string { return "" }, &out, &errOut)
			if err != nil || strings.TrimSpace(out.String()) != "dep_1" {
				t.Fatalf("deploy: %v, %q\n%s", err, out.String(), errOut.String())
			}
			var got []string
			for _, c := range sent.Commits {
				got = append(got, c.SHA+" "+c.Time)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("commits sent %q, want %q", got, tc.want)
			}
			if !strings.Contains(errOut.String(), tc.warn) {
				t.Errorf("stderr %q does not say %q", errOut.String(), tc.warn)
			}
		})
	}
}
