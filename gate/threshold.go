package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// KindThreshold is the check of a threshold objective (OpenSLO op/value
// on a thresholdMetric): did the new version's metric, e.g. its p95
// latency, meet op value since its deploy began?
const KindThreshold = "threshold"

// thresholdCheck verifies a new version against a threshold objective:
// the metric over [deploy start, now], scoped to the version, must meet
// op value. A windowed metric ({{.window}}: a p95 of rates) is measured
// once over the whole span, as a load test's p95 is; an instant gauge by
// its worst value over the span (max for lt/lte, min for gt/gte), one
// point a minute. Before minDuration the answer is wait; no data follows
// onNoData, a failing source onSourceError, never promote.
func (e *Engine) thresholdCheck(ctx context.Context, o slo.Objective, p slo.GatePolicy, version string, d slogate.Deploy, hasDeploy bool, now time.Time) Check {
	v, t := p.Verification, *o.Threshold
	c := Check{Kind: KindThreshold, SLO: o.Name, Target: o.Target, Objective: t.String()}
	if !hasDeploy {
		return noData(c, p, fmt.Sprintf("no deploy of version %s is recorded for %s: record it (POST /v1/deploys or slogate deploy) so the gate knows when it began", version, o.Service))
	}
	r := slo.Range{Start: d.StartedAt, End: now}
	c.Window = &Window{Start: r.Start, End: r.End}
	elapsed := r.Duration()
	scope := slo.Scope{v.VersionLabel: version}
	sli, err := spanSLI(o.Name, t)
	if err != nil {
		return sourceFault(c, p, fmt.Sprintf("threshold of %s not measurable: %v", o.Name, err))
	}
	if e, err := sli.Raw.Expr(elapsed, scope); err == nil {
		c.Query = e.String()
	}
	if elapsed < time.Minute {
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("version %s deployed at %s: %s of %s elapsed", version, hhmm(d.StartedAt), elapsed.Round(time.Second), v.MinDuration)
		return c
	}
	early := elapsed < v.MinDuration
	counts, err := e.cfg.Measurer.Counts(ctx, sli, r, scope)
	if err == nil && (math.IsNaN(counts.RawErrorRatio) || math.IsInf(counts.RawErrorRatio, 0)) {
		err = slo.ErrNoData
	}
	switch {
	case errors.Is(err, slo.ErrNoData) && early:
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("no data of version %s yet since %s (%s of %s elapsed)", version, hhmm(d.StartedAt), elapsed.Round(time.Second), v.MinDuration)
		return c
	case err != nil:
		return unmeasured(c, p, fmt.Sprintf("version %s (%s=%q) not measured since %s: %v", version, v.VersionLabel, version, hhmm(d.StartedAt), err), err)
	}
	value := counts.RawErrorRatio
	c.Value = f(value)
	got := strconv.FormatFloat(value, 'g', 4, 64)
	switch {
	case !t.Meets(value):
		// Evidence of harm halts even before minDuration.
		c.Verdict = Fail
		c.Reason = fmt.Sprintf("version %s: %s is %s since %s, objective %s", version, o.DisplayNameOr(), got, hhmm(d.StartedAt), t)
	case early:
		c.Verdict = Pending
		c.Reason = fmt.Sprintf("version %s: %s is %s so far (objective %s), %s of %s elapsed", version, o.DisplayNameOr(), got, t, elapsed.Round(time.Second), v.MinDuration)
	default:
		c.Verdict = Pass
		c.Reason = fmt.Sprintf("version %s: %s is %s since %s, meets %s", version, o.DisplayNameOr(), got, hhmm(d.StartedAt), t)
	}
	return c
}

// spanSLI is the threshold metric measured once over a span: a raw
// "failure" SLI whose figure (Counts.RawErrorRatio) is the metric's value
// itself, not a ratio. A gauge is read by its worst point a minute.
func spanSLI(name string, t slo.Threshold) (slo.SLI, error) {
	m := *t.Metric
	if m.Source != slo.SourcePrometheus {
		return slo.SLI{}, fmt.Errorf("threshold metrics are measured from Prometheus only, got %s", m.Source)
	}
	if !m.Windowed {
		worst := "max_over_time"
		if t.Op == "gt" || t.Op == "gte" {
			worst = "min_over_time"
		}
		m.PromQL = fmt.Sprintf("%s((%s)[{{.window}}:1m])", worst, m.PromQL)
		m.Windowed = true
	}
	return slo.SLI{Name: name, Raw: &m, RawType: slo.RawFailure}, nil
}
