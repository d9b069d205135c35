package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/store"
)

// GitHub webhook deliveries: the headers GitHub sends with each one.
const (
	githubEventHeader     = "X-GitHub-Event"
	githubDeliveryHeader  = "X-GitHub-Delivery"
	githubSignatureHeader = "X-Hub-Signature-256"
	githubSignaturePrefix = "sha256="
	// githubPrincipal records deploys and audit entries of the webhook.
	githubPrincipal = "github"
	// githubDeployIDPrefix + the GitHub deployment's id is the id of the
	// slogate deploy, so that a deployment status finds its deploy.
	githubDeployIDPrefix = "dep_gh_"
)

// Deploy statuses of GitHub's deployment_status event that finish a deploy.
var githubFinalStates = map[string]string{
	"success": slogate.StatusSucceeded,
	"failure": slogate.StatusFailed,
	"error":   slogate.StatusFailed,
}

// The parts of GitHub's webhook payloads slogate reads; GitHub sends many
// more fields, which are ignored.
type githubEvent struct {
	Deployment       *githubDeployment       `json:"deployment"`
	DeploymentStatus *githubDeploymentStatus `json:"deployment_status"`
	Repository       *githubRepository       `json:"repository"`
}

type githubDeployment struct {
	ID          int64  `json:"id"`
	SHA         string `json:"sha"`
	Environment string `json:"environment"`
	// Payload is free JSON given by whoever created the deployment (an
	// object or a string); slogate reads "service" and "version" from it.
	Payload   json.RawMessage `json:"payload"`
	CreatedAt string          `json:"created_at"`
}

type githubDeploymentStatus struct {
	State     string `json:"state"`
	TargetURL string `json:"target_url"`
	LogURL    string `json:"log_url"`
	CreatedAt string `json:"created_at"`
}

type githubRepository struct {
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
}

// WebhookIgnored answers an event (or a deployment status) that changes
// nothing.
type WebhookIgnored struct {
	Ignored string `json:"ignored"`
	State   string `json:"state,omitempty"`
}

// handleGitHubWebhook turns GitHub deployment events into deploys. GitHub
// cannot send a bearer token: a delivery is authenticated by the HMAC-SHA256
// of its raw body under the shared secret (X-Hub-Signature-256), compared
// in constant time. Without a secret the route is off (404).
func handleGitHubWebhook(secret string, s Store, g Gate, commits CommitLister, rules ProtectionRules, services map[string]string, clock func() time.Time, maxBody int64) gin.HandlerFunc {
	key := []byte(secret)
	return func(c *gin.Context) {
		if len(key) == 0 {
			p := notFound("the GitHub webhook is off: slogate has no webhooks.github.secret")
			p.Errors = []FieldError{{Field: "webhooks.github.secret", Message: "is not configured"}}
			fail(c, p)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
		if err != nil {
			if p := tooLarge(err, maxBody); p != nil {
				p.Errors = []FieldError{{Field: "body", Message: fmt.Sprintf("must be at most %d bytes", maxBody)}}
				fail(c, p)
				return
			}
			fail(c, invalid(FieldError{Field: "body", Message: "could not be read: " + err.Error()}))
			return
		}
		if err := verifyGitHubSignature(key, body, c.GetHeader(githubSignatureHeader)); err != nil {
			fail(c, err)
			return
		}
		withValue(c, principalKey, githubPrincipal)
		if err := requireJSON(c.Request); err != nil {
			fail(c, err)
			return
		}
		event := c.GetHeader(githubEventHeader)
		ctx := c.Request.Context()
		Logger(ctx).InfoContext(ctx, "GitHub webhook", "event", event, "delivery", c.GetHeader(githubDeliveryHeader))
		h := githubHandler{s: s, g: g, commits: commits, rules: rules, services: services, now: clock()}
		switch event {
		case "":
			fail(c, invalid(FieldError{Field: githubEventHeader, Message: "is required (GitHub names the event in it)"}))
		case "ping":
			writeJSON(c, http.StatusOK, map[string]bool{"ok": true})
		case "deployment":
			h.deployment(c, body)
		case "deployment_status":
			h.deploymentStatus(c, body)
		case "deployment_protection_rule":
			h.protectionRule(c, body)
		default:
			writeJSON(c, http.StatusAccepted, WebhookIgnored{Ignored: event})
		}
	}
}

// verifyGitHubSignature checks header, "sha256=" and the hex HMAC-SHA256
// of body under key, in constant time.
func verifyGitHubSignature(key, body []byte, header string) error {
	bad := func(msg string) error {
		p := newProblem(http.StatusUnauthorized, typeAuth, "the delivery is not signed with the webhook's secret")
		p.Errors = []FieldError{{Field: githubSignatureHeader, Message: msg}}
		p.header = http.Header{"Www-Authenticate": {`HMAC-SHA256 realm="slogate", header="` + githubSignatureHeader + `"`}}
		return p
	}
	if header == "" {
		return bad("is required: sha256=<hex HMAC-SHA256 of the body under the webhook's secret>")
	}
	hexSum, ok := strings.CutPrefix(header, githubSignaturePrefix)
	if !ok {
		return bad("must be sha256=<hex HMAC-SHA256 of the body>")
	}
	got, err := hex.DecodeString(hexSum)
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return bad("does not match the body")
	}
	return nil
}

type githubHandler struct {
	s        Store
	g        Gate
	commits  CommitLister
	rules    ProtectionRules
	services map[string]string
	now      time.Time
}

// decode reads a verified body, leniently (GitHub sends many fields), and
// checks that the objects the event needs are there.
func (h githubHandler) decode(body []byte, needStatus bool) (githubEvent, error) {
	var ev githubEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ev); err != nil {
		return ev, decodeProblem(err, int64(len(body)))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ev, invalid(FieldError{Field: "body", Message: "must hold one JSON object and nothing after it"})
	}
	var f fields
	if ev.Deployment == nil {
		f.add("deployment", "is required")
	}
	if ev.Repository == nil {
		f.add("repository", "is required")
	}
	if needStatus && ev.DeploymentStatus == nil {
		f.add("deployment_status", "is required")
	}
	return ev, f.err()
}

func (h githubHandler) deployment(c *gin.Context, body []byte) {
	ev, err := h.decode(body, false)
	if err != nil {
		fail(c, err)
		return
	}
	d, err := githubDeploy(ev, h.services, h.now)
	if err != nil {
		fail(c, err)
		return
	}
	d.Commits = h.changes(c.Request.Context(), d, ev.Repository.FullName)
	stored, created, err := h.create(c.Request.Context(), d)
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
	writeJSON(c, http.StatusCreated, deployOut(stored))
}

func (h githubHandler) deploymentStatus(c *gin.Context, body []byte) {
	ctx := c.Request.Context()
	ev, err := h.decode(body, true)
	if err != nil {
		fail(c, err)
		return
	}
	state := ev.DeploymentStatus.State
	status, final := githubFinalStates[state]
	switch {
	case state == "":
		fail(c, invalid(FieldError{Field: "deployment_status.state", Message: "is required"}))
		return
	case state == "inactive":
		// A later deployment replaced this one: nothing to record.
		writeJSON(c, http.StatusOK, WebhookIgnored{Ignored: "deployment_status", State: state})
		return
	case !final:
		// queued, pending, in_progress: the deploy has not finished.
		writeJSON(c, http.StatusAccepted, WebhookIgnored{Ignored: "deployment_status", State: state})
		return
	}
	var f fields
	finishedAt := parseTime(&f, "deployment_status.created_at", ev.DeploymentStatus.CreatedAt)
	switch {
	case ev.DeploymentStatus.CreatedAt == "":
		finishedAt = h.now
	case !finishedAt.IsZero() && finishedAt.After(h.now.Add(maxFutureSkew)):
		f.add("deployment_status.created_at", "must not be in the future")
	}
	d, err := githubDeploy(ev, h.services, h.now)
	if err != nil {
		f = append(f, problemFor(err).Errors...)
	}
	if err := f.err(); err != nil {
		fail(c, err)
		return
	}
	finished, err := h.s.FinishDeploy(ctx, d.ID, status, finishedAt)
	if errors.Is(err, store.ErrNotFound) {
		// The deployment event was missed (or is late): record the deploy
		// from the status's copy of the deployment, then finish it.
		d.Commits = h.changes(ctx, d, ev.Repository.FullName)
		if _, _, err = h.create(ctx, d); err == nil {
			finished, err = h.s.FinishDeploy(ctx, d.ID, status, finishedAt)
		}
	}
	if errors.Is(err, store.ErrConflict) {
		err = &Problem{Type: typeConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: err.Error(), Errors: []FieldError{{Field: "deployment_status.state", Message: fmt.Sprintf("%s (%s) contradicts how the deploy finished", state, status)}}}
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.g.Invalidate(finished.Service, finished.Environment)
	audit(ctx, h.s, "deploy.finished", finished.ID, map[string]string{
		"service": finished.Service, "environment": finished.Environment, "status": finished.Status, "github.state": state})
	c.Header("Location", "/v1/deploys/"+finished.ID)
	writeJSON(c, http.StatusOK, deployOut(finished))
}

// create records the deploy of a GitHub deployment once: its id and its
// idempotency key both derive from the deployment's id. A deploy first
// recorded from a deployment status may differ (its pipeline URL is the
// status's); it is the same deployment, so it is returned as stored.
func (h githubHandler) create(ctx context.Context, d slogate.Deploy) (slogate.Deploy, bool, error) {
	key := "github/deployment/" + strings.TrimPrefix(d.ID, githubDeployIDPrefix)
	stored, created, err := h.s.CreateDeploy(ctx, d, key)
	if errors.Is(err, store.ErrIdempotencyConflict) || errors.Is(err, store.ErrConflict) {
		if existing, gerr := h.s.GetDeploy(ctx, d.ID); gerr == nil {
			return existing, false, nil
		}
	}
	if errors.Is(err, store.ErrConflict) {
		return slogate.Deploy{}, false, &Problem{Type: typeConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: err.Error(), Errors: []FieldError{{Field: "deployment.id", Message: "another deploy holds the id " + d.ID}}}
	}
	if err != nil {
		return slogate.Deploy{}, false, err
	}
	if created {
		h.g.Invalidate(stored.Service, stored.Environment)
	}
	return stored, created, nil
}

// githubDeploy maps a GitHub deployment (and, from a deployment_status
// event, its status) to the deploy to store. Problems name the field of
// GitHub's payload the value came from.
func githubDeploy(ev githubEvent, services map[string]string, now time.Time) (slogate.Deploy, error) {
	dep, repo := ev.Deployment, ev.Repository
	var f fields
	if dep.ID <= 0 {
		f.add("deployment.id", "must be a positive integer, got %d", dep.ID)
	}
	if dep.CreatedAt == "" {
		f.add("deployment.created_at", "is required")
	}
	service, serviceField := services[repo.FullName], "repository.full_name"
	if service == "" {
		service, serviceField = payloadString(dep.Payload, "service"), "deployment.payload.service"
	}
	if service == "" {
		service, serviceField = repo.Name, "repository.name"
	}
	version, versionField := payloadString(dep.Payload, "version"), "deployment.payload.version"
	if version == "" {
		version, versionField = dep.SHA, "deployment.sha"
	}
	req := createDeployRequest{
		Service: service, Environment: dep.Environment, Version: version, Commit: dep.SHA,
		StartedAt: dep.CreatedAt,
		Labels:    map[string]string{"github.deployment": strconv.FormatInt(dep.ID, 10)},
	}
	if repo.FullName != "" {
		req.Labels["github.repository"] = repo.FullName
	}
	var candidates []string
	if st := ev.DeploymentStatus; st != nil {
		candidates = append(candidates, st.TargetURL, st.LogURL)
	}
	if repo.HTMLURL != "" {
		candidates = append(candidates, strings.TrimSuffix(repo.HTMLURL, "/")+"/deployments")
	}
	for _, u := range candidates {
		if httpURL(u) {
			req.PipelineURL = u
			break
		}
	}
	d, problems := req.deploy(now)
	from := map[string]string{
		"service": serviceField, "environment": "deployment.environment", "version": versionField,
		"commit": "deployment.sha", "startedAt": "deployment.created_at", "labels": "repository.full_name",
	}
	for _, p := range problems {
		if name, ok := from[p.Field]; ok {
			p.Field = name
		}
		f = append(f, p)
	}
	if err := f.err(); err != nil {
		return slogate.Deploy{}, err
	}
	d.ID = githubDeployIDPrefix + strconv.FormatInt(dep.ID, 10)
	d.CreatedBy = githubPrincipal
	return d, nil
}

// payloadString is the string under name in a deployment's payload, or ""
// when the payload is not an object or the value is not a string.
func payloadString(payload json.RawMessage, name string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(payload, &obj) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(obj[name], &s) != nil {
		return ""
	}
	return s
}

// httpURL reports whether s is an absolute http(s) URL short enough to
// be a deploy's pipeline URL.
func httpURL(s string) bool {
	if s == "" || len(s) > maxFreeTextSize {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// ---- deployment_protection_rule: a GitHub App's custom protection rule.

// ProtectionRule is a deployment_protection_rule request, as the
// protection-rule runner takes it.
type ProtectionRule struct {
	DeploymentID   int64
	InstallationID int64
	// CallbackURL is GitHub's deployment_callback_url.
	CallbackURL string
	Repository  string // owner/name
	Environment string
	Service     string
	Version     string
	DeployID    string
	RequestedAt time.Time
}

// ProtectionRules answers GitHub's protection rules (the GitHub App's
// runner, through an adapter in cmd).
type ProtectionRules interface {
	// CheckCallback refuses a callback URL that is not under the
	// configured API base; the error says why. It fetches nothing.
	CheckCallback(callbackURL string) error
	// Request records the rule durably, once per deployment and run.
	Request(ctx context.Context, r ProtectionRule) error
}

type githubRuleEvent struct {
	Action       string            `json:"action"`
	Environment  string            `json:"environment"`
	CallbackURL  string            `json:"deployment_callback_url"`
	Deployment   *githubDeployment `json:"deployment"`
	Repository   *githubRepository `json:"repository"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
}

// protectionRule records the deploy of a protection rule's deployment
// (dep_gh_<id>, as a deployment event would) and hands the rule to the
// runner, which answers GitHub through the callback: 202. A callback URL
// outside the API base is refused (422) before anything is recorded.
func (h githubHandler) protectionRule(c *gin.Context, body []byte) {
	ctx := c.Request.Context()
	var ev githubRuleEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ev); err != nil {
		fail(c, decodeProblem(err, int64(len(body))))
		return
	}
	if ev.Action != "requested" {
		writeJSON(c, http.StatusAccepted, WebhookIgnored{Ignored: "deployment_protection_rule", State: ev.Action})
		return
	}
	if h.rules == nil {
		p := newProblem(http.StatusNotFound, typeNotFound, "protection rules are off: slogate has no webhooks.github.app")
		p.Errors = []FieldError{{Field: "webhooks.github.app", Message: "is not configured"}}
		fail(c, p)
		return
	}
	var f fields
	if ev.Environment == "" {
		f.add("environment", "is required")
	}
	if ev.CallbackURL == "" {
		f.add("deployment_callback_url", "is required")
	}
	if ev.Installation == nil || ev.Installation.ID <= 0 {
		f.add("installation.id", "is required (the App's installation)")
	}
	if ev.Deployment == nil {
		f.add("deployment", "is required")
	}
	if ev.Repository == nil {
		f.add("repository", "is required")
	}
	if err := f.err(); err != nil {
		fail(c, err)
		return
	}
	if err := h.rules.CheckCallback(ev.CallbackURL); err != nil {
		Logger(ctx).WarnContext(ctx, "GitHub protection rule refused: callback URL not under the API base",
			"repository", ev.Repository.FullName, "deployment", ev.Deployment.ID, "reason", err.Error())
		p := newProblem(http.StatusUnprocessableEntity, typeValidation, "the callback URL is not under slogate's GitHub API base: refused, never called")
		p.Errors = []FieldError{{Field: "deployment_callback_url", Message: err.Error()}}
		fail(c, p)
		return
	}
	if ev.Deployment.Environment == "" {
		ev.Deployment.Environment = ev.Environment
	}
	d, err := githubDeploy(githubEvent{Deployment: ev.Deployment, Repository: ev.Repository}, h.services, h.now)
	if err != nil {
		fail(c, err)
		return
	}
	stored, _, err := h.create(ctx, d)
	if err != nil {
		fail(c, err)
		return
	}
	err = h.rules.Request(ctx, ProtectionRule{
		DeploymentID: ev.Deployment.ID, InstallationID: ev.Installation.ID, CallbackURL: ev.CallbackURL,
		Repository: ev.Repository.FullName, Environment: ev.Environment,
		Service: stored.Service, Version: stored.Version, DeployID: stored.ID, RequestedAt: h.now,
	})
	if err != nil {
		fail(c, fmt.Errorf("recording the protection rule: %w", err))
		return
	}
	c.Header("Location", "/v1/deploys/"+stored.ID)
	writeJSON(c, http.StatusAccepted, ProtectionRuleAccepted{State: "pending", DeployID: stored.ID, Service: stored.Service, Environment: ev.Environment})
}

// ProtectionRuleAccepted answers a protection rule taken: slogate will
// answer GitHub through the callback.
type ProtectionRuleAccepted struct {
	State       string `json:"state"`
	DeployID    string `json:"deployId"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
}
