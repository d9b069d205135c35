package slo

import "time"

// OnNoData says what the gate answers when data is missing or a source
// failed: never promote.
type OnNoData string

const (
	NoDataHalt OnNoData = "halt"
	NoDataWait OnNoData = "wait"
)

// OnSourceError says what the gate answers when a source fails
// (unreachable, timeout, 5xx, partial response): never promote.
type OnSourceError string

const (
	// SourceErrorError answers HTTP 503 with the checks: clients count an
	// error and retry (Argo's consecutiveErrorLimit, Flagger's next
	// iteration).
	SourceErrorError OnSourceError = "error"
	SourceErrorHalt  OnSourceError = "halt"
	SourceErrorWait  OnSourceError = "wait"
)

// Mode says whether a policy or one of its checks blocks releases
// (enforce) or only records its real verdict (dryRun: the answer is
// promote and the real verdict is kept beside it).
type Mode string

const (
	ModeEnforce Mode = "enforce"
	ModeDryRun  Mode = "dryRun"
)

// GatePolicy is slogate's own kind (apiVersion slogate.dev/v1): which checks
// the gate runs for a service, and their thresholds.
type GatePolicy struct {
	Name         string
	Service      string
	Environments []string
	Budget       BudgetPolicy
	Verification VerificationPolicy
	// Canary is nil when canary-vs-baseline comparison is off.
	Canary   *CanaryPolicy
	OnNoData OnNoData
	// OnSourceError is the answer when a source fails (default error:
	// HTTP 503).
	OnSourceError OnSourceError
	// Mode dryRun makes every check of the policy a dry run.
	Mode Mode
	// Default is true for the policy made up for a service that has none.
	Default bool
	Pos     Position
}

// BudgetPolicy is the error-budget check run before a deploy.
type BudgetPolicy struct {
	// MinRemaining is the fraction of budget that must be left, in [0,1).
	MinRemaining float64
	// Disabled turns the check off.
	Disabled bool
	Mode     Mode
}

// VerificationPolicy is the post-deploy check of a new version.
type VerificationPolicy struct {
	MinDuration  time.Duration
	MinEvents    float64
	MaxBurnRate  float64
	VersionLabel string
	Disabled     bool
	Mode         Mode
}

// CanaryPolicy is the canary-vs-baseline comparison.
type CanaryPolicy struct {
	// Tolerance is how much worse (absolute error ratio) the canary may be.
	Tolerance float64
	// Confidence is the confidence level of the one-sided test, in (0,1).
	Confidence float64
	Mode       Mode
}

// Defaults of the policy given to a service with SLOs but no GatePolicy,
// documented in docs/slo-files.md.
const (
	DefaultMinDuration  = 10 * time.Minute
	DefaultMinEvents    = 100
	DefaultMaxBurnRate  = 2
	DefaultVersionLabel = "version"
	DefaultConfidence   = 0.95
	// DefaultTolerance is how much worse (absolute error ratio) a canary
	// may be than its baseline when `canary: {}` gives none: half a
	// percentage point. Zero would never let equal versions pass (no
	// sample shows a difference of exactly 0 or less); 0.5 point is
	// resolved within an hour at about 1,000 requests a minute per side
	// with a 1 % baseline error ratio, and the verification check still
	// holds the version to maxBurnRate on its own (docs/statistics.md).
	DefaultTolerance = 0.005
)

// DefaultPolicy is the policy of a service that has SLOs but no GatePolicy:
// the budget must not be spent, a new version must not burn faster than
// 2× for 10 minutes and 100 events, no canary comparison, halt on no data.
func DefaultPolicy(service string) GatePolicy {
	return GatePolicy{
		Name:    service + "-default",
		Service: service,
		Budget:  BudgetPolicy{MinRemaining: 0, Mode: ModeEnforce},
		Verification: VerificationPolicy{
			MinDuration:  DefaultMinDuration,
			MinEvents:    DefaultMinEvents,
			MaxBurnRate:  DefaultMaxBurnRate,
			VersionLabel: DefaultVersionLabel,
			Mode:         ModeEnforce,
		},
		OnNoData:      NoDataHalt,
		OnSourceError: SourceErrorError,
		Mode:          ModeEnforce,
		Default:       true,
	}
}

// DryRun reports whether a check of the given kind's mode (or the whole
// policy) is a dry run.
func (p GatePolicy) DryRun(check Mode) bool {
	return p.Mode == ModeDryRun || check == ModeDryRun
}
