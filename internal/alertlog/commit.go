package alertlog

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/store"
)

// Commit is the tracker's Commit: the notifications of an evaluation's
// alert events and the alert states they change (States' audit entries) in one store transaction, then a wake of
// the delivery. A leader killed in between leaves both or neither, so the
// next leader neither fires a delivered trigger again nor misses one.
func Commit(st store.AuditedEnqueuer, d *alerting.Dispatcher) func(context.Context, []alerting.Event, map[string]alerting.State) error {
	return func(ctx context.Context, events []alerting.Event, states map[string]alerting.State) error {
		msgs, err := d.MessagesOf(events...)
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(states))
		for k := range states {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		entries := make([]store.AuditEntry, 0, len(keys))
		for _, k := range keys {
			b, err := json.Marshal(states[k])
			if err != nil {
				return fmt.Errorf("alert state %s: %w", k, err)
			}
			entries = append(entries, store.AuditEntry{Actor: "slogate", Action: ActionAlertState, Subject: k, Detail: string(b)})
		}
		if err := st.EnqueueWithAudit(ctx, entries, msgs...); err != nil {
			return fmt.Errorf("alerting: %d notifications and %d alert states: %w", len(msgs), len(entries), err)
		}
		if len(msgs) > 0 {
			d.Wake()
		}
		return nil
	}
}
