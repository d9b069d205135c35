package dora

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// outage is a source of one request per second that fails every request
// from start to stop, and none outside. A fault makes every measurement
// fail.
type outage struct {
	start, stop time.Time
	fault       error
	calls       atomic.Int64
}

func (o *outage) Counts(_ context.Context, _ slo.SLI, r slo.Range, _ slo.Scope) (slo.Counts, error) {
	o.calls.Add(1)
	if o.fault != nil {
		return slo.Counts{}, o.fault
	}
	total := r.End.Sub(r.Start).Seconds()
	s, e := r.Start, r.End
	if o.start.After(s) {
		s = o.start
	}
	if o.stop.Before(e) {
		e = o.stop
	}
	bad := max(0, e.Sub(s).Seconds())
	return slo.Counts{Good: total - bad, Total: total}, nil
}

func objective(name string, labels map[string]string) slo.Objective {
	return slo.Objective{Name: name, Service: "checkout", Target: 0.99, Window: slo.Rolling(30 * Day), Labels: labels,
		SLI: slo.SLI{Name: name, Good: &slo.Query{Source: slo.SourcePrometheus, PromQL: "good_total"}, Total: &slo.Query{Source: slo.SourcePrometheus, PromQL: "all_total"}}}
}

func objectives(objs ...slo.Objective) func(string) []slo.Objective {
	return func(service string) []slo.Objective {
		var out []slo.Objective
		for _, o := range objs {
			if o.Service == service {
				out = append(out, o)
			}
		}
		return out
	}
}

type record struct {
	burns []RecordedBurn
	since time.Time
	err   error
}

func (r record) PageBurns(context.Context, time.Time, time.Time) ([]RecordedBurn, time.Time, error) {
	return r.burns, r.since, r.err
}

func TestMeasuredBurns(t *testing.T) {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	clock := func(s string) time.Time {
		c, _ := time.Parse("15:04:05", s)
		return day.Add(time.Duration(c.Hour())*time.Hour + time.Duration(c.Minute())*time.Minute + time.Duration(c.Second())*time.Second)
	}
	atEnd := day.Add(Day)
	// Every request fails from 10:00 to 10:45. With a 99% target over 30
	// days, the 1h/5m tier (14.4x) fires from 10:08:38 (8.64 min of the
	// hour failing) and the 6h/30m tier (6x) until 11:13:12 (1.8 min of the
	// last 30 failing): on the 5-minute grid, 10:10 to 11:10, calm at 11:15.
	tests := map[string]struct {
		spans      []Span
		rec        Record
		maxQueries int
		want       []Burn
		check      func(t *testing.T, st Stats, calls int64)
	}{
		"a burn in a span is found on the grid and followed to its end": {
			spans: []Span{{Start: clock("10:00:00"), End: clock("11:05:00")}},
			want:  []Burn{{Service: "checkout", SLO: "availability", Start: clock("10:10:00"), End: clock("11:15:00")}},
			check: func(t *testing.T, st Stats, calls int64) {
				// 14 instants of the span (10:00 to 11:05), two more to its
				// end (11:10 firing, 11:15 calm), four windows each.
				if st.Queries != 64 || calls != 64 || st.Step != 300 || st.Truncated || st.Measured != 1 {
					t.Errorf("stats = %+v, source calls %d; want 64 queries at a 300 s step", st, calls)
				}
			},
		},
		"a burn going at a span's start is seen to begin before it": {
			spans: []Span{{Start: clock("10:32:00"), End: clock("11:00:00")}},
			want:  []Burn{{Service: "checkout", SLO: "availability", Start: clock("10:30:00"), End: clock("11:15:00")}},
		},
		"spans without a burn find none": {
			spans: []Span{{Start: clock("06:00:00"), End: clock("07:00:00")}, {Start: clock("14:00:00"), End: clock("15:00:00")}},
			check: func(t *testing.T, st Stats, calls int64) {
				if st.Queries != 4*(13+13) || st.Measured != 0 {
					t.Errorf("stats = %+v, want 104 queries and no burn", st)
				}
			},
		},
		"the query limit coarsens the step and is never passed": {
			spans:      []Span{{Start: clock("00:00:00"), End: clock("23:00:00")}},
			maxQueries: 200,
			want:       []Burn{{Service: "checkout", SLO: "availability", Start: clock("10:40:00"), End: clock("11:20:00")}},
			check: func(t *testing.T, st Stats, calls int64) {
				if st.Queries > 200 || calls > 200 || st.Step != 2400 {
					t.Errorf("stats = %+v, source calls %d; want at most 200 at a 40-minute step", st, calls)
				}
			},
		},
		"the record is read after it begins, the source only before": {
			spans: []Span{{Start: clock("10:00:00"), End: clock("11:05:00")}, {Start: clock("15:00:00"), End: clock("16:05:00")}},
			rec: record{since: clock("14:00:00"), burns: []RecordedBurn{
				{SLO: "availability", Start: clock("15:20:00"), End: clock("15:50:00")},
				{SLO: "not-ours", Start: clock("15:20:00"), End: clock("15:50:00")},
			}},
			want: []Burn{
				{Service: "checkout", SLO: "availability", Start: clock("10:10:00"), End: clock("11:15:00")},
				{Service: "checkout", SLO: "availability", Start: clock("15:20:00"), End: clock("15:50:00")},
			},
			check: func(t *testing.T, st Stats, calls int64) {
				if st.RecordedSince == nil || !st.RecordedSince.Equal(clock("14:00:00")) || st.Recorded != 1 || st.Measured != 1 || st.Queries != 64 {
					t.Errorf("stats = %+v, want one recorded, one measured in 64 queries", st)
				}
			},
		},
		"a recorded burn in a long span is kept though a later span ends before it": {
			spans: []Span{{Start: clock("15:00:00"), End: clock("18:00:00")}, {Start: clock("15:30:00"), End: clock("16:00:00")}},
			rec:   record{since: clock("14:00:00"), burns: []RecordedBurn{{SLO: "availability", Start: clock("17:00:00"), End: clock("17:30:00")}}},
			want:  []Burn{{Service: "checkout", SLO: "availability", Start: clock("17:00:00"), End: clock("17:30:00")}},
		},
		"a record that covers the spans costs no query": {
			spans: []Span{{Start: clock("10:00:00"), End: clock("11:05:00")}},
			rec:   record{since: clock("01:00:00")},
			check: func(t *testing.T, st Stats, calls int64) {
				if st.Queries != 0 || calls != 0 {
					t.Errorf("stats = %+v, source calls %d; want none", st, calls)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src := &outage{start: clock("10:00:00"), stop: clock("10:45:00")}
			h, err := NewHistory(HistoryConfig{Objectives: objectives(objective("availability", nil)), Record: tc.rec, Counter: src, MaxQueries: tc.maxQueries})
			if err != nil {
				t.Fatal(err)
			}
			got, st, err := h.Burns(context.Background(), "checkout", tc.spans, atEnd)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("burns = %+v, want %+v", got, tc.want)
			}
			for i, w := range tc.want {
				if g := got[i]; g.SLO != w.SLO || g.Service != w.Service || !g.Start.Equal(w.Start) || !g.End.Equal(w.End) {
					t.Errorf("burn %d = %+v, want %+v", i, g, w)
				}
			}
			if tc.check != nil {
				tc.check(t, st, src.calls.Load())
			}
		})
	}
}

func TestMeasuredBurnsOfAFailingSource(t *testing.T) {
	src := &outage{fault: slo.ErrUnavailable}
	h, _ := NewHistory(HistoryConfig{Objectives: objectives(objective("availability", nil)), Counter: src})
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	got, st, err := h.Burns(context.Background(), "checkout", []Span{{Start: start, End: start.Add(time.Hour)}}, start.Add(Day))
	if err != nil || len(got) != 0 {
		t.Fatalf("Burns = %v, %v; want none and no error", got, err)
	}
	if st.Unmeasured != 13 || len(st.Errors) == 0 {
		t.Errorf("stats = %+v, want 13 unmeasured instants and their errors", st)
	}
}

func TestRecordFailureIsAnError(t *testing.T) {
	h, _ := NewHistory(HistoryConfig{Objectives: objectives(objective("availability", nil)), Record: record{err: errors.New("store down")}})
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	if _, _, err := h.Burns(context.Background(), "checkout", []Span{{Start: start, End: start.Add(time.Hour)}}, start.Add(Day)); err == nil {
		t.Fatal("no error when the record cannot be read")
	}
}

func TestImpact(t *testing.T) {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	src := &outage{start: day.Add(10 * time.Hour), stop: day.Add(10*time.Hour + 45*time.Minute)}
	h, _ := NewHistory(HistoryConfig{Objectives: objectives(
		objective("availability", nil),
		objective("staging-only", map[string]string{EnvironmentLabel: "staging"}),
	), Counter: src})
	history := Histories([]slogate.Deploy{
		{ID: "d1", Service: "checkout", Environment: "production", StartedAt: day.Add(9*time.Hour + 55*time.Minute), FinishedAt: timePtr(day.Add(10 * time.Hour)), Status: slogate.StatusSucceeded},
		{ID: "d2", Service: "checkout", Environment: "production", StartedAt: day.Add(14 * time.Hour), FinishedAt: timePtr(day.Add(14*time.Hour + 5*time.Minute)), Status: slogate.StatusSucceeded},
	}, day.Add(Day))[0]
	at := day.Add(Day)

	im, err := h.Impact(context.Background(), history, 0, 0, at)
	if err != nil {
		t.Fatal(err)
	}
	v := im.ChangeFailure
	if !v.Counts || v.Kind != KindBurn || v.SLO != "availability" || !v.Start.Equal(day.Add(10*time.Hour+10*time.Minute)) || v.RestoredAt == nil || !v.RestoredAt.Equal(day.Add(11*time.Hour+15*time.Minute)) {
		t.Errorf("changeFailure = %+v, want the burn from 10:10 restored at 11:15", v)
	}
	if len(im.SLOs) != 1 {
		t.Fatalf("slos = %+v, want availability only (staging-only measures staging)", im.SLOs)
	}
	s := im.SLOs[0]
	// Span 09:55 to 11:00 (an hour after the finish): 45 min of failures.
	// The period is the 30 days before 11:00, one request a second: the
	// budget is 1% of them.
	wantSpent := (45 * 60) / (0.01 * 30 * 86400)
	if s.BudgetSpent == nil || !sameFloat(s.BudgetSpent, &wantSpent) {
		t.Errorf("budgetSpent = %s, want %g", show(s.BudgetSpent), wantSpent)
	}
	// The hour before 09:55 is clean; the hour after 10:00 fails 45 min
	// of 60: 75% errors, 75x the budget.
	if s.BurnRateBefore == nil || *s.BurnRateBefore != 0 || !sameFloat(s.BurnRateAfter, ratio(75)) {
		t.Errorf("burn rates = %s before, %s after; want 0 and 75", show(s.BurnRateBefore), show(s.BurnRateAfter))
	}
	if !s.Span.End.Equal(day.Add(11*time.Hour)) || !s.After.Start.Equal(day.Add(10*time.Hour)) {
		t.Errorf("span %+v, after %+v", s.Span, s.After)
	}

	im, err = h.Impact(context.Background(), history, 1, 0, at)
	if err != nil {
		t.Fatal(err)
	}
	if im.ChangeFailure.Counts || im.ChangeFailure.Reason == "" {
		t.Errorf("d2 changeFailure = %+v, want not counted, with a reason", im.ChangeFailure)
	}
	if s := im.SLOs[0]; s.BudgetSpent == nil || *s.BudgetSpent != 0 {
		t.Errorf("d2 budgetSpent = %s, want 0", show(s.BudgetSpent))
	}
}
