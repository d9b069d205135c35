package api

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// Records are the stored decisions and audit log that the history API and
// the web UI list. store.Store satisfies it; when Deps.Records is nil and
// Deps.Store has these methods, the server uses the store.
type Records interface {
	ListDecisions(ctx context.Context, f store.DecisionFilter) ([]slogate.DecisionRecord, string, error)
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, string, error)
	ActiveOverride(ctx context.Context, service, env string, at time.Time) (store.Override, bool, error)
}

// History is an objective's figures over a span, for charts: each point is
// the objective measured at that instant (the same figures as GET
// /v1/slos/{name}?at=), with the deploys of its service and the gate's
// answers about them in the span.
type History struct {
	Name    string    `json:"name"`
	Service string    `json:"service"`
	Target  float64   `json:"target"`
	Window  string    `json:"window"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Step    string    `json:"step"`
	// Units of the figures: sli, errorRatio and budgetRemaining are
	// ratios (0.999 is 99.9 %), burn rates multiples of the budget's
	// allowed pace.
	Units     map[string]string `json:"units"`
	Points    []HistoryPoint    `json:"points"`
	Deploys   []Deploy          `json:"deploys"`
	Decisions []DecisionMark    `json:"decisions"`
}

// HistoryPoint is one instant of a History; a figure that could not be
// measured is null and its error is listed.
type HistoryPoint struct {
	At              time.Time           `json:"at"`
	SLI             *float64            `json:"sli"`
	ErrorRatio      *float64            `json:"errorRatio"`
	BudgetRemaining *float64            `json:"budgetRemaining"`
	BurnRates       map[string]*float64 `json:"burnRates"`
	Errors          []string            `json:"errors,omitempty"`
}

// DecisionMark is a gate answer drawn on a chart.
type DecisionMark struct {
	EvaluationID string           `json:"evaluationId"`
	Decision     slogate.Decision `json:"decision"`
	Reason       string           `json:"reason"`
	Environment  string           `json:"environment"`
	Version      string           `json:"version,omitempty"`
	DeployID     string           `json:"deployId,omitempty"`
	EvaluatedAt  time.Time        `json:"evaluatedAt"`
}

// History limits: points per answer, and objectives measured at once.
const (
	maxHistoryPoints   = 500
	historyConcurrency = 8
	historyListLimit   = 1000
)

var historyUnits = map[string]string{"sli": "ratio", "errorRatio": "ratio", "budgetRemaining": "ratio", "burnRate": "x"}

// historyParams reads from, to (RFC 3339; default the last 6 hours) and
// step (a duration; default a 60th of the span, at least 10s).
func historyParams(c *gin.Context, now time.Time) (from, to time.Time, step time.Duration, err error) {
	var f fields
	to = now
	if s := c.Query("to"); s != "" {
		to = parseTime(&f, "to", s)
	}
	from = to.Add(-6 * time.Hour)
	if s := c.Query("from"); s != "" {
		from = parseTime(&f, "from", s)
	}
	if len(f) == 0 && !from.Before(to) {
		f.add("from", "must be before to")
	}
	if s := c.Query("step"); s != "" {
		d, perr := time.ParseDuration(s)
		switch {
		case perr != nil:
			f.add("step", "must be a duration such as 30s or 5m, got %q", s)
		case d < time.Second:
			f.add("step", "must be at least 1s")
		default:
			step = d
		}
	}
	if len(f) > 0 {
		return from, to, 0, f.err()
	}
	if step == 0 {
		step = max(to.Sub(from)/60, 10*time.Second).Round(time.Second)
	}
	if n := int(to.Sub(from)/step) + 1; n > maxHistoryPoints {
		f.add("step", "gives %d points; at most %d: take a longer step or a shorter span", n, maxHistoryPoints)
	}
	return from, to, step, f.err()
}

func handleSLOHistory(s SLOs, st Store, rec Records, clock func() time.Time) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		from, to, step, err := historyParams(c, clock().UTC())
		if err != nil {
			fail(c, err)
			return
		}
		h, ok, err := sloHistory(ctx, s, st, rec, c.Param("name"), from, to, step)
		if err != nil {
			fail(c, err)
			return
		}
		if !ok {
			fail(c, notFound("no SLO is named "+c.Param("name")))
			return
		}
		writeJSON(c, http.StatusOK, h)
	}
}

// sloHistory measures the objective at every step from from to to (ends
// included), a few instants at once.
func sloHistory(ctx context.Context, s SLOs, st Store, rec Records, name string, from, to time.Time, step time.Duration) (History, bool, error) {
	var ats []time.Time
	for at := from; !at.After(to); at = at.Add(step) {
		ats = append(ats, at.UTC())
	}
	points := make([]HistoryPoint, len(ats))
	found := make([]bool, len(ats))
	var head slo.Status
	sem := make(chan struct{}, historyConcurrency)
	var wg sync.WaitGroup
	for i, at := range ats {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			status, ok := s.Status(ctx, name, at)
			if !ok {
				return
			}
			found[i] = true
			if i == len(ats)-1 {
				head = status // read after wg.Wait
			}
			p := HistoryPoint{At: at, SLI: status.SLI.Ratio, ErrorRatio: status.SLI.ErrorRatio,
				BudgetRemaining: status.ErrorBudget.Remaining, BurnRates: status.BurnRates}
			for _, e := range status.Errors {
				p.Errors = append(p.Errors, e.Window+": "+e.Error)
			}
			points[i] = p
		})
	}
	wg.Wait()
	if !found[len(ats)-1] {
		return History{}, false, nil
	}
	h := History{Name: head.Name, Service: head.Service, Target: head.Target, Window: head.Window,
		From: from.UTC(), To: to.UTC(), Step: step.String(), Units: historyUnits, Points: points,
		Deploys: []Deploy{}, Decisions: []DecisionMark{}}
	deploys, err := deploysIn(ctx, st, head.Service, "", from, to)
	if err != nil {
		return History{}, false, err
	}
	for _, d := range deploys {
		h.Deploys = append(h.Deploys, deployOut(d))
	}
	if rec != nil {
		ds, err := decisionsIn(ctx, rec, store.DecisionFilter{Service: head.Service, Since: from}, to)
		if err != nil {
			return History{}, false, err
		}
		for _, d := range ds {
			h.Decisions = append(h.Decisions, decisionMark(d))
		}
	}
	return h, true, nil
}

func decisionMark(d slogate.DecisionRecord) DecisionMark {
	return DecisionMark{EvaluationID: d.EvaluationID, Decision: d.Decision, Reason: d.Reason, Environment: d.Environment,
		Version: d.Version, DeployID: d.DeployID, EvaluatedAt: d.EvaluatedAt.UTC()}
}

// deploysIn are the deploys of a service (in env, or every environment)
// that ran during [from, to]: started by to, not finished before from;
// oldest first, at most historyListLimit.
func deploysIn(ctx context.Context, st Store, service, env string, from, to time.Time) ([]slogate.Deploy, error) {
	var out []slogate.Deploy
	f := store.DeployFilter{Service: service, Environment: env, Before: to, Limit: 200}
	for len(out) < historyListLimit {
		page, next, err := st.ListDeploys(ctx, f)
		if err != nil {
			return nil, err
		}
		stop := false
		for _, d := range page {
			if d.FinishedAt != nil && d.FinishedAt.Before(from) {
				// Older deploys may still be running (a long canary), so
				// keep looking, but not past a day before the span.
				if d.StartedAt.Before(from.Add(-24 * time.Hour)) {
					stop = true
				}
				continue
			}
			out = append(out, d)
		}
		if stop || next == "" {
			break
		}
		f.Cursor = next
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out, nil
}

// decisionsIn are the decisions of the filter evaluated by to, oldest
// first, at most historyListLimit.
func decisionsIn(ctx context.Context, rec Records, f store.DecisionFilter, to time.Time) ([]slogate.DecisionRecord, error) {
	var out []slogate.DecisionRecord
	f.Limit = 500
	for len(out) < historyListLimit {
		page, next, err := rec.ListDecisions(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, d := range page {
			if to.IsZero() || !d.EvaluatedAt.After(to) {
				out = append(out, d)
			}
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].EvaluatedAt.Before(out[j].EvaluatedAt) })
	return out, nil
}
