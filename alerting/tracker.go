package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slogate/slogate/slo"
)

// State is what the Tracker remembers of one alert ("<slo>/<severity>") or
// of one SLO's budget ("<slo>/budget") between evaluations and restarts.
type State struct {
	// Firing and StartsAt: the alert fires since StartsAt.
	Firing   bool      `json:"firing,omitempty"`
	StartsAt time.Time `json:"startsAt,omitzero"`
	// Period is the last budget period whose exhaustion was reported.
	Period string `json:"period,omitempty"`
}

// StateStore keeps the Tracker's states durably. The production one is
// written over the store's audit log (action "alert.state", subject the
// state key, detail the State as JSON; Load reads the newest entry of each
// subject).
type StateStore interface {
	Load(ctx context.Context) (map[string]State, error)
	Save(ctx context.Context, key string, s State) error
}

// TrackerConfig configures a Tracker. Interval is required.
type TrackerConfig struct {
	// State keeps states across restarts; nil keeps them in memory only.
	State StateStore
	// Send, when set, takes the events of each Observe before the states
	// they change are saved (Dispatcher.Send). When it fails, nothing is
	// saved and the next Observe produces the transitions again, so a
	// crash between the two sends a transition twice (the peers and the
	// outbox keys absorb it) but never loses one.
	Send func(ctx context.Context, events []Event) error
	// Commit, when set, replaces Send and State.Save: it enqueues the
	// events' messages and saves the states they change in one
	// transaction. With Send and Save apart, a process killed between the
	// enqueue and the save loses the state of a trigger it enqueued, and
	// the next leader fires the alert again (a second trigger, keyed by a
	// new start); with Commit either both happened or neither. When it
	// fails, nothing changes and the next Observe produces the
	// transitions again.
	Commit func(ctx context.Context, events []Event, states map[string]State) error
	// Interval is the evaluation interval: a firing alert holds for
	// 4 × Interval without a re-send (EndsAt), as Prometheus does.
	Interval time.Duration
	// Objectives looks an SLO up by name (slo.Set.Objective) for its
	// labels, annotations and alert name; nil leaves them out.
	Objectives func(name string) (slo.Objective, bool)
	// Links are added to every event (e.g. the slogate UI or API).
	Links  func(st slo.Status) []Link
	Logger *slog.Logger
}

// Tracker turns each evaluation's statuses into alert and budget events:
// a tier's severity that starts firing, keeps firing (a re-send, so the
// alert does not expire at Alertmanager) or stops firing, and an error
// budget spent for the first time in its period.
type Tracker struct {
	cfg    TrackerConfig
	logger *slog.Logger

	mu     sync.Mutex
	loaded bool
	// reload: the next load replaces the states in memory with the saved
	// ones (Reload).
	reload bool
	states map[string]State
}

// ResendFactor: a firing alert's EndsAt is this many evaluation intervals
// ahead (Prometheus' rule for Alertmanager clients).
const ResendFactor = 4

// NewTracker checks cfg.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	if cfg.Interval <= 0 {
		return nil, errors.New("alerting: tracker: the evaluation interval is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Tracker{cfg: cfg, logger: cfg.Logger.With("component", "tracker"), states: map[string]State{}}, nil
}

// StateKey is the key of an alert's state: "<slo>/<severity>".
func StateKey(sloName string, sev slo.Severity) string { return sloName + "/" + string(sev) }

// BudgetStateKey is the key of an SLO's budget state: "<slo>/budget".
func BudgetStateKey(sloName string) string { return sloName + "/budget" }

// Observe compares one evaluation (at) with the states so far and returns
// its events: fired, re-sent and resolved alerts, exhausted budgets. A tier
// that could not be measured (unknown) neither fires nor resolves: a firing
// alert whose tiers are unknown is re-sent as firing.
func (t *Tracker) Observe(ctx context.Context, statuses []slo.Status, at time.Time) []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.load(ctx)
	at = at.UTC()

	var events []Event
	changed := map[string]State{}
	for _, st := range statuses {
		obj, hasObj := slo.Objective{}, false
		if t.cfg.Objectives != nil {
			obj, hasObj = t.cfg.Objectives(st.Name)
		}
		for _, sev := range []slo.Severity{slo.SeverityPage, slo.SeverityTicket} {
			var tiers []slo.AlertState
			firing, unknown := false, false
			for _, a := range st.Alerts {
				if a.Severity != sev {
					continue
				}
				tiers = append(tiers, a)
				firing = firing || a.Firing
				unknown = unknown || a.Unknown
			}
			if len(tiers) == 0 {
				continue
			}
			key := StateKey(st.Name, sev)
			prev := t.states[key]
			a := t.alert(st, obj, hasObj, sev, tiers)
			switch {
			case firing && !prev.Firing:
				a.Firing, a.Transition, a.StartsAt, a.EndsAt = true, true, at, at.Add(ResendFactor*t.cfg.Interval)
				changed[key] = State{Firing: true, StartsAt: at}
			case prev.Firing && (firing || unknown):
				a.Firing, a.StartsAt, a.EndsAt = true, prev.StartsAt, at.Add(ResendFactor*t.cfg.Interval)
			case prev.Firing:
				a.Transition, a.StartsAt, a.EndsAt = true, prev.StartsAt, at
				changed[key] = State{}
			default:
				continue
			}
			a.Summary, a.Description = alertTexts(st, a, tiers)
			events = append(events, Event{Kind: KindAlert, At: at, Alert: &a, Links: t.links(st)})
		}
		if rem := st.ErrorBudget.Remaining; rem != nil && *rem <= 0 {
			key := BudgetStateKey(st.Name)
			period := budgetPeriod(st, obj, hasObj, at)
			if prev := t.states[key]; prev.Period != period {
				changed[key] = State{Period: period}
				events = append(events, Event{Kind: KindBudgetExhausted, At: at, Links: t.links(st), Budget: &Budget{
					Service: st.Service, SLO: st.Name, Target: st.Target, Window: st.Window,
					Remaining: *rem, Period: period, Status: st,
				}})
			}
		}
	}

	if t.cfg.Commit != nil {
		if len(events) == 0 && len(changed) == 0 {
			return events
		}
		if err := t.cfg.Commit(ctx, events, changed); err != nil {
			t.logger.Error("alert events and states not committed; their transitions will be evaluated again", "error", err, "events", len(events))
			return events
		}
		maps.Copy(t.states, changed)
		return events
	}
	if t.cfg.Send != nil && len(events) > 0 {
		if err := t.cfg.Send(ctx, events); err != nil {
			t.logger.Error("alert events not sent; their transitions will be evaluated again", "error", err, "events", len(events))
			return events
		}
	}
	keys := make([]string, 0, len(changed))
	for k := range changed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s := changed[k]
		t.states[k] = s
		if t.cfg.State == nil {
			continue
		}
		if err := t.cfg.State.Save(ctx, k, s); err != nil {
			// The state is kept in memory; after a restart the
			// transition would be reported again, which peers absorb.
			t.logger.Error("alert state not saved", "key", k, "error", err)
		}
	}
	return events
}

// load reads the saved states once. On failure it logs and goes on with
// what it has in memory, trying again at the next Observe; states learned
// meanwhile win over the loaded ones.
func (t *Tracker) load(ctx context.Context) {
	if t.loaded || t.cfg.State == nil {
		return
	}
	saved, err := t.cfg.State.Load(ctx)
	if err != nil {
		t.logger.Error("alert states not loaded; alerts firing before the restart may be reported again", "error", err)
		return
	}
	t.loaded = true
	if t.reload {
		// Another replica led meanwhile: what it saved is the truth.
		t.reload = false
		t.states = make(map[string]State, len(saved))
	}
	for k, s := range saved {
		if _, ok := t.states[k]; !ok {
			t.states[k] = s
		}
	}
}

// States returns a copy of the current states.
func (t *Tracker) States() map[string]State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.states)
}

func (t *Tracker) links(st slo.Status) []Link {
	if t.cfg.Links == nil {
		return nil
	}
	return t.cfg.Links(st)
}

// alert builds the figures and the SLO file's labels of an alert.
func (t *Tracker) alert(st slo.Status, obj slo.Objective, hasObj bool, sev slo.Severity, tiers []slo.AlertState) Alert {
	a := Alert{
		Service: st.Service, SLO: st.Name, DisplayName: st.DisplayName, Severity: sev,
		Target: st.Target, Window: st.Window, Tiers: tiers,
		BurnRates: st.BurnRates, BudgetRemaining: st.ErrorBudget.Remaining,
	}
	if hasObj {
		a.Name = obj.Alerting.Name
		a.Labels = merged(obj.Labels, obj.Alerting.Labels, obj.Alerting.SeverityLabels[sev])
		a.Annotations = merged(obj.Alerting.Annotations, obj.Alerting.SeverityAnnotations[sev])
	}
	if len(st.Group) > 0 { // one value of a grouped SLO: route="/checkout"
		a.Labels = merged(a.Labels, st.Group)
	}
	return a
}

func merged(ms ...map[string]string) map[string]string {
	var out map[string]string
	for _, m := range ms {
		if len(m) == 0 {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		maps.Copy(out, m)
	}
	return out
}

// budgetPeriod names the budget period at at: the calendar period's start
// date in the window's zone, or "rolling-YYYY-MM" (the month of at, UTC)
// for a rolling window.
func budgetPeriod(st slo.Status, obj slo.Objective, hasObj bool, at time.Time) string {
	calendar := false
	if hasObj {
		calendar = obj.Window.IsCalendar()
	} else {
		// "30d" parses as a duration; "month (Europe/Paris)" does not.
		_, err := slo.ParseDuration(st.Window)
		calendar = err != nil
	}
	if !calendar {
		return "rolling-" + at.Format("2006-01")
	}
	if hasObj {
		start, _ := obj.Window.Bounds(at)
		return start.Format("2006-01-02")
	}
	return st.Range.Start.Format("2006-01-02")
}

// alertTexts writes an alert's summary and description with its figures.
func alertTexts(st slo.Status, a Alert, tiers []slo.AlertState) (summary, description string) {
	name := st.Name
	if st.DisplayName != "" {
		name = st.DisplayName
	}
	budget := "unknown"
	if r := st.ErrorBudget.Remaining; r != nil {
		budget = fmt.Sprintf("%.1f%%", *r*100)
	}
	// The tier that says most: a firing one with the highest factor, else
	// the first.
	top := tiers[0]
	for _, tr := range tiers {
		if tr.Firing && (!top.Firing || tr.Factor > top.Factor) {
			top = tr
		}
	}
	switch {
	case !a.Firing:
		summary = fmt.Sprintf("%s (%s) no longer burns its error budget too fast (%s resolved)", name, st.Service, a.Severity)
	case top.Firing:
		summary = fmt.Sprintf("%s (%s) burns its error budget at %s over %s (%s, threshold %.3g×)",
			name, st.Service, rate(st.BurnRates[top.LongWindow]), top.LongWindow, a.Severity, top.Factor)
	default:
		summary = fmt.Sprintf("%s (%s) burn-rate alert (%s) still firing; figures unknown at this evaluation", name, st.Service, a.Severity)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SLO %s of service %s: target %.4g%% over %s; error budget remaining %s.",
		st.Name, st.Service, st.Target*100, st.Window, budget)
	for _, tr := range tiers {
		state := "not firing"
		switch {
		case tr.Firing:
			state = "FIRING"
		case tr.NoData:
			state = "no data (" + tr.Reason + ")"
		case tr.Unknown:
			state = "unknown"
		}
		fmt.Fprintf(&b, " %s tier %s/%s (factor %.3g×): %s, burn rate %s over %s and %s over %s.",
			tr.Severity, tr.LongWindow, tr.ShortWindow, tr.Factor, state,
			rate(st.BurnRates[tr.LongWindow]), tr.LongWindow, rate(st.BurnRates[tr.ShortWindow]), tr.ShortWindow)
	}
	for _, e := range st.Errors {
		fmt.Fprintf(&b, " Not measured over %s: %s.", e.Window, e.Error)
	}
	return summary, b.String()
}

func rate(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return fmt.Sprintf("%.2f×", *v)
}
