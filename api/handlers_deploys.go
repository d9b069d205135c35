package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/store"
)

// clientDeployID is the form of a deploy id a client may choose.
var clientDeployID = regexp.MustCompile(`^dep_[A-Za-z0-9][A-Za-z0-9_.-]{0,299}$`)

// Deploy strategies.
var strategies = []string{"rolling", "canary", "bluegreen"}

const (
	maxLabels       = 64
	maxIdemKeyLen   = 255
	maxFutureSkew   = 5 * time.Minute
	maxFreeTextSize = 2048
)

// deploy checks the request and turns it into the deploy to store. A
// missing startedAt stays zero: the store sets it, and an idempotent retry
// without it then has the same body.
func (r createDeployRequest) deploy(now time.Time) (slogate.Deploy, fields) {
	var f fields
	checkName(&f, "service", r.Service, true)
	checkName(&f, "environment", r.Environment, true)
	checkName(&f, "version", r.Version, true)
	checkName(&f, "previousVersion", r.PreviousVersion, false)
	checkName(&f, "commit", r.Commit, false)
	if r.Strategy != "" && !slices.Contains(strategies, r.Strategy) {
		f.add("strategy", "must be one of %s, got %q", strings.Join(strategies, ", "), r.Strategy)
	}
	if r.PipelineURL != "" {
		u, err := url.Parse(r.PipelineURL)
		switch {
		case len(r.PipelineURL) > maxFreeTextSize:
			f.add("pipelineUrl", "must be at most %d bytes long", maxFreeTextSize)
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			f.add("pipelineUrl", "must be an absolute http(s) URL")
		}
	}
	started := parseTime(&f, "startedAt", r.StartedAt)
	if !started.IsZero() && started.After(now.Add(maxFutureSkew)) {
		f.add("startedAt", "must not be in the future")
	}
	if len(r.Labels) > maxLabels {
		f.add("labels", "must have at most %d labels", maxLabels)
	}
	for k, v := range r.Labels {
		if k == "" || len(k) > maxNameLen || len(v) > maxFreeTextSize {
			f.add("labels", "keys must be 1 to %d bytes and values at most %d bytes", maxNameLen, maxFreeTextSize)
			break
		}
	}
	switch {
	case r.ID == "":
	case !clientDeployID.MatchString(r.ID):
		f.add("id", "must be dep_ followed by at most 300 letters, digits, '_', '.' or '-', got %q", r.ID)
	case strings.HasPrefix(r.ID, githubDeployIDPrefix):
		f.add("id", "the prefix %s is kept for GitHub's deployments", githubDeployIDPrefix)
	}
	d := slogate.Deploy{
		ID:      r.ID,
		Service: r.Service, Environment: r.Environment, Version: r.Version,
		PreviousVersion: r.PreviousVersion, Commit: r.Commit, PipelineURL: r.PipelineURL,
		Strategy: r.Strategy, StartedAt: started,
	}
	if len(r.Labels) > 0 {
		d.Labels = r.Labels
	}
	d.Commits = r.commits(&f, now)
	return d, f
}

func handleCreateDeploy(s Store, g Gate, clock func() time.Time, maxBody int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		var req createDeployRequest
		if err := decodeJSON(c.Writer, c.Request, maxBody, &req, false); err != nil {
			fail(c, err)
			return
		}
		d, f := req.deploy(clock())
		key := c.GetHeader("Idempotency-Key")
		if len(key) > maxIdemKeyLen || strings.IndexFunc(key, unicode.IsControl) >= 0 {
			f.add("Idempotency-Key", "must be at most %d printable bytes", maxIdemKeyLen)
		}
		if err := f.err(); err != nil {
			fail(c, err)
			return
		}
		if key == "" && d.ID != "" {
			// A chosen id is its own idempotency key: the same body again
			// is the same deploy.
			key = "deploy-id/" + d.ID
		}
		// The store audits the deploy in the transaction that records it.
		d.CreatedBy = principal(ctx)
		stored, created, err := s.CreateDeploy(ctx, d, idempotencyScope(d.CreatedBy, key))
		if err != nil {
			fail(c, err)
			return
		}
		c.Header("Location", "/v1/deploys/"+stored.ID)
		if !created {
			c.Header("Idempotent-Replayed", "true")
			writeJSON(c, http.StatusOK, deployOut(stored))
			return
		}
		g.Invalidate(stored.Service, stored.Environment)
		writeJSON(c, http.StatusCreated, deployOut(stored))
	}
}

// audit records who did what. The change is already stored, so a failure
// to audit it is logged, not answered.
func audit(ctx context.Context, s Store, action, subject string, detail map[string]string) {
	b, _ := json.Marshal(detail) // a map of strings always marshals
	e := store.AuditEntry{Actor: principal(ctx), Action: action, Subject: subject, Detail: string(b)}
	if err := s.Audit(ctx, e); err != nil {
		Logger(ctx).WarnContext(ctx, "audit entry lost", "action", action, "subject", subject, "error", err)
	}
}

const maxPageSize = 1000

func handleListDeploys(s Store) gin.HandlerFunc {
	return func(c *gin.Context) {
		var f fields
		q := c.Request.URL.Query()
		filter := store.DeployFilter{
			Service:     q.Get("service"),
			Environment: q.Get("environment"),
			Cursor:      q.Get("cursor"),
		}
		filter.Since = parseTime(&f, "since", q.Get("since"))
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 1 || n > maxPageSize {
				f.add("limit", "must be a whole number from 1 to %d, got %q", maxPageSize, l)
			}
			filter.Limit = n
		}
		if err := f.err(); err != nil {
			fail(c, err)
			return
		}
		items, next, err := s.ListDeploys(c.Request.Context(), filter)
		if errors.Is(err, store.ErrInvalid) && filter.Cursor != "" {
			err = invalid(FieldError{Field: "cursor", Message: "is not a cursor of this list"})
		}
		if err != nil {
			fail(c, err)
			return
		}
		out := DeployList{Items: make([]Deploy, 0, len(items)), NextCursor: next}
		for _, d := range items {
			out.Items = append(out.Items, deployOut(d))
		}
		writeJSON(c, http.StatusOK, out)
	}
}

func handleGetDeploy(s Store, delivery Delivery, clock func() time.Time) gin.HandlerFunc {
	return func(c *gin.Context) {
		d, err := s.GetDeploy(c.Request.Context(), c.Param("id"))
		if err != nil {
			fail(c, err)
			return
		}
		out := deployOut(d)
		if c.Query("impact") == "false" {
			writeJSON(c, http.StatusOK, out)
			return
		}
		if out.Impact, err = impact(c, s, delivery, d, clock()); err != nil {
			fail(c, err)
			return
		}
		writeJSON(c, http.StatusOK, out)
	}
}

// Final statuses a deploy may be finished with.
var finalStatuses = []string{slogate.StatusSucceeded, slogate.StatusFailed, slogate.StatusRolledBack}

func (r finishDeployRequest) parse(now time.Time) (status string, finishedAt time.Time, f fields) {
	switch {
	case r.Status == "":
		f.add("status", "is required")
	case !slices.Contains(finalStatuses, r.Status):
		f.add("status", "must be one of %s, got %q", strings.Join(finalStatuses, ", "), r.Status)
	}
	finishedAt = parseTime(&f, "finishedAt", r.FinishedAt)
	switch {
	case r.FinishedAt == "":
		finishedAt = now
	case !finishedAt.IsZero() && finishedAt.After(now.Add(maxFutureSkew)):
		f.add("finishedAt", "must not be in the future")
	}
	return r.Status, finishedAt, f
}

func handleFinishDeploy(s Store, g Gate, clock func() time.Time, maxBody int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		var req finishDeployRequest
		if err := decodeJSON(c.Writer, c.Request, maxBody, &req, false); err != nil {
			fail(c, err)
			return
		}
		status, at, f := req.parse(clock())
		if err := f.err(); err != nil {
			fail(c, err)
			return
		}
		d, err := s.FinishDeploy(ctx, c.Param("id"), status, at)
		if err != nil {
			fail(c, err)
			return
		}
		g.Invalidate(d.Service, d.Environment)
		audit(ctx, s, "deploy.finished", d.ID, map[string]string{
			"service": d.Service, "environment": d.Environment, "status": d.Status})
		writeJSON(c, http.StatusOK, deployOut(d))
	}
}
