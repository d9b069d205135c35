package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate/dora"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// Delivery finds the page-level burns behind the DORA keys and measures
// what a deploy cost. *dora.History satisfies it.
type Delivery interface {
	// Burns returns the page-level burns of service's SLOs that begin in
	// the spans, as known at at, and what finding them cost.
	Burns(ctx context.Context, service string, spans []dora.Span, at time.Time) ([]dora.Burn, dora.Stats, error)
	// Impact measures deploy i of history (one service and environment).
	Impact(ctx context.Context, history []slogate.Deploy, i int, attribution time.Duration, at time.Time) (dora.Impact, error)
}

var _ Delivery = (*dora.History)(nil)

// CommitLister lists the commits a change ships: those reachable from head
// and not from base, in the repository "owner/name" (GitHub's compare
// API).
type CommitLister interface {
	Compare(ctx context.Context, repo, base, head string) ([]slogate.Commit, error)
}

const (
	maxCommits = 1000
	// maxDORAWindow bounds ?window=.
	maxDORAWindow = 400 * 24 * time.Hour
	// maxAttribution bounds ?attribution=.
	maxAttribution = 7 * 24 * time.Hour
	// doraLookback: a deploy that started this long before the window
	// and finished in it still counts.
	doraLookback = 7 * 24 * time.Hour
	// maxDORADeploys bounds the deploys one answer reads.
	maxDORADeploys = 200_000
	// doraDeadline bounds one answer (measuring past burns included).
	doraDeadline = 25 * time.Second
	// maxLaterDeploys bounds the deploys read after one to find its
	// successor and its restoration.
	maxLaterDeploys = 5000
)

// commits checks the request's commits (or commitTime) and turns them
// into the deploy's.
func (r createDeployRequest) commits(f *fields, now time.Time) []slogate.Commit {
	if len(r.Commits) > maxCommits {
		f.add("commits", "must hold at most %d commits", maxCommits)
		return nil
	}
	if r.CommitTime != "" && len(r.Commits) > 0 {
		f.add("commitTime", "must not be given with commits (give each commit its time)")
		return nil
	}
	var out []slogate.Commit
	for i, c := range r.Commits {
		field := fmt.Sprintf("commits[%d]", i)
		checkName(f, field+".sha", c.SHA, true)
		t := parseTime(f, field+".time", c.Time)
		if t.After(now.Add(maxFutureSkew)) {
			f.add(field+".time", "must not be in the future")
		}
		out = append(out, slogate.Commit{SHA: c.SHA, Time: t})
	}
	if r.CommitTime != "" {
		t := parseTime(f, "commitTime", r.CommitTime)
		switch {
		case r.Commit == "":
			f.add("commitTime", "needs commit: it is the time of that commit")
		case t.After(now.Add(maxFutureSkew)):
			f.add("commitTime", "must not be in the future")
		}
		out = []slogate.Commit{{SHA: r.Commit, Time: t}}
	}
	return out
}

func commitsOut(cs []slogate.Commit) []Commit {
	if len(cs) == 0 {
		return nil
	}
	out := make([]Commit, len(cs))
	for i, c := range cs {
		out[i] = Commit{SHA: c.SHA}
		if !c.Time.IsZero() {
			t := c.Time
			out[i].Time = &t
		}
	}
	return out
}

// DORA is the body of GET /v1/dora: the four keys, what they cover and
// where the burns came from.
type DORA struct {
	Service     string `json:"service,omitempty"`
	Environment string `json:"environment,omitempty"`
	dora.Report
	// Attribution is the attribution limit, in seconds.
	Attribution float64    `json:"attribution"`
	Sources     dora.Stats `json:"sources"`
}

// doraQuery is GET /v1/dora's query, checked.
type doraQuery struct {
	service, environment string
	opts                 dora.Options
}

func parseDORAQuery(c *gin.Context, now time.Time) (doraQuery, error) {
	var f fields
	q := doraQuery{service: c.Query("service"), environment: c.Query("environment")}
	checkName(&f, "service", q.service, false)
	checkName(&f, "environment", q.environment, false)
	q.opts.End = parseTime(&f, "at", c.Query("at"))
	switch {
	case c.Query("at") == "":
		q.opts.End = now
	case !q.opts.End.IsZero() && q.opts.End.After(now.Add(maxFutureSkew)):
		f.add("at", "must not be in the future")
	}
	q.opts.Window = parseSpan(&f, "window", c.Query("window"), dora.DefaultWindow, maxDORAWindow)
	q.opts.Attribution = parseSpan(&f, "attribution", c.Query("attribution"), dora.DefaultAttribution, maxAttribution)
	return q, f.err()
}

// parseSpan reads a duration such as 30d or 90m (empty: def), positive
// and at most max.
func parseSpan(f *fields, field, s string, def, max time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := slo.ParseDuration(s)
	switch {
	case err != nil:
		f.add(field, "must be a duration such as 30d, 12h or 90m, got %q", s)
	case d <= 0 || d > max:
		f.add(field, "must be more than 0 and at most %s, got %s", slo.FormatDuration(max), s)
	}
	return d
}

func handleDORA(s Store, delivery Delivery, clock func() time.Time) gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := parseDORAQuery(c, clock())
		if err != nil {
			fail(c, err)
			return
		}
		ctx, cancel := context.WithTimeoutCause(c.Request.Context(), doraDeadline,
			fmt.Errorf("the DORA keys were not computed within %s: %w", doraDeadline, slo.ErrTimeout))
		defer cancel()
		out, err := computeDORA(ctx, s, delivery, q)
		if err != nil {
			fail(c, err)
			return
		}
		writeJSON(c, http.StatusOK, out)
	}
}

// computeDORA reads the deploys of the window (and a week before it) and
// the burns after them, and computes the keys.
func computeDORA(ctx context.Context, s Store, delivery Delivery, q doraQuery) (DORA, error) {
	end := q.opts.End.UTC()
	start := end.Add(-q.opts.Window)
	filter := store.DeployFilter{Service: q.service, Environment: q.environment,
		Since: start.Add(-doraLookback), Before: end, Limit: maxPageSize}
	var deploys []slogate.Deploy
	for {
		page, next, err := s.ListDeploys(ctx, filter)
		if err != nil {
			return DORA{}, err
		}
		deploys = append(deploys, page...)
		if len(deploys) > maxDORADeploys {
			return DORA{}, invalid(FieldError{Field: "window", Message: fmt.Sprintf("holds more than %d deploys: narrow it, or name a service", maxDORADeploys)})
		}
		if next == "" {
			break
		}
		filter.Cursor = next
	}
	out := DORA{Service: q.service, Environment: q.environment, Attribution: q.opts.Attribution.Seconds()}
	var burns []dora.Burn
	if delivery != nil {
		// The burns that may be a deploy's doing: in the attribution span
		// of each deploy finished in the window that did not fail.
		spans := map[string][]dora.Span{}
		var services []string
		for _, h := range dora.Histories(deploys, end) {
			for i, d := range h {
				if !d.Finished(end) || !d.FinishedAt.After(start) || d.Failed() {
					continue
				}
				if _, ok := spans[d.Service]; !ok {
					services = append(services, d.Service)
				}
				spans[d.Service] = append(spans[d.Service], dora.AttributionSpan(h, i, q.opts.Attribution, end))
			}
		}
		for _, svc := range services {
			bs, st, err := delivery.Burns(ctx, svc, spans[svc], end)
			out.Sources = out.Sources.Add(st)
			if err != nil {
				return DORA{}, sourceFault(err)
			}
			burns = append(burns, bs...)
		}
	}
	out.Report = dora.Compute(deploys, burns, q.opts)
	return out, nil
}

// sourceFault is a failure to find the burns: a 503 when slogate or a
// source is at fault (the client may retry).
func sourceFault(err error) error {
	if errors.Is(err, slo.ErrTimeout) || errors.Is(err, slo.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return newProblem(http.StatusServiceUnavailable, typeUnavailable, err.Error())
	}
	return err
}

// impact measures what deploy d cost, as known at now: its history is d
// and the deploys of its service and environment after it.
func impact(c *gin.Context, s Store, delivery Delivery, d slogate.Deploy, now time.Time) (*dora.Impact, error) {
	if delivery == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeoutCause(c.Request.Context(), doraDeadline,
		fmt.Errorf("the impact of deploy %s was not measured within %s: %w", d.ID, doraDeadline, slo.ErrTimeout))
	defer cancel()
	later, err := deploysAfter(ctx, s, d, now)
	if err != nil {
		return nil, err
	}
	histories := dora.Histories(append([]slogate.Deploy{d}, later...), now)
	if len(histories) != 1 {
		// Started after now (clock skew): nothing to measure yet.
		return nil, nil
	}
	i := slices.IndexFunc(histories[0], func(x slogate.Deploy) bool { return x.ID == d.ID })
	im, err := delivery.Impact(ctx, histories[0], i, dora.DefaultAttribution, now)
	if err != nil {
		return nil, sourceFault(err)
	}
	return &im, nil
}

// deploysAfter reads the deploys of d's service and environment that
// started after d, oldest first, until the first that succeeded (the one
// that restores a failed deploy), in windows that double from a day, at
// most maxLaterDeploys.
func deploysAfter(ctx context.Context, s Store, d slogate.Deploy, now time.Time) ([]slogate.Deploy, error) {
	var out []slogate.Deploy
	from, span := d.StartedAt, 24*time.Hour
	for !from.After(now) && len(out) < maxLaterDeploys {
		to := from.Add(span)
		f := store.DeployFilter{Service: d.Service, Environment: d.Environment, Since: from, Before: to, Limit: maxPageSize}
		var window []slogate.Deploy
		for {
			page, next, err := s.ListDeploys(ctx, f)
			if err != nil {
				return nil, err
			}
			for _, x := range page {
				// Since and Before are inclusive: a deploy at a window's
				// edge is read twice; d itself is not later.
				if x.ID == d.ID || x.StartedAt.Equal(to) || x.StartedAt.Before(d.StartedAt) {
					continue
				}
				window = append(window, x)
			}
			if next == "" || len(out)+len(window) >= maxLaterDeploys {
				break
			}
			f.Cursor = next
		}
		// Oldest first; the first that succeeded ends the history.
		slices.Reverse(window)
		for i, x := range window {
			if x.Status == slogate.StatusSucceeded {
				return append(out, window[:i+1]...), nil
			}
		}
		out = append(out, window...)
		from, span = to, span*2
	}
	return out, nil
}

// changes lists the commits a GitHub deployment ships: those between the
// previous deploy's commit of its service and environment and its own,
// through the compare API. Without a lister, a repository, a previous
// commit, or when GitHub fails (logged), it ships none known: the deploy
// is recorded all the same.
func (h githubHandler) changes(ctx context.Context, d slogate.Deploy, repo string) []slogate.Commit {
	if h.commits == nil || repo == "" || d.Commit == "" {
		return nil
	}
	prev, err := previousCommit(ctx, h.s, d)
	if err != nil || prev == "" {
		if err != nil {
			Logger(ctx).WarnContext(ctx, "the previous deploy's commit could not be read: the deploy carries no commits", "deploy", d.ID, "error", err)
		}
		return nil
	}
	cs, err := h.commits.Compare(ctx, repo, prev, d.Commit)
	if err != nil {
		Logger(ctx).WarnContext(ctx, "GitHub's compare API failed: the deploy carries no commits", "deploy", d.ID, "repository", repo, "error", err)
		return nil
	}
	if len(cs) > maxCommits {
		cs = cs[:maxCommits] // the earliest, which lead time reads
	}
	return cs
}

// previousCommit is the commit of the newest deploy of d's service and
// environment started before d that names one other than d's ("" if
// none).
func previousCommit(ctx context.Context, s Store, d slogate.Deploy) (string, error) {
	f := store.DeployFilter{Service: d.Service, Environment: d.Environment, Before: d.StartedAt, Limit: 20}
	page, _, err := s.ListDeploys(ctx, f)
	if err != nil {
		return "", err
	}
	for _, p := range page {
		if p.ID != d.ID && p.Commit != "" && p.Commit != d.Commit {
			return p.Commit, nil
		}
	}
	return "", nil
}
