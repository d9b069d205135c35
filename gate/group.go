package gate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slogate/slogate/slo"
)

// GroupSource discovers the values of a grouped objective's labels over a
// range (collectors.Mux and collectors/prometheus.Client satisfy it).
type GroupSource interface {
	Groups(ctx context.Context, o slo.Objective, r slo.Range) ([]slo.Scope, error)
}

// ErrTooManyGroups: a grouped objective has more values than its
// maxGroups.
var ErrTooManyGroups = errors.New("too many groups")

// Unexpanded is a grouped objective whose values could not be discovered.
type Unexpanded struct {
	Objective slo.Objective
	Err       error
}

// GroupedSource measures a grouped SLI for every value at once
// (collectors.Mux and collectors/prometheus.Client satisfy it): one query
// per role and window instead of one per value.
type GroupedSource interface {
	GroupedCounts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope, by []string) ([]slo.GroupCounts, error)
}

// Expand replaces every grouped objective with one objective per value of
// its labels seen over its window (slo.Objective.ForGroup), in order; an
// objective whose values cannot be found (a failing source, no series,
// more values than maxGroups) is returned apart with why. With a
// GroupedSource the values' statuses at at are measured here, a query per
// role and window for all values, and the returned context hands them to
// Status; otherwise the values are listed (GroupSource) and each is
// measured on its own.
func (m *Measurer) Expand(ctx context.Context, objs []slo.Objective, at time.Time) (context.Context, []slo.Objective, []Unexpanded) {
	grouped := false
	for _, o := range objs {
		grouped = grouped || o.IsGrouped()
	}
	if !grouped {
		return ctx, objs, nil
	}
	found := make([][]slo.Objective, len(objs))
	errs := make([]error, len(objs))
	memo := statusMemo{at: at, byName: map[string]slo.Status{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, o := range objs {
		if !o.IsGrouped() {
			continue
		}
		wg.Go(func() {
			if _, batched := m.src.(GroupedSource); batched {
				var sts []slo.Status
				found[i], sts, errs[i] = m.groupedStatuses(ctx, o, at)
				mu.Lock()
				for _, st := range sts {
					memo.byName[st.Name] = st
				}
				mu.Unlock()
				return
			}
			values, err := m.groups(ctx, o, at)
			for _, g := range values {
				found[i] = append(found[i], o.ForGroup(g))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	var out []slo.Objective
	var failed []Unexpanded
	for i, o := range objs {
		switch {
		case !o.IsGrouped():
			out = append(out, o)
		case errs[i] != nil:
			failed = append(failed, Unexpanded{Objective: o, Err: errs[i]})
		default:
			out = append(out, found[i]...)
		}
	}
	if len(memo.byName) > 0 {
		ctx = context.WithValue(ctx, statusMemoKey{}, memo)
	}
	return ctx, out, failed
}

type statusMemoKey struct{}

// statusMemo holds the statuses Expand measured, for Status at the same
// instant.
type statusMemo struct {
	at     time.Time
	byName map[string]slo.Status
}

// memoStatus is the status Expand measured for o at at, if any.
func memoStatus(ctx context.Context, o slo.Objective, at time.Time) (slo.Status, bool) {
	memo, ok := ctx.Value(statusMemoKey{}).(statusMemo)
	if !ok || !memo.at.Equal(at) || o.Group == nil {
		return slo.Status{}, false
	}
	st, ok := memo.byName[o.Name]
	return st, ok
}

// groupedStatuses measures every range a grouped objective's status
// needs, each once for all values, and evaluates each value.
func (m *Measurer) groupedStatuses(ctx context.Context, o slo.Objective, at time.Time) ([]slo.Objective, []slo.Status, error) {
	gs := m.src.(GroupedSource)
	plan := o.Plan(at)
	results := make(map[time.Duration][]slo.GroupCounts, len(plan))
	errs := make(map[time.Duration]error, len(plan))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for key, r := range plan {
		wg.Go(func() {
			var res []slo.GroupCounts
			err := m.limited(ctx, o, r, func(ctx context.Context) (err error) {
				res, err = gs.GroupedCounts(ctx, o.SLI, r, nil, o.GroupBy)
				return err
			})
			mu.Lock()
			results[key], errs[key] = res, err
			mu.Unlock()
		})
	}
	wg.Wait()
	values := map[string]slo.Scope{}
	for _, res := range results {
		for _, g := range res {
			values[slo.GroupKey(g.Group)] = g.Group
		}
	}
	if len(values) == 0 {
		if err := errs[slo.PeriodKey]; err != nil {
			return nil, nil, fmt.Errorf("values of %s of %s: %w", strings.Join(o.GroupBy, ", "), o.Name, err)
		}
		return nil, nil, fmt.Errorf("no series of %s over %s to find its %s values in: %w", o.Name, o.Window, strings.Join(o.GroupBy, ", "), slo.ErrNoData)
	}
	if max := o.MaxGroups; max > 0 && len(values) > max {
		return nil, nil, fmt.Errorf("%s is grouped by %s and has %d values, more than maxGroups %d (raise %s, or narrow its queries): %w",
			o.Name, strings.Join(o.GroupBy, ", "), len(values), max, slo.MaxGroupsAnnotation, ErrTooManyGroups)
	}
	groups := make([]slo.Scope, 0, len(values))
	for _, g := range values {
		groups = append(groups, g)
	}
	slo.SortGroups(groups)
	objs := make([]slo.Objective, len(groups))
	sts := make([]slo.Status, len(groups))
	for i, g := range groups {
		key := slo.GroupKey(g)
		measured := make(map[time.Duration]slo.Measured, len(plan))
		for w := range plan {
			switch {
			case errs[w] != nil:
				measured[w] = slo.Measured{Err: errs[w]}
			default:
				measured[w] = slo.Measured{Err: fmt.Errorf("no series of %s over %s: %w", key, slo.FormatDuration(plan[w].Duration()), slo.ErrNoData)}
				for _, c := range results[w] {
					if slo.GroupKey(c.Group) == key {
						measured[w] = slo.Measured{Counts: c.Counts}
					}
				}
			}
		}
		objs[i] = o.ForGroup(g)
		sts[i] = objs[i].Evaluate(at, measured)
	}
	return objs, sts, nil
}

// limited runs one measurement under the shared limit and deadline.
func (m *Measurer) limited(ctx context.Context, o slo.Objective, r slo.Range, f func(context.Context) error) error {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-m.sem }()
	ctx, cancel := context.WithTimeoutCause(ctx, m.timeout,
		fmt.Errorf("measuring %s over %s timed out after %s: %w", o.Name, slo.FormatDuration(r.Duration()), m.timeout, slo.ErrTimeout))
	defer cancel()
	err := f(ctx)
	if err != nil && ctx.Err() != nil && context.Cause(ctx) != ctx.Err() {
		err = context.Cause(ctx)
	}
	return err
}

func (m *Measurer) groups(ctx context.Context, o slo.Objective, at time.Time) ([]slo.Scope, error) {
	gs, ok := m.src.(GroupSource)
	if !ok {
		return nil, fmt.Errorf("objective %s is grouped by %s, and its source cannot list label values: %w", o.Name, strings.Join(o.GroupBy, ", "), slo.ErrUnavailable)
	}
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-m.sem }()
	ctx, cancel := context.WithTimeoutCause(ctx, m.timeout,
		fmt.Errorf("listing the %s values of %s timed out after %s: %w", strings.Join(o.GroupBy, ", "), o.Name, m.timeout, slo.ErrTimeout))
	defer cancel()
	values, err := gs.Groups(ctx, o, o.Window.Range(at))
	if err != nil {
		return nil, fmt.Errorf("values of %s of %s: %w", strings.Join(o.GroupBy, ", "), o.Name, err)
	}
	if len(values) == 0 {
		return nil, fmt.Errorf("no series of %s over %s to find its %s values in: %w", o.Name, o.Window, strings.Join(o.GroupBy, ", "), slo.ErrNoData)
	}
	if max := o.MaxGroups; max > 0 && len(values) > max {
		return nil, fmt.Errorf("%s is grouped by %s and has %d values, more than maxGroups %d (raise %s, or narrow its queries): %w",
			o.Name, strings.Join(o.GroupBy, ", "), len(values), max, slo.MaxGroupsAnnotation, ErrTooManyGroups)
	}
	slo.SortGroups(values)
	return values, nil
}

// unexpandedStatus is the status of a grouped objective whose values
// could not be found: no figure, the reason as the period's error.
func unexpandedStatus(u Unexpanded, at time.Time) slo.Status {
	st := u.Objective.Evaluate(at, nil)
	st.Errors = []slo.MeasureError{{Window: "period", Error: u.Err.Error(), NoData: errors.Is(u.Err, slo.ErrNoData)}}
	return st
}

// unexpandedCheck is the gate's answer for a grouped objective whose
// values could not be found: too many values halts (the file must
// change), no series follows onNoData, a failing source onSourceError.
func unexpandedCheck(u Unexpanded, p slo.GatePolicy) Check {
	c := Check{Kind: KindBudget, SLO: u.Objective.Name, Target: u.Objective.Target}
	if errors.Is(u.Err, ErrTooManyGroups) {
		c.Verdict, c.Reason = Fail, u.Err.Error()
		return c
	}
	return unmeasured(c, p, u.Err.Error(), u.Err)
}
