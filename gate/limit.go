package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the global limit on uncached evaluations.
const (
	// DefaultMaxConcurrentEvaluations is how many uncached gate
	// evaluations (those that query the sources) may run at once: the
	// Measurer's default concurrency (16). Each evaluation takes at least
	// one of the Measurer's slots for every query it sends, so more
	// evaluations than that in flight would only wait in the Measurer's
	// queue, burning their answer deadline (8s) to end as timeouts while
	// holding memory; 16 lets a burst of distinct rollouts through on a
	// small machine and sheds the rest at once.
	DefaultMaxConcurrentEvaluations = 16
	// DefaultEvaluationWait is how long an uncached evaluation waits for
	// a slot before it is refused with ErrBusy: short against the answer
	// deadline, long enough to ride out a slot that frees a moment later.
	DefaultEvaluationWait = 250 * time.Millisecond
	// busyRetryAfter is the Retry-After a refused ask is given.
	busyRetryAfter = 2 * time.Second
)

// ErrBusy: every slot for uncached evaluations is taken (a
// *BusyError). Not a decision: the API answers 503 with Retry-After.
var ErrBusy = errors.New("too many gate evaluations in flight")

// BusyError is the error of an ask refused by the global limit on
// uncached evaluations.
type BusyError struct {
	// Limit is gate.maxConcurrentEvaluations; Waited how long the ask
	// waited for a slot.
	Limit  int
	Waited time.Duration
	// RetryAfter is when the client may ask again.
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s: all %d slots for uncached evaluations stayed taken for %s (gate.maxConcurrentEvaluations)", ErrBusy, e.Limit, e.Waited)
}

func (e *BusyError) Unwrap() error { return ErrBusy }

// evalLimit is the global semaphore of uncached evaluations. A nil
// *evalLimit lets everything through.
type evalLimit struct {
	slots    chan struct{}
	wait     time.Duration
	rejected prometheus.Counter
	inFlight prometheus.Gauge
}

func newEvalLimit(max int, wait time.Duration) *evalLimit {
	if max < 0 {
		return nil
	}
	if max == 0 {
		max = DefaultMaxConcurrentEvaluations
	}
	if wait <= 0 {
		wait = DefaultEvaluationWait
	}
	return &evalLimit{
		slots: make(chan struct{}, max), wait: wait,
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slogate_gate_evaluations_rejected_total",
			Help: "Uncached gate asks refused (503 with Retry-After) because gate.maxConcurrentEvaluations evaluations were in flight.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slogate_gate_evaluations_in_flight",
			Help: "Uncached gate evaluations in flight (at most gate.maxConcurrentEvaluations).",
		}),
	}
}

func (l *evalLimit) collectors() []prometheus.Collector {
	if l == nil {
		return nil
	}
	return []prometheus.Collector{l.rejected, l.inFlight}
}

// acquire takes a slot, waiting at most l.wait (or until ctx ends), and
// returns its release.
func (l *evalLimit) acquire(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	select {
	case l.slots <- struct{}{}:
	default:
		t := time.NewTimer(l.wait)
		defer t.Stop()
		select {
		case l.slots <- struct{}{}:
		case <-t.C:
			l.rejected.Inc()
			return nil, &BusyError{Limit: cap(l.slots), Waited: l.wait, RetryAfter: busyRetryAfter}
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	l.inFlight.Inc()
	return func() {
		l.inFlight.Dec()
		<-l.slots
	}, nil
}
