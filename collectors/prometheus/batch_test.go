package prometheus

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

// queryCounter is a reverse proxy that counts the instant queries it
// forwards.
func queryCounter(t *testing.T, target string) (string, *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/query" {
			n.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func TestCountsBatch(t *testing.T) {
	p := startCheckout(t)
	proxy, queries := queryCounter(t, p.URL)
	c := newClient(t, Config{URL: proxy, Timeout: 10 * time.Second})
	ctx := context.Background()

	// Every window an SLO's plan has, with a duplicate and one that ends
	// earlier (a second instant: a second query per role).
	var rs []slo.Range
	for _, w := range slo.BurnRateWindows {
		rs = append(rs, last(w))
	}
	rs = append(rs, last(month), last(3*day), slo.Range{Start: at.Add(-2 * day), End: at.Add(-day)})

	tests := map[string]struct {
		sli   slo.SLI
		scope slo.Scope
		// queries is what the batch sends: one per role and instant.
		queries int64
	}{
		"good over total counters":                  {sli: availability, queries: 4},
		"bad over total counters":                   {sli: availabilityBad, queries: 4},
		"histogram buckets":                         {sli: latency, queries: 4},
		"a Sloth events template":                   {sli: slothEvents, queries: 4},
		"a Sloth raw failure ratio":                 {sli: slothRaw, queries: 2},
		"a raw success ratio":                       {sli: slothRawSuccess, queries: 2},
		"a raw ratio narrowed to one series":        {sli: perVersionRaw, scope: slo.Scope{"version": "v2"}, queries: 2},
		"a canary scope":                            {sli: availability, scope: slo.Scope{"version": "v2"}, queries: 4},
		"a scope value that would inject PromQL":    {sli: availability, scope: slo.Scope{"version": injection}, queries: 4},
		"a per-version raw ratio with two series":   {sli: perVersionRaw, queries: 2},
		"a good query with no series counts zero":   {sli: slo.SLI{Name: "none-good", Good: promQuery(`http_requests_total{service="checkout",code="999"}`), Total: promQuery(`http_requests_total{service="checkout"}`)}, queries: 4},
		"a total query with no series is no data":   {sli: slo.SLI{Name: "nothing", Good: promQuery(`nothing_total`), Total: promQuery(`nothing_total`)}, queries: 4},
		"a scalar expression is measured per range": {sli: slo.SLI{Name: "scalar", Raw: promQuery(`scalar(sum(rate(http_requests_total{service="checkout",code=~"5.."}[{{.window}}]))) / 100`), RawType: slo.RawFailure}, queries: int64(len(rs) - 1)},
	}
	for name, tc := range tests {
		t.Run(name+" answers what Counts answers range by range, to 1e-9", func(t *testing.T) {
			queries.Store(0)
			got := c.CountsBatch(ctx, tc.sli, rs, tc.scope)
			if n := queries.Load(); n != tc.queries {
				t.Errorf("sent %d queries, want %d", n, tc.queries)
			}
			if len(got) != len(rs) {
				t.Fatalf("%d results for %d ranges", len(got), len(rs))
			}
			for i, r := range rs {
				want, wantErr := c.Counts(ctx, tc.sli, r, tc.scope)
				switch {
				case (wantErr == nil) != (got[i].Err == nil):
					t.Errorf("%s: err = %v, Counts said %v", r, got[i].Err, wantErr)
				case wantErr != nil:
					for _, sentinel := range []error{slo.ErrNoData, slo.ErrBadQuery, slo.ErrUnavailable} {
						if errors.Is(wantErr, sentinel) != errors.Is(got[i].Err, sentinel) {
							t.Errorf("%s: err = %v, Counts said %v", r, got[i].Err, wantErr)
						}
					}
				case got[i].Counts.Raw != want.Raw || !approx(got[i].Counts.Good, want.Good) ||
					!approx(got[i].Counts.Total, want.Total) || !approx(got[i].Counts.RawErrorRatio, want.RawErrorRatio):
					t.Errorf("%s: %+v, Counts said %+v", r, got[i].Counts, want)
				}
			}
		})
	}
}

func TestCountsBatchFaults(t *testing.T) {
	down := newClient(t, Config{URL: "http://127.0.0.1:1", Timeout: time.Second})
	got := down.CountsBatch(context.Background(), availability, []slo.Range{last(time.Hour), last(day)}, nil)
	for i, m := range got {
		if !errors.Is(m.Err, slo.ErrUnavailable) {
			t.Errorf("range %d of a source that is down: %v, want ErrUnavailable", i, m.Err)
		}
	}
}
