package alerting

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/slogate/slogate/slo"
)

func fp(v float64) *float64 { return &v }

// tier states of a status: "f" firing, "-" measured below, "?" unknown.
func status(name string, page, ticket string, remaining *float64) slo.Status {
	st := slo.Status{
		Name: name, Service: "checkout", Target: 0.999, Window: "30d",
		ErrorBudget: slo.BudgetFigures{Total: 0.001, Remaining: remaining},
		BurnRates:   map[string]*float64{"5m": fp(20), "30m": fp(7), "1h": fp(15.5), "2h": fp(3.5), "6h": fp(6.5), "1d": fp(0.5), "3d": fp(0.4)},
		Range:       slo.RangeJSON{Start: t0.Add(-30 * slo.Day), End: t0},
	}
	add := func(sev slo.Severity, states string, tiers [][2]string, factors []float64) {
		for i, c := range states {
			a := slo.AlertState{Severity: sev, LongWindow: tiers[i][0], ShortWindow: tiers[i][1], Factor: factors[i]}
			switch c {
			case 'f':
				a.Firing = true
			case '?':
				a.Unknown = true
			}
			st.Alerts = append(st.Alerts, a)
		}
	}
	add(slo.SeverityPage, page, [][2]string{{"1h", "5m"}, {"6h", "30m"}}, []float64{14.4, 6})
	add(slo.SeverityTicket, ticket, [][2]string{{"1d", "2h"}, {"3d", "6h"}}, []float64{3, 1})
	return st
}

// step is one evaluation and the events it should produce, each written
// "kind severity firing transition" (e.g. "alert page firing transition",
// "alert page firing resend", "alert page resolved", "budget 2026-11").
type step struct {
	statuses []slo.Status
	want     []string
}

func describe(events []Event) []string {
	var out []string
	for _, e := range events {
		switch e.Kind {
		case KindAlert:
			s := "alert " + string(e.Alert.Severity)
			switch {
			case e.Alert.Firing && e.Alert.Transition:
				s += " fired"
			case e.Alert.Firing:
				s += " resent"
			default:
				s += " resolved"
			}
			out = append(out, s)
		case KindBudgetExhausted:
			out = append(out, "budget "+e.Budget.Period)
		}
	}
	return out
}

func TestTrackerTransitions(t *testing.T) {
	tests := map[string][]step{
		"a page tier that fires is reported once as fired, then re-sent while it fires": {
			{statuses: []slo.Status{status("a", "--", "--", fp(0.5))}},
			{statuses: []slo.Status{status("a", "f-", "--", fp(0.5))}, want: []string{"alert page fired"}},
			{statuses: []slo.Status{status("a", "ff", "--", fp(0.5))}, want: []string{"alert page resent"}},
			{statuses: []slo.Status{status("a", "-f", "--", fp(0.5))}, want: []string{"alert page resent"}},
		},
		"a firing alert measured below every factor resolves once": {
			{statuses: []slo.Status{status("a", "f-", "--", fp(0.5))}, want: []string{"alert page fired"}},
			{statuses: []slo.Status{status("a", "--", "--", fp(0.5))}, want: []string{"alert page resolved"}},
			{statuses: []slo.Status{status("a", "--", "--", fp(0.5))}},
		},
		"unknown tiers neither fire nor resolve: a firing alert is held": {
			{statuses: []slo.Status{status("a", "??", "--", fp(0.5))}},
			{statuses: []slo.Status{status("a", "f?", "--", fp(0.5))}, want: []string{"alert page fired"}},
			{statuses: []slo.Status{status("a", "??", "--", fp(0.5))}, want: []string{"alert page resent"}},
			{statuses: []slo.Status{status("a", "-?", "--", fp(0.5))}, want: []string{"alert page resent"}},
			{statuses: []slo.Status{status("a", "--", "--", fp(0.5))}, want: []string{"alert page resolved"}},
		},
		"page and ticket are separate alerts": {
			{statuses: []slo.Status{status("a", "f-", "f-", fp(0.5))}, want: []string{"alert page fired", "alert ticket fired"}},
			{statuses: []slo.Status{status("a", "--", "-f", fp(0.5))}, want: []string{"alert page resolved", "alert ticket resent"}},
		},
		"a disabled severity (no tiers) gives no events": {
			{statuses: []slo.Status{status("a", "", "f-", fp(0.5))}, want: []string{"alert ticket fired"}},
		},
		"an exhausted budget is reported once per rolling month": {
			{statuses: []slo.Status{status("a", "--", "--", fp(0))}, want: []string{"budget rolling-2026-11"}},
			{statuses: []slo.Status{status("a", "--", "--", fp(-0.2))}},
			{statuses: []slo.Status{status("a", "--", "--", fp(0.1))}},
			{statuses: []slo.Status{status("a", "--", "--", fp(-0.1))}},
		},
		"an unmeasured budget is never exhausted": {
			{statuses: []slo.Status{status("a", "--", "--", nil)}},
		},
		"two SLOs are tracked apart": {
			{statuses: []slo.Status{status("a", "f-", "--", fp(0.5)), status("b", "--", "--", fp(0.5))}, want: []string{"alert page fired"}},
			{statuses: []slo.Status{status("a", "f-", "--", fp(0.5)), status("b", "f-", "--", fp(0.5))}, want: []string{"alert page resent", "alert page fired"}},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			tr, err := NewTracker(TrackerConfig{Interval: time.Minute, State: &fakeStateStore{}})
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range steps {
				at := t0.Add(time.Duration(i) * time.Minute)
				got := describe(tr.Observe(context.Background(), s.statuses, at))
				if strings.Join(got, ", ") != strings.Join(s.want, ", ") {
					t.Errorf("evaluation %d: events %q, want %q", i, got, s.want)
				}
			}
		})
	}
}

func TestTrackerEventContents(t *testing.T) {
	ctx := context.Background()
	obj := slo.Objective{Name: "a", Labels: map[string]string{"team": "payments"}, Window: slo.Rolling(30 * slo.Day),
		Alerting: slo.Alerting{Name: "CheckoutBurn", Labels: map[string]string{"tier": "1"},
			Annotations:         map[string]string{"runbook_url": "https://runbooks.example/a"},
			SeverityLabels:      map[slo.Severity]map[string]string{slo.SeverityPage: {"severity": "critical"}},
			SeverityAnnotations: map[slo.Severity]map[string]string{slo.SeverityPage: {"summary_extra": "wake up"}}}}
	tr, err := NewTracker(TrackerConfig{Interval: time.Minute,
		Objectives: func(name string) (slo.Objective, bool) { return obj, name == "a" },
		Links: func(st slo.Status) []Link {
			return []Link{{Href: "https://slogate.example/v1/slos/" + st.Name, Text: "SLO"}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	fired := tr.Observe(ctx, []slo.Status{status("a", "f-", "--", fp(0.41))}, t0)
	resent := tr.Observe(ctx, []slo.Status{status("a", "ff", "--", fp(0.4))}, t0.Add(time.Minute))
	resolved := tr.Observe(ctx, []slo.Status{status("a", "--", "--", fp(0.39))}, t0.Add(2*time.Minute))

	tests := map[string]struct {
		events []Event
		check  func(t *testing.T, a *Alert, e Event)
	}{
		"a fired alert starts now and holds four intervals": {events: fired, check: func(t *testing.T, a *Alert, e Event) {
			if !a.StartsAt.Equal(t0) || !a.EndsAt.Equal(t0.Add(4*time.Minute)) || !e.At.Equal(t0) {
				t.Errorf("startsAt %v endsAt %v at %v", a.StartsAt, a.EndsAt, e.At)
			}
		}},
		"a re-send keeps its start and moves its end": {events: resent, check: func(t *testing.T, a *Alert, e Event) {
			if !a.StartsAt.Equal(t0) || !a.EndsAt.Equal(t0.Add(5*time.Minute)) || a.Transition {
				t.Errorf("startsAt %v endsAt %v transition %v", a.StartsAt, a.EndsAt, a.Transition)
			}
		}},
		"a resolution ends at the evaluation and keeps the start": {events: resolved, check: func(t *testing.T, a *Alert, e Event) {
			if a.Firing || !a.Transition || !a.StartsAt.Equal(t0) || !a.EndsAt.Equal(t0.Add(2*time.Minute)) {
				t.Errorf("%+v", a)
			}
			if !strings.Contains(a.Summary, "no longer") {
				t.Errorf("summary %q", a.Summary)
			}
		}},
		"the texts carry the factor, windows, burn rates and budget left": {events: fired, check: func(t *testing.T, a *Alert, e Event) {
			for _, want := range []string{"15.50× over 1h", "threshold 14.4×", "page"} {
				if !strings.Contains(a.Summary, want) {
					t.Errorf("summary %q lacks %q", a.Summary, want)
				}
			}
			for _, want := range []string{"target 99.9% over 30d", "error budget remaining 41.0%", "page tier 1h/5m (factor 14.4×): FIRING, burn rate 15.50× over 1h and 20.00× over 5m", "page tier 6h/30m (factor 6×): not firing"} {
				if !strings.Contains(a.Description, want) {
					t.Errorf("description %q lacks %q", a.Description, want)
				}
			}
		}},
		"the SLO file's name, labels and annotations are on the alert": {events: fired, check: func(t *testing.T, a *Alert, e Event) {
			if a.Name != "CheckoutBurn" || a.Labels["team"] != "payments" || a.Labels["tier"] != "1" || a.Labels["severity"] != "critical" ||
				a.Annotations["runbook_url"] == "" || a.Annotations["summary_extra"] != "wake up" {
				t.Errorf("name %q labels %v annotations %v", a.Name, a.Labels, a.Annotations)
			}
			if len(e.Links) != 1 || !strings.HasSuffix(e.Links[0].Href, "/v1/slos/a") {
				t.Errorf("links %+v", e.Links)
			}
			if a.BudgetRemaining == nil || *a.BudgetRemaining != 0.41 || len(a.Tiers) != 2 {
				t.Errorf("figures: budget %v tiers %v", a.BudgetRemaining, a.Tiers)
			}
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if len(tc.events) != 1 || tc.events[0].Alert == nil {
				t.Fatalf("events %+v, want one alert", tc.events)
			}
			tc.check(t, tc.events[0].Alert, tc.events[0])
		})
	}
}

func TestTrackerBudgetPeriod(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris") // time/tzdata is linked in: never missing
	if err != nil {
		t.Fatal(err)
	}
	// 2026-11-30 23:30 UTC is already December in Paris.
	at := time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)
	monthParis := slo.Window{Calendar: slo.CalendarMonth, Location: paris}
	tests := map[string]struct {
		window slo.Window
		lookup bool
		want   string
	}{
		"a rolling window is named by the month of the evaluation": {window: slo.Rolling(28 * slo.Day), lookup: true, want: "rolling-2026-11"},
		"a calendar month is named by its start in its own zone":   {window: monthParis, lookup: true, want: "2026-12-01"},
		"a calendar week starts on a Monday":                       {window: slo.Window{Calendar: slo.CalendarWeek}, lookup: true, want: "2026-11-30"},
		"without the objective, the status' window and range tell": {window: monthParis, lookup: false, want: "2026-12-01"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			obj := slo.Objective{Name: "a", Service: "checkout", Target: 0.999, Window: tc.window}
			st := status("a", "--", "--", fp(-0.5))
			st.Window = tc.window.String()
			r := tc.window.Range(at)
			st.Range = slo.RangeJSON{Start: r.Start, End: r.End}
			cfg := TrackerConfig{Interval: time.Minute}
			if tc.lookup {
				cfg.Objectives = func(string) (slo.Objective, bool) { return obj, true }
			}
			tr, err := NewTracker(cfg)
			if err != nil {
				t.Fatal(err)
			}
			events := tr.Observe(context.Background(), []slo.Status{st}, at)
			if len(events) != 1 || events[0].Kind != KindBudgetExhausted {
				t.Fatalf("events %+v", describe(events))
			}
			b := events[0].Budget
			if b.Period != tc.want || b.SLO != "a" || b.Remaining != -0.5 || b.Status.Name != "a" {
				t.Errorf("budget %+v, want period %s", b, tc.want)
			}
		})
	}
}

func TestTrackerSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	states := &fakeStateStore{}
	first, _ := NewTracker(TrackerConfig{Interval: time.Minute, State: states})
	first.Observe(ctx, []slo.Status{status("a", "f-", "--", fp(-0.1))}, t0)
	first.Observe(ctx, []slo.Status{status("a", "f-", "--", fp(-0.1))}, t0.Add(time.Minute))

	tests := map[string]struct {
		statuses []slo.Status
		want     []string
		check    func(t *testing.T, events []Event)
	}{
		"a firing alert is re-sent, not fired again, and no budget is reported twice": {
			statuses: []slo.Status{status("a", "f-", "--", fp(-0.1))},
			want:     []string{"alert page resent"},
			check: func(t *testing.T, events []Event) {
				if !events[0].Alert.StartsAt.Equal(t0) {
					t.Errorf("startsAt %v, want the first firing %v", events[0].Alert.StartsAt, t0)
				}
			},
		},
		"a firing alert that stopped while slogate was down resolves with its start": {
			statuses: []slo.Status{status("a", "--", "--", fp(-0.1))},
			want:     []string{"alert page resolved"},
			check: func(t *testing.T, events []Event) {
				if !events[0].Alert.StartsAt.Equal(t0) {
					t.Errorf("startsAt %v", events[0].Alert.StartsAt)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// A new process over the same saved states (a copy per case).
			saved, _ := states.Load(ctx)
			restarted, _ := NewTracker(TrackerConfig{Interval: time.Minute, State: &fakeStateStore{states: saved}})
			events := restarted.Observe(ctx, tc.statuses, t0.Add(10*time.Minute))
			if got := describe(events); strings.Join(got, ", ") != strings.Join(tc.want, ", ") {
				t.Fatalf("events %q, want %q", got, tc.want)
			}
			tc.check(t, events)
		})
	}
	t.Run("only transitions are saved, not re-sends", func(t *testing.T) {
		if states.saves != 2 { // a/page fired, a/budget
			t.Errorf("%d saves, want 2 (%v)", states.saves, states.states)
		}
	})
}

func TestTrackerSendFailure(t *testing.T) {
	ctx := context.Background()
	sendErr := errors.New("database is locked")
	var sent [][]Event
	states := &fakeStateStore{}
	tr, _ := NewTracker(TrackerConfig{Interval: time.Minute, State: states, Send: func(_ context.Context, events []Event) error {
		sent = append(sent, events)
		return sendErr
	}})
	steps := []struct {
		name string
		fail bool
		want []string
	}{
		{"a transition whose events were not sent is not saved", true, []string{"alert page fired"}},
		{"the next evaluation reports the transition again", false, []string{"alert page fired"}},
		{"once sent, the alert is re-sent as usual", false, []string{"alert page resent"}},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if !s.fail {
				sendErr = nil
			}
			events := tr.Observe(ctx, []slo.Status{status("a", "f-", "--", fp(0.5))}, t0.Add(time.Duration(i)*time.Minute))
			if got := describe(events); strings.Join(got, ", ") != strings.Join(s.want, ", ") {
				t.Errorf("events %q, want %q", got, s.want)
			}
			if _, saved := states.states["a/page"]; saved == s.fail {
				t.Errorf("state saved: %v", saved)
			}
		})
	}
	if len(sent) != 3 {
		t.Errorf("Send called %d times, want 3", len(sent))
	}
}

func TestTrackerLoadFailure(t *testing.T) {
	ctx := context.Background()
	states := &fakeStateStore{states: map[string]State{"a/page": {Firing: true, StartsAt: t0}}, loadErr: errors.New("store down")}
	tr, _ := NewTracker(TrackerConfig{Interval: time.Minute, State: states})
	steps := []struct {
		name string
		fix  bool
		want []string
	}{
		{"without its states a firing alert is fired again (peers absorb it)", false, []string{"alert page fired"}},
		{"states loaded later do not override what was learned meanwhile", true, []string{"alert page resent"}},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.fix {
				states.mu.Lock()
				states.loadErr = nil
				states.mu.Unlock()
			}
			at := t0.Add(time.Duration(i+1) * time.Hour)
			events := tr.Observe(ctx, []slo.Status{status("a", "f-", "--", fp(0.5))}, at)
			if got := describe(events); strings.Join(got, ", ") != strings.Join(s.want, ", ") {
				t.Fatalf("events %q, want %q", got, s.want)
			}
			if s.fix && !events[0].Alert.StartsAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("startsAt %v, want the re-fire's", events[0].Alert.StartsAt)
			}
		})
	}
}
