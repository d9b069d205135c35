package gate

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slogate/slogate/slo"
)

// memFigures is SharedFigures in memory, with the store's rule: figures
// measured no later than those kept are not saved. reads counts the
// LatestFigures calls; down makes every call fail.
type memFigures struct {
	mu    sync.Mutex
	f     *LeaderFigures
	reads int
	down  bool
}

func (m *memFigures) SaveFigures(_ context.Context, f LeaderFigures) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("store down")
	}
	if m.f == nil || f.MeasuredAt.After(m.f.MeasuredAt) {
		m.f = &f
	}
	return nil
}

func (m *memFigures) LatestFigures(_ context.Context, newerThan time.Time) (LeaderFigures, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.down {
		return LeaderFigures{}, false, errors.New("store down")
	}
	if m.f == nil || !m.f.MeasuredAt.After(newerThan) {
		return LeaderFigures{}, false, nil
	}
	return *m.f, true, nil
}

func (m *memFigures) readCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

// clock is a settable clock shared by the replicas of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type replica struct {
	b      *Board
	reg    *prometheus.Registry
	leader atomic.Bool
}

func newReplica(t *testing.T, id string, src Source, c *clock, shared SharedFigures, leads bool) *replica {
	t.Helper()
	m, err := NewMeasurer(src, MeasurerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := set(nil)
	r := &replica{reg: prometheus.NewRegistry()}
	r.leader.Store(leads)
	r.b, err = NewBoard(BoardConfig{
		Measurer: m, SLOs: func() *slo.Set { return s }, Clock: c.now, Registry: r.reg, AgeDivisor: -1,
		Leader: func(context.Context) bool { return r.leader.Load() },
		Shared: shared, Replica: id, Interval: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFollowersServeTheLeadersFigures(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: now}
	shared := &memFigures{}
	// The follower reads a Source that fails: whatever it serves is the
	// leader's.
	leader := newReplica(t, "replica-a", &traffic{versions: map[string]vt{"v1": {10, 0.02}}}, c, shared, true)
	follower := newReplica(t, "replica-b", &traffic{err: errors.New("the follower must not measure")}, c, shared, false)

	t.Run("before the leader saved any figures a follower says so per SLO", func(t *testing.T) {
		follower.b.Run(ctx)
		st, _ := follower.b.Status(ctx, "checkout-availability", time.Time{})
		if !st.NotReady || st.Origin != nil || len(st.Errors) == 0 || !strings.Contains(st.Errors[0].Error, "leader has saved no figures") {
			t.Fatalf("got %+v, want not ready, saying the leader saved nothing yet", st)
		}
	})

	leader.b.Run(ctx)
	own, _ := leader.b.Status(ctx, "checkout-availability", time.Time{})
	c.add(20 * time.Second)
	follower.b.Run(ctx)

	t.Run("a follower serves the leader's figures, with their origin and age", func(t *testing.T) {
		st, ok := follower.b.Status(ctx, "checkout-availability", time.Time{})
		if !ok || st.NotReady || st.ErrorBudget.Remaining == nil || *st.ErrorBudget.Remaining != *own.ErrorBudget.Remaining {
			t.Fatalf("got %+v, want the leader's figures (remaining %v)", st, *own.ErrorBudget.Remaining)
		}
		o := st.Origin
		if o == nil || o.From != slo.OriginLeader || o.Replica != "replica-a" || !o.MeasuredAt.Equal(now) || o.AgeSeconds != 20 || o.Stale || o.StaleAfterSeconds != 180 {
			t.Fatalf("origin %+v, want the leader replica-a's, measured at %v, 20s old, fresh", o, now)
		}
		all := follower.b.Statuses(ctx, time.Time{})
		if len(all) != 1 || all[0].Origin == nil || all[0].Origin.From != slo.OriginLeader {
			t.Fatalf("Statuses = %+v", all)
		}
	})
	t.Run("the leader's own figures say they were measured here", func(t *testing.T) {
		st, _ := leader.b.Status(ctx, "checkout-availability", time.Time{})
		if o := st.Origin; o == nil || o.From != slo.OriginMeasured || o.Replica != "replica-a" || o.AgeSeconds != 20 {
			t.Fatalf("origin %+v", o)
		}
	})
	t.Run("a follower exports none of them as its own gauges", func(t *testing.T) {
		if n := testutil.CollectAndCount(follower.reg, "slogate_slo_sli", "slogate_slo_error_budget_remaining", "slogate_slo_burn_rate", "slogate_slo_alert_firing"); n != 0 {
			t.Errorf("the follower exports %d slogate_slo_* series", n)
		}
		if n := testutil.CollectAndCount(leader.reg, "slogate_slo_sli"); n != 1 {
			t.Errorf("the leader exports %d slogate_slo_sli series, want 1", n)
		}
		if l, f := testutil.ToFloat64(leader.b.metrics.leading), testutil.ToFloat64(follower.b.metrics.leading); l != 1 || f != 0 {
			t.Errorf("slogate_evaluation_leader: leader %v, follower %v", l, f)
		}
	})
	t.Run("a request reads newer figures from the store at most every 5s", func(t *testing.T) {
		c.add(40 * time.Second)
		leader.b.Run(ctx) // measured at now+1m
		reads := shared.readCount()
		if st, _ := follower.b.Status(ctx, "checkout-availability", time.Time{}); !st.Origin.MeasuredAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("45s after its last read the follower serves figures of %v, want the newer run's", st.Origin.MeasuredAt)
		}
		for range 10 {
			follower.b.Statuses(ctx, time.Time{})
		}
		if got := shared.readCount() - reads; got != 1 {
			t.Errorf("11 requests within 5s read the store %d times, want 1", got)
		}
	})
	t.Run("figures older than three intervals are stale, never served as fresh", func(t *testing.T) {
		shared.mu.Lock()
		shared.down = true // no newer figures can be read
		shared.mu.Unlock()
		defer func() { shared.mu.Lock(); shared.down = false; shared.mu.Unlock() }()
		c.add(3*time.Minute + time.Second)
		st, _ := follower.b.Status(ctx, "checkout-availability", time.Time{})
		if o := st.Origin; o == nil || !o.Stale || o.AgeSeconds != 181 || st.ErrorBudget.Remaining == nil {
			t.Fatalf("origin %+v, want the figures kept, 181s old and stale", o)
		}
		if o := leader.b.Statuses(ctx, time.Time{})[0].Origin; !o.Stale {
			t.Errorf("the leader's own figures 181s after its last run: %+v, want stale", o)
		}
	})
	t.Run("a leader that starts following drops its gauges and serves the new leader's figures", func(t *testing.T) {
		follower.leader.Store(true)
		leader.leader.Store(false)
		follower.b.Run(ctx) // fails to measure: its source is down, but it leads
		leader.b.Run(ctx)
		if n := testutil.CollectAndCount(leader.reg, "slogate_slo_sli", "slogate_slo_burn_rate"); n != 0 {
			t.Errorf("the deposed leader still exports %d slogate_slo_* series", n)
		}
		st, _ := leader.b.Status(ctx, "checkout-availability", time.Time{})
		if o := st.Origin; o == nil || o.From != slo.OriginLeader || o.Replica != "replica-b" || !o.MeasuredAt.Equal(c.now()) {
			t.Fatalf("origin %+v, want replica-b's run at %v", o, c.now())
		}
	})
}

func TestAFollowerWithoutSharedFiguresServesNone(t *testing.T) {
	c := &clock{t: now}
	r := newReplica(t, "replica-a", &traffic{versions: map[string]vt{"v1": {10, 0}}}, c, nil, false)
	r.b.Run(context.Background())
	st, _ := r.b.Status(context.Background(), "checkout-availability", time.Time{})
	if !st.NotReady || st.Origin != nil || !strings.Contains(st.Errors[0].Error, "this replica follows") {
		t.Fatalf("got %+v, want not ready with ErrFollower", st)
	}
}
