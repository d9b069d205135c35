package gate

// The canary's latency distribution against the baseline's: an
// anytime-valid test that a canary's requests got slower, bucket by bucket,
// on a Prometheus histogram. docs/statistics.md ("Latency distributions")
// explains it for an SRE; this is the derivation.
//
// Data. For each version, the requests since the deploy began in each
// histogram bucket (sum by (le) of increase(x_bucket[w]), de-cumulated):
// c_1..c_k for the canary, b_1..b_k for the baseline, the last bucket
// ending at +Inf. At each bucket bound u_i (i < k) the requests slower than
// u_i are x_c(i) = Σ_{j>i} c_j of n_c = Σ c_j, and x_b(i) of n_b.
//
// Model. Each request of a version falls in a bucket independently, from
// that version's latency distribution, whichever version served the
// request before it: the traffic split between canary and baseline may be
// anything and change at any time (Argo's setWeight steps, Flagger's
// stepWeight), because the test conditions on which version served each
// request and never needs the split. Let S_c(i), S_b(i) be the
// probabilities that a canary or a baseline request is slower than u_i.
//
// Null (what must be shown false to halt): the canary is not slower by
// more than the tolerance δ (the policy's canary.tolerance) at any bound,
// S_c(i) − S_b(i) ≤ δ for every i. Only slower halts: a canary that got
// faster is in the null. δ is the effect-size floor: with a million
// requests a 0.01-point shift is real but does not halt.
//
// E-process. At bound i, with KT(x, n) the Beta(½,½) mixture of the
// binomial likelihood (the Krichevsky–Trofimov / Jeffreys Bayes marginal,
// as in Lindon & Malek's Dirichlet-multinomial tests with k = 2):
//
//	E_i = KT(x_c, n_c) · KT(x_b, n_b) / sup_{s_c − s_b ≤ δ} L(s_c; x_c, n_c) · L(s_b; x_b, n_b)
//
// For every (S_c, S_b) in the null the denominator is at least the
// likelihood at the truth, so E_i ≤ KT·KT / L_true, a Bayes factor of a
// mixture against a simple hypothesis: a nonnegative martingale of mean 1
// in the order requests arrive (each request's "slower than u_i" is
// Bernoulli(S(i)) of its version). The test's e-process is the mean
// E = (1/(k−1)) Σ_i E_i: a mean of such martingales under the same truth
// is one too. Ville's inequality gives P(E ever ≥ 1/α) ≤ α, however often
// and whenever the gate is asked (α = 1 − confidence): the gate halts when
// E ≥ 1/α. Since E ≤ max_i E_i, at a halt at least one bound has
// E_i ≥ 1/α by itself; those are the bounds the answer names as moved.
// E depends on the cumulative counts only, so the gate, which keeps no
// state between asks, computes it afresh at each ask.
//
// Sources: M. Lindon, A. Malek, "Anytime-Valid Inference for Multinomial
// Count Data", NeurIPS 2022 (arXiv:2011.03567) — Dirichlet/Beta mixture
// e-processes for count data, and the canary as a time-inhomogeneous
// counting process; M. Lindon, C. Sanden, V. Shirikian, "Rapid Regression
// Detection in Software Deployments through Sequential Testing", KDD 2022
// (arXiv:2205.14762) — canary vs baseline tested for one-sided stochastic
// order, which is what the bounds i = 1..k−1 test together; L. Wasserman,
// A. Ramdas, S. Balakrishnan, "Universal inference", PNAS 2020 — the
// composite null handled by its maximum likelihood in the denominator.
//
// A distribution test can only reject. The check therefore passes when
// minDuration has elapsed and both versions have minEvents requests
// without a shift shown; it never passes on missing data (no buckets,
// differing bounds, no requests are the policy's onNoData). Promotion
// evidence comes from the canary check on the same SLI (the share under
// the SLO's own bound, shown not worse), which runs next to it: this
// check only adds halts for requests that got slower elsewhere in the
// distribution.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// KindCanaryLatency is the kind of the latency-distribution check.
const KindCanaryLatency = "canary-latency"

// latencyTestName names the test in every answer.
const latencyTestName = "one-sided mixture e-process at every bucket bound (Lindon & Malek 2022; Lindon, Sanden & Shirikian 2022)"

// BucketSource measures a histogram SLI's request counts per bucket over a
// range, narrowed to a scope, sorted by bound with +Inf last.
// collectors.Mux satisfies it; the Measurer uses it when its Source does.
type BucketSource interface {
	Buckets(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) ([]slo.Bucket, error)
}

// errNoBucketSource: the Measurer's source measures no buckets.
var errNoBucketSource = errors.New("the source measures no histogram buckets")

// Buckets measures one range's buckets under the Measurer's shared limit
// and deadline, as Counts does.
func (m *Measurer) Buckets(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) ([]slo.Bucket, error) {
	bs, ok := m.src.(BucketSource)
	if !ok {
		return nil, fmt.Errorf("%s: %w", sli.Name, errNoBucketSource)
	}
	return measured(ctx, m, "measure buckets "+string(sli.SourceType()), "the buckets of "+sli.Name, sli, r, scope,
		func(ctx context.Context) ([]slo.Bucket, error) { return bs.Buckets(ctx, sli, r, scope) },
		func(span trace.Span, b []slo.Bucket) { span.SetAttributes(attribute.Int("slogate.buckets", len(b))) })
}

// LatencyComparison is the evidence of a canary-latency check.
type LatencyComparison struct {
	// Test names the statistical test.
	Test string `json:"test"`
	// EValue is the test's evidence that the canary is slower by more than
	// the tolerance (capped at 1e12 for display); it halts at Threshold.
	EValue    float64 `json:"eValue"`
	Threshold float64 `json:"threshold"`
	// Tolerance is how much larger the canary's share of requests slower
	// than any bound may be (the policy's canary.tolerance).
	Tolerance float64       `json:"tolerance"`
	Buckets   []BucketShift `json:"buckets"`
}

// BucketShift is one bucket of the comparison.
type BucketShift struct {
	// LE is the bucket's upper bound, as Prometheus labels it.
	LE string `json:"le"`
	// Canary and Baseline are the requests in the bucket, (previous le, le].
	Canary   float64 `json:"canary"`
	Baseline float64 `json:"baseline"`
	// SlowerCanary and SlowerBaseline are the shares of each version's
	// requests slower than LE (absent for +Inf).
	SlowerCanary   *float64 `json:"slowerCanary,omitempty"`
	SlowerBaseline *float64 `json:"slowerBaseline,omitempty"`
	// EValue is the evidence at this bound alone.
	EValue *float64 `json:"eValue,omitempty"`
	// Moved is true when this bound alone shows the canary slower.
	Moved bool `json:"moved,omitempty"`
}

// maxShownEValue caps the e-values shown in an answer (JSON has no +Inf).
const maxShownEValue = 1e12

// latencyCheck compares the canary's latency distribution with the
// baseline's over the same span, on the histogram h behind o's SLI: halt
// when the canary's requests are shown slower by more than the tolerance
// at some bucket bound, pass after minDuration and minEvents without such
// a shift, wait before. Differing bucket bounds, missing buckets and
// failed sources are no data.
func (e *Engine) latencyCheck(ctx context.Context, o slo.Objective, h slo.Histogram, p slo.GatePolicy, version, baseline string, d slogate.Deploy, hasDeploy bool, now time.Time) Check {
	cp := *p.Canary
	c := Check{Kind: KindCanaryLatency, SLO: o.Name, Target: o.Target}
	if !hasDeploy {
		// A configured check that cannot run is no data, never absent.
		return noData(c, p, fmt.Sprintf("no deploy of version %s is recorded for %s: the latencies cannot be compared since it began", version, o.Service))
	}
	if baseline == "" || baseline == version {
		return noData(c, p, fmt.Sprintf("no baseline version to compare the latency of %s with: give baselineVersion, or record the deploy with previousVersion", version))
	}
	r := slo.Range{Start: d.StartedAt, End: now}
	c.Window = &Window{Start: r.Start, End: r.End}
	label := p.Verification.VersionLabel
	elapsed := r.Duration()
	if q, err := h.BucketsExpr(max(elapsed, time.Second), slo.Scope{label: version}); err == nil {
		c.Query = q.String()
	}
	if elapsed < time.Minute {
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("canary %s began at %s: too early to compare latencies", version, hhmm(d.StartedAt))
		return c
	}
	early := elapsed < p.Verification.MinDuration
	versions := []string{version, baseline}
	got := make([][]slo.Bucket, 2)
	errs := make([]error, 2)
	done := make(chan struct{}, 2)
	for i, v := range versions {
		go func() {
			got[i], errs[i] = e.cfg.Measurer.Buckets(ctx, o.SLI, r, slo.Scope{label: v})
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	for i, v := range versions {
		switch err := errs[i]; {
		case err == nil:
		case errors.Is(err, slo.ErrNoData) && early:
			c.Verdict = Pending
			c.Reason = fmt.Sprintf("no requests of version %s in histogram %s yet to compare", v, h.Metric)
			return c
		case errors.Is(err, errNoBucketSource):
			return noData(c, p, fmt.Sprintf("latency distribution of version %s not measured: %v", v, err))
		default:
			return unmeasured(c, p, fmt.Sprintf("latency distribution of version %s not measured: %v", v, err), err)
		}
	}
	can, base := got[0], got[1]
	if !sameBounds(can, base) {
		return noData(c, p, fmt.Sprintf("histogram %s has different bucket bounds for canary %s (le %s) and baseline %s (le %s): the distributions cannot be compared bucket by bucket; give both versions the same buckets",
			h.Metric, version, boundList(can), baseline, boundList(base)))
	}
	if len(can) < 2 {
		return noData(c, p, fmt.Sprintf("histogram %s has no bucket bound but +Inf: there is no distribution to compare", h.Metric))
	}
	cc, bc := counts(can), counts(base)
	nC, nB := sum(cc), sum(bc)
	if nC == 0 || nB == 0 {
		if early {
			c.Verdict = Pending
			c.Reason = fmt.Sprintf("no requests yet to compare latencies: canary %s %.0f, baseline %s %.0f", version, nC, baseline, nB)
			return c
		}
		return noData(c, p, fmt.Sprintf("no requests to compare latencies: canary %s %.0f, baseline %s %.0f", version, nC, baseline, nB))
	}
	c.Canary = &Sample{Version: version, Good: under(can, h.Threshold), Total: nC}
	c.Baseline = &Sample{Version: baseline, Good: under(base, h.Threshold), Total: nB}
	c.Canary.ErrorRatio = ratio(nC-c.Canary.Good, nC)
	c.Baseline.ErrorRatio = ratio(nB-c.Baseline.Good, nB)
	if nC < p.Verification.MinEvents || nB < p.Verification.MinEvents {
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("too few requests to compare latencies: canary %s %.0f, baseline %s %.0f (need %.0f each)", version, nC, baseline, nB, p.Verification.MinEvents)
		return c
	}
	alpha := 1 - cp.Confidence
	res := shiftTest(cc, bc, cp.Tolerance, alpha)
	lc := &LatencyComparison{
		Test: latencyTestName, EValue: shown(res.logE), Threshold: math.Round(1e6/alpha) / 1e6, Tolerance: cp.Tolerance,
		Buckets: make([]BucketShift, len(can)),
	}
	var moved []string
	for j, b := range can {
		bs := BucketShift{LE: slo.FormatBound(b.UpperBound), Canary: cc[j], Baseline: bc[j]}
		if j < len(res.cuts) {
			cut := res.cuts[j]
			bs.SlowerCanary, bs.SlowerBaseline = f(cut.shareC), f(cut.shareB)
			bs.EValue, bs.Moved = f(shown(cut.logE)), cut.moved
			if cut.moved {
				moved = append(moved, fmt.Sprintf("%s vs %s slower than %s", pct(cut.shareC), pct(cut.shareB), bs.LE))
			}
		}
		lc.Buckets[j] = bs
	}
	c.Latency = lc
	evidence := fmt.Sprintf("e-value %s, halts at %s (%s confidence)", evalue(res.logE), evalue(math.Log(1/alpha)), pct(cp.Confidence))
	switch {
	case res.reject:
		c.Verdict = Fail
		c.Reason = fmt.Sprintf("canary %s is slower than baseline %s by more than %s of requests: %s (%s)",
			version, baseline, pct(cp.Tolerance), strings.Join(moved, ", "), evidence)
	case early:
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("canary %s latency not shown slower than baseline %s so far (%s); %s of %s elapsed",
			version, baseline, evidence, elapsed.Round(time.Second), p.Verification.MinDuration)
	default:
		c.Verdict = Pass
		c.Reason = fmt.Sprintf("canary %s latency not shown slower than baseline %s by more than %s of requests at any of %d bucket bounds (%s)",
			version, baseline, pct(cp.Tolerance), len(res.cuts), evidence)
	}
	return c
}

func sameBounds(a, b []slo.Bucket) bool {
	return slices.EqualFunc(a, b, func(x, y slo.Bucket) bool { return x.UpperBound == y.UpperBound })
}

func boundList(bs []slo.Bucket) string {
	s := make([]string, len(bs))
	for i, b := range bs {
		s[i] = slo.FormatBound(b.UpperBound)
	}
	return strings.Join(s, ", ")
}

// counts are the buckets' requests rounded to whole requests (increase()
// extrapolates, so Prometheus' figures are not whole).
func counts(bs []slo.Bucket) []float64 {
	out := make([]float64, len(bs))
	for i, b := range bs {
		out[i] = math.Max(0, math.Round(b.Count))
	}
	return out
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

// under counts the requests at most bound (rounded as counts does).
func under(bs []slo.Bucket, bound float64) float64 {
	t := 0.0
	for _, b := range bs {
		if b.UpperBound <= bound {
			t += math.Max(0, math.Round(b.Count))
		}
	}
	return t
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func shown(logE float64) float64 {
	if logE >= math.Log(maxShownEValue) {
		return maxShownEValue
	}
	return math.Exp(logE)
}

func evalue(logE float64) string {
	if logE >= math.Log(maxShownEValue) {
		return "≥ 1e12"
	}
	return fmt.Sprintf("%.3g", math.Exp(logE))
}

// shift is the outcome of shiftTest.
type shift struct {
	// logE is the log of the mean e-value over the bounds.
	logE   float64
	reject bool
	cuts   []cut
}

// cut is one bucket bound's part of the test.
type cut struct {
	shareC, shareB float64 // shares slower than the bound
	logE           float64
	moved          bool
}

// shiftTest runs the test on per-bucket counts of the canary and the
// baseline (same bounds, +Inf last) with tolerance tol at level alpha.
func shiftTest(can, base []float64, tol, alpha float64) shift {
	k := len(can)
	nC, nB := sum(can), sum(base)
	out := shift{logE: math.Inf(-1)}
	if k < 2 || nC == 0 || nB == 0 {
		return out
	}
	logThreshold := math.Log(1 / alpha)
	out.cuts = make([]cut, k-1)
	logs := make([]float64, k-1)
	xC, xB := nC, nB
	for i := 0; i < k-1; i++ {
		xC -= can[i]
		xB -= base[i]
		xC, xB = math.Max(xC, 0), math.Max(xB, 0)
		l := cutLogE(xC, nC, xB, nB, tol)
		logs[i] = l
		out.cuts[i] = cut{shareC: xC / nC, shareB: xB / nB, logE: l, moved: l >= logThreshold}
	}
	out.logE = logMeanExp(logs)
	out.reject = out.logE >= logThreshold
	return out
}

// cutLogE is log E_i at one bound: x of n canary requests and y of m
// baseline requests slower than it, null s_c − s_b ≤ tol.
func cutLogE(x, n, y, m, tol float64) float64 {
	num := logKT(x, n) + logKT(y, m)
	var den float64
	if x/n-y/m <= tol {
		den = logLik(x, n, x/n) + logLik(y, m, y/m)
	} else {
		// On the boundary s_c = s_b + tol, the log-likelihood
		// g(s) = logLik(x, n, s+tol) + logLik(y, m, s) is concave in s on
		// [0, 1−tol]: bisect on the sign of its derivative.
		dg := func(s float64) float64 {
			d := 0.0
			if x > 0 {
				d += x / (s + tol)
			}
			if n-x > 0 {
				d -= (n - x) / (1 - s - tol)
			}
			if y > 0 {
				d += y / s
			}
			if m-y > 0 {
				d -= (m - y) / (1 - s)
			}
			return d
		}
		lo, hi := 0.0, 1-tol
		for range 200 {
			mid := (lo + hi) / 2
			if mid == lo || mid == hi {
				break
			}
			if dg(mid) > 0 {
				lo = mid
			} else {
				hi = mid
			}
		}
		s := (lo + hi) / 2
		den = logLik(x, n, s+tol) + logLik(y, m, s)
		for _, edge := range []float64{0, 1 - tol} {
			den = math.Max(den, logLik(x, n, edge+tol)+logLik(y, m, edge))
		}
	}
	return num - den
}

// logKT is the log of the Beta(½,½) mixture of the probability of one
// sequence of n outcomes with x successes: B(x+½, n−x+½) / B(½,½).
func logKT(x, n float64) float64 {
	a, _ := math.Lgamma(x + 0.5)
	b, _ := math.Lgamma(n - x + 0.5)
	c, _ := math.Lgamma(n + 1)
	return a + b - c - math.Log(math.Pi)
}

// logLik is the log-likelihood of x successes in n at probability p
// (0·log 0 = 0).
func logLik(x, n, p float64) float64 {
	l := 0.0
	if x > 0 {
		l += x * math.Log(p)
	}
	if n-x > 0 {
		l += (n - x) * math.Log1p(-p)
	}
	if math.IsNaN(l) {
		return math.Inf(-1)
	}
	return l
}

func logMeanExp(ls []float64) float64 {
	m := math.Inf(-1)
	for _, l := range ls {
		m = math.Max(m, l)
	}
	if math.IsInf(m, -1) {
		return m
	}
	s := 0.0
	for _, l := range ls {
		s += math.Exp(l - m)
	}
	return m + math.Log(s/float64(len(ls)))
}
