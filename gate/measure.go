// Package gate decides whether a release may go on: promote, halt or wait,
// from the SLOs of its service and the telemetry behind them. It also
// measures objectives (budget and burn rates) for the API, the CLI and the
// scheduled evaluation.
package gate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/slogate/slogate/slo"
)

var tracer = otel.Tracer("github.com/slogate/slogate/gate")

// Source measures an SLI over a range, narrowed to a scope.
// collectors.Mux satisfies it.
type Source interface {
	Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error)
}

// Measurer measures objectives: every range an objective's status needs,
// concurrently, under one limit on queries in flight shared by every
// caller, each with a deadline.
type Measurer struct {
	src     Source
	batch   BatchSource // src, when it measures ranges in batches
	sem     chan struct{}
	timeout time.Duration
}

// MeasurerConfig configures a Measurer.
type MeasurerConfig struct {
	// Concurrency bounds the measurements in flight (default 16).
	Concurrency int
	// Timeout bounds one measurement (default 30s), or one batch.
	Timeout time.Duration
	// NoBatch measures every range with its own queries even when the
	// source batches them (the behaviour before batching; benchmarks
	// compare the two).
	NoBatch bool
}

// NewMeasurer returns a Measurer reading from src.
func NewMeasurer(src Source, cfg MeasurerConfig) (*Measurer, error) {
	if src == nil {
		return nil, fmt.Errorf("gate: source is required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	m := &Measurer{src: src, sem: make(chan struct{}, cfg.Concurrency), timeout: cfg.Timeout}
	if bs, ok := src.(BatchSource); ok && !cfg.NoBatch {
		m.batch = bs
	}
	return m, nil
}

// Counts measures one range under the shared limit and deadline.
func (m *Measurer) Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error) {
	return measured(ctx, m, "measure "+string(sli.SourceType()), sli.Name, sli, r, scope,
		func(ctx context.Context) (slo.Counts, error) { return m.src.Counts(ctx, sli, r, scope) },
		func(span trace.Span, c slo.Counts) {
			span.SetAttributes(attribute.Float64("slogate.good", c.Good), attribute.Float64("slogate.total", c.Total))
		})
}

// measured runs one measurement of sli over r (run) under the limit on
// measurements in flight, in a client span named spanName, with the
// deadline; a deadline passed is its own cause (naming what was measured),
// and done records the figures on the span.
func measured[T any](ctx context.Context, m *Measurer, spanName, what string, sli slo.SLI, r slo.Range, scope slo.Scope,
	run func(context.Context) (T, error), done func(trace.Span, T)) (T, error) {
	var zero T
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	}
	defer func() { <-m.sem }()
	ctx, span := tracer.Start(ctx, spanName, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("slogate.sli", sli.Name),
			attribute.String("slogate.window", slo.FormatDuration(r.Duration())),
			attribute.String("slogate.range.end", r.End.UTC().Format(time.RFC3339)),
			attribute.StringSlice("slogate.scope", scope.Keys()),
		))
	defer span.End()
	ctx, cancel := context.WithTimeoutCause(ctx, m.timeout,
		fmt.Errorf("measuring %s over %s timed out after %s: %w", what, slo.FormatDuration(r.Duration()), m.timeout, slo.ErrTimeout))
	defer cancel()
	v, err := run(ctx)
	if err != nil && ctx.Err() != nil && context.Cause(ctx) != ctx.Err() {
		err = context.Cause(ctx)
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return v, err
	}
	done(span, v)
	return v, nil
}

// Status measures an objective at instant at: the SLO window and every
// burn-rate window, concurrently.
func (m *Measurer) Status(ctx context.Context, o slo.Objective, at time.Time) slo.Status {
	if st, ok := memoStatus(ctx, o, at); ok { // measured with its group (group.go)
		return st
	}
	return o.Evaluate(at, m.measurePlan(ctx, o.SLI, o.Plan(at)))
}

// measurePlan measures every range of plan: in one batch (one slot of
// the limit) when the source batches the SLI's ranges, else each range
// concurrently.
func (m *Measurer) measurePlan(ctx context.Context, sli slo.SLI, plan map[time.Duration]slo.Range) map[time.Duration]slo.Measured {
	results := make(map[time.Duration]slo.Measured, len(plan))
	if len(plan) == 0 {
		return results
	}
	if m.batch != nil && m.batch.Batches(sli) {
		keys := make([]time.Duration, 0, len(plan))
		rs := make([]slo.Range, 0, len(plan))
		for key, r := range plan {
			keys = append(keys, key)
			rs = append(rs, r)
		}
		for i, ms := range m.countsBatch(ctx, sli, rs) {
			results[keys[i]] = ms
		}
		return results
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for key, r := range plan {
		wg.Go(func() {
			c, err := m.Counts(ctx, sli, r, nil)
			mu.Lock()
			results[key] = slo.Measured{Counts: c, Err: err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return results
}

// Statuses measures every objective at instant at, concurrently, in the
// order given; a grouped objective is one status per value (group.go),
// or one without figures saying why its values were not found.
func (m *Measurer) Statuses(ctx context.Context, objs []slo.Objective, at time.Time) []slo.Status {
	ctx, objs, failed := m.Expand(ctx, objs, at)
	out := make([]slo.Status, len(objs))
	var wg sync.WaitGroup
	for i, o := range objs {
		wg.Go(func() { out[i] = m.Status(ctx, o, at) })
	}
	wg.Wait()
	for _, u := range failed {
		out = append(out, unexpandedStatus(u, at))
	}
	return out
}
