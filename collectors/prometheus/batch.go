package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/slo"
)

// windowLabel is the label a batched query puts on each window's series so
// that one answer carries every window. It starts with "__" so that it
// cannot clash with a label of the user's series.
const windowLabel = "__slogate_window"

// CountsBatch measures sli over every range of rs, narrowed to scope, with
// one query per role (good or bad, and total; or raw) and per distinct
// range end, instead of one per range: each range's expression is tagged
// with label_replace(expr, "__slogate_window", "<i>", ...) and the tagged
// expressions are joined with "or". Prometheus evaluates the very same
// sub-expressions as Counts sends one by one, so the figures are those of
// Counts (summed in the same order of series up to float rounding).
//
// An expression that is not an instant vector (a scalar) cannot be tagged:
// such an SLI is measured range by range with Counts. A failed batch query
// (source fault, timeout, partial answer) fails every range it covers; an
// empty window is that window's no data only. The result has one entry per
// range of rs, in order.
func (c *Client) CountsBatch(ctx context.Context, sli slo.SLI, rs []slo.Range, scope slo.Scope) []slo.Measured {
	out := make([]slo.Measured, len(rs))
	jobs, err := batchJobs(sli)
	if err == nil {
		err = validScope(sli, scope)
	}
	if err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	// Group the ranges by end: one query per role per instant.
	byEnd := map[time.Time][]int{}
	var ends []time.Time
	for i, r := range rs {
		if r.Duration() <= 0 {
			out[i].Err = fmt.Errorf("prometheus %s: range %s: %w: empty range", sli.Name, r, slo.ErrBadQuery)
			continue
		}
		if _, ok := byEnd[r.End]; !ok {
			ends = append(ends, r.End)
		}
		byEnd[r.End] = append(byEnd[r.End], i)
	}
	var wg sync.WaitGroup
	for _, end := range ends {
		idx := byEnd[end]
		wg.Go(func() { c.batchAt(ctx, sli, jobs, rs, idx, scope, out) })
	}
	wg.Wait()
	return out
}

type batchJob struct {
	role string
	q    *slo.Query
}

func batchJobs(sli slo.SLI) ([]batchJob, error) {
	switch {
	case sli.IsRaw():
		return []batchJob{{"raw", sli.Raw}}, nil
	case sli.Total == nil || (sli.Good == nil) == (sli.Bad == nil):
		return nil, fmt.Errorf("prometheus %s: %w: an SLI needs total and one of good or bad, or raw", sli.Name, slo.ErrBadQuery)
	case sli.Good != nil:
		return []batchJob{{"good", sli.Good}, {"total", sli.Total}}, nil
	}
	return []batchJob{{"bad", sli.Bad}, {"total", sli.Total}}, nil
}

func validScope(sli slo.SLI, scope slo.Scope) error {
	for _, k := range scope.Keys() {
		if !model.LabelName(k).IsValidLegacy() {
			return fmt.Errorf("prometheus %s: %w: scope label name %q is not a Prometheus label name", sli.Name, slo.ErrBadQuery, k)
		}
	}
	return nil
}

// batchAt measures the ranges idx of rs, which all end at the same
// instant, writing into out.
func (c *Client) batchAt(ctx context.Context, sli slo.SLI, jobs []batchJob, rs []slo.Range, idx []int, scope slo.Scope, out []slo.Measured) {
	// Distinct windows only: two ranges of the same length share a figure.
	var windows []time.Duration
	slot := map[time.Duration]int{}
	for _, i := range idx {
		w := rs[i].Duration()
		if _, ok := slot[w]; !ok {
			slot[w] = len(windows)
			windows = append(windows, w)
		}
	}
	at := rs[idx[0]].End
	// values[j][k]: role j, window k.
	values := make([][]float64, len(jobs))
	errs := make([][]error, len(jobs))
	var wg sync.WaitGroup
	for j, job := range jobs {
		values[j] = make([]float64, len(windows))
		errs[j] = make([]error, len(windows))
		wg.Go(func() {
			vs, es := c.batchRole(ctx, sli, job, windows, at, scope)
			copy(values[j], vs)
			copy(errs[j], es)
		})
	}
	wg.Wait()
	for k, w := range windows {
		var m slo.Measured
		role := func(j int) (float64, error) { return values[j][k], errs[j][k] }
		switch jobs[0].role {
		case "raw":
			v, err := role(0)
			if err != nil {
				m.Err = err
				break
			}
			if sli.RawType == slo.RawSuccess {
				v = 1 - v
			}
			m.Counts = slo.Counts{Raw: true, RawErrorRatio: v}
		default:
			first, ferr := role(0)
			total, terr := role(1)
			// A good or bad query with no series while total has events
			// counts zero (as in Measure).
			if errors.Is(ferr, errEmpty) && terr == nil {
				first, ferr = 0, nil
			}
			if err := errors.Join(ferr, terr); err != nil {
				m.Err = err
				break
			}
			if jobs[0].role == "good" {
				m.Counts = slo.Counts{Good: first, Total: total}
			} else {
				m.Counts = slo.Counts{Good: total - first, Total: total}
			}
		}
		for _, i := range idx {
			if rs[i].Duration() == w {
				out[i] = m
			}
		}
	}
}

// batchRole runs one role's query over every window and returns each
// window's events (or error). An expression that is not an instant vector
// is measured window by window.
func (c *Client) batchRole(ctx context.Context, sli slo.SLI, job batchJob, windows []time.Duration, at time.Time, scope slo.Scope) ([]float64, []error) {
	vals := make([]float64, len(windows))
	errs := make([]error, len(windows))
	fail := func(err error) ([]float64, []error) {
		for k := range errs {
			errs[k] = err
		}
		return vals, errs
	}
	exprs := make([]parser.Expr, len(windows))
	vector := true
	for k, w := range windows {
		e, err := job.q.Expr(w, scope)
		if err != nil {
			return fail(fmt.Errorf("prometheus %s: %s query %s: %w: %w", sli.Name, job.role, job.q.Pos, slo.ErrBadQuery, err))
		}
		exprs[k] = e
		vector = vector && e.Type() == parser.ValueTypeVector
	}
	if !vector || len(windows) == 1 {
		var wg sync.WaitGroup
		for k, w := range windows {
			wg.Go(func() {
				v, _, err := c.query(ctx, exprs[k].String(), at, job.role == "raw", job.q.AllowPartial)
				if err != nil {
					errs[k] = fmt.Errorf("prometheus %s: %s query: %w", sli.Name, job.role, err)
					return
				}
				vals[k] = events(job, v, w)
			})
		}
		wg.Wait()
		return vals, errs
	}
	expr := batchExpr(exprs)
	text := expr.String()
	val, _, err := c.queryValue(ctx, text, at, job.q.AllowPartial)
	if err != nil {
		return fail(fmt.Errorf("prometheus %s: %s query: %w", sli.Name, job.role, err))
	}
	vec, ok := val.(model.Vector)
	if !ok {
		return fail(fmt.Errorf("prometheus %s: %s query: %s: %w: answered a %s, want an instant vector", sli.Name, job.role, text, slo.ErrBadQuery, val.Type()))
	}
	n := make([]int, len(windows))
	for _, s := range vec {
		k, err := strconv.Atoi(string(s.Metric[windowLabel]))
		if err != nil || k < 0 || k >= len(windows) {
			return fail(fmt.Errorf("prometheus %s: %s query: %s: %w: a series without its window label %s", sli.Name, job.role, text, slo.ErrBadQuery, s.Metric))
		}
		vals[k] += float64(s.Value)
		n[k]++
	}
	for k, w := range windows {
		switch {
		case n[k] == 0:
			errs[k] = fmt.Errorf("prometheus %s: %s query: %s: %w: %w", sli.Name, job.role, exprs[k], slo.ErrNoData, errEmpty)
		case job.role == "raw" && n[k] > 1:
			errs[k] = fmt.Errorf("prometheus %s: %s query: %s: %w: answered %d series, want one: aggregate them into one (a ratio is a quotient of sums, sum(rate(bad[w])) / sum(rate(all[w])), never a sum of per-series ratios)", sli.Name, job.role, exprs[k], slo.ErrBadQuery, n[k])
		case math.IsNaN(vals[k]) || math.IsInf(vals[k], 0):
			errs[k] = fmt.Errorf("prometheus %s: %s query: %s: %w: value %v", sli.Name, job.role, exprs[k], slo.ErrNoData, vals[k])
		default:
			vals[k] = events(job, vals[k], w)
		}
	}
	return vals, errs
}

// events turns a query's value into events: a templated query answers a
// rate per second averaged over the window (× the window's seconds); a
// raw ratio is the ratio.
func events(job batchJob, v float64, window time.Duration) float64 {
	if job.q.Windowed && job.role != "raw" {
		return v * window.Seconds()
	}
	return v
}

// batchExpr tags each window's expression with its index and joins them
// with "or": label_replace(e0, "__slogate_window", "0", "__name__", ".*")
// or label_replace(e1, ...) ... Series of different windows differ in the
// label, so "or" keeps them all.
func batchExpr(exprs []parser.Expr) parser.Expr {
	tag := func(k int, e parser.Expr) parser.Expr {
		return &parser.Call{
			Func: parser.Functions["label_replace"],
			Args: parser.Expressions{
				e,
				&parser.StringLiteral{Val: windowLabel},
				&parser.StringLiteral{Val: strconv.Itoa(k)},
				&parser.StringLiteral{Val: labels.MetricName},
				&parser.StringLiteral{Val: ".*"},
			},
		}
	}
	var out parser.Expr = tag(0, exprs[0])
	for k := 1; k < len(exprs); k++ {
		out = &parser.BinaryExpr{Op: parser.LOR, LHS: out, RHS: tag(k, exprs[k]),
			VectorMatching: &parser.VectorMatching{Card: parser.CardManyToMany}}
	}
	return out
}
