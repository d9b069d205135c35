package prometheus

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// rpcData is a histogram per version for the bucket tests, every minute
// over the 2 hours before at, bounds 0.05 s and 0.25 s:
//
//	v1: 5 req/s, 60 % at most 0.05 s, 90 % at most 0.25 s;
//	v2: 2 req/s for the first hour, then 4 req/s, 30 % and 80 % all along.
//
// Over the last hour v1 serves 18000 requests: 10800 ≤ 0.05 s, 5400 in
// (0.05, 0.25], 1800 above. v2 serves 14400: 4320, 7200, 2880. Prometheus
// 2.42 finds samples at both ends of each range (the minute grid), so the
// increases are exact.
func rpcData() string {
	start := at.Add(-2 * time.Hour)
	mid := at.Add(-time.Hour)
	v := func(version string) map[string]string {
		return map[string]string{"service": "api", "version": version}
	}
	bounds := []float64{0.05, 0.25}
	var om testenv.OpenMetrics
	om.Histogram("rpc_duration_seconds", testenv.HistogramSeries("rpc_duration_seconds", v("v1"), bounds, start, time.Minute,
		testenv.LatencyPhase{Until: at, Rate: 5, Below: []float64{0.6, 0.9}, Mean: 0.05})...)
	om.Histogram("rpc_duration_seconds", testenv.HistogramSeries("rpc_duration_seconds", v("v2"), bounds, start, time.Minute,
		testenv.LatencyPhase{Until: mid, Rate: 2, Below: []float64{0.3, 0.8}, Mean: 0.1},
		testenv.LatencyPhase{Until: at, Rate: 4, Below: []float64{0.3, 0.8}, Mean: 0.1})...)
	return om.String()
}

var rpcLatency = slo.SLI{
	Name:  "api-latency",
	Good:  promQuery(`sum(rpc_duration_seconds_bucket{service="api",le="0.25"})`),
	Total: promQuery(`sum(rpc_duration_seconds_count{service="api"})`),
}

func TestBucketsAgainstPrometheus(t *testing.T) {
	p := testenv.StartPrometheus(t, rpcData())
	c := newClient(t, Config{URL: p.URL})
	inf := math.Inf(1)
	tests := map[string]struct {
		sli   slo.SLI
		r     slo.Range
		scope slo.Scope
		want  []slo.Bucket
		err   error
	}{
		"a version's buckets over the last hour are its per-bucket requests": {
			sli: rpcLatency, r: last(time.Hour), scope: slo.Scope{"version": "v1"},
			want: []slo.Bucket{{UpperBound: 0.05, Count: 10800}, {UpperBound: 0.25, Count: 5400}, {UpperBound: inf, Count: 1800}},
		},
		"the other version's rate change shows in its counts, not its shape": {
			sli: rpcLatency, r: last(time.Hour), scope: slo.Scope{"version": "v2"},
			want: []slo.Bucket{{UpperBound: 0.05, Count: 4320}, {UpperBound: 0.25, Count: 7200}, {UpperBound: inf, Count: 2880}},
		},
		"unscoped the versions add up": {
			sli: rpcLatency, r: last(time.Hour),
			want: []slo.Bucket{{UpperBound: 0.05, Count: 15120}, {UpperBound: 0.25, Count: 12600}, {UpperBound: inf, Count: 4680}},
		},
		"a range in the past ends where it says": {
			sli: rpcLatency, r: slo.Range{Start: at.Add(-2 * time.Hour), End: at.Add(-time.Hour)}, scope: slo.Scope{"version": "v2"},
			want: []slo.Bucket{{UpperBound: 0.05, Count: 2160}, {UpperBound: 0.25, Count: 3600}, {UpperBound: inf, Count: 1440}},
		},
		"a version with no series is no data": {
			sli: rpcLatency, r: last(time.Hour), scope: slo.Scope{"version": "v9"}, err: slo.ErrNoData,
		},
		"an availability SLI has no buckets": {
			sli: availability, r: last(time.Hour), err: slo.ErrBadQuery,
		},
		"a scope label that is not a label name is refused": {
			sli: rpcLatency, r: last(time.Hour), scope: slo.Scope{"app.kubernetes.io/version": "v1"}, err: slo.ErrBadQuery,
		},
		"an empty range is refused": {
			sli: rpcLatency, r: slo.Range{Start: at, End: at}, err: slo.ErrBadQuery,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := c.Buckets(context.Background(), tc.sli, tc.r, tc.scope)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].UpperBound != tc.want[i].UpperBound || !approx(got[i].Count, tc.want[i].Count) {
					t.Errorf("bucket %d: got %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestBucketsSourceFaults(t *testing.T) {
	tests := map[string]struct {
		url  string
		want error
		msg  string
	}{
		"a Prometheus that is down is unavailable": {url: testenv.DownURL(t), want: slo.ErrUnavailable},
		"a partial answer (warnings) is unavailable, not a skewed distribution": {
			url: fake(t, http.StatusOK, "application/json", "buckets_warnings.json").URL, want: slo.ErrUnavailable, msg: "thanos-store-0",
		},
		"a server error is unavailable": {
			url: fake(t, http.StatusBadGateway, "text/html", "bad_gateway.html").URL, want: slo.ErrUnavailable,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, Config{URL: tc.url, Timeout: 5 * time.Second})
			_, err := c.Buckets(context.Background(), rpcLatency, last(time.Hour), slo.Scope{"version": "v1"})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v naming %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestBucketsPartialResponseAllowed(t *testing.T) {
	allow := func(q *slo.Query) *slo.Query { c := *q; c.AllowPartial = true; return &c }
	url := fake(t, http.StatusOK, "application/json", "buckets_warnings.json").URL
	c := newClient(t, Config{URL: url})
	both := slo.SLI{Name: rpcLatency.Name, Good: allow(rpcLatency.Good), Total: allow(rpcLatency.Total)}
	got, err := c.Buckets(context.Background(), both, last(time.Hour), nil)
	if err != nil || len(got) != 2 || got[0].Count != 50 || got[1].Count != 50 {
		t.Errorf("partialResponse: allow on both queries: %v, %v; want the figures", got, err)
	}
	one := slo.SLI{Name: rpcLatency.Name, Good: allow(rpcLatency.Good), Total: rpcLatency.Total}
	if _, err := c.Buckets(context.Background(), one, last(time.Hour), nil); !errors.Is(err, ErrPartial) || !errors.Is(err, slo.ErrUnavailable) {
		t.Errorf("partialResponse: allow on good only: err = %v, want a partial answer, unavailable", err)
	}
}

func TestBucketsDeadline(t *testing.T) {
	block := make(chan struct{})
	s := fakeBlocking(t, block)
	c := newClient(t, Config{URL: s, Timeout: 50 * time.Millisecond})
	_, err := c.Buckets(context.Background(), rpcLatency, last(time.Hour), nil)
	close(block)
	if !errors.Is(err, slo.ErrTimeout) || !strings.Contains(err.Error(), "did not answer within 50ms") {
		t.Fatalf("err = %v, want a timeout naming the query's deadline", err)
	}
}

// fakeBlocking is a Prometheus that answers nothing until block is closed
// or the request is given up.
func fakeBlocking(t *testing.T, block chan struct{}) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-block:
		}
	}))
	t.Cleanup(s.Close)
	return s.URL
}
