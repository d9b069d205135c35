// Package decisions is the use case "record a gate answer with its
// notifications": every fresh answer is stored as a slogate.DecisionRecord
// (the audit trail) together with the outbox messages it causes (Grafana
// annotations, GitHub issues, ...), in one store transaction, and their
// delivery is woken. A point-in-time answer (a backtest) is audited, never
// recorded as a live decision nor notified; a source fault is recorded and
// notified to no one. It also gives the gate the overrides in force.
// cmd only wires it: decisions.New(...) is the gate's Recorder.
package decisions

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/internal/deploys"
	"github.com/slogate/slogate/store"
)

// ActionBacktest is the audit action of a point-in-time answer: it is
// recorded, but never as a live decision and never notified.
const ActionBacktest = "gate.backtest"

// Config configures a Recorder. Store is required.
type Config struct {
	Store store.Store
	// Notifier, when nil, records answers without notifications.
	// *alerting.Dispatcher satisfies it.
	Notifier deploys.Notifier
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Recorder records the gate's answers (gate.Recorder).
type Recorder struct {
	store    store.Store
	notifier deploys.Notifier
	logger   *slog.Logger
}

var _ gate.Recorder = (*Recorder)(nil)

// New checks cfg.
func New(cfg Config) (*Recorder, error) {
	if cfg.Store == nil {
		return nil, errors.New("decisions: store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{store: cfg.Store, notifier: cfg.Notifier, logger: cfg.Logger}, nil
}

// Record stores a with its notifications (none for a source fault), in
// one transaction, then wakes their delivery. An answer asked for an
// instant (a.At set) is written to the audit log as ActionBacktest only.
func (r *Recorder) Record(ctx context.Context, a gate.Answer) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if a.At != nil {
		return r.store.Audit(ctx, store.AuditEntry{At: a.EvaluatedAt, Actor: "gate", Action: ActionBacktest,
			Subject: a.EvaluationID, Detail: string(body)})
	}
	var msgs []slogate.OutboxMessage
	if r.notifier != nil && a.Decision != slogate.Fault {
		// A source fault is no decision: nothing to notify.
		msgs = r.outbox(ctx, a)
	}
	_, err = r.store.SaveDecision(ctx, slogate.DecisionRecord{
		EvaluationID: a.EvaluationID, Service: a.Service, Environment: a.Environment,
		Version: a.Version, DeployID: a.DeployID, Decision: a.Decision, Reason: a.Reason,
		Body: body, EvaluatedAt: a.EvaluatedAt,
	}, msgs...)
	if err == nil && len(msgs) > 0 {
		r.notifier.Wake()
	}
	return err
}

// outbox builds the notifications of an answer, with the deploy it is
// about when the store knows it (its pipeline link, commit). An answer
// whose notifications cannot be built is recorded without them, and said.
func (r *Recorder) outbox(ctx context.Context, a gate.Answer) []slogate.OutboxMessage {
	e := alerting.Event{Kind: alerting.KindDecision, At: a.EvaluatedAt, Decision: &a}
	if a.DeployID != "" {
		if dep, err := r.store.GetDeploy(ctx, a.DeployID); err == nil {
			e.DecisionDeploy = deploys.InEvent(dep)
			if dep.PipelineURL != "" {
				e.Links = append(e.Links, alerting.Link{Href: dep.PipelineURL, Text: "pipeline"})
			}
		}
	}
	msgs, err := r.notifier.Messages(e)
	if err != nil {
		r.logger.Error("notifications of a gate answer", "evaluation_id", a.EvaluationID, "err", err)
		return nil
	}
	return msgs
}

// Overrides is the gate's view of the break-glass overrides in force
// (gate.Overrides), read from the store.
type Overrides struct{ Store store.Store }

var _ gate.Overrides = Overrides{}

// Active is the newest override of service in env in force at the instant.
func (o Overrides) Active(ctx context.Context, service, env string, at time.Time) (gate.Override, bool, error) {
	ov, ok, err := o.Store.ActiveOverride(ctx, service, env, at)
	if err != nil || !ok {
		return gate.Override{}, false, err
	}
	return gate.Override{ID: ov.ID, Reason: ov.Reason, CreatedBy: ov.CreatedBy, ExpiresAt: ov.ExpiresAt}, true, nil
}
