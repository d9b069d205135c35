package gate

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/slogate/slogate/slo"
)

// BatchSource is a Source that can measure several ranges of an SLI at
// once (collectors.Mux, for the prometheus collector: one query per role
// for every window). Batches says whether it does for this SLI.
type BatchSource interface {
	Source
	CountsBatch(ctx context.Context, sli slo.SLI, rs []slo.Range, scope slo.Scope) []slo.Measured
	Batches(sli slo.SLI) bool
}

// countsBatch measures the ranges rs of sli in one batch, under one slot
// of the shared limit and one deadline.
func (m *Measurer) countsBatch(ctx context.Context, sli slo.SLI, rs []slo.Range) []slo.Measured {
	fail := func(err error) []slo.Measured {
		out := make([]slo.Measured, len(rs))
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return fail(context.Cause(ctx))
	}
	defer func() { <-m.sem }()
	windows := make([]string, len(rs))
	for i, r := range rs {
		windows[i] = slo.FormatDuration(r.Duration())
	}
	ctx, span := tracer.Start(ctx, "measure batch "+string(sli.SourceType()), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("slogate.sli", sli.Name),
			attribute.StringSlice("slogate.windows", windows),
		))
	defer span.End()
	ctx, cancel := context.WithTimeoutCause(ctx, m.timeout,
		fmt.Errorf("measuring %s over %d windows timed out after %s: %w", sli.Name, len(rs), m.timeout, slo.ErrTimeout))
	defer cancel()
	out := m.batch.CountsBatch(ctx, sli, rs, nil)
	timedOut := ctx.Err() != nil && context.Cause(ctx) != ctx.Err()
	for i := range out {
		if out[i].Err != nil && timedOut {
			out[i].Err = context.Cause(ctx)
		}
		if out[i].Err != nil {
			span.RecordError(out[i].Err)
			span.SetStatus(codes.Error, out[i].Err.Error())
		}
	}
	return out
}
