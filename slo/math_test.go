package slo

import (
	"errors"
	"math"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestErrorRatioBurnRateAndBudget(t *testing.T) {
	tests := map[string]struct {
		good, total, target                float64
		wantRatio, wantBurn, wantRemaining float64
		wantErr                            error
	}{
		// 63 bad of 10,000 = 0.0063; budget 0.001 → burn 6.3; remaining 1 − 6.3 = −5.3.
		"63 bad requests in 10,000 against 99.9 % burn at 6.3x": {good: 9937, total: 10000, target: 0.999, wantRatio: 0.0063, wantBurn: 6.3, wantRemaining: -5.3},
		// 1 bad in 10,000 = 0.0001; budget 0.001 → burn 0.1; 90 % of the budget left.
		"one bad in 10,000 against 99.9 % leaves 90 % of the budget": {good: 9999, total: 10000, target: 0.999, wantRatio: 0.0001, wantBurn: 0.1, wantRemaining: 0.9},
		// 99.99 %: budget 0.0001; 5 bad of 100,000 = 0.00005 → burn 0.5, half left.
		"a 99.99 % target has a budget of one in ten thousand": {good: 99995, total: 100000, target: 0.9999, wantRatio: 0.00005, wantBurn: 0.5, wantRemaining: 0.5},
		// 10 bad of 1,000 against 99 % is exactly the budget: burn 1, nothing left.
		"an error ratio equal to the budget burns at exactly 1x": {good: 990, total: 1000, target: 0.99, wantRatio: 0.01, wantBurn: 1, wantRemaining: 0},
		// 100 bad of 1,000 against 99 % = 10× the budget.
		"an error ratio ten times the budget burns at 10x": {good: 900, total: 1000, target: 0.99, wantRatio: 0.1, wantBurn: 10, wantRemaining: -9},
		"no bad events spend nothing":                      {good: 500, total: 500, target: 0.95, wantRatio: 0, wantBurn: 0, wantRemaining: 1},
		"zero traffic is no data, never 100 %":             {good: 0, total: 0, target: 0.999, wantErr: ErrNoData},
		"NaN from a source is no data":                     {good: math.NaN(), total: 10, target: 0.999, wantErr: ErrNoData},
		"+Inf from a source is no data":                    {good: 1, total: math.Inf(1), target: 0.999, wantErr: ErrNoData},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := ErrorRatio(tc.good, tc.total)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !near(r, tc.wantRatio) {
				t.Errorf("ratio = %v, want %v", r, tc.wantRatio)
			}
			if b := BurnRate(r, tc.target); !near(b, tc.wantBurn) {
				t.Errorf("burn = %v, want %v", b, tc.wantBurn)
			}
			if rem := BudgetRemaining(r, tc.target); !near(rem, tc.wantRemaining) {
				t.Errorf("remaining = %v, want %v", rem, tc.wantRemaining)
			}
			if c := BudgetConsumed(r, tc.target); !near(c, 1-tc.wantRemaining) {
				t.Errorf("consumed = %v, want %v", c, 1-tc.wantRemaining)
			}
		})
	}
}

func TestCountsErrorRatio(t *testing.T) {
	tests := map[string]struct {
		c       Counts
		want    float64
		wantErr bool
	}{
		"event counts give bad over total":                 {c: Counts{Good: 75, Total: 100}, want: 0.25},
		"a raw ratio is taken as measured":                 {c: Counts{Raw: true, RawErrorRatio: 0.02}, want: 0.02},
		"a raw NaN is no data":                             {c: Counts{Raw: true, RawErrorRatio: math.NaN()}, wantErr: true},
		"a raw ratio above one is an error":                {c: Counts{Raw: true, RawErrorRatio: 1.5}, wantErr: true},
		"more good than total beyond rounding is an error": {c: Counts{Good: 101, Total: 100}, wantErr: true},
		"good a hair above total from extrapolation is 0":  {c: Counts{Good: 100.0000000001, Total: 100}, want: 0},
		"negative counts are an error, not a figure":       {c: Counts{Good: -1, Total: 100}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.c.ErrorRatio()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && !near(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTierFactorsFollowFromBudgetPercentAndPeriod(t *testing.T) {
	// factor = budget% × period / long window.
	tests := map[string]struct {
		period time.Duration
		want   []float64 // page 1h, page 6h, ticket 1d, ticket 3d
	}{
		// 30d: 0.02×720h/1h = 14.4; 0.05×720/6 = 6; 0.1×720/24 = 3; 0.1×720/72 = 1.
		"a 30-day SLO gets the workbook's 14.4, 6, 3 and 1": {period: 30 * Day, want: []float64{14.4, 6, 3, 1}},
		// 28d = 672h: 13.44, 5.6, 2.8, 0.9333.
		"a 28-day SLO scales them by 28/30": {period: 28 * Day, want: []float64{13.44, 5.6, 2.8, 672.0 / 720}},
		// 7d = 168h: 3.36, 1.4, 0.7, 0.2333.
		"a 7-day SLO pages at 3.36x": {period: 7 * Day, want: []float64{3.36, 1.4, 0.7, 168.0 / 720}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for i, tier := range DefaultTiers {
				if got := tier.Factor(tc.period); !near(got, tc.want[i]) {
					t.Errorf("tier %d (%s %s/%s): factor %v, want %v", i, tier.Severity, tier.LongWindow, tier.ShortWindow, got, tc.want[i])
				}
			}
		})
	}
}

func TestTierFiresOnlyWhenBothWindowsBurn(t *testing.T) {
	page := DefaultTiers[0] // 14.4 for 30d
	tests := map[string]struct {
		long, short float64
		want        bool
	}{
		"both windows above the factor fire":         {long: 15, short: 20, want: true},
		"exactly the factor fires":                   {long: 14.4, short: 14.4, want: true},
		"a long burn that has stopped does not fire": {long: 15, short: 2, want: false},
		"a short spike alone does not fire":          {long: 3, short: 50, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := page.Firing(30*Day, tc.long, tc.short); got != tc.want {
				t.Errorf("got %v", got)
			}
		})
	}
}

func TestObjectiveTiersHonourDisabledSeverities(t *testing.T) {
	o := Objective{Alerting: Alerting{TicketDisabled: true}}
	for _, tr := range o.Tiers() {
		if tr.Severity == SeverityTicket {
			t.Errorf("ticket tier kept: %+v", tr)
		}
	}
	if n := len(o.Tiers()); n != 2 {
		t.Errorf("got %d tiers, want 2", n)
	}
}

func TestMinWindowFitsEveryTier(t *testing.T) {
	if got := MinWindow(); got != 5*Day {
		t.Errorf("MinWindow = %s, want 5d", FormatDuration(got))
	}
	for _, tr := range DefaultTiers {
		if tr.LongWindow > MinWindow() {
			t.Errorf("tier %s/%s measures longer than %s", FormatDuration(tr.LongWindow), FormatDuration(tr.ShortWindow), FormatDuration(MinWindow()))
		}
		if f := tr.Factor(MinWindow()); tr.Severity == SeverityPage && f < 1 {
			t.Errorf("page tier %s has factor %v < 1 over %s", FormatDuration(tr.LongWindow), f, FormatDuration(MinWindow()))
		}
	}
	if p := shortWindowProblem(MinWindow()); p != "" {
		t.Errorf("the minimum window is refused: %s", p)
	}
}
