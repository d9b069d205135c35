package collectors

import (
	"context"

	"github.com/slogate/slogate/slo"
)

// BatchSource measures several ranges of one SLI at once (the prometheus
// collector: one query per role for every window). The result has one
// entry per range, in order.
type BatchSource interface {
	CountsBatch(ctx context.Context, sli slo.SLI, rs []slo.Range, scope slo.Scope) []slo.Measured
}

// CountsBatch measures sli over every range of rs with the source it
// names: in one batch when the source is a BatchSource, else range by
// range, one after the other.
func (m *Mux) CountsBatch(ctx context.Context, sli slo.SLI, rs []slo.Range, scope slo.Scope) []slo.Measured {
	out := make([]slo.Measured, len(rs))
	s, err := m.Source(sli)
	if err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	if bs, ok := s.(BatchSource); ok {
		return bs.CountsBatch(ctx, sli, rs, scope)
	}
	for i, r := range rs {
		out[i].Counts, out[i].Err = s.Counts(ctx, sli, r, scope)
	}
	return out
}

// Batches reports whether sli's source measures ranges in one batch.
func (m *Mux) Batches(sli slo.SLI) bool {
	s, err := m.Source(sli)
	if err != nil {
		return false
	}
	_, ok := s.(BatchSource)
	return ok
}
