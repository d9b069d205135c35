package gate

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slogate/slogate/slo"
)

// blockingSource answers once ctx ends: a run stays in flight until it is
// cancelled. started is closed at the first call.
type blockingSource struct {
	started chan struct{}
	once    atomic.Bool
}

func (s *blockingSource) Counts(ctx context.Context, _ slo.SLI, _ slo.Range, _ slo.Scope) (slo.Counts, error) {
	if s.once.CompareAndSwap(false, true) {
		close(s.started)
	}
	<-ctx.Done()
	return slo.Counts{}, context.Cause(ctx)
}

func TestARunWhoseLeadershipIsLostIsCancelledAndPublishesNothing(t *testing.T) {
	src := &blockingSource{started: make(chan struct{})}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	var leader atomic.Bool
	leader.Store(true)
	ran := false
	reg := prometheus.NewRegistry()
	b, _ := NewBoard(BoardConfig{Measurer: m, SLOs: func() *slo.Set { return set(nil) }, Registry: reg,
		Leader:      func(context.Context) bool { return leader.Load() },
		LeaderCheck: time.Millisecond, Timeout: time.Minute,
		OnRun: func(context.Context, []slo.Status) { ran = true },
	})
	done := make(chan struct{})
	go func() { b.Run(context.Background()); close(done) }()
	<-src.started
	leader.Store(false) // another replica took the lock
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the run went on after the leadership was lost")
	}
	if ran {
		t.Error("a run cancelled for lost leadership reached OnRun (alerts)")
	}
	if n := testutil.ToFloat64(b.metrics.runs.WithLabelValues("lost_leadership")); n != 1 {
		t.Errorf("runs{lost_leadership} = %v, want 1", n)
	}
	st, _ := b.Status(context.Background(), "checkout-availability", time.Time{})
	if !st.NotReady || len(st.Errors) == 0 || !strings.Contains(st.Errors[0].Error, "follows") {
		t.Errorf("status on a former leader = %+v, want NotReady saying it follows", st)
	}
}

func TestAFormerLeaderDropsItsFiguresAndItsGauges(t *testing.T) {
	src := &traffic{versions: map[string]vt{"v1": {10, 0.02}}}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	leader := true
	reg := prometheus.NewRegistry()
	b, _ := NewBoard(BoardConfig{Measurer: m, SLOs: func() *slo.Set { return set(nil) }, Registry: reg, Clock: func() time.Time { return now },
		Leader: func(context.Context) bool { return leader }})
	b.Run(context.Background())
	if n := testutil.CollectAndCount(reg, "slogate_slo_sli"); n != 1 {
		t.Fatalf("%d SLI series on the leader", n)
	}
	leader = false
	b.Run(context.Background())
	if n := testutil.CollectAndCount(reg, "slogate_slo_sli", "slogate_slo_burn_rate"); n != 0 {
		t.Errorf("a follower exports %d frozen series", n)
	}
	if st := b.Statuses(context.Background(), time.Time{}); len(st) != 1 || !st[0].NotReady {
		t.Errorf("a follower serves %+v, want NotReady", st)
	}
}

func TestOnLeaderRunsWhenTheReplicaBecomesLeader(t *testing.T) {
	src := &traffic{versions: map[string]vt{"v1": {10, 0}}}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	leader, calls := true, 0
	b, _ := NewBoard(BoardConfig{Measurer: m, SLOs: func() *slo.Set { return set(nil) },
		Leader: func(context.Context) bool { return leader }, OnLeader: func(context.Context) { calls++ }})
	for _, l := range []bool{true, true, false, false, true, true} {
		leader = l
		b.Run(context.Background())
	}
	if calls != 2 {
		t.Errorf("OnLeader called %d times, want 2 (first run, and leading again)", calls)
	}
}

func TestALeaderCheckThatHangsIsCutByItsDeadline(t *testing.T) {
	src := &traffic{versions: map[string]vt{"v1": {10, 0}}}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	var sawDeadline atomic.Bool
	reg := prometheus.NewRegistry()
	b, _ := NewBoard(BoardConfig{Measurer: m, SLOs: func() *slo.Set { return set(nil) }, Registry: reg, LeaderTimeout: 10 * time.Millisecond,
		Leader: func(ctx context.Context) bool {
			_, ok := ctx.Deadline()
			sawDeadline.Store(ok)
			<-ctx.Done() // a PostgreSQL that does not answer
			return !errors.Is(ctx.Err(), context.DeadlineExceeded)
		}})
	done := make(chan struct{})
	go func() { b.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a hanging leader check held the run")
	}
	if !sawDeadline.Load() {
		t.Error("the leader check had no deadline")
	}
	if n := testutil.ToFloat64(b.metrics.runs.WithLabelValues("skipped_follower")); n != 1 {
		t.Errorf("runs{skipped_follower} = %v, want 1", n)
	}
}
