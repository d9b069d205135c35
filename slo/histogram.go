package slo

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Histogram is a latency SLI read as a Prometheus classic histogram: the
// good events are the requests under one bucket bound (Threshold) and the
// total is the histogram's count. It is what the gate compares as a
// distribution between a canary and its baseline.
type Histogram struct {
	// Metric is the histogram family, e.g. http_request_duration_seconds
	// (its series are Metric_bucket, Metric_count, Metric_sum).
	Metric string
	// Matchers are the SLI's label matchers other than the metric name and
	// le, e.g. service="checkout".
	Matchers []*labels.Matcher
	// Threshold is the good query's le bound, in the metric's unit.
	Threshold float64
}

// Histogram reports whether the SLI is a latency SLI on a Prometheus
// histogram: its good query selects one <name>_bucket{le="X"} and its total
// selects <name>_count or <name>_bucket{le="+Inf"}, with the same other
// matchers, each query holding exactly one selector (sum(...), rate(...)
// and increase(...) around it are fine). Anything else is not a histogram
// SLI (ok false): it is still measured as a ratio, it is just not compared
// as a distribution.
func (s SLI) Histogram() (Histogram, bool) {
	if s.IsRaw() || s.Good == nil || s.Total == nil ||
		s.Good.Source != SourcePrometheus || s.Total.Source != SourcePrometheus {
		return Histogram{}, false
	}
	good, ok := onlySelector(s.Good)
	if !ok {
		return Histogram{}, false
	}
	total, ok := onlySelector(s.Total)
	if !ok {
		return Histogram{}, false
	}
	name, le, rest := splitSelector(good)
	metric, isBucket := strings.CutSuffix(name, "_bucket")
	if !isBucket || metric == "" || le == nil || le.Type != labels.MatchEqual {
		return Histogram{}, false
	}
	threshold, err := ParseBound(le.Value)
	if err != nil || math.IsInf(threshold, 1) {
		return Histogram{}, false
	}
	tname, tle, trest := splitSelector(total)
	switch {
	case tname == metric+"_count" && tle == nil:
	case tname == metric+"_bucket" && tle != nil && tle.Type == labels.MatchEqual && isInf(tle.Value):
	default:
		return Histogram{}, false
	}
	if !sameMatchers(rest, trest) {
		return Histogram{}, false
	}
	return Histogram{Metric: metric, Matchers: rest, Threshold: threshold}, true
}

// BucketsExpr is the PromQL of the histogram's per-bucket request counts
// over window, scoped:
//
//	sum by (le) (increase(<metric>_bucket{<matchers>, <scope>}[window]))
//
// built as an AST, scope matchers added by AddScope.
func (h Histogram) BucketsExpr(window time.Duration, scope Scope) (parser.Expr, error) {
	if h.Metric == "" {
		return nil, fmt.Errorf("histogram has no metric name")
	}
	if window <= 0 {
		return nil, fmt.Errorf("histogram %s: window must be positive, got %s", h.Metric, window)
	}
	name, err := labels.NewMatcher(labels.MatchEqual, labels.MetricName, h.Metric+"_bucket")
	if err != nil {
		return nil, err
	}
	ms := append([]*labels.Matcher{name}, h.Matchers...)
	vs := &parser.VectorSelector{Name: h.Metric + "_bucket", LabelMatchers: ms}
	var expr parser.Expr = &parser.AggregateExpr{
		Op:       parser.SUM,
		Grouping: []string{"le"},
		Expr: &parser.Call{
			Func: parser.Functions["increase"],
			Args: parser.Expressions{&parser.MatrixSelector{VectorSelector: vs, Range: window}},
		},
	}
	if err := AddScope(expr, scope); err != nil {
		return nil, err
	}
	// Round-trip through the parser: what is sent is what Prometheus reads.
	return ParsePromQL(expr.String())
}

// Bucket is one histogram bucket's requests over a range: those that took
// more than the previous bucket's bound and at most UpperBound (+Inf for
// the last), de-cumulated from Prometheus' le buckets.
type Bucket struct {
	UpperBound float64 `json:"le"`
	Count      float64 `json:"count"`
}

// ParseBound reads an le label value: a float, or +Inf (also "Inf", "inf").
func ParseBound(s string) (float64, error) {
	if isInf(s) {
		return math.Inf(1), nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) {
		return 0, fmt.Errorf("le %q is not a bucket bound", s)
	}
	return v, nil
}

// FormatBound writes a bucket bound the way Prometheus labels it.
func FormatBound(b float64) string {
	if math.IsInf(b, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(b, 'g', -1, 64)
}

func isInf(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "+inf", "inf":
		return true
	}
	return false
}

// onlySelector parses a query (rendering a template with any window) and
// returns its vector selector when it has exactly one.
func onlySelector(q *Query) (*parser.VectorSelector, bool) {
	text := q.PromQL
	if q.Windowed || IsWindowed(text) {
		var err error
		if text, err = RenderWindow(text, 5*time.Minute); err != nil {
			return nil, false
		}
	}
	expr, err := ParsePromQL(text)
	if err != nil {
		return nil, false
	}
	var found []*parser.VectorSelector
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			found = append(found, vs)
		}
		return nil
	})
	if len(found) != 1 {
		return nil, false
	}
	return found[0], true
}

// splitSelector returns a selector's metric name, its le matcher (nil when
// absent) and its other matchers.
func splitSelector(vs *parser.VectorSelector) (name string, le *labels.Matcher, rest []*labels.Matcher) {
	name = vs.Name
	for _, m := range vs.LabelMatchers {
		switch {
		case m.Name == labels.MetricName:
			if m.Type == labels.MatchEqual {
				name = m.Value
			}
		case m.Name == "le":
			le = m
		default:
			rest = append(rest, m)
		}
	}
	return name, le, rest
}

func sameMatchers(a, b []*labels.Matcher) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, m := range a {
		seen[m.String()]++
	}
	for _, m := range b {
		if seen[m.String()] == 0 {
			return false
		}
		seen[m.String()]--
	}
	return true
}

// Decumulate turns cumulative le buckets (requests at most each bound,
// keyed by bound) into per-bucket counts sorted by bound. The +Inf bucket
// must be there. A cumulative count smaller than the one below it by more
// than half a request (Prometheus' increase() extrapolates, so counts are
// not whole) means the buckets are not one histogram's (series with
// different bounds summed together): an error, never a guess.
func Decumulate(cumulative map[float64]float64) ([]Bucket, error) {
	if _, ok := cumulative[math.Inf(1)]; !ok {
		return nil, fmt.Errorf("no le=\"+Inf\" bucket")
	}
	bounds := make([]float64, 0, len(cumulative))
	for b := range cumulative {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	out := make([]Bucket, len(bounds))
	prev := 0.0
	for i, b := range bounds {
		c := cumulative[b]
		if math.IsNaN(c) || math.IsInf(c, 0) || c < 0 {
			return nil, fmt.Errorf("bucket le=%q counts %v requests", FormatBound(b), c)
		}
		n := c - prev
		if n < 0 {
			if n < -0.5 {
				return nil, fmt.Errorf("bucket le=%q counts %v requests, fewer than the %v at or below the bound before it: the buckets are not cumulative (series with different bucket bounds summed together?)", FormatBound(b), c, prev)
			}
			n = 0
		}
		out[i] = Bucket{UpperBound: b, Count: n}
		if c > prev {
			prev = c
		}
	}
	return out, nil
}
