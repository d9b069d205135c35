package gate

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slogate/slogate/collectors/prometheus"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// BenchmarkGroupedSLO measures one evaluation (Measurer.Statuses) of an
// SLO grouped by route with 100 routes, next to its same-run baseline: 100
// ungrouped SLOs, one per route, against the same real Prometheus. queries/op
// counts the HTTP queries Prometheus received.
//
//	go test -run '^$' -bench GroupedSLO ./gate/
func BenchmarkGroupedSLO(b *testing.B) {
	const routes = 100
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	end := t0.Add(2 * time.Hour)
	var om testenv.OpenMetrics
	for i := range routes {
		om.Counter("http_requests", testenv.Requests("http_requests", map[string]string{"job": "api", "route": fmt.Sprintf("/r%d", i)}, t0, time.Minute,
			testenv.Phase{Until: end, Rate: 10, ErrorRatio: 0.001})...)
	}
	prom := testenv.StartPrometheus(b, om.String())
	target, _ := url.Parse(prom.URL)
	var queries atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	b.Cleanup(counting.Close)
	src, err := prometheus.New(prometheus.Config{URL: counting.URL}, nil)
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewMeasurer(src, MeasurerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	q := func(s string) *slo.Query { return &slo.Query{Source: slo.SourcePrometheus, PromQL: s} }
	grouped, err := slo.Parse("grouped.yaml", []byte(`apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: api-routes, namespace: api}
spec:
  target: "99"
  window: 4w
  indicator:
    ratio:
      errors: {metric: 'http_requests_total{job="api",code="500"}'}
      total: {metric: 'http_requests_total{job="api"}'}
      grouping: [route]
`))
	if err != nil {
		b.Fatal(err)
	}
	var ungrouped []slo.Objective
	for i := range routes {
		r := fmt.Sprintf("/r%d", i)
		ungrouped = append(ungrouped, slo.Objective{
			Name: "api-route-" + fmt.Sprint(i), Service: "api", Target: 0.99, Window: slo.Rolling(28 * slo.Day),
			SLI: slo.SLI{Name: r,
				Bad:   q(fmt.Sprintf(`sum(http_requests_total{job="api",code="500",route=%q})`, r)),
				Total: q(fmt.Sprintf(`sum(http_requests_total{job="api",route=%q})`, r))},
		})
	}
	for _, bc := range []struct {
		name string
		objs []slo.Objective
	}{
		{"baseline-100-ungrouped-SLOs", ungrouped},
		{"one-SLO-grouped-by-100-routes", grouped.Objectives},
	} {
		b.Run(bc.name, func(b *testing.B) {
			queries.Store(0)
			var statuses int
			for b.Loop() {
				sts := m.Statuses(context.Background(), bc.objs, end)
				statuses = len(sts)
				for _, st := range sts {
					if len(st.Errors) > 0 && !st.Measured() {
						b.Fatalf("%s: %+v", st.Name, st.Errors)
					}
				}
			}
			if statuses != routes {
				b.Fatalf("%d statuses, want %d", statuses, routes)
			}
			b.ReportMetric(float64(queries.Load())/float64(b.N), "queries/op")
		})
	}
}
