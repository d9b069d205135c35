package slo

import (
	"errors"
	"fmt"
	"time"
)

// Status is an objective's figures at an instant: the shape of
// GET /v1/slos/{name} and of `slogate budget -o json`. A figure that could
// not be measured is null, never a guess; Errors says why.
type Status struct {
	Name        string     `json:"name"`
	Service     string     `json:"service"`
	DisplayName string     `json:"displayName,omitempty"`
	Target      float64    `json:"target"`
	Window      string     `json:"window"`
	Source      SourceType `json:"source"`
	// Group is the value of a grouped objective's labels this status is
	// of, e.g. {"route": "/checkout"} (group.go).
	Group       Scope               `json:"group,omitempty"`
	SLI         SLIFigures          `json:"sli"`
	ErrorBudget BudgetFigures       `json:"errorBudget"`
	BurnRates   map[string]*float64 `json:"burnRates"`
	Alerts      []AlertState        `json:"alerts"`
	EvaluatedAt time.Time           `json:"evaluatedAt"`
	// Range is the span the SLI and budget were measured over.
	Range RangeJSON `json:"range"`
	// Errors are the measurements that failed, by window ("period" for the
	// SLO window).
	Errors []MeasureError `json:"errors,omitempty"`
	// AgeSeconds says, per window ("period" for the SLO window), how much
	// older than EvaluatedAt a figure is when a scheduled evaluation kept
	// it from an earlier run (long windows are refreshed less often than
	// short ones). Absent windows were measured at EvaluatedAt.
	AgeSeconds map[string]float64 `json:"ageSeconds,omitempty"`
	// NotReady is true before the first scheduled evaluation has measured
	// the objective: no figure is known yet.
	NotReady bool `json:"notReady,omitempty"`
	// Origin says, on the scheduled figures (not on a point-in-time
	// answer), which replica measured them and how old they are at the
	// answer: a replica that follows serves the leader's figures as saved
	// in the store.
	Origin *Origin `json:"origin,omitempty"`
}

// Origins of scheduled figures (Origin.From).
const (
	// OriginMeasured: this replica measured the figures (it leads, or is
	// the only one).
	OriginMeasured = "measured"
	// OriginLeader: this replica follows; the figures are the leader's,
	// read from the store.
	OriginLeader = "leader"
)

// Origin is where scheduled figures come from and how old they are.
type Origin struct {
	// From is OriginMeasured or OriginLeader.
	From string `json:"from"`
	// Replica is the id of the replica that measured them.
	Replica string `json:"replica,omitempty"`
	// MeasuredAt is the instant of the run that measured them (the
	// status's evaluatedAt).
	MeasuredAt time.Time `json:"measuredAt"`
	// AgeSeconds is how long before the answer they were measured.
	AgeSeconds float64 `json:"ageSeconds"`
	// Stale is true when they are older than StaleAfterSeconds (three
	// schedule intervals): no run has measured them since, on any
	// replica, so they are not to be taken as current.
	Stale             bool    `json:"stale"`
	StaleAfterSeconds float64 `json:"staleAfterSeconds,omitempty"`
}

// SLIFigures are the SLI over the SLO window. Good and Total are absent for
// raw SLIs.
type SLIFigures struct {
	Good       *float64 `json:"good"`
	Total      *float64 `json:"total"`
	Ratio      *float64 `json:"ratio"`
	ErrorRatio *float64 `json:"errorRatio"`
}

// BudgetFigures is the error budget as fractions: Total = 1 − target of
// the events; Consumed and Remaining are fractions of that budget.
type BudgetFigures struct {
	Total     float64  `json:"total"`
	Consumed  *float64 `json:"consumed"`
	Remaining *float64 `json:"remaining"`
}

// AlertState is one burn-rate tier at the instant.
type AlertState struct {
	Severity    Severity `json:"severity"`
	LongWindow  string   `json:"longWindow"`
	ShortWindow string   `json:"shortWindow"`
	Factor      float64  `json:"factor"`
	// Firing is true when both windows burn at the factor or faster; false
	// when either is measured below it; false with Unknown when a window
	// could not be measured.
	Firing  bool `json:"firing"`
	Unknown bool `json:"unknown,omitempty"`
	// NoData (with Unknown) is a tier one of whose windows burns at or
	// above the factor while the other could not be measured (a dark short
	// window: no series, or a failing source): no data for the tier,
	// neither firing nor "not firing", and never a pass. Reason says which
	// window burns and which is missing.
	NoData bool   `json:"noData,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// RangeJSON is a Range in RFC 3339.
type RangeJSON struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// MeasureError is one failed measurement.
type MeasureError struct {
	Window string `json:"window"`
	Error  string `json:"error"`
	// NoData is true when the failure is missing data rather than a
	// failing source.
	NoData bool `json:"noData"`
}

// Measured is a measurement of one range: counts or the error that
// prevented them.
type Measured struct {
	Counts Counts
	Err    error
}

// PeriodKey is the key of the SLO-window measurement in an Evaluate input.
const PeriodKey time.Duration = -1

// Plan lists the ranges to measure for an objective at an instant: the SLO
// window (key PeriodKey) and every burn-rate window, each ending at at.
func (o Objective) Plan(at time.Time) map[time.Duration]Range {
	plan := map[time.Duration]Range{PeriodKey: o.Window.Range(at)}
	for _, w := range BurnRateWindows {
		plan[w] = Range{Start: at.Add(-w), End: at}
	}
	return plan
}

// Evaluate turns measurements (keyed as Plan keys them) into the
// objective's status at instant at. It does no I/O.
func (o Objective) Evaluate(at time.Time, m map[time.Duration]Measured) Status {
	period := o.Window.Period(at)
	r := o.Window.Range(at)
	st := Status{
		Name: o.Name, Service: o.Service, DisplayName: o.DisplayName,
		Target: o.Target, Window: o.Window.String(), Source: o.SLI.SourceType(), Group: o.Group,
		ErrorBudget: BudgetFigures{Total: o.ErrorBudget()},
		BurnRates:   map[string]*float64{},
		Alerts:      []AlertState{},
		EvaluatedAt: at,
		Range:       RangeJSON{Start: r.Start, End: r.End},
	}
	fail := func(key string, err error) {
		st.Errors = append(st.Errors, MeasureError{Window: key, Error: err.Error(), NoData: errors.Is(err, ErrNoData)})
	}
	if pm, ok := m[PeriodKey]; !ok {
		fail("period", fmt.Errorf("not measured"))
	} else if pm.Err != nil {
		fail("period", pm.Err)
	} else if er, err := pm.Counts.ErrorRatio(); err != nil {
		fail("period", err)
	} else {
		if !pm.Counts.Raw {
			st.SLI.Good, st.SLI.Total = ptr(pm.Counts.Good), ptr(pm.Counts.Total)
		}
		st.SLI.Ratio, st.SLI.ErrorRatio = ptr(1-er), ptr(er)
		st.ErrorBudget.Consumed = ptr(BudgetConsumed(er, o.Target))
		st.ErrorBudget.Remaining = ptr(BudgetRemaining(er, o.Target))
	}
	burn := map[time.Duration]*float64{}
	for _, w := range BurnRateWindows {
		key := FormatDuration(w)
		wm, ok := m[w]
		var b *float64
		switch er, err := wm.Counts.ErrorRatio(); {
		case !ok:
			fail(key, fmt.Errorf("not measured"))
		case wm.Err != nil:
			fail(key, wm.Err)
		case err != nil:
			fail(key, err)
		default:
			b = ptr(BurnRate(er, o.Target))
		}
		burn[w] = b
		st.BurnRates[key] = b
	}
	for _, t := range o.Tiers() {
		a := AlertState{
			Severity: t.Severity, LongWindow: FormatDuration(t.LongWindow),
			ShortWindow: FormatDuration(t.ShortWindow), Factor: t.Factor(period),
		}
		long, short := burn[t.LongWindow], burn[t.ShortWindow]
		switch {
		case long != nil && short != nil:
			a.Firing = t.Firing(period, *long, *short)
		case long != nil && *long < a.Factor, short != nil && *short < a.Factor:
			// One window measured below the factor: not firing, whatever
			// the other says.
		default:
			a.Unknown = true
			// At most one window is measured here, at or above the factor.
			if measured, missing, b := a.LongWindow, a.ShortWindow, long; b != nil || short != nil {
				if b == nil {
					measured, missing, b = a.ShortWindow, a.LongWindow, short
				}
				a.NoData = true
				a.Reason = fmt.Sprintf("%s burns at %.2fx, at or above the factor %.3gx, and %s was not measured", measured, *b, a.Factor, missing)
			}
		}
		st.Alerts = append(st.Alerts, a)
	}
	return st
}

// Firing returns the tiers of a status that fire.
func (s Status) Firing() []AlertState {
	var out []AlertState
	for _, a := range s.Alerts {
		if a.Firing {
			out = append(out, a)
		}
	}
	return out
}

// NoDataTiers returns the tiers of a status that have no data although
// one of their windows burns at or above the factor (AlertState.NoData).
func (s Status) NoDataTiers() []AlertState {
	var out []AlertState
	for _, a := range s.Alerts {
		if a.NoData {
			out = append(out, a)
		}
	}
	return out
}

// Measured reports whether the SLO window was measured (budget known).
func (s Status) Measured() bool { return s.ErrorBudget.Remaining != nil }

func ptr(v float64) *float64 { return &v }
