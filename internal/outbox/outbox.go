// Package outbox keeps the store's outbox small: Purge deletes what was
// delivered (or abandoned) long ago. The store itself is the outbox the
// alerting Dispatcher delivers (store.Store satisfies alerting.Outbox and
// alerting.Abandoner), since both speak slogate.OutboxMessage.
package outbox

import (
	"context"
	"log/slog"
	"time"

	"github.com/slogate/slogate/store"
)

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
