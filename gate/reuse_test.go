package gate

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

// drifting is a fake source whose error ratio depends on the instant a
// range ends (so a figure kept from an earlier run differs from a fresh
// one), and that counts the ranges it measured by length.
type drifting struct {
	mu    sync.Mutex
	calls map[time.Duration]int
}

func (d *drifting) Counts(_ context.Context, _ slo.SLI, r slo.Range, _ slo.Scope) (slo.Counts, error) {
	d.mu.Lock()
	if d.calls == nil {
		d.calls = map[time.Duration]int{}
	}
	d.calls[r.Duration()]++
	d.mu.Unlock()
	total := 10 * r.Duration().Seconds()
	minute := float64(r.End.Unix()/60%97) + 1
	return slo.Counts{Good: total * (1 - minute/100_000), Total: total}, nil
}

func (d *drifting) reset() map[time.Duration]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	return c
}

func sameFigure(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) <= 1e-9*math.Max(1, math.Abs(*b))
}

func TestBoardReusesLongWindowsForAShareOfTheirLength(t *testing.T) {
	src := &drifting{}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	s := set(nil)
	clock := now
	b, err := NewBoard(BoardConfig{Measurer: m, SLOs: func() *slo.Set { return s }, Clock: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runs := 121 // two hours on a 1-minute schedule
	measured := map[time.Duration]int{}
	for i := range runs {
		clock = now.Add(time.Duration(i) * time.Minute)
		b.Run(ctx)
		for w, n := range src.reset() {
			measured[w] += n
		}
		st, _ := b.Status(ctx, "checkout-availability", time.Time{})
		o := s.Objectives[0]
		for key, r := range o.Plan(clock) {
			name := windowName(key)
			age, kept := st.AgeSeconds[name]
			// A figure is what a fresh measurement says at the instant it
			// was measured: now if fresh, age seconds ago if kept.
			at := clock.Add(-time.Duration(age * float64(time.Second)))
			want := m.Status(ctx, o, at)
			src.reset()
			if kept && age >= (r.Duration()/DefaultAgeDivisor).Seconds() {
				t.Errorf("run %d: %s kept %.0fs, longer than a %d-th of it", i, name, age, DefaultAgeDivisor)
			}
			var got, exp *float64
			if key == slo.PeriodKey {
				got, exp = st.SLI.Ratio, want.SLI.Ratio
			} else {
				got, exp = st.BurnRates[name], want.BurnRates[name]
			}
			if !sameFigure(got, exp) {
				t.Errorf("run %d: %s = %v (age %.0fs), fresh measurement at its instant says %v", i, name, *got, age, *exp)
			}
		}
	}
	// Every window of 6 hours and shorter at every run; 1 day every 2
	// minutes, 3 days every 6, 30 days every hour (after a first refresh
	// staggered by the objective's name).
	for _, c := range []struct {
		w        time.Duration
		min, max int
	}{
		{5 * time.Minute, runs, runs}, {6 * time.Hour, runs, runs},
		{slo.Day, runs / 2, runs/2 + 2}, {3 * slo.Day, runs / 6, runs/6 + 2}, {30 * slo.Day, 2, 4},
	} {
		if n := measured[c.w]; n < c.min || n > c.max {
			t.Errorf("%s measured %d times in %d runs, want %d to %d", slo.FormatDuration(c.w), n, runs, c.min, c.max)
		}
	}
}

func TestBoardMeasuresEveryWindowAgainWhenTheSLIChanges(t *testing.T) {
	src := &drifting{}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	s := set(nil)
	clock := now
	b, _ := NewBoard(BoardConfig{Measurer: m, SLOs: func() *slo.Set { return s }, Clock: func() time.Time { return clock }})
	b.Run(context.Background())
	src.reset()
	s = set(nil)
	s.Objectives[0].SLI.Good = &slo.Query{Source: slo.SourcePrometheus, PromQL: `sum(ok_total{code!="500"})`}
	clock = clock.Add(time.Minute)
	b.Run(context.Background())
	if n := src.reset()[30*slo.Day]; n != 1 {
		t.Errorf("30d measured %d times after the SLI changed, want 1", n)
	}
	if st, _ := b.Status(context.Background(), "checkout-availability", time.Time{}); len(st.AgeSeconds) != 0 {
		t.Errorf("figures kept across an SLI change: %v", st.AgeSeconds)
	}
}

func TestBoardMeasuresEveryWindowWithANegativeDivisor(t *testing.T) {
	src := &drifting{}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	s := set(nil)
	clock := now
	b, _ := NewBoard(BoardConfig{Measurer: m, SLOs: func() *slo.Set { return s }, Clock: func() time.Time { return clock }, AgeDivisor: -1})
	for range 3 {
		b.Run(context.Background())
		clock = clock.Add(time.Minute)
	}
	if n := src.reset()[30*slo.Day]; n != 3 {
		t.Errorf("30d measured %d times in 3 runs, want 3", n)
	}
}

func TestBoardAnswersNotReadyBeforeItsFirstRunWithoutMeasuring(t *testing.T) {
	src := &traffic{versions: map[string]vt{"v1": {10, 0.02}}}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	s := set(nil)
	b, _ := NewBoard(BoardConfig{Measurer: m, SLOs: func() *slo.Set { return s }, Clock: func() time.Time { return now }})
	ctx := context.Background()
	all := b.Statuses(ctx, time.Time{})
	one, ok := b.Status(ctx, "checkout-availability", time.Time{})
	if n := src.calls.Load(); n != 0 {
		t.Fatalf("asks before the first run sent %d measurements", n)
	}
	for _, st := range append(all, one) {
		if !ok || !st.NotReady || st.ErrorBudget.Remaining != nil || len(st.Errors) != 8 {
			t.Errorf("status before the first run = %+v, want NotReady, no figure, 8 errors", st)
		}
	}
	b.Run(ctx)
	if st, _ := b.Status(ctx, "checkout-availability", time.Time{}); st.NotReady || st.ErrorBudget.Remaining == nil {
		t.Errorf("status after a run = %+v", st)
	}
	// An objective added to the files since the last run is not ready
	// either; it is never measured by the ask.
	s = set(nil)
	added := s.Objectives[0]
	added.Name = "checkout-added"
	s.Objectives = append(s.Objectives, added)
	before := src.calls.Load()
	if st, _ := b.Status(ctx, "checkout-added", time.Time{}); !st.NotReady {
		t.Errorf("a new objective = %+v, want NotReady", st)
	}
	if n := src.calls.Load() - before; n != 0 {
		t.Errorf("asking for a new objective sent %d measurements", n)
	}
}
