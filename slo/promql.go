package slo

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// promParser is safe for concurrent use: every ParseExpr makes its own state.
var promParser = parser.NewParser(parser.Options{})

// ParsePromQL parses a PromQL expression.
func ParsePromQL(q string) (parser.Expr, error) {
	return promParser.ParseExpr(q)
}

// windowMarker tells a templated query from a counter expression.
const windowMarker = "{{"

// IsWindowed reports whether a PromQL query is a template over
// {{.window}} (Sloth style) rather than a counter expression.
func IsWindowed(q string) bool { return strings.Contains(q, windowMarker) }

// RenderWindow renders a templated query with {{.window}} set to the
// duration in Prometheus notation. Unknown template keys are an error.
func RenderWindow(q string, window time.Duration) (string, error) {
	tpl, err := template.New("query").Option("missingkey=error").Parse(q)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	// sliceRange is the window less a millisecond, the range of a
	// time-slice subquery (threshold.go): Prometheus 2 includes both ends
	// of a range, so [5m:1m] would hold 6 slices, one of them older than
	// the window; [299999ms:1m] holds 5 on every version.
	data := map[string]string{"window": PromDuration(window), "sliceRange": PromDuration(window - time.Millisecond)}
	if err := tpl.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// PromDuration writes a duration the way PromQL reads it (30d, 1h30m, 90s).
func PromDuration(d time.Duration) string {
	if d%time.Second != 0 {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return FormatDuration(d)
}

// Expr builds the PromQL expression that measures q over window, scoped:
//   - a counter expression has every vector selector replaced by
//     increase(selector[window]), so it yields the events in the window;
//   - a templated query is rendered with {{.window}} = window;
//
// then every vector selector gets one equality matcher per scope label.
// Everything is done on the parsed AST: no scope value is ever spliced into
// query text.
func (q *Query) Expr(window time.Duration, scope Scope) (parser.Expr, error) {
	if q.Source != SourcePrometheus {
		return nil, fmt.Errorf("not a Prometheus query (%s)", q.Source)
	}
	scope = q.withFixed(scope) // group.go
	text := q.PromQL
	if q.Windowed {
		var err error
		if text, err = RenderWindow(text, window); err != nil {
			return nil, err
		}
	}
	expr, err := ParsePromQL(text)
	if err != nil {
		return nil, err
	}
	if !q.Windowed {
		if expr, err = wrapIncrease(expr, window); err != nil {
			return nil, err
		}
	}
	addGrouping(expr, q.GroupBy) // group.go
	if err := AddScope(expr, scope); err != nil {
		return nil, err
	}
	return expr, nil
}

// AddScope appends an equality matcher for each scope label to every
// vector selector of expr, replacing any matcher on the same label.
func AddScope(expr parser.Expr, scope Scope) error {
	if len(scope) == 0 {
		return nil
	}
	matchers := make([]*labels.Matcher, 0, len(scope))
	for _, k := range scope.Keys() {
		if !ValidLabelName(k) {
			return fmt.Errorf("scope label name %q is not a Prometheus label name", k)
		}
		m, err := labels.NewMatcher(labels.MatchEqual, k, scope[k])
		if err != nil {
			return fmt.Errorf("scope %s: %w", k, err)
		}
		matchers = append(matchers, m)
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		kept := vs.LabelMatchers[:0:0]
		for _, m := range vs.LabelMatchers {
			if _, scoped := scope[m.Name]; !scoped {
				kept = append(kept, m)
			}
		}
		vs.LabelMatchers = append(kept, matchers...)
		return nil
	})
	return nil
}

// wrapIncrease replaces every vector selector of a counter expression with
// increase(selector[window]).
func wrapIncrease(e parser.Expr, window time.Duration) (parser.Expr, error) {
	var err error
	switch n := e.(type) {
	case *parser.VectorSelector:
		return &parser.Call{
			Func: parser.Functions["increase"],
			Args: parser.Expressions{&parser.MatrixSelector{VectorSelector: n, Range: window}},
		}, nil
	case *parser.MatrixSelector, *parser.SubqueryExpr:
		return nil, fmt.Errorf("range selector %s in a counter query: write the counters bare (slogate adds the window) or use {{.window}}", n)
	case *parser.AggregateExpr:
		n.Expr, err = wrapIncrease(n.Expr, window)
		return n, err
	case *parser.BinaryExpr:
		if n.LHS, err = wrapIncrease(n.LHS, window); err != nil {
			return nil, err
		}
		n.RHS, err = wrapIncrease(n.RHS, window)
		return n, err
	case *parser.ParenExpr:
		n.Expr, err = wrapIncrease(n.Expr, window)
		return n, err
	case *parser.UnaryExpr:
		n.Expr, err = wrapIncrease(n.Expr, window)
		return n, err
	case *parser.Call:
		for i, a := range n.Args {
			if n.Args[i], err = wrapIncrease(a, window); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
	return e, nil
}

// ErrorRatioExpr builds the PromQL expression of the SLI's error ratio over
// window, scoped. Events: bad/total, or (total − good)/total. Raw: the
// failure ratio, or 1 − the success ratio.
func (s SLI) ErrorRatioExpr(window time.Duration, scope Scope) (parser.Expr, error) {
	build := func(q *Query) (parser.Expr, error) {
		e, err := q.Expr(window, scope)
		if err != nil {
			return nil, err
		}
		return &parser.ParenExpr{Expr: e}, nil
	}
	if s.IsRaw() {
		raw, err := build(s.Raw)
		if err != nil {
			return nil, err
		}
		if s.RawType == RawSuccess {
			return &parser.BinaryExpr{Op: parser.SUB, LHS: &parser.NumberLiteral{Val: 1}, RHS: raw}, nil
		}
		return raw, nil
	}
	total, err := build(s.Total)
	if err != nil {
		return nil, err
	}
	var bad parser.Expr
	if s.Bad != nil {
		if bad, err = build(s.Bad); err != nil {
			return nil, err
		}
	} else {
		good, err := build(s.Good)
		if err != nil {
			return nil, err
		}
		// total is parsed again so the two operands share no nodes.
		total2, err := build(s.Total)
		if err != nil {
			return nil, err
		}
		bad = &parser.ParenExpr{Expr: &parser.BinaryExpr{Op: parser.SUB, LHS: total2, RHS: good}}
	}
	return &parser.BinaryExpr{Op: parser.DIV, LHS: bad, RHS: total}, nil
}
