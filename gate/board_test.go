package gate

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slogate/slogate/slo"
)

func TestBoardRunsExportsAndForgetsRemovedSLOs(t *testing.T) {
	src := &traffic{versions: map[string]vt{"v1": {10, 0.02}}}
	m, err := NewMeasurer(src, MeasurerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := set(nil)
	reg := prometheus.NewRegistry()
	var seen []slo.Status
	b, err := NewBoard(BoardConfig{
		Measurer: m, SLOs: func() *slo.Set { return s }, Clock: func() time.Time { return now }, Registry: reg,
		OnRun: func(_ context.Context, st []slo.Status) { seen = st },
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Run(context.Background())
	if len(seen) != 1 || b.LastRun() != now {
		t.Fatalf("run saw %d statuses at %v", len(seen), b.LastRun())
	}
	// 2 % errors against 99.9 %: burn 20, remaining 1 − 20 = −19; both page
	// tiers fire.
	want := `
# HELP slogate_slo_alert_firing 1 when a burn-rate tier of the severity fires.
# TYPE slogate_slo_alert_firing gauge
slogate_slo_alert_firing{service="checkout",severity="page",slo="checkout-availability"} 1
slogate_slo_alert_firing{service="checkout",severity="ticket",slo="checkout-availability"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "slogate_slo_alert_firing"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(b.metrics.remaining.WithLabelValues("checkout", "checkout-availability")); got > -18.999999 || got < -19.000001 {
		t.Errorf("budget remaining = %v, want -19", got)
	}
	if n := testutil.CollectAndCount(reg, "slogate_slo_burn_rate"); n != 7 {
		t.Errorf("%d burn-rate series, want 7", n)
	}
	st, ok := b.Status(context.Background(), "checkout-availability", time.Time{})
	if !ok || *st.ErrorBudget.Remaining > -18.99 {
		t.Errorf("status = %+v", st)
	}
	s = &slo.Set{}
	b.Run(context.Background())
	if n := testutil.CollectAndCount(reg, "slogate_slo_burn_rate", "slogate_slo_sli"); n != 0 {
		t.Errorf("%d series left for a removed SLO", n)
	}
}

// heldSource signals when a measurement has begun and holds every
// measurement until released.
type heldSource struct {
	traffic
	entered chan struct{}
	once    sync.Once
	release chan struct{}
}

func (h *heldSource) Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error) {
	h.once.Do(func() { close(h.entered) })
	select {
	case <-h.release:
	case <-ctx.Done():
		return slo.Counts{}, ctx.Err()
	}
	return h.traffic.Counts(ctx, sli, r, scope)
}

func TestBoardSkipsOverlappingRunsAndFollowers(t *testing.T) {
	src := &heldSource{traffic: traffic{versions: map[string]vt{"v1": {10, 0}}}, entered: make(chan struct{}), release: make(chan struct{})}
	m, err := NewMeasurer(src, MeasurerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := set(nil)
	reg := prometheus.NewRegistry()
	var leader atomic.Bool
	leader.Store(true)
	b, err := NewBoard(BoardConfig{Measurer: m, SLOs: func() *slo.Set { return s }, Registry: reg,
		Leader: func(context.Context) bool { return leader.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { b.Run(context.Background()); close(done) }()
	<-src.entered // the first run is measuring: a second one overlaps it
	b.Run(context.Background())
	close(src.release)
	<-done
	leader.Store(false)
	b.Run(context.Background())
	for outcome, want := range map[string]float64{"ok": 1, "skipped_overlap": 1, "skipped_follower": 1} {
		if got := testutil.ToFloat64(b.metrics.runs.WithLabelValues(outcome)); got != want {
			t.Errorf("runs{%s} = %v, want %v", outcome, got, want)
		}
	}
}
