package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/backtest"
	"github.com/slogate/slogate/internal/testenv"
)

// historySLOs: shop is enforced, basket runs its policy as a dry run.
const historySLOs = `
apiVersion: openslo/v1
kind: SLO
metadata: {name: %[1]s-availability}
spec:
  service: %[1]s
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    metadata: {name: %[1]s-ok}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{service="%[1]s", code!~"5.."})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{service="%[1]s"})'}}}
  objectives: [{target: 0.999}]
---
apiVersion: slogate.dev/v1
kind: GatePolicy
metadata: {name: %[1]s-production}
spec:
  service: %[1]s
  environments: [production]
  mode: %[2]s
  verification: {minDuration: 10m, minEvents: 500, maxBurnRate: 2, versionLabel: version}
`

// TestPointInTimeAnswersAndBacktestsAgainstARealPrometheus loads two days
// of history into a real Prometheus, records its deploys after the fact,
// asks the gate at instants in the past and replays the period with
// slogate backtest.
func TestPointInTimeAnswersAndBacktestsAgainstARealPrometheus(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	start := now.Add(-31 * 24 * time.Hour)
	good := now.Add(-48 * time.Hour) // v2: clean, succeeded after 2h
	bad := now.Add(-24 * time.Hour)  // v3: 2 % errors, rolled back after 1h
	var om testenv.OpenMetrics
	for _, svc := range []string{"shop", "basket"} {
		labels := func(v string) map[string]string { return map[string]string{"service": svc, "version": v} }
		om.Counter("http_requests", append(append(
			testenv.Requests("http_requests", labels("v1"), start, time.Minute, testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002}),
			testenv.Requests("http_requests", labels("v2"), start, time.Minute,
				testenv.Phase{Until: good, Rate: 0}, testenv.Phase{Until: now, Rate: 20, ErrorRatio: 0.0002})...),
			testenv.Requests("http_requests", labels("v3"), start, time.Minute,
				testenv.Phase{Until: bad, Rate: 0}, testenv.Phase{Until: bad.Add(time.Hour), Rate: 2, ErrorRatio: 0.02},
				testenv.Phase{Until: now, Rate: 0})...)...)
	}
	prom := testenv.StartPrometheus(t, om.String())

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slos", "shop.yaml"), fmt.Sprintf(historySLOs, "shop", "enforce")+"---\n"+fmt.Sprintf(historySLOs, "basket", "dryRun"))
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

	// History recorded after the fact: the deploys began days ago.
	ids := map[string]string{}
	record := func(svc, version string, started time.Time, status string, finished time.Time) {
		code, body := e.call(t, http.MethodPost, "/v1/deploys", ciToken, map[string]any{
			"service": svc, "environment": "production", "version": version, "previousVersion": "v1",
			"startedAt": started.Format(time.RFC3339)})
		if code != http.StatusCreated {
			t.Fatalf("recording %s %s: %d %s", svc, version, code, body)
		}
		var d struct{ ID string }
		_ = json.Unmarshal(body, &d)
		ids[svc+"/"+version] = d.ID
		code, body = e.call(t, http.MethodPatch, "/v1/deploys/"+d.ID, ciToken, map[string]any{"status": status, "finishedAt": finished.Format(time.RFC3339)})
		if code != http.StatusOK {
			t.Fatalf("finishing %s: %d %s", d.ID, code, body)
		}
	}
	for _, svc := range []string{"shop", "basket"} {
		record(svc, "v2", good, "succeeded", good.Add(2*time.Hour))
		record(svc, "v3", bad, "rolledBack", bad.Add(time.Hour))
	}

	t.Run("the gate answers as of an instant in the past", func(t *testing.T) {
		tests := map[string]struct {
			q      url.Values
			want   string
			reason string
		}{
			// (Five minutes in, its 2 % errors already halt it: the
			// anytime-valid verification may halt before minDuration.)
			"v3 thirty seconds in waits": {
				q: url.Values{"deployId": {ids["shop/v3"]}, "at": {bad.Add(30 * time.Second).Format(time.RFC3339)}}, want: "wait", reason: "elapsed"},
			"v3 thirty minutes in is halted": {
				q: url.Values{"deployId": {ids["shop/v3"]}, "at": {bad.Add(30 * time.Minute).Format(time.RFC3339)}}, want: "halt", reason: "burns budget"},
			"v2 an hour in is promoted": {
				q: url.Values{"version": {"v2"}, "at": {good.Add(time.Hour).Format(time.RFC3339)}}, want: "promote"},
			"v3 asked by version before it was deployed has no deploy": {
				q: url.Values{"version": {"v3"}, "at": {bad.Add(-time.Hour).Format(time.RFC3339)}}, want: "halt", reason: "no deploy of version v3"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				tc.q.Set("service", "shop")
				tc.q.Set("environment", "production")
				code, body := e.call(t, http.MethodGet, "/v1/gate?"+tc.q.Encode(), ciToken, nil)
				if code != http.StatusOK {
					t.Fatalf("%d %s", code, body)
				}
				var a struct {
					Decision, Reason, EvaluationID string
					At                             *time.Time
				}
				if err := json.Unmarshal(body, &a); err != nil {
					t.Fatal(err)
				}
				if a.Decision != tc.want || !strings.Contains(a.Reason, tc.reason) || a.At == nil {
					t.Fatalf("got %s %q (at %v), want %s %q", a.Decision, a.Reason, a.At, tc.want, tc.reason)
				}
				// Recorded as a backtest, not as a live decision.
				if code, _ := e.call(t, http.MethodGet, "/v1/decisions/"+a.EvaluationID, ciToken, nil); code != http.StatusNotFound {
					t.Fatalf("a point-in-time answer is a live decision (%d)", code)
				}
			})
		}
	})

	t.Run("slogate backtest replays the period beside what happened", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"backtest", "--config", config, "--since", "3d", "-o", "json"},
			func(string) string { return "" }, &out, &errOut)
		if err != nil {
			t.Fatalf("backtest: %v\n%s", err, errOut.String())
		}
		var r backtest.Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		got := map[string]backtest.Replay{}
		for _, d := range r.Deploys {
			got[d.Service+"/"+d.Version] = d
		}
		tests := map[string]struct {
			decision, dryRun, agreement string
			minAfter, maxAfter          float64
		}{
			"shop/v2":   {decision: "promote", agreement: "agree", minAfter: 10, maxAfter: 20},
			"shop/v3":   {decision: "halt", agreement: "agree", minAfter: 1, maxAfter: 20},
			"basket/v2": {decision: "promote", agreement: "agree", minAfter: 10, maxAfter: 20},
			"basket/v3": {decision: "promote", dryRun: "halt", agreement: "agree", minAfter: 1, maxAfter: 20},
		}
		for key, tc := range tests {
			t.Run(key, func(t *testing.T) {
				d, ok := got[key]
				if !ok {
					t.Fatalf("no replay of %s in %s", key, out.String())
				}
				if string(d.Decision) != tc.decision || d.Agreement != tc.agreement || d.AfterMinutes == nil ||
					*d.AfterMinutes < tc.minAfter || *d.AfterMinutes > tc.maxAfter {
					t.Fatalf("replay %+v, want %s (%s) after %v-%v minutes", d, tc.decision, tc.agreement, tc.minAfter, tc.maxAfter)
				}
				if tc.dryRun != "" && (d.DryRun == nil || string(d.DryRun.Decision) != tc.dryRun) {
					t.Fatalf("dry run %+v, want %s", d.DryRun, tc.dryRun)
				}
			})
		}
		if r.Agree != 4 || r.Disagree != 0 {
			t.Fatalf("agree %d, disagree %d, unknown %d", r.Agree, r.Disagree, r.Unknown)
		}
		var table bytes.Buffer
		if err := run(context.Background(), []string{"backtest", "--config", config, "--since", "3d", "--service", "shop"},
			func(string) string { return "" }, &table, io.Discard); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(table.String(), "2 agree, 0 disagree") {
			t.Fatalf("table:\n%s", table.String())
		}
	})
}
