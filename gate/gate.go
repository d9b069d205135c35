package gate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/slogate/slogate/slo"
)

// Outcomes callers branch on.
var (
	// ErrUnknownService: no SLO names the service.
	ErrUnknownService = errors.New("unknown service")
	// ErrUnknownDeploy: no deploy has the id.
	ErrUnknownDeploy = errors.New("unknown deploy")
	// ErrInvalid: the request contradicts itself (a deploy of another
	// service, a missing field).
	ErrInvalid = errors.New("invalid request")
)

// Decision is the gate's answer.
type Decision string

const (
	Promote Decision = "promote"
	Halt    Decision = "halt"
	Wait    Decision = "wait"
)

// Verdict is one check's outcome.
type Verdict string

const (
	Pass Verdict = "pass"
	Fail Verdict = "fail"
	// Pending: not enough time or events yet to judge.
	Pending Verdict = "wait"
)

// Check kinds.
const (
	KindBudget       = "budget"
	KindVerification = "verification"
	KindCanary       = "canary"
)

// Request is a gate query.
type Request struct {
	Service         string
	Environment     string
	Version         string
	DeployID        string
	BaselineVersion string
}

func (r Request) key() string {
	return strings.Join([]string{r.Service, r.Environment, r.Version, r.DeployID, r.BaselineVersion}, "\x00")
}

// Deploy is what the gate needs of a recorded deploy.
type Deploy struct {
	ID              string
	Service         string
	Environment     string
	Version         string
	PreviousVersion string
	StartedAt       time.Time
}

// Deploys looks up recorded deploys (the store, through an adapter).
type Deploys interface {
	// Deploy returns the deploy with the id, or an error wrapping
	// ErrUnknownDeploy.
	Deploy(ctx context.Context, id string) (Deploy, error)
	// Latest returns the newest deploy of service in env started before
	// the instant; found is false when there is none.
	Latest(ctx context.Context, service, env string, before time.Time) (d Deploy, found bool, err error)
	// OfVersion returns the newest deploy of a version of service in env;
	// found is false when there is none.
	OfVersion(ctx context.Context, service, env, version string) (d Deploy, found bool, err error)
}

// Override is a break-glass lifting of the budget policy.
type Override struct {
	ID        string    `json:"id"`
	Reason    string    `json:"reason"`
	CreatedBy string    `json:"createdBy,omitempty"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Overrides finds the override in force for a service in an environment.
type Overrides interface {
	Active(ctx context.Context, service, env string, at time.Time) (Override, bool, error)
}

// Recorder stores every fresh answer (the audit trail). An error fails the
// evaluation: an answer that cannot be recorded is not given.
type Recorder interface {
	Record(ctx context.Context, a Answer) error
}

// Window is a check's measured span.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Check is one check's verdict with its evidence.
type Check struct {
	Kind            string   `json:"kind"`
	SLO             string   `json:"slo"`
	Verdict         Verdict  `json:"verdict"`
	Reason          string   `json:"reason"`
	Window          *Window  `json:"window,omitempty"`
	Good            *float64 `json:"good,omitempty"`
	Total           *float64 `json:"total,omitempty"`
	SLI             *float64 `json:"sli,omitempty"`
	Target          float64  `json:"target"`
	BurnRate        *float64 `json:"burnRate,omitempty"`
	MaxBurnRate     *float64 `json:"maxBurnRate,omitempty"`
	BudgetRemaining *float64 `json:"budgetRemaining,omitempty"`
	// Canary comparison figures.
	Baseline *Sample     `json:"baseline,omitempty"`
	Canary   *Sample     `json:"canary,omitempty"`
	Interval *[2]float64 `json:"interval,omitempty"`
	// Query is the query that produced the figures, scope included.
	Query string `json:"query,omitempty"`
	// NoData is true when the verdict comes from missing data or a failed
	// source (the policy's onNoData), not from a figure.
	NoData   bool      `json:"noData,omitempty"`
	Override *Override `json:"override,omitempty"`
}

// Sample is one side of a canary comparison.
type Sample struct {
	Version    string  `json:"version"`
	Good       float64 `json:"good"`
	Total      float64 `json:"total"`
	ErrorRatio float64 `json:"errorRatio"`
}

// Answer is the gate's answer (DESIGN.md, "The gate's answer").
type Answer struct {
	Decision     Decision  `json:"decision"`
	Reason       string    `json:"reason"`
	EvaluationID string    `json:"evaluationId"`
	Service      string    `json:"service"`
	Environment  string    `json:"environment"`
	Version      string    `json:"version,omitempty"`
	DeployID     string    `json:"deployId,omitempty"`
	Baseline     string    `json:"baselineVersion,omitempty"`
	Policy       string    `json:"policy"`
	EvaluatedAt  time.Time `json:"evaluatedAt"`
	Checks       []Check   `json:"checks"`
	// Cached is true when the answer was reused from an identical ask
	// within the cache's lifetime.
	Cached bool `json:"cached"`
}

// Config configures an Engine.
type Config struct {
	// Measurer reads the telemetry. Required.
	Measurer *Measurer
	// SLOs returns the objectives and policies in force (they may be
	// reloaded). Required.
	SLOs func() *slo.Set
	// Deploys, Overrides and Recorder are optional.
	Deploys   Deploys
	Overrides Overrides
	Recorder  Recorder
	// CacheTTL is how long an answer is reused for identical asks; 0
	// turns the cache off.
	CacheTTL time.Duration
	// Timeout bounds one evaluation (default 25s). Argo Rollouts and
	// Flagger give up after 10s by default and retry; the evaluation goes
	// on and its cached answer serves the retry.
	Timeout time.Duration
	Clock   func() time.Time
	Logger  *slog.Logger
}

// Engine answers gate queries. Identical concurrent asks are evaluated
// once; answers are reused for CacheTTL.
type Engine struct {
	cfg    Config
	group  singleflight.Group
	mu     sync.Mutex
	cache  map[string]cached
	evals  func()
	logger *slog.Logger
}

type cached struct {
	answer  Answer
	expires time.Time
}

// New checks cfg and returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Measurer == nil {
		return nil, errors.New("gate: measurer is required")
	}
	if cfg.SLOs == nil {
		return nil, errors.New("gate: SLOs are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 25 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, cache: map[string]cached{}, logger: cfg.Logger.With("component", "gate")}, nil
}

// OnEvaluate sets a hook called once per fresh evaluation (for metrics and
// tests). Not safe to call concurrently with Evaluate.
func (e *Engine) OnEvaluate(f func()) { e.evals = f }

// Evaluate answers a gate query. An error means the evaluation could not
// run (unknown service or deploy, a store failure); a failed data source
// is an answer (halt or wait), never an error and never promote.
func (e *Engine) Evaluate(ctx context.Context, req Request) (Answer, error) {
	if req.Service == "" || req.Environment == "" {
		return Answer{}, fmt.Errorf("%w: service and environment are required", ErrInvalid)
	}
	key := req.key()
	now := e.cfg.Clock()
	if e.cfg.CacheTTL > 0 {
		e.mu.Lock()
		c, ok := e.cache[key]
		e.mu.Unlock()
		if ok && now.Before(c.expires) {
			a := c.answer
			a.Cached = true
			return a, nil
		}
	}
	ch := e.group.DoChan(key, func() (any, error) {
		// The evaluation outlives a caller that gives up: others may wait
		// for it, and its answer is cached.
		ctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), e.cfg.Timeout,
			fmt.Errorf("gate evaluation of %s/%s timed out after %s", req.Service, req.Environment, e.cfg.Timeout))
		defer cancel()
		a, err := e.evaluate(ctx, req)
		if err != nil {
			return Answer{}, err
		}
		if e.cfg.Recorder != nil {
			if err := e.cfg.Recorder.Record(ctx, a); err != nil {
				return Answer{}, fmt.Errorf("recording answer %s: %w", a.EvaluationID, err)
			}
		}
		if e.cfg.CacheTTL > 0 {
			e.mu.Lock()
			for k, c := range e.cache {
				if !now.Before(c.expires) {
					delete(e.cache, k)
				}
			}
			e.cache[key] = cached{answer: a, expires: e.cfg.Clock().Add(e.cfg.CacheTTL)}
			e.mu.Unlock()
		}
		return a, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Answer{}, r.Err
		}
		return r.Val.(Answer), nil
	case <-ctx.Done():
		return Answer{}, context.Cause(ctx)
	}
}

// Invalidate drops cached answers of a service (a deploy or an override
// changed what they depend on).
func (e *Engine) Invalidate(service, env string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	prefix := service + "\x00" + env + "\x00"
	for k := range e.cache {
		if strings.HasPrefix(k, prefix) {
			delete(e.cache, k)
		}
	}
}

func newEvaluationID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "ev_" + hex.EncodeToString(b[:])
}

// evaluate runs the checks of the service's policy.
func (e *Engine) evaluate(ctx context.Context, req Request) (Answer, error) {
	if e.evals != nil {
		e.evals()
	}
	ctx, span := tracer.Start(ctx, "gate.evaluate", trace.WithAttributes(
		attribute.String("slogate.service", req.Service), attribute.String("slogate.environment", req.Environment),
		attribute.String("slogate.version", req.Version), attribute.String("slogate.deploy_id", req.DeployID)))
	defer span.End()
	set := e.cfg.SLOs()
	objs := set.ByService(req.Service)
	if len(objs) == 0 {
		return Answer{}, fmt.Errorf("gate %s/%s: %w: no SLO has service %q", req.Service, req.Environment, ErrUnknownService, req.Service)
	}
	now := e.cfg.Clock().UTC()
	policy := set.Policy(req.Service, req.Environment)
	a := Answer{
		EvaluationID: newEvaluationID(),
		Service:      req.Service, Environment: req.Environment,
		Version: req.Version, DeployID: req.DeployID, Baseline: req.BaselineVersion,
		Policy: policy.Name, EvaluatedAt: now, Checks: []Check{},
	}
	deploy, hasDeploy, err := e.findDeploy(ctx, req)
	if err != nil {
		return Answer{}, err
	}
	if hasDeploy {
		a.DeployID = deploy.ID
		if a.Version == "" {
			a.Version = deploy.Version
		}
	}
	if a.Baseline == "" && hasDeploy {
		a.Baseline = deploy.PreviousVersion
		if a.Baseline == "" && e.cfg.Deploys != nil {
			prev, found, err := e.cfg.Deploys.Latest(ctx, req.Service, req.Environment, deploy.StartedAt)
			if err != nil {
				return Answer{}, fmt.Errorf("gate %s/%s: previous deploy: %w", req.Service, req.Environment, err)
			}
			if found && prev.Version != a.Version {
				a.Baseline = prev.Version
			}
		}
	}

	var override *Override
	if !policy.Budget.Disabled && e.cfg.Overrides != nil {
		o, ok, err := e.cfg.Overrides.Active(ctx, req.Service, req.Environment, now)
		if err != nil {
			return Answer{}, fmt.Errorf("gate %s/%s: overrides: %w", req.Service, req.Environment, err)
		}
		if ok {
			override = &o
		}
	}

	checks := make([][]Check, len(objs))
	var wg sync.WaitGroup
	for i, o := range objs {
		wg.Go(func() {
			var cs []Check
			if !policy.Budget.Disabled {
				cs = append(cs, e.budgetCheck(ctx, o, policy, now, override))
			}
			if !policy.Verification.Disabled && a.Version != "" {
				cs = append(cs, e.verificationCheck(ctx, o, policy, a.Version, deploy, hasDeploy, now))
			}
			if policy.Canary != nil && a.Version != "" && hasDeploy {
				cs = append(cs, e.canaryCheck(ctx, o, policy, a.Version, a.Baseline, deploy, now))
			}
			checks[i] = cs
		})
	}
	wg.Wait()
	for _, cs := range checks {
		a.Checks = append(a.Checks, cs...)
	}
	a.Decision, a.Reason = decide(a.Checks)
	span.SetAttributes(attribute.String("slogate.decision", string(a.Decision)), attribute.String("slogate.evaluation_id", a.EvaluationID))
	e.logger.InfoContext(ctx, "gate answer", "evaluation_id", a.EvaluationID, "service", a.Service,
		"environment", a.Environment, "version", a.Version, "decision", a.Decision, "reason", a.Reason)
	return a, nil
}

// findDeploy finds the deploy a request is about: by id, else the newest
// deploy of the version asked in the service's environment.
func (e *Engine) findDeploy(ctx context.Context, req Request) (Deploy, bool, error) {
	if e.cfg.Deploys == nil {
		if req.DeployID != "" {
			return Deploy{}, false, fmt.Errorf("%w: deployId %q: this gate records no deploys", ErrUnknownDeploy, req.DeployID)
		}
		return Deploy{}, false, nil
	}
	if req.DeployID != "" {
		d, err := e.cfg.Deploys.Deploy(ctx, req.DeployID)
		if err != nil {
			return Deploy{}, false, err
		}
		if d.Service != req.Service || d.Environment != req.Environment {
			return Deploy{}, false, fmt.Errorf("%w: deploy %s is of %s/%s, not %s/%s", ErrInvalid, d.ID, d.Service, d.Environment, req.Service, req.Environment)
		}
		if req.Version != "" && d.Version != req.Version {
			return Deploy{}, false, fmt.Errorf("%w: deploy %s is of version %s, not %s", ErrInvalid, d.ID, d.Version, req.Version)
		}
		return d, true, nil
	}
	if req.Version == "" {
		return Deploy{}, false, nil
	}
	d, found, err := e.cfg.Deploys.OfVersion(ctx, req.Service, req.Environment, req.Version)
	if err != nil {
		return Deploy{}, false, fmt.Errorf("gate %s/%s: deploy of version %s: %w", req.Service, req.Environment, req.Version, err)
	}
	return d, found, nil
}

// maxReason bounds the answer's reason: it is what Argo Rollouts and
// Flagger show in an event, and the checks hold the whole story.
const maxReason = 300

// shortReason is a check's reason on one line, at most maxReason bytes.
func shortReason(c Check) string {
	r := strings.Join(strings.Fields(c.SLO+": "+c.Reason), " ")
	if len(r) > maxReason {
		cut := maxReason - len("…")
		for cut > 0 && !utf8.RuneStart(r[cut]) {
			cut--
		}
		r = r[:cut] + "…"
	}
	return r
}

// decide folds the checks: halt if any fails, wait if any waits, else
// promote. The reason is the first failing (else waiting) check's.
func decide(checks []Check) (Decision, string) {
	for _, c := range checks {
		if c.Verdict == Fail {
			return Halt, shortReason(c)
		}
	}
	for _, c := range checks {
		if c.Verdict == Pending {
			return Wait, shortReason(c)
		}
	}
	if len(checks) == 0 {
		// Nothing was measured: never promote without evidence.
		return Halt, "no check applies: the policy turns every check off"
	}
	return Promote, fmt.Sprintf("all %d checks pass", len(checks))
}
