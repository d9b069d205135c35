package slo

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrNoData means a measurement has nothing to say: no events at all, an
// empty result, or NaN/±Inf from a source. It is never read as 100 %.
var ErrNoData = errors.New("no data")

// Counts is what a source measured for an SLI over a range: good and total
// events, or, for a raw SLI, the error ratio itself.
type Counts struct {
	Good  float64
	Total float64
	// Raw is true for raw SLIs: RawErrorRatio holds the measured error
	// ratio and Good/Total are unused.
	Raw           bool
	RawErrorRatio float64
}

// finite reports whether v is a usable figure.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// ErrorRatio is the fraction of bad events, in [0,1]. Zero traffic, NaN and
// ±Inf are ErrNoData. Counts that disagree (good > total, negatives) are an
// error, not a figure.
func (c Counts) ErrorRatio() (float64, error) {
	if c.Raw {
		if !finite(c.RawErrorRatio) {
			return 0, ErrNoData
		}
		if c.RawErrorRatio < 0 || c.RawErrorRatio > 1 {
			return 0, fmt.Errorf("raw error ratio %v outside [0,1]", c.RawErrorRatio)
		}
		return c.RawErrorRatio, nil
	}
	return ErrorRatio(c.Good, c.Total)
}

// ErrorRatio is (total − good) / total. Zero traffic, NaN and ±Inf are
// ErrNoData. Extrapolated counters (Prometheus increase) may put good a
// hair above total; that is clamped to 0 errors within 1e-9 relative.
func ErrorRatio(good, total float64) (float64, error) {
	if !finite(good) || !finite(total) || total == 0 {
		return 0, ErrNoData
	}
	if total < 0 || good < 0 {
		return 0, fmt.Errorf("negative event count (good %v, total %v)", good, total)
	}
	r := (total - good) / total
	if r < 0 {
		if r > -1e-9 {
			return 0, nil
		}
		return 0, fmt.Errorf("more good events (%v) than total (%v)", good, total)
	}
	return r, nil
}

// BurnRate is how fast an error ratio spends the budget of a target: 1
// spends exactly the budget over the SLO period.
func BurnRate(errorRatio, target float64) float64 {
	return errorRatio / (1 - target)
}

// BudgetConsumed is the fraction of the error budget spent by an error ratio
// measured over the whole SLO period. It exceeds 1 when overspent.
func BudgetConsumed(errorRatio, target float64) float64 {
	return errorRatio / (1 - target)
}

// BudgetRemaining is 1 − consumed: 1 untouched, 0 spent, negative overspent.
func BudgetRemaining(errorRatio, target float64) float64 {
	return 1 - BudgetConsumed(errorRatio, target)
}

// Severity of an alert tier.
type Severity string

const (
	SeverityPage   Severity = "page"
	SeverityTicket Severity = "ticket"
)

// Tier is one multi-window multi-burn-rate alert (Google SRE workbook,
// chapter 5): it fires when both the long and the short window burn faster
// than the factor that spends BudgetPercent of the budget in LongWindow.
type Tier struct {
	Severity      Severity
	LongWindow    time.Duration
	ShortWindow   time.Duration
	BudgetPercent float64
}

// DefaultTiers is the burn-rate table. The factors follow from it and the
// SLO period (14.4, 6, 3 and 1 for 30 days).
var DefaultTiers = []Tier{
	{Severity: SeverityPage, LongWindow: time.Hour, ShortWindow: 5 * time.Minute, BudgetPercent: 2},
	{Severity: SeverityPage, LongWindow: 6 * time.Hour, ShortWindow: 30 * time.Minute, BudgetPercent: 5},
	{Severity: SeverityTicket, LongWindow: Day, ShortWindow: 2 * time.Hour, BudgetPercent: 10},
	{Severity: SeverityTicket, LongWindow: 3 * Day, ShortWindow: 6 * time.Hour, BudgetPercent: 10},
}

// Factor is the burn rate at which the tier spends its share of the budget
// within its long window, for an SLO period.
func (t Tier) Factor(period time.Duration) float64 {
	return t.BudgetPercent / 100 * float64(period) / float64(t.LongWindow)
}

// Firing reports whether both windows' burn rates reach the factor.
func (t Tier) Firing(period time.Duration, longBurn, shortBurn float64) bool {
	f := t.Factor(period)
	return longBurn >= f && shortBurn >= f
}

// MinWindow is the shortest SLO window the tier table fits: every tier's
// long window lies within it, and every page tier's factor is at least 1,
// so a page (and a gate halt) needs the budget to burn faster than the SLO
// allows. With DefaultTiers it is 5 days (the 6h page tier spends 5 % of
// the budget: a factor of 1 over 120 h).
func MinWindow() time.Duration {
	var min time.Duration
	for _, t := range DefaultTiers {
		need := t.LongWindow
		if t.Severity == SeverityPage {
			need = max(need, time.Duration(float64(t.LongWindow)*100/t.BudgetPercent))
		}
		min = max(min, need)
	}
	return min
}

// shortWindowProblem says why period is too short for the tier table, or
// "" when it is not.
func shortWindowProblem(period time.Duration) string {
	if period >= MinWindow() {
		return ""
	}
	var why []string
	for _, t := range DefaultTiers {
		name := fmt.Sprintf("the %s tier %s/%s", t.Severity, FormatDuration(t.LongWindow), FormatDuration(t.ShortWindow))
		switch f := t.Factor(period); {
		case t.LongWindow > period:
			why = append(why, name+" would measure "+FormatDuration(t.LongWindow)+", longer than the SLO window")
		case t.Severity == SeverityPage && f < 1:
			why = append(why, fmt.Sprintf("%s would page (and halt the gate) at a burn rate of %.2gx, below 1, while the SLO is met", name, f))
		}
	}
	return fmt.Sprintf("window %s is shorter than %s, the shortest the burn-rate alert tiers fit: %s",
		FormatDuration(period), FormatDuration(MinWindow()), strings.Join(why, "; "))
}

// BurnRateWindows are the windows burn rates are reported for, shortest
// first: every window the default tiers use.
var BurnRateWindows = []time.Duration{
	5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, Day, 3 * Day,
}
