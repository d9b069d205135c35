package gate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slogate/slogate/slo"
)

// slotSource answers every SLI but "free" only once released, and says
// which SLI each query is for as it arrives: an evaluation that has sent
// a query holds its slot until release.
type slotSource struct {
	entered chan string
	release chan struct{}
}

func (h *slotSource) Counts(ctx context.Context, sli slo.SLI, _ slo.Range, _ slo.Scope) (slo.Counts, error) {
	if sli.Name != "free" {
		h.entered <- sli.Name
		select {
		case <-h.release:
		case <-ctx.Done():
			return slo.Counts{}, context.Cause(ctx)
		}
	}
	return slo.Counts{Good: 99990, Total: 100000}, nil
}

// servicesSet has one SLO per service, whose SLI is named after it.
func servicesSet(services ...string) *slo.Set {
	q := func(s string) *slo.Query { return &slo.Query{Source: slo.SourcePrometheus, PromQL: s} }
	s := &slo.Set{}
	for _, svc := range services {
		s.Objectives = append(s.Objectives, slo.Objective{
			Name: svc + "-availability", Service: svc, Target: 0.999, Window: slo.Rolling(30 * slo.Day),
			SLI: slo.SLI{Name: svc, Good: q(`sum(ok_total)`), Total: q(`sum(all_total)`)},
		})
	}
	return s
}

func TestUncachedEvaluationsHaveAGlobalLimit(t *testing.T) {
	const limit = 3
	src := &slotSource{entered: make(chan string, 1024), release: make(chan struct{})}
	m, err := NewMeasurer(src, MeasurerConfig{Concurrency: 1024}) // not the bottleneck here
	if err != nil {
		t.Fatal(err)
	}
	services := []string{"a", "b", "c", "d"}
	s := servicesSet(append(services, "free")...)
	reg := prometheus.NewRegistry()
	e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, CacheTTL: time.Hour, Registry: reg,
		MaxConcurrentEvaluations: limit, EvaluationWait: 20 * time.Millisecond, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(svc string) (Answer, error) {
		return e.Evaluate(context.Background(), Request{Service: svc, Environment: "production"})
	}
	if _, err := ask("free"); err != nil { // cached from now on
		t.Fatal(err)
	}

	// limit distinct asks in flight, each held in the source.
	var wg sync.WaitGroup
	errs := make(chan error, 2*limit)
	for _, svc := range services[:limit] {
		wg.Go(func() {
			_, err := ask(svc)
			errs <- err
		})
	}
	inSource := map[string]bool{}
	for len(inSource) < limit {
		inSource[<-src.entered] = true
	}
	// An ask identical to one in flight joins it and takes no slot.
	wg.Go(func() {
		_, err := ask(services[0])
		errs <- err
	})

	t.Run("one more distinct ask is refused while the limit is in flight", func(t *testing.T) {
		_, err := ask(services[limit])
		var busy *BusyError
		if !errors.As(err, &busy) || !errors.Is(err, ErrBusy) || busy.Limit != limit || busy.RetryAfter <= 0 {
			t.Fatalf("got %v, want a BusyError of limit %d with a Retry-After", err, limit)
		}
		if got := testutil.ToFloat64(e.limit.rejected); got != 1 {
			t.Errorf("slogate_gate_evaluations_rejected_total = %v, want 1", got)
		}
		if got := testutil.ToFloat64(e.limit.inFlight); got != limit {
			t.Errorf("slogate_gate_evaluations_in_flight = %v, want %d", got, limit)
		}
	})
	t.Run("a cached answer takes no slot", func(t *testing.T) {
		a, err := ask("free")
		if err != nil || !a.Cached {
			t.Fatalf("got %+v %v, want the cached answer", a.Cached, err)
		}
	})

	close(src.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("an ask within the limit (or joining one) failed: %v", err)
		}
	}
	t.Run("once slots free, the refused ask is answered", func(t *testing.T) {
		if _, err := ask(services[limit]); err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(e.limit.inFlight); got != 0 {
			t.Errorf("slogate_gate_evaluations_in_flight = %v after every answer, want 0", got)
		}
	})
}

func TestTheEvaluationLimitCanBeTurnedOff(t *testing.T) {
	src := &slotSource{entered: make(chan string, 1024), release: make(chan struct{})}
	m, _ := NewMeasurer(src, MeasurerConfig{Concurrency: 1024}) // not the bottleneck here
	var services []string
	for i := range DefaultMaxConcurrentEvaluations + 1 {
		services = append(services, fmt.Sprintf("svc%d", i))
	}
	s := servicesSet(services...)
	e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, MaxConcurrentEvaluations: -1,
		EvaluationWait: time.Millisecond, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(services))
	for _, svc := range services {
		wg.Go(func() {
			_, err := e.Evaluate(context.Background(), Request{Service: svc, Environment: "production"})
			errs <- err
		})
	}
	inSource := map[string]bool{}
	for len(inSource) < len(services) {
		inSource[<-src.entered] = true
	}
	close(src.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("with the limit off, an ask failed: %v", err)
		}
	}
}
