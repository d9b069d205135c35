package outbox

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/store"
)

func TestTheOutboxDeliversWhatWasEnqueuedInOrderKeys(t *testing.T) {
	ctx := context.Background()
	st := testenv.SQLite(t)
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

// purges tells when a purge has run.
type purges struct {
	store.Store
	ran chan error
}

func (p purges) PurgeOutbox(ctx context.Context, before time.Time) (int64, error) {
	n, err := p.Store.PurgeOutbox(ctx, before)
	p.ran <- err
	return n, err
}

func TestPurgeDeletesWhatWasDeliveredAtOnceAndStopsWithItsContext(t *testing.T) {
	st := testenv.SQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := Outbox{Store: st}
	if err := o.Enqueue(ctx, alerting.Message{Key: "grafana/a", Peer: "grafana", Payload: []byte(`{}`), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ms, err := o.ClaimOutbox(ctx, "", 10, time.Minute, time.Now())
	if err != nil || len(ms) != 1 {
		t.Fatalf("claimed %d (%v)", len(ms), err)
	}
	if err := o.MarkDelivered(ctx, ms[0].ID); err != nil {
		t.Fatal(err)
	}
	p := purges{Store: st, ran: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		Purge(ctx, p, time.Nanosecond, time.Hour, slog.New(slog.DiscardHandler))
		close(done)
	}()
	if err := <-p.ran; err != nil {
		t.Fatal(err)
	}
	if stats, err := st.OutboxStats(context.Background()); err != nil || stats.Delivered != 0 {
		t.Errorf("stats %+v (%v), want the delivered message purged", stats, err)
	}
	cancel()
	<-done
}
