package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slogate/slogate/internal/testenv"
)

// BenchmarkUISLOList1000 opens the SLO list of 1,000 SLOs in chromium and
// reports the time to its first render (first contentful paint, from the
// start of the navigation: the server's rendering included) beside the
// time the page takes to fetch and decode the same list as JSON
// (GET /v1/slos), measured in the same page; and the bytes of JS and CSS
// of the list and of an SLO page (with its charts).
func BenchmarkUISLOList1000(b *testing.B) {
	const n = 1000
	now := time.Now().UTC().Truncate(time.Second)
	var om testenv.OpenMetrics
	om.Counter("http_requests", testenv.Requests("http_requests", map[string]string{"service": "checkout", "version": "v1"},
		now.Add(-2*time.Hour), time.Minute, testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.001})...)
	prom := testenv.StartPrometheus(b, om.String())
	dir := b.TempDir()
	var slos strings.Builder
	for i := range n {
		fmt.Fprintf(&slos, `---
apiVersion: openslo/v1
kind: SLO
metadata: {name: slo-%04d}
spec:
  service: svc-%02d
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    metadata: {name: slo-%04d-ok}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{service="checkout", code!~"5.."})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{service="checkout"})'}}}
  objectives: [{target: %g}]
`, i, i%50, i, 0.99+float64(i%9)/1000)
	}
	writeFileTB(b, filepath.Join(dir, "slos", "many.yaml"), slos.String())
	port := testenv.FreePort(b)
	writeFileTB(b, filepath.Join(dir, "slogate.yaml"), fmt.Sprintf(`
listen: 127.0.0.1:%d
slos: [%s]
store: sqlite:%s
sources:
  prometheus: {url: "%s", timeout: 10s}
evaluation: {schedule: "@every 1h", timeout: 5m, concurrency: 32}
auth:
  tokens:
    - {name: reader, value: %s, scopes: [gate:read]}
`, port, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), prom.URL, uiReadToken))
	base := serveForBench(b, filepath.Join(dir, "slogate.yaml"), port)
	br := startBrowser(b)
	br.login(b, base, uiReadToken, true)

	var render, fetch, html, ttfb, dcl float64
	b.ResetTimer()
	for range b.N {
		br.run(b, chromedp.Navigate(base+"/"), chromedp.WaitVisible(css(`#slo-list tbody tr:last-child`)))
		fcp := value(b, br, chromedp.Evaluate[float64](`new Promise(done => {
			const e = performance.getEntriesByName('first-contentful-paint')[0];
			if (e) { done(e.startTime); return; }
			new PerformanceObserver(l => done(l.getEntries()[0].startTime)).observe({type: 'paint', buffered: true});
		})`, chromedp.EvalAwaitPromise))
		rows := value(b, br, chromedp.Evaluate[float64](`document.querySelectorAll('#slo-list tbody tr').length`))
		if rows != n {
			b.Fatalf("%v rows, want %d", rows, n)
		}
		nav := value(b, br, chromedp.Evaluate[map[string]float64](`(e => ({size: e.encodedBodySize, ttfb: e.responseStart, end: e.responseEnd, dcl: e.domContentLoadedEventEnd}))(performance.getEntriesByType('navigation')[0])`))
		html += nav["size"]
		ttfb += nav["ttfb"]
		dcl += nav["dcl"]
		ms := value(b, br, chromedp.Evaluate[float64](`(async () => {
			const t0 = performance.now();
			const r = await fetch('/v1/slos');
			const l = await r.json();
			if (l.items.length !== `+fmt.Sprint(n)+`) throw new Error('items ' + l.items.length);
			return performance.now() - t0;
		})()`, chromedp.EvalAwaitPromise))
		render += fcp
		fetch += ms
	}
	b.StopTimer()
	nf := float64(b.N)
	b.ReportMetric(render/nf, "render-ms")
	b.ReportMetric(fetch/nf, "json-ms")
	b.ReportMetric(render/fetch, "render/json")
	b.ReportMetric(html/nf, "html-bytes")
	b.ReportMetric(ttfb/nf, "ttfb-ms")
	b.ReportMetric(dcl/nf, "dcl-ms")

	// Page weights: the list's CSS (it has no script), then an SLO page.
	br.mu.Lock()
	listJS, listCSS := br.bytes["js"], br.bytes["css"]
	br.bytes = map[string]float64{}
	br.mu.Unlock()
	br.run(b, chromedp.Navigate(base+"/ui/slos/slo-0001"), chromedp.WaitVisible(css(`#charts[data-ready=true]`)))
	br.mu.Lock()
	defer br.mu.Unlock()
	b.ReportMetric(listJS, "list-js-bytes")
	b.ReportMetric(listCSS, "list-css-bytes")
	b.ReportMetric(br.bytes["js"], "slo-js-bytes")
	b.ReportMetric(br.bytes["css"], "slo-css-bytes")
	if len(br.problems) > 0 || len(br.outside) > 0 {
		b.Fatalf("problems %v, requests off loopback %v", br.problems, br.outside)
	}
}

// serveForBench runs slogate serve with the config until the benchmark
// ends, and waits for its first evaluation.
func serveForBench(b *testing.B, config string, port int) string {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	go func() { done <- run(ctx, []string{"serve", "--config", config}, os.Getenv, io.Discard, logs) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHealthy(b, base, done, 5*time.Minute)
	return base
}

func writeFileTB(t testing.TB, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
