package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// backtestFlags are slogate backtest's options.
type backtestFlags struct {
	config   string
	since    time.Duration
	service  string
	env      string
	interval time.Duration
	horizon  time.Duration
	output   string
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

// BacktestReport is slogate backtest -o json.
type BacktestReport struct {
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Interval string    `json:"interval"`
	Deploys  []Replay  `json:"deploys"`
	Agree    int       `json:"agree"`
	Disagree int       `json:"disagree"`
	Unknown  int       `json:"unknown"`
}

func runBacktest(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "backtest", "backtest --config FILE [--since 30d] [--service S] [--environment E] [--interval 1m] [--horizon 2h] [-o table|json]")
	var f backtestFlags
	fs.StringVar(&f.config, "config", "", "slogate's config file: SLO files, sources and the store to read deploys from (default: the embedded defaults)")
	since := fs.String("since", "30d", "replay the deploys started in this period before now (e.g. 7d, 12h)")
	fs.StringVar(&f.service, "service", "", "only this service")
	fs.StringVar(&f.env, "environment", "", "only this environment")
	fs.DurationVar(&f.interval, "interval", time.Minute, "time between asks, from each deploy's start (Argo's interval, Flagger's analysis.interval)")
	fs.DurationVar(&f.horizon, "horizon", 2*time.Hour, "stop asking a deploy this long after its start")
	fs.StringVar(&f.output, "o", "table", "output: table or json")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageError("backtest takes no arguments (got %q)", rest)
	}
	d, err := slo.ParseDuration(*since)
	if err != nil || d <= 0 {
		return usageError("--since %q: want a positive duration such as 30d", *since)
	}
	f.since = d
	switch {
	case f.interval <= 0:
		return usageError("--interval must be positive")
	case f.horizon < f.interval:
		return usageError("--horizon must be at least --interval")
	case f.output != "table" && f.output != "json":
		return usageError("-o %q: want table or json", f.output)
	}
	cfg := DefaultConfig()
	if f.config != "" {
		if cfg, err = LoadConfig(f.config, env.getenv); err != nil {
			return usageError("%v", err)
		}
	}
	// The replay only reads: no listener, no scheduled evaluation, no
	// notifications. Its answers are recorded as backtests (audit log).
	cfg.Notify = NotifyConfig{}
	logger := newLogger(env, LogConfig{Level: "warn", Format: cfg.Log.Format})
	s, err := newServer(ctx, cfg, sourceFlags{}, logger)
	if err != nil {
		return err
	}
	defer s.close()
	now := time.Now().UTC()
	report, err := backtest(ctx, s.engine, s.measurer, s.slos.Load(), s.store, f, now, env.stderr)
	if err != nil {
		return err
	}
	if f.output == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	printBacktest(env.stdout, report)
	return nil
}

// backtest replays every deploy of the period under the policies in force
// now.
func backtest(ctx context.Context, e *gate.Engine, m *gate.Measurer, set *slo.Set, st store.Store, f backtestFlags, now time.Time, progress io.Writer) (BacktestReport, error) {
	r := BacktestReport{Since: now.Add(-f.since), Until: now, Interval: f.interval.String(), Deploys: []Replay{}}
	var deploys []slogate.Deploy
	filter := store.DeployFilter{Service: f.service, Environment: f.env, Since: r.Since, Limit: 500}
	for {
		page, next, err := st.ListDeploys(ctx, filter)
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
func replay(ctx context.Context, e *gate.Engine, d slogate.Deploy, f backtestFlags, now time.Time) Replay {
	rp := Replay{DeployID: d.ID, Service: d.Service, Environment: d.Environment, Version: d.Version,
		StartedAt: d.StartedAt, Status: d.Status, Decision: slogate.Wait}
	end := d.StartedAt.Add(f.horizon)
	if d.FinishedAt != nil && d.FinishedAt.Before(end) {
		end = *d.FinishedAt
	}
	if now.Before(end) {
		end = now
	}
	for at := d.StartedAt.Add(f.interval); !at.After(end); at = at.Add(f.interval) {
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
func pagedAfter(ctx context.Context, m *gate.Measurer, set *slo.Set, d slogate.Deploy, rp Replay, now time.Time) bool {
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

func printBacktest(w io.Writer, r BacktestReport) {
	fmt.Fprintf(w, "backtest of %d deploys from %s to %s, asked every %s\n\n", len(r.Deploys),
		r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), r.Interval)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEPLOY\tSERVICE\tENV\tVERSION\tSTARTED\tGATE\tAFTER\tOUTCOME\tPAGE AFTER\tAGREES\tREASON")
	for _, d := range r.Deploys {
		after := "-"
		if d.AfterMinutes != nil {
			after = fmt.Sprintf("%.0fm", *d.AfterMinutes)
		}
		reason := d.Reason
		if d.Error != "" {
			reason = "error: " + d.Error
		}
		decision := string(d.Decision)
		if d.DryRun != nil {
			decision += " (dry run: " + string(d.DryRun.Decision) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", d.DeployID, d.Service, d.Environment, d.Version,
			d.StartedAt.UTC().Format("2006-01-02 15:04"), decision, after, d.Status, d.PageAfter, d.Agreement,
			strings.Join(strings.Fields(reason), " "))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d agree, %d disagree, %d unknown (still running or no decision)\n", r.Agree, r.Disagree, r.Unknown)
}
