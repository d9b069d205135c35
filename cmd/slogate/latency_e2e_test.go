package main

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// latencySLOs is one latency SLO over a histogram with its gate policy,
// per service: 99 % of requests within 1 s.
const latencySLOs = `
apiVersion: openslo/v1
kind: SLO
metadata: {name: %[1]s-latency}
spec:
  service: %[1]s
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    metadata: {name: %[1]s-fast}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(api_request_duration_seconds_bucket{service="%[1]s", le="1"})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(api_request_duration_seconds_count{service="%[1]s"})'}}}
  objectives: [{target: 0.99}]
---
apiVersion: slogate.dev/v1
kind: GatePolicy
metadata: {name: %[1]s-production}
spec:
  service: %[1]s
  environments: [production]
  verification: {minDuration: 10m, minEvents: 500, maxBurnRate: 2, versionLabel: version}
  canary: {tolerance: 0.005, confidence: 0.95}
  onNoData: halt
`

// TestLatencyDistributionEndToEnd runs slogate over a real Prometheus
// holding latency histograms per version. v1 serves 10 req/s for two days
// in every service; v2, deployed 30 minutes ago, 2 req/s:
//
//	slower  — v2's requests moved up below 1 s, 99.5 % still within it
//	          like v1's: the ratio canary check sees nothing, the
//	          distribution does;
//	same    — v2 serves v1's distribution;
//	rebound — v2 exports 0.3 instead of 0.25 as a bucket bound.
func TestLatencyDistributionEndToEnd(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-48 * time.Hour)
	deployed := now.Add(-30 * time.Minute)
	bounds := []float64{0.05, 0.1, 0.25, 0.5, 1}
	v1 := []float64{0.3, 0.6, 0.85, 0.95, 0.995}
	var om testenv.OpenMetrics
	hist := func(service, version string, bounds []float64, phases ...testenv.LatencyPhase) {
		om.Histogram("api_request_duration_seconds", testenv.HistogramSeries("api_request_duration_seconds",
			map[string]string{"service": service, "version": version}, bounds, start, time.Minute, phases...)...)
	}
	for _, svc := range []string{"slower", "same", "rebound"} {
		hist(svc, "v1", bounds, testenv.LatencyPhase{Until: now, Rate: 10, Below: v1, Mean: 0.12})
	}
	idle := func(n int) testenv.LatencyPhase {
		return testenv.LatencyPhase{Until: deployed, Rate: 0, Below: make([]float64, n)}
	}
	hist("slower", "v2", bounds, idle(5), testenv.LatencyPhase{Until: now, Rate: 2, Below: []float64{0.1, 0.3, 0.7, 0.9, 0.995}, Mean: 0.25})
	hist("same", "v2", bounds, idle(5), testenv.LatencyPhase{Until: now, Rate: 2, Below: v1, Mean: 0.12})
	hist("rebound", "v2", []float64{0.05, 0.1, 0.3, 0.5, 1}, idle(5), testenv.LatencyPhase{Until: now, Rate: 2, Below: v1, Mean: 0.12})
	prom := testenv.StartPrometheus(t, om.String())

	dir := t.TempDir()
	var slos strings.Builder
	for i, svc := range []string{"slower", "same", "rebound"} {
		if i > 0 {
			slos.WriteString("---\n")
		}
		fmt.Fprintf(&slos, latencySLOs, svc)
	}
	writeFile(t, filepath.Join(dir, "slos", "latency.yaml"), slos.String())
	port := testenv.FreePort(t)
	writeFile(t, filepath.Join(dir, "slogate.yaml"), fmt.Sprintf(`
listen: 127.0.0.1:%d
slos: [%s]
store: sqlite:%s
sources:
  prometheus: {url: "%s", timeout: 10s}
evaluation: {schedule: "@every 1h"}
gate: {cacheTTL: 0s}
auth:
  tokens:
    - {name: ci, value: %s, scopes: [gate:read, deploys:write]}
    - {name: reader, value: %s, scopes: [gate:read]}
`, port, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), prom.URL, ciToken, readToken))

	e := startNotifyServer(t, filepath.Join(dir, "slogate.yaml"), port, time.Time{})

	tests := map[string]struct {
		service  string
		decision string
		canary   string // the ratio canary check's verdict
		latency  string // the canary-latency check's verdict
		noData   bool
		reason   []string
	}{
		"a canary slower under the SLO's threshold is halted by its distribution alone": {
			service: "slower", decision: "halt", canary: "pass", latency: "fail",
			reason: []string{"canary v2 is slower than baseline v1", "slower than 0.05", "slower than 0.25"},
		},
		"a canary with the baseline's distribution is promoted": {
			service: "same", decision: "promote", canary: "pass", latency: "pass", reason: []string{"not shown slower"},
		},
		"different bucket bounds are no data, not a guess": {
			service: "rebound", decision: "halt", canary: "pass", latency: "fail", noData: true,
			reason: []string{"different bucket bounds", "le 0.05, 0.1, 0.3, 0.5, 1, +Inf", "le 0.05, 0.1, 0.25, 0.5, 1, +Inf"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			id := e.deploy(t, tc.service, "v2", "v1", deployed)
			a := e.gate(t, url.Values{"service": {tc.service}, "environment": {"production"}, "deployId": {id}})
			if a.Decision != tc.decision {
				t.Errorf("decision %s (%s), want %s", a.Decision, a.Reason, tc.decision)
			}
			verdicts := map[string]string{}
			for _, c := range a.Checks {
				verdicts[c.Kind] = c.Verdict
				if c.Kind != "canary-latency" {
					continue
				}
				if c.NoData != tc.noData || !strings.Contains(c.Query, `sum by (le) (increase(api_request_duration_seconds_bucket{service="`+tc.service+`",version="v2"}[30m`) {
					t.Errorf("canary-latency noData %v, query %s", c.NoData, c.Query)
				}
				for _, r := range tc.reason {
					if !strings.Contains(c.Reason, r) {
						t.Errorf("reason %q does not say %q", c.Reason, r)
					}
				}
			}
			if verdicts["canary"] != tc.canary || verdicts["canary-latency"] != tc.latency {
				t.Errorf("canary %q, canary-latency %q; want %q, %q (checks %+v)", verdicts["canary"], verdicts["canary-latency"], tc.canary, tc.latency, a.Checks)
			}
		})
	}
}
