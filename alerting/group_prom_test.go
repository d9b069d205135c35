package alerting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/collectors/prometheus"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// A Pyrra objective grouped by route, three routes at 10 req/s for 3 h,
// sampled every 30 s. /b fails 20 % of its requests for the last 2 h; /a
// and /c fail none. Worked by hand, target 99 % over 4w (budget 1 %, page
// factors 14.4×28/30 = 13.44 over 1h/5m and 5.6 over 6h/30m):
//   - /b burns 20x over 1h and 5m: its page fires; over the period it has
//     spent 2h×20 % / 3h = 13.3 % errors, 13.3 budgets: the gate halts on
//     it, naming route="/b";
//   - /a and /c burn 0: no page, budget untouched.
func TestAGroupedSLOPagesAndHaltsForTheRouteThatBurnsOnly(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	end := t0.Add(3 * time.Hour)
	var om testenv.OpenMetrics
	for _, route := range []string{"/a", "/b", "/c"} {
		bad := 0.0
		if route == "/b" {
			bad = 0.2
		}
		om.Counter("http_requests", testenv.Requests("http_requests", map[string]string{"job": "api", "route": route}, t0, 30*time.Second,
			testenv.Phase{Until: t0.Add(time.Hour), Rate: 10},
			testenv.Phase{Until: end, Rate: 10, ErrorRatio: bad})...)
	}
	prom := testenv.StartPrometheus(t, om.String())
	src, err := prometheus.New(prometheus.Config{URL: prom.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := gate.NewMeasurer(src, gate.MeasurerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := slo.Parse("api-routes.yaml", []byte(`apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: api-routes, namespace: api}
spec:
  target: "99"
  window: 4w
  indicator:
    ratio:
      errors: {metric: 'http_requests_total{job="api",code=~"5.."}'}
      total: {metric: 'http_requests_total{job="api"}'}
      grouping: [route]
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	statuses := m.Statuses(ctx, set.Objectives, end)
	if len(statuses) != 3 {
		t.Fatalf("got %d statuses, want one per route: %+v", len(statuses), statuses)
	}
	tr, err := NewTracker(TrackerConfig{Objectives: set.Objective, Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var pages []string
	for _, e := range tr.Observe(ctx, statuses, end) {
		if e.Kind == KindAlert && e.Alert.Firing && e.Alert.Severity == slo.SeverityPage {
			pages = append(pages, e.Alert.SLO+" route="+e.Alert.Labels["route"])
		}
	}
	if want := `api-routes{route="/b"} route=/b`; len(pages) != 1 || pages[0] != want {
		t.Errorf("pages = %q, want [%q]", pages, want)
	}
	for _, st := range statuses {
		if st.Group["route"] == "/b" {
			continue
		}
		if !st.Measured() || *st.ErrorBudget.Remaining != 1 {
			t.Errorf("%s: budget remaining %v, want 1 (untouched)", st.Name, st.ErrorBudget.Remaining)
		}
	}

	e, err := gate.New(gate.Config{Measurer: m, SLOs: func() *slo.Set { return set }, Clock: func() time.Time { return end }})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.Evaluate(ctx, gate.Request{Service: "api", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Decision != slogate.Halt || !strings.Contains(a.Reason, `api-routes{route="/b"}`) {
		t.Errorf("decision %s (%s), want halt naming route /b", a.Decision, a.Reason)
	}
	for _, c := range a.Checks {
		if !strings.Contains(c.SLO, `route="/b"`) && c.Verdict != gate.Pass {
			t.Errorf("check %s %s: %s, want pass", c.SLO, c.Verdict, c.Reason)
		}
	}
}
