package gate

// Decision-quality benchmark (issue #8, "What to build" 6): simulated
// rollouts through the real Engine, asked every minute from minDuration
// to 60 minutes (first promote or halt wins, as Argo Rollouts, Flagger and
// `slogate check --wait` do) and once only at 60 minutes, for the
// fixed-sample rules the gate used before and the anytime-valid tests,
// side by side on the same simulated paths. Figures, not assertions: run
// with `make bench` (or go test -run '^$' -bench Quality ./gate).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

const (
	simMinutes   = 60
	simMinLook   = 10 // minDuration, in minutes
	simPaths     = 1000
	simTolerance = 0.005
	simBaseline  = 0.01 // baseline error ratio
	simTarget    = 0.999
	simMaxBurn   = 2.0
)

// simPath is one rollout: per version, cumulative bad and total events at
// the end of each minute since the deploy began (index 0: no events).
type simPath map[string]*[2][simMinutes + 1]float64

func newPath(r *rand.Rand, arms map[string]struct {
	perMinute int
	p         float64
}) simPath {
	path := simPath{}
	for v, a := range arms {
		var cum [2][simMinutes + 1]float64
		for m := 1; m <= simMinutes; m++ {
			cum[0][m] = cum[0][m-1] + float64(binomial(r, a.perMinute, a.p))
			cum[1][m] = cum[1][m-1] + float64(a.perMinute)
		}
		path[v] = &cum
	}
	return path
}

// simSource serves a path's counts for any range that starts at the
// deploy: the minutes elapsed at its end. A version the path does not
// know has series with no events.
type simSource struct {
	start time.Time
	path  simPath
}

func (s *simSource) Counts(_ context.Context, _ slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error) {
	m := min(int(r.End.Sub(s.start)/time.Minute), simMinutes)
	cum, ok := s.path[scope["version"]]
	if !ok || m < 0 {
		return slo.Counts{}, nil
	}
	return slo.Counts{Good: cum[1][m] - cum[0][m], Total: cum[1][m]}, nil
}

// outcome is what a client acting on the first promote or halt sees.
type outcome struct {
	decision slogate.Decision // slogate.Wait: none within 60 minutes
	minute   int
}

type simTally struct{ poll, once []outcome }

type simRule struct {
	name  string
	fixed bool
}

var simRules = []simRule{{"old fixed-sample", true}, {"new anytime-valid", false}}

// simulate runs paths rollouts of one cell through a real Engine for
// each rule, on 2 workers, each path seeded by its index.
func simulate(b *testing.B, policy slo.GatePolicy, seed uint64, gen func(r *rand.Rand) simPath) map[string]*simTally {
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s := set(&policy)
	s.Objectives[0].Target = simTarget
	deploys := fakeDeploys{"dep_1": {ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: start}}
	req := Request{Service: "checkout", Environment: "production", DeployID: "dep_1"}
	out := map[string]*simTally{}
	for _, rule := range simRules {
		out[rule.name] = &simTally{poll: make([]outcome, simPaths), once: make([]outcome, simPaths)}
	}
	const workers = 2
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			src := &simSource{start: start}
			var clock time.Time
			m, err := NewMeasurer(src, MeasurerConfig{})
			if err != nil {
				b.Error(err)
				return
			}
			e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, Deploys: deploys, Clock: func() time.Time { return clock }})
			if err != nil {
				b.Error(err)
				return
			}
			ask := func(minute int) slogate.Decision {
				clock = start.Add(time.Duration(minute) * time.Minute)
				a, err := e.Evaluate(context.Background(), req)
				if err != nil {
					b.Error(err)
				}
				return a.Decision
			}
			for i := w; i < simPaths; i += workers {
				src.path = gen(rand.New(rand.NewPCG(seed, uint64(i))))
				for _, rule := range simRules {
					e.fixedSample = rule.fixed
					o := outcome{decision: slogate.Wait}
					for minute := simMinLook; minute <= simMinutes; minute++ {
						if d := ask(minute); d != slogate.Wait {
							o = outcome{d, minute}
							break
						}
					}
					out[rule.name].poll[i] = o
					out[rule.name].once[i] = outcome{ask(simMinutes), simMinutes}
				}
			}
		})
	}
	wg.Wait()
	return out
}

type simStats struct{ promote, halt, median float64 }

func stats(os []outcome) simStats {
	var st simStats
	var mins []int
	for _, o := range os {
		switch o.decision {
		case slogate.Promote:
			st.promote++
		case slogate.Halt:
			st.halt++
		}
		if o.decision != slogate.Wait {
			mins = append(mins, o.minute)
		}
	}
	st.promote /= float64(len(os))
	st.halt /= float64(len(os))
	st.median = -1
	if len(mins) > 0 {
		slices.Sort(mins)
		st.median = float64(mins[len(mins)/2])
	}
	return st
}

type simCell struct {
	name string
	// goal says what the kind should do: "≤5%" both rates, or the
	// decision that should come within 60 minutes on ≥ 95 % of paths.
	goal   string
	policy slo.GatePolicy
	gen    func(r *rand.Rand) simPath
}

var (
	simOnce sync.Map // benchmark name → *simResult
)

type simResult struct {
	once sync.Once
	rows map[string]map[string]*simTally
}

// runCells simulates every cell once per process (a benchmark function is
// called again with a larger b.N; the figures do not depend on it) and
// reports each as a sub-benchmark, then prints the table.
func runCells(b *testing.B, cells []simCell) {
	v, _ := simOnce.LoadOrStore(b.Name(), &simResult{})
	res := v.(*simResult)
	res.once.Do(func() {
		res.rows = map[string]map[string]*simTally{}
		for i, c := range cells {
			res.rows[c.name] = simulate(b, c.policy, uint64(1000+i), c.gen)
		}
	})
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n%d paths per cell; looks every minute from %d to %d min (first promote/halt wins), or once at %d min\n", simPaths, simMinLook, simMinutes, simMinutes)
	fmt.Fprintf(&tbl, "%-44s %-18s %-7s | %8s %8s %9s | %8s %8s\n", "cell", "rule", "goal", "promote", "halt", "median", "once:pro", "once:halt")
	for _, c := range cells {
		for _, rule := range simRules {
			t := res.rows[c.name][rule.name]
			p, o := stats(t.poll), stats(t.once)
			med := "—"
			if p.median >= 0 {
				med = fmt.Sprintf("%.0f min", p.median)
			}
			fmt.Fprintf(&tbl, "%-44s %-18s %-7s | %7.1f%% %7.1f%% %9s | %7.1f%% %7.1f%%\n", c.name, rule.name, c.goal, 100*p.promote, 100*p.halt, med, 100*o.promote, 100*o.halt)
		}
	}
	// Printed, not logged: a parent benchmark's log is not shown.
	fmt.Print(tbl.String())
	for _, c := range cells {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
			}
			for _, rule := range simRules {
				t := res.rows[c.name][rule.name]
				p, o := stats(t.poll), stats(t.once)
				tag := "new"
				if rule.fixed {
					tag = "old"
				}
				b.ReportMetric(100*p.promote, tag+"-poll-promote-%")
				b.ReportMetric(100*p.halt, tag+"-poll-halt-%")
				b.ReportMetric(p.median, tag+"-poll-median-min")
				b.ReportMetric(100*o.promote, tag+"-once-promote-%")
				b.ReportMetric(100*o.halt, tag+"-once-halt-%")
			}
		})
	}
}

type simArm = struct {
	perMinute int
	p         float64
}

func BenchmarkCanaryDecisionQuality(b *testing.B) {
	policy := slo.DefaultPolicy("checkout")
	policy.Name, policy.Default = "checkout-production", false
	policy.Budget.Disabled = true
	policy.Verification.Disabled = true // the canary comparison alone
	policy.Canary = &slo.CanaryPolicy{Tolerance: simTolerance, Confidence: 0.95}
	var cells []simCell
	for _, perMinute := range []int{200, 1000, 2000} {
		for _, k := range []struct {
			name, goal string
			p          float64
		}{
			{"at the tolerance", "≤5%", simBaseline + simTolerance},
			{"3x the tolerance worse", "halt", simBaseline + 3*simTolerance},
			{"equal", "promote", simBaseline},
		} {
			cells = append(cells, simCell{
				name: fmt.Sprintf("%d req/min, canary %s", perMinute, k.name), goal: k.goal, policy: policy,
				gen: func(r *rand.Rand) simPath {
					return newPath(r, map[string]simArm{"v2": {perMinute, k.p}, "v1": {perMinute, simBaseline}})
				},
			})
		}
	}
	runCells(b, cells)
}

func BenchmarkVerificationDecisionQuality(b *testing.B) {
	policy := slo.DefaultPolicy("checkout") // minDuration 10m, minEvents 100, maxBurnRate 2
	policy.Name, policy.Default = "checkout-production", false
	policy.Budget.Disabled = true
	var cells []simCell
	budget := 1 - simTarget
	for _, perMinute := range []int{10, 200, 1000} {
		for _, k := range []struct {
			name, goal string
			burn       float64
		}{
			{"at maxBurnRate (2x)", "≤5%", simMaxBurn},
			{"burning 10x", "halt", 10},
			{"burning 0.5x", "promote", 0.5},
		} {
			cells = append(cells, simCell{
				name: fmt.Sprintf("%d req/min, version %s", perMinute, k.name), goal: k.goal, policy: policy,
				gen: func(r *rand.Rand) simPath {
					return newPath(r, map[string]simArm{"v2": {perMinute, k.burn * budget}})
				},
			})
		}
	}
	runCells(b, cells)
}
