package gate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/slogate/slogate"
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
	// ErrSourceFault: a source failed (unreachable, timeout, 5xx, partial
	// response) and the policy's onSourceError is error. The error is a
	// *SourceFaultError carrying the answer's checks.
	ErrSourceFault = errors.New("source fault")
)

// SourceFaultError is the outcome of an evaluation that a failed source
// kept from a decision: the API answers it with HTTP 503 and its checks,
// so that clients count an error and retry instead of acting.
type SourceFaultError struct {
	Answer Answer
}

func (e *SourceFaultError) Error() string {
	return fmt.Sprintf("gate %s/%s: %s: %s", e.Answer.Service, e.Answer.Environment, ErrSourceFault, e.Answer.Reason)
}

func (e *SourceFaultError) Unwrap() error { return ErrSourceFault }

// Verdict is one check's outcome.
type Verdict string

const (
	Pass Verdict = "pass"
	Fail Verdict = "fail"
	// Pending: not enough time or events yet to judge.
	Pending Verdict = "wait"
	// Errored: a source failed; the policy's onSourceError is error.
	Errored Verdict = "error"
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
	// At, when set, asks for the answer the gate would have given at that
	// instant: every figure is measured up to At, only deploys started
	// before it count, and the overrides are those in force then. Such an
	// answer is never cached and is recorded as a backtest.
	At time.Time
	// Checks, when set, limits the evaluation to these kinds (KindBudget,
	// KindVerification, KindCanary) among those the policy turns on; the
	// Flagger hooks ask for the checks that fit their moment.
	Checks []string
}

func (r Request) key() string {
	at := ""
	if !r.At.IsZero() {
		at = r.At.UTC().Format(time.RFC3339Nano)
	}
	return strings.Join([]string{r.Service, r.Environment, r.Version, r.DeployID, r.BaselineVersion, at, strings.Join(r.Checks, ",")}, "\x00")
}

// wants reports whether the request asks for checks of kind.
func (r Request) wants(kind string) bool {
	return len(r.Checks) == 0 || slices.Contains(r.Checks, kind)
}

// Deploys looks up recorded deploys (the store, through
// internal/deploys.Lookup).
type Deploys interface {
	// Deploy returns the deploy with the id, or an error wrapping
	// ErrUnknownDeploy.
	Deploy(ctx context.Context, id string) (slogate.Deploy, error)
	// Latest returns the newest deploy of service in env started before
	// the instant, of another version than notVersion, that did not fail
	// or roll back (a baseline); found is false when there is none.
	Latest(ctx context.Context, service, env string, before time.Time, notVersion string) (d slogate.Deploy, found bool, err error)
	// OfVersion returns the newest deploy of a version of service in env
	// started at or before the instant; found is false when there is none.
	OfVersion(ctx context.Context, service, env, version string, before time.Time) (d slogate.Deploy, found bool, err error)
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
	Baseline *Sample `json:"baseline,omitempty"`
	Canary   *Sample `json:"canary,omitempty"`
	// Interval is the test's confidence sequence at this look: the
	// canary's minus the baseline's error ratio (canary), or the
	// version's error ratio (verification). Each bound holds with
	// Confidence at every look at once (docs/statistics.md).
	Interval *[2]float64 `json:"interval,omitempty"`
	// Test names the statistical test behind the verdict
	// (TestNormalMixtureCS, TestBetaBinomialCS, TestPointEstimate).
	Test string `json:"test,omitempty"`
	// Confidence is the level of each end of Interval: lo stays below the
	// true figure at every look with at least this probability, and hi
	// above it.
	Confidence float64 `json:"confidence,omitempty"`
	// Threshold is what Interval is compared with: the tolerance
	// (canary) or maxBurnRate × (1 − target) (verification). Halt when
	// the whole interval is above it, pass when it is at or below it.
	Threshold *float64 `json:"threshold,omitempty"`
	// Threshold check figures: the objective ("lt 0.3") and the value
	// the version's metric had.
	Objective string   `json:"objective,omitempty"`
	Value     *float64 `json:"value,omitempty"`
	// Query is the query that produced the figures, scope included.
	Query string `json:"query,omitempty"`
	// NoData is true when the verdict comes from missing data (the
	// policy's onNoData), not from a figure.
	NoData bool `json:"noData,omitempty"`
	// SourceError is true when a source failed (the policy's
	// onSourceError decides the verdict).
	SourceError bool      `json:"sourceError,omitempty"`
	Override    *Override `json:"override,omitempty"`
	// DryRun is true when the check runs in dryRun mode: its verdict is
	// recorded, not enforced.
	DryRun bool `json:"dryRun,omitempty"`
	// Latency is the canary-latency check's distribution comparison.
	Latency *LatencyComparison `json:"latency,omitempty"`
}

// Sample is one side of a canary comparison.
type Sample struct {
	Version    string  `json:"version"`
	Good       float64 `json:"good"`
	Total      float64 `json:"total"`
	ErrorRatio float64 `json:"errorRatio"`
}

// Outcome is a decision with its one-line reason: the answer's verdict
// (what Argo Rollouts' web metric picks with jsonPath "{$.verdict}") and
// a dry run's real verdict.
type Outcome struct {
	Decision slogate.Decision `json:"decision"`
	Reason   string           `json:"reason"`
}

// Answer is the gate's answer (DESIGN.md, "The gate's answer").
type Answer struct {
	Decision     slogate.Decision `json:"decision"`
	Reason       string           `json:"reason"`
	Verdict      Outcome          `json:"verdict"`
	EvaluationID string           `json:"evaluationId"`
	Service      string           `json:"service"`
	Environment  string           `json:"environment"`
	Version      string           `json:"version,omitempty"`
	DeployID     string           `json:"deployId,omitempty"`
	Baseline     string           `json:"baselineVersion,omitempty"`
	Policy       string           `json:"policy"`
	EvaluatedAt  time.Time        `json:"evaluatedAt"`
	Checks       []Check          `json:"checks"`
	// At is set on a point-in-time answer (Request.At): what the gate
	// would have answered then.
	At *time.Time `json:"at,omitempty"`
	// DryRun holds the real verdict when a check, or the whole policy,
	// runs in dryRun mode and the real verdict differs from the enforced
	// decision.
	DryRun *Outcome `json:"dryRun,omitempty"`
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
	// Deadline bounds one answer (default 8s, below the 10s that Argo
	// Rollouts and Flagger wait by default). The checks get the deadline
	// less a tenth (at most 1s), kept for recording the answer; a
	// measurement still running then is a source fault (timeout), so the
	// client gets a 503 in time and retries rather than timing out.
	Deadline time.Duration
	// MaxConcurrentEvaluations bounds the uncached evaluations in flight
	// across every caller (cached answers and asks that join an identical
	// evaluation in flight take no slot); an ask that finds no slot within
	// EvaluationWait fails with a *BusyError (ErrBusy). Default
	// DefaultMaxConcurrentEvaluations; negative turns the limit off.
	MaxConcurrentEvaluations int
	// EvaluationWait is how long an uncached evaluation waits for a slot
	// (default DefaultEvaluationWait).
	EvaluationWait time.Duration
	// Registry, when set, gets the gate's metrics
	// (slogate_gate_answers_total, slogate_gate_dry_run_total,
	// slogate_gate_evaluations_rejected_total,
	// slogate_gate_evaluations_in_flight).
	Registry prometheus.Registerer
	Clock    func() time.Time
	Logger   *slog.Logger
}

// DefaultDeadline is the answer deadline when Config.Deadline is unset.
const DefaultDeadline = 8 * time.Second

// Engine answers gate queries. Identical concurrent asks are evaluated
// once; answers are reused for CacheTTL.
type Engine struct {
	cfg   Config
	group singleflight.Group
	mu    sync.Mutex
	cache map[string]cached
	// gens counts the invalidations of each service/environment: an
	// evaluation caches its answer only if no invalidation happened
	// since it began, and asks after an invalidation never join a flight
	// that began before it.
	gens  map[string]uint64
	evals func()
	// beforeJoin, when set, runs between an ask's cache miss and its
	// joining a flight (tests only: the window of the race it closes).
	beforeJoin func()
	logger     *slog.Logger
	answers    *prometheus.CounterVec
	dryRuns    *prometheus.CounterVec
	limit      *evalLimit // limit.go
	// fixedSample selects the fixed-sample rules the canary and
	// verification checks used before the anytime-valid tests (tests and
	// the decision-quality benchmark only).
	fixedSample bool
}

type cached struct {
	answer  Answer
	expires time.Time
	gen     uint64 // the generation of the evaluation that made it
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
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, cache: map[string]cached{}, gens: map[string]uint64{}, logger: cfg.Logger.With("component", "gate"),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_gate_answers_total",
			Help: "Fresh gate answers by service, environment and decision (error: a source fault answered 503); point-in-time answers are not counted.",
		}, []string{"service", "environment", "decision"}),
		dryRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_gate_dry_run_total",
			Help: "Fresh gate answers with a dry-run check, by the real verdict the dry run kept from the decision.",
		}, []string{"service", "environment", "decision"}),
		limit: newEvalLimit(cfg.MaxConcurrentEvaluations, cfg.EvaluationWait),
	}
	if cfg.Registry != nil {
		for _, c := range append([]prometheus.Collector{e.answers, e.dryRuns}, e.limit.collectors()...) {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("gate: metrics: %w", err)
			}
		}
	}
	return e, nil
}

// OnEvaluate sets a hook called once per fresh evaluation (for metrics and
// tests). Not safe to call concurrently with Evaluate.
func (e *Engine) OnEvaluate(f func()) { e.evals = f }

// Evaluate answers a gate query. An error means the evaluation could not
// run (unknown service or deploy, a store failure) or, as a
// *SourceFaultError, that a failed source kept it from a decision and the
// policy says onSourceError: error. Missing data and failed sources are
// never promote.
func (e *Engine) Evaluate(ctx context.Context, req Request) (Answer, error) {
	if req.Service == "" || req.Environment == "" {
		return Answer{}, fmt.Errorf("%w: service and environment are required", ErrInvalid)
	}
	now := e.cfg.Clock()
	if !req.At.IsZero() {
		if req.At.After(now.Add(time.Minute)) {
			return Answer{}, fmt.Errorf("%w: at %s is in the future", ErrInvalid, req.At.UTC().Format(time.RFC3339))
		}
		// A point-in-time answer neither reads nor fills the live cache.
		return e.fresh(ctx, req, 0)
	}
	gen := e.generation(req.Service, req.Environment)
	key := req.key()
	if a, ok := e.cached(key, gen, now); ok {
		return a, nil
	}
	if e.beforeJoin != nil {
		e.beforeJoin()
	}
	// The generation is part of the flight's key: an ask made after an
	// invalidation (a deploy, an override revoked) never joins a flight
	// that read the world before it.
	ch := e.group.DoChan(fmt.Sprintf("%s\x00%d", key, gen), func() (any, error) {
		// An identical flight may have ended, its answer cached, between
		// this ask's miss above and now: that answer, not a second
		// evaluation.
		if a, ok := e.cached(key, gen, e.cfg.Clock()); ok {
			return a, nil
		}
		return e.fresh(ctx, req, gen)
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

// fresh evaluates, records and (for a live ask whose generation is still
// current) caches an answer. The evaluation outlives a caller that gives
// up: others may wait for it, and its answer is cached.
func (e *Engine) fresh(ctx context.Context, req Request, gen uint64) (Answer, error) {
	// The global limit on evaluations that query the sources (limit.go);
	// the wait for a slot ends with the caller.
	release, err := e.limit.acquire(ctx)
	if err != nil {
		return Answer{}, fmt.Errorf("gate %s/%s: %w", req.Service, req.Environment, err)
	}
	defer release()
	// One deadline for the whole answer: the checks end a tenth (at most
	// 1s) before it, and recording the answer must be done by it, so the
	// client never waits past Deadline.
	deadline := time.Now().Add(e.cfg.Deadline)
	reserve := min(e.cfg.Deadline/10, time.Second)
	base := context.WithoutCancel(ctx)
	ctx, cancel := context.WithDeadlineCause(base, deadline.Add(-reserve),
		fmt.Errorf("gate evaluation of %s/%s passed its deadline of %s: %w", req.Service, req.Environment, e.cfg.Deadline, slo.ErrTimeout))
	defer cancel()
	a, fault, err := e.evaluate(ctx, req)
	if err != nil {
		return Answer{}, err
	}
	if e.cfg.Recorder != nil {
		rctx, rcancel := context.WithDeadlineCause(base, deadline,
			fmt.Errorf("recording the answer passed the deadline of %s", e.cfg.Deadline))
		err := e.cfg.Recorder.Record(rctx, a)
		rcancel()
		if err != nil {
			return Answer{}, fmt.Errorf("recording answer %s: %w", a.EvaluationID, err)
		}
	}
	if a.At == nil {
		d := string(a.Decision)
		if fault {
			d = string(slogate.Fault)
		}
		e.answers.WithLabelValues(a.Service, a.Environment, d).Inc()
		if a.DryRun != nil {
			e.dryRuns.WithLabelValues(a.Service, a.Environment, string(a.DryRun.Decision)).Inc()
		}
	}
	if fault {
		// Not cached: the retry that the 503 asks for measures again.
		return Answer{}, &SourceFaultError{Answer: a}
	}
	if e.cfg.CacheTTL > 0 && a.At == nil {
		now := e.cfg.Clock()
		e.mu.Lock()
		if e.gens[genKey(req.Service, req.Environment)] == gen {
			for k, c := range e.cache {
				if !now.Before(c.expires) {
					delete(e.cache, k)
				}
			}
			e.cache[req.key()] = cached{answer: a, expires: now.Add(e.cfg.CacheTTL), gen: gen}
		}
		e.mu.Unlock()
	}
	return a, nil
}

// cached is the answer cached for key, if it is still fresh at now and was
// cached in generation gen or later.
func (e *Engine) cached(key string, gen uint64, now time.Time) (Answer, bool) {
	if e.cfg.CacheTTL <= 0 {
		return Answer{}, false
	}
	e.mu.Lock()
	c, ok := e.cache[key]
	e.mu.Unlock()
	if !ok || !now.Before(c.expires) || c.gen < gen {
		return Answer{}, false
	}
	a := c.answer
	a.Cached = true
	return a, true
}

func genKey(service, env string) string { return service + "\x00" + env }

func (e *Engine) generation(service, env string) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gens[genKey(service, env)]
}

// Invalidate drops cached answers of a service (a deploy or an override
// changed what they depend on). An evaluation already running when it is
// called does not cache its answer, and later asks do not join it.
func (e *Engine) Invalidate(service, env string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gens[genKey(service, env)]++
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

// evaluate runs the checks of the service's policy. fault is true when a
// failed source kept the answer from a decision and the policy's
// onSourceError is error.
func (e *Engine) evaluate(ctx context.Context, req Request) (a Answer, fault bool, err error) {
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
		return Answer{}, false, fmt.Errorf("gate %s/%s: %w: no SLO has service %q", req.Service, req.Environment, ErrUnknownService, req.Service)
	}
	now := e.cfg.Clock().UTC()
	if !req.At.IsZero() {
		now = req.At.UTC()
	}
	policy := set.Policy(req.Service, req.Environment)
	a = Answer{
		EvaluationID: newEvaluationID(),
		Service:      req.Service, Environment: req.Environment,
		Version: req.Version, DeployID: req.DeployID, Baseline: req.BaselineVersion,
		Policy: policy.Name, EvaluatedAt: e.cfg.Clock().UTC(), Checks: []Check{},
	}
	if !req.At.IsZero() {
		a.At = &now
	}
	deploy, hasDeploy, err := e.findDeploy(ctx, req, now)
	if err != nil {
		return Answer{}, false, err
	}
	if hasDeploy {
		a.DeployID = deploy.ID
		if a.Version == "" {
			a.Version = deploy.Version
		}
	}
	if a.Baseline == "" && hasDeploy {
		a.Baseline, err = e.baseline(ctx, deploy)
		if err != nil {
			return Answer{}, false, err
		}
	}

	budget := !policy.Budget.Disabled && req.wants(KindBudget)
	verification := !policy.Verification.Disabled && a.Version != "" && req.wants(KindVerification)
	canary := policy.Canary != nil && a.Version != "" && req.wants(KindCanary)

	var override *Override
	if budget && e.cfg.Overrides != nil {
		o, ok, err := e.cfg.Overrides.Active(ctx, req.Service, req.Environment, now)
		if err != nil {
			return Answer{}, false, fmt.Errorf("gate %s/%s: overrides: %w", req.Service, req.Environment, err)
		}
		if ok {
			override = &o
		}
	}

	ctx, objs, unexpanded := e.cfg.Measurer.Expand(ctx, objs, now) // group.go
	for _, u := range unexpanded {
		a.Checks = append(a.Checks, unexpandedCheck(u, policy))
	}
	checks := make([][]Check, len(objs))
	var wg sync.WaitGroup
	for i, o := range objs {
		wg.Go(func() {
			var cs []Check
			if budget {
				c := e.budgetCheck(ctx, o, policy, now, override)
				c.DryRun = policy.DryRun(policy.Budget.Mode)
				cs = append(cs, c)
			}
			if verification {
				check := e.verificationCheck
				if o.Threshold != nil { // gate/threshold.go
					check = e.thresholdCheck
				}
				c := check(ctx, o, policy, a.Version, deploy, hasDeploy, now)
				c.DryRun = policy.DryRun(policy.Verification.Mode)
				cs = append(cs, c)
			}
			if canary {
				c := e.canaryCheck(ctx, o, policy, a.Version, a.Baseline, deploy, hasDeploy, now)
				c.DryRun = policy.DryRun(policy.Canary.Mode)
				cs = append(cs, c)
			}
			if h, ok := o.SLI.Histogram(); ok && canary {
				c := e.latencyCheck(ctx, o, h, policy, a.Version, a.Baseline, deploy, hasDeploy, now)
				c.DryRun = policy.DryRun(policy.Canary.Mode)
				cs = append(cs, c)
			}
			checks[i] = cs
		})
	}
	wg.Wait()
	for _, cs := range checks {
		a.Checks = append(a.Checks, cs...)
	}
	var enforced []Check
	for _, c := range a.Checks {
		if !c.DryRun {
			enforced = append(enforced, c)
		}
	}
	real, realReason := decide(a.Checks)
	switch {
	case len(enforced) == len(a.Checks):
		a.Decision, a.Reason = real, realReason
	case len(enforced) == 0:
		// Every check is a dry run: the release goes on, and the real
		// verdict is kept beside the answer.
		a.Decision, a.Reason = slogate.Promote, "dry run: "+realReason
	default:
		a.Decision, a.Reason = decide(enforced)
	}
	if len(enforced) != len(a.Checks) && real != a.Decision {
		a.DryRun = &Outcome{Decision: real, Reason: realReason}
	}
	if len(a.Checks) == 0 && len(req.Checks) > 0 {
		// The moment asked for (a Flagger hook) has checks the policy
		// turns off: nothing holds it. Without a restriction, no check at
		// all is a halt (decide).
		a.Decision, a.Reason = slogate.Promote, fmt.Sprintf("policy %s runs no %s check: nothing to hold at this moment", policy.Name, strings.Join(req.Checks, " or "))
	}
	fault = a.Decision == slogate.Fault
	a.Verdict = Outcome{Decision: a.Decision, Reason: a.Reason}
	span.SetAttributes(attribute.String("slogate.decision", string(a.Decision)), attribute.String("slogate.evaluation_id", a.EvaluationID))
	e.logger.InfoContext(ctx, "gate answer", "evaluation_id", a.EvaluationID, "service", a.Service,
		"environment", a.Environment, "version", a.Version, "decision", a.Decision, "reason", a.Reason,
		"dry_run", a.DryRun != nil, "at", a.At)
	return a, fault, nil
}

// baseline is the version a canary is compared with: the deploy's
// previous version, else the version of the newest deploy before it that
// did not fail or roll back.
func (e *Engine) baseline(ctx context.Context, d slogate.Deploy) (string, error) {
	if d.PreviousVersion != "" || e.cfg.Deploys == nil {
		return d.PreviousVersion, nil
	}
	prev, found, err := e.cfg.Deploys.Latest(ctx, d.Service, d.Environment, d.StartedAt, d.Version)
	if err != nil {
		return "", fmt.Errorf("gate %s/%s: previous deploy: %w", d.Service, d.Environment, err)
	}
	if found && prev.Version != d.Version && !prev.Failed() {
		return prev.Version, nil
	}
	return "", nil
}

// findDeploy finds the deploy a request is about: by id, else the newest
// deploy of the version asked in the service's environment.
func (e *Engine) findDeploy(ctx context.Context, req Request, at time.Time) (slogate.Deploy, bool, error) {
	if e.cfg.Deploys == nil {
		if req.DeployID != "" {
			return slogate.Deploy{}, false, fmt.Errorf("%w: deployId %q: this gate records no deploys", ErrUnknownDeploy, req.DeployID)
		}
		return slogate.Deploy{}, false, nil
	}
	if req.DeployID != "" {
		d, err := e.cfg.Deploys.Deploy(ctx, req.DeployID)
		if err != nil {
			return slogate.Deploy{}, false, err
		}
		if d.Service != req.Service || d.Environment != req.Environment {
			return slogate.Deploy{}, false, fmt.Errorf("%w: deploy %s is of %s/%s, not %s/%s", ErrInvalid, d.ID, d.Service, d.Environment, req.Service, req.Environment)
		}
		if req.Version != "" && d.Version != req.Version {
			return slogate.Deploy{}, false, fmt.Errorf("%w: deploy %s is of version %s, not %s", ErrInvalid, d.ID, d.Version, req.Version)
		}
		if d.StartedAt.After(at) {
			return slogate.Deploy{}, false, fmt.Errorf("%w: deploy %s started at %s, after %s", ErrInvalid, d.ID,
				d.StartedAt.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		}
		return d, true, nil
	}
	if req.Version == "" {
		return slogate.Deploy{}, false, nil
	}
	d, found, err := e.cfg.Deploys.OfVersion(ctx, req.Service, req.Environment, req.Version, at)
	if err != nil {
		return slogate.Deploy{}, false, fmt.Errorf("gate %s/%s: deploy of version %s: %w", req.Service, req.Environment, req.Version, err)
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

// decide folds the checks: halt if any fails on evidence, else Fault if
// a source failed (onSourceError: error), else wait if any waits, else
// promote. The reason is the first deciding check's.
func decide(checks []Check) (slogate.Decision, string) {
	for _, v := range []struct {
		verdict  Verdict
		decision slogate.Decision
	}{{Fail, slogate.Halt}, {Errored, slogate.Fault}, {Pending, slogate.Wait}} {
		for _, c := range checks {
			if c.Verdict == v.verdict {
				return v.decision, shortReason(c)
			}
		}
	}
	if len(checks) == 0 {
		// Nothing was measured: never promote without evidence.
		return slogate.Halt, "no check applies: the policy turns every check off"
	}
	return slogate.Promote, fmt.Sprintf("all %d checks pass", len(checks))
}
