package slo

import (
	"fmt"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// sampleWindow is the window templated queries are rendered with to be
// checked when loaded.
const sampleWindow = 5 * time.Minute

// CheckPromQL checks a Prometheus query as slogate will run it: the
// template renders (no unknown variable), the result parses, every vector
// selector names a metric, and the expression yields an instant vector or
// a scalar.
func CheckPromQL(q *Query) error {
	if q.PromQL == "" {
		return fmt.Errorf("required: a PromQL expression")
	}
	expr, err := q.Expr(sampleWindow, nil)
	if err != nil {
		return err
	}
	var problem error
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || problem != nil {
			return nil
		}
		if vs.Name != "" {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" {
				return nil
			}
		}
		problem = fmt.Errorf("selector %s names no metric", vs)
		return nil
	})
	if problem != nil {
		return problem
	}
	if t := expr.Type(); t != parser.ValueTypeVector && t != parser.ValueTypeScalar {
		return fmt.Errorf("expression yields a %s, want an instant vector", t)
	}
	return nil
}
