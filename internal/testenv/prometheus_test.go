package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestOpenMetricsText(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var om OpenMetrics
	om.Counter("http_requests", Requests("http_requests", map[string]string{"version": "v1"}, t0, time.Minute,
		Phase{Until: t0.Add(time.Minute), Rate: 10, ErrorRatio: 0.1},
		Phase{Until: t0.Add(2 * time.Minute), Rate: 10, ErrorRatio: 0.5})...)
	om.Histogram("rpc_seconds", HistogramSeries("rpc_seconds", nil, []float64{0.3}, t0, time.Minute,
		LatencyPhase{Until: t0.Add(time.Minute), Rate: 1, Below: []float64{0.75}, Mean: 0.5})...)
	// A second Add to the first family keeps its lines together.
	om.Counter("http_requests", CounterSeries("http_requests_total", map[string]string{"path": `a"b\c`}, t0, time.Minute,
		Segment{Until: t0.Add(90 * time.Second), Rate: 2}))

	// 10/s × 60 s = 600 per minute: 540 ok + 60 bad, then 300 + 300.
	// The last series ends off the minute grid, so its end is sampled too.
	want := `# TYPE http_requests counter
http_requests_total{code="200",version="v1"} 0 1748736000
http_requests_total{code="200",version="v1"} 540 1748736060
http_requests_total{code="200",version="v1"} 840 1748736120
http_requests_total{code="500",version="v1"} 0 1748736000
http_requests_total{code="500",version="v1"} 60 1748736060
http_requests_total{code="500",version="v1"} 360 1748736120
http_requests_total{path="a\"b\\c"} 0 1748736000
http_requests_total{path="a\"b\\c"} 120 1748736060
http_requests_total{path="a\"b\\c"} 180 1748736090
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le="0.3"} 0 1748736000
rpc_seconds_bucket{le="0.3"} 45 1748736060
rpc_seconds_bucket{le="+Inf"} 0 1748736000
rpc_seconds_bucket{le="+Inf"} 60 1748736060
rpc_seconds_count 0 1748736000
rpc_seconds_count 60 1748736060
rpc_seconds_sum 0 1748736000
rpc_seconds_sum 30 1748736060
# EOF
`
	if got := om.String(); got != want {
		t.Errorf("OpenMetrics text:\n%s\nwant:\n%s", got, want)
	}
}

func TestOpenMetricsRefusesMistakes(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]func(o *OpenMetrics){
		"a counter sample without _total is refused": func(o *OpenMetrics) {
			o.Counter("http_requests", Series{Name: "http_requests"})
		},
		"a family added again with another type is refused": func(o *OpenMetrics) {
			o.Counter("x", Series{Name: "x_total"})
			o.Add(TypeGauge, "x", Series{Name: "x"})
		},
		"a bucket without le is refused": func(o *OpenMetrics) {
			o.Histogram("h", Series{Name: "h_bucket"})
		},
		"samples out of time order are refused": func(o *OpenMetrics) {
			o.Counter("x", Series{Name: "x_total", Samples: []Sample{{T: t0.Add(time.Minute)}, {T: t0}}})
		},
	}
	for name, add := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			add(&OpenMetrics{})
		})
	}
}

// queryValue runs an instant query and returns the single sample's value,
// or ok=false for an empty vector.
func queryValue(t *testing.T, base, expr string, at time.Time) (v float64, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := url.Values{"query": {expr}, "time": {strconv.FormatInt(at.Unix(), 10)}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?"+q.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("query %s: decode: %v", expr, err)
	}
	if body.Status != "success" {
		t.Fatalf("query %s: %s", expr, body.Error)
	}
	switch len(body.Data.Result) {
	case 0:
		return 0, false
	case 1:
		v, err := strconv.ParseFloat(fmt.Sprint(body.Data.Result[0].Value[1]), 64)
		if err != nil {
			t.Fatalf("query %s: %v", expr, err)
		}
		return v, true
	}
	t.Fatalf("query %s: %d series, want 1", expr, len(body.Data.Result))
	return 0, false
}

// TestStartPrometheusDataEndingNow checks what later gate tests rely on:
// 30 days of backfilled data that end at the current second are all
// queryable, the last sample included.
func TestStartPrometheusDataEndingNow(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	start := now.Add(-30 * 24 * time.Hour)
	var om OpenMetrics
	// 1 event per second for 30 days; the last sample is at now exactly
	// (off the minute grid, so CounterSeries samples it on its own).
	om.Counter("events", CounterSeries("events_total", map[string]string{"job": "t"}, start, time.Minute,
		Segment{Until: now, Rate: 1}))
	began := time.Now()
	p := StartPrometheus(t, om.String())
	t.Logf("backfilled 30 days and started in %s", time.Since(began).Round(time.Millisecond))

	tests := map[string]struct {
		expr string
		want float64
	}{
		"the last sample, taken now, is the counter's value now":        {"events_total", 30 * 24 * 3600},
		"the last hour, which would be the head block, has 3600 events": {"increase(events_total[1h])", 3600},
		"the whole 30 days are kept by the retention":                   {"increase(events_total[30d])", 30 * 24 * 3600},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := queryValue(t, p.URL, tc.expr, now)
			if !ok {
				t.Fatalf("%s: no data", tc.expr)
			}
			if got != tc.want {
				t.Errorf("%s = %v, want %v", tc.expr, got, tc.want)
			}
		})
	}
}

func TestStartEmptyPrometheus(t *testing.T) {
	p := StartEmptyPrometheus(t)
	if _, ok := queryValue(t, p.URL, "events_total", time.Now()); ok {
		t.Error("an empty Prometheus answered a sample")
	}
}

func TestDownURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, DownURL(t)+"/-/ready", nil)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("something answers %s on the down URL", resp.Status)
	}
}

// Blocks backfilled from a file and rule files reach the server: the
// data is queryable and a rule evaluated every second records from it.
func TestStartPrometheusWithBlocksAndRules(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	var om OpenMetrics
	om.Counter("events", CounterSeries("events_total", map[string]string{"job": "t"}, now.Add(-time.Hour), time.Minute,
		Segment{Until: now, Rate: 1}))
	dir := t.TempDir()
	data := filepath.Join(dir, "data.om")
	rules := filepath.Join(dir, "rules.yaml")
	for f, body := range map[string]string{
		data:  om.String(),
		rules: "groups:\n  - name: g\n    rules:\n      - record: job:events:count\n        expr: sum(events_total)\n",
	} {
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := StartPrometheusWith(t, "", PrometheusConfig{
		Blocks: BackfillFiles(t, data), RuleFiles: []string{rules}, EvaluationInterval: time.Second,
	})
	if got, ok := queryValue(t, p.URL, "increase(events_total[1h])", now); !ok || got != 3600 {
		t.Errorf("increase(events_total[1h]) = %v (%v), want 3600 from the copied blocks", got, ok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		// The rule's first evaluation comes within a second of the start:
		// poll for the state Prometheus reaches by itself.
		if got, ok := queryValue(t, p.URL, "job:events:count", time.Now()); ok {
			if got != 3600 {
				t.Errorf("job:events:count = %v, want 3600 (the last sample)", got)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("job:events:count was never recorded: the rule file was not loaded")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
