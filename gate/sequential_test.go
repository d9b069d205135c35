package gate

import (
	"math"
	"math/rand/v2"
	"testing"
)

// binomial draws Binomial(n, p) exactly, by the geometric gaps between
// successes: O(n·p) draws, fine for the few errors per minute of the
// simulations.
func binomial(r *rand.Rand, n int, p float64) int {
	if p <= 0 || n <= 0 {
		return 0
	}
	if p >= 1 {
		return n
	}
	if p > 0.5 {
		return n - binomial(r, n, 1-p)
	}
	l := math.Log1p(-p)
	k, pos := 0, 0
	for {
		u := 1 - r.Float64() // (0, 1]
		pos += int(math.Floor(math.Log(u)/l)) + 1
		if pos > n {
			return k
		}
		k++
	}
}

func TestBinomialSamplerHasTheRightMean(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var sum float64
	for range 20000 {
		sum += float64(binomial(r, 1000, 0.01))
	}
	if m := sum / 20000; math.Abs(m-10) > 0.1 {
		t.Errorf("mean of Binomial(1000, 0.01) = %v, want 10", m)
	}
}

// A path is a stream of per-minute counts; a look is made every minute.
type arm struct {
	perMinute func(minute int) int // requests in that minute
	p         float64
}

func TestDiffCSCoversTheTrueDifferenceAtEveryLook(t *testing.T) {
	tests := map[string]struct{ canary, baseline arm }{
		"equal traffic at the tolerance": {
			canary:   arm{func(int) int { return 1000 }, 0.015},
			baseline: arm{func(int) int { return 1000 }, 0.01},
		},
		"a small canary against a big baseline": {
			canary:   arm{func(int) int { return 200 }, 0.01},
			baseline: arm{func(int) int { return 2000 }, 0.01},
		},
		// A lucky canary (1 error in its first 1,000 requests, truly at
		// 0.55 %) made its own variance too small: 8 % of paths missed.
		"a small canary at the tolerance against a big baseline with few errors": {
			canary:   arm{func(int) int { return 100 }, 0.0055},
			baseline: arm{func(int) int { return 5000 }, 0.0005},
		},
		"a canary whose share of the traffic grows step by step": {
			canary: arm{func(m int) int {
				switch {
				case m < 10:
					return 100
				case m < 30:
					return 500
				}
				return 1500
			}, 0.02},
			baseline: arm{func(m int) int { return 2000 - min(1500, 100+m*50) }, 0.01},
		},
	}
	const paths, minutes, alpha = 2000, 60, 0.05
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 11))
			d := tc.canary.p - tc.baseline.p
			// Each end is a one-sided bound: count the paths whose lower
			// end ever rises above d (a wrong halt at the tolerance) and
			// those whose upper end ever falls below it (a wrong pass).
			above, below := 0, 0
			for range paths {
				var bc, nc, bb, nb float64
				var wasAbove, wasBelow bool
				for m := range minutes {
					n := tc.canary.perMinute(m)
					bc += float64(binomial(r, n, tc.canary.p))
					nc += float64(n)
					n = tc.baseline.perMinute(m)
					bb += float64(binomial(r, n, tc.baseline.p))
					nb += float64(n)
					if nc < 100 || nb < 100 { // the gate's minEvents floor
						continue
					}
					lo, hi := DiffCS(bc, nc, bb, nb, alpha, 0.005)
					wasAbove = wasAbove || lo > d
					wasBelow = wasBelow || hi < d
				}
				if wasAbove {
					above++
				}
				if wasBelow {
					below++
				}
			}
			// Nominal ≤ 5 % each; sd of a rate over 2,000 paths is 0.5 %.
			t.Logf("lower end above d on %.2f%%, upper end below d on %.2f%% of %d paths", 100*float64(above)/paths, 100*float64(below)/paths, paths)
			for side, n := range map[string]int{"lower end above": above, "upper end below": below} {
				if rate := float64(n) / paths; rate > alpha+0.015 {
					t.Errorf("the sequence's %s d = %v at some look on %.1f%% of the paths, want ≤ %.0f%%", side, d, 100*rate, 100*alpha)
				}
			}
		})
	}
}

func TestProportionCSCoversTheTrueRatioAtEveryLook(t *testing.T) {
	tests := map[string]struct {
		perMinute int
		p, center float64
	}{
		"at the threshold of a 99.9% target burning 2x": {perMinute: 1000, p: 0.002, center: 0.002},
		"ten times the threshold, low traffic":          {perMinute: 200, p: 0.02, center: 0.002},
		"a tenth of the threshold":                      {perMinute: 2000, p: 0.0002, center: 0.002},
	}
	const paths, minutes, alpha = 2000, 60, 0.05
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 5))
			missed := 0
			for range paths {
				var bad, n float64
				for range minutes {
					bad += float64(binomial(r, tc.perMinute, tc.p))
					n += float64(tc.perMinute)
					lo, hi := ProportionCS(bad, n, alpha, tc.center)
					if tc.p < lo || tc.p > hi {
						missed++
						break
					}
				}
			}
			// Exact: ≤ 5 % whatever the looks; sd over 2,000 paths 0.5 %.
			t.Logf("missed p at some look on %.2f%% of %d paths", 100*float64(missed)/paths, paths)
			if rate := float64(missed) / paths; rate > alpha+0.015 {
				t.Errorf("the sequence missed p = %v at some look on %.1f%% of the paths, want ≤ %.0f%%", tc.p, 100*rate, 100*alpha)
			}
		})
	}
}

func TestSequencesNarrowAsEventsAccumulate(t *testing.T) {
	prevD, prevP := math.Inf(1), math.Inf(1)
	for _, n := range []float64{100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e9} {
		lo, hi := DiffCS(0.01*n, n, 0.01*n, n, 0.05, 0.005)
		if w := hi - lo; !(w < prevD) {
			t.Errorf("DiffCS width at n=%g is %v, not below %v", n, w, prevD)
		} else {
			prevD = w
		}
		lo, hi = ProportionCS(0.002*n, n, 0.05, 0.002)
		if w := hi - lo; !(w < prevP) {
			t.Errorf("ProportionCS width at n=%g is %v, not below %v", n, w, prevP)
		} else {
			prevP = w
		}
	}
}

func TestSequencesAtTheEdges(t *testing.T) {
	type iv struct{ lo, hi float64 }
	diff := map[string]struct {
		badC, nC, badB, nB float64
		check              func(lo, hi float64) bool
	}{
		// (With a tolerance the variances are taken at it, which is not
		// symmetric.)
		"with no tolerance swapping the sides mirrors the interval": {badC: 30, nC: 2000, badB: 10, nB: 5000, check: func(_, _ float64) bool {
			lo, hi := DiffCS(30, 2000, 10, 5000, 0.05, 0)
			l2, h2 := DiffCS(10, 5000, 30, 2000, 0.05, 0)
			return math.Abs(lo+h2) < 1e-15 && math.Abs(hi+l2) < 1e-15 && lo > -1 && hi < 1
		}},
		"equal sides are centred on zero":              {badC: 50, nC: 5000, badB: 50, nB: 5000, check: func(lo, hi float64) bool { return lo == -hi && hi > 0 }},
		"zero errors on both stay below the tolerance": {badC: 0, nC: 10000, badB: 0, nB: 10000, check: func(lo, hi float64) bool { return lo < 0 && hi > 0 && hi < 0.005 }},
		"a billion events give a thin finite interval": {badC: 1e7, nC: 1e9, badB: 1e7, nB: 1e9, check: func(lo, hi float64) bool { return hi > 0 && hi < 1e-4 && lo == -hi }},
		"no events decide nothing":                     {badC: 0, nC: 0, badB: 0, nB: 100, check: func(lo, hi float64) bool { return lo == -1 && hi == 1 }},
		"NaN counts decide nothing":                    {badC: math.NaN(), nC: 100, badB: 0, nB: 100, check: func(lo, hi float64) bool { return lo < 0 && hi > 0 }},
		"bad above total is read as all bad":           {badC: 120, nC: 100, badB: 0, nB: 100, check: func(lo, hi float64) bool { return hi == 1 && lo > 0.5 }},
		"infinite totals decide nothing":               {badC: 1, nC: math.Inf(1), badB: 0, nB: 100, check: func(lo, hi float64) bool { return lo == -1 && hi == 1 }},
	}
	for name, tc := range diff {
		t.Run("DiffCS: "+name, func(t *testing.T) {
			lo, hi := DiffCS(tc.badC, tc.nC, tc.badB, tc.nB, 0.05, 0.005)
			if math.IsNaN(lo) || math.IsNaN(hi) || lo > hi || !tc.check(lo, hi) {
				t.Errorf("interval %v", iv{lo, hi})
			}
		})
	}
	prop := map[string]struct {
		bad, n float64
		check  func(lo, hi float64) bool
	}{
		"zero errors: the lower bound is 0":            {bad: 0, n: 10000, check: func(lo, hi float64) bool { return lo == 0 && hi > 0 && hi < 0.002 }},
		"all errors: the upper bound is 1":             {bad: 100, n: 100, check: func(lo, hi float64) bool { return hi == 1 && lo > 0.5 }},
		"a billion events give a thin finite interval": {bad: 2e6, n: 1e9, check: func(lo, hi float64) bool { return lo < 0.002 && hi > 0.002 && hi-lo < 2e-5 }},
		"no events decide nothing":                     {bad: 0, n: 0, check: func(lo, hi float64) bool { return lo == 0 && hi == 1 }},
		"NaN counts decide nothing":                    {bad: math.NaN(), n: math.NaN(), check: func(lo, hi float64) bool { return lo == 0 && hi == 1 }},
		"fractional extrapolated counts are usable":    {bad: 2.7, n: 1000.4, check: func(lo, hi float64) bool { return lo > 0 && hi > 2.7/1000.4 }},
	}
	for name, tc := range prop {
		t.Run("ProportionCS: "+name, func(t *testing.T) {
			lo, hi := ProportionCS(tc.bad, tc.n, 0.05, 0.002)
			if math.IsNaN(lo) || math.IsNaN(hi) || lo > hi || !tc.check(lo, hi) {
				t.Errorf("interval %v", iv{lo, hi})
			}
		})
	}
	for _, center := range []float64{0, -1, math.NaN(), 1e-12, 0.5, 0.9, 2} {
		if lo, hi := ProportionCS(10, 1000, 0.05, center); math.IsNaN(lo) || math.IsNaN(hi) || lo > 0.01 || hi < 0.01 {
			t.Errorf("center %v: interval [%v, %v] does not hold 1%%", center, lo, hi)
		}
	}
}
