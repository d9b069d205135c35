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

// Expand replaces every grouped objective with one objective per value of
// its labels seen over its window (slo.Objective.ForGroup), in order; an
// objective whose values cannot be found (a failing source, no series,
// more values than maxGroups) is returned apart with why.
func (m *Measurer) Expand(ctx context.Context, objs []slo.Objective, at time.Time) ([]slo.Objective, []Unexpanded) {
	grouped := false
	for _, o := range objs {
		grouped = grouped || o.IsGrouped()
	}
	if !grouped {
		return objs, nil
	}
	found := make([][]slo.Scope, len(objs))
	errs := make([]error, len(objs))
	var wg sync.WaitGroup
	for i, o := range objs {
		if !o.IsGrouped() {
			continue
		}
		wg.Go(func() { found[i], errs[i] = m.groups(ctx, o, at) })
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
			for _, g := range found[i] {
				out = append(out, o.ForGroup(g))
			}
		}
	}
	return out, failed
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
