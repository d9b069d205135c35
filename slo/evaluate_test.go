package slo

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEvaluateWorksOutBudgetBurnRatesAndTiers(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	o := Objective{Name: "checkout-availability", Service: "checkout", Target: 0.999, Window: Rolling(30 * Day)}
	counts := func(bad, total float64) Measured { return Measured{Counts: Counts{Good: total - bad, Total: total}} }
	// A fast burn: 2 % errors over the last 6 h (burn 20), 0.05 % before.
	fast := map[time.Duration]Measured{
		// 30d: 2,592,000 requests; 600 + 432 bad = 1,032 → ratio 0.000398148…,
		// consumed 0.398148…, remaining 0.601851…
		PeriodKey:        counts(1032, 2592000),
		5 * time.Minute:  counts(6, 300),    // 2 % → 20
		30 * time.Minute: counts(36, 1800),  // 20
		time.Hour:        counts(72, 3600),  // 20
		2 * time.Hour:    counts(144, 7200), // 20
		6 * time.Hour:    counts(432, 21600),
		// 1d: 432 + 64.8·(18/24)… written directly: 18 h at 0.05 % = 32.4 bad of 64,800.
		Day:     counts(432+32.4, 86400), // 0.005375 → 5.375
		3 * Day: counts(432+118.8, 259200),
	}
	st := o.Evaluate(at, fast)
	if st.Errors != nil {
		t.Fatalf("errors: %v", st.Errors)
	}
	if got := *st.ErrorBudget.Remaining; !near(got, 1-1032.0/2592000/0.001) {
		t.Errorf("remaining = %v", got)
	}
	if got := *st.BurnRates["1h"]; !near(got, 20) {
		t.Errorf("1h burn = %v", got)
	}
	if got := *st.BurnRates["1d"]; !near(got, 5.375) {
		t.Errorf("1d burn = %v", got)
	}
	// 3d: 550.8 / 259,200 = 0.002125 → 2.125.
	want := []struct {
		long   string
		firing bool
	}{{"1h", true}, {"6h", true}, {"1d", true}, {"3d", true}}
	// page 14.4 (1h 20, 5m 20) fires; page 6 (6h 20, 30m 20) fires; ticket 3
	// (1d 5.375, 2h 20) fires; ticket 1 (3d 2.125, 6h 20) fires.
	if len(st.Alerts) != len(want) {
		t.Fatalf("%d alert tiers, want %d: %+v", len(st.Alerts), len(want), st.Alerts)
	}
	for i, a := range st.Alerts {
		if a.LongWindow != want[i].long || a.Firing != want[i].firing || a.Unknown {
			t.Errorf("alert %d = %+v, want %+v", i, a, want[i])
		}
	}
	if st.Window != "30d" || st.Range.Start != at.Add(-30*Day) {
		t.Errorf("window %s range %+v", st.Window, st.Range)
	}

	t.Run("a window that failed makes its tiers unknown, never firing", func(t *testing.T) {
		m := map[time.Duration]Measured{}
		for k, v := range fast {
			m[k] = v
		}
		m[5*time.Minute] = Measured{Err: fmt.Errorf("prometheus down: %w", ErrUnavailable)}
		st := o.Evaluate(at, m)
		if a := st.Alerts[0]; a.Firing || !a.Unknown {
			t.Errorf("page tier = %+v", a)
		}
		if st.BurnRates["5m"] != nil {
			t.Errorf("5m burn should be null")
		}
		if len(st.Errors) != 1 || st.Errors[0].Window != "5m" || st.Errors[0].NoData {
			t.Errorf("errors = %+v", st.Errors)
		}
	})
	t.Run("zero traffic leaves the budget unknown, not full", func(t *testing.T) {
		zero := map[time.Duration]Measured{}
		for k := range o.Plan(at) {
			zero[k] = counts(0, 0)
		}
		st := o.Evaluate(at, zero)
		if st.Measured() || st.SLI.Ratio != nil {
			t.Errorf("status = %+v", st)
		}
		if len(st.Errors) != 8 || !st.Errors[0].NoData {
			t.Errorf("errors = %+v", st.Errors)
		}
		for _, e := range st.Errors {
			if !e.NoData || !strings.Contains(e.Error, "no data") {
				t.Errorf("error %+v is not a no-data error", e)
			}
		}

	})
	t.Run("a dark window beside one burning at or above the factor is no data for the tier", func(t *testing.T) {
		dark := Measured{Err: fmt.Errorf("prometheus: empty result: %w", ErrNoData)}
		tests := map[string]struct {
			long, short Measured
			noData      bool
			unknown     bool
			reason      string
		}{
			"a long window burning at 20x and a short window without series": {
				long: counts(72, 3600), short: dark, noData: true, unknown: true,
				reason: "1h burns at 20.00x, at or above the factor 14.4x, and 5m was not measured",
			},
			"a short window burning at 20x and a long window whose source failed": {
				long: Measured{Err: fmt.Errorf("down: %w", ErrUnavailable)}, short: counts(6, 300), noData: true, unknown: true,
				reason: "5m burns at 20.00x, at or above the factor 14.4x, and 1h was not measured",
			},
			"both windows dark is unknown but not a burn without data": {
				long: dark, short: dark, unknown: true,
			},
			"a long window below the factor says not firing whatever the short one says": {
				long: counts(1, 3600), short: dark,
			},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				st := o.Evaluate(at, map[time.Duration]Measured{time.Hour: tc.long, 5 * time.Minute: tc.short})
				a := st.Alerts[0]
				if a.Firing || a.Unknown != tc.unknown || a.NoData != tc.noData || a.Reason != tc.reason {
					t.Errorf("page tier 1h/5m = %+v, want unknown %v, noData %v, reason %q", a, tc.unknown, tc.noData, tc.reason)
				}
				if got := st.NoDataTiers(); (len(got) == 1) != tc.noData {
					t.Errorf("NoDataTiers = %+v", got)
				}
			})
		}
	})
	t.Run("one window below the factor is enough to say not firing", func(t *testing.T) {
		st := o.Evaluate(at, map[time.Duration]Measured{time.Hour: counts(0, 3600)})
		if a := st.Alerts[0]; a.Firing || a.Unknown {
			t.Errorf("page tier = %+v", a)
		}
	})
}
