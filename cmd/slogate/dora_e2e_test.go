package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/internal/testenv"
)

func pretty(v *float64) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%g", *v)
}

// gitRepo is a git checkout in a temporary directory.
type gitRepo struct{ dir string }

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	// Fails under CI=true when git is missing (make deps installs it).
	testenv.Binary(t, "git", "git")
	r := &gitRepo{dir: t.TempDir()}
	r.git(t, time.Time{}, "init", "-q", "-b", "main")
	return r
}

func (r *gitRepo) git(t *testing.T, at time.Time, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	if !at.IsZero() {
		d := at.Format(time.RFC3339)
		cmd.Env = append(cmd.Env, "GIT_AUTHOR_DATE="+d, "GIT_COMMITTER_DATE="+d)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit commits a change written at and returns its sha.
func (r *gitRepo) commit(t *testing.T, at time.Time, msg string) string {
	t.Helper()
	writeFile(t, filepath.Join(r.dir, "CHANGES"), msg+"\n")
	r.git(t, at, "add", "CHANGES")
	r.git(t, at, "commit", "-q", "-m", msg)
	return r.git(t, time.Time{}, "rev-parse", "HEAD")
}

// TestDORAKeysAndDeployImpactAgainstARealPrometheus loads a month of
// traffic into a real Prometheus, with a burn after one deploy, records
// the deploys after the fact (with commits, one through slogate deploy in
// a git checkout), and reads the keys, a deploy's impact, the gauges and
// slogate dora back from the real slogate serve.
func TestDORAKeysAndDeployImpactAgainstARealPrometheus(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	// 34 days: the SLO period of d2 (30 days before it) is all there.
	start := now.Add(-34 * 24 * time.Hour)
	d1 := now.Add(-5 * 24 * time.Hour) // succeeded, clean
	d2 := now.Add(-3 * 24 * time.Hour) // succeeded; half the requests fail from 20 to 60 min after it started
	d3 := now.Add(-2 * 24 * time.Hour) // failed after 5 min
	d4 := d3.Add(time.Hour)            // succeeded: restores d3
	burnStart, burnEnd := d2.Add(20*time.Minute), d2.Add(60*time.Minute)
	var om testenv.OpenMetrics
	om.Counter("http_requests", testenv.Requests("http_requests", map[string]string{"service": "shop"}, start, time.Minute,
		testenv.Phase{Until: burnStart, Rate: 10, ErrorRatio: 0.0002},
		testenv.Phase{Until: burnEnd, Rate: 10, ErrorRatio: 0.5},
		testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})...)
	prom := testenv.StartPrometheus(t, om.String())

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slos", "shop.yaml"), fmt.Sprintf(historySLOs, "shop", "enforce"))
	port := testenv.FreePort(t)
	config := filepath.Join(dir, "slogate.yaml")
	writeFile(t, config, fmt.Sprintf(`
listen: 127.0.0.1:%d
slos: [%s]
store: sqlite:%s
sources:
  prometheus: {url: "%s", timeout: 10s}
evaluation: {schedule: "@every 1h"}
auth:
  tokens:
    - {name: ci, value: %s, scopes: [gate:read, deploys:write]}
`, port, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), prom.URL, ciToken))
	e := startNotifyServer(t, config, port, time.Time{})

	repo := newGitRepo(t)
	shaA := repo.commit(t, d3.Add(-2*time.Hour), "shipped by d3 (failed)")
	shaB := repo.commit(t, d4.Add(-time.Hour), "shipped by d4")

	ids := map[string]string{}
	post := func(name string, body map[string]any) {
		t.Helper()
		body["service"], body["environment"], body["version"] = "shop", "production", name
		code, b := e.call(t, http.MethodPost, "/v1/deploys", ciToken, body)
		if code != http.StatusCreated {
			t.Fatalf("recording %s: %d %s", name, code, b)
		}
		var d struct{ ID string }
		_ = json.Unmarshal(b, &d)
		ids[name] = d.ID
	}
	finish := func(name, status string, at time.Time) {
		t.Helper()
		code, b := e.call(t, http.MethodPatch, "/v1/deploys/"+ids[name], ciToken, map[string]any{"status": status, "finishedAt": at.Format(time.RFC3339)})
		if code != http.StatusOK {
			t.Fatalf("finishing %s: %d %s", name, code, b)
		}
	}
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	post("d1", map[string]any{"startedAt": rfc(d1), "commits": []map[string]string{{"sha": "c1a", "time": rfc(d1.Add(-3 * time.Hour))}, {"sha": "c1b", "time": rfc(d1.Add(-time.Hour))}}})
	finish("d1", "succeeded", d1.Add(10*time.Minute))
	post("d2", map[string]any{"startedAt": rfc(d2), "commit": "c2", "commitTime": rfc(d2.Add(-30 * time.Minute))})
	finish("d2", "succeeded", d2.Add(10*time.Minute))
	post("d3", map[string]any{"startedAt": rfc(d3), "commit": shaA})
	finish("d3", "failed", d3.Add(5*time.Minute))

	// d4 through slogate deploy in the checkout: it ships shaA..shaB, the
	// previous commit taken from d3 on the server.
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"deploy", "--server", e.url, "--token", ciToken, "--service", "shop",
		"--environment", "production", "--version", "d4", "--commit", shaB, "--started-at", rfc(d4), "--git-dir", repo.dir, "-o", "json"},
		func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("slogate deploy: %v\n%s", err, errOut.String())
	}
	var rec api.Deploy
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.Commits) != 1 || rec.Commits[0].SHA != shaB || rec.Commits[0].Time == nil || !rec.Commits[0].Time.Equal(d4.Add(-time.Hour)) {
		t.Fatalf("slogate deploy sent commits %+v, want %s alone written at %s (stderr: %s)", rec.Commits, shaB, d4.Add(-time.Hour), errOut.String())
	}
	ids["d4"] = rec.ID
	finish("d4", "succeeded", d4.Add(10*time.Minute))

	t.Run("GET /v1/dora gives the four keys with the burn after d2", func(t *testing.T) {
		code, body := e.call(t, http.MethodGet, "/v1/dora?service=shop&environment=production&window=30d", ciToken, nil)
		if code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
		var r api.DORA
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Deployments.Count != 3 || r.Deployments.DeployDays != 3 || r.Deployments.Band != "monthly" {
			t.Errorf("deployments = %+v, want 3 on 3 days, monthly (the median week has none)", r.Deployments)
		}
		// Lead times: d1 3h10m, d2 40m, d4 1h10m.
		if l := r.LeadTime; l.Samples != 3 || l.Missing != 0 || l.Median == nil || *l.Median != (70*time.Minute).Seconds() {
			t.Errorf("leadTime = %+v, want the median of 3h10m, 40m and 1h10m", l)
		}
		if c := r.ChangeFailureRate; c.Failures != 2 || c.Deployments != 4 || c.Ratio == nil || *c.Ratio != 0.5 {
			t.Errorf("changeFailureRate = %+v, want 2 of 4", c)
		}
		if len(r.Failures) != 2 {
			t.Fatalf("failures = %+v", r.Failures)
		}
		burn, failed := r.Failures[0], r.Failures[1]
		// The page tiers fire within minutes of the errors (a 5-minute
		// grid) and calm down within the 30-minute window after them.
		if burn.DeployID != ids["d2"] || burn.Kind != "burn" || burn.SLO != "shop-availability" ||
			burn.Start.Before(burnStart) || burn.Start.After(burnStart.Add(10*time.Minute)) ||
			burn.RestoredAt == nil || burn.RestoredAt.Before(burnEnd) || burn.RestoredAt.After(burnEnd.Add(40*time.Minute)) {
			t.Errorf("burn failure = %+v, want d2's, from about %s to within 40 min of %s", burn, burnStart, burnEnd)
		}
		if failed.DeployID != ids["d3"] || failed.Kind != "failed" || !failed.Start.Equal(d3.Add(5*time.Minute)) ||
			failed.RestoredAt == nil || !failed.RestoredAt.Equal(d4.Add(10*time.Minute)) {
			t.Errorf("failed deploy = %+v, want d3 restored by d4 at %s", failed, d4.Add(10*time.Minute))
		}
		if r.TimeToRestore.Samples != 2 || r.TimeToRestore.Median == nil {
			t.Errorf("timeToRestore = %+v", r.TimeToRestore)
		}
		if s := r.Sources; s.Measured != 1 || s.Queries == 0 || s.Queries > s.QueryLimit || s.RecordedSince != nil || s.Truncated {
			t.Errorf("sources = %+v, want one burn measured from Prometheus within the limit", s)
		}
		t.Logf("GET /v1/dora measured the burns in %d queries to Prometheus", r.Sources.Queries)
	})

	t.Run("GET /v1/deploys/{id} gives d2's impact and d1's", func(t *testing.T) {
		read := func(name string) api.Deploy {
			code, body := e.call(t, http.MethodGet, "/v1/deploys/"+ids[name], ciToken, nil)
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
			var d api.Deploy
			if err := json.Unmarshal(body, &d); err != nil {
				t.Fatal(err)
			}
			if d.Impact == nil || len(d.Impact.SLOs) != 1 {
				t.Fatalf("%s: impact %s", name, body)
			}
			return d
		}
		d := read("d2")
		v, s := d.Impact.ChangeFailure, d.Impact.SLOs[0]
		if !v.Counts || v.Kind != "burn" || v.SLO != "shop-availability" {
			t.Errorf("d2 changeFailure = %+v, want the burn", v)
		}
		// 40 min at 10 req/s half failing is 12,000 bad requests; the 30
		// days before hold 25.9 million, whose 0.1 % budget is 25,920.
		if s.BudgetSpent == nil || *s.BudgetSpent < 0.44 || *s.BudgetSpent > 0.49 {
			t.Errorf("d2 budgetSpent = %s, want about 12,000 / 25,920 = 0.46", pretty(s.BudgetSpent))
		}
		// The hour before: 0.02 % errors, 0.2x. The hour after its finish
		// holds the 40 failing minutes: about 33 % errors, 333x.
		if s.BurnRateBefore == nil || *s.BurnRateBefore > 0.5 || s.BurnRateAfter == nil || *s.BurnRateAfter < 300 || *s.BurnRateAfter > 350 {
			t.Errorf("d2 burn rates %s before, %s after; want about 0.2 and 333", pretty(s.BurnRateBefore), pretty(s.BurnRateAfter))
		}
		if c := read("d1").Impact; c.ChangeFailure.Counts || c.SLOs[0].BudgetSpent == nil || *c.SLOs[0].BudgetSpent > 0.01 {
			t.Errorf("d1 impact = %+v, want no change failure and almost no budget spent", c)
		}
	})

	t.Run("slogate dora prints the keys as a table and as JSON", func(t *testing.T) {
		var table bytes.Buffer
		if err := run(context.Background(), []string{"dora", "--server", e.url, "--token", ciToken, "--service", "shop"},
			func(string) string { return "" }, &table, io.Discard); err != nil {
			t.Fatal(err)
		}
		squeezed := strings.Join(strings.Fields(table.String()), " ")
		for _, want := range []string{"change failure rate 50.0% 2 of 4 deploys", "lead time for changes 1h10m0s", ids["d2"] + " burn", ids["d3"] + " failed"} {
			if !strings.Contains(squeezed, want) {
				t.Errorf("table has no %q:\n%s", want, table.String())
			}
		}
		var js bytes.Buffer
		if err := run(context.Background(), []string{"dora", "--server", e.url, "--token", ciToken, "--service", "shop", "-o", "json"},
			func(string) string { return "" }, &js, io.Discard); err != nil {
			t.Fatal(err)
		}
		var r api.DORA
		if err := json.Unmarshal(js.Bytes(), &r); err != nil || r.ChangeFailureRate.Failures != 2 {
			t.Errorf("json %v: %s", err, js.String())
		}
	})

	t.Run("/metrics has the DORA gauges of shop in production", func(t *testing.T) {
		code, body := e.call(t, http.MethodGet, "/metrics", "", nil)
		if code != http.StatusOK {
			t.Fatalf("%d", code)
		}
		// The gauges read the alert record only (no source query on a
		// scrape): slogate recorded no burn, so d3 is the one failure.
		for _, want := range []string{
			`slogate_dora_deployments{environment="production",service="shop"} 3`,
			`slogate_dora_change_failures{environment="production",service="shop"} 1`,
			`slogate_dora_lead_time_seconds{environment="production",quantile="0.5",service="shop"} 4200`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics has no %s", want)
			}
		}
	})
}
