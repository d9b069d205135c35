package slo

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Threshold and time-slice objectives (OpenSLO v1 thresholdMetric with
// op/value, budgetingMethod Timeslices and RatioTimeslices).
//
// Each is compiled into a raw success ratio over Prometheus subqueries, so
// the budget, the burn rates, the alert tiers, the rules and the
// dashboards are those of any raw SLI:
//
//   - a slice of TimeSlice.Window is good when the metric over the slice
//     meets op value (threshold), or when the slice's good ratio meets
//     op timeSliceTarget (Timeslices on a ratio);
//   - the SLI over a window is the share of good slices in it:
//     avg_over_time((slice good, 0 or 1)[window−1ms:slice]) (the window
//     holds window/slice slices on every Prometheus version); slices without
//     data (no series, NaN) are left out, neither good nor bad;
//   - RatioTimeslices: the SLI is the average of the slices' good ratios.
//
// A threshold objective with Occurrences counts 1-minute points: it is
// Timeslices with a slice of DefaultPointSlice.

// Threshold is a threshold objective: the metric compared with Value by
// Op (lt, lte, gt, gte) in every slice.
type Threshold struct {
	Op    string
	Value float64
	// Metric is the thresholdMetric query: windowed ({{.window}}, e.g. a
	// p95 over the slice) or an instant gauge expression.
	Metric *Query
}

// TimeSlice is the slice of a Timeslices or RatioTimeslices objective.
type TimeSlice struct {
	// Window is the slice length (timeSliceWindow).
	Window time.Duration
	// Target is the good ratio a slice needs (timeSliceTarget), with Op.
	Target float64
	Op     string
}

// Budgeting methods.
const (
	BudgetOccurrences     = "Occurrences"
	BudgetTimeslices      = "Timeslices"
	BudgetRatioTimeslices = "RatioTimeslices"
)

// DefaultPointSlice is the slice of a threshold objective budgeted by
// Occurrences: one point a minute.
const DefaultPointSlice = time.Minute

// maxSlice is the longest slice: the shortest burn-rate window (5m) must
// hold at least one whole slice.
var maxSlice = BurnRateWindows[0]

// promOps maps OpenSLO's operators onto PromQL's.
var promOps = map[string]string{"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}

// Meets reports whether v meets the threshold (v op value).
func (t Threshold) Meets(v float64) bool {
	switch t.Op {
	case "lt":
		return v < t.Value
	case "lte":
		return v <= t.Value
	case "gt":
		return v > t.Value
	case "gte":
		return v >= t.Value
	}
	return false
}

// String is the threshold as written: "lt 0.3".
func (t Threshold) String() string {
	return t.Op + " " + strconv.FormatFloat(t.Value, 'g', -1, 64)
}

// IsSliced reports whether the objective is budgeted over time slices
// (threshold objectives and the two time-slice methods).
func (o Objective) IsSliced() bool { return o.Threshold != nil || o.SliceSLI != nil }

// compileSlices builds o.SLI, a raw success ratio of subqueries, from
// o.Threshold or o.SliceSLI. It returns the field at fault and why.
func (o *Objective) compileSlices() (string, error) {
	s := o.TimeSlice.Window
	if s > maxSlice || s <= 0 || maxSlice%s != 0 {
		return "timeSliceWindow", fmt.Errorf("slice %s does not divide the shortest burn-rate window %s: want a whole number of seconds dividing it, e.g. 1m or 5m", FormatDuration(s), FormatDuration(maxSlice))
	}
	if s%time.Second != 0 {
		return "timeSliceWindow", fmt.Errorf("slice %s: want whole seconds", s)
	}
	var inner string
	var from *Query
	switch {
	case o.Threshold != nil:
		m := o.Threshold.Metric
		if m.Source != SourcePrometheus {
			return "thresholdMetric", fmt.Errorf("threshold and time-slice SLIs are measured from Prometheus only, got %s", m.Source)
		}
		text := m.PromQL
		if m.Windowed {
			var err error
			if text, err = RenderWindow(text, s); err != nil {
				return "thresholdMetric", err
			}
		}
		if _, err := ParsePromQL(text); err != nil {
			return "thresholdMetric", err
		}
		v := "(" + text + ")"
		inner = fmt.Sprintf("(%s %s bool %s) and (%s > -Inf)", v, promOps[o.Threshold.Op], num(o.Threshold.Value), v)
		from = m
	case o.SliceSLI != nil:
		for _, q := range o.SliceSLI.Queries() {
			if q.Source != SourcePrometheus {
				return "budgetingMethod", fmt.Errorf("%s is measured from Prometheus only, got %s", o.Budgeting, q.Source)
			}
		}
		er, err := o.SliceSLI.ErrorRatioExpr(s, nil)
		if err != nil {
			return "ratioMetric", err
		}
		e := "(" + er.String() + ")"
		if o.Budgeting == BudgetRatioTimeslices {
			inner = fmt.Sprintf("(1 - %s) and (%s >= 0)", e, e)
		} else {
			inner = fmt.Sprintf("((1 - %s) %s bool %s) and (%s >= 0)", e, promOps[o.TimeSlice.Op], num(o.TimeSlice.Target), e)
		}
		from = o.SliceSLI.Queries()[0]
	default:
		return "", nil
	}
	if strings.Contains(inner, windowMarker) {
		return "query", fmt.Errorf("a slice query must not contain %q once its window is set", windowMarker)
	}
	text := fmt.Sprintf("avg_over_time((%s)[{{.sliceRange}}:%s])", inner, PromDuration(s))
	q := &Query{Source: SourcePrometheus, DataSource: from.DataSource, PromQL: text, Windowed: true, AllowPartial: from.AllowPartial, Pos: from.Pos}
	if err := CheckPromQL(q); err != nil {
		return "query", err
	}
	o.SLI = SLI{Name: o.SLI.Name, Raw: q, RawType: RawSuccess, Pos: o.SLI.Pos}
	return "", nil
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// osSlices reads an OpenSLO objective's op, value, timeSliceTarget and
// timeSliceWindow for the SLO's budgeting method, once its SLI is resolved
// (a thresholdMetric or a ratioMetric is known only then), and compiles
// a threshold or time-slice objective's SLI.
func (l *loader) osSlices(r *rawSLO, o *Objective) {
	if r.objective == nil {
		return
	}
	sli := o.SLI
	oo, path, d := r.objective, r.objectivePath, r.doc
	bad := func(field, format string, args ...any) {
		d.errorf(path+"."+field, format, args...)
		o.Window = Window{} // not kept
	}
	threshold := sli.Metric != nil
	if oo.Op != "" {
		if _, ok := promOps[oo.Op]; !ok {
			bad("op", "want lt, lte, gt or gte, got %q", oo.Op)
			return
		}
	}
	if oo.TimeSliceWindow != "" {
		w, err := ParseDuration(oo.TimeSliceWindow)
		if err != nil {
			bad("timeSliceWindow", "%v", err)
			return
		}
		o.TimeSlice.Window = w
	}
	sliced := o.Budgeting == BudgetTimeslices || o.Budgeting == BudgetRatioTimeslices
	switch {
	case threshold:
		if oo.Op == "" || oo.Value == nil {
			bad("op", "a thresholdMetric objective needs op (lt, lte, gt, gte) and value, e.g. op: lt, value: 0.3")
			return
		}
		if o.Budgeting == BudgetRatioTimeslices {
			bad("op", "RatioTimeslices averages slice ratios: it takes a ratioMetric, not a thresholdMetric")
			return
		}
		if oo.TimeSliceTarget != nil {
			bad("timeSliceTarget", "a thresholdMetric slice is good when the metric over it meets op value: timeSliceTarget applies to ratioMetric slices")
			return
		}
		o.Threshold = &Threshold{Op: oo.Op, Value: *oo.Value, Metric: sli.Metric}
		if o.Budgeting == BudgetOccurrences {
			if oo.TimeSliceWindow != "" {
				bad("timeSliceWindow", "Occurrences counts one point a minute: use budgetingMethod Timeslices for slices of your own")
				return
			}
			o.TimeSlice.Window = DefaultPointSlice
		}
	case sliced:
		if oo.Value != nil && oo.Op == "" {
			bad("value", "a ratioMetric objective takes no value (only thresholdMetric objectives do)")
			return
		}
		o.SliceSLI = &SLI{Name: sli.Name, Good: sli.Good, Bad: sli.Bad, Total: sli.Total, Raw: sli.Raw, RawType: sli.RawType, Pos: sli.Pos}
		if o.Budgeting == BudgetTimeslices {
			if oo.TimeSliceTarget == nil {
				bad("timeSliceTarget", "required with Timeslices: the good ratio a slice needs, in (0,1], e.g. 0.99")
				return
			}
			if t := *oo.TimeSliceTarget; !(t > 0 && t <= 1) {
				bad("timeSliceTarget", "must be in (0,1], got %v", t)
				return
			}
			o.TimeSlice.Target = *oo.TimeSliceTarget
			o.TimeSlice.Op = oo.Op
			if o.TimeSlice.Op == "" {
				o.TimeSlice.Op = "gte"
			}
		} else if oo.TimeSliceTarget != nil {
			bad("timeSliceTarget", "RatioTimeslices averages the slices' ratios: it takes no timeSliceTarget")
			return
		}
	default:
		if oo.Op != "" || oo.Value != nil {
			bad("op", "op and value are for thresholdMetric SLIs; this SLI is a ratioMetric")
			return
		}
		if oo.TimeSliceTarget != nil || oo.TimeSliceWindow != "" {
			bad("timeSliceTarget", "time slices need budgetingMethod Timeslices or RatioTimeslices, not %s", o.Budgeting)
			return
		}
		return
	}
	if sliced && oo.TimeSliceWindow == "" {
		bad("timeSliceWindow", "required with %s: the slice length, e.g. 1m", o.Budgeting)
		return
	}
	o.SLI = SLI{Name: sli.Name, Pos: sli.Pos}
	if field, err := o.compileSlices(); err != nil {
		bad(field, "%v", err)
	}
}

// DisplayNameOr is the objective's display name, else its name.
func (o Objective) DisplayNameOr() string {
	if o.DisplayName != "" {
		return o.DisplayName
	}
	return o.Name
}

// compositePart reads an objective's own indicator or indicatorRef (an
// OpenSLO composite SLO): the objective is measured, budgeted and gated
// on that SLI, as an SLO of its own. compositeWeight is kept
// (Objective.CompositeWeight); the gate halts when any part halts, which
// no weighting can loosen, and no weighted composite figure is computed.
func (d *document) compositePart(r *rawSLO, obj *Objective, o *osObjective, spec *osSLOSpec, path string) bool {
	if o.CompositeWeight != nil {
		if !(*o.CompositeWeight > 0) {
			d.errorf(path+".compositeWeight", "must be positive, got %v", *o.CompositeWeight)
			return false
		}
		obj.CompositeWeight = *o.CompositeWeight
	}
	switch {
	case o.Indicator == nil && o.IndicatorRef == "":
		if o.CompositeWeight != nil {
			d.errorf(path+".compositeWeight", "a composite part needs its own indicator or indicatorRef")
			return false
		}
		return true
	case o.Indicator != nil && o.IndicatorRef != "":
		d.errorf(path+".indicatorRef", "give either indicator or indicatorRef, not both")
		return false
	case spec.Indicator != nil || spec.IndicatorRef != "":
		d.errorf(path+".indicatorRef", "an objective with its own indicator is a composite part: the SLO then takes no spec.indicator or spec.indicatorRef")
		return false
	case o.IndicatorRef != "":
		r.indicator, r.indicatorRef, r.refPos = nil, o.IndicatorRef, d.pos(path+".indicatorRef")
	default:
		name := o.Indicator.Metadata.Name
		if name == "" {
			name = obj.Name
		}
		sli, ok := d.sli(name, &o.Indicator.Spec, path+".indicator.spec")
		if !ok {
			return false
		}
		key := "\x00inline/" + d.file + "/" + obj.Name
		d.l.slis[key] = sli
		r.indicator, r.indicatorRef = &sli.sli, key
	}
	return true
}
