package gate

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// pathSource serves one simulated rollout: per version, the cumulative
// requests per bucket at the end of every minute since the deploy. The
// engine's clock says which minute is asked.
type pathSource struct {
	start time.Time
	cum   map[string][][]float64 // version → minute → bucket counts
}

func (p *pathSource) minute(r slo.Range) int { return int(r.End.Sub(p.start) / time.Minute) }

func (p *pathSource) Buckets(_ context.Context, _ slo.SLI, r slo.Range, scope slo.Scope) ([]slo.Bucket, error) {
	cum := p.cum[scope["version"]][p.minute(r)]
	out := make([]slo.Bucket, len(cum))
	for i, n := range cum {
		out[i] = slo.Bucket{UpperBound: simBounds[i], Count: n}
	}
	return out, nil
}

// Counts serves the same requests as a ratio under 1 s (the SLO's bound)
// so that the other checks run as they would.
func (p *pathSource) Counts(_ context.Context, _ slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error) {
	var good, total float64
	for v, mins := range p.cum {
		if want, ok := scope["version"]; ok && want != v {
			continue
		}
		m := min(p.minute(r), len(mins)-1)
		for i, n := range mins[m] {
			total += n
			if simBounds[i] <= 1 {
				good += n
			}
		}
	}
	if total == 0 {
		return slo.Counts{}, slo.ErrNoData
	}
	return slo.Counts{Good: good, Total: total}, nil
}

// naiveReject is the rule the e-process replaces, for comparison: a
// fixed-sample one-sided two-proportion z test at every bound, Bonferroni
// over the bounds, asked as if each look were the only one.
func naiveReject(can, base []float64, tol, alpha float64) bool {
	nC, nB := sum(can), sum(base)
	z := normalQuantile(1 - alpha/float64(len(can)-1))
	xC, xB := nC, nB
	for i := 0; i < len(can)-1; i++ {
		xC -= can[i]
		xB -= base[i]
		pc, pb := xC/nC, xB/nB
		se := math.Sqrt(pc*(1-pc)/nC + pb*(1-pb)/nB)
		if se > 0 && (pc-pb-tol)/se > z {
			return true
		}
	}
	return false
}

// BenchmarkLatencyQuality simulates rollouts of a canary at 2 req/s
// beside a baseline at 18 req/s, polled every minute for 60 minutes
// through the gate engine (the canary-latency check's verdict), and
// reports per kind of canary the share of rollouts halted within the hour
// and the median minute of the halt; the naive fixed-sample rule asked at
// the same looks, and both asked once at 60 minutes, in the same run.
func BenchmarkLatencyQuality(b *testing.B) {
	const (
		paths   = 200
		minutes = 60
		rateC   = 120 // requests a minute
		rateB   = 1080
	)
	tol := canaryPolicy().Canary.Tolerance
	alpha := 1 - canaryPolicy().Canary.Confidence
	kinds := []struct {
		name string
		dist []float64
	}{
		{"equal", baseDist},
		{"at-tolerance", atTolerance(baseDist, tol)},
		{"slower-5pct", slowerBy(baseDist, 0.05)},
		{"slower-20pct", slowerBy(baseDist, 0.2)},
		{"slower-50pct", slowerBy(baseDist, 0.5)},
	}
	start := now.Add(-time.Duration(minutes) * time.Minute)
	deploy := slogate.Deploy{ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: start}
	for b.Loop() {
		for ki, kind := range kinds {
			rng := rand.New(rand.NewPCG(42, uint64(ki)))
			s := &sim{rng: rng}
			var halts, naiveHalts, onceHalts, naiveOnce int
			var when, naiveWhen []float64
			for range paths {
				src := &pathSource{start: start, cum: map[string][][]float64{}}
				// A fixed order of draws keeps the figures the same run after run.
				for _, side := range []struct {
					v    string
					dist []float64
					rate int
				}{{"v2", kind.dist, rateC}, {"v1", baseDist, rateB}} {
					v, dist, rate := side.v, side.dist, side.rate
					mins := make([][]float64, minutes+1)
					mins[0] = make([]float64, len(dist))
					for m := 1; m <= minutes; m++ {
						mins[m] = slices.Clone(mins[m-1])
						s.draw(dist, rate, mins[m])
					}
					src.cum[v] = mins
				}
				clock := start
				m, err := NewMeasurer(src, MeasurerConfig{})
				if err != nil {
					b.Fatal(err)
				}
				e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return latencySet(canaryPolicy()) },
					Deploys: fakeDeploys{deploy.ID: deploy}, Clock: func() time.Time { return clock }})
				if err != nil {
					b.Fatal(err)
				}
				halted, naiveHalted := 0, 0
				for min := 1; min <= minutes; min++ {
					clock = start.Add(time.Duration(min) * time.Minute)
					if halted == 0 && latencyVerdict(b, e) == Fail {
						halted = min
					}
					if naiveHalted == 0 && naiveReject(src.cum["v2"][min], src.cum["v1"][min], tol, alpha) {
						naiveHalted = min
					}
				}
				if halted > 0 {
					halts++
					when = append(when, float64(halted))
				}
				if naiveHalted > 0 {
					naiveHalts++
					naiveWhen = append(naiveWhen, float64(naiveHalted))
				}
				if shiftTest(src.cum["v2"][minutes], src.cum["v1"][minutes], tol, alpha).reject {
					onceHalts++
				}
				if naiveReject(src.cum["v2"][minutes], src.cum["v1"][minutes], tol, alpha) {
					naiveOnce++
				}
			}
			b.ReportMetric(float64(halts)/paths, kind.name+"-halt-rate")
			b.ReportMetric(median(when), kind.name+"-median-min")
			b.ReportMetric(float64(onceHalts)/paths, kind.name+"-once-halt-rate")
			b.ReportMetric(float64(naiveHalts)/paths, kind.name+"-naive-halt-rate")
			b.ReportMetric(median(naiveWhen), kind.name+"-naive-median-min")
			b.ReportMetric(float64(naiveOnce)/paths, kind.name+"-naive-once-halt-rate")
		}
	}
}

func latencyVerdict(b *testing.B, e *Engine) Verdict {
	a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", DeployID: "dep_1"})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range a.Checks {
		if c.Kind == KindCanaryLatency {
			return c.Verdict
		}
	}
	b.Fatal("no canary-latency check")
	return ""
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
