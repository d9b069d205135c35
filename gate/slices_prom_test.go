package gate

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/collectors/prometheus"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// sliceT0 is on a minute boundary: Prometheus aligns subquery steps (the
// slices) to multiples of their length.
var sliceT0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func promMeasurer(t *testing.T, om string) *Measurer {
	t.Helper()
	prom := testenv.StartPrometheus(t, om)
	c, err := prometheus.New(prometheus.Config{URL: prom.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMeasurer(c, MeasurerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func near(got *float64, want float64) bool {
	return got != nil && math.Abs(*got-want) < 1e-9
}

// A Timeslices SLO: a minute is good when 99 % of its requests succeed.
// 100 minutes of 10 req/s, sampled every 15 s; minutes 86 to 95 fail 5 %
// of requests. Worked by hand:
//   - 100 slices with data (the first minute has one sample and no
//     increase: no data, left out), 10 bad: share of good slices 0.9;
//   - target 0.8, budget 0.2: consumed 0.1/0.2 = 0.5, remaining 0.5;
//   - burn rates: 5m holds none of the bad minutes (0); 30m holds 10 of 30
//     (1/3 bad, 1.667x); 1h 10 of 60 (0.833x); 2h holds all 100 slices
//     (0.1 bad, 0.5x).
func TestATimeslicesSLOIsTheShareOfGoodSlices(t *testing.T) {
	var om testenv.OpenMetrics
	om.Counter("http_requests", testenv.Requests("http_requests", map[string]string{"job": "web"}, sliceT0, 15*time.Second,
		testenv.Phase{Until: sliceT0.Add(85 * time.Minute), Rate: 10},
		testenv.Phase{Until: sliceT0.Add(95 * time.Minute), Rate: 10, ErrorRatio: 0.05},
		testenv.Phase{Until: sliceT0.Add(100 * time.Minute), Rate: 10})...)
	m := promMeasurer(t, om.String())
	set, err := slo.Parse("web.yaml", []byte(`apiVersion: openslo/v1
kind: SLO
metadata: {name: web-minutes}
spec:
  service: web
  indicator:
    metadata: {name: web-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{job="web",code!~"5.."})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{job="web"})'}}}
  budgetingMethod: Timeslices
  timeWindow: [{duration: 7d, isRolling: true}]
  objectives: [{target: 0.8, timeSliceTarget: 0.99, timeSliceWindow: 1m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	st := m.Status(context.Background(), set.Objectives[0], sliceT0.Add(100*time.Minute))
	for _, e := range st.Errors {
		if e.Window == "period" || e.Window == "5m" || e.Window == "30m" || e.Window == "1h" || e.Window == "2h" {
			t.Errorf("%s not measured: %s", e.Window, e.Error)
		}
	}
	if !near(st.SLI.Ratio, 0.9) {
		t.Errorf("share of good slices = %v, want 0.9", deref(st.SLI.Ratio))
	}
	if !near(st.ErrorBudget.Remaining, 0.5) || !near(st.ErrorBudget.Consumed, 0.5) {
		t.Errorf("budget consumed %v remaining %v, want 0.5 and 0.5", deref(st.ErrorBudget.Consumed), deref(st.ErrorBudget.Remaining))
	}
	for w, want := range map[string]float64{"5m": 0, "30m": 1.0 / 3 / 0.2, "1h": 1.0 / 6 / 0.2, "2h": 0.1 / 0.2} {
		if !near(st.BurnRates[w], want) {
			t.Errorf("burn rate over %s = %v, want %v", w, deref(st.BurnRates[w]), want)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// The seed's load-test gate as one SLO file: the new version's p95 must
// stay under 300 ms. Each version serves 10 req/s for 20 minutes, sampled
// every 15 s, with buckets 0.1, 0.25, 0.5, 1 s. Worked by hand
// (histogram_quantile interpolates linearly in the bucket holding rank
// 0.95):
//   - fast: 50 % ≤ 0.1, 97 % ≤ 0.25: p95 = 0.1 + 0.15 × (0.95−0.5)/(0.97−0.5)
//     = 0.24362 s, under 0.3: promote;
//   - slow: 90 % ≤ 0.5, all ≤ 1: p95 = 0.5 + 0.5 × (0.95−0.9)/(1−0.9) =
//     0.75 s: halt, naming the value and the objective.
func TestAP95ThresholdVerificationHaltsASlowVersionAndPromotesAFastOne(t *testing.T) {
	const file = `apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-p95, displayName: checkout p95}
spec:
  service: checkout
  indicator:
    metadata: {name: checkout-p95}
    spec:
      thresholdMetric:
        metricSource:
          type: Prometheus
          spec: {query: 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="checkout"}[{{.window}}])))'}
  budgetingMethod: Occurrences
  timeWindow: [{duration: 28d, isRolling: true}]
  objectives: [{op: lt, value: 0.3, target: 0.99}]
`
	set, err := slo.Parse("checkout.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	bounds := []float64{0.1, 0.25, 0.5, 1}
	tests := map[string]struct {
		below  []float64
		want   slogate.Decision
		check  Verdict
		value  float64
		reason string
	}{
		"a fast version is promoted": {below: []float64{0.5, 0.97, 1, 1}, want: slogate.Promote, check: Pass,
			value: 0.1 + 0.15*(0.95-0.5)/(0.97-0.5), reason: "version v2: checkout p95 is 0.2436 since 10:00, meets lt 0.3"},
		"a slow version is halted": {below: []float64{0.2, 0.5, 0.9, 1}, want: slogate.Halt, check: Fail,
			value: 0.75, reason: "version v2: checkout p95 is 0.75 since 10:00, objective lt 0.3"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			end := sliceT0.Add(20 * time.Minute)
			var om testenv.OpenMetrics
			om.Histogram("http_request_duration_seconds", testenv.HistogramSeries("http_request_duration_seconds",
				map[string]string{"job": "checkout", "version": "v2"}, bounds, sliceT0, 15*time.Second,
				testenv.LatencyPhase{Until: end, Rate: 10, Below: tc.below, Mean: 0.2})...)
			m := promMeasurer(t, om.String())
			e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return set }, Clock: func() time.Time { return end },
				Deploys: fakeDeploys{"dep_1": {ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", StartedAt: sliceT0}}})
			if err != nil {
				t.Fatal(err)
			}
			a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", Version: "v2"})
			if err != nil {
				t.Fatal(err)
			}
			var th *Check
			for i, c := range a.Checks {
				if c.Kind == KindThreshold {
					th = &a.Checks[i]
				}
			}
			if th == nil {
				t.Fatalf("no threshold check in %+v", a.Checks)
			}
			if th.Verdict != tc.check || !near4(th.Value, tc.value) || th.Reason != tc.reason {
				t.Errorf("threshold check = %s %v %q, want %s %v %q", th.Verdict, deref(th.Value), th.Reason, tc.check, tc.value, tc.reason)
			}
			if !strings.Contains(th.Query, `version="v2"`) {
				t.Errorf("the query is not scoped to the version: %s", th.Query)
			}
			if a.Decision != tc.want {
				t.Errorf("decision %s (%s), want %s; checks %+v", a.Decision, a.Reason, tc.want, a.Checks)
			}
		})
	}
}

func near4(got *float64, want float64) bool { return got != nil && math.Abs(*got-want) < 1e-4 }
