package prometheus

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// The data every test against the real Prometheus reads, queried at the
// fixed instant at, so the figures never change.
//
// Samples are every minute from at − 31 days to at, on the minute grid, so
// the edges of every range below (30 days, 1 day, whole days before at)
// fall exactly on samples. Prometheus 2.42's increase() then finds a sample
// at each end of the range (ranges include their start), extrapolates by
// nothing, and answers v(end) − v(start): the figures are exact, and the
// tests allow only float rounding (1e-9 relative). On Prometheus ≥ 3.0 the
// start is excluded and increase() extrapolates the first minute back from
// the average rate of the rest: exact for a steady counter, off by at most
// a minute's share of a rate change otherwise.
//
// checkout, version v1: 10 req/s all along; 0.1 % errors until at − 1d,
// then 2 %.
// checkout, version v2: no traffic until at − 1d (its counters exist and
// stay 0, so no range starts before its first sample), then 2 req/s with
// 5 % errors.
// http_request_duration_seconds{service="checkout"}: 10 req/s; under 0.1 s,
// 0.3 s and 1 s: 50 %, 99 % and 99.9 % until at − 1d, then 40 %, 95 %, 99 %.
var at = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

const (
	day   = 24 * time.Hour
	month = 30 * day
)

func checkoutData() string {
	start := at.Add(-31 * day)
	deploy := at.Add(-day)
	v := func(version string) map[string]string {
		return map[string]string{"service": "checkout", "version": version}
	}
	var om testenv.OpenMetrics
	om.Counter("http_requests", testenv.Requests("http_requests", v("v1"), start, time.Minute,
		testenv.Phase{Until: deploy, Rate: 10, ErrorRatio: 0.001},
		testenv.Phase{Until: at, Rate: 10, ErrorRatio: 0.02})...)
	om.Counter("http_requests", testenv.Requests("http_requests", v("v2"), start, time.Minute,
		testenv.Phase{Until: deploy, Rate: 0},
		testenv.Phase{Until: at, Rate: 2, ErrorRatio: 0.05})...)
	om.Histogram("http_request_duration_seconds", testenv.HistogramSeries("http_request_duration_seconds",
		map[string]string{"service": "checkout"}, []float64{0.1, 0.3, 1}, start, time.Minute,
		testenv.LatencyPhase{Until: deploy, Rate: 10, Below: []float64{0.5, 0.99, 0.999}, Mean: 0.12},
		testenv.LatencyPhase{Until: at, Rate: 10, Below: []float64{0.4, 0.95, 0.99}, Mean: 0.2})...)
	return om.String()
}

// startCheckout starts a Prometheus of its own with checkoutData: each
// top-level test owns its server, stopped by PID at its end.
func startCheckout(t testing.TB) *testenv.Prometheus {
	t.Helper()
	return testenv.StartPrometheus(t, checkoutData())
}

func promQuery(q string) *slo.Query {
	return &slo.Query{Source: slo.SourcePrometheus, PromQL: q, Windowed: slo.IsWindowed(q)}
}

func newClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func approx(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
}

func last(d time.Duration) slo.Range { return slo.Range{Start: at.Add(-d), End: at} }

// SLIs of the checkout service, as OpenSLO (counters) and Sloth (templates)
// write them.
var (
	availability = slo.SLI{
		Name:  "checkout-availability",
		Good:  promQuery(`http_requests_total{service="checkout",code!~"5.."}`),
		Total: promQuery(`http_requests_total{service="checkout"}`),
	}
	availabilityBad = slo.SLI{
		Name:  "checkout-availability-bad",
		Bad:   promQuery(`http_requests_total{service="checkout",code=~"5.."}`),
		Total: promQuery(`http_requests_total{service="checkout"}`),
	}
	latency = slo.SLI{
		Name:  "checkout-latency",
		Good:  promQuery(`http_request_duration_seconds_bucket{service="checkout",le="0.3"}`),
		Total: promQuery(`http_request_duration_seconds_count{service="checkout"}`),
	}
	slothEvents = slo.SLI{
		Name:  "checkout-sloth-events",
		Bad:   promQuery(`sum(rate(http_requests_total{service="checkout",code=~"5.."}[{{.window}}]))`),
		Total: promQuery(`sum(rate(http_requests_total{service="checkout"}[{{.window}}]))`),
	}
	slothRaw = slo.SLI{
		Name: "checkout-sloth-raw",
		Raw: promQuery(`sum(rate(http_requests_total{service="checkout",code=~"5.."}[{{.window}}]))
			/ sum(rate(http_requests_total{service="checkout"}[{{.window}}]))`),
		RawType: slo.RawFailure,
	}
	slothRawSuccess = slo.SLI{
		Name: "checkout-sloth-raw-success",
		Raw: promQuery(`sum(rate(http_requests_total{service="checkout",code!~"5.."}[{{.window}}]))
			/ sum(rate(http_requests_total{service="checkout"}[{{.window}}]))`),
		RawType: slo.RawSuccess,
	}
	// perVersionRaw answers one ratio per version: two series unscoped.
	perVersionRaw = slo.SLI{
		Name: "checkout-raw-per-version",
		Raw: promQuery(`sum by (version) (rate(http_requests_total{service="checkout",code=~"5.."}[{{.window}}]))
			/ sum by (version) (rate(http_requests_total{service="checkout"}[{{.window}}]))`),
		RawType: slo.RawFailure,
	}
	pinnedV1 = slo.SLI{
		Name:  "checkout-availability-v1",
		Bad:   promQuery(`http_requests_total{service="checkout",version="v1",code=~"5.."}`),
		Total: promQuery(`http_requests_total{service="checkout",version="v1"}`),
	}
)

// injection is a scope value that would end the selector and add a series
// of value 1 if it were spliced into query text.
const injection = `v2"} or vector(1) #`

func TestCounts(t *testing.T) {
	p := startCheckout(t)
	c := newClient(t, Config{URL: p.URL, Timeout: 10 * time.Second})

	// Hand arithmetic. 30 days = 2,592,000 s; 29 days = 2,505,600 s;
	// 1 day = 86,400 s.
	//   v1 total, 30d: 10/s × 2,592,000          = 25,920,000
	//   v1 bad, 30d:   0.01/s × 2,505,600 = 25,056
	//                + 0.2/s × 86,400     = 17,280 → 42,336
	//   v2 total, 30d (all in the last day): 2/s × 86,400 = 172,800
	//   v2 bad:        0.1/s × 86,400                     =   8,640
	//   all total, 30d: 25,920,000 + 172,800 = 26,092,800
	//   all bad, 30d:   42,336 + 8,640       =     50,976
	//   all good, 30d:  26,092,800 − 50,976  = 26,041,824
	//   latency, 30d: count 25,920,000; under 0.3 s:
	//                 9.9/s × 2,505,600 = 24,805,440
	//               + 9.5/s × 86,400    =    820,800 → 25,626,240
	//   last day: total 864,000 (v1) + 172,800 (v2) = 1,036,800;
	//             bad 17,280 (v1) + 8,640 (v2)      =    25,920;
	//             error ratio 25,920 / 1,036,800    =     0.025
	//   the day before (at − 2d to at − 1d), v1 only: total 864,000,
	//             bad 0.01/s × 86,400 = 864
	tests := map[string]struct {
		sli   slo.SLI
		r     slo.Range
		scope slo.Scope
		want  slo.Counts
	}{
		"an availability SLI over 30 days counts good and total requests": {
			sli: availability, r: last(month),
			want: slo.Counts{Good: 26_041_824, Total: 26_092_800},
		},
		"a bad over total SLI gives good as total minus bad": {
			sli: availabilityBad, r: last(month),
			want: slo.Counts{Good: 26_041_824, Total: 26_092_800},
		},
		"a latency SLI counts the requests under the 300 ms bucket": {
			sli: latency, r: last(month),
			want: slo.Counts{Good: 25_626_240, Total: 25_920_000},
		},
		"a Sloth events SLI turns its per-second rates into events over the window": {
			// rate(...[1d]) = increase / 86,400; × 86,400 gives the events.
			sli: slothEvents, r: last(day),
			want: slo.Counts{Good: 1_036_800 - 25_920, Total: 1_036_800},
		},
		"a Sloth raw error ratio is the ratio itself": {
			sli: slothRaw, r: last(day),
			want: slo.Counts{Raw: true, RawErrorRatio: 0.025},
		},
		"a raw success ratio becomes one minus it": {
			// 1,010,880 / 1,036,800 = 0.975; 1 − 0.975 = 0.025.
			sli: slothRawSuccess, r: last(day),
			want: slo.Counts{Raw: true, RawErrorRatio: 0.025},
		},
		"a raw ratio narrowed to one series by its scope is that series' ratio": {
			sli: perVersionRaw, r: last(day), scope: slo.Scope{"version": "v2"},
			want: slo.Counts{Raw: true, RawErrorRatio: 0.05},
		},
		"a canary scope counts the v2 series only": {
			sli: availability, r: last(month), scope: slo.Scope{"version": "v2"},
			want: slo.Counts{Good: 172_800 - 8_640, Total: 172_800},
		},
		"a scope narrows a Sloth template too": {
			sli: slothEvents, r: last(day), scope: slo.Scope{"version": "v1"},
			want: slo.Counts{Good: 864_000 - 17_280, Total: 864_000},
		},
		"a scope replaces a matcher the query has on the same label": {
			sli: pinnedV1, r: last(month), scope: slo.Scope{"version": "v2"},
			want: slo.Counts{Good: 172_800 - 8_640, Total: 172_800},
		},
		"a range that ends in the past is measured at its end, not now": {
			sli: availabilityBad, r: slo.Range{Start: at.Add(-2 * day), End: at.Add(-day)},
			want: slo.Counts{Good: 864_000 - 864, Total: 864_000},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := c.Measure(context.Background(), tc.sli, tc.r, tc.scope)
			if err != nil {
				t.Fatalf("Measure: %v", err)
			}
			got := m.Counts
			if got.Raw != tc.want.Raw || !approx(got.Good, tc.want.Good) || !approx(got.Total, tc.want.Total) ||
				!approx(got.RawErrorRatio, tc.want.RawErrorRatio) {
				t.Errorf("counts = %+v, want %+v\nqueries: %+v", got, tc.want, m.Results)
			}
			if len(m.Warnings) > 0 {
				t.Errorf("warnings: %v", m.Warnings)
			}
			// Counts is Measure without the evidence.
			counts, err := c.Counts(context.Background(), tc.sli, tc.r, tc.scope)
			if err != nil || counts != got {
				t.Errorf("Counts = %+v, %v; Measure said %+v", counts, err, got)
			}
		})
	}

	noData := map[string]struct {
		sli   slo.SLI
		r     slo.Range
		scope slo.Scope
		in    string // the error names the query
	}{
		"an injected scope value matches no series": {
			sli: availability, r: last(month), scope: slo.Scope{"version": injection},
			in: `version="v2\"} or vector(1) #"`,
		},
		"an injected scope value in a Sloth template matches no series": {
			sli: slothRaw, r: last(day), scope: slo.Scope{"version": injection},
			in: `version="v2\"} or vector(1) #"`,
		},
		"a metric that does not exist is no data": {
			sli: slo.SLI{Name: "absent", Good: promQuery(`absent_ok_total`), Total: promQuery(`absent_total`)},
			r:   last(month), in: "increase(absent_total[30d])",
		},
		"a range before the first sample is no data": {
			sli: availability, r: slo.Range{Start: at.Add(-100 * day), End: at.Add(-90 * day)},
			in: `increase(http_requests_total{service="checkout"}[10d])`,
		},
		"a ratio over a range without traffic is no data, not zero errors": {
			// v2 had no requests the day before the deploy: 0 / 0 = NaN.
			sli: slothRaw, r: slo.Range{Start: at.Add(-2 * day), End: at.Add(-day)}, scope: slo.Scope{"version": "v2"},
			in: "NaN",
		},
	}
	for name, tc := range noData {
		t.Run(name, func(t *testing.T) {
			got, err := c.Counts(context.Background(), tc.sli, tc.r, tc.scope)
			if !errors.Is(err, slo.ErrNoData) {
				t.Fatalf("Counts = %+v, %v; want ErrNoData", got, err)
			}
			if !strings.Contains(err.Error(), tc.in) {
				t.Errorf("error %q does not name %q", err, tc.in)
			}
		})
	}

	t.Run("a bad-events counter that never existed counts zero when total has events", func(t *testing.T) {
		// Over 30 days v1+v2 served 26,092,800 requests (see the figures
		// above); no series is called http_requests_timeout_total.
		sli := slo.SLI{
			Name:  "checkout-timeouts",
			Bad:   promQuery(`sum(rate(http_requests_timeout_total{service="checkout"}[{{.window}}]))`),
			Total: promQuery(`sum(rate(http_requests_total{service="checkout"}[{{.window}}]))`),
		}
		got, err := c.Counts(context.Background(), sli, last(month), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !approx(got.Total, 26092800) || got.Good != got.Total {
			t.Errorf("Counts = %+v, want good = total = 26,092,800", got)
		}
	})

	t.Run("an injected scope value changes no query structure", func(t *testing.T) {
		for _, sli := range []slo.SLI{availability, slothEvents, slothRaw} {
			m, err := c.Measure(context.Background(), sli, last(day), slo.Scope{"version": injection})
			if !errors.Is(err, slo.ErrNoData) {
				t.Fatalf("%s: %v, want ErrNoData", sli.Name, err)
			}
			plain, err := c.Measure(context.Background(), sli, last(day), nil)
			if err != nil {
				t.Fatalf("%s unscoped: %v", sli.Name, err)
			}
			for i, r := range m.Results {
				got, want := shape(t, r.Query), shape(t, plain.Results[i].Query)
				if got != want {
					t.Errorf("%s %s query %s\nhas shape %s\nwant       %s", sli.Name, r.Role, r.Query, got, want)
				}
				if n := versionMatchers(t, r.Query); n == 0 {
					t.Errorf("%s: no selector of %s carries the scope", sli.Name, r.Query)
				}
			}
		}
	})

	t.Run("a scope label name that is no label name is refused before any query", func(t *testing.T) {
		_, err := c.Counts(context.Background(), availability, last(day), slo.Scope{`version="v2"} or vector(1) #`: "x"})
		if !errors.Is(err, slo.ErrBadQuery) {
			t.Fatalf("err = %v, want ErrBadQuery", err)
		}
	})

	t.Run("Query answers one instant value", func(t *testing.T) {
		// v1's counter at at: 10/s × 31 days = 26,784,000.
		v, err := c.Query(context.Background(), `sum(http_requests_total{service="checkout",version="v1"})`, at)
		if err != nil || !approx(v, 26_784_000) {
			t.Errorf("Query = %v, %v; want 26,784,000", v, err)
		}
	})
}

// shape is the query's node types in walk order, vector selectors by
// metric name: two queries of the same shape differ in label values at most.
func shape(t *testing.T, q string) string {
	t.Helper()
	expr, err := slo.ParsePromQL(q)
	if err != nil {
		t.Fatalf("sent query %s does not parse: %v", q, err)
	}
	var b strings.Builder
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			b.WriteString("selector(" + n.Name + ") ")
		case *parser.Call:
			b.WriteString("call(" + n.Func.Name + ") ")
		case *parser.AggregateExpr:
			b.WriteString("aggregate(" + n.Op.String() + ") ")
		case *parser.BinaryExpr:
			b.WriteString("binary(" + n.Op.String() + ") ")
		case nil:
		default:
			b.WriteString(strings.TrimPrefix(strings.TrimPrefix(typeName(n), "*"), "parser.") + " ")
		}
		return nil
	})
	return b.String()
}

func typeName(n parser.Node) string {
	switch n.(type) {
	case *parser.MatrixSelector:
		return "matrix"
	case *parser.ParenExpr:
		return "paren"
	case *parser.NumberLiteral:
		return "number"
	case *parser.StringLiteral:
		return "string"
	case *parser.SubqueryExpr:
		return "subquery"
	case *parser.UnaryExpr:
		return "unary"
	}
	return "other"
}

// versionMatchers counts the selectors whose version matcher holds the
// injection string as a value, verbatim.
func versionMatchers(t *testing.T, q string) int {
	t.Helper()
	expr, err := slo.ParsePromQL(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	n := 0
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == "version" {
				if m.Type != labels.MatchEqual || m.Value != injection {
					t.Errorf("%s: version matcher %s, want = %q", q, m, injection)
				}
				n++
			}
		}
		return nil
	})
	return n
}

// fake answers every request with a status and a body from testdata,
// as a Prometheus, Mimir or a proxy in front of them does.
func fake(t *testing.T, status int, contentType, file string) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestErrors(t *testing.T) {
	p := startCheckout(t)
	real := newClient(t, Config{URL: p.URL})

	sleepy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(sleepy.Close)

	const jsonType = "application/json"
	tests := map[string]struct {
		url     string
		timeout time.Duration
		expr    string  // for Query; empty means Counts(sli)
		sli     slo.SLI // default availability
		want    error
		in      []string // the message names these
	}{
		"a Prometheus that is down is unavailable": {
			url: testenv.DownURL(t), want: slo.ErrUnavailable,
			in: []string{"connection refused", `increase(http_requests_total{service="checkout"}[30d])`},
		},
		"a query Prometheus cannot parse is a bad query with its errorType": {
			url: p.URL, expr: `sum(http_requests_total`, want: slo.ErrBadQuery,
			in: []string{"bad_data", "unclosed left parenthesis"},
		},
		"a query Prometheus cannot execute is a bad query with its errorType": {
			// Four series on each side of a one-to-one match on service.
			url:  p.URL,
			expr: `http_requests_total{service="checkout"} + on(service) http_requests_total{service="checkout"}`,
			want: slo.ErrBadQuery, in: []string{"execution", "many-to-many"},
		},
		"a range vector where a value is wanted is a bad query": {
			url: p.URL, expr: `http_requests_total{service="checkout"}[5m]`, want: slo.ErrBadQuery,
			in: []string{"matrix"},
		},
		"several series where one value is wanted is a bad query": {
			url: p.URL, expr: `http_requests_total{service="checkout"}`, want: slo.ErrBadQuery,
			in: []string{"4 series"},
		},
		"a raw ratio answering several series is a bad query naming the query and the number of series": {
			// Per-version ratios of v1 (2 %) and v2 (5 %) used to be added
			// into 7 %.
			url: p.URL, sli: perVersionRaw, want: slo.ErrBadQuery,
			in: []string{"raw query", "answered 2 series, want one", "sum by (version) (rate(http_requests_total{code=~\"5..\",service=\"checkout\"}[30d]))"},
		},
		"an answer with warnings (a partial response) is unavailable, naming the warning": {
			url: fake(t, http.StatusOK, jsonType, "warnings.json").URL, want: slo.ErrUnavailable,
			in: []string{"partial response", "thanos-store-0", "partialResponse: allow"},
		},
		"a query slower than the client's timeout is a timeout naming the query": {
			url: sleepy.URL, timeout: 100 * time.Millisecond, want: slo.ErrTimeout,
			in: []string{`prometheus query increase(http_requests_total{service="checkout"}[30d]) did not answer within 100ms`},
		},
		"Prometheus' own query timeout (503 timeout) is a timeout": {
			url: fake(t, http.StatusServiceUnavailable, jsonType, "timeout.json").URL, want: slo.ErrTimeout,
			in: []string{"query timed out in expression evaluation"},
		},
		"a proxy's 502 is unavailable": {
			url: fake(t, http.StatusBadGateway, "text/html", "bad_gateway.html").URL, want: slo.ErrUnavailable,
			in: []string{"server error: 502"},
		},
		"a tenant rate limit (429) is unavailable": {
			url: fake(t, http.StatusTooManyRequests, "text/plain", "too_many_requests.txt").URL, want: slo.ErrUnavailable,
			in: []string{"rate limited", "err-mimir-tenant-max-request-rate"},
		},
		"a refused tenant (401) is a bad query that says to check the credentials": {
			url: fake(t, http.StatusUnauthorized, "text/plain", "unauthorized.txt").URL, want: slo.ErrBadQuery,
			in: []string{"check the credentials", "no org id"},
		},
		"a wrong path prefix (404) is a bad query that says to check the URL": {
			url: fake(t, http.StatusOK, jsonType, "warnings.json").URL + "/prometheus", want: slo.ErrBadQuery,
			in: []string{"check the URL's path prefix"},
		},
		"an answer that is not the API's JSON is unavailable": {
			url: fake(t, http.StatusOK, "text/html", "bad_gateway.html").URL, want: slo.ErrUnavailable,
			in: []string{"bad_response"},
		},
		"a NaN sample is no data": {
			url: fake(t, http.StatusOK, jsonType, "nan.json").URL, want: slo.ErrNoData, in: []string{"NaN"},
		},
		"an infinite scalar is no data": {
			url: fake(t, http.StatusOK, jsonType, "inf.json").URL, expr: "1/0", want: slo.ErrNoData, in: []string{"+Inf"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := real
			if tc.url != p.URL {
				c = newClient(t, Config{URL: tc.url, Timeout: tc.timeout})
			}
			began := time.Now()
			var err error
			if tc.expr != "" {
				var v float64
				v, err = c.Query(context.Background(), tc.expr, at)
				if err == nil {
					t.Fatalf("Query = %v, want an error", v)
				}
			} else {
				sli := tc.sli
				if sli.Name == "" {
					sli = availability
				}
				var got slo.Counts
				got, err = c.Counts(context.Background(), sli, last(month), nil)
				if err == nil {
					t.Fatalf("Counts = %+v, want an error", got)
				}
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			for _, s := range tc.in {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v, does not say %q", err, s)
				}
			}
			if tc.timeout > 0 && time.Since(began) > tc.timeout+2*time.Second {
				t.Errorf("answered after %s with a %s timeout", time.Since(began), tc.timeout)
			}
		})
	}

	t.Run("a caller's cancellation is returned as it is, not as an outcome", func(t *testing.T) {
		c := newClient(t, Config{URL: sleepy.URL})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := c.Counts(ctx, availability, last(month), nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		for _, outcome := range []error{slo.ErrTimeout, slo.ErrUnavailable, slo.ErrBadQuery, slo.ErrNoData} {
			if errors.Is(err, outcome) {
				t.Errorf("err = %v is also %v", err, outcome)
			}
		}
	})
}

// logBuffer is a slog text handler's output, safe for the concurrent
// queries of a measurement.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// allowPartial is sli with partialResponse: allow on every query.
func allowPartial(sli slo.SLI) slo.SLI {
	for _, q := range []**slo.Query{&sli.Good, &sli.Bad, &sli.Total, &sli.Raw} {
		if *q != nil {
			c := **q
			c.AllowPartial = true
			*q = &c
		}
	}
	return sli
}

// TestPartialResponses: a Thanos, Mimir or Cortex that misses a store
// answers 200 with "warnings" (Prometheus' wire format, the fakes' bodies
// in testdata); "infos" are notes on the query, not on the data.
func TestPartialResponses(t *testing.T) {
	const jsonType = "application/json"
	warned := []string{
		"good: partial response: store 10.0.0.7:10901 (thanos-store-0) is unavailable",
		"total: partial response: store 10.0.0.7:10901 (thanos-store-0) is unavailable",
	}
	tests := map[string]struct {
		file     string
		sli      slo.SLI
		want     error // nil: measured
		warnings []string
		warnLogs int
		infoLogs int
	}{
		"an answer with warnings is unavailable, not an undercounted figure": {
			file: "warnings.json", sli: availability, want: slo.ErrUnavailable, warnings: warned, warnLogs: 2,
		},
		"warnings with infos are still unavailable": {
			file: "warnings_and_infos.json", sli: availability, want: slo.ErrUnavailable, warnings: warned, warnLogs: 2, infoLogs: 2,
		},
		"partialResponse: allow takes the figures and returns the warnings": {
			file: "warnings.json", sli: allowPartial(availability), warnings: warned, warnLogs: 2,
		},
		"infos alone are logged and the figures stand": {
			file: "infos.json", sli: availability, infoLogs: 2,
		},
		"a raw ratio with warnings is unavailable too": {
			file: "warnings.json", sli: slothRaw, want: slo.ErrUnavailable,
			warnings: []string{"raw: partial response: store 10.0.0.7:10901 (thanos-store-0) is unavailable"}, warnLogs: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var logs logBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c, err := New(Config{URL: fake(t, http.StatusOK, jsonType, tc.file).URL}, logger)
			if err != nil {
				t.Fatal(err)
			}
			m, err := c.Measure(context.Background(), tc.sli, last(month), nil)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("Measure: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("err = %v, want %v", err, tc.want)
			case tc.want != nil:
				if !errors.Is(err, ErrPartial) || errors.Is(err, slo.ErrNoData) || errors.Is(err, slo.ErrBadQuery) {
					t.Errorf("err = %v: want partial and unavailable only", err)
				}
				for _, s := range []string{"thanos-store-0", "partialResponse: allow"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("err = %v, does not say %q", err, s)
					}
				}
			default:
				// Every query answers 1000.
				want := slo.Counts{Good: 1000, Total: 1000}
				if m.Counts != want {
					t.Errorf("counts = %+v, want %+v", m.Counts, want)
				}
			}
			if strings.Join(m.Warnings, "\n") != strings.Join(tc.warnings, "\n") {
				t.Errorf("warnings = %q, want %q", m.Warnings, tc.warnings)
			}
			out := logs.String()
			if n := strings.Count(out, "level=WARN"); n != tc.warnLogs {
				t.Errorf("%d warn lines, want %d:\n%s", n, tc.warnLogs, out)
			}
			if n := strings.Count(out, `msg="prometheus info"`); n != tc.infoLogs {
				t.Errorf("%d info lines, want %d:\n%s", n, tc.infoLogs, out)
			}
			if tc.warnLogs > 0 && !strings.Contains(out, "component=collectors/prometheus") {
				t.Errorf("log lines lack the component:\n%s", out)
			}
		})
	}

	t.Run("partialResponse in the SLO file reaches the collector through the SLI", func(t *testing.T) {
		set, err := slo.Parse("slos.yaml", []byte(`apiVersion: openslo/v1
kind: DataSource
metadata: {name: thanos}
spec: {type: Thanos, connectionDetails: {url: "http://thanos:9090", partialResponse: allow}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: allowed}
spec:
  service: checkout
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {metricSourceRef: thanos, spec: {query: 'sum(http_requests_total{code!~"5.."})'}}}
        total: {metricSource: {metricSourceRef: thanos, spec: {query: sum(http_requests_total)}}}
  objectives: [{target: 0.999}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: denied}
spec:
  service: checkout
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {metricSourceRef: thanos, spec: {query: 'sum(http_requests_total{code!~"5.."})', partialResponse: deny}}}
        total: {metricSource: {metricSourceRef: thanos, spec: {query: sum(http_requests_total)}}}
  objectives: [{target: 0.999}]
`))
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, Config{URL: fake(t, http.StatusOK, jsonType, "warnings.json").URL})
		allowed, _ := set.Objective("allowed")
		if m, err := c.Measure(context.Background(), allowed.SLI, last(month), nil); err != nil || len(m.Warnings) != 2 {
			t.Errorf("DataSource's allow: %+v, %v", m, err)
		}
		denied, _ := set.Objective("denied")
		if _, err := c.Measure(context.Background(), denied.SLI, last(month), nil); !errors.Is(err, slo.ErrUnavailable) || !strings.Contains(err.Error(), "good query") {
			t.Errorf("the spec's deny over the DataSource's allow: err = %v, want the good query unavailable", err)
		}
	})
}

// TestPathPrefixAndCredentials puts the real Prometheus behind a proxy
// that serves it under a path prefix and demands credentials and a tenant,
// as Mimir (/prometheus, X-Scope-OrgID) and an authenticating proxy in
// front of Thanos do.
func TestPathPrefixAndCredentials(t *testing.T) {
	p := startCheckout(t)
	target, _ := url.Parse(p.URL)
	proxy := func(prefix string, check func(r *http.Request) bool) string {
		rp := httputil.NewSingleHostReverseProxy(target)
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !check(r) {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			if !strings.HasPrefix(r.URL.Path, prefix+"/api/v1/") {
				http.NotFound(w, r)
				return
			}
			r.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(s.Close)
		return s.URL + prefix
	}
	mimir := proxy("/prometheus", func(r *http.Request) bool {
		return r.Header.Get("Authorization") == "Bearer t0ken" && r.Header.Get("X-Scope-OrgID") == "team-a"
	})
	thanos := proxy("/thanos", func(r *http.Request) bool {
		u, pw, ok := r.BasicAuth()
		return ok && u == "slogate" && pw == "s3cret"
	})
	tests := map[string]Config{
		"a bearer token and a tenant header reach Mimir under /prometheus": {
			URL: mimir, BearerToken: "t0ken", Headers: map[string]string{"X-Scope-OrgID": "team-a"},
		},
		"a trailing slash after the prefix is harmless": {
			URL: mimir + "/", BearerToken: "t0ken", Headers: map[string]string{"X-Scope-OrgID": "team-a"},
		},
		"basic auth reaches Thanos under /thanos": {
			URL: thanos, Username: "slogate", Password: "s3cret",
		},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, cfg)
			got, err := c.Counts(context.Background(), availability, last(month), slo.Scope{"version": "v2"})
			if err != nil {
				t.Fatalf("Counts: %v", err)
			}
			if want := (slo.Counts{Good: 164_160, Total: 172_800}); !approx(got.Good, want.Good) || !approx(got.Total, want.Total) {
				t.Errorf("counts = %+v, want %+v", got, want)
			}
			if s := c.String(); strings.Contains(s, "t0ken") || strings.Contains(s, "s3cret") {
				t.Errorf("String() = %q shows a credential", s)
			}
		})
	}
	t.Run("without the tenant Mimir refuses and the error says to check the credentials", func(t *testing.T) {
		c := newClient(t, Config{URL: mimir, BearerToken: "t0ken"})
		_, err := c.Counts(context.Background(), availability, last(month), nil)
		if !errors.Is(err, slo.ErrBadQuery) || !strings.Contains(err.Error(), "check the credentials") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestTLS(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1793491200,"0.5"]}}`))
	}))
	t.Cleanup(s.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		tls  TLSConfig
		want error
	}{
		"a server signed by the CA file is trusted":         {tls: TLSConfig{CAFile: ca}},
		"a server signed by an unknown CA is unavailable":   {want: slo.ErrUnavailable},
		"InsecureSkipVerify accepts any server certificate": {tls: TLSConfig{InsecureSkipVerify: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, Config{URL: s.URL, TLS: tc.tls})
			v, err := c.Query(context.Background(), "0.5", at)
			if !errors.Is(err, tc.want) || (tc.want == nil && v != 0.5) {
				t.Errorf("Query = %v, %v; want 0.5, %v", v, err, tc.want)
			}
		})
	}
}

func TestStringAndErrorsHideCredentials(t *testing.T) {
	down := strings.Replace(testenv.DownURL(t), "http://", "http://slogate:s3cret@", 1) + "/prometheus"
	c := newClient(t, Config{URL: down})
	if got, want := c.String(), "prometheus "+strings.Replace(down, "s3cret", "xxxxx", 1); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	_, err := c.Counts(context.Background(), availability, last(day), nil)
	if !errors.Is(err, slo.ErrUnavailable) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("err = %v: want ErrUnavailable without the password", err)
	}
	tok := newClient(t, Config{URL: "http://127.0.0.1:9090", BearerToken: "t0ken", Headers: map[string]string{"X-Scope-OrgID": "a"}})
	if s := tok.String(); s != "prometheus http://127.0.0.1:9090" {
		t.Errorf("String() = %q", s)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"a missing URL is refused": {
			cfg:  Config{},
			want: "prometheus config: url: required",
		},
		"a URL without http or https is refused": {
			cfg:  Config{URL: "ftp://127.0.0.1:9090"},
			want: `prometheus config: url: scheme must be http or https, got "ftp"`,
		},
		"a URL without a scheme is refused with the form wanted": {
			cfg:  Config{URL: "127.0.0.1:9090"},
			want: "prometheus config: url: not a valid URL (want http://host:port/prefix or https://...)",
		},
		"a URL that does not parse is refused without echoing it": {
			cfg:  Config{URL: "http://user:pa ss@host:x/"},
			want: "prometheus config: url: not a valid URL (want http://host:port/prefix or https://...)",
		},
		"every problem is reported at once": {
			cfg: Config{URL: "http://h", Timeout: -time.Second, BearerToken: "t", Username: "u",
				Headers: map[string]string{"authorization": "x"}, TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}},
			want: "prometheus config: timeout: must not be negative, got -1s\n" +
				"bearerToken and username/password: set one, not both\n" +
				"headers: Authorization is set with bearerToken or username/password\n" +
				"tls.caFile: open /nonexistent/ca.pem: no such file or directory",
		},
		"a password without a username is refused": {
			cfg:  Config{URL: "http://h", Password: "p"},
			want: "prometheus config: password: set without a username",
		},
		"credentials in the URL and the config are refused": {
			cfg:  Config{URL: "http://u:p@h", Username: "v"},
			want: "prometheus config: url: has credentials and so does the config: set one",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := New(tc.cfg, nil)
			if err == nil {
				t.Fatalf("New = %v, want an error", c)
			}
			if err.Error() != tc.want {
				t.Errorf("err:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
}
