// Package storetest is the conformance suite every store.Store
// implementation passes: the same tests, run against SQLite and a real
// PostgreSQL.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/store"
)

// Opener opens a Store for a test. Calls with the same t share one
// database, the first creating it empty, so a test can run two instances
// (two replicas) against one database or reopen it after Close; calls with
// different t get different databases. The Store is closed when t ends.
type Opener func(t *testing.T) store.Store

// PerTest builds an Opener from newDSN, which returns the DSN of a new,
// empty database for t.
func PerTest(newDSN func(t *testing.T) string) Opener {
	var mu sync.Mutex
	dsns := map[*testing.T]string{}
	return func(t *testing.T) store.Store {
		t.Helper()
		mu.Lock()
		dsn, ok := dsns[t]
		if !ok {
			dsn = newDSN(t)
			dsns[t] = dsn
			t.Cleanup(func() { mu.Lock(); delete(dsns, t); mu.Unlock() })
		}
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := store.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// Run runs the conformance suite.
func Run(t *testing.T, open Opener) {
	t.Run("deploys", func(t *testing.T) { testDeploys(t, open) })
	t.Run("commits", func(t *testing.T) { testCommits(t, open) })
	t.Run("idempotency", func(t *testing.T) { testIdempotency(t, open) })
	t.Run("pagination", func(t *testing.T) { testPagination(t, open) })
	t.Run("finishing", func(t *testing.T) { testFinish(t, open) })
	t.Run("decisions", func(t *testing.T) { testDecisions(t, open) })
	t.Run("overrides", func(t *testing.T) { testOverrides(t, open) })
	t.Run("audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("outbox", func(t *testing.T) { testOutbox(t, open) })
	t.Run("outbox order", func(t *testing.T) { testOutboxOrder(t, open) })
	t.Run("leader", func(t *testing.T) { testLeader(t, open) })
	t.Run("figures", func(t *testing.T) { testFigures(t, open) })
	t.Run("enqueue with audit", func(t *testing.T) { testEnqueueWithAudit(t, open) })
	t.Run("persistence", func(t *testing.T) { testPersistence(t, open) })
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// base is a fixed instant with sub-microsecond digits, to check what the
// store keeps of them.
var base = time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))

func newDeploy(service, env, version string, started time.Time) slogate.Deploy {
	return slogate.Deploy{Service: service, Environment: env, Version: version, StartedAt: started}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func testDeploys(t *testing.T, open Opener) {
	t.Run("a deploy reads back exactly as CreateDeploy returned it, in UTC to the microsecond", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		fin := base.Add(time.Minute)
		d := slogate.Deploy{
			Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1",
			Commit: "abc123", PipelineURL: "https://ci.example/1", Strategy: "canary",
			Labels: map[string]string{"team": "payments", "region": "eu"}, StartedAt: base, FinishedAt: &fin,
			Status: slogate.StatusSucceeded,
		}
		got, created, err := s.CreateDeploy(ctx, d, "")
		if err != nil || !created {
			t.Fatalf("CreateDeploy = %v, %v", created, err)
		}
		if len(got.ID) < 10 || got.ID[:4] != "dep_" {
			t.Errorf("ID = %q, want dep_ and a random part", got.ID)
		}
		if want := base.UTC().Truncate(time.Microsecond); !got.StartedAt.Equal(want) || got.StartedAt.Location() != time.UTC || got.StartedAt.Nanosecond()%1000 != 0 {
			t.Errorf("StartedAt = %v, want %v", got.StartedAt, want)
		}
		if got.CreatedAt.IsZero() || got.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt = %v, want set, in UTC", got.CreatedAt)
		}
		read, err := s.GetDeploy(ctx, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(read, got) {
			t.Errorf("GetDeploy = %+v\nwant        %+v", read, got)
		}
	})
	t.Run("a deploy without a start time starts now, is running and has no labels", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		before := time.Now().Add(-time.Second)
		got, _, err := s.CreateDeploy(ctx, slogate.Deploy{Service: "s", Environment: "e", Version: "v", Labels: map[string]string{}}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != slogate.StatusRunning || got.StartedAt.Before(before) || !got.StartedAt.Equal(got.CreatedAt) || got.Labels != nil {
			t.Errorf("got %+v, want running, started at creation, nil labels", got)
		}
		read := must[slogate.Deploy](t)(s.GetDeploy(ctx, got.ID))
		if !reflect.DeepEqual(read, got) {
			t.Errorf("GetDeploy = %+v\nwant        %+v", read, got)
		}
	})
	invalid := map[string]slogate.Deploy{
		"a deploy without a service is invalid":      {Environment: "e", Version: "v"},
		"a deploy without an environment is invalid": {Service: "s", Version: "v"},
		"a deploy without a version is invalid":      {Service: "s", Environment: "e"},
		"a deploy with an unknown status is invalid": {Service: "s", Environment: "e", Version: "v", Status: "done"},
	}
	for name, d := range invalid {
		t.Run(name, func(t *testing.T) {
			s, ctx := open(t), ctxT(t)
			_, _, err := s.CreateDeploy(ctx, d, "")
			wantErr(t, err, store.ErrInvalid)
		})
	}
	t.Run("an unknown deploy id is not found", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		_, err := s.GetDeploy(ctx, "dep_nope")
		wantErr(t, err, store.ErrNotFound)
	})
	t.Run("a deploy id given twice conflicts", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := newDeploy("s", "e", "v1", base)
		d.ID = store.NewID("dep")
		must[slogate.Deploy](t)(func() (slogate.Deploy, error) { d, _, err := s.CreateDeploy(ctx, d, ""); return d, err }())
		_, _, err := s.CreateDeploy(ctx, d, "")
		wantErr(t, err, store.ErrConflict)
	})
	t.Run("the latest deploy before a time is the previous version of that service and environment", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		for i, v := range []string{"v1", "v2", "v3"} {
			if _, _, err := s.CreateDeploy(ctx, newDeploy("checkout", "production", v, base.Add(time.Duration(i)*time.Hour)), ""); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.CreateDeploy(ctx, newDeploy("checkout", "staging", "v9", base.Add(90*time.Minute)), ""); err != nil {
			t.Fatal(err)
		}
		tests := map[string]struct {
			before time.Time
			want   string
			err    error
		}{
			"just before the third deploy it is the second":       {before: base.Add(2 * time.Hour), want: "v2"},
			"long after the last deploy it is the last":           {before: base.Add(48 * time.Hour), want: "v3"},
			"between two deploys it is the earlier one":           {before: base.Add(100 * time.Minute), want: "v2"},
			"at the first deploy's start there is none before it": {before: base, err: store.ErrNotFound},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				got, err := s.LatestDeploy(ctx, "checkout", "production", tc.before)
				if tc.err != nil {
					wantErr(t, err, tc.err)
					return
				}
				if err != nil || got.Version != tc.want {
					t.Errorf("LatestDeploy = %q, %v; want %q", got.Version, err, tc.want)
				}
			})
		}
	})
}

func testCommits(t *testing.T, open Opener) {
	t.Run("a deploy's commits read back in order, their times in UTC to the microsecond, in a list too", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := newDeploy("checkout", "production", "v2", base)
		d.Commits = []slogate.Commit{
			{SHA: "bbb", Time: base.Add(-time.Hour)},
			{SHA: "aaa", Time: base.Add(-3 * time.Hour)},
			{SHA: "ccc"}, // a commit whose time is unknown
		}
		got := must[slogate.Deploy](t)(func() (slogate.Deploy, error) { d, _, err := s.CreateDeploy(ctx, d, ""); return d, err }())
		want := []slogate.Commit{
			{SHA: "bbb", Time: base.Add(-time.Hour).UTC().Truncate(time.Microsecond)},
			{SHA: "aaa", Time: base.Add(-3 * time.Hour).UTC().Truncate(time.Microsecond)},
			{SHA: "ccc"},
		}
		if !reflect.DeepEqual(got.Commits, want) {
			t.Errorf("CreateDeploy commits = %+v, want %+v", got.Commits, want)
		}
		read := must[slogate.Deploy](t)(s.GetDeploy(ctx, got.ID))
		if !reflect.DeepEqual(read, got) {
			t.Errorf("GetDeploy = %+v\nwant        %+v", read, got)
		}
		list, _ := func() ([]slogate.Deploy, error) { l, _, err := s.ListDeploys(ctx, store.DeployFilter{}); return l, err }()
		if len(list) != 1 || !reflect.DeepEqual(list[0].Commits, want) {
			t.Errorf("ListDeploys = %+v, want the commits %+v", list, want)
		}
		if first, ok := read.EarliestCommit(); !ok || !first.Equal(want[1].Time) {
			t.Errorf("EarliestCommit = %v, %v; want %v", first, ok, want[1].Time)
		}
		fin := must[slogate.Deploy](t)(s.FinishDeploy(ctx, got.ID, slogate.StatusSucceeded, base.Add(time.Minute)))
		if !reflect.DeepEqual(fin.Commits, want) {
			t.Errorf("FinishDeploy commits = %+v, want %+v", fin.Commits, want)
		}
	})
	t.Run("a deploy without commits has none and no earliest commit", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := newDeploy("checkout", "production", "v2", base)
		d.Commits = []slogate.Commit{}
		got := must[slogate.Deploy](t)(func() (slogate.Deploy, error) { d, _, err := s.CreateDeploy(ctx, d, ""); return d, err }())
		read := must[slogate.Deploy](t)(s.GetDeploy(ctx, got.ID))
		if got.Commits != nil || read.Commits != nil {
			t.Errorf("commits = %#v, read back %#v; want nil", got.Commits, read.Commits)
		}
		if _, ok := read.EarliestCommit(); ok {
			t.Error("EarliestCommit found one in a deploy without commits")
		}
	})
	t.Run("a commit without a sha is invalid", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := newDeploy("checkout", "production", "v2", base)
		d.Commits = []slogate.Commit{{SHA: "abc"}, {SHA: " ", Time: base}}
		_, _, err := s.CreateDeploy(ctx, d, "")
		wantErr(t, err, store.ErrInvalid)
		if err == nil || !strings.Contains(err.Error(), "commits[1].sha") {
			t.Errorf("err = %v, want it to name commits[1].sha", err)
		}
	})
	t.Run("commits are part of the idempotency body", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := newDeploy("checkout", "production", "v2", base)
		d.Commits = []slogate.Commit{{SHA: "abc", Time: base.Add(-time.Hour)}}
		first, _, err := s.CreateDeploy(ctx, d, "key-c")
		if err != nil {
			t.Fatal(err)
		}
		again, created, err := s.CreateDeploy(ctx, d, "key-c")
		if err != nil || created || again.ID != first.ID {
			t.Fatalf("same commits again = %s, %v, %v; want the first deploy, not created", again.ID, created, err)
		}
		d.Commits = []slogate.Commit{{SHA: "def", Time: base.Add(-time.Hour)}}
		_, _, err = s.CreateDeploy(ctx, d, "key-c")
		wantErr(t, err, store.ErrIdempotencyConflict)
	})
}

func testIdempotency(t *testing.T, open Opener) {
	t.Run("the same idempotency key twice stores the deploy once and returns the first", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := newDeploy("checkout", "production", "v2", time.Time{})
		first, created, err := s.CreateDeploy(ctx, d, "key-1")
		if err != nil || !created {
			t.Fatalf("first = %v, %v", created, err)
		}
		second, created, err := s.CreateDeploy(ctx, d, "key-1")
		if err != nil || created {
			t.Fatalf("second = %v, %v; want created=false", created, err)
		}
		if !reflect.DeepEqual(first, second) {
			t.Errorf("second = %+v\nwant     %+v", second, first)
		}
		list, _, _ := s.ListDeploys(ctx, store.DeployFilter{})
		if len(list) != 1 {
			t.Errorf("%d deploys stored, want 1", len(list))
		}
	})
	t.Run("a given CreatedAt is kept, is the default StartedAt, and is not part of the idempotency body", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := newDeploy("checkout", "production", "v2", time.Time{})
		d.CreatedAt = base.Add(-time.Minute)
		first, created, err := s.CreateDeploy(ctx, d, "key-1")
		if err != nil || !created {
			t.Fatalf("first = %v, %v", created, err)
		}
		want := store.UTC(base.Add(-time.Minute)) // in UTC, to the microsecond
		if !first.CreatedAt.Equal(want) || !first.StartedAt.Equal(want) {
			t.Errorf("createdAt %s startedAt %s, want both %s", first.CreatedAt, first.StartedAt, want)
		}
		d.CreatedAt = base.Add(time.Hour) // a retry creates later: the same body
		second, created, err := s.CreateDeploy(ctx, d, "key-1")
		if err != nil || created || second.ID != first.ID || !second.StartedAt.Equal(want) {
			t.Errorf("retry = %+v, %v, %v; want the first deploy", second, created, err)
		}
	})
	t.Run("an idempotency key reused with a different body is refused", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		if _, _, err := s.CreateDeploy(ctx, newDeploy("checkout", "production", "v2", base), "key-1"); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.CreateDeploy(ctx, newDeploy("checkout", "production", "v3", base), "key-1")
		wantErr(t, err, store.ErrIdempotencyConflict)
	})
	t.Run("different idempotency keys store different deploys", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := newDeploy("checkout", "production", "v2", base)
		a, _, _ := s.CreateDeploy(ctx, d, "key-a")
		b, created, err := s.CreateDeploy(ctx, d, "key-b")
		if err != nil || !created || a.ID == b.ID {
			t.Errorf("second key: created=%v err=%v ids %s %s", created, err, a.ID, b.ID)
		}
	})
	t.Run("concurrent creates with one idempotency key store one deploy and all return it", func(t *testing.T) {
		s1, s2, ctx := open(t), open(t), ctxT(t)
		d := newDeploy("checkout", "production", "v2", base)
		const n = 8
		var wg sync.WaitGroup
		ids := make([]string, n)
		createdCount := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			s := s1
			if i%2 == 1 {
				s = s2
			}
			wg.Go(func() {
				got, created, err := s.CreateDeploy(ctx, d, "same-key")
				ids[i], createdCount[i], errs[i] = got.ID, created, err
			})
		}
		wg.Wait()
		created := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("create %d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Errorf("create %d returned %s, create 0 %s", i, ids[i], ids[0])
			}
			if createdCount[i] {
				created++
			}
		}
		if created != 1 {
			t.Errorf("%d creates report created, want 1", created)
		}
	})
}

func testPagination(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	var all []slogate.Deploy
	for i := range 23 {
		svc := "checkout"
		if i%3 == 0 {
			svc = "search"
		}
		// Pairs of deploys share a start time, so the id breaks ties.
		d, _, err := s.CreateDeploy(ctx, newDeploy(svc, "production", fmt.Sprintf("v%d", i), base.Add(time.Duration(i/2)*time.Minute)), "")
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, d)
	}
	newestFirst := func(ds []slogate.Deploy) []string {
		ds = append([]slogate.Deploy(nil), ds...)
		sort.Slice(ds, func(i, j int) bool {
			if !ds[i].StartedAt.Equal(ds[j].StartedAt) {
				return ds[i].StartedAt.After(ds[j].StartedAt)
			}
			return ds[i].ID > ds[j].ID
		})
		var ids []string
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		return ids
	}
	filter := func(keep func(slogate.Deploy) bool) []slogate.Deploy {
		var out []slogate.Deploy
		for _, d := range all {
			if keep(d) {
				out = append(out, d)
			}
		}
		return out
	}
	since := base.Add(5 * time.Minute)
	tests := map[string]struct {
		f    store.DeployFilter
		want []string
	}{
		"every deploy, newest first, in pages of 5": {f: store.DeployFilter{Limit: 5}, want: newestFirst(all)},
		"one service's deploys in pages of 4": {f: store.DeployFilter{Service: "search", Limit: 4},
			want: newestFirst(filter(func(d slogate.Deploy) bool { return d.Service == "search" }))},
		"deploys since a time in pages of 3": {f: store.DeployFilter{Since: since, Limit: 3},
			want: newestFirst(filter(func(d slogate.Deploy) bool { return !d.StartedAt.Before(store.UTC(since)) }))},
		"a page as large as everything has no next page": {f: store.DeployFilter{Limit: 23}, want: newestFirst(all)},
		"another environment has nothing":                {f: store.DeployFilter{Environment: "staging"}, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			f, pages := tc.f, 0
			for {
				page, next, err := s.ListDeploys(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(page) > tc.f.Limit && tc.f.Limit > 0 {
					t.Fatalf("page of %d, limit %d", len(page), tc.f.Limit)
				}
				for _, d := range page {
					got = append(got, d.ID)
				}
				if next == "" {
					break
				}
				if pages > 30 {
					t.Fatal("pagination does not end")
				}
				f.Cursor = next
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %d ids %v\nwant %d ids %v", len(got), got, len(tc.want), tc.want)
			}
		})
	}
	t.Run("a malformed cursor is invalid", func(t *testing.T) {
		_, _, err := s.ListDeploys(ctx, store.DeployFilter{Cursor: "not a cursor!"})
		wantErr(t, err, store.ErrInvalid)
	})
}

func testFinish(t *testing.T, open Opener) {
	at := base.Add(10 * time.Minute)
	later := at.Add(time.Hour)
	tests := map[string]struct {
		first, second     string // statuses; second empty: finish once
		wantStatus        string
		wantErr, wantErr2 error
		missing           bool
	}{
		"finishing a running deploy records its status and time":           {first: slogate.StatusSucceeded, wantStatus: slogate.StatusSucceeded},
		"finishing again with the same status keeps the first finish time": {first: slogate.StatusRolledBack, second: slogate.StatusRolledBack, wantStatus: slogate.StatusRolledBack},
		"finishing again with another status conflicts":                    {first: slogate.StatusFailed, second: slogate.StatusSucceeded, wantErr2: store.ErrConflict, wantStatus: slogate.StatusFailed},
		"finishing with running is invalid":                                {first: slogate.StatusRunning, wantErr: store.ErrInvalid, wantStatus: slogate.StatusRunning},
		"finishing with an unknown status is invalid":                      {first: "done", wantErr: store.ErrInvalid, wantStatus: slogate.StatusRunning},
		"finishing an unknown deploy is not found":                         {first: slogate.StatusSucceeded, missing: true, wantErr: store.ErrNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, ctx := open(t), ctxT(t)
			d, _, err := s.CreateDeploy(ctx, newDeploy("s", "e", "v", base), "")
			if err != nil {
				t.Fatal(err)
			}
			id := d.ID
			if tc.missing {
				id = "dep_missing"
			}
			got, err := s.FinishDeploy(ctx, id, tc.first, at)
			if tc.wantErr != nil {
				wantErr(t, err, tc.wantErr)
			} else if err != nil {
				t.Fatal(err)
			} else if got.Status != tc.first || got.FinishedAt == nil || !got.FinishedAt.Equal(store.UTC(at)) {
				t.Errorf("FinishDeploy = %+v", got)
			}
			if tc.second != "" {
				_, err := s.FinishDeploy(ctx, id, tc.second, later)
				if tc.wantErr2 != nil {
					wantErr(t, err, tc.wantErr2)
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if tc.missing {
				return
			}
			read := must[slogate.Deploy](t)(s.GetDeploy(ctx, id))
			if read.Status != tc.wantStatus {
				t.Errorf("stored status %s, want %s", read.Status, tc.wantStatus)
			}
			if tc.wantErr == nil && (read.FinishedAt == nil || !read.FinishedAt.Equal(store.UTC(at))) {
				t.Errorf("stored finish time %v, want the first one, %v", read.FinishedAt, at)
			}
			if tc.wantErr == nil && tc.wantErr2 == nil && got.FinishedAt != nil && !reflect.DeepEqual(read, got) {
				t.Errorf("GetDeploy = %+v\nwant        %+v", read, got)
			}
		})
	}
}

func testDecisions(t *testing.T, open Opener) {
	body := []byte(`{"decision":"halt",  "reason":"burns\u00e9 at 6.3x"}`)
	t.Run("a decision reads back byte for byte", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d, err := s.SaveDecision(ctx, slogate.DecisionRecord{Service: "checkout", Environment: "production", Version: "v2",
			DeployID: "dep_x", Decision: slogate.Halt, Reason: "burn", Body: body, EvaluatedAt: base})
		if err != nil {
			t.Fatal(err)
		}
		if d.EvaluationID[:3] != "ev_" {
			t.Errorf("EvaluationID = %q", d.EvaluationID)
		}
		got := must[slogate.DecisionRecord](t)(s.GetDecision(ctx, d.EvaluationID))
		if !reflect.DeepEqual(got, d) || string(got.Body) != string(body) {
			t.Errorf("GetDecision = %+v\nwant          %+v", got, d)
		}
	})
	t.Run("saving an evaluation again with the same body is accepted, with another it conflicts", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := slogate.DecisionRecord{EvaluationID: "ev_fixed", Service: "s", Environment: "e", Decision: slogate.Wait, Body: body, EvaluatedAt: base}
		if _, err := s.SaveDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SaveDecision(ctx, d); err != nil {
			t.Errorf("same body again: %v", err)
		}
		d.Decision = slogate.Promote
		_, err := s.SaveDecision(ctx, d)
		wantErr(t, err, store.ErrConflict)
	})
	t.Run("an unknown decision is not found and a malformed one invalid", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		_, err := s.GetDecision(ctx, "ev_nope")
		wantErr(t, err, store.ErrNotFound)
		_, err = s.SaveDecision(ctx, slogate.DecisionRecord{Service: "s", Environment: "e", Decision: "maybe"})
		wantErr(t, err, store.ErrInvalid)
	})
	t.Run("decisions list newest first by deploy, in pages", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		var want []string
		for i := range 7 {
			dep := "dep_a"
			if i%2 == 1 {
				dep = "dep_b"
			}
			d, err := s.SaveDecision(ctx, slogate.DecisionRecord{Service: "s", Environment: "e", DeployID: dep, Decision: slogate.Wait,
				Body: []byte("{}"), EvaluatedAt: base.Add(time.Duration(i) * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			if dep == "dep_a" {
				want = append([]string{d.EvaluationID}, want...)
			}
		}
		var got []string
		f := store.DecisionFilter{DeployID: "dep_a", Limit: 3}
		for {
			page, next, err := s.ListDecisions(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page {
				got = append(got, d.EvaluationID)
			}
			if next == "" {
				break
			}
			f.Cursor = next
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

func testOverrides(t *testing.T, open Opener) {
	now := time.Now().UTC()
	t.Run("an override is active from creation to expiry and audited", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		o, err := s.CreateOverride(ctx, store.Override{Service: "checkout", Environment: "production", Reason: "hotfix INC-1",
			CreatedBy: "alice", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if o.ID[:4] != "ovr_" {
			t.Errorf("ID = %q", o.ID)
		}
		tests := map[string]struct {
			service, env string
			at           time.Time
			want         bool
		}{
			"before it was created it is not active":  {"checkout", "production", now.Add(-2 * time.Hour), false},
			"at its creation it is active":            {"checkout", "production", now.Add(-time.Hour), true},
			"now it is active":                        {"checkout", "production", now, true},
			"at its expiry it is no longer active":    {"checkout", "production", now.Add(time.Hour), false},
			"after its expiry it is not active":       {"checkout", "production", now.Add(2 * time.Hour), false},
			"in another environment it is not active": {"checkout", "staging", now, false},
			"for another service it is not active":    {"search", "production", now, false},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				got, ok, err := s.ActiveOverride(ctx, tc.service, tc.env, tc.at)
				if err != nil {
					t.Fatal(err)
				}
				if ok != tc.want {
					t.Fatalf("active = %v, want %v", ok, tc.want)
				}
				if ok && !reflect.DeepEqual(got, o) {
					t.Errorf("ActiveOverride = %+v\nwant             %+v", got, o)
				}
			})
		}
		entries, _, err := s.ListAudit(ctx, store.AuditFilter{Subject: o.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Action != store.ActionOverrideCreated || entries[0].Actor != "alice" {
			t.Errorf("audit = %+v, want one override.created by alice", entries)
		}
	})
	t.Run("a revoked override is no longer active, was active before, and the revocation is audited", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		o, err := s.CreateOverride(ctx, store.Override{Service: "checkout", Environment: "production", Reason: "r",
			CreatedBy: "alice", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.RevokeOverride(ctx, o.ID, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if r.RevokedAt == nil || r.RevokedBy != "bob" {
			t.Fatalf("revoked = %+v", r)
		}
		if _, ok, err := s.ActiveOverride(ctx, "checkout", "production", r.RevokedAt.Add(time.Microsecond)); err != nil || ok {
			t.Errorf("after its revocation: active %v, err %v; want inactive and no error", ok, err)
		}
		if got, ok, err := s.ActiveOverride(ctx, "checkout", "production", now.Add(-30*time.Minute)); err != nil || !ok || !reflect.DeepEqual(got, r) {
			t.Errorf("before the revocation: %v %+v (%v), want active and revoked later", ok, got, err)
		}
		_, err = s.RevokeOverride(ctx, o.ID, "carol")
		wantErr(t, err, store.ErrConflict)
		_, err = s.RevokeOverride(ctx, "ovr_nope", "carol")
		wantErr(t, err, store.ErrNotFound)

		entries, _, err := s.ListAudit(ctx, store.AuditFilter{Subject: o.ID})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range entries {
			actions = append(actions, e.Action+" by "+e.Actor)
		}
		want := []string{store.ActionOverrideRevoked + " by bob", store.ActionOverrideCreated + " by alice"}
		if !reflect.DeepEqual(actions, want) {
			t.Errorf("audit = %v, want %v (newest first, no entry for the refused revocation)", actions, want)
		}
	})
	t.Run("the newest of overlapping overrides is the active one", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		mk := func(created time.Time) store.Override {
			o, err := s.CreateOverride(ctx, store.Override{Service: "s", Environment: "e", Reason: "r", CreatedBy: "a",
				CreatedAt: created, ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		mk(now.Add(-time.Hour))
		newer := mk(now.Add(-time.Minute))
		got, ok, err := s.ActiveOverride(ctx, "s", "e", now)
		if err != nil || !ok || got.ID != newer.ID {
			t.Errorf("active = %v %v %s, want %s", ok, err, got.ID, newer.ID)
		}
	})
	t.Run("a refused override leaves no audit entry", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		o := store.Override{ID: "ovr_fixed", Service: "s", Environment: "e", Reason: "r", CreatedBy: "a", ExpiresAt: now.Add(time.Hour)}
		if _, err := s.CreateOverride(ctx, o); err != nil {
			t.Fatal(err)
		}
		_, err := s.CreateOverride(ctx, o)
		wantErr(t, err, store.ErrConflict)
		entries, _, _ := s.ListAudit(ctx, store.AuditFilter{Subject: "ovr_fixed"})
		if len(entries) != 1 {
			t.Errorf("%d audit entries, want 1", len(entries))
		}
	})
	invalid := map[string]store.Override{
		"an override without a reason is invalid":              {Service: "s", Environment: "e", CreatedBy: "a", ExpiresAt: now.Add(time.Hour)},
		"an override without an author is invalid":             {Service: "s", Environment: "e", Reason: "r", ExpiresAt: now.Add(time.Hour)},
		"an override that expires before it starts is invalid": {Service: "s", Environment: "e", Reason: "r", CreatedBy: "a", CreatedAt: now, ExpiresAt: now.Add(-time.Second)},
		"an override without an expiry is invalid":             {Service: "s", Environment: "e", Reason: "r", CreatedBy: "a"},
	}
	for name, o := range invalid {
		t.Run(name, func(t *testing.T) {
			s, ctx := open(t), ctxT(t)
			_, err := s.CreateOverride(ctx, o)
			wantErr(t, err, store.ErrInvalid)
		})
	}
}

func testAudit(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	for i := range 9 {
		actor := "alice"
		if i%3 == 0 {
			actor = "bob"
		}
		if err := s.Audit(ctx, store.AuditEntry{At: base.Add(time.Duration(i) * time.Second), Actor: actor, Action: "token.used",
			Subject: fmt.Sprintf("n%d", i), Detail: `{"i":` + fmt.Sprint(i) + `}`}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a recorded deploy is audited with it, once, by who recorded it", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := newDeploy("s", "e", "v1", base)
		d.CreatedBy = "ci"
		stored, _, err := s.CreateDeploy(ctx, d, "k")
		if err != nil {
			t.Fatal(err)
		}
		if stored.CreatedBy != "ci" {
			t.Errorf("CreatedBy = %q", stored.CreatedBy)
		}
		if got, _ := s.GetDeploy(ctx, stored.ID); got.CreatedBy != "ci" {
			t.Errorf("read back CreatedBy = %q", got.CreatedBy)
		}
		other := d
		other.CreatedBy = "someone-else" // not part of the idempotency body
		if _, created, err := s.CreateDeploy(ctx, other, "k"); err != nil || created {
			t.Fatalf("replay: created=%v err=%v", created, err)
		}
		es, _, err := s.ListAudit(ctx, store.AuditFilter{Action: store.ActionDeployCreated})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Actor != "ci" || es[0].Subject != stored.ID || !strings.Contains(es[0].Detail, `"version":"v1"`) {
			t.Errorf("audit = %+v", es)
		}
	})
	t.Run("entries list newest first, filtered by actor, in pages", func(t *testing.T) {
		var subjects []string
		f := store.AuditFilter{Actor: "alice", Limit: 4}
		for {
			page, next, err := s.ListAudit(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				subjects = append(subjects, e.Subject)
				if e.At.Location() != time.UTC {
					t.Errorf("At %v not UTC", e.At)
				}
			}
			if next == "" {
				break
			}
			f.Cursor = next
		}
		want := []string{"n8", "n7", "n5", "n4", "n2", "n1"}
		if !reflect.DeepEqual(subjects, want) {
			t.Errorf("got %v, want %v", subjects, want)
		}
	})
	t.Run("an entry without an action is invalid", func(t *testing.T) {
		wantErr(t, s.Audit(ctx, store.AuditEntry{Actor: "a"}), store.ErrInvalid)
	})
}

func msg(key, peer string) slogate.OutboxMessage {
	return slogate.OutboxMessage{Key: key, Peer: peer, Payload: []byte(`{"key":"` + key + `"}`)}
}

func claimAll(t *testing.T, s store.Store, peer string, now time.Time) []slogate.OutboxMessage {
	t.Helper()
	ms, err := s.ClaimOutbox(ctxT(t), peer, 1000, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func keys(ms []slogate.OutboxMessage) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Key)
	}
	sort.Strings(out)
	return out
}

func testOutbox(t *testing.T, open Opener) {
	// soon is a claim time by which every message enqueued so far is due.
	soon := func() time.Time { return time.Now().UTC().Add(time.Minute) }
	t.Run("a deploy's messages are enqueued with it, and a duplicate key is ignored", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		if _, _, err := s.CreateDeploy(ctx, newDeploy("s", "e", "v1", base), "", msg("a", "grafana"), msg("b", "pagerduty")); err != nil {
			t.Fatal(err)
		}
		dup := msg("a", "grafana")
		dup.Payload = []byte("other")
		if _, _, err := s.CreateDeploy(ctx, newDeploy("s", "e", "v2", base), "", dup, msg("c", "grafana")); err != nil {
			t.Fatal(err)
		}
		got := claimAll(t, s, "", soon())
		if !reflect.DeepEqual(keys(got), []string{"a", "b", "c"}) {
			t.Fatalf("claimed %v, want a b c", keys(got))
		}
		for _, m := range got {
			if m.Key == "a" && string(m.Payload) != `{"key":"a"}` {
				t.Errorf("a's payload %q: the duplicate replaced the first", m.Payload)
			}
			if m.Attempts != 1 || m.ID == 0 || m.CreatedAt.IsZero() || m.DeliveredAt != nil {
				t.Errorf("claimed %+v", m)
			}
		}
	})
	t.Run("an idempotent retry of a deploy enqueues nothing new", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d := newDeploy("s", "e", "v1", base)
		s.CreateDeploy(ctx, d, "k", msg("first", "grafana"))
		if _, created, err := s.CreateDeploy(ctx, d, "k", msg("retry", "grafana")); err != nil || created {
			t.Fatalf("retry: %v %v", created, err)
		}
		if got := keys(claimAll(t, s, "", soon())); !reflect.DeepEqual(got, []string{"first"}) {
			t.Errorf("claimed %v, want only the first deploy's message", got)
		}
	})
	refused := map[string]func(s store.Store, ctx context.Context) error{
		"a refused deploy enqueues nothing": func(s store.Store, ctx context.Context) error {
			d := newDeploy("s", "e", "v1", base)
			d.ID = "dep_taken"
			s.CreateDeploy(ctx, d, "")
			_, _, err := s.CreateDeploy(ctx, d, "", msg("orphan", "grafana"))
			return err
		},
		"a deploy refused for its idempotency key enqueues nothing": func(s store.Store, ctx context.Context) error {
			s.CreateDeploy(ctx, newDeploy("s", "e", "v1", base), "k")
			_, _, err := s.CreateDeploy(ctx, newDeploy("s", "e", "v2", base), "k", msg("orphan", "grafana"))
			return err
		},
		"a conflicting finish enqueues nothing": func(s store.Store, ctx context.Context) error {
			d, _, _ := s.CreateDeploy(ctx, newDeploy("s", "e", "v1", base), "")
			s.FinishDeploy(ctx, d.ID, slogate.StatusSucceeded, base.Add(time.Hour))
			_, err := s.FinishDeploy(ctx, d.ID, slogate.StatusFailed, base.Add(time.Hour), msg("orphan", "grafana"))
			return err
		},
		"a conflicting decision enqueues nothing": func(s store.Store, ctx context.Context) error {
			d := slogate.DecisionRecord{EvaluationID: "ev_1", Service: "s", Environment: "e", Decision: slogate.Halt}
			s.SaveDecision(ctx, d)
			d.Decision = slogate.Promote
			_, err := s.SaveDecision(ctx, d, msg("orphan", "grafana"))
			return err
		},
	}
	for name, do := range refused {
		t.Run(name, func(t *testing.T) {
			s, ctx := open(t), ctxT(t)
			if err := do(s, ctx); err == nil {
				t.Fatal("the event was not refused")
			}
			if got := claimAll(t, s, "", soon()); len(got) != 0 {
				t.Errorf("claimed %v, want nothing", keys(got))
			}
		})
	}
	t.Run("a finish enqueues its messages once: a repeated finish enqueues nothing", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d, _, err := s.CreateDeploy(ctx, newDeploy("s", "e", "v1", base), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishDeploy(ctx, d.ID, slogate.StatusSucceeded, base.Add(time.Hour), msg("finish", "grafana")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishDeploy(ctx, d.ID, slogate.StatusSucceeded, base.Add(2*time.Hour), msg("finish-again", "grafana")); err != nil {
			t.Fatal(err)
		}
		if got := keys(claimAll(t, s, "grafana", soon())); !reflect.DeepEqual(got, []string{"finish"}) {
			t.Errorf("claimed %v, want only the first finish's message", got)
		}
	})
	t.Run("a saved decision's messages are enqueued with it", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		if _, err := s.SaveDecision(ctx, slogate.DecisionRecord{Service: "s", Environment: "e", Decision: slogate.Halt}, msg("d", "github")); err != nil {
			t.Fatal(err)
		}
		if got := keys(claimAll(t, s, "github", soon())); !reflect.DeepEqual(got, []string{"d"}) {
			t.Errorf("claimed %v", got)
		}
	})
	t.Run("a message is leased, retried after a failure, and never claimed again once delivered", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		t0 := soon()
		m := msg("m", "pagerduty")
		m.CreatedAt = t0
		if err := s.Enqueue(ctx, m, msg("other-peer", "grafana")); err != nil {
			t.Fatal(err)
		}
		lease := 30 * time.Second
		claim := func(at time.Time) []slogate.OutboxMessage {
			t.Helper()
			ms, err := s.ClaimOutbox(ctx, "pagerduty", 10, lease, at)
			if err != nil {
				t.Fatal(err)
			}
			return ms
		}
		steps := []struct {
			name  string
			do    func()
			at    time.Time
			want  int // messages claimed
			tries int // their attempts
		}{
			{name: "a due message is claimed", at: t0, want: 1, tries: 1},
			{name: "within its lease it is not claimed again", at: t0.Add(lease / 2), want: 0},
			{name: "after its lease ends it is claimed again", at: t0.Add(lease + time.Second), want: 1, tries: 2},
			{name: "after a failure it waits for its next attempt", do: func() {
				ms := claim(t0.Add(3 * lease))
				if len(ms) != 1 {
					t.Fatalf("claimed %d, want 1", len(ms))
				}
				if err := s.MarkFailed(ctx, ms[0].ID, "503 Service Unavailable", t0.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}, at: t0.Add(30 * time.Minute), want: 0},
			{name: "at its next attempt it is claimed with its last error", at: t0.Add(time.Hour), want: 1, tries: 4},
		}
		for _, st := range steps {
			if st.do != nil {
				st.do()
			}
			got := claim(st.at)
			if len(got) != st.want {
				t.Fatalf("%s: claimed %d, want %d", st.name, len(got), st.want)
			}
			if st.want == 1 && got[0].Attempts != st.tries {
				t.Errorf("%s: attempts %d, want %d", st.name, got[0].Attempts, st.tries)
			}
			if st.tries == 4 && got[0].LastError != "503 Service Unavailable" {
				t.Errorf("%s: last error %q", st.name, got[0].LastError)
			}
		}
		stats := must[store.OutboxStats](t)(s.OutboxStats(ctx))
		if stats.Pending != 2 || stats.Retrying != 1 || stats.Delivered != 0 || stats.OldestPending == nil {
			t.Errorf("stats before delivery = %+v", stats)
		}
		id := claim(t0.Add(2 * time.Hour))[0].ID
		if err := s.MarkDelivered(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkDelivered(ctx, id); err != nil {
			t.Errorf("delivered twice: %v, want a no-op", err)
		}
		if got := claim(t0.Add(24 * time.Hour)); len(got) != 0 {
			t.Errorf("a delivered message was claimed again: %+v", got)
		}
		wantErr(t, s.MarkFailed(ctx, id, "late", t0), store.ErrConflict)
		wantErr(t, s.MarkDelivered(ctx, 987654), store.ErrNotFound)
		wantErr(t, s.MarkFailed(ctx, 987654, "x", t0), store.ErrNotFound)
		stats = must[store.OutboxStats](t)(s.OutboxStats(ctx))
		if stats.Pending != 1 || stats.Delivered != 1 || stats.Retrying != 0 {
			t.Errorf("stats after delivery = %+v", stats)
		}
		if n, err := s.PurgeOutbox(ctx, time.Now().Add(time.Minute)); err != nil || n != 1 {
			t.Errorf("purge = %d, %v; want the delivered message", n, err)
		}
	})
	t.Run("an abandoned message keeps its error, is never claimed again and is not pending", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		if err := s.Enqueue(ctx, msg("gone", "github"), msg("kept", "github")); err != nil {
			t.Fatal(err)
		}
		ms := claimAll(t, s, "github", soon())
		var gone int64
		for _, m := range ms {
			if m.Key == "gone" {
				gone = m.ID
			}
		}
		if err := s.Abandon(ctx, gone, "422 Validation Failed"); err != nil {
			t.Fatal(err)
		}
		if got := keys(claimAll(t, s, "github", soon().Add(365*24*time.Hour))); !reflect.DeepEqual(got, []string{"kept"}) {
			t.Errorf("claimed %v a year later, want only the kept message", got)
		}
		st := must[store.OutboxStats](t)(s.OutboxStats(ctx))
		if st.Abandoned != 1 || st.Pending != 1 {
			t.Errorf("stats %+v, want 1 abandoned and 1 pending", st)
		}
		if err := s.Abandon(ctx, 987654, "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("abandoning an unknown message: %v", err)
		}
		if n, err := s.PurgeOutbox(ctx, soon()); err != nil || n != 1 {
			t.Errorf("purge removed %d (%v), want the abandoned message", n, err)
		}
	})
	t.Run("messages are claimed oldest due first, up to the limit", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		t0 := soon()
		for i := range 5 {
			m := msg(fmt.Sprintf("m%d", i), "grafana")
			m.NextAttemptAt = t0.Add(-time.Duration(i) * time.Minute)
			if err := s.Enqueue(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.ClaimOutbox(ctx, "grafana", 3, time.Minute, t0)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, m := range got {
			order = append(order, m.Key)
		}
		if want := []string{"m4", "m3", "m2"}; !reflect.DeepEqual(order, want) {
			t.Errorf("claimed %v, want %v", order, want)
		}
	})
	t.Run("two concurrent claimers on two instances never get the same message", func(t *testing.T) {
		a, b, ctx := open(t), open(t), ctxT(t)
		const n = 120
		batch := make([]slogate.OutboxMessage, 0, n)
		for i := range n {
			batch = append(batch, msg(fmt.Sprintf("c%03d", i), "grafana"))
		}
		if err := a.Enqueue(ctx, batch...); err != nil {
			t.Fatal(err)
		}
		at := soon()
		var mu sync.Mutex
		seen := map[int64]int{}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for w := range 4 {
			s := a
			if w%2 == 1 {
				s = b
			}
			wg.Go(func() {
				for {
					ms, err := s.ClaimOutbox(ctx, "grafana", 7, time.Hour, at)
					if err != nil {
						errs <- err
						return
					}
					if len(ms) == 0 {
						return
					}
					mu.Lock()
					for _, m := range ms {
						seen[m.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if len(seen) != n {
			t.Errorf("%d distinct messages claimed, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("message %d claimed %d times", id, c)
			}
		}
	})
	t.Run("a claim with no limit or no lease is invalid", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		_, err := s.ClaimOutbox(ctx, "", 0, time.Minute, soon())
		wantErr(t, err, store.ErrInvalid)
		_, err = s.ClaimOutbox(ctx, "", 1, 0, soon())
		wantErr(t, err, store.ErrInvalid)
	})
}

func testLeader(t *testing.T, open Opener) {
	t.Run("leadership is exclusive across two instances and passes on after release", func(t *testing.T) {
		a, b, ctx := open(t), open(t), ctxT(t)
		releaseA, ok, err := a.TryLeader(ctx, "evaluation")
		if err != nil || !ok {
			t.Fatalf("a: %v %v", ok, err)
		}
		if _, ok, err := b.TryLeader(ctx, "evaluation"); err != nil || ok {
			t.Fatalf("b while a leads: %v %v, want not the leader", ok, err)
		}
		if _, ok, err := a.TryLeader(ctx, "evaluation"); err != nil || !ok {
			t.Fatalf("a again while it leads: %v %v, want still the leader", ok, err)
		}
		if _, ok, err := b.TryLeader(ctx, "another-job"); err != nil || !ok {
			t.Fatalf("b on another name: %v %v, want the leader", ok, err)
		}
		releaseA()
		releaseA() // twice is harmless
		releaseB, ok, err := b.TryLeader(ctx, "evaluation")
		if err != nil || !ok {
			t.Fatalf("b after a released: %v %v, want the leader", ok, err)
		}
		if _, ok, err := a.TryLeader(ctx, "evaluation"); err != nil || ok {
			t.Fatalf("a while b leads: leads %v, err %v; want not the leader and no error", ok, err)
		}
		releaseB()
	})
	t.Run("a closed instance's leadership passes on", func(t *testing.T) {
		a, b, ctx := open(t), open(t), ctxT(t)
		if _, ok, err := a.TryLeader(ctx, "evaluation"); err != nil || !ok {
			t.Fatalf("a: %v %v", ok, err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := b.TryLeader(ctx, "evaluation"); err != nil || !ok {
			t.Fatalf("b after a closed: %v %v, want the leader", ok, err)
		}
	})
}

func testPersistence(t *testing.T, open Opener) {
	t.Run("what one instance wrote is there after it is closed and the database reopened", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		d, _, err := s.CreateDeploy(ctx, newDeploy("s", "e", "v1", base), "k")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		reopened := open(t)
		got, err := reopened.GetDeploy(ctx, d.ID)
		if err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf("after reopening: %+v, %v\nwant %+v", got, err, d)
		}
	})
}
