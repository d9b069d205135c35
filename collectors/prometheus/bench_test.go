package prometheus

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// BenchmarkCounts measures Counts against the real Prometheus, next to a
// baseline that sends the very same queries (taken from Measure) through a
// bare client_golang API, concurrently as Counts does, in the same run:
// the difference is slogate's own cost (building the queries on the AST,
// classification, summing).
//
//	go test -run '^$' -bench Counts ./collectors/prometheus/
func BenchmarkCounts(b *testing.B) {
	p := startCheckout(b)
	c := newClient(b, Config{URL: p.URL})
	raw, err := api.NewClient(api.Config{Address: p.URL})
	if err != nil {
		b.Fatal(err)
	}
	bare := v1.NewAPI(raw)

	cases := []struct {
		name string
		sli  slo.SLI
		r    slo.Range
	}{
		{"availability over 30 days", availability, last(month)},
		{"Sloth events over 1 day", slothEvents, last(day)},
	}
	for _, tc := range cases {
		m, err := c.Measure(context.Background(), tc.sli, tc.r, nil)
		if err != nil {
			b.Fatalf("%s: %v", tc.name, err)
		}
		queries := make([]string, len(m.Results))
		for i, r := range m.Results {
			queries[i] = r.Query
		}
		b.Run("slogate/"+tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.Counts(context.Background(), tc.sli, tc.r, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("bare client_golang/"+tc.name, func(b *testing.B) {
			for b.Loop() {
				var wg sync.WaitGroup
				errs := make([]error, len(queries))
				for i, q := range queries {
					wg.Go(func() {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						v, _, _, err := bare.Query(ctx, q, tc.r.End)
						if err == nil && len(v.(model.Vector)) == 0 {
							b.Errorf("%s: empty", q)
						}
						errs[i] = err
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
