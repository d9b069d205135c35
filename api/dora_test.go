package api

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate/dora"
	"github.com/slogate/slogate/store"
)

func TestBadCommitsAreRefusedNamingTheField(t *testing.T) {
	base := `"service":"checkout","environment":"production","version":"v2"`
	tests := map[string]struct{ body, field string }{
		"a commit without a sha names commits[1].sha": {
			body: `{` + base + `,"commits":[{"sha":"a1","time":"2026-11-21T10:00:00Z"},{"time":"2026-11-21T10:00:00Z"}]}`, field: "commits[1].sha"},
		"a commit time that is not RFC 3339 names commits[0].time": {
			body: `{` + base + `,"commits":[{"sha":"a1","time":"yesterday"}]}`, field: "commits[0].time"},
		"a commit time in the future names commits[0].time": {
			body: `{` + base + `,"commits":[{"sha":"a1","time":"2027-01-01T00:00:00Z"}]}`, field: "commits[0].time"},
		"an unknown field of a commit is named": {
			body: `{` + base + `,"commits":[{"sha":"a1","author":"x"}]}`, field: "author"},
		"commitTime without commit names commitTime": {
			body: `{` + base + `,"commitTime":"2026-11-21T10:00:00Z"}`, field: "commitTime"},
		"commitTime with commits names commitTime": {
			body: `{` + base + `,"commit":"a1","commitTime":"2026-11-21T10:00:00Z","commits":[{"sha":"a1"}]}`, field: "commitTime"},
	}
	h := newHarness(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := problem(t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: tc.body}), 400)
			if !p.names(tc.field) {
				t.Fatalf("problem %+v does not name %s", p, tc.field)
			}
		})
	}
}

func TestADeployCarriesItsCommits(t *testing.T) {
	tests := map[string]struct {
		body string
		want []slogate.Commit
	}{
		"commits with and without a time": {
			body: `"commits":[{"sha":"b2","time":"2026-11-21T10:00:00+01:00"},{"sha":"a1"}]`,
			want: []slogate.Commit{{SHA: "b2", Time: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}, {SHA: "a1"}},
		},
		"commitTime is the time of commit": {
			body: `"commit":"c3","commitTime":"2026-11-21T08:30:00Z"`,
			want: []slogate.Commit{{SHA: "c3", Time: time.Date(2026, 11, 21, 8, 30, 0, 0, time.UTC)}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			d := decodeAs[Deploy](t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI,
				body: `{"service":"checkout","environment":"production","version":"v2",` + tc.body + `}`}), 201)
			stored := h.store.all()[0].Commits
			if len(stored) != len(tc.want) {
				t.Fatalf("stored commits %+v, want %+v", stored, tc.want)
			}
			for i, w := range tc.want {
				if stored[i].SHA != w.SHA || !stored[i].Time.Equal(w.Time) {
					t.Errorf("stored commit %d = %+v, want %+v", i, stored[i], w)
				}
				got := d.Commits[i]
				if got.SHA != w.SHA || (got.Time == nil) != w.Time.IsZero() || got.Time != nil && !got.Time.Equal(w.Time) {
					t.Errorf("answered commit %d = %+v, want %+v", i, got, w)
				}
			}
		})
	}
}

// fakeDelivery answers fixed burns and records what it was asked.
type fakeDelivery struct {
	burns []dora.Burn
	err   error

	mu      sync.Mutex
	spans   map[string][]dora.Span
	history []slogate.Deploy
}

func (f *fakeDelivery) Burns(_ context.Context, service string, spans []dora.Span, _ time.Time) ([]dora.Burn, dora.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.spans == nil {
		f.spans = map[string][]dora.Span{}
	}
	f.spans[service] = append(f.spans[service], spans...)
	var out []dora.Burn
	for _, b := range f.burns {
		if b.Service == service {
			out = append(out, b)
		}
	}
	return out, dora.Stats{Queries: 7, QueryLimit: 2000}, f.err
}

func (f *fakeDelivery) Impact(_ context.Context, history []slogate.Deploy, i int, _ time.Duration, at time.Time) (dora.Impact, error) {
	f.mu.Lock()
	f.history = history
	f.mu.Unlock()
	return dora.Impact{ChangeFailure: dora.Verdict{Reason: "deploy " + history[i].ID + " of " + fmt.Sprint(len(history))}, SLOs: []dora.SLOImpact{}}, f.err
}

// sqliteHarness is a harness over the real embedded store.
func sqliteHarness(t *testing.T, delivery Delivery) (*harness, store.Store) {
	st, err := store.Open(context.Background(), "sqlite:"+t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newHarness(t, func(d *Deps) { d.Store, d.Delivery = st, delivery }), st
}

func record(t *testing.T, st store.Store, id, service, env string, start time.Time, minutes int, status string, commitAge time.Duration) {
	t.Helper()
	d := slogate.Deploy{ID: id, Service: service, Environment: env, Version: id, StartedAt: start}
	if commitAge > 0 {
		d.Commits = []slogate.Commit{{SHA: id + "-sha", Time: start.Add(-commitAge)}}
	}
	if _, _, err := st.CreateDeploy(context.Background(), d, ""); err != nil {
		t.Fatal(err)
	}
	if status != slogate.StatusRunning {
		if _, err := st.FinishDeploy(context.Background(), id, status, start.Add(time.Duration(minutes)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDORAOverTheStore(t *testing.T) {
	now := fixedTime // 2026-11-21T12:15:00Z
	del := &fakeDelivery{burns: []dora.Burn{
		{Service: "checkout", SLO: "checkout-availability", Start: now.Add(-47*time.Hour + 10*time.Minute), End: now.Add(-46 * time.Hour)},
	}}
	h, st := sqliteHarness(t, del)
	// checkout/production: four deploys in two days; c2 failed, c3 burned.
	record(t, st, "c1", "checkout", "production", now.Add(-72*time.Hour), 5, slogate.StatusSucceeded, 2*time.Hour)
	record(t, st, "c2", "checkout", "production", now.Add(-48*time.Hour), 5, slogate.StatusFailed, time.Hour)
	record(t, st, "c3", "checkout", "production", now.Add(-47*time.Hour), 5, slogate.StatusSucceeded, 0)
	record(t, st, "c4", "checkout", "production", now.Add(-24*time.Hour), 10, slogate.StatusSucceeded, 4*time.Hour)
	record(t, st, "s1", "search", "production", now.Add(-24*time.Hour), 5, slogate.StatusSucceeded, time.Hour)
	// Long before the window, and still running: neither counts.
	record(t, st, "c0", "checkout", "production", now.Add(-60*24*time.Hour), 5, slogate.StatusSucceeded, time.Hour)
	record(t, st, "c5", "checkout", "production", now.Add(-time.Hour), 0, slogate.StatusRunning, time.Hour)

	got := decodeAs[DORA](t, h.do(t, call{method: "GET", path: "/v1/dora?service=checkout&environment=production", token: tokRead}), 200)
	if got.Deployments.Count != 3 || got.ChangeFailureRate.Deployments != 4 || got.ChangeFailureRate.Failures != 2 {
		t.Errorf("deployments %+v, change failures %+v; want 3 succeeded, 2 failures of 4", got.Deployments, got.ChangeFailureRate)
	}
	// Lead times: c1 2h05m, c4 4h10m; c3 has no commits.
	if got.LeadTime.Samples != 2 || got.LeadTime.Missing != 1 || got.LeadTime.Median == nil || *got.LeadTime.Median != (3*time.Hour+7*time.Minute+30*time.Second).Seconds() {
		t.Errorf("leadTime = %+v", got.LeadTime)
	}
	kinds := []string{}
	for _, f := range got.Failures {
		kinds = append(kinds, f.DeployID+":"+f.Kind)
	}
	if fmt.Sprint(kinds) != "[c2:failed c3:burn]" {
		t.Errorf("failures = %v, want c2 failed and c3 burned", kinds)
	}
	if got.Sources.Queries != 7 || got.Attribution != 3600 || !got.Window.End.Equal(now) || got.Service != "checkout" {
		t.Errorf("sources %+v, attribution %v, window %+v", got.Sources, got.Attribution, got.Window)
	}
	// The spans asked are those of the deploys that did not fail.
	if n := len(del.spans["checkout"]); n != 3 {
		t.Errorf("burns asked over %d spans of checkout, want 3 (c1, c3, c4)", n)
	}

	all := decodeAs[DORA](t, h.do(t, call{method: "GET", path: "/v1/dora", token: tokRead}), 200)
	if all.Deployments.Count != 4 || all.ChangeFailureRate.Deployments != 5 {
		t.Errorf("every service: deployments %+v, %+v; want search's deploy too", all.Deployments, all.ChangeFailureRate)
	}

	past := decodeAs[DORA](t, h.do(t, call{method: "GET", path: "/v1/dora?service=checkout&window=1d&at=" + now.Add(-47*time.Hour+30*time.Minute).Format(time.RFC3339), token: tokRead}), 200)
	if past.ChangeFailureRate.Deployments != 2 || past.Deployments.Count != 1 {
		t.Errorf("a day's window ending after c3: %+v, %+v; want c2 and c3", past.Deployments, past.ChangeFailureRate)
	}
}

func TestBadDORAQueriesAreRefusedNamingTheField(t *testing.T) {
	h, _ := sqliteHarness(t, &fakeDelivery{})
	for query, field := range map[string]string{
		"window=3x":                 "window",
		"window=500d":               "window",
		"attribution=0s":            "attribution",
		"at=yesterday":              "at",
		"at=2027-01-01T00:00:00Z":   "at",
		"service=%20":               "service",
		"window=30d&attribution=8d": "attribution",
	} {
		t.Run(query, func(t *testing.T) {
			p := problem(t, h.do(t, call{method: "GET", path: "/v1/dora?" + query, token: tokRead}), 400)
			if !p.names(field) {
				t.Fatalf("problem %+v does not name %s", p, field)
			}
		})
	}
	problem(t, h.do(t, call{method: "GET", path: "/v1/dora"}), 401)
}

func TestDORAAnswers503WhenTheBurnsCannotBeFound(t *testing.T) {
	h, st := sqliteHarness(t, &fakeDelivery{err: fmt.Errorf("measuring: %w", context.DeadlineExceeded)})
	record(t, st, "c1", "checkout", "production", fixedTime.Add(-3*time.Hour), 5, slogate.StatusSucceeded, 0)
	problem(t, h.do(t, call{method: "GET", path: "/v1/dora", token: tokRead}), 503)
}

func TestADeployReadBackCarriesItsImpact(t *testing.T) {
	del := &fakeDelivery{}
	h, st := sqliteHarness(t, del)
	now := fixedTime
	record(t, st, "c1", "checkout", "production", now.Add(-10*24*time.Hour), 5, slogate.StatusFailed, 0)
	record(t, st, "x1", "checkout", "staging", now.Add(-9*24*time.Hour), 5, slogate.StatusSucceeded, 0)
	record(t, st, "c2", "checkout", "production", now.Add(-9*24*time.Hour), 5, slogate.StatusRolledBack, 0)
	record(t, st, "c3", "checkout", "production", now.Add(-2*24*time.Hour), 5, slogate.StatusSucceeded, 0)
	record(t, st, "c4", "checkout", "production", now.Add(-24*time.Hour), 5, slogate.StatusSucceeded, 0)

	r := h.do(t, call{method: "GET", path: "/v1/deploys/c1", token: tokRead})
	d := decodeAs[Deploy](t, r, 200)
	if d.Impact == nil || d.Impact.ChangeFailure.Reason != "deploy c1 of 3" {
		t.Fatalf("impact = %+v; want it measured over c1 and the deploys up to the first that succeeded", d.Impact)
	}
	var ids []string
	for _, x := range del.history {
		ids = append(ids, x.ID)
	}
	if !slices.Equal(ids, []string{"c1", "c2", "c3"}) {
		t.Errorf("history = %v, want c1 c2 c3 (production only, up to c3 that succeeded)", ids)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil || raw["impact"] == nil {
		t.Errorf("no impact in %s", r.body)
	}

	h2, st2 := sqliteHarness(t, nil)
	record(t, st2, "c1", "checkout", "production", now.Add(-time.Hour), 5, slogate.StatusSucceeded, 0)
	if d := decodeAs[Deploy](t, h2.do(t, call{method: "GET", path: "/v1/deploys/c1", token: tokRead}), 200); d.Impact != nil {
		t.Errorf("impact %+v without a Delivery", d.Impact)
	}
}

// fakeCommits is a CommitLister that records what it was asked.
type fakeCommits struct {
	commits []slogate.Commit
	err     error
	asked   []string
}

func (f *fakeCommits) Compare(_ context.Context, repo, base, head string) ([]slogate.Commit, error) {
	f.asked = append(f.asked, repo+" "+base+"..."+head)
	return f.commits, f.err
}

func TestAGitHubDeploymentCarriesTheCommitsSinceThePreviousDeploy(t *testing.T) {
	written := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		previous string // the commit of the deploy before, "" for none
		lister   *fakeCommits
		asked    []string
		want     int
	}{
		"the commits between the previous deploy's sha and its own": {
			previous: "1111111111111111111111111111111111111111",
			lister:   &fakeCommits{commits: []slogate.Commit{{SHA: "a", Time: written}, {SHA: ghCommit, Time: written.Add(time.Hour)}}},
			asked:    []string{"acme/checkout 1111111111111111111111111111111111111111..." + ghCommit},
			want:     2,
		},
		"a first deploy has no previous sha: no commits, GitHub not asked": {
			lister: &fakeCommits{commits: []slogate.Commit{{SHA: "a", Time: written}}},
		},
		"GitHub failing leaves the deploy without commits, recorded all the same": {
			previous: "1111111111111111111111111111111111111111",
			lister:   &fakeCommits{err: fmt.Errorf("github compare: HTTP 502")},
			asked:    []string{"acme/checkout 1111111111111111111111111111111111111111..." + ghCommit},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newGitHubHarness(t, func(d *Deps) { d.Commits = tc.lister })
			if tc.previous != "" {
				if _, _, err := h.store.CreateDeploy(context.Background(), slogate.Deploy{ID: "dep_before", Service: "checkout", Environment: "production",
					Version: "v2.3.0", Commit: tc.previous, StartedAt: time.Date(2026, 11, 19, 9, 0, 0, 0, time.UTC)}, ""); err != nil {
					t.Fatal(err)
				}
			}
			d := decodeAs[Deploy](t, h.github(t, "deployment", ghPayload(t, "deployment")), 201)
			if !slices.Equal(tc.lister.asked, tc.asked) {
				t.Errorf("GitHub asked %q, want %q", tc.lister.asked, tc.asked)
			}
			if len(d.Commits) != tc.want {
				t.Errorf("commits = %+v, want %d", d.Commits, tc.want)
			}
			if tc.want > 0 && (d.Commits[0].Time == nil || !d.Commits[0].Time.Equal(written)) {
				t.Errorf("first commit = %+v, want written at %s", d.Commits[0], written)
			}
		})
	}
}

func TestImpactFalseReadsTheDeployAlone(t *testing.T) {
	del := &fakeDelivery{}
	h, st := sqliteHarness(t, del)
	record(t, st, "c1", "checkout", "production", fixedTime.Add(-time.Hour), 5, slogate.StatusSucceeded, 0)
	d := decodeAs[Deploy](t, h.do(t, call{method: "GET", path: "/v1/deploys/c1?impact=false", token: tokRead}), 200)
	if d.Impact != nil || del.history != nil {
		t.Errorf("impact %+v measured over %v with impact=false", d.Impact, del.history)
	}
}
