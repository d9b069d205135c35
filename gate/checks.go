package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// noData turns missing data or a failed source into the policy's verdict:
// halt (fail) or wait, never pass.
func noData(c Check, p slo.GatePolicy, reason string) Check {
	c.NoData = true
	c.Reason = reason
	if p.OnNoData == slo.NoDataWait {
		c.Verdict = Pending
	} else {
		c.Verdict = Fail
	}
	return c
}

// sourceFault turns a failed source (unreachable, timeout, 5xx, partial
// response, a query the source refused) into the policy's onSourceError
// verdict: an error (HTTP 503, the client retries), halt or wait, never
// pass. It is not missing data: nothing says the release is harmful.
func sourceFault(c Check, p slo.GatePolicy, reason string) Check {
	c.SourceError = true
	c.Reason = reason
	switch p.OnSourceError {
	case slo.SourceErrorHalt:
		c.Verdict = Fail
	case slo.SourceErrorWait:
		c.Verdict = Pending
	default:
		c.Verdict = Errored
	}
	return c
}

// unmeasured is the verdict of a check whose measurement failed: no data
// (slo.ErrNoData) follows onNoData, any other error onSourceError.
func unmeasured(c Check, p slo.GatePolicy, reason string, err error) Check {
	if errors.Is(err, slo.ErrNoData) {
		return noData(c, p, reason)
	}
	return sourceFault(c, p, reason)
}

func f(v float64) *float64 { return &v }

func pct(v float64) string {
	s := fmt.Sprintf("%.3f", v*100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

func hhmm(t time.Time) string { return t.UTC().Format("15:04") }

// budgetCheck: the objective must keep policy.Budget.MinRemaining of its
// budget and have no page-level burn-rate alert firing, unless an override
// lifts the policy.
func (e *Engine) budgetCheck(ctx context.Context, o slo.Objective, p slo.GatePolicy, now time.Time, ov *Override) Check {
	st := e.cfg.Measurer.Status(ctx, o, now)
	r := o.Window.Range(now)
	c := Check{
		Kind: KindBudget, SLO: o.Name, Target: o.Target,
		Window: &Window{Start: r.Start, End: r.End},
		Query:  describeQuery(o.SLI, r.Duration(), nil),
	}
	if st.Measured() {
		c.Good, c.Total, c.SLI = st.SLI.Good, st.SLI.Total, st.SLI.Ratio
		c.BudgetRemaining = st.ErrorBudget.Remaining
	}
	if ov != nil {
		c.Verdict, c.Override = Pass, ov
		c.Reason = fmt.Sprintf("budget policy lifted by override %s until %s: %s", ov.ID, ov.ExpiresAt.UTC().Format(time.RFC3339), ov.Reason)
		return c
	}
	for _, me := range st.Errors {
		// No traffic in a short window is normal; a failing source is not.
		switch {
		case !me.NoData:
			return sourceFault(c, p, fmt.Sprintf("error budget not measured (%s): %s", me.Window, me.Error))
		case me.Window == "period":
			return noData(c, p, fmt.Sprintf("error budget not measured (%s): %s", me.Window, me.Error))
		}
	}
	rem := *st.ErrorBudget.Remaining
	if rem < p.Budget.MinRemaining && st.SLI.Total != nil && *st.SLI.Total < p.Verification.MinEvents {
		// Minutes into a calendar period (or on a quiet service) one
		// error reads as an exhausted budget: too few events to judge.
		c.Verdict = Pass
		c.Reason = fmt.Sprintf("error budget not judged: %.0f events since %s, fewer than minEvents %.0f (%s left on those)",
			*st.SLI.Total, r.Start.UTC().Format(time.RFC3339), p.Verification.MinEvents, pct(rem))
		return c
	}
	if rem < p.Budget.MinRemaining {
		c.Verdict = Fail
		c.Reason = fmt.Sprintf("error budget exhausted: %s left over %s (policy needs %s)", pct(rem), o.Window, pct(p.Budget.MinRemaining))
		return c
	}
	for _, a := range st.Alerts {
		if a.Severity == slo.SeverityPage && a.Firing {
			long, short := st.BurnRates[a.LongWindow], st.BurnRates[a.ShortWindow]
			c.Verdict, c.BurnRate = Fail, long
			c.Reason = fmt.Sprintf("burning budget at %.1fx over %s and %.1fx over %s (page threshold %.3gx)", *long, a.LongWindow, *short, a.ShortWindow, a.Factor)
			return c
		}
	}
	for _, a := range st.NoDataTiers() {
		if a.Severity == slo.SeverityPage { // a dark window beside a burning one is no data, never a pass
			return noData(c, p, fmt.Sprintf("page tier %s/%s not measured: %s", a.LongWindow, a.ShortWindow, a.Reason))
		}
	}
	c.Verdict = Pass
	c.Reason = fmt.Sprintf("%s of the error budget left over %s (policy needs %s); no page-level burn", pct(rem), o.Window, pct(p.Budget.MinRemaining))
	return c
}

// verificationCheck: the new version, since its deploy began, must not
// burn the budget faster than policy.Verification.MaxBurnRate, judged by
// an anytime-valid confidence sequence on its error ratio (ProportionCS,
// docs/statistics.md): halt as soon as the sequence's lower bound is
// above maxBurnRate × (1 − target); pass when its upper bound is at or
// below it once MinDuration and MinEvents are reached; wait otherwise.
func (e *Engine) verificationCheck(ctx context.Context, o slo.Objective, p slo.GatePolicy, version string, d slogate.Deploy, hasDeploy bool, now time.Time) Check {
	v := p.Verification
	c := Check{Kind: KindVerification, SLO: o.Name, Target: o.Target, MaxBurnRate: f(v.MaxBurnRate)}
	if !hasDeploy {
		return noData(c, p, fmt.Sprintf("no deploy of version %s is recorded for %s: record it (POST /v1/deploys or slogate deploy) so the gate knows when it began", version, o.Service))
	}
	r := slo.Range{Start: d.StartedAt, End: now}
	c.Window = &Window{Start: r.Start, End: r.End}
	elapsed := r.Duration()
	scope := slo.Scope{v.VersionLabel: version}
	c.Query = describeQuery(o.SLI, elapsed, scope)
	early := elapsed < v.MinDuration
	if elapsed < time.Minute {
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("version %s deployed at %s: %s of %s elapsed", version, hhmm(d.StartedAt), elapsed.Round(time.Second), v.MinDuration)
		return c
	}
	counts, err := e.cfg.Measurer.Counts(ctx, o.SLI, r, scope)
	var badCounts error
	if err == nil {
		// Zero events (series that exist, no traffic yet) are ErrNoData.
		if _, rerr := counts.ErrorRatio(); errors.Is(rerr, slo.ErrNoData) {
			err = rerr
		} else if rerr != nil {
			badCounts = rerr
		}
	}
	noEvents := errors.Is(err, slo.ErrNoData)
	switch {
	case noEvents && early:
		// Series that exist with no events yet, or none at all: a
		// rollout minutes old that has had no traffic waits.
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("no events of version %s yet since %s (%s of %s elapsed)", version, hhmm(d.StartedAt), elapsed.Round(time.Second), v.MinDuration)
		return c
	case noEvents:
		return noData(c, p, fmt.Sprintf("no events of version %s (%s=%q) since %s", version, v.VersionLabel, version, hhmm(d.StartedAt)))
	case err != nil:
		// A source fault (unreachable, timeout, partial response).
		return sourceFault(c, p, fmt.Sprintf("version %s not measured: %v", version, err))
	case badCounts != nil:
		// Counts that contradict themselves: the query is wrong.
		return sourceFault(c, p, fmt.Sprintf("version %s not measured: %v", version, fmt.Errorf("%w: %w", slo.ErrBadQuery, badCounts)))
	}
	er, _ := counts.ErrorRatio()
	burn := slo.BurnRate(er, o.Target)
	c.BurnRate, c.SLI = f(burn), f(1-er)
	if counts.Raw || e.fixedSample {
		return e.verificationPoint(c, v, version, d, counts, burn, early)
	}
	c.Good, c.Total = f(counts.Good), f(counts.Total)
	conf := slo.DefaultConfidence
	limit := v.MaxBurnRate * (1 - o.Target)
	lo, hi := ProportionCS(counts.Total-counts.Good, counts.Total, 1-conf, limit)
	c.Test, c.Confidence, c.Threshold = TestBetaBinomialCS, conf, f(limit)
	c.Interval = &[2]float64{lo, hi}
	burnLo, burnHi := slo.BurnRate(lo, o.Target), slo.BurnRate(hi, o.Target)
	since := hhmm(d.StartedAt)
	switch {
	case lo > limit:
		// Valid at any look, so it may halt before minDuration.
		c.Verdict = Fail
		c.Reason = fmt.Sprintf("version %s burns budget at %.1fx since %s (max %gx): at least %.2fx at %s confidence (error ratio %s, %s anytime-valid interval %s–%s)",
			version, burn, since, v.MaxBurnRate, burnLo, pct(conf), pct(er), pct(conf), pct(lo), pct(hi))
	case early:
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("version %s: %s of %s elapsed since %s (burning %.2fx so far, between %.2fx and %.2fx at %s confidence)",
			version, elapsed.Round(time.Second), v.MinDuration, since, burn, burnLo, burnHi, pct(conf))
	case counts.Total < v.MinEvents:
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("version %s: %.0f of %.0f events so far since %s", version, counts.Total, v.MinEvents, since)
	case hi <= limit:
		c.Verdict = Pass
		c.Reason = fmt.Sprintf("version %s burns budget at %.2fx since %s (max %gx): at most %.2fx at %s confidence (error ratio %s, %s anytime-valid interval %s–%s)",
			version, burn, since, v.MaxBurnRate, burnHi, pct(conf), pct(er), pct(conf), pct(lo), pct(hi))
	default:
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("version %s burns budget at %.2fx since %s: the events cannot tell yet whether it is above %gx (between %.2fx and %.2fx at %s confidence, %.0f events)",
			version, burn, since, v.MaxBurnRate, burnLo, burnHi, pct(conf), counts.Total)
	}
	return c
}

// verificationPoint judges a version on its burn rate's point estimate: a
// raw SLI has no event counts to test, and e.fixedSample keeps the rule
// the gate used before, for the decision-quality benchmark. Neither is
// anytime-valid.
func (e *Engine) verificationPoint(c Check, v slo.VerificationPolicy, version string, d slogate.Deploy, counts slo.Counts, burn float64, early bool) Check {
	how := "point estimate of a raw SLI"
	c.Test = TestPointEstimate
	if !counts.Raw {
		c.Good, c.Total = f(counts.Good), f(counts.Total)
		c.Test, how = testFixedPointEstimate, "fixed-sample point estimate"
	}
	elapsed := c.Window.End.Sub(c.Window.Start)
	switch {
	case !counts.Raw && counts.Total < v.MinEvents:
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("version %s: %.0f of %.0f events so far since %s", version, counts.Total, v.MinEvents, hhmm(d.StartedAt))
	case early:
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("version %s: %s of %s elapsed since %s (burning %.2fx so far)", version, elapsed.Round(time.Second), v.MinDuration, hhmm(d.StartedAt), burn)
	case burn > v.MaxBurnRate:
		c.Verdict = Fail
		c.Reason = fmt.Sprintf("version %s burns budget at %.1fx since %s (max %gx; %s)", version, burn, hhmm(d.StartedAt), v.MaxBurnRate, how)
	default:
		c.Verdict = Pass
		c.Reason = fmt.Sprintf("version %s burns budget at %.2fx since %s (max %gx; %s)", version, burn, hhmm(d.StartedAt), v.MaxBurnRate, how)
	}
	return c
}

// canaryCheck compares the canary's error ratio with the baseline's over
// the same span, by an anytime-valid confidence sequence for their
// difference (DiffCS, docs/statistics.md): halt when its lower bound is
// above the tolerance, pass when its upper bound is at or below it, wait
// while it straddles the tolerance. A configured comparison that cannot
// run (no deploy, no baseline, a raw SLI, no events past minDuration) is
// no data, never pass.
func (e *Engine) canaryCheck(ctx context.Context, o slo.Objective, p slo.GatePolicy, version, baseline string, d slogate.Deploy, hasDeploy bool, now time.Time) Check {
	cp := *p.Canary
	c := Check{Kind: KindCanary, SLO: o.Name, Target: o.Target}
	if !hasDeploy {
		return noData(c, p, fmt.Sprintf("canary %s not compared: no deploy of it is recorded for %s, so the gate does not know when it began (POST /v1/deploys or slogate deploy)", version, o.Service))
	}
	if baseline == "" || baseline == version {
		return noData(c, p, fmt.Sprintf("no baseline version to compare %s with: give baselineVersion, or record the deploy with previousVersion", version))
	}
	if o.SLI.IsRaw() {
		return noData(c, p, fmt.Sprintf("canary %s not compared with %s: a raw SLI has no event counts to test (use a good/total or bad/total ratio SLI, or turn the canary check off)", version, baseline))
	}
	r := slo.Range{Start: d.StartedAt, End: now}
	c.Window = &Window{Start: r.Start, End: r.End}
	label := p.Verification.VersionLabel
	c.Query = describeQuery(o.SLI, r.Duration(), slo.Scope{label: version})
	early := r.Duration() < p.Verification.MinDuration
	if r.Duration() < time.Minute {
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("canary %s began at %s: too early to compare", version, hhmm(d.StartedAt))
		return c
	}
	type res struct {
		c   slo.Counts
		err error
	}
	results := make([]res, 2)
	done := make(chan struct{}, 2)
	for i, v := range []string{version, baseline} {
		go func() {
			cnt, err := e.cfg.Measurer.Counts(ctx, o.SLI, r, slo.Scope{label: v})
			results[i] = res{cnt, err}
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	for i, v := range []string{version, baseline} {
		err := results[i].err
		switch {
		case err == nil:
		case errors.Is(err, slo.ErrNoData) && early:
			c.Verdict = Pending
			c.Reason = fmt.Sprintf("no events of version %s yet to compare (%s of %s elapsed)", v, r.Duration().Round(time.Second), p.Verification.MinDuration)
			return c
		case errors.Is(err, slo.ErrNoData):
			return noData(c, p, fmt.Sprintf("version %s not measured for the canary comparison: %v", v, err))
		default:
			// A source fault (unreachable, timeout, partial response).
			return sourceFault(c, p, fmt.Sprintf("version %s not measured for the canary comparison: %v", v, err))
		}
	}
	can, base := results[0].c, results[1].c
	cs, errC := sampleOf(version, can)
	bs, errB := sampleOf(baseline, base)
	for i, err := range []error{errC, errB} {
		v := []string{version, baseline}[i]
		switch {
		case err == nil:
		case errors.Is(err, slo.ErrNoData) && early:
			// Series that exist but have no events yet: a rollout
			// minutes old waits, it is not halted.
			c.Verdict = Pending
			c.Reason = fmt.Sprintf("no events of version %s yet to compare (%s of %s elapsed)", v, r.Duration().Round(time.Second), p.Verification.MinDuration)
			return c
		default:
			// No events past minDuration is no data; counts that
			// contradict themselves are a source fault.
			return unmeasured(c, p, fmt.Sprintf("canary comparison: %v", errors.Join(errC, errB)), errors.Join(errC, errB))
		}
	}
	c.Canary, c.Baseline = &cs, &bs
	if can.Total < p.Verification.MinEvents || base.Total < p.Verification.MinEvents {
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("too few events to compare: canary %s %.0f, baseline %s %.0f (need %.0f each)", version, can.Total, baseline, base.Total, p.Verification.MinEvents)
		return c
	}
	badC, badB := can.Total-can.Good, base.Total-base.Good
	var lo, hi float64
	c.Confidence, c.Threshold = cp.Confidence, f(cp.Tolerance)
	if e.fixedSample {
		lo, hi = diffInterval(badC, can.Total, badB, base.Total, cp.Confidence)
		c.Test = testAgrestiCaffo
	} else {
		lo, hi = DiffCS(badC, can.Total, badB, base.Total, 1-cp.Confidence, cp.Tolerance)
		c.Test = TestNormalMixtureCS
	}
	c.Interval = &[2]float64{lo, hi}
	level := fmt.Sprintf("each bound %s anytime-valid", pct(cp.Confidence))
	if e.fixedSample {
		level = fmt.Sprintf("%s two-sided fixed-sample", pct(2*cp.Confidence-1))
	}
	switch {
	case lo > cp.Tolerance:
		c.Verdict = Fail
		c.Reason = fmt.Sprintf("canary %s error ratio %s vs baseline %s %s: worse by more than %s at %s confidence (difference at least %s; %s interval %s to %s)",
			version, pct(cs.ErrorRatio), baseline, pct(bs.ErrorRatio), pct(cp.Tolerance), pct(cp.Confidence), pct(lo), level, pct(lo), pct(hi))
	case hi <= cp.Tolerance:
		c.Verdict = Pass
		c.Reason = fmt.Sprintf("canary %s error ratio %s vs baseline %s %s: not worse by more than %s at %s confidence (difference at most %s; %s interval %s to %s)",
			version, pct(cs.ErrorRatio), baseline, pct(bs.ErrorRatio), pct(cp.Tolerance), pct(cp.Confidence), pct(hi), level, pct(lo), pct(hi))
	default:
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("canary %s error ratio %s vs baseline %s %s: the samples cannot tell yet whether it is worse by more than %s (difference between %s and %s, %s)",
			version, pct(cs.ErrorRatio), baseline, pct(bs.ErrorRatio), pct(cp.Tolerance), pct(lo), pct(hi), level)
	}
	return c
}

func sampleOf(v string, c slo.Counts) (Sample, error) {
	er, err := c.ErrorRatio()
	return Sample{Version: v, Good: c.Good, Total: c.Total, ErrorRatio: er}, err
}

// diffInterval is the fixed-sample rule the canary comparison used before
// DiffCS, kept for the decision-quality benchmark (Engine.fixedSample):
// the Agresti–Caffo interval (one bad and one good event added to each
// sample), one-sided confidence conf on each side, so a two-sided
// 2·conf − 1 interval. Valid at one look only: asked every minute, its
// error rates grow with the number of looks.
func diffInterval(badC, nC, badB, nB, conf float64) (lo, hi float64) {
	pc := (badC + 1) / (nC + 2)
	pb := (badB + 1) / (nB + 2)
	se := math.Sqrt(pc*(1-pc)/(nC+2) + pb*(1-pb)/(nB+2))
	z := normalQuantile(conf)
	d := pc - pb
	return d - z*se, d + z*se
}

// normalQuantile is Φ⁻¹(p) of the standard normal distribution.
func normalQuantile(p float64) float64 {
	return math.Sqrt2 * math.Erfinv(2*p-1)
}

// describeQuery says what was measured: the PromQL error ratio, or the
// Elasticsearch index and clauses, or the TraceQL filters.
func describeQuery(sli slo.SLI, window time.Duration, scope slo.Scope) string {
	switch sli.SourceType() {
	case slo.SourcePrometheus:
		e, err := sli.ErrorRatioExpr(window, scope)
		if err != nil {
			return ""
		}
		return e.String()
	case slo.SourceElasticsearch:
		var parts []string
		for _, q := range []struct {
			role string
			q    *slo.Query
		}{{"good", sli.Good}, {"bad", sli.Bad}, {"total", sli.Total}} {
			if q.q != nil && q.q.Elasticsearch != nil {
				parts = append(parts, fmt.Sprintf("%s: %s %s", q.role, q.q.Elasticsearch.Index, q.q.Elasticsearch.Query))
			}
		}
		return strings.Join(parts, "; ") + scopeSuffix(scope)
	case slo.SourceTempo:
		var parts []string
		for _, q := range []struct {
			role string
			q    *slo.Query
		}{{"good", sli.Good}, {"bad", sli.Bad}, {"total", sli.Total}} {
			if q.q != nil && q.q.Tempo != nil {
				parts = append(parts, q.role+": "+q.q.Tempo.TraceQL+" | count_over_time()")
			}
		}
		return strings.Join(parts, "; ") + scopeSuffix(scope)
	}
	return ""
}

func scopeSuffix(scope slo.Scope) string {
	if len(scope) == 0 {
		return ""
	}
	var parts []string
	for _, k := range scope.Keys() {
		parts = append(parts, fmt.Sprintf("%s=%q", k, scope[k]))
	}
	return " (scope " + strings.Join(parts, ", ") + ")"
}
