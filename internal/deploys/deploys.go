// Package deploys is the use case "record a deploy with its
// notifications": a deploy recorded or finished is stored together with
// the outbox messages it causes (Grafana regions, Alertmanager, ...), in
// the store's transaction, and their delivery is woken. The API's deploy
// routes, the GitHub webhook and the Flagger hooks all record deploys
// through it; cmd only wires it. Lookup is the gate's view of the recorded
// deploys.
//
// The idempotency key covers what the client sent: the defaults the
// notifications need (id, start, status) are chosen here, and given to the
// store only in fields outside the key's body (ID, CreatedAt), so a retry
// with the same key and body is the same request.
package deploys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/store"
)

// Notifier turns an event into the outbox messages of every configured
// peer and wakes their delivery. *alerting.Dispatcher satisfies it.
type Notifier interface {
	Messages(e alerting.Event) ([]slogate.OutboxMessage, error)
	Wake()
}

// Config configures a Recorder. Store is required.
type Config struct {
	Store store.Store
	// Notifier, when nil, records deploys without notifications.
	Notifier Notifier
	// Clock defaults to time.Now.
	Clock func() time.Time
}

// Recorder records deploys with their notifications. It is a store.Store
// (every other method is the underlying store's), so it stands wherever
// the store does, e.g. api.Deps.Store.
type Recorder struct {
	store.Store
	notifier Notifier
	clock    func() time.Time
}

var _ store.Store = (*Recorder)(nil)

// New checks cfg.
func New(cfg Config) (*Recorder, error) {
	if cfg.Store == nil {
		return nil, errors.New("deploys: store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Recorder{Store: cfg.Store, notifier: cfg.Notifier, clock: cfg.Clock}, nil
}

// CreateDeploy records d as the client sent it, with the notifications of
// its start (alerting.KindDeployStarted) and the extra outbox messages, in
// one transaction, then wakes the delivery. A zero StartedAt is the
// instant of recording, for the stored deploy and its notifications alike.
// With an idempotency key, a second call with the same key and the same d
// stores and enqueues nothing and returns the first deploy with
// created=false; another d is store.ErrIdempotencyConflict.
func (r *Recorder) CreateDeploy(ctx context.Context, d slogate.Deploy, idempotencyKey string, outbox ...slogate.OutboxMessage) (slogate.Deploy, bool, error) {
	if r.notifier == nil {
		return r.Store.CreateDeploy(ctx, d, idempotencyKey, outbox...)
	}
	now := store.UTC(r.clock())
	if d.ID == "" {
		d.ID = store.NewID("dep")
	}
	d.CreatedAt = now
	// announced is d as the store will fill it in; d itself goes to the
	// store as sent, so that the key's body is the client's.
	announced := d
	if announced.StartedAt.IsZero() {
		announced.StartedAt = now
	}
	if announced.Status == "" {
		announced.Status = slogate.StatusRunning
	}
	msgs, err := r.messages(alerting.Event{Kind: alerting.KindDeployStarted, At: announced.StartedAt, Deploy: InEvent(announced)})
	if err != nil {
		return slogate.Deploy{}, false, err
	}
	out, created, err := r.Store.CreateDeploy(ctx, d, idempotencyKey, append(outbox, msgs...)...)
	if err == nil && created {
		r.notifier.Wake()
	}
	return out, created, err
}

// FinishDeploy records the final status of deploy id (finishedAt zero is
// now) with the notifications of its end (alerting.KindDeployFinished),
// in one transaction, then wakes the delivery. Finishing again with the
// same status returns the deploy and enqueues nothing; with another
// status it is store.ErrConflict.
func (r *Recorder) FinishDeploy(ctx context.Context, id, status string, finishedAt time.Time, outbox ...slogate.OutboxMessage) (slogate.Deploy, error) {
	if finishedAt.IsZero() {
		finishedAt = r.clock()
	}
	if r.notifier == nil {
		return r.Store.FinishDeploy(ctx, id, status, finishedAt, outbox...)
	}
	d, err := r.Store.GetDeploy(ctx, id)
	if err != nil {
		return slogate.Deploy{}, err
	}
	finishedAt = store.UTC(finishedAt)
	d.Status, d.FinishedAt = status, &finishedAt
	msgs, err := r.messages(alerting.Event{Kind: alerting.KindDeployFinished, At: finishedAt, Deploy: InEvent(d)})
	if err != nil {
		return slogate.Deploy{}, err
	}
	out, err := r.Store.FinishDeploy(ctx, id, status, finishedAt, append(outbox, msgs...)...)
	if err == nil {
		r.notifier.Wake()
	}
	return out, err
}

func (r *Recorder) messages(e alerting.Event) ([]slogate.OutboxMessage, error) {
	msgs, err := r.notifier.Messages(e)
	if err != nil {
		return nil, fmt.Errorf("deploys: notifications of %s: %w", e.Kind, err)
	}
	return msgs, nil
}

// InEvent is d as a notification carries it through the outbox: without
// its commit list (up to a thousand from GitHub's compare API), which no
// notifier shows and every outbox message would store again.
func InEvent(d slogate.Deploy) *slogate.Deploy {
	d.Commits = nil
	return &d
}
