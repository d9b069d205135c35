// Package outbox is the store's outbox as alerting sees it: Outbox lets
// the Dispatcher claim and settle the store's messages, Messages turns
// alerting's messages into the store's for the use cases that enqueue
// them in their own transaction (internal/deploys, internal/decisions),
// and Purge deletes what was delivered long ago.
package outbox

import (
	"context"
	"log/slog"
	"time"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/store"
)

// Messages turns alerting messages into the store's outbox messages.
func Messages(msgs []alerting.Message) []store.OutboxMessage {
	out := make([]store.OutboxMessage, len(msgs))
	for i, m := range msgs {
		out[i] = store.OutboxMessage{Key: m.Key, Peer: m.Peer, Payload: m.Payload, CreatedAt: m.CreatedAt,
			OrderKey: m.OrderKey, Supersedes: m.Supersedes}
	}
	return out
}

// Outbox lets the dispatcher deliver the store's outbox (alerting.Outbox,
// alerting.Abandoner).
type Outbox struct{ Store store.Store }

var (
	_ alerting.Outbox    = Outbox{}
	_ alerting.Abandoner = Outbox{}
)

// ClaimOutbox leases up to limit due messages of peer.
func (o Outbox) ClaimOutbox(ctx context.Context, peer string, limit int, lease time.Duration, now time.Time) ([]alerting.Message, error) {
	ms, err := o.Store.ClaimOutbox(ctx, peer, limit, lease, now)
	if err != nil {
		return nil, err
	}
	out := make([]alerting.Message, len(ms))
	for i, m := range ms {
		out[i] = alerting.Message{ID: m.ID, Key: m.Key, Peer: m.Peer, Payload: m.Payload, Attempts: m.Attempts, CreatedAt: m.CreatedAt,
			OrderKey: m.OrderKey, EnqueuedAt: m.EnqueuedAt}
	}
	return out, nil
}

// MarkDelivered ends a message.
func (o Outbox) MarkDelivered(ctx context.Context, id int64) error {
	return o.Store.MarkDelivered(ctx, id)
}

// MarkFailed releases a message's lease until next.
func (o Outbox) MarkFailed(ctx context.Context, id int64, msg string, next time.Time) error {
	return o.Store.MarkFailed(ctx, id, msg, next)
}

// Abandon lets the dispatcher give up on a message for good.
func (o Outbox) Abandon(ctx context.Context, id int64, errMsg string) error {
	return o.Store.Abandon(ctx, id, errMsg)
}

// Enqueue adds messages of events that have no transaction of their own.
func (o Outbox) Enqueue(ctx context.Context, msgs ...alerting.Message) error {
	return o.Store.Enqueue(ctx, Messages(msgs)...)
}

// DefaultRetain is how long Purge keeps what was delivered.
const DefaultRetain = 7 * 24 * time.Hour

// Purge deletes the messages delivered (or abandoned) more than retain ago
// (default DefaultRetain) at once and then every interval, until ctx ends.
func Purge(ctx context.Context, st store.Store, retain, interval time.Duration, logger *slog.Logger) {
	if retain <= 0 {
		retain = DefaultRetain
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := st.PurgeOutbox(ctx, time.Now().Add(-retain))
		if err != nil && ctx.Err() == nil {
			logger.Warn("purging delivered notifications", "err", err)
		} else if n > 0 {
			logger.Info("purged delivered notifications", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
