package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
)

// apiClient calls a slogate server's API.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
	// userAgent names the CLI in the server's logs.
	userAgent string
}

// serverFlags are --server and --token, defaulting to SLOGATE_SERVER and
// SLOGATE_TOKEN.
type serverFlags struct {
	server, token string
	timeout       time.Duration
}

func (s *serverFlags) register(fs *flag.FlagSet, env *environment) {
	fs.StringVar(&s.server, "server", env.getenv("SLOGATE_SERVER"), "slogate server URL (default $SLOGATE_SERVER)")
	fs.StringVar(&s.token, "token", env.getenv("SLOGATE_TOKEN"), "bearer token (default $SLOGATE_TOKEN)")
	fs.DurationVar(&s.timeout, "request-timeout", 30*time.Second, "deadline of each HTTP request")
}

func (s *serverFlags) client() (*apiClient, error) {
	if s.server == "" {
		return nil, usageError("--server (or SLOGATE_SERVER) is required, e.g. http://127.0.0.1:8080")
	}
	u, err := url.Parse(s.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("--server %q: want an http:// or https:// URL", s.server)
	}
	return &apiClient{base: u, token: s.token, http: &http.Client{Timeout: s.timeout}, userAgent: "slogate-cli/" + version}, nil
}

// problem is an application/problem+json body.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// httpError is an answer outside 2xx.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.msg) }

// do sends a request with a JSON body (nil for none) and decodes a 2xx
// JSON answer into out.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any, header http.Header) (int, error) {
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var p problem
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &p) == nil && (p.Title != "" || p.Detail != "") {
			msg = p.Title
			if p.Detail != "" {
				msg += ": " + p.Detail
			}
			for _, fe := range p.Errors {
				msg += fmt.Sprintf("; %s: %s", fe.Field, fe.Message)
			}
		}
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return resp.StatusCode, &httpError{status: resp.StatusCode, msg: msg}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding the answer of %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func runDeploy(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "deploy", "deploy --server URL --token T --service S --environment E --version V [--previous-version V] [--commit SHA] [--pipeline-url URL] [--strategy rolling|canary|bluegreen] [--label k=v]...")
	var sf serverFlags
	sf.register(fs, env)
	var d struct {
		Service         string            `json:"service"`
		Environment     string            `json:"environment"`
		Version         string            `json:"version"`
		PreviousVersion string            `json:"previousVersion,omitempty"`
		Commit          string            `json:"commit,omitempty"`
		PipelineURL     string            `json:"pipelineUrl,omitempty"`
		Strategy        string            `json:"strategy,omitempty"`
		Labels          map[string]string `json:"labels,omitempty"`
		StartedAt       string            `json:"startedAt,omitempty"`
		Commits         []commitJSON      `json:"commits,omitempty"`
	}
	fs.StringVar(&d.Service, "service", "", "service (required)")
	fs.StringVar(&d.Environment, "environment", "", "environment (required)")
	fs.StringVar(&d.Version, "version", "", "version being deployed (required)")
	fs.StringVar(&d.PreviousVersion, "previous-version", "", "version it replaces (the canary baseline)")
	fs.StringVar(&d.Commit, "commit", "", "commit SHA")
	fs.StringVar(&d.PipelineURL, "pipeline-url", "", "link to the pipeline run")
	fs.StringVar(&d.Strategy, "strategy", "", "rolling, canary or bluegreen")
	fs.StringVar(&d.StartedAt, "started-at", "", "when the deploy began, RFC 3339 (default now)")
	var labels stringList
	fs.Var(&labels, "label", "label key=value (repeatable)")
	prevCommit := fs.String("previous-commit", "", "commit of the previous deploy (default: the server's newest deploy of the service and environment)")
	gitDir := fs.String("git-dir", ".", "git checkout whose commits previous..commit the deploy ships (\"\": send none)")
	key := fs.String("idempotency-key", "", "Idempotency-Key header: the same key twice records the deploy once (default: derived from the deploy and the CI run attempt: GITHUB_RUN_ID+GITHUB_RUN_ATTEMPT, CI_JOB_ID or BUILD_TAG; none outside CI)")
	output := fs.String("o", "id", "output: id (the deploy id alone) or json")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"--service": d.Service, "--environment": d.Environment, "--version": d.Version} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return usageError("%s required", strings.Join(missing, ", "))
	}
	if d.StartedAt != "" {
		if _, err := time.Parse(time.RFC3339, d.StartedAt); err != nil {
			return usageError("--started-at %q: want an RFC 3339 time such as 2026-11-21T12:00:00Z", d.StartedAt)
		}
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return usageError("--label %q: want key=value", l)
		}
		if d.Labels == nil {
			d.Labels = map[string]string{}
		}
		d.Labels[k] = v
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	if *key == "" {
		*key = deployKey(env.getenv, d.Service, d.Environment, d.Version)
	}
	if d.Commit != "" && *gitDir != "" {
		d.Commits = deployCommits(ctx, env, c, *gitDir, d.Service, d.Environment, d.Commit, *prevCommit)
	}
	var out map[string]any
	h := http.Header{}
	if *key != "" {
		h.Set("Idempotency-Key", *key)
	}
	status, err := c.do(ctx, http.MethodPost, "/v1/deploys", nil, d, &out, h)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("recording the deploy: %w", err)}
	}
	if status == http.StatusOK {
		// The key was used before: this is that attempt's deploy, with its
		// start time, not a new one.
		fmt.Fprintf(env.stderr, "deploy %v was recorded before with Idempotency-Key %q (a retry of the same attempt): nothing new stored\n", out["id"], *key)
	}
	if *output == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintln(env.stdout, out["id"])
	return nil
}

func runCheck(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "check", "check --server URL --token T --service S --environment E [--version V] [--deploy-id ID] [--baseline-version V] [--at TIME] [--wait 15m] [--interval 30s] [-o text|json]")
	var sf serverFlags
	sf.register(fs, env)
	q := url.Values{}
	service := fs.String("service", "", "service (required)")
	environment := fs.String("environment", "", "environment (required)")
	ver := fs.String("version", "", "version to judge")
	deployID := fs.String("deploy-id", "", "deploy to judge (from slogate deploy)")
	baseline := fs.String("baseline-version", "", "version to compare a canary with")
	at := fs.String("at", "", "RFC 3339 instant: the answer the gate would have given then")
	wait := fs.Duration("wait", 0, "ask again every --interval while the answer is wait, up to this long (0: ask once)")
	interval := fs.Duration("interval", 30*time.Second, "time between asks with --wait")
	output := fs.String("o", "text", "output: text or json (the last answer)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *service == "" || *environment == "" {
		return usageError("--service and --environment are required")
	}
	if *interval <= 0 {
		return usageError("--interval must be positive")
	}
	for k, v := range map[string]string{"service": *service, "environment": *environment, "version": *ver, "deployId": *deployID, "baselineVersion": *baseline, "at": *at} {
		if v != "" {
			q.Set(k, v)
		}
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	began := time.Now()
	deadline := began.Add(*wait)
	var a gate.Answer
	for attempt := 1; ; attempt++ {
		status, err := c.do(ctx, http.MethodGet, "/v1/gate", q, nil, &a, nil)
		var he *httpError
		switch {
		case err == nil:
		case errors.As(err, &he) && status < 500 && status != http.StatusTooManyRequests:
			return &exitError{code: exitUsage, err: fmt.Errorf("asking the gate: %w", err)}
		case time.Now().Add(*interval).After(deadline) || ctx.Err() != nil:
			return &exitError{code: exitUsage, err: fmt.Errorf("asking the gate: %w", err)}
		default:
			fmt.Fprintf(env.stderr, "attempt %d: %v; asking again in %s\n", attempt, err, *interval)
			if !sleep(ctx, *interval) {
				return &exitError{code: exitUsage, err: ctx.Err()}
			}
			continue
		}
		if a.Decision != slogate.Wait || time.Now().Add(*interval).After(deadline) {
			break
		}
		printWaiting(env.stderr, a, time.Since(began), *interval, deadline, paletteFor(env.stderr, env.getenv))
		if !sleep(ctx, *interval) {
			return &exitError{code: exitUsage, err: ctx.Err()}
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(a); err != nil {
			return err
		}
	} else {
		printAnswer(env.stdout, a, paletteFor(env.stdout, env.getenv), termWidth(env.getenv))
	}
	switch a.Decision {
	case slogate.Promote:
		return nil
	case slogate.Halt:
		return &exitError{code: exitFailed}
	case slogate.Wait:
		return &exitError{code: exitWaiting}
	}
	return &exitError{code: exitUsage, err: fmt.Errorf("unknown decision %q", a.Decision)}
}

// deployKey is the default Idempotency-Key of slogate deploy: the deploy
// and the CI run attempt, so that a retry of one attempt records the
// deploy once and a new attempt (a redeploy after a rollback, a re-run)
// records a new one. Outside a known CI there is no attempt to name, and
// no key.
func deployKey(getenv func(string) string, service, env, version string) string {
	var attempt string
	switch {
	case getenv("GITHUB_RUN_ID") != "":
		attempt = "github/" + getenv("GITHUB_RUN_ID") + "/" + getenv("GITHUB_RUN_ATTEMPT") + "/" + getenv("GITHUB_JOB")
	case getenv("CI_JOB_ID") != "":
		attempt = "gitlab/" + getenv("CI_JOB_ID")
	case getenv("BUILD_TAG") != "":
		attempt = "jenkins/" + getenv("BUILD_TAG")
	default:
		return ""
	}
	k := strings.Join([]string{"cli", service, env, version, attempt}, "/")
	if len(k) > 255 {
		sum := sha256.Sum256([]byte(k))
		k = "cli/" + hex.EncodeToString(sum[:])
	}
	return k
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// printAnswer prints the decision, its reason and a table of the checks:
// one line per check, its reason on that line (cut to fit); the full
// reasons, the source errors (each said once) and the queries go below the
// table as numbered notes.
func printAnswer(w io.Writer, a gate.Answer, pal palette, width int) {
	reason, _ := oneLine(a.Reason, 300)
	fmt.Fprintf(w, "%s: %s\n", pal.verdict(strings.ToUpper(string(a.Decision))), reason)
	fmt.Fprintf(w, "service %s, environment %s", a.Service, a.Environment)
	if a.Version != "" {
		fmt.Fprintf(w, ", version %s", a.Version)
	}
	if a.DeployID != "" {
		fmt.Fprintf(w, ", deploy %s", a.DeployID)
	}
	fmt.Fprintf(w, "; policy %s; evaluation %s at %s", a.Policy, a.EvaluationID, a.EvaluatedAt.UTC().Format(time.RFC3339))
	if a.At != nil {
		fmt.Fprintf(w, " (as of %s)", a.At.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if a.DryRun != nil {
		r, _ := oneLine(a.DryRun.Reason, 300)
		fmt.Fprintf(w, "dry run: the real verdict is %s: %s\n", pal.verdict(strings.ToUpper(string(a.DryRun.Decision))), r)
	}
	fmt.Fprintln(w)
	var n notes
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "CHECK\tSLO\t%s\tEVENTS\tSLI\tBURN\tBUDGET LEFT\tREASON\n", pal.paint(ansiPlain, "VERDICT"))
	opt := func(v *float64, format string, scale float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf(format, *v*scale)
	}
	const reasonWidth = 72
	for _, c := range a.Checks {
		kind := c.Kind
		if c.DryRun {
			kind += " (dry run)"
		}
		var cell string
		if c.SourceError {
			// The same fault of a source fails every query sent to it:
			// said once, below the table.
			source, _, _ := strings.Cut(c.Reason, " ")
			cell = "source error " + n.add(api.PlainSourceError(slo.SourceType(source), c.Reason))
		} else {
			short, cut := oneLine(c.Reason, reasonWidth)
			cell = short
			if cut {
				cell += " " + n.add(c.Kind+" "+c.SLO+": "+c.Reason)
			}
		}
		if c.Query != "" {
			cell += " " + n.add("query of "+c.Kind+" "+c.SLO+": "+c.Query)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", kind, c.SLO, pal.verdict(string(c.Verdict)),
			opt(c.Total, "%.0f", 1), opt(c.SLI, "%.3f%%", 100), opt(c.BurnRate, "%.2fx", 1), opt(c.BudgetRemaining, "%.1f%%", 100), cell)
	}
	tw.Flush()
	n.print(w, width)
}

// printWaiting is check --wait's progress line, on stderr: the time
// waited, every check's verdict and what the waiting checks wait for.
func printWaiting(w io.Writer, a gate.Answer, waited time.Duration, next time.Duration, deadline time.Time, pal palette) {
	var verdicts, waits []string
	for _, c := range a.Checks {
		verdicts = append(verdicts, fmt.Sprintf("%s %s %s", c.Kind, c.SLO, pal.verdict(string(c.Verdict))))
		if c.Verdict == gate.Pending {
			r, _ := oneLine(c.Reason, 120)
			waits = append(waits, r)
		}
	}
	if len(waits) == 0 {
		r, _ := oneLine(a.Reason, 120)
		waits = append(waits, r)
	}
	fmt.Fprintf(w, "%s +%s %s: %s; waiting for: %s (next ask in %s, until %s)\n",
		time.Now().UTC().Format("15:04:05"), waited.Round(time.Second), pal.verdict("wait"),
		strings.Join(verdicts, ", "), strings.Join(waits, "; "), next, deadline.UTC().Format("15:04:05"))
}
