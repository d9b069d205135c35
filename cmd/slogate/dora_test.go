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

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/store"
)

func TestTheAlertRecordGivesThePageBurnsTheTrackerSaved(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	// What alertStates.Save writes, at the instants the tracker saw.
	save := func(when time.Time, key string, s alerting.State) {
		b, _ := json.Marshal(s)
		if err := st.Audit(ctx, store.AuditEntry{At: when, Actor: "slogate", Action: actionAlertState, Subject: key, Detail: string(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Audit(ctx, store.AuditEntry{At: at(1), Actor: "slogate", Action: actionAlertTracking, Subject: "page"}); err != nil {
		t.Fatal(err)
	}
	save(at(2), "shop-availability/page", alerting.State{Firing: true, StartsAt: at(2)})
	save(at(2), "shop-availability/ticket", alerting.State{Firing: true, StartsAt: at(2)})
	save(at(3), "shop-availability/page", alerting.State{})
	save(at(5), "shop-availability/page", alerting.State{Firing: true, StartsAt: at(5)})
	save(at(6), "shop-availability/page", alerting.State{})
	save(at(30), "cart-latency/page", alerting.State{Firing: true, StartsAt: at(30)}) // still firing

	tests := map[string]struct {
		from, to time.Time
		want     []string
	}{
		"every burn of the record, the one still firing without an end": {
			from: at(0), to: at(40),
			want: []string{"shop-availability 02:00-03:00", "shop-availability 05:00-06:00", "cart-latency 06:00-"},
		},
		"a burn that ended before from is left out; one going at from is in": {
			from: at(4), to: at(40),
			want: []string{"shop-availability 05:00-06:00", "cart-latency 06:00-"},
		},
		"a burn that begins after to is left out": {
			from: at(0), to: at(4),
			want: []string{"shop-availability 02:00-03:00"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			burns, since, err := alertRecord{st}.PageBurns(ctx, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range burns {
				end := ""
				if !b.End.IsZero() {
					end = b.End.Format("15:04")
				}
				got = append(got, fmt.Sprintf("%s %s-%s", b.SLO, b.Start.Format("15:04"), end))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("burns = %q, want %q", got, tc.want)
			}
			if !since.Equal(at(1)) {
				t.Errorf("since = %s, want the tracking mark at %s", since, at(1))
			}
		})
	}
}

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
