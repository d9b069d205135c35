package gate

// Anytime-valid tests for the canary comparison and the verification
// check: confidence sequences (CS), sequences of intervals that cover the
// true figure at every look at once, with probability at least the
// confidence, however many looks there are and however they are spaced
// (docs/statistics.md). Pure functions: no I/O.
//
// Both take the cumulative counts since the deploy began, the only thing a
// source gives at each ask, and are indexed by a "time" that only grows
// with those counts, so a look at any instant is a look at some point of
// one and the same sequence.

import "math"

// Test names shown in a check's answer (Check.Test).
const (
	// TestNormalMixtureCS: the canary comparison. A normal-mixture
	// confidence sequence for the difference of the canary's and the
	// baseline's error ratios, each end one-sided, indexed by the
	// information 1/Var (Robbins' mixture; Howard, Ramdas, McAuliffe &
	// Sekhon 2021, the normal mixture; asymptotic validity with a
	// plug-in variance: Waudby-Smith et al., "Time-uniform central limit
	// theory and asymptotic confidence sequences").
	TestNormalMixtureCS = "normal-mixture-cs"
	// TestBetaBinomialCS: the verification check. An exact confidence
	// sequence for the new version's error ratio: the beta-binomial
	// mixture likelihood ratio (Robbins 1970; Lai 1976; Howard et al.
	// 2021, conjugate mixtures), valid at every look for Bernoulli events.
	TestBetaBinomialCS = "beta-binomial-cs"
	// TestPointEstimate: a raw SLI (a ratio measured directly, no event
	// counts) is judged on its point estimate; no sequential guarantee.
	TestPointEstimate = "point-estimate"
	// The fixed-sample rules the gate used before, kept for the
	// decision-quality benchmark (Engine.fixedSample).
	testAgrestiCaffo       = "agresti-caffo (fixed-sample)"
	testFixedPointEstimate = "point-estimate (fixed-sample)"
)

// mixtureRho is the precision ρ of the normal mixture that makes its
// two-sided boundary tightest at intrinsic time vOpt for level alpha
// (Howard et al. 2021; the same choice as their confseq library's
// TwoSidedNormalMixture::best_rho).
func mixtureRho(vOpt, alpha float64) float64 {
	l := 2 * math.Log(1/alpha)
	return vOpt / (l + math.Log1p(l))
}

// normalMixtureBound is the two-sided normal-mixture boundary: for a
// process S with variance process v that is (asymptotically) a Brownian
// motion in v, P(∃v: |S(v)| ≥ bound(v)) ≤ alpha, by Ville's inequality on
// the mixture martingale sqrt(ρ/(v+ρ))·exp(S²/(2(v+ρ))).
func normalMixtureBound(v, rho, alpha float64) float64 {
	return math.Sqrt((v + rho) * (math.Log1p(v/rho) + 2*math.Log(1/alpha)))
}

// diffTuning is the intrinsic time (information, 1/Var of the difference)
// at which the canary's boundary is made tightest: where its half-width
// is about the tolerance, which is where deciding a canary near the
// tolerance happens. With no tolerance it is tuned at 0.1 percentage
// point. It depends on the policy only, never on the data.
func diffTuning(tolerance, alpha float64) float64 {
	scale := tolerance
	if !(scale > 0) {
		scale = 0.001
	}
	l := 2 * math.Log(1/alpha)
	return (l + math.Log1p(l) + 2) / (scale * scale)
}

// oneSidedLogMixture is the log of the one-sided normal mixture
// martingale: exp(λS − λ²v/2) mixed over λ ≥ 0 with a half-normal prior of
// precision ρ, which is 2·sqrt(ρ/(v+ρ))·exp(S²/(2(v+ρ)))·Φ(S/sqrt(v+ρ))
// (Howard et al. 2021; confseq's OneSidedNormalMixture). Valid for
// S ≥ 0, where it increases with S.
func oneSidedLogMixture(s, v, rho float64) float64 {
	return 0.5*math.Log(4*rho/(v+rho)) + s*s/(2*(v+rho)) + math.Log(0.5*math.Erfc(-s/math.Sqrt(2*(v+rho))))
}

// diffBound is a one-sided boundary: P(∃v: S(v) ≥ bound(v)) ≤ alpha,
// and by symmetry the same for −S, so each end of d̂ ± bound·V errs with
// probability at most alpha, at every look at once. It is the s at which
// a mixture of two one-sided normal mixtures reaches 1/alpha: 9/10 tuned
// at vOpt (a difference about the tolerance), 1/10 at vOpt/100 (ten
// times as large, told apart in a hundredth of the traffic), so that a
// grossly worse canary halts early too. A mixture of test martingales is
// one, so Ville's inequality still gives alpha. Found by bisection.
func diffBound(v, vOpt, alpha float64) float64 {
	// confseq tunes a one-sided mixture as a two-sided one at 2·alpha.
	r1, r2 := mixtureRho(vOpt, 2*alpha), mixtureRho(vOpt/100, 2*alpha)
	const w1, w2 = 0.9, 0.1
	logM := func(s float64) float64 {
		return logSumExp(
			math.Log(w1)+oneSidedLogMixture(s, v, r1),
			math.Log(w2)+oneSidedLogMixture(s, v, r2))
	}
	level := math.Log(1 / alpha)
	// For s ≥ 0 the one-sided mixture is at least the two-sided one, so
	// either component's two-sided boundary at w·alpha is an upper end.
	hi := math.Min(normalMixtureBound(v, r1, w1*alpha), normalMixtureBound(v, r2, w2*alpha))
	return bisect(logM, level, 0, hi)
}

// DiffCS is the canary's confidence sequence for d = p_c − p_b, the
// difference of the canary's and the baseline's error ratios.
//
// "Time" is the information τ = 1/V with V = p̃_c(1−p̃_c)/n_c +
// p̃_b(1−p̃_b)/n_b, the variance of the difference of the observed ratios
// (p̃ below).
// Whatever the traffic of either side and however it changes (a canary
// at 5 % then 50 % of the traffic), as long as both counts only grow,
// Cov(d̂(s), d̂(t)) = V(t) for s before t, so (d̂ − d)·τ is, in the normal
// limit, a Brownian motion in τ: the normal-mixture boundary then holds
// at every τ at once, hence at every look. p̃ starts from
// (bad+1)/(n+2) (the Agresti–Caffo pseudo-counts), which keeps the
// variance positive at zero errors; the centre is the observed
// difference.
//
// lo and hi are in [−1, 1]; P(∃ look: d < lo) ≤ alpha and P(∃ look:
// d > hi) ≤ alpha (in the normal limit): each end is a one-sided
// anytime-valid bound at 1 − alpha, together a 1 − 2·alpha sequence.
// With d at the tolerance, P(ever halt) ≤ alpha and P(ever pass) ≤ alpha. The latency comparison can use it per histogram bucket:
// the shares of requests slower than each boundary, with alpha split over
// the k−1 boundaries (Bonferroni).
func DiffCS(badC, nC, badB, nB, alpha, tolerance float64) (lo, hi float64) {
	badC, nC = clampCounts(badC, nC)
	badB, nB = clampCounts(badB, nB)
	if nC <= 0 || nB <= 0 || !(alpha > 0 && alpha < 1) {
		return -1, 1
	}
	pc, pb := badC/nC, badB/nB
	// The variances are taken where the decision is made: at the
	// tolerance, d = tolerance, the boundary between halt and pass. The
	// canary's at max(its ratio, the baseline's + tolerance), the
	// baseline's at max(its ratio, the canary's − tolerance): never below
	// either side's own estimate, so a side that has seen few errors yet
	// (a canary with one error in its first 1,000 requests, truly at
	// 0.55 %) does not make the interval thin enough to pass it. Below
	// the tolerance this overstates the variance (a slower pass), never
	// understates it.
	tol := tolerance
	if !(tol > 0) {
		tol = 0
	}
	tc, tb := (badC+1)/(nC+2), (badB+1)/(nB+2)
	vc := math.Min(math.Max(tc, tb+tol), 0.5)
	vb := math.Min(math.Max(tb, tc-tol), 0.5)
	v := vc*(1-vc)/nC + vb*(1-vb)/nB
	tau := 1 / v
	// |d̂ − d|·τ ≤ bound(τ)  ⇔  |d̂ − d| ≤ bound(τ)·V.
	r := diffBound(tau, diffTuning(tolerance, alpha), alpha) * v
	d := pc - pb
	// NaN cannot arise from clamped counts; were it to, the interval is
	// the widest one, which decides nothing.
	return clamp(d-r, -1, 1, -1), clamp(d+r, -1, 1, 1)
}

// ProportionCS is the verification's confidence sequence for p, the error
// ratio of one version, from bad of n events: the set of p whose
// beta-binomial mixture likelihood ratio
//
//	M_n(p) = ∫ q^bad (1−q)^(n−bad) dπ(q) / (p^bad · (1−p)^(n−bad))
//	       = B(a+bad, b+n−bad) / (B(a,b) · p^bad · (1−p)^(n−bad))   for π = Beta(a,b)
//
// is below 1/alpha. For events that are Bernoulli(p) given the past,
// M_n(p) is a martingale with mean 1 in n for every fixed prior Beta(a,b),
// so by Ville's inequality P(∃n: M_n(p) ≥ 1/alpha) ≤ alpha: exact, not
// asymptotic, at every look, for any n including zero errors. "Time" is
// the number of events n.
//
// The prior is centred on the threshold the check compares with (center,
// e.g. maxBurnRate × (1 − target)), with the spread that makes the
// sequence tightest at about 32/center events: where a version burning
// half (or twice) the threshold can be told apart. It depends on the
// policy only, never on the data.
func ProportionCS(bad, n, alpha, center float64) (lo, hi float64) {
	bad, n = clampCounts(bad, n)
	if n <= 0 || !(alpha > 0 && alpha < 1) {
		return 0, 1
	}
	a, b := betaPrior(center, alpha)
	logThreshold := math.Log(1 / alpha)
	// The prior is a mixture: 9/10 Beta(a, b) around the threshold, 1/10
	// uniform, so that a ratio far from the threshold (100 % errors) gets
	// a tight interval too. A mixture of priors is still a prior: the
	// guarantee is unchanged, and log M stays convex in p.
	lbPost := logSumExp(
		math.Log(0.9)+lbeta(a+bad, b+n-bad)-lbeta(a, b),
		math.Log(0.1)+lbeta(1+bad, 1+n-bad)-lbeta(1, 1))
	logM := func(p float64) float64 {
		return lbPost - xlogy(bad, p) - xlogy(n-bad, 1-p)
	}
	phat := bad / n
	// log M is convex in p with its minimum (≤ 0) at phat: bisect each side.
	lo = 0
	if bad > 0 && logM(0) > logThreshold {
		lo = bisect(logM, logThreshold, phat, 0)
	}
	hi = 1
	if bad < n && logM(1) > logThreshold {
		hi = bisect(logM, logThreshold, phat, 1)
	}
	return clamp(lo, 0, 1, 0), clamp(hi, 0, 1, 1)
}

// betaPrior is the Beta(a, b) prior of ProportionCS: mean center, and the
// concentration of the normal mixture tuned at 32/center events (the
// mixture's ρ in the units of the number of events: ρ/(p(1−p)) = κ+1).
func betaPrior(center, alpha float64) (a, b float64) {
	m := center
	if !(m > 0) || math.IsNaN(m) {
		m = 1e-6
	}
	m = math.Min(m, 0.5)
	nOpt := 32 * (1 - m) / m
	kappa := mixtureRho(nOpt, alpha) - 1
	kappa = math.Max(kappa, 2)
	return kappa * m, kappa * (1 - m)
}

// bisect finds p between from (where f ≤ level) and to (where f > level)
// with f(p) = level, to double precision.
func bisect(f func(float64) float64, level, from, to float64) float64 {
	in, out := from, to
	for range 200 {
		mid := (in + out) / 2
		if mid == in || mid == out {
			break
		}
		if f(mid) > level {
			out = mid
		} else {
			in = mid
		}
	}
	// The boundary of the set {f ≤ level}, rounded outwards.
	return out
}

// lbeta is log B(a, b).
func lbeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// logSumExp is log(e^x + e^y) without overflow.
func logSumExp(x, y float64) float64 {
	if x < y {
		x, y = y, x
	}
	return x + math.Log1p(math.Exp(y-x))
}

// xlogy is x·log(y) with 0·log(0) = 0.
func xlogy(x, y float64) float64 {
	if x == 0 {
		return 0
	}
	return x * math.Log(y)
}

// clampCounts makes counts usable: NaN, ±Inf and negatives give no
// events; bad is kept in [0, n] (extrapolated counters may put it a hair
// outside).
func clampCounts(bad, n float64) (float64, float64) {
	if math.IsNaN(n) || math.IsInf(n, 0) || n < 0 || math.IsNaN(bad) || math.IsInf(bad, 0) {
		return 0, 0
	}
	return clamp(bad, 0, n, 0), n
}

// clamp keeps v in [lo, hi]; NaN becomes nan.
func clamp(v, lo, hi, nan float64) float64 {
	switch {
	case math.IsNaN(v):
		return nan
	case v < lo:
		return lo
	case v > hi:
		return hi
	}
	return v
}
