package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// Groups lists the values of a grouped objective's labels seen over r
// (slo.Objective.GroupsExpr), one instant query at r's end. A label a
// series lacks has the value "".
func (c *Client) Groups(ctx context.Context, o slo.Objective, r slo.Range) ([]slo.Scope, error) {
	expr, err := o.GroupsExpr(r)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w: %w", o.Name, slo.ErrBadQuery, err)
	}
	allow := false
	if qs := o.SLI.Queries(); len(qs) > 0 {
		allow = qs[0].AllowPartial
	}
	vec, err := c.groupVector(ctx, expr.String(), r, allow)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", o.Name, err)
	}
	out := make([]slo.Scope, 0, len(vec))
	for _, s := range vec {
		out = append(out, groupOf(s.Metric, o.GroupBy))
	}
	return out, nil
}

func groupOf(m model.Metric, by []string) slo.Scope {
	g := slo.Scope{}
	for _, l := range by {
		g[l] = string(m[model.LabelName(l)])
	}
	return g
}

// groupVector runs one instant query at r's end and returns its vector.
func (c *Client) groupVector(ctx context.Context, q string, r slo.Range, allowPartial bool) (model.Vector, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout,
		fmt.Errorf("prometheus query %s did not answer within %s", q, c.timeout))
	defer cancel()
	var status int
	ctx = context.WithValue(ctx, statusKey{}, &status)
	val, warnings, _, err := c.api.Query(ctx, q, r.End, v1.WithTimeout(c.timeout))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, classify(ctx, status, err))
	}
	if len(warnings) > 0 && !allowPartial {
		return nil, fmt.Errorf("%s: %w: %w: %s", q, slo.ErrUnavailable, ErrPartial, strings.Join(warnings, "; "))
	}
	vec, ok := val.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("%s: %w: answered a %s, want an instant vector", q, slo.ErrBadQuery, val.Type())
	}
	return vec, nil
}

// GroupedCounts measures a grouped SLI over r for every value of by at
// once: one query per role (good or bad, total; or raw), its aggregations
// keeping the labels (slo.Query.GroupBy), the answer's series added up per
// value. A value whose total has no series is left out (no data); one
// with total but no good or bad series counts zero of them. A raw SLI must
// answer one series per value.
func (c *Client) GroupedCounts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope, by []string) ([]slo.GroupCounts, error) {
	window := r.Duration()
	if window <= 0 {
		return nil, fmt.Errorf("prometheus %s: range %s: %w: empty range", sli.Name, r, slo.ErrBadQuery)
	}
	jobs, err := roleQueries(sli)
	if err != nil {
		return nil, err
	}
	sums := make([]map[string]float64, len(jobs))
	groups := map[string]slo.Scope{}
	var mu sync.Mutex
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			q := *j.q
			q.GroupBy = by
			expr, err := q.Expr(window, scope)
			if err != nil {
				errs[i] = fmt.Errorf("prometheus %s: %s query %s: %w: %w", sli.Name, j.role, j.q.Pos, slo.ErrBadQuery, err)
				return
			}
			vec, err := c.groupVector(ctx, expr.String(), r, j.q.AllowPartial)
			if err != nil {
				errs[i] = fmt.Errorf("prometheus %s: %s query: %w", sli.Name, j.role, err)
				return
			}
			sum := map[string]float64{}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range vec {
				g := groupOf(s.Metric, by)
				k := slo.GroupKey(g)
				if _, dup := sum[k]; dup && j.role == "raw" {
					errs[i] = fmt.Errorf("prometheus %s: raw query %s: %w: answered several series for %s, want one per value", sli.Name, expr, slo.ErrBadQuery, k)
					return
				}
				v := float64(s.Value)
				if j.q.Windowed && j.role != "raw" {
					v *= window.Seconds()
				}
				sum[k] += v
				groups[k] = g
			}
			sums[i] = sum
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []slo.GroupCounts
	for k, g := range groups {
		var c slo.Counts
		switch jobs[0].role {
		case "raw":
			v, ok := sums[0][k]
			if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if sli.RawType == slo.RawSuccess {
				v = 1 - v
			}
			c = slo.Counts{Raw: true, RawErrorRatio: v}
		case "good", "bad":
			total, ok := sums[1][k]
			if !ok {
				continue
			}
			first := sums[0][k] // absent: none of them
			if jobs[0].role == "good" {
				c = slo.Counts{Good: first, Total: total}
			} else {
				c = slo.Counts{Good: total - first, Total: total}
			}
		}
		out = append(out, slo.GroupCounts{Group: g, Counts: c})
	}
	return out, nil
}
