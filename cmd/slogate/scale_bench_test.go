package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/collectors"
	"github.com/slogate/slogate/collectors/prometheus"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// The scale benchmarks of issue #13: scheduled runs over 1,000 SLOs (and
// 10,000), each with today's path (one query per window and role, every
// window at every run) measured in the same run as the new one (one query
// per role for every window, long windows reused for a share of their
// length). The load on Prometheus is read from Prometheus' own /metrics:
// prometheus_engine_query_duration_seconds_count{slice="inner_eval"} (one
// per query evaluated, Prometheus 2.42) and process_cpu_seconds_total.

// writeScaleSLOs writes copies × 1,000 SLOs: copy k of a service's 10 SLOs
// is named svc-NNN-cK and reads the same series.
func writeScaleSLOs(tb testing.TB, dir string, copies int) {
	tb.Helper()
	for k := range copies {
		for i := range benchServices {
			svc := fmt.Sprintf("svc-%03d", i)
			name := svc
			if k > 0 {
				name = fmt.Sprintf("%s-c%d", svc, k)
			}
			for file, text := range map[string]string{name + ".yaml": benchOpenSLO, name + ".sloth.yaml": benchSloth} {
				body := strings.ReplaceAll(text, "{{S}}", svc)
				if k > 0 {
					body = strings.ReplaceAll(body, "{name: "+svc+"-", "{name: "+name+"-")
					body = strings.ReplaceAll(body, `service: "`+svc+`"`, `service: "`+name+`"`)
					body = strings.ReplaceAll(body, "service: "+svc+"\n", "service: "+name+"\n")
				}
				if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o644); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
}

// promLoad is what Prometheus says it has done so far.
type promLoad struct{ queries, cpu float64 }

func (a promLoad) sub(b promLoad) promLoad { return promLoad{a.queries - b.queries, a.cpu - b.cpu} }

func readPromLoad(tb testing.TB, promURL string) promLoad {
	tb.Helper()
	resp, err := http.Get(promURL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("prometheus /metrics: %v", err)
	}
	var l promLoad
	if f, ok := fams["process_cpu_seconds_total"]; ok && len(f.Metric) == 1 {
		l.cpu = f.Metric[0].GetCounter().GetValue()
	} else {
		tb.Fatal("prometheus /metrics: no process_cpu_seconds_total")
	}
	found := false
	for _, m := range fams["prometheus_engine_query_duration_seconds"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "slice" && lp.GetValue() == "inner_eval" {
				l.queries = float64(m.GetSummary().GetSampleCount())
				found = true
			}
		}
	}
	if !found {
		tb.Fatal(`prometheus /metrics: no prometheus_engine_query_duration_seconds{slice="inner_eval"}`)
	}
	return l
}

// scaleBoards are the two boards of a comparison over the same SLOs and
// Prometheus.
type scaleBoards struct {
	old, cur *gate.Board
	clock    time.Time
}

func newScaleBoards(b *testing.B, promURL string, set *slo.Set) *scaleBoards {
	b.Helper()
	client, err := prometheus.New(prometheus.Config{URL: promURL}, nil)
	if err != nil {
		b.Fatal(err)
	}
	mux := collectors.NewMux()
	mux.Handle(slo.SourcePrometheus, client)
	sb := &scaleBoards{}
	board := func(noBatch bool, divisor int) *gate.Board {
		m, err := gate.NewMeasurer(mux, gate.MeasurerConfig{Concurrency: benchConcurrency, Timeout: benchTimeout, NoBatch: noBatch})
		if err != nil {
			b.Fatal(err)
		}
		bd, err := gate.NewBoard(gate.BoardConfig{Measurer: m, SLOs: func() *slo.Set { return set },
			Clock: func() time.Time { return sb.clock }, AgeDivisor: divisor, Timeout: 10 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		return bd
	}
	sb.old = board(true, -1) // today's path: every window, one query per window and role
	sb.cur = board(false, 0) // batched, long windows reused
	return sb
}

// runFigures are one board's totals over the runs of a benchmark.
type runFigures struct {
	runs    int
	seconds float64
	load    promLoad
}

func (sb *scaleBoards) runOnce(b *testing.B, bd *gate.Board, promURL string, f *runFigures) []slo.Status {
	b.Helper()
	before := readPromLoad(b, promURL)
	began := time.Now()
	bd.Run(context.Background())
	f.seconds += time.Since(began).Seconds()
	d := readPromLoad(b, promURL).sub(before)
	f.load = promLoad{f.load.queries + d.queries, f.load.cpu + d.cpu}
	f.runs++
	return bd.Statuses(context.Background(), time.Time{})
}

// sameFresh fails the benchmark unless every figure cur measured fresh
// (not kept from an earlier run) equals old's to 1e-9.
func sameFresh(b *testing.B, old, cur []slo.Status) {
	b.Helper()
	eq := func(a, c *float64) bool {
		if a == nil || c == nil {
			return a == c
		}
		return math.Abs(*a-*c) <= 1e-9*math.Max(1, math.Abs(*a))
	}
	if len(old) != len(cur) {
		b.Fatalf("%d statuses, today's path %d", len(cur), len(old))
	}
	for i := range old {
		o, c := old[i], cur[i]
		if len(o.Errors) > 0 || len(c.Errors) > 0 {
			b.Fatalf("%s: errors %+v / today's path %+v", c.Name, c.Errors, o.Errors)
		}
		if _, kept := c.AgeSeconds["period"]; !kept && (!eq(o.SLI.Ratio, c.SLI.Ratio) || !eq(o.ErrorBudget.Remaining, c.ErrorBudget.Remaining)) {
			b.Fatalf("%s: fresh SLI %v, today's path %v", c.Name, *c.SLI.Ratio, *o.SLI.Ratio)
		}
		for w, v := range o.BurnRates {
			if _, kept := c.AgeSeconds[w]; !kept && !eq(v, c.BurnRates[w]) {
				b.Fatalf("%s: fresh burn rate over %s %v, today's path %v", c.Name, w, *c.BurnRates[w], *v)
			}
		}
	}
}

// BenchmarkScheduledRun1000SLOs runs the scheduled evaluation of 1,000
// SLOs (100 services × 10, 8 OpenSLO and 2 Sloth) against a real
// Prometheus every minute for 10 minutes, today's path and the new one
// run after run in the same process (each run of the one right after the
// same minute's run of the other), and checks that every figure the new
// path measured fresh equals today's to 1e-9. Figures per run:
//
//	queries/slo, old-queries/slo   Prometheus' own count of queries
//	s/1000-slos, old-s/1000-slos   wall time of one run
//	prom-cpu-s, old-prom-cpu-s     Prometheus' CPU seconds for one run
//	first-run-*                    the first run alone (nothing kept yet)
//
//	go test -run '^$' -bench ScheduledRun -benchtime 1x ./cmd/slogate/
func BenchmarkScheduledRun1000SLOs(b *testing.B) {
	end := time.Now().UTC().Truncate(time.Minute)
	p := testenv.StartPrometheus(b, benchData(end))
	dir := b.TempDir()
	writeScaleSLOs(b, dir, 1)
	set, err := slo.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	if len(set.Objectives) != 1000 {
		b.Fatalf("%d SLOs", len(set.Objectives))
	}
	const runs = 10
	for b.Loop() {
		sb := newScaleBoards(b, p.URL, set)
		var old, cur, oldFirst, curFirst runFigures
		for i := range runs {
			sb.clock = end.Add(time.Duration(i-runs) * time.Minute)
			fo, fc := &old, &cur
			if i == 0 {
				fo, fc = &oldFirst, &curFirst
			}
			// Alternate which goes first, so that neither always meets a
			// warmer Prometheus.
			var os, cs []slo.Status
			if i%2 == 0 {
				os = sb.runOnce(b, sb.old, p.URL, fo)
				cs = sb.runOnce(b, sb.cur, p.URL, fc)
			} else {
				cs = sb.runOnce(b, sb.cur, p.URL, fc)
				os = sb.runOnce(b, sb.old, p.URL, fo)
			}
			sameFresh(b, os, cs)
		}
		per := func(f runFigures) (q, s, cpu float64) {
			n := float64(f.runs)
			return f.load.queries / n / 1000, f.seconds / n, f.load.cpu / n
		}
		q, s, cpu := per(cur)
		oq, os, ocpu := per(old)
		b.ReportMetric(q, "queries/slo")
		b.ReportMetric(oq, "old-queries/slo")
		b.ReportMetric(s, "s/1000-slos")
		b.ReportMetric(os, "old-s/1000-slos")
		b.ReportMetric(os/s, "speedup")
		b.ReportMetric(cpu, "prom-cpu-s")
		b.ReportMetric(ocpu, "old-prom-cpu-s")
		fq, fs, fcpu := per(curFirst)
		foq, fos, focpu := per(oldFirst)
		b.ReportMetric(fq, "first-run-queries/slo")
		b.ReportMetric(foq, "first-run-old-queries/slo")
		b.ReportMetric(fs, "first-run-s")
		b.ReportMetric(fos, "first-run-old-s")
		b.ReportMetric(fcpu, "first-run-prom-cpu-s")
		b.ReportMetric(focpu, "first-run-old-prom-cpu-s")
	}
}
