package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/store"
)

// storeDeploys lets the gate read deploys from the store.
type storeDeploys struct{ s store.Store }

func gateDeploy(d store.Deploy) gate.Deploy {
	return gate.Deploy{ID: d.ID, Service: d.Service, Environment: d.Environment, Version: d.Version,
		PreviousVersion: d.PreviousVersion, StartedAt: d.StartedAt, Status: d.Status}
}

func (a storeDeploys) Deploy(ctx context.Context, id string) (gate.Deploy, error) {
	d, err := a.s.GetDeploy(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return gate.Deploy{}, fmt.Errorf("deploy %q: %w", id, gate.ErrUnknownDeploy)
	}
	if err != nil {
		return gate.Deploy{}, err
	}
	return gateDeploy(d), nil
}

// Latest is the newest deploy started strictly before the instant, of
// another version, that did not fail or roll back: a canary's baseline.
// A redeploy of the same version looks past the earlier deploys of it.
func (a storeDeploys) Latest(ctx context.Context, service, env string, before time.Time, notVersion string) (gate.Deploy, bool, error) {
	return a.newest(ctx, store.DeployFilter{Service: service, Environment: env, Before: before}, func(d store.Deploy) bool {
		return d.StartedAt.Before(before) && d.Version != notVersion && d.Status != store.StatusFailed && d.Status != store.StatusRolledBack
	})
}

// ofVersionScan bounds how many recent deploys a lookup looks through.
const ofVersionScan = 1000

// OfVersion is the newest deploy of the version started at or before the
// instant (a point-in-time ask sees only the deploys that had begun).
func (a storeDeploys) OfVersion(ctx context.Context, service, env, version string, before time.Time) (gate.Deploy, bool, error) {
	return a.newest(ctx, store.DeployFilter{Service: service, Environment: env, Before: before}, func(d store.Deploy) bool {
		return d.Version == version
	})
}

// newest is the first deploy of the filter's pages, newest first, that
// matches.
func (a storeDeploys) newest(ctx context.Context, f store.DeployFilter, match func(store.Deploy) bool) (gate.Deploy, bool, error) {
	f.Limit = 200
	for seen := 0; seen < ofVersionScan; {
		page, next, err := a.s.ListDeploys(ctx, f)
		if err != nil {
			return gate.Deploy{}, false, err
		}
		for _, d := range page {
			if match(d) {
				return gateDeploy(d), true, nil
			}
		}
		seen += len(page)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	return gate.Deploy{}, false, nil
}

// storeOverrides lets the gate find break-glass overrides.
type storeOverrides struct{ s store.Store }

func (a storeOverrides) Active(ctx context.Context, service, env string, at time.Time) (gate.Override, bool, error) {
	o, ok, err := a.s.ActiveOverride(ctx, service, env, at)
	if err != nil || !ok {
		return gate.Override{}, false, err
	}
	return gate.Override{ID: o.ID, Reason: o.Reason, CreatedBy: o.CreatedBy, ExpiresAt: o.ExpiresAt}, true, nil
}

// storeRecorder writes every fresh gate answer to the store (the audit
// trail) with the notifications it causes, in one transaction.
type storeRecorder struct {
	s      store.Store
	outbox func(ctx context.Context, a gate.Answer) []store.OutboxMessage
	// wake, when set, is called after an answer with notifications is
	// stored (the dispatcher delivers them at once).
	wake func()
}

// ActionBacktest is the audit action of a point-in-time answer: it is
// recorded, but never as a live decision and never notified.
const ActionBacktest = "gate.backtest"

func (r storeRecorder) Record(ctx context.Context, a gate.Answer) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if a.At != nil {
		return r.s.Audit(ctx, store.AuditEntry{At: a.EvaluatedAt, Actor: "gate", Action: ActionBacktest,
			Subject: a.EvaluationID, Detail: string(body)})
	}
	var msgs []store.OutboxMessage
	if r.outbox != nil && a.Decision != gate.Fault {
		// A source fault is no decision: nothing to notify.
		msgs = r.outbox(ctx, a)
	}
	_, err = r.s.SaveDecision(ctx, store.Decision{
		EvaluationID: a.EvaluationID, Service: a.Service, Environment: a.Environment,
		Version: a.Version, DeployID: a.DeployID, Decision: string(a.Decision), Reason: a.Reason,
		Body: body, EvaluatedAt: a.EvaluatedAt,
	}, msgs...)
	if err == nil && len(msgs) > 0 && r.wake != nil {
		r.wake()
	}
	return err
}
