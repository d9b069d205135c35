package slo

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHistogramRecognisesLatencySLIs(t *testing.T) {
	counter := func(q string) *Query { return &Query{Source: SourcePrometheus, PromQL: q} }
	windowed := func(q string) *Query { return &Query{Source: SourcePrometheus, PromQL: q, Windowed: true} }
	tests := map[string]struct {
		sli       SLI
		ok        bool
		metric    string
		matchers  string
		threshold float64
	}{
		"an OpenSLO counter SLI over a bucket and the count is a histogram": {
			sli: SLI{
				Good:  counter(`sum(http_request_duration_seconds_bucket{service="checkout", le="0.3"})`),
				Total: counter(`sum(http_request_duration_seconds_count{service="checkout"})`),
			},
			ok: true, metric: "http_request_duration_seconds", matchers: `service="checkout"`, threshold: 0.3,
		},
		"a Sloth template over rates with the +Inf bucket as total is a histogram": {
			sli: SLI{
				Good:  windowed(`sum(rate(rpc_latency_bucket{le="0.25",job="api"}[{{.window}}]))`),
				Total: windowed(`sum(rate(rpc_latency_bucket{job="api",le="+Inf"}[{{.window}}]))`),
			},
			ok: true, metric: "rpc_latency", matchers: `job="api"`, threshold: 0.25,
		},
		"an availability SLI is not a histogram": {
			sli: SLI{Good: counter(`sum(http_requests_total{code!~"5.."})`), Total: counter(`sum(http_requests_total)`)},
		},
		"a total of another histogram is not this one": {
			sli: SLI{Good: counter(`sum(a_bucket{le="1"})`), Total: counter(`sum(b_count)`)},
		},
		"different matchers on good and total are not one histogram": {
			sli: SLI{Good: counter(`sum(a_bucket{le="1",job="x"})`), Total: counter(`sum(a_count{job="y"})`)},
		},
		"a regular expression on le is not one bound": {
			sli: SLI{Good: counter(`sum(a_bucket{le=~"0.1|0.3"})`), Total: counter(`sum(a_count)`)},
		},
		"a good query over two selectors is not a histogram": {
			sli: SLI{Good: counter(`sum(a_bucket{le="1"}) + sum(a_bucket{le="2"})`), Total: counter(`sum(a_count)`)},
		},
		"an SLI counting bad events is not compared": {
			sli: SLI{Bad: counter(`sum(a_bucket{le="1"})`), Total: counter(`sum(a_count)`)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, ok := tc.sli.Histogram()
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			var ms []string
			for _, m := range h.Matchers {
				ms = append(ms, m.String())
			}
			if h.Metric != tc.metric || strings.Join(ms, ",") != tc.matchers || h.Threshold != tc.threshold {
				t.Errorf("got %s {%s} le=%v, want %s {%s} le=%v", h.Metric, strings.Join(ms, ","), h.Threshold, tc.metric, tc.matchers, tc.threshold)
			}
		})
	}
}

func TestBucketsExprIsBuiltThroughTheAST(t *testing.T) {
	sli := SLI{
		Good:  &Query{Source: SourcePrometheus, PromQL: `sum(lat_bucket{service="checkout",version=~".+",le="0.3"})`},
		Total: &Query{Source: SourcePrometheus, PromQL: `sum(lat_count{service="checkout",version=~".+"})`},
	}
	h, ok := sli.Histogram()
	if !ok {
		t.Fatal("not a histogram")
	}
	tests := map[string]struct {
		scope Scope
		want  string
	}{
		"unscoped it sums the increase of every bucket by le": {
			want: `sum by (le) (increase(lat_bucket{service="checkout",version=~".+"}[10m]))`,
		},
		"a scope replaces the matcher on its label": {
			scope: Scope{"version": "v2"},
			want:  `sum by (le) (increase(lat_bucket{service="checkout",version="v2"}[10m]))`,
		},
		"a scope value that looks like PromQL stays a label value": {
			scope: Scope{"version": `"} or vector(1) #`},
			want:  `sum by (le) (increase(lat_bucket{service="checkout",version="\"} or vector(1) #"}[10m]))`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := h.BucketsExpr(10*time.Minute, tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.String(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	if _, err := h.BucketsExpr(time.Hour, Scope{"not a label": "x"}); err == nil {
		t.Error("a scope label that is not a label name was accepted")
	}
}

func TestDecumulate(t *testing.T) {
	inf := math.Inf(1)
	tests := map[string]struct {
		in      map[float64]float64
		want    []Bucket
		wantErr string
	}{
		"cumulative buckets become per-bucket counts in bound order": {
			in:   map[float64]float64{inf: 100, 0.1: 50, 1: 99, 0.3: 90},
			want: []Bucket{{0.1, 50}, {0.3, 40}, {1, 9}, {inf, 1}},
		},
		"an extrapolated count a little below the one before reads zero": {
			in:   map[float64]float64{0.1: 10.2, 0.3: 10, inf: 12},
			want: []Bucket{{0.1, 10.2}, {0.3, 0}, {inf, 1.8000000000000007}},
		},
		"without +Inf it is an error": {
			in: map[float64]float64{0.1: 1, 0.3: 2}, wantErr: `no le="+Inf" bucket`,
		},
		"buckets that are not cumulative are an error": {
			in: map[float64]float64{0.1: 10, 0.3: 4, inf: 12}, wantErr: "not cumulative",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Decumulate(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
