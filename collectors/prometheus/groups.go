package prometheus

import (
	"context"
	"fmt"
	"strings"

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
	q := expr.String()
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout,
		fmt.Errorf("prometheus query %s did not answer within %s", q, c.timeout))
	defer cancel()
	var status int
	ctx = context.WithValue(ctx, statusKey{}, &status)
	val, warnings, _, err := c.api.Query(ctx, q, r.End, v1.WithTimeout(c.timeout))
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %s: %w", o.Name, q, classify(ctx, status, err))
	}
	allow := false
	if qs := o.SLI.Queries(); len(qs) > 0 {
		allow = qs[0].AllowPartial
	}
	if len(warnings) > 0 && !allow {
		return nil, fmt.Errorf("prometheus %s: %s: %w: %w: %s", o.Name, q, slo.ErrUnavailable, ErrPartial, strings.Join(warnings, "; "))
	}
	vec, ok := val.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("prometheus %s: %s: %w: answered a %s, want an instant vector", o.Name, q, slo.ErrBadQuery, val.Type())
	}
	out := make([]slo.Scope, 0, len(vec))
	for _, s := range vec {
		g := slo.Scope{}
		for _, l := range o.GroupBy {
			g[l] = string(s.Metric[model.LabelName(l)])
		}
		out = append(out, g)
	}
	return out, nil
}
