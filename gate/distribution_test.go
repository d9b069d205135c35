package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// bounds of the simulated histograms: the usual client_golang buckets
// around a web service's latencies.
var simBounds = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, math.Inf(1)}

// baseDist is the baseline's share of requests per bucket of simBounds.
var baseDist = []float64{0.30, 0.30, 0.25, 0.10, 0.04, 0.009, 0.001}

// slowerBy moves share of every bucket's requests one bucket up: a canary
// whose requests got slower across the distribution.
func slowerBy(p []float64, share float64) []float64 {
	out := make([]float64, len(p))
	for i := range p {
		if i == len(p)-1 {
			out[i] += p[i]
			break
		}
		out[i] += p[i] * (1 - share)
		out[i+1] += p[i] * share
	}
	return out
}

// atTolerance moves tol of the requests from the fastest bucket to the
// slowest: the canary's share slower than every bound is exactly tol
// above the baseline's, the edge of the null.
func atTolerance(p []float64, tol float64) []float64 {
	out := append([]float64(nil), p...)
	out[0] -= tol
	out[len(out)-1] += tol
	return out
}

// sim draws requests per minute into buckets for a canary and a baseline
// and polls the test every minute: it returns the minute of the first
// halt (0 when none within minutes).
type sim struct {
	rng                *rand.Rand
	canary, baseline   []float64 // distributions
	rateC, rateB       int       // requests per minute
	tol, alpha         float64
	minutes, firstLook int
}

func (s *sim) draw(p []float64, n int, into []float64) {
	for range n {
		u := s.rng.Float64()
		j := 0
		for j < len(p)-1 && u >= p[j] {
			u -= p[j]
			j++
		}
		into[j]++
	}
}

func (s *sim) run() int {
	can := make([]float64, len(s.canary))
	base := make([]float64, len(s.baseline))
	for m := 1; m <= s.minutes; m++ {
		s.draw(s.canary, s.rateC, can)
		s.draw(s.baseline, s.rateB, base)
		if m >= s.firstLook && shiftTest(can, base, s.tol, s.alpha).reject {
			return m
		}
	}
	return 0
}

func TestShiftTestHoldsItsLevelAtEveryLook(t *testing.T) {
	const paths, alpha = 400, 0.05
	tests := map[string]struct {
		canary []float64
		tol    float64
	}{
		"equal distributions with no tolerance":                   {canary: baseDist, tol: 0},
		"a canary slower by exactly the tolerance at every bound": {canary: atTolerance(baseDist, 0.02), tol: 0.02},
		"a canary that got faster":                                {canary: []float64{0.40, 0.30, 0.20, 0.07, 0.025, 0.004, 0.001}, tol: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := &sim{rng: rand.New(rand.NewPCG(1, 2)), canary: tc.canary, baseline: baseDist,
				rateC: 120, rateB: 1080, tol: tc.tol, alpha: alpha, minutes: 60, firstLook: 1}
			halts := 0
			for range paths {
				if s.run() > 0 {
					halts++
				}
			}
			// Ville: P(ever halt) ≤ α. The bound is loose (the e-process is
			// a supermartingale at the edge), so the rate must be well
			// under it, not only at it.
			rate := float64(halts) / paths
			t.Logf("halted %d of %d paths (%.3f, α = %.2f)", halts, paths, rate, alpha)
			if rate > alpha {
				t.Errorf("halted %d of %d paths polled every minute for an hour (%.3f > α = %.2f)", halts, paths, rate, alpha)
			}
		})
	}
}

func TestShiftTestDetectsASlowerCanary(t *testing.T) {
	const paths = 200
	s := &sim{rng: rand.New(rand.NewPCG(3, 4)), canary: slowerBy(baseDist, 0.2), baseline: baseDist,
		rateC: 120, rateB: 1080, tol: 0.005, alpha: 0.05, minutes: 60, firstLook: 1}
	detected := 0
	for range paths {
		if s.run() > 0 {
			detected++
		}
	}
	t.Logf("detected on %d of %d paths", detected, paths)
	if detected < paths*95/100 {
		t.Errorf("a canary with a fifth of every bucket's requests one bucket slower was halted on %d of %d paths within an hour, want ≥ 95 %%", detected, paths)
	}
}

func TestShiftBelowTheToleranceDoesNotHaltOnHugeTraffic(t *testing.T) {
	// 2 % of requests one bucket slower moves the share slower than each
	// bound by at most 0.6 points: real, but under a 1-point tolerance.
	s := &sim{rng: rand.New(rand.NewPCG(5, 6)), canary: slowerBy(baseDist, 0.02), baseline: baseDist,
		rateC: 20000, rateB: 20000, tol: 0.01, alpha: 0.05, minutes: 60, firstLook: 1}
	for i := range 5 {
		if m := s.run(); m > 0 {
			t.Fatalf("path %d halted at minute %d on a shift under the tolerance", i, m)
		}
	}
	// The same shift with no tolerance is found: the floor is what keeps
	// it from halting, not a lack of data.
	s.tol = 0
	if s.run() == 0 {
		t.Error("with tolerance 0 the shift was not found in an hour of 20000 requests a minute")
	}
}

func TestLogKTByHand(t *testing.T) {
	// KT(x, n) = B(x+½, n−x+½)/B(½,½): B(½,½) = π, B(½,3/2) = π/2,
	// B(3/2,3/2) = π/8.
	tests := map[string]struct{ x, n, want float64 }{
		"one outcome of one":   {x: 1, n: 1, want: 0.5},
		"one outcome of two":   {x: 1, n: 2, want: 1.0 / 8},
		"none of two":          {x: 0, n: 2, want: 3.0 / 8},
		"nothing seen is sure": {x: 0, n: 0, want: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := math.Exp(logKT(tc.x, tc.n)); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("KT(%v, %v) = %v, want %v", tc.x, tc.n, got, tc.want)
			}
		})
	}
}

func TestCutEValueIsAtMostOneInsideTheNull(t *testing.T) {
	// With the canary's observed share within the tolerance the null's
	// maximum is the unconstrained one, and a mixture never beats it.
	for _, tc := range []struct{ x, n, y, m, tol float64 }{
		{10, 100, 10, 100, 0}, {12, 100, 10, 100, 0.05}, {0, 1000, 3, 1000, 0}, {500, 1000, 400, 1000, 0.2},
	} {
		if l := cutLogE(tc.x, tc.n, tc.y, tc.m, tc.tol); l > 0 {
			t.Errorf("cutLogE%v = %v > 0", tc, l)
		}
	}
	// Outside it, the constrained maximum is below the unconstrained one.
	if l0, l1 := cutLogE(300, 1000, 100, 1000, 0), cutLogE(300, 1000, 100, 1000, 0.1); !(l0 > l1 && l1 > 0) {
		t.Errorf("a 20-point shift: e-value %v with no tolerance, %v with 10 points; want the first larger, both above 1", math.Exp(l0), math.Exp(l1))
	}
}

// histograms is a fake BucketSource and Source: per version, per-bucket
// requests per minute (bounds per version), scaled by the range's minutes.
type histograms struct {
	traffic
	bounds map[string][]float64
	perMin map[string][]float64
	bErr   error
}

func (h *histograms) Buckets(_ context.Context, _ slo.SLI, r slo.Range, scope slo.Scope) ([]slo.Bucket, error) {
	if h.bErr != nil {
		return nil, h.bErr
	}
	v := scope["version"]
	per, ok := h.perMin[v]
	if !ok {
		return nil, fmt.Errorf("fake: version %s: %w", v, slo.ErrNoData)
	}
	bounds := h.bounds[v]
	if bounds == nil {
		bounds = simBounds
	}
	out := make([]slo.Bucket, len(per))
	for i, n := range per {
		out[i] = slo.Bucket{UpperBound: bounds[i], Count: n * r.Duration().Minutes()}
	}
	return out, nil
}

func latencySet(policy *slo.GatePolicy) *slo.Set {
	q := func(s string) *slo.Query { return &slo.Query{Source: slo.SourcePrometheus, PromQL: s} }
	s := &slo.Set{Objectives: []slo.Objective{{
		Name: "checkout-latency", Service: "checkout", Target: 0.99, Window: slo.Rolling(28 * slo.Day),
		SLI: slo.SLI{Name: "fast", Good: q(`sum(lat_bucket{le="1"})`), Total: q(`sum(lat_count)`)},
	}}}
	if policy != nil {
		s.Policies = []slo.GatePolicy{*policy}
	}
	return s
}

func perMinute(dist []float64, n float64) []float64 {
	out := make([]float64, len(dist))
	for i, p := range dist {
		out[i] = p * n
	}
	return out
}

func TestLatencyCheckInTheGate(t *testing.T) {
	deploy := slogate.Deploy{ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: now.Add(-20 * time.Minute)}
	// Both versions serve 1 % above 1 s, so the SLO's own bound (and the
	// canary check on it) sees no difference; v2's requests moved up
	// below it.
	slowBelow := []float64{0.10, 0.20, 0.35, 0.25, 0.09, 0.009, 0.001}
	ok := func(v string) vt { return vt{rate: 10, errRatio: 0.01} }
	tests := map[string]struct {
		src       *histograms
		deploy    slogate.Deploy
		want      Verdict
		noData    bool
		decision  slogate.Decision
		reason    []string
		minEvents *float64
	}{
		"a canary slower under the SLO threshold halts and names the bounds that moved": {
			src:  &histograms{perMin: map[string][]float64{"v1": perMinute(baseDist, 600), "v2": perMinute(slowBelow, 600)}},
			want: Fail, decision: slogate.Halt,
			reason: []string{"canary v2 is slower than baseline v1", "slower than 0.05", "slower than 0.1", "slower than 0.25"},
		},
		"a canary with the baseline's distribution passes": {
			src:  &histograms{perMin: map[string][]float64{"v1": perMinute(baseDist, 600), "v2": perMinute(baseDist, 60)}},
			want: Pass, reason: []string{"not shown slower", "at any of 6 bucket bounds"},
		},
		"differing bucket bounds are no data, never a guess": {
			src: &histograms{
				perMin: map[string][]float64{"v1": perMinute(baseDist, 600), "v2": perMinute(baseDist, 60)},
				bounds: map[string][]float64{"v2": {0.05, 0.1, 0.3, 0.5, 1, 2.5, math.Inf(1)}},
			},
			want: Fail, noData: true, decision: slogate.Halt,
			reason: []string{"different bucket bounds", "canary v2 (le 0.05, 0.1, 0.3, 0.5, 1, 2.5, +Inf)", "baseline v1 (le 0.05, 0.1, 0.25, 0.5, 1, 2.5, +Inf)"},
		},
		"a canary with no histogram series after minDuration is no data": {
			src:  &histograms{perMin: map[string][]float64{"v1": perMinute(baseDist, 600)}},
			want: Fail, noData: true, decision: slogate.Halt, reason: []string{"latency distribution of version v2 not measured"},
		},
		"a canary with no histogram series inside minDuration waits": {
			src:    &histograms{perMin: map[string][]float64{"v1": perMinute(baseDist, 600)}},
			deploy: slogate.Deploy{ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: now.Add(-5 * time.Minute)},
			want:   Pending, reason: []string{"no requests of version v2"},
		},
		"a version with series but no requests after minDuration is no data, even with minEvents 0": {
			src:       &histograms{perMin: map[string][]float64{"v1": perMinute(baseDist, 600), "v2": perMinute(baseDist, 0)}},
			minEvents: f(0), want: Fail, noData: true, decision: slogate.Halt, reason: []string{"no requests to compare latencies: canary v2 0"},
		},
		"a histogram with only the +Inf bucket is no data": {
			src: &histograms{
				perMin: map[string][]float64{"v1": {600}, "v2": {60}},
				bounds: map[string][]float64{"v1": {math.Inf(1)}, "v2": {math.Inf(1)}},
			},
			want: Fail, noData: true, decision: slogate.Halt, reason: []string{"no bucket bound but +Inf"},
		},
		"too few requests wait": {
			src:  &histograms{perMin: map[string][]float64{"v1": perMinute(baseDist, 600), "v2": perMinute(slowBelow, 1)}},
			want: Pending, reason: []string{"too few requests to compare latencies: canary v2 20"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.src.versions = map[string]vt{"v1": ok("v1"), "v2": ok("v2")}
			d := deploy
			if tc.deploy.ID != "" {
				d = tc.deploy
			}
			p := canaryPolicy()
			if tc.minEvents != nil {
				p.Verification.MinEvents = *tc.minEvents
			}
			e := engine(t, tc.src, latencySet(p), fakeDeploys{d.ID: d}, nil)
			a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", DeployID: d.ID})
			if err != nil {
				t.Fatal(err)
			}
			var lc *Check
			for i := range a.Checks {
				if a.Checks[i].Kind == KindCanaryLatency {
					lc = &a.Checks[i]
				}
			}
			if lc == nil {
				t.Fatalf("no %s check in %+v", KindCanaryLatency, a.Checks)
			}
			if lc.Verdict != tc.want || lc.NoData != tc.noData {
				t.Fatalf("verdict %s (noData %v), want %s (noData %v): %s", lc.Verdict, lc.NoData, tc.want, tc.noData, lc.Reason)
			}
			for _, r := range tc.reason {
				if !strings.Contains(lc.Reason, r) {
					t.Errorf("reason %q does not say %q", lc.Reason, r)
				}
			}
			if tc.decision != "" && a.Decision != tc.decision {
				t.Errorf("decision %s, want %s (%s)", a.Decision, tc.decision, a.Reason)
			}
			if tc.want == Pass && a.Decision != slogate.Promote {
				t.Errorf("decision %s, want promote with the other checks passing: %s", a.Decision, a.Reason)
			}
		})
	}
}

func TestLatencyCheckSourceFaultIsNotAPass(t *testing.T) {
	deploy := slogate.Deploy{ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: now.Add(-20 * time.Minute)}
	src := &histograms{bErr: fmt.Errorf("fake: %w", slo.ErrUnavailable)}
	src.versions = map[string]vt{"v1": {10, 0.01}, "v2": {1, 0.01}}
	e := engine(t, src, latencySet(canaryPolicy()), fakeDeploys{deploy.ID: deploy}, nil)
	_, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", DeployID: deploy.ID})
	if !errors.Is(err, ErrSourceFault) || !strings.Contains(err.Error(), "latency distribution of version") {
		t.Fatalf("err = %v, want a source fault naming the latency distribution (onSourceError: error)", err)
	}
}

func TestLatencyCheckShowsItsFigures(t *testing.T) {
	deploy := slogate.Deploy{ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: now.Add(-20 * time.Minute)}
	src := &histograms{perMin: map[string][]float64{"v1": perMinute(baseDist, 600), "v2": perMinute(slowerBy(baseDist, 0.3), 60)}}
	src.versions = map[string]vt{"v1": {10, 0.01}, "v2": {1, 0.01}}
	e := engine(t, src, latencySet(canaryPolicy()), fakeDeploys{deploy.ID: deploy}, nil)
	a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", DeployID: deploy.ID})
	if err != nil {
		t.Fatal(err)
	}
	var c Check
	for _, ch := range a.Checks {
		if ch.Kind == KindCanaryLatency {
			c = ch
		}
	}
	l := c.Latency
	if c.Verdict != Fail || l == nil {
		t.Fatalf("verdict %s, latency %+v: %s", c.Verdict, l, c.Reason)
	}
	if l.Threshold != 1/(1-0.95) || l.Tolerance != 0.005 || !strings.Contains(l.Test, "e-process") || l.EValue < l.Threshold {
		t.Errorf("test %q, e-value %v, threshold %v, tolerance %v", l.Test, l.EValue, l.Threshold, l.Tolerance)
	}
	if len(l.Buckets) != len(simBounds) || l.Buckets[len(l.Buckets)-1].LE != "+Inf" || l.Buckets[len(l.Buckets)-1].EValue != nil {
		t.Fatalf("buckets %+v", l.Buckets)
	}
	// 20 minutes of 600 and 60 requests a minute.
	if b := l.Buckets[0]; b.LE != "0.05" || b.Baseline != 0.30*600*20 || b.Canary != math.Round(0.30*0.7*60*20) || !b.Moved {
		t.Errorf("first bucket %+v", b)
	}
	if c.Canary == nil || c.Canary.Total != 1200 || c.Baseline.Total != 12000 {
		t.Errorf("samples %+v %+v", c.Canary, c.Baseline)
	}
	if !strings.Contains(c.Query, `sum by (le) (increase(lat_bucket{version="v2"}[20m]))`) {
		t.Errorf("query %s", c.Query)
	}
}

func TestLatencyCheckWithoutBucketSourceIsNoData(t *testing.T) {
	deploy := slogate.Deploy{ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: now.Add(-20 * time.Minute)}
	src := &traffic{versions: map[string]vt{"v1": {10, 0.01}, "v2": {1, 0.01}}}
	e := engine(t, src, latencySet(canaryPolicy()), fakeDeploys{deploy.ID: deploy}, nil)
	a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", DeployID: deploy.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range a.Checks {
		if c.Kind == KindCanaryLatency {
			if !c.NoData || c.Verdict == Pass || !strings.Contains(c.Reason, "measures no histogram buckets") {
				t.Errorf("%s: %s", c.Verdict, c.Reason)
			}
			return
		}
	}
	t.Fatal("no canary-latency check: a configured check that cannot run must say so")
}

func TestMeasurerBucketsHasADeadline(t *testing.T) {
	m, err := NewMeasurer(&blockingBuckets{}, MeasurerConfig{Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Buckets(context.Background(), slo.SLI{Name: "fast"}, slo.Range{Start: now.Add(-time.Hour), End: now}, nil)
	if !errors.Is(err, slo.ErrTimeout) || !strings.Contains(err.Error(), "measuring the buckets of fast") {
		t.Errorf("err = %v", err)
	}
}

type blockingBuckets struct{ traffic }

func (*blockingBuckets) Buckets(ctx context.Context, _ slo.SLI, _ slo.Range, _ slo.Scope) ([]slo.Bucket, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A version with no recorded deploy has no start to compare latencies
// from: the latency check is no data, never measured from time zero.
func TestLatencyCheckWithoutADeployIsNoData(t *testing.T) {
	src := &histograms{traffic: traffic{versions: map[string]vt{"v1": {10, 0.01}, "v2": {1, 0.01}}},
		perMin: map[string][]float64{"v1": perMinute(baseDist, 600), "v2": perMinute(baseDist, 60)}}
	e := engine(t, src, latencySet(canaryPolicy()), fakeDeploys{}, nil)
	a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", Version: "v2", BaselineVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range a.Checks {
		if c.Kind == KindCanaryLatency {
			if !c.NoData || c.Verdict == Pass || !strings.Contains(c.Reason, "no deploy of version v2") {
				t.Errorf("%s: %s", c.Verdict, c.Reason)
			}
			return
		}
	}
	t.Fatal("no canary-latency check")
}
