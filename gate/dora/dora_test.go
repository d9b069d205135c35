package dora

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate"
)

// end is the end of every window in these tests: a Monday, midnight UTC.
var end = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

// at is a time days and hours before end.
func at(daysBefore int, clock string) time.Time {
	c, err := time.Parse("15:04", clock)
	if err != nil {
		panic(err)
	}
	return end.AddDate(0, 0, -daysBefore).Add(time.Duration(c.Hour())*time.Hour + time.Duration(c.Minute())*time.Minute)
}

var seq int

// dep is a deploy of checkout in production started at start that took
// minutes to finish with status.
func dep(start time.Time, minutes int, status string) slogate.Deploy {
	seq++
	d := slogate.Deploy{ID: fmt.Sprintf("dep_%03d", seq), Service: "checkout", Environment: "production", StartedAt: start, Status: status}
	if status != slogate.StatusRunning {
		f := start.Add(time.Duration(minutes) * time.Minute)
		d.FinishedAt = &f
	}
	return d
}

func named(d slogate.Deploy, id string) slogate.Deploy { d.ID = id; return d }

func withCommit(d slogate.Deploy, before time.Duration) slogate.Deploy {
	d.Commits = []slogate.Commit{{SHA: "c1", Time: finishedAt(d).Add(-before)}}
	return d
}

func burn(start, stop time.Time) Burn {
	return Burn{Service: "checkout", SLO: "checkout-availability", Start: start, End: stop}
}

func seconds(d time.Duration) *float64 { v := d.Seconds(); return &v }

func ratio(v float64) *float64 { return &v }

func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return fmt.Sprintf("%.6f", *a) == fmt.Sprintf("%.6f", *b)
}

func show(v *float64) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%g", *v)
}

func TestDeploymentFrequency(t *testing.T) {
	// A 28-day window: four weeks (days 0-6, 7-13, 14-20, 21-27 back from
	// the end) and one month.
	fourWeeks := 28 * Day
	tests := map[string]struct {
		deploys    []slogate.Deploy
		window     time.Duration
		count      int
		deployDays int
		perDay     float64
		band       string
	}{
		"three deploy days in every week is daily": {
			window: fourWeeks,
			deploys: []slogate.Deploy{
				dep(at(1, "10:00"), 5, slogate.StatusSucceeded), dep(at(2, "10:00"), 5, slogate.StatusSucceeded), dep(at(3, "10:00"), 5, slogate.StatusSucceeded),
				dep(at(8, "10:00"), 5, slogate.StatusSucceeded), dep(at(9, "10:00"), 5, slogate.StatusSucceeded), dep(at(10, "10:00"), 5, slogate.StatusSucceeded),
				dep(at(15, "10:00"), 5, slogate.StatusSucceeded), dep(at(16, "10:00"), 5, slogate.StatusSucceeded), dep(at(17, "10:00"), 5, slogate.StatusSucceeded),
				dep(at(22, "10:00"), 5, slogate.StatusSucceeded), dep(at(23, "10:00"), 5, slogate.StatusSucceeded), dep(at(24, "10:00"), 5, slogate.StatusSucceeded),
				// Two on one day count one deploy day.
				dep(at(24, "12:00"), 5, slogate.StatusSucceeded),
			},
			count: 13, deployDays: 12, perDay: 13.0 / 28, band: BandDaily,
		},
		"two deploy days a week is weekly, however many deploys": {
			window: fourWeeks,
			deploys: []slogate.Deploy{
				dep(at(1, "10:00"), 5, slogate.StatusSucceeded), dep(at(1, "11:00"), 5, slogate.StatusSucceeded), dep(at(1, "12:00"), 5, slogate.StatusSucceeded), dep(at(2, "10:00"), 5, slogate.StatusSucceeded),
				dep(at(8, "10:00"), 5, slogate.StatusSucceeded), dep(at(9, "10:00"), 5, slogate.StatusSucceeded),
				dep(at(15, "10:00"), 5, slogate.StatusSucceeded), dep(at(16, "10:00"), 5, slogate.StatusSucceeded),
				dep(at(22, "10:00"), 5, slogate.StatusSucceeded), dep(at(23, "10:00"), 5, slogate.StatusSucceeded),
			},
			count: 10, deployDays: 8, perDay: 10.0 / 28, band: BandWeekly,
		},
		"three weeks of four with a deploy is weekly": {
			window: fourWeeks,
			deploys: []slogate.Deploy{
				dep(at(1, "10:00"), 5, slogate.StatusSucceeded), dep(at(8, "10:00"), 5, slogate.StatusSucceeded), dep(at(15, "10:00"), 5, slogate.StatusSucceeded),
			},
			count: 3, deployDays: 3, perDay: 3.0 / 28, band: BandWeekly,
		},
		"two weeks of four with a deploy is monthly: the median week has none": {
			window: fourWeeks,
			deploys: []slogate.Deploy{
				dep(at(1, "10:00"), 5, slogate.StatusSucceeded), dep(at(15, "10:00"), 5, slogate.StatusSucceeded),
			},
			count: 2, deployDays: 2, perDay: 2.0 / 28, band: BandMonthly,
		},
		"one deploy in three months is yearly": {
			window:  90 * Day,
			deploys: []slogate.Deploy{dep(at(40, "10:00"), 5, slogate.StatusSucceeded)},
			count:   1, deployDays: 1, perDay: 1.0 / 90, band: BandYearly,
		},
		"deploys in two months of three is monthly": {
			window:  90 * Day,
			deploys: []slogate.Deploy{dep(at(5, "10:00"), 5, slogate.StatusSucceeded), dep(at(40, "10:00"), 5, slogate.StatusSucceeded)},
			count:   2, deployDays: 2, perDay: 2.0 / 90, band: BandMonthly,
		},
		"failed, rolled-back and running deploys are not deploys of the frequency": {
			window: fourWeeks,
			deploys: []slogate.Deploy{
				dep(at(1, "10:00"), 5, slogate.StatusFailed), dep(at(8, "10:00"), 5, slogate.StatusRolledBack), dep(at(15, "10:00"), 5, slogate.StatusRunning),
				dep(at(22, "10:00"), 5, slogate.StatusSucceeded),
			},
			count: 1, deployDays: 1, perDay: 1.0 / 28, band: BandMonthly,
		},
		"a deploy finished before the window, or after its end, is left out": {
			window: fourWeeks,
			deploys: []slogate.Deploy{
				dep(at(29, "10:00"), 5, slogate.StatusSucceeded),
				dep(end.Add(time.Hour), 5, slogate.StatusSucceeded),
				// Started in the window, finished after its end: running then.
				dep(end.Add(-time.Minute), 5, slogate.StatusSucceeded),
			},
			count: 0, deployDays: 0, perDay: 0, band: BandYearly,
		},
		"a deploy started before the window and finished in it counts": {
			window:  fourWeeks,
			deploys: []slogate.Deploy{dep(end.Add(-fourWeeks-time.Hour), 120, slogate.StatusSucceeded)},
			count:   1, deployDays: 1, perDay: 1.0 / 28, band: BandMonthly,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := Compute(tc.deploys, nil, Options{End: end, Window: tc.window})
			f := r.Deployments
			if f.Count != tc.count || f.DeployDays != tc.deployDays || f.Band != tc.band || !sameFloat(&f.PerDay, &tc.perDay) {
				t.Errorf("deployments = %+v, want count %d, deployDays %d, perDay %g, band %s", f, tc.count, tc.deployDays, tc.perDay, tc.band)
			}
			if !r.Window.End.Equal(end) || !r.Window.Start.Equal(end.Add(-tc.window)) {
				t.Errorf("window = %+v", r.Window)
			}
		})
	}
}

func TestLeadTime(t *testing.T) {
	tests := map[string]struct {
		deploys         []slogate.Deploy
		median, p90     *float64
		samples, missig int
	}{
		"median and p90 of finish minus earliest commit; a deploy without commits is counted as missing": {
			deploys: []slogate.Deploy{
				withCommit(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), time.Hour),
				withCommit(dep(at(2, "10:00"), 5, slogate.StatusSucceeded), 2*time.Hour),
				withCommit(dep(at(3, "10:00"), 5, slogate.StatusSucceeded), 10*time.Hour),
				dep(at(4, "10:00"), 5, slogate.StatusSucceeded),
			},
			// Sorted 1h, 2h, 10h: median 2h; p90 at rank 1.8 is 2h + 0.8 × 8h.
			median: seconds(2 * time.Hour), p90: seconds(2*time.Hour + 384*time.Minute),
			samples: 3, missig: 1,
		},
		"failed and rolled-back deploys have no lead time": {
			deploys: []slogate.Deploy{
				withCommit(dep(at(1, "10:00"), 5, slogate.StatusFailed), time.Hour),
				withCommit(dep(at(2, "10:00"), 5, slogate.StatusRolledBack), time.Hour),
				withCommit(dep(at(3, "10:00"), 5, slogate.StatusSucceeded), 3*time.Hour),
			},
			median: seconds(3 * time.Hour), p90: seconds(3 * time.Hour), samples: 1,
		},
		"no deploy with commits: no figures, every succeeded deploy missing": {
			deploys: []slogate.Deploy{dep(at(1, "10:00"), 5, slogate.StatusSucceeded), dep(at(2, "10:00"), 5, slogate.StatusSucceeded)},
			missig:  2,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := Compute(tc.deploys, nil, Options{End: end}).LeadTime
			if !sameFloat(l.Median, tc.median) || !sameFloat(l.P90, tc.p90) || l.Samples != tc.samples || l.Missing != tc.missig {
				t.Errorf("leadTime = median %s, p90 %s, samples %d, missing %d; want %s, %s, %d, %d",
					show(l.Median), show(l.P90), l.Samples, l.Missing, show(tc.median), show(tc.p90), tc.samples, tc.missig)
			}
		})
	}
}

type wantFailure struct {
	id, kind, slo string
	start         time.Time
	restored      time.Time // zero: not restored
}

func TestChangeFailuresAndTimeToRestore(t *testing.T) {
	tests := map[string]struct {
		deploys     []slogate.Deploy
		burns       []Burn
		attribution time.Duration
		failures    []wantFailure
		deployments int
		ratio       *float64
		restore     *float64
		samples     int
	}{
		"failed and rolled-back deploys are failures restored by the next succeeded deploy": {
			deploys: []slogate.Deploy{
				named(dep(at(3, "10:00"), 10, slogate.StatusSucceeded), "d1"),
				named(dep(at(2, "10:00"), 10, slogate.StatusFailed), "d2"),     // finished 10:10
				named(dep(at(2, "11:00"), 20, slogate.StatusRolledBack), "d3"), // finished 11:20
				named(dep(at(2, "12:00"), 30, slogate.StatusSucceeded), "d4"),  // finished 12:30
				named(dep(at(1, "09:00"), 5, slogate.StatusFailed), "d5"),      // never restored
				named(dep(at(1, "09:30"), 5, slogate.StatusRunning), "d6"),     // not finished: no deploy yet
				{ID: "d7", Service: "checkout", Environment: "staging", StartedAt: at(1, "09:40"), FinishedAt: timePtr(at(1, "09:45")), Status: slogate.StatusSucceeded},
			},
			failures: []wantFailure{
				{id: "d2", kind: KindFailed, start: at(2, "10:10"), restored: at(2, "12:30")},
				{id: "d3", kind: KindRolledBack, start: at(2, "11:20"), restored: at(2, "12:30")},
				{id: "d5", kind: KindFailed, start: at(1, "09:05")},
			},
			// d7 in staging restores nothing in production.
			deployments: 6, ratio: ratio(3.0 / 6),
			// 140 min and 70 min: median 105 min.
			restore: seconds(105 * time.Minute), samples: 2,
		},
		"a burn is the doing of the last deploy before it when two deploys are close together": {
			deploys: []slogate.Deploy{
				named(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), "d1"),
				named(dep(at(1, "10:20"), 5, slogate.StatusSucceeded), "d2"),
			},
			// Within an hour of d1's finish, but d2 had started.
			burns:       []Burn{burn(at(1, "10:30"), at(1, "11:15"))},
			failures:    []wantFailure{{id: "d2", kind: KindBurn, slo: "checkout-availability", start: at(1, "10:30"), restored: at(1, "11:15")}},
			deployments: 2, ratio: ratio(0.5),
			restore: seconds(45 * time.Minute), samples: 1,
		},
		"a burn before the next deploy started is the earlier deploy's": {
			deploys: []slogate.Deploy{
				named(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), "d1"),
				named(dep(at(1, "10:20"), 5, slogate.StatusSucceeded), "d2"),
			},
			burns:       []Burn{burn(at(1, "10:15"), at(1, "10:45"))},
			failures:    []wantFailure{{id: "d1", kind: KindBurn, slo: "checkout-availability", start: at(1, "10:15"), restored: at(1, "10:45")}},
			deployments: 2, ratio: ratio(0.5),
			restore: seconds(30 * time.Minute), samples: 1,
		},
		"a burn that starts after the attribution limit is nobody's": {
			deploys:     []slogate.Deploy{named(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), "d1")},
			burns:       []Burn{burn(at(1, "11:06"), at(1, "11:30"))}, // the limit is 11:05
			deployments: 1, ratio: ratio(0),
		},
		"a longer attribution takes in a later burn": {
			deploys:     []slogate.Deploy{named(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), "d1")},
			burns:       []Burn{burn(at(1, "11:06"), at(1, "11:30"))},
			attribution: 2 * time.Hour,
			failures:    []wantFailure{{id: "d1", kind: KindBurn, slo: "checkout-availability", start: at(1, "11:06"), restored: at(1, "11:30")}},
			deployments: 1, ratio: ratio(1),
			restore: seconds(24 * time.Minute), samples: 1,
		},
		"a burn already going when the deploy started is not its doing": {
			deploys:     []slogate.Deploy{named(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), "d1")},
			burns:       []Burn{burn(at(1, "09:50"), at(1, "10:30"))},
			deployments: 1, ratio: ratio(0),
		},
		"a burn still going at the end is a failure not yet restored": {
			deploys:     []slogate.Deploy{named(dep(at(1, "20:00"), 5, slogate.StatusSucceeded), "d1")},
			burns:       []Burn{burn(at(1, "20:30"), time.Time{})},
			failures:    []wantFailure{{id: "d1", kind: KindBurn, slo: "checkout-availability", start: at(1, "20:30")}},
			deployments: 1, ratio: ratio(1),
		},
		"a burn that ended after the end of the window is still going then": {
			deploys:     []slogate.Deploy{named(dep(at(1, "23:00"), 5, slogate.StatusSucceeded), "d1")},
			burns:       []Burn{burn(at(1, "23:30"), end.Add(time.Hour))},
			failures:    []wantFailure{{id: "d1", kind: KindBurn, slo: "checkout-availability", start: at(1, "23:30")}},
			deployments: 1, ratio: ratio(1),
		},
		"a burn of another service, or of an SLO of another environment, is not this deploy's": {
			deploys: []slogate.Deploy{named(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), "d1")},
			burns: []Burn{
				{Service: "search", SLO: "search-latency", Start: at(1, "10:10"), End: at(1, "10:40")},
				{Service: "checkout", SLO: "checkout-staging", Environments: []string{"staging"}, Start: at(1, "10:10"), End: at(1, "10:40")},
			},
			deployments: 1, ratio: ratio(0),
		},
		"of two burns after one deploy the first is the failure, once": {
			deploys: []slogate.Deploy{named(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), "d1")},
			burns: []Burn{
				{Service: "checkout", SLO: "checkout-latency", Start: at(1, "10:40"), End: at(1, "11:00")},
				{Service: "checkout", SLO: "checkout-availability", Environments: []string{"production"}, Start: at(1, "10:10"), End: at(1, "10:20")},
			},
			failures:    []wantFailure{{id: "d1", kind: KindBurn, slo: "checkout-availability", start: at(1, "10:10"), restored: at(1, "10:20")}},
			deployments: 1, ratio: ratio(1),
			restore: seconds(10 * time.Minute), samples: 1,
		},
		"a failed deploy followed by a burn is a failure once, of its status": {
			deploys:     []slogate.Deploy{named(dep(at(1, "10:00"), 5, slogate.StatusFailed), "d1"), named(dep(at(1, "12:00"), 5, slogate.StatusSucceeded), "d2")},
			burns:       []Burn{burn(at(1, "10:10"), at(1, "10:20"))},
			failures:    []wantFailure{{id: "d1", kind: KindFailed, start: at(1, "10:05"), restored: at(1, "12:05")}},
			deployments: 2, ratio: ratio(0.5),
			restore: seconds(2 * time.Hour), samples: 1,
		},
		"restore by the next deploy and restore by the burn's end in one window": {
			deploys: []slogate.Deploy{
				named(dep(at(5, "10:00"), 5, slogate.StatusRolledBack), "d1"), // restored by d2 at 14:05
				named(dep(at(5, "14:00"), 5, slogate.StatusSucceeded), "d2"),
				named(dep(at(4, "10:00"), 5, slogate.StatusSucceeded), "d3"), // burn 10:20-10:50
			},
			burns: []Burn{burn(at(4, "10:20"), at(4, "10:50"))},
			failures: []wantFailure{
				{id: "d1", kind: KindRolledBack, start: at(5, "10:05"), restored: at(5, "14:05")},
				{id: "d3", kind: KindBurn, slo: "checkout-availability", start: at(4, "10:20"), restored: at(4, "10:50")},
			},
			deployments: 3, ratio: ratio(2.0 / 3),
			// 4h and 30min: median 2h15m.
			restore: seconds(135 * time.Minute), samples: 2,
		},
		"no deploys: no ratio, no time to restore": {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := Compute(tc.deploys, tc.burns, Options{End: end, Attribution: tc.attribution})
			c := r.ChangeFailureRate
			if c.Deployments != tc.deployments || c.Failures != len(tc.failures) || !sameFloat(c.Ratio, tc.ratio) {
				t.Errorf("changeFailureRate = %d/%d = %s, want %d/%d = %s", c.Failures, c.Deployments, show(c.Ratio), len(tc.failures), tc.deployments, show(tc.ratio))
			}
			if !sameFloat(r.TimeToRestore.Median, tc.restore) || r.TimeToRestore.Samples != tc.samples {
				t.Errorf("timeToRestore = %s over %d, want %s over %d", show(r.TimeToRestore.Median), r.TimeToRestore.Samples, show(tc.restore), tc.samples)
			}
			if len(r.Failures) != len(tc.failures) {
				t.Fatalf("failures = %+v, want %+v", r.Failures, tc.failures)
			}
			for i, w := range tc.failures {
				g := r.Failures[i]
				restored := g.RestoredAt != nil && w.restored.Equal(*g.RestoredAt) || g.RestoredAt == nil && w.restored.IsZero()
				if g.DeployID != w.id || g.Kind != w.kind || g.SLO != w.slo || !g.Start.Equal(w.start) || !restored || g.Reason == "" {
					t.Errorf("failure %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestClassifyOneDeploy(t *testing.T) {
	h := Histories([]slogate.Deploy{
		named(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), "d1"),
		named(dep(at(1, "10:20"), 5, slogate.StatusSucceeded), "d2"),
		named(dep(at(1, "12:00"), 5, slogate.StatusRunning), "d3"),
	}, end)[0]
	burns := []Burn{burn(at(1, "10:30"), at(1, "11:00"))}
	if _, ok := Classify(h, "d1", burns, 0, end); ok {
		t.Error("d1 is a change failure; the burn began after d2 started")
	}
	f, ok := Classify(h, "d2", burns, 0, end)
	if !ok || f.Kind != KindBurn || !f.Start.Equal(at(1, "10:30")) {
		t.Errorf("d2 = %+v, %v; want the burn at 10:30", f, ok)
	}
	if _, ok := Classify(h, "d3", []Burn{burn(at(1, "12:10"), time.Time{})}, 0, end); ok {
		t.Error("a running deploy is a change failure already")
	}
	if s := AttributionSpan(h, 0, time.Hour, end); !s.Start.Equal(at(1, "10:00")) || !s.End.Equal(at(1, "10:20")) {
		t.Errorf("d1's attribution span = %+v, want 10:00 to d2's start 10:20", s)
	}
	if s := AttributionSpan(h, 1, time.Hour, end); !s.End.Equal(at(1, "11:25")) {
		t.Errorf("d2's attribution span = %+v, want to an hour after its finish", s)
	}
	if s := AttributionSpan(h, 2, time.Hour, end); !s.End.Equal(end) {
		t.Errorf("running d3's attribution span = %+v, want to the end", s)
	}
}

func TestPercentile(t *testing.T) {
	tests := map[string]struct {
		xs   []float64
		p    float64
		want *float64
	}{
		"nothing has no percentile":            {xs: nil, p: 0.5, want: nil},
		"one value is every percentile":        {xs: []float64{7}, p: 0.9, want: ratio(7)},
		"an even count's median is the mean":   {xs: []float64{4, 1, 3, 2}, p: 0.5, want: ratio(2.5)},
		"p90 interpolates between two ranks":   {xs: []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, p: 0.9, want: ratio(90)},
		"p90 of two is nine tenths of the way": {xs: []float64{10, 20}, p: 0.9, want: ratio(19)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Percentile(tc.xs, tc.p); !sameFloat(got, tc.want) {
				t.Errorf("Percentile(%v, %g) = %s, want %s", tc.xs, tc.p, show(got), show(tc.want))
			}
		})
	}
}

func timePtr(t time.Time) *time.Time { return &t }

func TestHistories(t *testing.T) {
	in := func(svc, env string, d slogate.Deploy) slogate.Deploy { d.Service, d.Environment = svc, env; return d }
	deploys := []slogate.Deploy{
		in("shop", "production", named(dep(at(1, "12:00"), 5, slogate.StatusSucceeded), "s2")),
		in("checkout", "staging", named(dep(at(1, "11:00"), 5, slogate.StatusSucceeded), "c3")),
		in("checkout", "production", named(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), "c2")),
		in("checkout", "production", named(dep(at(1, "10:00"), 5, slogate.StatusSucceeded), "c1")),
		in("shop", "production", named(dep(at(1, "09:00"), 5, slogate.StatusFailed), "s1")),
		in("checkout", "production", named(dep(at(1, "09:58"), 5, slogate.StatusFailed), "c0")), // finishes 10:03
		in("shop", "production", named(dep(at(1, "13:00"), 5, slogate.StatusSucceeded), "s3")),  // not started at 12:30
	}
	instant, at1001 := at(1, "12:30"), at(1, "10:01")
	got := Histories(deploys, instant)
	var names []string
	for _, h := range got {
		var ids []string
		for _, d := range h {
			ids = append(ids, d.ID)
		}
		names = append(names, h[0].Service+"/"+h[0].Environment+": "+strings.Join(ids, " "))
	}
	want := []string{"checkout/production: c0 c1 c2", "checkout/staging: c3", "shop/production: s1 s2"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("histories = %q, want %q (by service and environment, then start and id; none started after the instant)", names, want)
	}
	t.Run("a deploy that finished after the instant is running at it", func(t *testing.T) {
		h := Histories(deploys, at1001)[0]
		if h[0].ID != "c0" || h[0].Status != slogate.StatusRunning || h[0].FinishedAt != nil {
			t.Errorf("c0 at 10:01 = %+v, want running", h[0])
		}
		if deploys[5].Status != slogate.StatusFailed || deploys[5].FinishedAt == nil {
			t.Errorf("the input changed: %+v", deploys[5])
		}
	})
	t.Run("appending to a history leaves the next one alone", func(t *testing.T) {
		_ = append(got[0], slogate.Deploy{ID: "x"})
		if got[1][0].ID != "c3" {
			t.Errorf("the next history starts with %s, want c3", got[1][0].ID)
		}
	})
	if h := Histories(nil, instant); h == nil || len(h) != 0 {
		t.Errorf("no deploys: %#v, want an empty list", h)
	}
}
