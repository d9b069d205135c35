package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/collectors"
	"github.com/slogate/slogate/collectors/prometheus"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// The benchmark's fleet: benchServices services of 10 SLOs each (8 OpenSLO,
// 2 Sloth), measured at benchAt.
//
// Series per service: http_requests_total{code="200"|"500"} and a histogram
// with one bound (bucket le="0.3", le="+Inf", _count, _sum): 6 series, 600
// in all. Samples every hour from benchAt − 31d, then every minute for the
// last hour, so that every range the SLOs need (30d, 28d, 14d, 7d, the
// calendar month and week, 3d … 1h on the hour grid, 30m and 5m on the
// minute grid) has a sample at both ends, with ~480,000 samples to backfill
// instead of 27 million at one a minute.
const (
	benchServices    = 100
	benchConcurrency = 16 // the Measurer's default and the CLI's
	benchTimeout     = 30 * time.Second
)

var benchAt = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// benchData is the fleet's series (100 services, each with a request
// counter by code and a latency histogram, rates and error ratios varying
// by service) with samples up to end: hourly from end − 31d, then every
// minute for the last hour.
func benchData(end time.Time) string {
	var ts []time.Time
	start := end.Add(-31 * slo.Day)
	for t := start; t.Before(end.Add(-time.Hour)); t = t.Add(time.Hour) {
		ts = append(ts, t)
	}
	for t := end.Add(-time.Hour); !t.After(end); t = t.Add(time.Minute) {
		ts = append(ts, t)
	}
	steady := func(name string, labels map[string]string, rate float64) testenv.Series {
		s := testenv.Series{Name: name, Labels: labels}
		for _, t := range ts {
			s.Samples = append(s.Samples, testenv.Sample{T: t, V: rate * t.Sub(start).Seconds()})
		}
		return s
	}
	var om testenv.OpenMetrics
	for i := range benchServices {
		svc := fmt.Sprintf("svc-%03d", i)
		rate := float64(1 + i%7)
		errRatio := 0.0001 * float64(1+i%10)
		om.Counter("bench_requests",
			steady("bench_requests_total", map[string]string{"service": svc, "code": "200"}, rate*(1-errRatio)),
			steady("bench_requests_total", map[string]string{"service": svc, "code": "500"}, rate*errRatio))
		om.Histogram("bench_request_duration_seconds",
			steady("bench_request_duration_seconds_bucket", map[string]string{"service": svc, "le": "0.3"}, rate*0.995),
			steady("bench_request_duration_seconds_bucket", map[string]string{"service": svc, "le": "+Inf"}, rate),
			steady("bench_request_duration_seconds_count", map[string]string{"service": svc}, rate),
			steady("bench_request_duration_seconds_sum", map[string]string{"service": svc}, rate*0.1))
	}
	return om.String()
}

// benchOpenSLO is one service's 8 OpenSLO SLOs: counters good/total and
// bad/total, histogram buckets, rolling and calendar windows.
const benchOpenSLO = `apiVersion: openslo/v1
kind: SLO
metadata: {name: {{S}}-availability}
spec:
  service: {{S}}
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    metadata: {name: {{S}}-ok}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}", code!~"5.."})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}"})'}}}
  objectives: [{target: 0.999}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: {{S}}-errors}
spec:
  service: {{S}}
  budgetingMethod: Occurrences
  timeWindow: [{duration: 28d, isRolling: true}]
  indicator:
    metadata: {name: {{S}}-errors}
    spec:
      ratioMetric:
        counter: true
        bad: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}", code=~"5.."})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}"})'}}}
  objectives: [{target: 0.995}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: {{S}}-availability-7d}
spec:
  service: {{S}}
  budgetingMethod: Occurrences
  timeWindow: [{duration: 7d, isRolling: true}]
  indicator:
    metadata: {name: {{S}}-ok-7d}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}", code="200"})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}"})'}}}
  objectives: [{target: 0.99}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: {{S}}-availability-14d}
spec:
  service: {{S}}
  budgetingMethod: Occurrences
  timeWindow: [{duration: 14d, isRolling: true}]
  indicator:
    metadata: {name: {{S}}-ok-14d}
    spec:
      ratioMetric:
        counter: true
        bad: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}", code="500"})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}"})'}}}
  objectives: [{target: 0.9995}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: {{S}}-latency}
spec:
  service: {{S}}
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    metadata: {name: {{S}}-fast}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_request_duration_seconds_bucket{service="{{S}}", le="0.3"})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_request_duration_seconds_count{service="{{S}}"})'}}}
  objectives: [{target: 0.99}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: {{S}}-latency-28d}
spec:
  service: {{S}}
  budgetingMethod: Occurrences
  timeWindow: [{duration: 28d, isRolling: true}]
  indicator:
    metadata: {name: {{S}}-fast-28d}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_request_duration_seconds_bucket{service="{{S}}", le="0.3"})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_request_duration_seconds_bucket{service="{{S}}", le="+Inf"})'}}}
  objectives: [{target: 0.95}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: {{S}}-month}
spec:
  service: {{S}}
  budgetingMethod: Occurrences
  timeWindow: [{duration: 1M, isRolling: false, calendar: {startTime: "2026-01-01 00:00:00", timeZone: Europe/Paris}}]
  indicator:
    metadata: {name: {{S}}-ok-month}
    spec:
      ratioMetric:
        counter: true
        bad: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}", code=~"5.."})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}"})'}}}
  objectives: [{target: 0.999}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: {{S}}-week}
spec:
  service: {{S}}
  budgetingMethod: Occurrences
  timeWindow: [{duration: 1w, isRolling: false, calendar: {startTime: "2026-01-05 00:00:00", timeZone: UTC}}]
  indicator:
    metadata: {name: {{S}}-ok-week}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}", code!~"5.."})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(bench_requests_total{service="{{S}}"})'}}}
  objectives: [{target: 0.995}]
`

// benchSloth is one service's 2 Sloth SLOs: events and raw.
const benchSloth = `version: "prometheus/v1"
service: "{{S}}"
slos:
  - name: events
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(bench_requests_total{service="{{S}}", code=~"5.."}[{{.window}}]))
        total_query: sum(rate(bench_requests_total{service="{{S}}"}[{{.window}}]))
    alerting: {name: Events}
  - name: raw
    objective: 99.5
    sli:
      raw:
        error_ratio_query: sum(rate(bench_requests_total{service="{{S}}", code=~"5.."}[{{.window}}])) / sum(rate(bench_requests_total{service="{{S}}"}[{{.window}}]))
    alerting: {name: Raw}
`

func writeBenchSLOs(b *testing.B, dir string) {
	b.Helper()
	for i := range benchServices {
		svc := fmt.Sprintf("svc-%03d", i)
		for file, text := range map[string]string{svc + ".yaml": benchOpenSLO, svc + ".sloth.yaml": benchSloth} {
			body := []byte(strings.ReplaceAll(text, "{{S}}", svc))
			if err := os.WriteFile(filepath.Join(dir, file), body, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// countingProxy is a reverse proxy in front of Prometheus that counts the
// instant queries (/api/v1/query) it forwards.
func countingProxy(b *testing.B, target string) (string, *atomic.Int64) {
	b.Helper()
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	rp.Transport = tr
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/query" {
			n.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	b.Cleanup(srv.Close)
	return srv.URL, &n
}

// BenchmarkBudget1000SLOs measures 1,000 SLOs (the SLO window and 7
// burn-rate windows each) against a real Prometheus through gate.Measurer
// and the prometheus collector, as `slogate budget` does, next to a
// same-run baseline: the very same PromQL queries (taken from the
// collector) sent by a bare client_golang API v1 client with the same
// concurrency (16 measurements in flight, the queries of one measurement
// concurrently), the same HTTP keep-alive pool and the same timeout
// parameter. Both go through a counting reverse proxy: queries/slo is
// counted, not computed. The difference is slogate's own cost (building
// queries on the AST, classifying, summing, the budget math).
//
//	go test -run '^$' -bench Budget1000 ./cmd/slogate/
func BenchmarkBudget1000SLOs(b *testing.B) {
	p := testenv.StartPrometheus(b, benchData(benchAt))
	proxyURL, queries := countingProxy(b, p.URL)
	dir := b.TempDir()
	writeBenchSLOs(b, dir)
	set, err := slo.Load(dir)
	if err != nil {
		b.Fatalf("load: %v", err)
	}
	objs := set.Objectives
	if len(objs) != 10*benchServices {
		b.Fatalf("%d SLOs, want %d", len(objs), 10*benchServices)
	}
	client, err := prometheus.New(prometheus.Config{URL: proxyURL}, nil)
	if err != nil {
		b.Fatal(err)
	}
	mux := collectors.NewMux()
	mux.Handle(slo.SourcePrometheus, client)
	m, err := gate.NewMeasurer(mux, gate.MeasurerConfig{Concurrency: benchConcurrency, Timeout: benchTimeout})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	// The baseline's work: every measurement's queries, as the collector
	// builds them.
	type measurement struct {
		at      time.Time
		queries []string
	}
	var work []measurement
	for _, o := range objs {
		for _, r := range o.Plan(benchAt) {
			mm, err := client.Measure(ctx, o.SLI, r, nil)
			if err != nil {
				b.Fatalf("%s over %s: %v", o.Name, r, err)
			}
			w := measurement{at: r.End}
			for _, res := range mm.Results {
				w.queries = append(w.queries, res.Query)
			}
			work = append(work, w)
		}
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16 // as the collector's client
	raw, err := api.NewClient(api.Config{Address: proxyURL, RoundTripper: tr})
	if err != nil {
		b.Fatal(err)
	}
	bare := v1.NewAPI(raw)
	baseline := func(b *testing.B) {
		sem := make(chan struct{}, benchConcurrency)
		var wg sync.WaitGroup
		var failed atomic.Value
		for _, w := range work {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				var inner sync.WaitGroup
				for _, q := range w.queries {
					inner.Go(func() {
						ctx, cancel := context.WithTimeout(ctx, benchTimeout)
						defer cancel()
						v, _, _, err := bare.Query(ctx, q, w.at, v1.WithTimeout(prometheus.DefaultTimeout))
						if err == nil && len(v.(model.Vector)) == 0 {
							err = fmt.Errorf("%s: empty result", q)
						}
						if err != nil {
							failed.Store(err)
						}
					})
				}
				inner.Wait()
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			b.Fatal(err)
		}
	}

	// The two are interleaved, one pass each per iteration, so that the
	// load of a shared machine weighs on both alike; ns/op is the two
	// passes together, the figures to read are these:
	//   slos/s, queries/slo            slogate (Measurer + collector)
	//   bare-slos/s, bare-queries/slo  the bare client_golang baseline
	//   slogate/bare                   slogate's time over the baseline's
	b.Run("Measurer vs bare client_golang", func(b *testing.B) {
		var took, bareTook time.Duration
		var n, bareN int64
		for b.Loop() {
			queries.Store(0)
			began := time.Now()
			for _, st := range m.Statuses(ctx, objs, benchAt) {
				if len(st.Errors) > 0 {
					b.Fatalf("%s: %+v", st.Name, st.Errors)
				}
			}
			took += time.Since(began)
			n += queries.Swap(0)
			began = time.Now()
			baseline(b)
			bareTook += time.Since(began)
			bareN += queries.Swap(0)
		}
		slos := float64(len(objs) * b.N)
		b.ReportMetric(slos/took.Seconds(), "slos/s")
		b.ReportMetric(float64(n)/slos, "queries/slo")
		b.ReportMetric(slos/bareTook.Seconds(), "bare-slos/s")
		b.ReportMetric(float64(bareN)/slos, "bare-queries/slo")
		b.ReportMetric(took.Seconds()/bareTook.Seconds(), "slogate/bare")
	})

	b.Run("slogate budget command", func(b *testing.B) {
		// The whole CLI: loading the 200 files, measuring, printing JSON.
		queries.Store(0)
		for b.Loop() {
			r := runCLI(b, nil, "budget", "--prometheus", proxyURL, "--at", benchAt.Format(time.RFC3339), "-o", "json", dir)
			if r.code != exitOK {
				b.Fatalf("exit %d: %v\n%s", r.code, r.err, r.stderr)
			}
		}
		slos := float64(len(objs) * b.N)
		b.ReportMetric(slos/b.Elapsed().Seconds(), "slos/s")
		b.ReportMetric(float64(queries.Load())/slos, "queries/slo")
	})
}
