package collectors

import (
	"context"
	"fmt"

	"github.com/slogate/slogate/slo"
)

// GroupSource lists the values of a grouped objective's labels.
type GroupSource interface {
	Groups(ctx context.Context, o slo.Objective, r slo.Range) ([]slo.Scope, error)
}

// Groups lists a grouped objective's values with the source its SLI
// names, when that source can.
func (m *Mux) Groups(ctx context.Context, o slo.Objective, r slo.Range) ([]slo.Scope, error) {
	s, err := m.Source(o.SLI)
	if err != nil {
		return nil, err
	}
	gs, ok := s.(GroupSource)
	if !ok {
		return nil, fmt.Errorf("the %s source of %s cannot list label values for grouping: %w", o.SLI.SourceType(), o.Name, slo.ErrBadQuery)
	}
	return gs.Groups(ctx, o, r)
}

// GroupedSource measures a grouped SLI for all its values at once.
type GroupedSource interface {
	GroupedCounts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope, by []string) ([]slo.GroupCounts, error)
}

// GroupedCounts measures a grouped SLI with the source it names, when that
// source can.
func (m *Mux) GroupedCounts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope, by []string) ([]slo.GroupCounts, error) {
	s, err := m.Source(sli)
	if err != nil {
		return nil, err
	}
	gs, ok := s.(GroupedSource)
	if !ok {
		return nil, fmt.Errorf("the %s source of %s cannot measure grouped SLIs: %w", sli.SourceType(), sli.Name, slo.ErrBadQuery)
	}
	return gs.GroupedCounts(ctx, sli, r, scope, by)
}
