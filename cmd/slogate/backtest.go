package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slogate/slogate/internal/backtest"
	"github.com/slogate/slogate/slo"
)

// backtestFlags are slogate backtest's options.
type backtestFlags struct {
	config string
	output string
	backtest.Options
}

func runBacktest(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "backtest", "backtest --config FILE [--since 30d] [--service S] [--environment E] [--interval 1m] [--horizon 2h] [-o table|json]")
	var f backtestFlags
	fs.StringVar(&f.config, "config", "", "slogate's config file: SLO files, sources and the store to read deploys from (default: the embedded defaults)")
	since := fs.String("since", "30d", "replay the deploys started in this period before now (e.g. 7d, 12h)")
	fs.StringVar(&f.Service, "service", "", "only this service")
	fs.StringVar(&f.Environment, "environment", "", "only this environment")
	fs.DurationVar(&f.Interval, "interval", time.Minute, "time between asks, from each deploy's start (Argo's interval, Flagger's analysis.interval)")
	fs.DurationVar(&f.Horizon, "horizon", 2*time.Hour, "stop asking a deploy this long after its start")
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
	f.Since = d
	switch {
	case f.Interval <= 0:
		return usageError("--interval must be positive")
	case f.Horizon < f.Interval:
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
	report, err := backtest.Run(ctx, backtest.Config{Gate: s.engine, Measurer: s.measurer, SLOs: s.slos.Load(), Deploys: s.store, Progress: env.stderr}, f.Options, now)
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

func printBacktest(w io.Writer, r backtest.Report) {
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
