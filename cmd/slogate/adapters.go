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
		PreviousVersion: d.PreviousVersion, StartedAt: d.StartedAt}
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

func (a storeDeploys) Latest(ctx context.Context, service, env string, before time.Time) (gate.Deploy, bool, error) {
	d, err := a.s.LatestDeploy(ctx, service, env, before)
	if errors.Is(err, store.ErrNotFound) {
		return gate.Deploy{}, false, nil
	}
	if err != nil {
		return gate.Deploy{}, false, err
	}
	return gateDeploy(d), true, nil
}

// ofVersionScan bounds how many recent deploys OfVersion looks through.
const ofVersionScan = 1000

func (a storeDeploys) OfVersion(ctx context.Context, service, env, version string) (gate.Deploy, bool, error) {
	f := store.DeployFilter{Service: service, Environment: env, Limit: 200}
	for seen := 0; seen < ofVersionScan; {
		page, next, err := a.s.ListDeploys(ctx, f)
		if err != nil {
			return gate.Deploy{}, false, err
		}
		for _, d := range page {
			if d.Version == version {
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

func (r storeRecorder) Record(ctx context.Context, a gate.Answer) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	var msgs []store.OutboxMessage
	if r.outbox != nil {
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
