// Package rulequeue keeps the GitHub App's pending deployment protection
// rules (alerting/githubapp) in the store's outbox, under a peer of their
// own that the notification dispatcher never claims. cmd only wires it.
package rulequeue

import (
	"context"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting/githubapp"
	"github.com/slogate/slogate/store"
)

// Peer is the outbox peer name of pending protection rules:
// the notification dispatcher never claims it, the rules runner does.
const Peer = "github-rule"

// Queue keeps the GitHub App's pending protection rules in the store's
// outbox (githubapp.Queue), under their own peer, Peer.
type Queue struct{ Store store.Store }

var _ githubapp.Queue = Queue{}

// Enqueue adds a pending rule; a key already queued is ignored.
func (q Queue) Enqueue(ctx context.Context, key string, payload []byte) error {
	return q.Store.Enqueue(ctx, slogate.OutboxMessage{Key: Peer + "/" + key, Peer: Peer, Payload: payload})
}

// Claim leases up to limit due rules.
func (q Queue) Claim(ctx context.Context, limit int, lease time.Duration, now time.Time) ([]githubapp.Item, error) {
	ms, err := q.Store.ClaimOutbox(ctx, Peer, limit, lease, now)
	if err != nil {
		return nil, err
	}
	out := make([]githubapp.Item, len(ms))
	for i, m := range ms {
		out[i] = githubapp.Item{ID: m.ID, Payload: m.Payload, Attempts: m.Attempts, CreatedAt: m.CreatedAt}
	}
	return out, nil
}

// Reschedule releases a rule until next, with a note.
func (q Queue) Reschedule(ctx context.Context, id int64, note string, next time.Time) error {
	return q.Store.MarkFailed(ctx, id, note, next)
}

// Done ends a rule that was answered.
func (q Queue) Done(ctx context.Context, id int64) error { return q.Store.MarkDelivered(ctx, id) }

// Abandon gives up on a rule for good.
func (q Queue) Abandon(ctx context.Context, id int64, why string) error {
	return q.Store.Abandon(ctx, id, why)
}
