package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slogate/slogate/alerting/github"
	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/gate/dora"
	"github.com/slogate/slogate/internal/alertlog"
	"github.com/slogate/slogate/internal/dorametrics"
	"github.com/slogate/slogate/slo"
)

// newDelivery is the DORA keys' source of burns: the alert record, and
// the sources through the measurer before it.
func (s *server) newDelivery(measure bool) (*dora.History, error) {
	cfg := dora.HistoryConfig{
		Objectives: func(service string) []slo.Objective { return s.slos.Load().ByService(service) },
		Record:     alertlog.Record{Store: s.store},
	}
	if measure {
		cfg.Counter = s.measurer
	}
	return dora.NewHistory(cfg)
}

// doraDeps sets up the DORA keys: their burns (and the gauges on
// /metrics, which read the record only), the mark of the alert record's
// start when the tracker runs, and GitHub's compare API with notify.github's
// token when it is configured.
func (s *server) doraDeps(ctx context.Context) (api.Delivery, api.CommitLister, error) {
	delivery, err := s.newDelivery(true)
	if err != nil {
		return nil, nil, err
	}
	recordOnly, err := s.newDelivery(false)
	if err != nil {
		return nil, nil, err
	}
	if err := s.registry.Register(dorametrics.New(s.store, recordOnly, time.Minute, s.logger)); err != nil {
		return nil, nil, err
	}
	if s.dispatcher != nil {
		if err := alertlog.MarkTracking(ctx, s.store); err != nil {
			s.logger.Warn("the start of the alert record was not written: DORA keys will measure past burns from the sources", "err", err)
		}
	}
	var commits api.CommitLister
	if g := s.cfg.Notify.GitHub; g != nil {
		c, err := github.NewCompare(g.URL, g.Token, g.Timeout.Duration)
		if err != nil {
			return nil, nil, usageError("notify.github: %v", err)
		}
		commits = c
	}
	return delivery, commits, nil
}

// runDORA prints the four keys a slogate server computes.
func runDORA(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "dora", "dora --server URL --token T [--service S] [--environment E] [--window 30d] [--attribution 1h] [--at TIME] [-o table|json]")
	var sf serverFlags
	sf.register(fs, env)
	q := url.Values{}
	service := fs.String("service", "", "service (default: every service)")
	environment := fs.String("environment", "", "environment (default: every environment)")
	window := fs.String("window", "", "the window's length, e.g. 30d or 12w (default 30d)")
	attribution := fs.String("attribution", "", "how long after a deploy finished a burn is its doing (default 1h)")
	at := fs.String("at", "", "RFC 3339 end of the window (default now)")
	output := fs.String("o", "table", "output: table or json (the server's answer)")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageError("dora takes no arguments (got %q)", rest)
	}
	if *output != "table" && *output != "json" {
		return usageError("-o %q: want table or json", *output)
	}
	for k, v := range map[string]string{"service": *service, "environment": *environment, "window": *window, "attribution": *attribution, "at": *at} {
		if v != "" {
			q.Set(k, v)
		}
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if _, err := c.do(ctx, http.MethodGet, "/v1/dora", q, nil, &raw, nil); err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("asking for the DORA keys: %w", err)}
	}
	if *output == "json" {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	var r api.DORA
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("decoding the DORA keys: %w", err)
	}
	printDORA(env.stdout, r)
	return nil
}

func printDORA(w io.Writer, r api.DORA) {
	scope := func(v, all string) string {
		if v == "" {
			return all
		}
		return v
	}
	fmt.Fprintf(w, "DORA keys of %s in %s, %s to %s (attribution %s)\n\n",
		scope(r.Service, "every service"), scope(r.Environment, "every environment"),
		r.Window.Start.UTC().Format(time.RFC3339), r.Window.End.UTC().Format(time.RFC3339), seconds(&r.Attribution))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tDETAIL")
	d := r.Deployments
	fmt.Fprintf(tw, "deployment frequency\t%s\t%d deploys, %.2f a day, %d deploy days\n", d.Band, d.Count, d.PerDay, d.DeployDays)
	l := r.LeadTime
	fmt.Fprintf(tw, "lead time for changes\t%s (p90 %s)\t%d samples, %d succeeded deploys without commit times\n", seconds(l.Median), seconds(l.P90), l.Samples, l.Missing)
	cfr := "-"
	if v := r.ChangeFailureRate.Ratio; v != nil {
		cfr = fmt.Sprintf("%.1f%%", *v*100)
	}
	fmt.Fprintf(tw, "change failure rate\t%s\t%d of %d deploys\n", cfr, r.ChangeFailureRate.Failures, r.ChangeFailureRate.Deployments)
	fmt.Fprintf(tw, "time to restore\t%s\t%d samples\n", seconds(r.TimeToRestore.Median), r.TimeToRestore.Samples)
	tw.Flush()
	if len(r.Failures) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FAILURE\tKIND\tSTART\tRESTORED\tREASON")
		for _, f := range r.Failures {
			restored := "not yet"
			if f.RestoredAt != nil {
				restored = f.RestoredAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.DeployID, f.Kind, f.Start.UTC().Format(time.RFC3339), restored, f.Reason)
		}
		tw.Flush()
	}
	s := r.Sources
	fmt.Fprintf(w, "\nburns: %d recorded", s.Recorded)
	if s.RecordedSince != nil {
		fmt.Fprintf(w, " (record since %s)", s.RecordedSince.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, ", %d measured in %d queries to the sources (limit %d)", s.Measured, s.Queries, s.QueryLimit)
	if s.Truncated {
		fmt.Fprint(w, "; the limit cut the search: a burn may be missing")
	}
	fmt.Fprintln(w)
}

// seconds prints a duration given in seconds, "-" for none.
func seconds(v *float64) string {
	if v == nil {
		return "-"
	}
	d := time.Duration(*v * float64(time.Second)).Round(time.Second)
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1fd", d.Hours()/24)
	}
	return d.String()
}

// commitJSON is a commit as POST /v1/deploys takes it.
type commitJSON struct {
	SHA  string `json:"sha"`
	Time string `json:"time,omitempty"`
}

// maxGitCommits bounds the commits read from git for one deploy (the
// API's limit).
const maxGitCommits = 1000

// deployCommits lists the commits a deploy of head ships, from the git
// checkout in dir: those in prev..head, prev being given or the commit of
// the newest deploy of the service and environment on the server. Without
// a previous commit, or when git cannot compare them (a shallow clone), it
// is head alone. Problems are reported on stderr and leave the deploy
// without commits; they never stop it from being recorded.
func deployCommits(ctx context.Context, env *environment, c *apiClient, dir, service, environment, head, prev string) []commitJSON {
	if prev == "" {
		var err error
		if prev, err = previousDeployCommit(ctx, c, service, environment, head); err != nil {
			fmt.Fprintf(env.stderr, "slogate: the previous deploy's commit could not be read (%v): recording %s alone\n", err, head)
		}
	}
	if prev != "" {
		cs, err := gitLog(ctx, dir, prev+".."+head, maxGitCommits)
		if err == nil {
			return cs
		}
		fmt.Fprintf(env.stderr, "slogate: git cannot list %s..%s (%v): recording %s alone\n", prev, head, err, head)
	}
	cs, err := gitLog(ctx, dir, head, 1)
	if err != nil {
		fmt.Fprintf(env.stderr, "slogate: no commits recorded: git cannot read %s in %s (%v)\n", head, dir, err)
		return nil
	}
	return cs
}

// previousDeployCommit is the commit of the newest deploy of the service
// and environment that names one other than head.
func previousDeployCommit(ctx context.Context, c *apiClient, service, environment, head string) (string, error) {
	var list struct {
		Items []struct {
			Commit string `json:"commit"`
		} `json:"items"`
	}
	q := url.Values{"service": {service}, "environment": {environment}, "limit": {"20"}}
	if _, err := c.do(ctx, http.MethodGet, "/v1/deploys", q, nil, &list, nil); err != nil {
		return "", err
	}
	for _, d := range list.Items {
		if d.Commit != "" && d.Commit != head {
			return d.Commit, nil
		}
	}
	return "", nil
}

// gitLog runs git log over rev in dir: at most max commits, each with its
// sha and author date (when the change was written).
func gitLog(ctx context.Context, dir, rev string, max int) ([]commitJSON, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "log", "--format=%H %aI", fmt.Sprintf("--max-count=%d", max), "--end-of-options", rev, "--")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return nil, errors.New(strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, err
	}
	var cs []commitJSON
	for line := range strings.Lines(string(out)) {
		sha, at, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return nil, fmt.Errorf("git log: commit %s: date %q: %v", sha, at, err)
		}
		cs = append(cs, commitJSON{SHA: sha, Time: t.UTC().Format(time.RFC3339)})
	}
	return cs, nil
}
