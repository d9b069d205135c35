// Package api is slogate's HTTP API (v1): gin handlers, bearer-token auth
// with scopes, request validation, problem+json errors and the OpenAPI
// document (openapi.yaml, served at /openapi.yaml).
//
// NewServer takes every dependency through Deps; the interfaces in Deps are
// declared here, small, and satisfied by gate.Engine, store.Store and the
// scheduled SLO evaluation.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// Gate answers gate queries (gate.Engine satisfies it).
type Gate interface {
	// Evaluate returns an error when the evaluation could not run
	// (gate.ErrUnknownService, gate.ErrUnknownDeploy, gate.ErrInvalid, or a
	// fault of slogate itself).
	Evaluate(ctx context.Context, req gate.Request) (gate.Answer, error)
	// Invalidate drops the cached answers of a service in an environment.
	Invalidate(service, env string)
}

// Store is the part of store.Store the API uses.
type Store interface {
	CreateDeploy(ctx context.Context, d slogate.Deploy, idempotencyKey string, outbox ...slogate.OutboxMessage) (stored slogate.Deploy, created bool, err error)
	GetDeploy(ctx context.Context, id string) (slogate.Deploy, error)
	ListDeploys(ctx context.Context, f store.DeployFilter) ([]slogate.Deploy, string, error)
	FinishDeploy(ctx context.Context, id, status string, finishedAt time.Time, outbox ...slogate.OutboxMessage) (slogate.Deploy, error)
	GetDecision(ctx context.Context, evaluationID string) (slogate.DecisionRecord, error)
	CreateOverride(ctx context.Context, o store.Override) (store.Override, error)
	RevokeOverride(ctx context.Context, id, by string) (store.Override, error)
	Audit(ctx context.Context, e store.AuditEntry) error
	Ping(ctx context.Context) error
}

var _ Store = store.Store(nil)

// SLOs gives the figures of the objectives. A zero at means the latest
// scheduled figures; another instant evaluates the objectives at it.
type SLOs interface {
	Statuses(ctx context.Context, at time.Time) []slo.Status
	// Status returns false when no objective has the name.
	Status(ctx context.Context, name string, at time.Time) (slo.Status, bool)
}

// Token is an API bearer token and the scopes it grants.
type Token struct {
	Name   string
	Value  string
	Scopes []string
}

// Scopes a token may hold.
const (
	ScopeGateRead       = "gate:read"
	ScopeDeploysWrite   = "deploys:write"
	ScopeOverridesWrite = "overrides:write"
	// ScopeFlagger serves the Flagger hooks only (/v1/flagger/*): it asks
	// the gate and records the deploys and outcomes of Flagger rollouts.
	// It is the token put in a Canary's webhook URLs, so it can do nothing
	// else.
	ScopeFlagger = "flagger"
	ScopeAdmin   = "admin" // every route
)

// Deps are what the server needs. Gate, Store and SLOs are required.
type Deps struct {
	Gate  Gate
	Store Store
	SLOs  SLOs
	// Ready reports whether the service can serve (SLOs loaded, ...);
	// /readyz also pings the store. Optional.
	Ready func(ctx context.Context) error
	// Tokens are the accepted bearer tokens. With none, every request is
	// allowed (the serve command then listens on loopback only).
	Tokens []Token
	Logger *slog.Logger
	// Metrics is served at /metrics; the server registers its HTTP metrics
	// on it. A new registry when nil.
	Metrics *prometheus.Registry
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
	// MaxOverrideTTL bounds how far ahead an override may expire (default
	// 7 days).
	MaxOverrideTTL time.Duration
	// GitHubWebhookSecret verifies the signature (X-Hub-Signature-256) of
	// GitHub's deliveries to POST /v1/webhooks/github. Empty: that route
	// is off (404).
	GitHubWebhookSecret string
	// Delivery finds the burns behind GET /v1/dora and measures the
	// impact of a deploy (GET /v1/deploys/{id}). Optional: without it,
	// /v1/dora reads deploy statuses only and deploys carry no impact.
	Delivery Delivery
	// Commits lists the commits a GitHub deployment ships (the compare
	// API). Optional: without it, a GitHub deploy carries no commits.
	Commits CommitLister
	// GitHubRules answers deployment_protection_rule events (a GitHub
	// App). Nil: those events are answered 404.
	GitHubRules ProtectionRules
	// GitHubServices maps a repository ("owner/name") to the service its
	// deployments deploy; it wins over the deployment payload's service
	// and the repository's name.
	GitHubServices map[string]string
	Clock          func() time.Time
	// Objectives are the SLOs in force (labels, queries and services for
	// the web UI). Optional.
	Objectives func() *slo.Set
	// Records list decisions and the audit log for the web UI and the
	// history API. Optional: Store is used when it has these methods.
	Records Records
	// AskRate and AskBurst limit the gate asks of each token (GET and
	// POST /v1/gate, /v1/flagger): a token bucket of AskBurst asks refilled
	// at AskRate a second (defaults DefaultAskRate, DefaultAskBurst); a
	// negative AskRate turns the limit off.
	AskRate  float64
	AskBurst int
	// AccessLog says which requests are logged (by default: errors, slow
	// and uncached answers always; probes and cached answers sampled).
	AccessLog AccessLog
}

func (d *Deps) defaults() {
	if d.Gate == nil || d.Store == nil || d.SLOs == nil {
		panic("api: Deps.Gate, Deps.Store and Deps.SLOs are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = prometheus.NewRegistry()
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	if d.MaxOverrideTTL <= 0 {
		d.MaxOverrideTTL = 7 * 24 * time.Hour
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.AskRate == 0 {
		d.AskRate = DefaultAskRate
	}
	if d.AskBurst <= 0 {
		d.AskBurst = DefaultAskBurst
	}
	d.AccessLog.defaults()
}

// askLimiter is the per-token limit of gate asks, nil when off.
func (d Deps) askLimiter() *askLimiter {
	if d.AskRate < 0 {
		return nil
	}
	return newAskLimiter(d.AskRate, d.AskBurst, d.Clock)
}

func init() { gin.SetMode(gin.ReleaseMode) }

// NewServer returns the API's handler. It panics when a required
// dependency is missing (a wiring mistake).
func NewServer(deps Deps) http.Handler {
	return newEngine(deps)
}

func newEngine(deps Deps) *gin.Engine {
	deps.defaults()
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	// Route on the escaped path and unescape the parameters: the name of
	// an SLO grouped by a label holds its value (api-routes{route="/b"}),
	// slash included, sent as %2F.
	r.UseRawPath = true
	r.UnescapePathValues = true
	r.ContextWithFallback = false
	addRoutes(r, deps, newAuth(deps.Tokens), newHTTPMetrics(deps.Metrics))
	return r
}
