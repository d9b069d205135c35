// Package backtest replays the gate over recorded deploys: each deploy of
// a period is asked about every interval from its start, the way Argo
// Rollouts or Flagger ask, at that instant (gate.Request.At), under the
// policies in force now, and the first decision is set beside what
// happened to the deploy (its status, a page that followed it). slogate
// backtest prints the Report; cmd only parses its flags.
package backtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// Options choose the deploys and how they are asked about.
type Options struct {
	// Since: the deploys started in this period before now.
	Since time.Duration
	// Service and Environment, when set, keep only theirs.
	Service, Environment string
	// Interval is the time between asks, from each deploy's start.
	Interval time.Duration
	// Horizon: no ask later than this after a deploy's start.
	Horizon time.Duration
}

// Gate answers asks at an instant. *gate.Engine satisfies it.
type Gate interface {
	Evaluate(ctx context.Context, req gate.Request) (gate.Answer, error)
}

// Measurer gives the SLOs' figures at an instant. *gate.Measurer
// satisfies it.
type Measurer interface {
	Statuses(ctx context.Context, objs []slo.Objective, at time.Time) []slo.Status
}

// Deploys lists recorded deploys. store.Store satisfies it.
type Deploys interface {
	ListDeploys(ctx context.Context, f store.DeployFilter) ([]slogate.Deploy, string, error)
}

// Config is what a replay reads. Everything but Progress is required.
type Config struct {
	Gate     Gate
	Measurer Measurer
	SLOs     *slo.Set
	Deploys  Deploys
	// Progress, when set, gets a line per deploy replayed.
	Progress io.Writer
}

// Replay is what the gate would have said of one recorded deploy, asked
// every interval from its start the way Argo Rollouts or Flagger ask,
// beside what happened to it.
type Replay struct {
	DeployID    string    `json:"deployId"`
	Service     string    `json:"service"`
	Environment string    `json:"environment"`
	Version     string    `json:"version"`
	StartedAt   time.Time `json:"startedAt"`
	// Decision is the first promote or halt (the one a client acts on),
	// or wait when none came before the deploy finished or the horizon.
	// Under a dry run it is the answer the client got when the real
	// verdict (DryRun) first decided.
	Decision     slogate.Decision `json:"decision"`
	DecidedAt    *time.Time       `json:"decidedAt,omitempty"`
	AfterMinutes *float64         `json:"afterMinutes,omitempty"`
	Reason       string           `json:"reason"`
	EvaluationID string           `json:"evaluationId,omitempty"`
	Asks         int              `json:"asks"`
	// DryRun is the real verdict a dry-run policy kept from the decision.
	DryRun *gate.Outcome `json:"dryRun,omitempty"`
	// Status is the deploy's own outcome; PageAfter whether a page-level
	// burn-rate alert of the service fired within an hour of the deploy's
	// end (or of the decision, for a deploy still running).
	Status    string `json:"status"`
	PageAfter bool   `json:"pageAfter"`
	// Agreement: "agree" (promote of a deploy that went well, halt of one
	// that did not), "disagree", or "unknown" (still running, or no
	// decision).
	Agreement string `json:"agreement"`
	// Error is set when the replay could not be run (a source down).
	Error string `json:"error,omitempty"`
}

// Report is the replay of every deploy of a period (slogate backtest -o
// json).
type Report struct {
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Interval string    `json:"interval"`
	Deploys  []Replay  `json:"deploys"`
	Agree    int       `json:"agree"`
	Disagree int       `json:"disagree"`
	Unknown  int       `json:"unknown"`
}

// Run replays every deploy of the period before now under the policies in
// force now.
func Run(ctx context.Context, cfg Config, f Options, now time.Time) (Report, error) {
	switch {
	case cfg.Gate == nil || cfg.Measurer == nil || cfg.SLOs == nil || cfg.Deploys == nil:
		return Report{}, errors.New("backtest: gate, measurer, SLOs and deploys are required")
	case f.Since <= 0 || f.Interval <= 0 || f.Horizon < f.Interval:
		return Report{}, fmt.Errorf("backtest: since %s, interval %s, horizon %s: want a positive period and interval, and a horizon of at least the interval", f.Since, f.Interval, f.Horizon)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	e, m, set := cfg.Gate, cfg.Measurer, cfg.SLOs
	r := Report{Since: now.Add(-f.Since), Until: now, Interval: f.Interval.String(), Deploys: []Replay{}}
	var deploys []slogate.Deploy
	filter := store.DeployFilter{Service: f.Service, Environment: f.Environment, Since: r.Since, Limit: 500}
	for {
		page, next, err := cfg.Deploys.ListDeploys(ctx, filter)
		if err != nil {
			return r, fmt.Errorf("listing deploys: %w", err)
		}
		deploys = append(deploys, page...)
		if next == "" {
			break
		}
		filter.Cursor = next
	}
	// Oldest first: the report reads as a history.
	for i, j := 0, len(deploys)-1; i < j; i, j = i+1, j-1 {
		deploys[i], deploys[j] = deploys[j], deploys[i]
	}
	for i, d := range deploys {
		if len(set.ByService(d.Service)) == 0 {
			continue // a service without SLOs has no gate
		}
		fmt.Fprintf(progress, "backtest %d/%d: %s %s/%s %s\n", i+1, len(deploys), d.ID, d.Service, d.Environment, d.Version)
		rp := replay(ctx, e, d, f, now)
		rp.PageAfter = pagedAfter(ctx, m, set, d, rp, now)
		rp.Agreement = agreement(rp)
		switch rp.Agreement {
		case "agree":
			r.Agree++
		case "disagree":
			r.Disagree++
		default:
			r.Unknown++
		}
		r.Deploys = append(r.Deploys, rp)
	}
	return r, nil
}

// replay asks the gate about one deploy at every interval from its start
// until the first promote or halt, its end, the horizon or now.
func replay(ctx context.Context, e Gate, d slogate.Deploy, f Options, now time.Time) Replay {
	rp := Replay{DeployID: d.ID, Service: d.Service, Environment: d.Environment, Version: d.Version,
		StartedAt: d.StartedAt, Status: d.Status, Decision: slogate.Wait}
	end := d.StartedAt.Add(f.Horizon)
	if d.FinishedAt != nil && d.FinishedAt.Before(end) {
		end = *d.FinishedAt
	}
	if now.Before(end) {
		end = now
	}
	for at := d.StartedAt.Add(f.Interval); !at.After(end); at = at.Add(f.Interval) {
		rp.Asks++
		a, err := e.Evaluate(ctx, gate.Request{Service: d.Service, Environment: d.Environment, DeployID: d.ID, At: at})
		var sf *gate.SourceFaultError
		switch {
		case errors.As(err, &sf):
			// A client retries a fault: so does the replay, at the next
			// interval.
			rp.Error = sf.Answer.Reason
			continue
		case err != nil:
			rp.Error = err.Error()
			return rp
		}
		rp.Reason, rp.EvaluationID, rp.DryRun, rp.Error = a.Reason, a.EvaluationID, a.DryRun, ""
		// A dry run is replayed until its real verdict decides: that is
		// what the policy would do once enforced.
		real := a.Decision
		if a.DryRun != nil {
			real = a.DryRun.Decision
		}
		if real == slogate.Promote || real == slogate.Halt {
			rp.Decision = a.Decision
			when := at
			mins := at.Sub(d.StartedAt).Minutes()
			rp.DecidedAt, rp.AfterMinutes = &when, &mins
			return rp
		}
	}
	return rp
}

// pagedAfter reports whether a page-level burn-rate alert of the service
// fired within an hour after the deploy ended (or after its decision),
// sampled every 10 minutes.
func pagedAfter(ctx context.Context, m Measurer, set *slo.Set, d slogate.Deploy, rp Replay, now time.Time) bool {
	from := d.StartedAt
	switch {
	case d.FinishedAt != nil:
		from = *d.FinishedAt
	case rp.DecidedAt != nil:
		from = *rp.DecidedAt
	}
	for at := from.Add(10 * time.Minute); !at.After(from.Add(time.Hour)) && !at.After(now); at = at.Add(10 * time.Minute) {
		for _, st := range m.Statuses(ctx, set.ByService(d.Service), at) {
			for _, a := range st.Alerts {
				if a.Severity == slo.SeverityPage && a.Firing {
					return true
				}
			}
		}
	}
	return false
}

// agreement compares the replayed decision with what happened: a deploy
// went badly when it failed, was rolled back, or a page followed it.
func agreement(rp Replay) string {
	bad := rp.Status == slogate.StatusFailed || rp.Status == slogate.StatusRolledBack || rp.PageAfter
	good := rp.Status == slogate.StatusSucceeded && !rp.PageAfter
	decision := rp.Decision
	if rp.DryRun != nil && (rp.DryRun.Decision == slogate.Promote || rp.DryRun.Decision == slogate.Halt) {
		decision = rp.DryRun.Decision // a dry run is judged by its real verdict
	}
	switch {
	case decision == slogate.Halt && bad, decision == slogate.Promote && good:
		return "agree"
	case decision == slogate.Halt && good, decision == slogate.Promote && bad:
		return "disagree"
	}
	return "unknown"
}
