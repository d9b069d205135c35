// Package dora computes the four DORA keys (deployment frequency, lead
// time for changes, change failure rate, time to restore) from a history
// of deploys and the page-level burns of the SLOs, and what one deploy
// cost in error budget. The keys are pure functions of their inputs
// (Compute, Classify); History finds the burns, from what slogate's alert
// tracker recorded and, before that record, by measuring the page tiers'
// condition at past instants through a Counter (gate.Measurer).
//
// docs/dora.md gives each definition, the sources it follows and where
// slogate differs.
package dora

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/slogate/slogate"
)

// Kinds of change failure.
const (
	// KindFailed and KindRolledBack: the deploy finished so.
	KindFailed     = "failed"
	KindRolledBack = "rolledBack"
	// KindBurn: a page-level burn of one of the service's SLOs began after
	// the deploy started, before the next deploy and within the
	// attribution limit after it finished.
	KindBurn = "burn"
)

// Frequency bands (the Four Keys rule).
const (
	BandDaily   = "daily"
	BandWeekly  = "weekly"
	BandMonthly = "monthly"
	BandYearly  = "yearly"
)

// Defaults of Options.
const (
	DefaultWindow      = 30 * 24 * time.Hour
	DefaultAttribution = time.Hour
)

// Day is the unit of deploy days: 24 hours counted back from the window's
// end.
const Day = 24 * time.Hour

// finishedAt is when d finished; zero while it runs.
func finishedAt(d slogate.Deploy) time.Time {
	if d.FinishedAt == nil {
		return time.Time{}
	}
	return *d.FinishedAt
}

// Burn is one page-level burn of an SLO: its page tiers fired from Start
// to End.
type Burn struct {
	Service string
	SLO     string
	// Environments the SLO measures (its "environment" label); empty: it
	// names none, and its burns count in every environment of the service.
	Environments []string
	Start        time.Time
	// End is zero while it still burns.
	End time.Time
}

func (b Burn) covers(env string) bool {
	return len(b.Environments) == 0 || slices.Contains(b.Environments, env)
}

// Span is an interval of time.
type Span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Options of Compute.
type Options struct {
	// End is the end of the window, the instant the keys are computed at
	// (required): deploys started and burns begun after it are unknown.
	End time.Time
	// Window is the window's length (default 30 days).
	Window time.Duration
	// Attribution is how long after a deploy finished a burn that begins
	// is still its doing (default 1h).
	Attribution time.Duration
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Attribution <= 0 {
		o.Attribution = DefaultAttribution
	}
	o.End = o.End.UTC()
	return o
}

// Report is the four keys over a window: the body of GET /v1/dora.
// Durations are seconds; a figure without samples is null.
type Report struct {
	Window            Span              `json:"window"`
	Deployments       Frequency         `json:"deployments"`
	LeadTime          LeadTime          `json:"leadTime"`
	ChangeFailureRate ChangeFailureRate `json:"changeFailureRate"`
	TimeToRestore     TimeToRestore     `json:"timeToRestore"`
	Failures          []Failure         `json:"failures"`
}

// Frequency is the deployment frequency: deploys finished succeeded in
// the window.
type Frequency struct {
	Count      int     `json:"count"`
	PerDay     float64 `json:"perDay"`
	DeployDays int     `json:"deployDays"`
	Band       string  `json:"band"`
}

// LeadTime is the lead time for changes: finishedAt − earliest commit time
// of the succeeded deploys. Missing counts those without a commit time,
// which are left out.
type LeadTime struct {
	Median  *float64 `json:"median"`
	P90     *float64 `json:"p90"`
	Samples int      `json:"samples"`
	Missing int      `json:"missing"`
}

// ChangeFailureRate is change failures ÷ deploys finished in the window.
type ChangeFailureRate struct {
	Failures    int      `json:"failures"`
	Deployments int      `json:"deployments"`
	Ratio       *float64 `json:"ratio"`
}

// TimeToRestore is the median time from a change failure's start to its
// recovery, over the failures that recovered by the window's end.
type TimeToRestore struct {
	Median  *float64 `json:"median"`
	Samples int      `json:"samples"`
}

// Failure is one change failure.
type Failure struct {
	DeployID    string `json:"deployId"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
	// Kind is KindFailed, KindRolledBack or KindBurn.
	Kind string `json:"kind"`
	// SLO is the SLO that burned (KindBurn).
	SLO string `json:"slo,omitempty"`
	// Start is the deploy's finish (failed, rolledBack) or the burn's
	// start (burn).
	Start time.Time `json:"start"`
	// RestoredAt is the finish of the next succeeded deploy (failed,
	// rolledBack) or the end of the burn (burn); null while not restored.
	RestoredAt *time.Time `json:"restoredAt"`
	// Reason says why it counts, in words.
	Reason string `json:"reason"`
}

// Compute returns the four keys over the window ending at opts.End, from
// the deploys of the services and environments asked (in any order; a
// deploy that started before the window and finished in it counts) and
// the page-level burns of their SLOs. Deploys started after the end are
// unknown at the end and ignored; so are burns begun after it, and a burn
// that ended after it is still burning then.
func Compute(deploys []slogate.Deploy, burns []Burn, opts Options) Report {
	opts = opts.withDefaults()
	end := opts.End
	start := end.Add(-opts.Window)
	r := Report{Window: Span{Start: start, End: end}, Failures: []Failure{}}

	histories := Histories(deploys, end)
	burns = knownBurns(burns, end)
	days := map[int]bool{}
	weekDays := map[int]map[int]bool{}
	monthCount := map[int]int{}
	var leads, restores []float64
	for _, h := range histories {
		for i, d := range h {
			if !d.Finished(end) || !finishedAt(d).After(start) {
				continue
			}
			r.ChangeFailureRate.Deployments++
			if d.Status == slogate.StatusSucceeded {
				r.Deployments.Count++
				day := dayIndex(end, finishedAt(d))
				days[day] = true
				if weekDays[day/7] == nil {
					weekDays[day/7] = map[int]bool{}
				}
				weekDays[day/7][day] = true
				monthCount[day/30]++
				if first, ok := d.EarliestCommit(); !ok {
					r.LeadTime.Missing++
				} else {
					leads = append(leads, max(0, finishedAt(d).Sub(first).Seconds()))
				}
			}
			if f, ok := classify(h, i, burns, opts.Attribution, end); ok {
				r.Failures = append(r.Failures, f)
				if f.RestoredAt != nil {
					restores = append(restores, f.RestoredAt.Sub(f.Start).Seconds())
				}
			}
		}
	}
	windowDays := int(math.Ceil(float64(opts.Window) / float64(Day)))
	r.Deployments.DeployDays = len(days)
	r.Deployments.PerDay = float64(r.Deployments.Count) / (float64(opts.Window) / float64(Day))
	r.Deployments.Band = band(windowDays, weekDays, monthCount)

	r.LeadTime.Samples = len(leads)
	r.LeadTime.Median, r.LeadTime.P90 = Percentile(leads, 0.5), Percentile(leads, 0.9)
	r.ChangeFailureRate.Failures = len(r.Failures)
	if n := r.ChangeFailureRate.Deployments; n > 0 {
		ratio := float64(len(r.Failures)) / float64(n)
		r.ChangeFailureRate.Ratio = &ratio
	}
	r.TimeToRestore.Samples = len(restores)
	r.TimeToRestore.Median = Percentile(restores, 0.5)
	slices.SortFunc(r.Failures, func(a, b Failure) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.DeployID, b.DeployID))
	})
	return r
}

// Classify says whether the deploy id of history (the deploys of one
// service and environment known at at, in the order Histories gives) is a
// change failure, and why. A deploy that has not finished by at is not
// one yet.
func Classify(history []slogate.Deploy, id string, burns []Burn, attribution time.Duration, at time.Time) (Failure, bool) {
	if attribution <= 0 {
		attribution = DefaultAttribution
	}
	for i, d := range history {
		if d.ID == id {
			if !d.Finished(at) {
				return Failure{}, false
			}
			return classify(history, i, knownBurns(burns, at), attribution, at)
		}
	}
	return Failure{}, false
}

// AttributionSpan is when a burn that begins is the doing of deploy i of
// history: after it started, before the next deploy started and at most
// attribution after it finished (or, while it runs, until at).
func AttributionSpan(history []slogate.Deploy, i int, attribution time.Duration, at time.Time) Span {
	d := history[i]
	limit := at
	if d.Finished(at) {
		limit = finishedAt(d).Add(attribution)
	}
	if i+1 < len(history) && history[i+1].StartedAt.Before(limit) {
		limit = history[i+1].StartedAt
	}
	if limit.After(at) {
		limit = at
	}
	return Span{Start: d.StartedAt, End: limit}
}

func classify(h []slogate.Deploy, i int, burns []Burn, attribution time.Duration, at time.Time) (Failure, bool) {
	d := h[i]
	f := Failure{DeployID: d.ID, Service: d.Service, Environment: d.Environment}
	if d.Failed() {
		f.Kind, f.Start = d.Status, finishedAt(d)
		f.Reason = "the deploy finished " + d.Status
		for _, n := range h[i+1:] {
			if n.Status == slogate.StatusSucceeded && n.Finished(at) {
				t := finishedAt(n)
				f.RestoredAt = &t
				f.Reason += "; restored by deploy " + n.ID
				break
			}
		}
		return f, true
	}
	span := AttributionSpan(h, i, attribution, at)
	var first *Burn
	for j := range burns {
		b := &burns[j]
		if b.Service != d.Service || !b.covers(d.Environment) {
			continue
		}
		// Began after the deploy started, before the limit.
		if !b.Start.After(span.Start) || !b.Start.Before(span.End) {
			continue
		}
		if first == nil || b.Start.Before(first.Start) || b.Start.Equal(first.Start) && b.SLO < first.SLO {
			first = b
		}
	}
	if first == nil {
		return Failure{}, false
	}
	f.Kind, f.SLO, f.Start = KindBurn, first.SLO, first.Start
	f.Reason = "a page-level burn of " + first.SLO + " began " + first.Start.Sub(d.StartedAt).Round(time.Second).String() + " after the deploy started"
	if !first.End.IsZero() {
		t := first.End
		f.RestoredAt = &t
	}
	return f, true
}

// Histories groups the deploys known at at (started by then) by service
// and environment, each history in the order they started (then by id).
// A deploy that finished after at is running at at.
func Histories(deploys []slogate.Deploy, at time.Time) [][]slogate.Deploy {
	// Sorted through indices, so that each deploy (a large value) is
	// copied once; the histories share one array, each capped at its end.
	idx := make([]int, 0, len(deploys))
	for i := range deploys {
		if !deploys[i].StartedAt.After(at) {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(i, j int) int {
		a, b := &deploys[i], &deploys[j]
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Environment, b.Environment),
			a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.ID, b.ID))
	})
	all := make([]slogate.Deploy, len(idx))
	out := make([][]slogate.Deploy, 0, 1)
	start := 0
	for n, i := range idx {
		d := deploys[i]
		if f := finishedAt(d); !f.IsZero() && f.After(at) {
			d.FinishedAt, d.Status = nil, slogate.StatusRunning
		}
		all[n] = d
		if n > 0 && (d.Service != all[n-1].Service || d.Environment != all[n-1].Environment) {
			out = append(out, all[start:n:n])
			start = n
		}
	}
	if len(all) > 0 {
		out = append(out, all[start:])
	}
	return out
}

// knownBurns are the burns as known at at: begun by then, and still
// burning if they ended after it.
func knownBurns(burns []Burn, at time.Time) []Burn {
	out := make([]Burn, 0, len(burns))
	for _, b := range burns {
		if b.Start.After(at) {
			continue
		}
		if b.End.After(at) {
			b.End = time.Time{}
		}
		out = append(out, b)
	}
	return out
}

// dayIndex numbers the 24-hour days back from end: 0 is (end−24h, end].
func dayIndex(end, t time.Time) int {
	return int(max(0, end.Sub(t)) / Day)
}

// band is the Four Keys rule over the window's weeks and months (7 and 30
// days back from the end; an older remainder shorter than a week or a
// month is left out, and a window shorter than one is one):
// daily when the median week has a deploy on at least 3 days, weekly when
// the median week has one, monthly when the median month has one, else
// yearly.
func band(windowDays int, weekDays map[int]map[int]bool, monthCount map[int]int) string {
	weeks, months := max(1, windowDays/7), max(1, windowDays/30)
	perWeek := make([]float64, weeks)
	hasDeploy := make([]float64, weeks)
	for w := range weeks {
		perWeek[w] = float64(len(weekDays[w]))
		if len(weekDays[w]) > 0 {
			hasDeploy[w] = 1
		}
	}
	perMonth := make([]float64, months)
	for m := range months {
		perMonth[m] = float64(monthCount[m])
	}
	switch {
	case *Percentile(perWeek, 0.5) >= 3:
		return BandDaily
	case *Percentile(hasDeploy, 0.5) >= 1:
		return BandWeekly
	case *Percentile(perMonth, 0.5) >= 1:
		return BandMonthly
	default:
		return BandYearly
	}
}

// Percentile is the p-th percentile (0 ≤ p ≤ 1) of xs by linear
// interpolation between the closest ranks (SQL's PERCENTILE_CONT, the
// function Four Keys uses), or nil when xs is empty. xs is not modified.
func Percentile(xs []float64, p float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := p * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := min(lo+1, len(s)-1)
	v := s[lo] + (s[hi]-s[lo])*(rank-float64(lo))
	return &v
}
