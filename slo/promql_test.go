package slo

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

func TestQueryExprBuildsThroughTheAST(t *testing.T) {
	counter := func(q string) *Query { return &Query{Source: SourcePrometheus, PromQL: q} }
	windowed := func(q string) *Query { return &Query{Source: SourcePrometheus, PromQL: q, Windowed: true} }
	tests := map[string]struct {
		q      *Query
		window time.Duration
		scope  Scope
		want   string
	}{
		"a counter selector becomes its increase over the window": {
			q: counter(`sum(http_requests_total{job="x"})`), window: 30 * Day,
			want: `sum(increase(http_requests_total{job="x"}[30d]))`,
		},
		"every selector of an expression is wrapped": {
			q: counter(`sum(a_total) + sum(b_total{c="d"})`), window: time.Hour,
			want: `sum(increase(a_total[1h])) + sum(increase(b_total{c="d"}[1h]))`,
		},
		"a template is rendered with the window": {
			q: windowed(`sum(rate(x_total[{{.window}}]))`), window: 5 * time.Minute,
			want: `sum(rate(x_total[5m]))`,
		},
		"a scope adds a matcher to every selector": {
			q: counter(`sum(ok_total) / sum(all_total{job="j"})`), window: time.Hour, scope: Scope{"version": "v2"},
			want: `sum(increase(ok_total{version="v2"}[1h])) / sum(increase(all_total{job="j",version="v2"}[1h]))`,
		},
		"a scope replaces a matcher on the same label": {
			q: counter(`sum(x_total{version=~"v.*"})`), window: time.Hour, scope: Scope{"version": "v3"},
			want: `sum(increase(x_total{version="v3"}[1h]))`,
		},
		"a scope value that looks like PromQL stays a label value": {
			q: counter(`sum(x_total)`), window: time.Hour, scope: Scope{"version": `v2"}) or vector(1) #`},
			want: `sum(increase(x_total{version="v2\"}) or vector(1) #"}[1h]))`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := tc.q.Expr(tc.window, tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.String(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			// What is sent must parse back to the same structure: one
			// aggregation per selector, no extra operators.
			back, err := ParsePromQL(e.String())
			if err != nil {
				t.Fatalf("built query does not parse: %v", err)
			}
			if back.String() != e.String() {
				t.Errorf("round trip changed the query: %s", back)
			}
		})
	}
}

func TestScopeInjectionCannotAddSelectors(t *testing.T) {
	q := &Query{Source: SourcePrometheus, PromQL: `sum(x_total)`}
	for _, v := range []string{`v2"} or vector(1) #`, `"}[5m])) or up{a="`, "v2\"\n}", `\`, `{{.window}}`} {
		t.Run(v, func(t *testing.T) {
			e, err := q.Expr(time.Hour, Scope{"version": v})
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParsePromQL(e.String())
			if err != nil {
				t.Fatalf("does not parse: %v", err)
			}
			var selectors []*parser.VectorSelector
			parser.Inspect(back, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					selectors = append(selectors, vs)
				}
				return nil
			})
			if len(selectors) != 1 || selectors[0].Name != "x_total" {
				t.Fatalf("selectors = %v", selectors)
			}
			m := selectors[0].LabelMatchers
			found := false
			for _, lm := range m {
				found = found || lm.Name == "version" && lm.Value == v
			}
			if !found {
				t.Errorf("version matcher lost: %v", m)
			}
		})
	}
}

func TestErrorRatioExpr(t *testing.T) {
	prom := func(q string, w bool) *Query { return &Query{Source: SourcePrometheus, PromQL: q, Windowed: w} }
	tests := map[string]struct {
		sli  SLI
		want string
	}{
		"good over total becomes (total - good) / total": {
			sli:  SLI{Good: prom(`sum(ok_total)`, false), Total: prom(`sum(all_total)`, false)},
			want: `((sum(increase(all_total[5m]))) - (sum(increase(ok_total[5m])))) / (sum(increase(all_total[5m])))`,
		},
		"bad over total is used as it is": {
			sli:  SLI{Bad: prom(`sum(rate(err_total[{{.window}}]))`, true), Total: prom(`sum(rate(all_total[{{.window}}]))`, true)},
			want: `(sum(rate(err_total[5m]))) / (sum(rate(all_total[5m])))`,
		},
		"a raw success ratio is turned into an error ratio": {
			sli:  SLI{Raw: prom(`avg_over_time(up[{{.window}}])`, true), RawType: RawSuccess},
			want: `1 - (avg_over_time(up[5m]))`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := tc.sli.ErrorRatioExpr(5*time.Minute, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.String(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCheckPromQL(t *testing.T) {
	tests := map[string]struct {
		q       *Query
		wantErr string
	}{
		"a counter sum is fine":              {q: &Query{Source: SourcePrometheus, PromQL: `sum(x_total)`}},
		"a string is not a measurement":      {q: &Query{Source: SourcePrometheus, PromQL: `"text"`}, wantErr: "yields a string"},
		"a nameless selector is refused":     {q: &Query{Source: SourcePrometheus, PromQL: `sum({job="x"})`}, wantErr: "names no metric"},
		"__name__ counts as a metric name":   {q: &Query{Source: SourcePrometheus, PromQL: `sum({__name__="x_total"})`}},
		"an unknown template key is refused": {q: &Query{Source: SourcePrometheus, PromQL: `sum(rate(x[{{.range}}]))`, Windowed: true}, wantErr: `no entry for key "range"`},
		"an empty query is refused":          {q: &Query{Source: SourcePrometheus}, wantErr: "required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckPromQL(tc.q)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestAddScopeRefusesNamesThatAreNotLabelNames(t *testing.T) {
	for _, name := range []string{"app.version", "", "1x", `v"}`} {
		t.Run(name, func(t *testing.T) {
			q := &Query{Source: SourcePrometheus, PromQL: `sum(x_total)`}
			if _, err := q.Expr(time.Hour, Scope{name: "v2"}); err == nil || !strings.Contains(err.Error(), "not a Prometheus label name") {
				t.Errorf("err = %v", err)
			}
		})
	}
}
