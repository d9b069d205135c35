package outbox

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/store"
)

func open(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestTheOutboxDeliversWhatWasEnqueuedInOrderKeys(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	o := Outbox{Store: st}
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	if err := o.Enqueue(ctx, alerting.Message{Key: "pagerduty/a", Peer: "pagerduty", Payload: []byte(`{}`), CreatedAt: at, OrderKey: "pagerduty/slo"}); err != nil {
		t.Fatal(err)
	}
	ms, err := o.ClaimOutbox(ctx, "", 10, time.Minute, at.Add(time.Hour))
	if err != nil || len(ms) != 1 {
		t.Fatalf("claimed %d (%v), want 1", len(ms), err)
	}
	m := ms[0]
	if m.Key != "pagerduty/a" || m.Peer != "pagerduty" || string(m.Payload) != `{}` || m.Attempts != 1 || !m.CreatedAt.Equal(at) ||
		m.OrderKey != "pagerduty/slo" || m.EnqueuedAt.IsZero() {
		t.Errorf("claimed %+v", m)
	}
	if err := o.MarkDelivered(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	stats, err := st.OutboxStats(ctx)
	if err != nil || stats.Delivered != 1 || stats.Pending != 0 {
		t.Errorf("stats %+v (%v), want one delivered", stats, err)
	}
}
