package dashboards

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

var update = flag.Bool("update", false, "rewrite golden files")

func promQuery(q string) *slo.Query {
	return &slo.Query{Source: slo.SourcePrometheus, PromQL: q, Windowed: slo.IsWindowed(q)}
}

// fixture is a Set covering every shape of objective the generators meet.
func fixture(t testing.TB) *slo.Set {
	t.Helper()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatalf("time zone: %v", err)
	}
	return &slo.Set{Objectives: []slo.Objective{
		{
			// OpenSLO-style ratio of counters: good over total.
			Name:        "checkout-availability",
			DisplayName: "Checkout availability",
			Service:     "checkout",
			Target:      0.999,
			Window:      slo.Rolling(30 * slo.Day),
			Budgeting:   "Occurrences",
			SLI: slo.SLI{
				Name:  "checkout-requests",
				Good:  promQuery(`sum(http_requests_total{service="checkout",code!~"5.."})`),
				Total: promQuery(`sum(http_requests_total{service="checkout"})`),
			},
			Alerting: slo.Alerting{
				Labels:      map[string]string{"team": "payments"},
				Annotations: map[string]string{"runbook_url": "https://runbooks.example.com/checkout/availability"},
			},
			Format: "openslo",
		},
		{
			// Latency: requests under 300 ms among all requests.
			Name:      "checkout-latency",
			Service:   "checkout",
			Target:    0.99,
			Window:    slo.Rolling(28 * slo.Day),
			Budgeting: "Occurrences",
			SLI: slo.SLI{
				Good:  promQuery(`sum(http_request_duration_seconds_bucket{service="checkout",le="0.3"})`),
				Total: promQuery(`sum(http_request_duration_seconds_count{service="checkout"})`),
			},
			Format: "openslo",
		},
		{
			// Sloth-style: templated queries over {{.window}}, bad events.
			Name:    "catalog-errors",
			Service: "catalog",
			Target:  0.995,
			Window:  slo.Rolling(30 * slo.Day),
			SLI: slo.SLI{
				Bad:   promQuery(`sum(rate(http_requests_total{job="catalog",code=~"(5..|429)"}[{{.window}}]))`),
				Total: promQuery(`sum(rate(http_requests_total{job="catalog"}[{{.window}}]))`),
			},
			Alerting: slo.Alerting{
				Name:           "CatalogHighErrorRate",
				Labels:         map[string]string{"category": "availability"},
				Annotations:    map[string]string{"summary": "High error rate on catalog requests"},
				TicketDisabled: true,
			},
			Format: "sloth",
		},
		{
			// Raw: a success ratio measured directly, over a week.
			Name:    "search-success",
			Service: "search",
			Target:  0.98,
			Window:  slo.Rolling(7 * slo.Day),
			SLI: slo.SLI{
				Raw:     promQuery(`sum(rate(search_queries_ok_total[{{.window}}])) / sum(rate(search_queries_total[{{.window}}]))`),
				RawType: slo.RawSuccess,
			},
			Alerting: slo.Alerting{PageDisabled: true},
			Format:   "sloth",
		},
		{
			// Calendar month in a time zone, bad over total counters.
			Name:        "payments-authorizations",
			DisplayName: "Payment authorizations",
			Service:     "payments",
			Target:      0.9995,
			Window:      slo.Window{Calendar: slo.CalendarMonth, Location: paris},
			SLI: slo.SLI{
				Bad:   promQuery(`sum(payments_authorizations_total{outcome="error"})`),
				Total: promQuery(`sum(payments_authorizations_total)`),
			},
			Format: "openslo",
		},
		{
			// Measured from logs: no rules, no panels.
			Name:    "shipping-labels",
			Service: "shipping",
			Target:  0.99,
			Window:  slo.Rolling(30 * slo.Day),
			SLI: slo.SLI{
				Good:  &slo.Query{Source: slo.SourceElasticsearch, Elasticsearch: &slo.ElasticsearchQuery{Index: "logs-shipping-*", Query: `{"term":{"outcome":"ok"}}`}},
				Total: &slo.Query{Source: slo.SourceElasticsearch, Elasticsearch: &slo.ElasticsearchQuery{Index: "logs-shipping-*"}},
			},
			Format: "openslo",
		},
	}}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("write golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (refresh with go test ./dashboards -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generated output (refresh with go test ./dashboards -update if the change is wanted):\n%s", path, firstDiff(want, got))
	}
}

// firstDiff shows the first line that differs.
func firstDiff(want, got []byte) string {
	wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			return "line " + itoa(i+1) + ":\n  want: " + string(w) + "\n  got:  " + string(g)
		}
	}
	return "(same lines)"
}

func itoa(i int) string { return strconv.Itoa(i) }
