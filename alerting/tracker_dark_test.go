package alerting

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

// A page tier whose long window burns above its factor while its short
// window has no series is unknown: the tracker neither fires nor resolves
// it, and says it has no data (issue 8, finding 3).
func TestTrackerNeitherFiresNorResolvesADarkShortWindow(t *testing.T) {
	o := slo.Objective{Name: "checkout-availability", Service: "checkout", Target: 0.999, Window: slo.Rolling(30 * slo.Day)}
	counts := func(ratio float64) slo.Measured {
		return slo.Measured{Counts: slo.Counts{Good: 1000 * (1 - ratio), Total: 1000}}
	}
	dark := slo.Measured{Err: fmt.Errorf("fake: empty result: %w", slo.ErrNoData)}
	// The 1h/5m page tier burns at 20x (factor 14.4); the others are quiet.
	measure := func(short slo.Measured) map[time.Duration]slo.Measured {
		m := map[time.Duration]slo.Measured{slo.PeriodKey: counts(0.0001)}
		for _, w := range slo.BurnRateWindows {
			m[w] = counts(0)
		}
		m[time.Hour], m[5*time.Minute] = counts(0.02), short
		return m
	}
	observe := func(tr *Tracker, short slo.Measured, at time.Time) []Event {
		return tr.Observe(context.Background(), []slo.Status{o.Evaluate(at, measure(short))}, at)
	}
	interval := time.Minute

	t.Run("a firing page alert whose short window goes dark is re-sent, not resolved", func(t *testing.T) {
		tr, err := NewTracker(TrackerConfig{Interval: interval})
		if err != nil {
			t.Fatal(err)
		}
		if got := describe(observe(tr, counts(0.02), t0)); strings.Join(got, ",") != "alert page fired" {
			t.Fatalf("first evaluation: %v", got)
		}
		events := observe(tr, dark, t0.Add(interval))
		if got := describe(events); strings.Join(got, ",") != "alert page resent" {
			t.Fatalf("dark evaluation: %v, want the page re-sent", got)
		}
		if d := events[0].Alert.Description; !strings.Contains(d, "no data (1h burns at 20.00x, at or above the factor 14.4x, and 5m was not measured)") {
			t.Errorf("description does not say the tier has no data:\n%s", d)
		}
	})
	t.Run("a dark short window does not fire a page", func(t *testing.T) {
		tr, err := NewTracker(TrackerConfig{Interval: interval})
		if err != nil {
			t.Fatal(err)
		}
		if got := describe(observe(tr, dark, t0)); len(got) != 0 {
			t.Errorf("events = %v, want none", got)
		}
	})
}
