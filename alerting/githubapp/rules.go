package githubapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"strings"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
)

// Gate answers the budget question (gate.Engine satisfies it).
type Gate interface {
	Evaluate(ctx context.Context, req gate.Request) (gate.Answer, error)
}

// Item is a pending rule as the Queue holds it.
type Item struct {
	ID int64
	// Payload is the Pending rule, JSON.
	Payload []byte
	// Attempts counts the claims so far, this one included: it is how
	// the runner knows, across restarts, how many times it has asked.
	Attempts  int
	CreatedAt time.Time
}

// Queue keeps pending rules durably (the store's outbox, under its own
// peer name: internal/rulequeue). A key is
// enqueued once: a second Enqueue of it is ignored.
type Queue interface {
	Enqueue(ctx context.Context, key string, payload []byte) error
	// Claim leases up to limit due items until now+lease and counts the
	// attempt; a leased item is claimed by no one else.
	Claim(ctx context.Context, limit int, lease time.Duration, now time.Time) ([]Item, error)
	// Reschedule releases an item until next, with a note on why.
	Reschedule(ctx context.Context, id int64, note string, next time.Time) error
	// Done ends an answered rule.
	Done(ctx context.Context, id int64) error
	// Abandon ends a rule that cannot be answered (a final refusal of
	// GitHub), keeping why.
	Abandon(ctx context.Context, id int64, why string) error
}

// Pending is one protection rule waiting for slogate's answer.
type Pending struct {
	DeploymentID   int64  `json:"deploymentId"`
	RunID          int64  `json:"runId"`
	Owner          string `json:"owner"`
	Repo           string `json:"repo"`
	InstallationID int64  `json:"installationId"`
	CallbackURL    string `json:"callbackUrl"`
	// Environment is GitHub's environment name (the callback's
	// environment_name), and slogate's environment.
	Environment string    `json:"environment"`
	Service     string    `json:"service"`
	Version     string    `json:"version,omitempty"`
	DeployID    string    `json:"deployId,omitempty"`
	RequestedAt time.Time `json:"requestedAt"`
	// Deadline: still waiting then, the rule is rejected.
	Deadline time.Time `json:"deadline"`
}

// Key is the rule's idempotency key: GitHub's deployment id and run id.
func (p Pending) Key() string { return fmt.Sprintf("%d/%d", p.DeploymentID, p.RunID) }

// Defaults of RulesConfig.
const (
	DefaultDeadline = 2 * time.Hour
	DefaultInterval = time.Minute
	// MaxDeadline: GitHub fails a waiting job after 30 days.
	MaxDeadline = 30 * 24 * time.Hour
	// MaxReports is how many status reports GitHub takes per deployment.
	MaxReports = 10
)

// RulesConfig configures Rules. App, Gate and Queue are required.
type RulesConfig struct {
	App   *App
	Gate  Gate
	Queue Queue
	// Deadline (2h, at most 30 days): a rule still waiting this long after
	// it was requested is rejected.
	Deadline time.Duration
	// Interval (1m) is how often a waiting rule asks the gate again.
	Interval time.Duration
	// DecisionURL links a decision in comments (e.g. the external URL +
	// /v1/decisions/{id}); nil names the evaluation id only.
	DecisionURL func(evaluationID string) string
	// Poll (1s) is how often due rules are looked for without a Wake.
	Poll   time.Duration
	Logger *slog.Logger
	Clock  func() time.Time
}

// Rules answers pending protection rules.
type Rules struct {
	cfg    RulesConfig
	logger *slog.Logger
	wake   chan struct{}
}

// lease is how long a claimed rule is reserved; one rule's processing
// (a gate answer and two GitHub calls, each with its deadline) stays
// well below it.
const (
	lease       = 2 * time.Minute
	itemTimeout = time.Minute
	batch       = 8
)

// NewRules checks cfg and fills its defaults.
func NewRules(cfg RulesConfig) (*Rules, error) {
	var errs []error
	if cfg.App == nil {
		errs = append(errs, errors.New("app is required"))
	}
	if cfg.Gate == nil {
		errs = append(errs, errors.New("gate is required"))
	}
	if cfg.Queue == nil {
		errs = append(errs, errors.New("queue is required"))
	}
	switch {
	case cfg.Deadline == 0:
		cfg.Deadline = DefaultDeadline
	case cfg.Deadline < 0 || cfg.Deadline > MaxDeadline:
		errs = append(errs, fmt.Errorf("deadline: want between 0 and 30 days (GitHub fails a waiting job after 30 days), got %s", cfg.Deadline))
	}
	switch {
	case cfg.Interval == 0:
		cfg.Interval = DefaultInterval
	case cfg.Interval < 0:
		errs = append(errs, fmt.Errorf("interval: must be positive, got %s", cfg.Interval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("githubapp: %w", err)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Rules{cfg: cfg, logger: cfg.Logger.With("component", "githubapp"), wake: make(chan struct{}, 1)}, nil
}

// Deadline is the configured deadline.
func (r *Rules) Deadline() time.Duration { return r.cfg.Deadline }

// Request enqueues a rule once (by its Key), after checking its callback
// URL: one that is not under the API base is refused, logged and never
// fetched (the error says why, for the webhook's answer).
func (r *Rules) Request(ctx context.Context, p Pending) error {
	cb, err := r.cfg.App.CheckCallback(p.CallbackURL)
	if err != nil {
		r.logger.WarnContext(ctx, "protection rule refused: its callback URL is not under the API base", "deployment", p.DeploymentID,
			"repository", p.Owner+"/"+p.Repo, "reason", err.Error())
		return &CallbackError{Reason: err.Error()}
	}
	p.Owner, p.Repo, p.RunID, p.CallbackURL = cb.Owner, cb.Repo, cb.RunID, cb.URL
	if p.RequestedAt.IsZero() {
		p.RequestedAt = r.cfg.Clock().UTC()
	}
	p.Deadline = p.RequestedAt.Add(r.cfg.Deadline)
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("githubapp: encoding the rule: %w", err)
	}
	if err := r.cfg.Queue.Enqueue(ctx, p.Key(), b); err != nil {
		return fmt.Errorf("githubapp: enqueueing the rule: %w", err)
	}
	r.logger.InfoContext(ctx, "protection rule pending", "deployment", p.DeploymentID, "run", p.RunID,
		"service", p.Service, "environment", p.Environment, "deadline", p.Deadline)
	r.Wake()
	return nil
}

// CheckCallback refuses a callback URL that is not under the API base,
// fetching nothing.
func (r *Rules) CheckCallback(raw string) error {
	_, err := r.cfg.App.CheckCallback(raw)
	return err
}

// CallbackError is a rule refused for its callback URL.
type CallbackError struct{ Reason string }

func (e *CallbackError) Error() string { return "deployment_callback_url " + e.Reason }

// Wake makes Run look for due rules now.
func (r *Rules) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run answers due rules until ctx ends.
func (r *Rules) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Poll)
	defer t.Stop()
	failures := 0
	for ctx.Err() == nil {
		items, err := r.cfg.Queue.Claim(ctx, batch, lease, r.cfg.Clock())
		switch {
		case err != nil && ctx.Err() == nil:
			if failures == 0 {
				r.logger.Warn("claiming protection rules failed", "error", err)
			}
			failures++
		case err == nil:
			failures = 0
		}
		for _, it := range items {
			r.process(ctx, it)
		}
		if len(items) == batch {
			continue
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-t.C:
		}
	}
}

// outcome is what one attempt at a rule did.
type outcome struct {
	done    bool      // answered: Done
	abandon string    // a final failure: Abandon with it
	next    time.Time // else: ask again then
	note    string
}

func (r *Rules) process(ctx context.Context, it Item) {
	book := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	}
	var p Pending
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		bctx, cancel := book()
		defer cancel()
		r.logger.Error("protection rule undecodable: dropped", "id", it.ID, "error", err)
		if err := r.cfg.Queue.Abandon(bctx, it.ID, "undecodable: "+err.Error()); err != nil {
			r.logger.Error("could not drop an undecodable protection rule", "id", it.ID, "error", err)
		}
		return
	}
	logger := r.logger.With("deployment", p.DeploymentID, "run", p.RunID, "service", p.Service, "environment", p.Environment, "attempt", it.Attempts)
	ictx, cancel := context.WithTimeout(ctx, itemTimeout)
	o := r.attempt(ictx, logger, p, it.Attempts)
	cancel()
	bctx, bcancel := book()
	defer bcancel()
	var err error
	switch {
	case ctx.Err() != nil && !o.done && o.abandon == "":
		err = r.cfg.Queue.Reschedule(bctx, it.ID, "stopped while answering", r.cfg.Clock())
	case o.done:
		err = r.cfg.Queue.Done(bctx, it.ID)
	case o.abandon != "":
		logger.Error("protection rule given up: GitHub refused the answer and a retry cannot fix it", "error", o.abandon)
		err = r.cfg.Queue.Abandon(bctx, it.ID, o.abandon)
	default:
		err = r.cfg.Queue.Reschedule(bctx, it.ID, o.note, o.next)
	}
	if err != nil {
		logger.Error("protection rule state not saved; its lease runs out and it is asked again", "error", err)
	}
}

// attempt asks the gate once and answers GitHub.
func (r *Rules) attempt(ctx context.Context, logger *slog.Logger, p Pending, attempt int) outcome {
	now := r.cfg.Clock()
	a, err := r.cfg.Gate.Evaluate(ctx, gate.Request{
		Service: p.Service, Environment: p.Environment, DeployID: p.DeployID, Checks: []string{gate.KindBudget},
	})
	var sf *gate.SourceFaultError
	decision, reason := slogate.Wait, ""
	switch {
	case errors.As(err, &sf):
		// A source fault is not a decision: ask again, never approve.
		reason = "a telemetry source failed: " + sf.Error()
		a = sf.Answer
	case errors.Is(err, gate.ErrUnknownService):
		decision, reason = slogate.Halt, fmt.Sprintf("slogate knows no SLOs of service %q: map the repository to its service in webhooks.github.services", p.Service)
	case err != nil:
		reason = "slogate could not evaluate the gate: " + err.Error()
	default:
		decision, reason = a.Decision, a.Reason
	}
	link := ""
	if a.EvaluationID != "" {
		link = "evaluation " + a.EvaluationID
		if r.cfg.DecisionURL != nil {
			link = r.cfg.DecisionURL(a.EvaluationID)
		}
	}
	state := ""
	switch decision {
	case slogate.Promote:
		state = StateApproved
	case slogate.Halt:
		state = StateRejected
	default:
		if !now.Before(p.Deadline) {
			state = StateRejected
			reason = fmt.Sprintf("still waiting at the deadline (%s after the request): %s", p.Deadline.Sub(p.RequestedAt).Round(time.Second), reason)
		}
	}
	if state != "" {
		verb := map[string]string{StateApproved: "approved", StateRejected: "rejected"}[state]
		c := comment(fmt.Sprintf("slogate %s the deploy of %s to %s (error budget policy): ", verb, p.Service, p.Environment), reason, link)
		err := r.cfg.App.Review(ctx, p.InstallationID, p.CallbackURL, Review{EnvironmentName: p.Environment, State: state, Comment: c})
		if err != nil {
			return r.failed(logger, "answer "+state, err, now)
		}
		logger.Info("protection rule answered", "state", state, "reason", reason, "evaluation_id", a.EvaluationID)
		return outcome{done: true}
	}
	next := now.Add(r.cfg.Interval)
	if next.After(p.Deadline) {
		next = p.Deadline
	}
	if report(attempt) {
		c := comment(fmt.Sprintf("slogate is waiting to decide the deploy of %s to %s (asking again every %s until %s): ",
			p.Service, p.Environment, r.cfg.Interval, p.Deadline.UTC().Format(time.RFC3339)), reason, link)
		err := r.cfg.App.Review(ctx, p.InstallationID, p.CallbackURL, Review{EnvironmentName: p.Environment, Comment: c})
		if err != nil {
			// A report that does not go through is no reason to give up
			// the rule: it keeps waiting for a decision.
			logger.Warn("status report not posted", "error", err)
		}
	}
	logger.Info("protection rule waiting", "reason", reason, "next_ask", next)
	return outcome{next: next, note: "waiting: " + truncate(reason, 200)}
}

// failed turns a failed answer into a retry (with the rate limit's time)
// or, for a refusal a retry cannot fix, the rule's end.
func (r *Rules) failed(logger *slog.Logger, what string, err error, now time.Time) outcome {
	if !retryable(err) {
		return outcome{abandon: what + ": " + err.Error()}
	}
	next := now.Add(r.cfg.Interval)
	var se *StatusError
	if errors.As(err, &se) && se.NotBefore().After(next) {
		next = se.NotBefore()
	}
	logger.Warn("protection rule answer failed; will retry", "error", err, "next_attempt", next)
	return outcome{next: next, note: what + " failed: " + truncate(err.Error(), 200)}
}

// report tells whether attempt (1-based) posts a status report: the
// first, then each power of two, at most MaxReports in all — a number
// derived from the attempt count that the queue keeps, so a restart
// neither forgets nor repeats the count.
func report(attempt int) bool {
	return attempt >= 1 && attempt&(attempt-1) == 0 && bits.TrailingZeros(uint(attempt)) < MaxReports
}

// comment is head + reason + link, at most MaxComment characters: the
// reason is shortened, the link kept.
func comment(head, reason, link string) string {
	tail := ""
	if link != "" {
		tail = "\n\nDecision: " + link
	}
	room := MaxComment - len([]rune(head)) - len([]rune(tail))
	return head + truncate(reason, room) + tail
}

// truncate cuts s to at most n characters, ending in "…" when cut.
func truncate(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	if n <= 1 {
		return string(rs[:max(n, 0)])
	}
	return strings.TrimSpace(string(rs[:n-1])) + "…"
}
