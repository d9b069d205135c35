package outbox

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/store"
	"github.com/slogate/slogate/store/storetest"
)

// The store is the outbox the dispatcher delivers, and gives up on
// messages for good.
var (
	_ alerting.Outbox    = store.Store(nil)
	_ alerting.Abandoner = store.Store(nil)
)

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
	st := storetest.SQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := st.Enqueue(ctx, slogate.OutboxMessage{Key: "grafana/a", Peer: "grafana", Payload: []byte(`{}`), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ms, err := st.ClaimOutbox(ctx, "", 10, time.Minute, time.Now())
	if err != nil || len(ms) != 1 {
		t.Fatalf("claimed %d (%v)", len(ms), err)
	}
	if err := st.MarkDelivered(ctx, ms[0].ID); err != nil {
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
