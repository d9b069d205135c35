package gate

import (
	"context"
	"errors"
	"hash/fnv"
	"reflect"
	"sync"
	"time"

	"github.com/slogate/slogate/slo"
)

// DefaultAgeDivisor sizes how long a scheduled evaluation may keep a
// window's figure: a window of length W is measured again once its figure
// is W/720 old (the 30-day SLO window every hour, 3 days every 6 minutes,
// 1 day every 2 minutes; 6 hours and shorter at every run of a 1-minute
// schedule). A figure kept that long differs from a fresh one by the
// events of at most 1/720 of its window, against a budget judged over the
// whole window.
const DefaultAgeDivisor = 720

// windowCache keeps, per objective, the figures of its long windows that
// scheduled runs may reuse. Point-in-time answers and the gate never read
// it.
type windowCache struct {
	divisor int // a window of length W is kept W/divisor; ≤ 0 keeps nothing

	mu   sync.Mutex
	objs map[string]*cachedObjective
}

type cachedObjective struct {
	sli     slo.SLI // a changed SLI (reloaded files) drops every figure
	windows map[time.Duration]cachedWindow
}

type cachedWindow struct {
	m     slo.Measured
	at    time.Time // the run that measured it
	start time.Time // its range's start: a calendar period is kept within the same period only
	dur   time.Duration
	due   time.Time // measured again at the first run at or after due
}

func newWindowCache(divisor int) *windowCache {
	return &windowCache{divisor: divisor, objs: map[string]*cachedObjective{}}
}

func (c *windowCache) maxAge(r slo.Range) time.Duration {
	if c.divisor <= 0 {
		return 0
	}
	return r.Duration() / time.Duration(c.divisor)
}

// take returns the figures of plan that may be reused at the run at.
func (c *windowCache) take(o slo.Objective, plan map[time.Duration]slo.Range, at time.Time) map[time.Duration]cachedWindow {
	if c.divisor <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	co, ok := c.objs[o.Name]
	if !ok || !reflect.DeepEqual(co.sli, o.SLI) {
		return nil
	}
	out := map[time.Duration]cachedWindow{}
	for key, r := range plan {
		cw, ok := co.windows[key]
		switch {
		case !ok, !at.After(cw.at), !at.Before(cw.due):
		case key == slo.PeriodKey && o.Window.IsCalendar() && !cw.start.Equal(r.Start):
			// A new calendar period.
		case (key != slo.PeriodKey || !o.Window.IsCalendar()) && cw.dur != r.Duration():
		default:
			out[key] = cw
		}
	}
	return out
}

// store keeps the figures measured at the run at that may be reused: no
// error, and a window long enough to be kept past the next run. The first
// figure of a window is due early by a share of its age that depends on
// the objective's name, so that the long windows of a thousand objectives
// measured in the same first run are measured again over the following
// runs, not all in one.
func (c *windowCache) store(o slo.Objective, plan map[time.Duration]slo.Range, fresh map[time.Duration]slo.Measured, at time.Time) {
	if c.divisor <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	co, ok := c.objs[o.Name]
	if !ok || !reflect.DeepEqual(co.sli, o.SLI) {
		co = &cachedObjective{sli: o.SLI, windows: map[time.Duration]cachedWindow{}}
		c.objs[o.Name] = co
	}
	for key, m := range fresh {
		r := plan[key]
		age := c.maxAge(r)
		if m.Err != nil || age <= 0 {
			delete(co.windows, key)
			continue
		}
		due := at.Add(age)
		if _, seen := co.windows[key]; !seen {
			due = due.Add(-stagger(o.Name, key, age))
		}
		co.windows[key] = cachedWindow{m: m, at: at, start: r.Start, dur: r.Duration(), due: due}
	}
}

// keep drops the objectives that are not in names.
func (c *windowCache) keep(names map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := range c.objs {
		if !names[n] {
			delete(c.objs, n)
		}
	}
}

func stagger(name string, key time.Duration, age time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte(slo.FormatDuration(key)))
	return time.Duration(h.Sum64() % uint64(age))
}

// windowName is a plan key as Status names windows.
func windowName(key time.Duration) string {
	if key == slo.PeriodKey {
		return "period"
	}
	return slo.FormatDuration(key)
}

// measureScheduled measures o at the run at, reusing the long-window
// figures of earlier runs that are young enough; their ages are in
// Status.AgeSeconds.
func (b *Board) measureScheduled(ctx context.Context, o slo.Objective, at time.Time) slo.Status {
	plan := o.Plan(at)
	reused := b.cache.take(o, plan, at)
	todo := make(map[time.Duration]slo.Range, len(plan))
	for key, r := range plan {
		if _, ok := reused[key]; !ok {
			todo[key] = r
		}
	}
	fresh := b.m.measurePlan(ctx, o.SLI, todo)
	b.cache.store(o, todo, fresh, at)
	all := make(map[time.Duration]slo.Measured, len(plan))
	for key, m := range fresh {
		all[key] = m
	}
	for key, cw := range reused {
		all[key] = cw.m
	}
	st := o.Evaluate(at, all)
	if len(reused) > 0 {
		st.AgeSeconds = make(map[string]float64, len(reused))
		for key, cw := range reused {
			st.AgeSeconds[windowName(key)] = at.Sub(cw.at).Seconds()
		}
	}
	return st
}

// measureAllScheduled measures every objective of a scheduled run, in the
// order given.
func (b *Board) measureAllScheduled(ctx context.Context, objs []slo.Objective, at time.Time) []slo.Status {
	// A grouped objective is one objective per value, measured with its
	// group (group.go): its figures are fresh at every run.
	ctx, objs, failed := b.m.Expand(ctx, objs, at)
	out := make([]slo.Status, len(objs))
	names := make(map[string]bool, len(objs))
	var wg sync.WaitGroup
	for i, o := range objs {
		names[o.Name] = true
		wg.Go(func() {
			if st, ok := memoStatus(ctx, o, at); ok {
				out[i] = st
				return
			}
			out[i] = b.measureScheduled(ctx, o, at)
		})
	}
	wg.Wait()
	for _, u := range failed {
		out = append(out, unexpandedStatus(u, at))
	}
	b.cache.keep(names)
	return out
}

// ErrNotReady is the error of every window of an objective that no
// scheduled evaluation has measured yet.
var ErrNotReady = errors.New("not measured yet: the first scheduled evaluation has not finished")

// notReady is the status of an objective no run has measured here (why:
// ErrNotReady, or ErrFollower): every figure unknown, NotReady set, no
// instant.
func notReady(o slo.Objective, why error) slo.Status {
	at := time.Now()
	m := map[time.Duration]slo.Measured{}
	for key := range o.Plan(at) {
		m[key] = slo.Measured{Err: why}
	}
	st := o.Evaluate(at, m)
	st.NotReady = true
	st.EvaluatedAt = time.Time{}
	st.Range = slo.RangeJSON{}
	return st
}
