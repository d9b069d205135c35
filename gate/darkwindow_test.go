package gate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// windows is a fake source that answers by the length of the range: an
// error ratio per window, 10 req/s, and no series for the windows in dark.
type windows struct {
	errRatio map[time.Duration]float64
	dark     map[time.Duration]bool
}

func (w windows) Counts(_ context.Context, _ slo.SLI, r slo.Range, _ slo.Scope) (slo.Counts, error) {
	d := r.Duration()
	if w.dark[d] {
		return slo.Counts{}, fmt.Errorf("fake: empty result: %w", slo.ErrNoData)
	}
	total := 10 * d.Seconds()
	return slo.Counts{Good: total * (1 - w.errRatio[d]), Total: total}, nil
}

// A page tier whose long window burns above its factor while its short
// window has no series is no data, never a pass (issue 8, finding 3).
func TestABudgetCheckWithADarkShortWindowIsNoData(t *testing.T) {
	// 30 days at 0.01 % errors leave 90 % of the budget; the last hour
	// burns at 20x (2 % errors) and the last 5 minutes have no series.
	src := windows{
		errRatio: map[time.Duration]float64{30 * slo.Day: 0.0001, time.Hour: 0.02},
		dark:     map[time.Duration]bool{5 * time.Minute: true},
	}
	for name, tc := range map[string]struct {
		onNoData slo.OnNoData
		want     slogate.Decision
	}{
		"halts by default":              {want: slogate.Halt},
		"waits when the policy says so": {onNoData: slo.NoDataWait, want: slogate.Wait},
	} {
		t.Run(name, func(t *testing.T) {
			p := slo.DefaultPolicy("checkout")
			p.Name, p.Default = "checkout", false
			if tc.onNoData != "" {
				p.OnNoData = tc.onNoData
			}
			e := engine(t, src, set(&p), nil, nil)
			a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production"})
			if err != nil {
				t.Fatal(err)
			}
			if a.Decision != tc.want {
				t.Errorf("decision = %s (%s), want %s", a.Decision, a.Reason, tc.want)
			}
			c := a.Checks[0]
			if c.Kind != KindBudget || !c.NoData || !strings.Contains(c.Reason, "1h burns at 20.00x") || !strings.Contains(c.Reason, "5m was not measured") {
				t.Errorf("check = %+v", c)
			}
		})
	}
}
