package prometheus

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// Buckets measures a histogram SLI's request-latency distribution over r,
// narrowed to scope: one instant query at r.End,
//
//	sum by (le) (increase(<metric>_bucket{<matchers>, <scope>}[window]))
//
// de-cumulated into per-bucket counts sorted by bound, +Inf last. It
// satisfies the gate's BucketSource interface. Errors wrap the same
// outcomes as Counts: slo.ErrNoData (no bucket series, or no request at
// all), slo.ErrBadQuery (not a histogram SLI, buckets that are not
// cumulative, no +Inf bucket), slo.ErrUnavailable (ErrPartial for an
// answer with warnings, unless the SLI's good and total queries both say
// partialResponse: allow) or slo.ErrTimeout.
func (c *Client) Buckets(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) ([]slo.Bucket, error) {
	window := r.Duration()
	if window <= 0 {
		return nil, fmt.Errorf("prometheus %s buckets: range %s: %w: empty range", sli.Name, r, slo.ErrBadQuery)
	}
	h, ok := sli.Histogram()
	if !ok {
		return nil, fmt.Errorf("prometheus %s buckets: %w: not a latency SLI on a histogram (good <name>_bucket{le=\"X\"}, total <name>_count)", sli.Name, slo.ErrBadQuery)
	}
	for _, k := range scope.Keys() {
		if !model.LabelName(k).IsValidLegacy() {
			return nil, fmt.Errorf("prometheus %s buckets: %w: scope label name %q is not a Prometheus label name", sli.Name, slo.ErrBadQuery, k)
		}
	}
	expr, err := h.BucketsExpr(window, scope)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s buckets: %w: %w", sli.Name, slo.ErrBadQuery, err)
	}
	q := expr.String()
	// The bucket query stands for both good and total: a partial answer
	// is taken only when both accept one.
	vec, err := c.vector(ctx, q, r.End, sli.Good.AllowPartial && sli.Total.AllowPartial)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s buckets: %w", sli.Name, err)
	}
	buckets, err := decumulate(vec)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s buckets: %s: %w", sli.Name, q, err)
	}
	return buckets, nil
}

// decumulate reads a sum by (le) vector into per-bucket counts. Series
// whose le reads the same bound ("1" and "1.0", from client libraries that
// write bounds differently) are the same bucket and are added.
func decumulate(vec model.Vector) ([]slo.Bucket, error) {
	if len(vec) == 0 {
		return nil, fmt.Errorf("%w: %w", slo.ErrNoData, errEmpty)
	}
	cum := make(map[float64]float64, len(vec))
	for _, s := range vec {
		le, ok := s.Metric["le"]
		if !ok {
			return nil, fmt.Errorf("%w: a series without an le label: %s", slo.ErrBadQuery, s.Metric)
		}
		b, err := slo.ParseBound(string(le))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", slo.ErrBadQuery, err)
		}
		v := float64(s.Value)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: bucket le=%q: value %v", slo.ErrNoData, string(le), v)
		}
		cum[b] += v
	}
	buckets, err := slo.Decumulate(cum)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", slo.ErrBadQuery, err)
	}
	if cum[math.Inf(1)] <= 0 {
		return nil, fmt.Errorf("%w: no request in the window", slo.ErrNoData)
	}
	return buckets, nil
}

// vector runs expr at at and returns its instant vector, with the same
// deadline, logging and error classification as the ratio queries. An
// answer with warnings is ErrPartial (slo.ErrUnavailable) unless
// allowPartial: a partial answer undercounts some buckets and skews the
// distribution.
func (c *Client) vector(ctx context.Context, expr string, at time.Time, allowPartial bool) (model.Vector, error) {
	val, _, err := c.queryValue(ctx, expr, at, allowPartial)
	if err != nil {
		return nil, err
	}
	vec, ok := val.(model.Vector)
	if !ok {
		typ := "nothing"
		if val != nil {
			typ = val.Type().String()
		}
		return nil, fmt.Errorf("%s: %w: answered a %s, want an instant vector", expr, slo.ErrBadQuery, typ)
	}
	return vec, nil
}
