package gate

import (
	"context"
	"strings"
	"testing"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// groupedFake answers every value's counts at once: routes with
// (good, total).
type groupedFake struct{ routes map[string][2]float64 }

func (g groupedFake) Counts(context.Context, slo.SLI, slo.Range, slo.Scope) (slo.Counts, error) {
	return slo.Counts{}, slo.ErrUnavailable
}

func (g groupedFake) GroupedCounts(_ context.Context, _ slo.SLI, _ slo.Range, _ slo.Scope, by []string) ([]slo.GroupCounts, error) {
	var out []slo.GroupCounts
	for r, c := range g.routes {
		out = append(out, slo.GroupCounts{Group: slo.Scope{by[0]: r}, Counts: slo.Counts{Good: c[0], Total: c[1]}})
	}
	return out, nil
}

func groupedSet(t *testing.T) *slo.Set {
	t.Helper()
	s, err := slo.Parse("g.yaml", []byte(`apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: api-routes
  namespace: api
spec:
  target: "99"
  window: 4w
  indicator:
    ratio:
      errors: {metric: 'http_requests_total{code="500"}'}
      total: {metric: http_requests_total}
      grouping: [route]
`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGroupedSLOs(t *testing.T) {
	tests := map[string]struct {
		routes    map[string][2]float64
		maxGroups int
		want      slogate.Decision
		reason    string
	}{
		"the gate halts on the value that spent its budget, naming it": {
			routes: map[string][2]float64{"/a": {1000, 1000}, "/b": {900, 1000}, "/c": {1000, 1000}},
			want:   slogate.Halt, reason: `api-routes{route="/b"}: error budget exhausted`,
		},
		"every value within its budget promotes": {
			routes: map[string][2]float64{"/a": {1000, 1000}, "/b": {999, 1000}},
			want:   slogate.Promote, reason: "all 2 checks pass",
		},
		"more values than maxGroups halts saying so": {
			routes: map[string][2]float64{"/a": {1, 1}, "/b": {1, 1}, "/c": {1, 1}}, maxGroups: 2,
			want: slogate.Halt, reason: "has 3 values, more than maxGroups 2",
		},
		"no value at all is no data, never promote": {
			routes: map[string][2]float64{},
			want:   slogate.Halt, reason: "no series of api-routes",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := groupedSet(t)
			if tc.maxGroups > 0 {
				s.Objectives[0].MaxGroups = tc.maxGroups
			}
			e := engine(t, groupedFake{tc.routes}, s, nil, nil)
			a, err := e.Evaluate(context.Background(), Request{Service: "api", Environment: "production"})
			if err != nil {
				t.Fatal(err)
			}
			if a.Decision != tc.want || !strings.Contains(a.Reason, tc.reason) {
				t.Errorf("got %s (%s), want %s (%s)", a.Decision, a.Reason, tc.want, tc.reason)
			}
		})
	}
}

func TestAGroupedSLOOnASourceThatCannotListValuesIsNotPromoted(t *testing.T) {
	e := engine(t, windows{}, groupedSet(t), nil, nil)
	a, err := e.Evaluate(context.Background(), Request{Service: "api", Environment: "production"})
	if err == nil && a.Decision == slogate.Promote {
		t.Errorf("promoted: %+v", a)
	}
}
