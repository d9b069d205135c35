package alerting_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/internal/alertlog"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// storeOutbox is the store as the outbox cmd/slogate wires, with a switch: killed makes every
// call fail, as if the process had died: nothing it would still write
// reaches the store.
type storeOutbox struct {
	s      store.Store
	killed atomic.Bool
}

var errKilled = errors.New("process killed")

func (o *storeOutbox) ClaimOutbox(ctx context.Context, peer string, limit int, lease time.Duration, now time.Time) ([]slogate.OutboxMessage, error) {
	if o.killed.Load() {
		return nil, errKilled
	}
	return o.s.ClaimOutbox(ctx, peer, limit, lease, now)
}

func (o *storeOutbox) MarkDelivered(ctx context.Context, id int64) error {
	if o.killed.Load() {
		return errKilled
	}
	return o.s.MarkDelivered(ctx, id)
}

func (o *storeOutbox) MarkFailed(ctx context.Context, id int64, errMsg string, next time.Time) error {
	if o.killed.Load() {
		return errKilled
	}
	return o.s.MarkFailed(ctx, id, errMsg, next)
}

func (o *storeOutbox) Enqueue(ctx context.Context, msgs ...slogate.OutboxMessage) error {
	if o.killed.Load() {
		return errKilled
	}
	return o.s.Enqueue(ctx, msgs...)
}

// receiver is a peer that counts what it received, per deploy id; the
// deploy "cut" hangs until its deadline while block is set.
type receiver struct {
	mu       sync.Mutex
	got      map[string]int
	block    atomic.Bool
	started  chan struct{}
	announce sync.Once
}

func (r *receiver) Peer() string { return alerting.PeerGrafana }
func (r *receiver) Key(e alerting.Event) string {
	if e.Deploy == nil {
		return ""
	}
	return "deploy/" + e.Deploy.ID
}

func (r *receiver) Notify(ctx context.Context, e alerting.Event) (bool, error) {
	if e.Deploy.ID == "cut" && r.block.Load() {
		r.announce.Do(func() { close(r.started) })
		<-ctx.Done()
		return true, context.Cause(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[e.Deploy.ID]++
	return false, nil
}

func (r *receiver) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[id]
}

func deployEvent(id string, at time.Time) alerting.Event {
	return alerting.Event{Kind: alerting.KindDeployStarted, At: at, Deploy: &slogate.Deploy{ID: id, Service: "checkout", Version: "v2"}}
}

// TestKilledMidDeliveryOverSQLite: a dispatcher dies while a delivery
// hangs; a new process over the same SQLite file delivers that message
// once its lease has expired, and does not send again the one delivered
// before the crash.
func TestKilledMidDeliveryOverSQLite(t *testing.T) {
	ctx := context.Background()
	path := "sqlite:" + t.TempDir() + "/s.db"
	const lease = 30 * time.Second
	peer := &receiver{got: map[string]int{}, started: make(chan struct{})}
	peer.block.Store(true)
	var offset atomic.Int64 // the second process' clock runs ahead by this
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }

	run := func(t *testing.T, box *storeOutbox) (stop func()) {
		d, err := alerting.NewDispatcher(alerting.DispatcherConfig{Outbox: box, Notifiers: []alerting.Notifier{peer},
			Lease: lease, NotifyTimeout: 10 * time.Second, Concurrency: 1, Poll: 10 * time.Millisecond, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { d.Run(rctx); close(done) }()
		if err := d.Send(ctx, deployEvent("first", time.Now().Add(-time.Minute)), deployEvent("cut", time.Now())); err != nil {
			t.Fatal(err)
		}
		return func() { cancel(); <-done }
	}
	waitFor := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
		}
	}

	var st store.Store
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"the first process delivers one message and dies while the next hangs", func(t *testing.T) {
			var err error
			if st, err = store.Open(ctx, path, nil); err != nil {
				t.Fatal(err)
			}
			box := &storeOutbox{s: st}
			stop := run(t, box)
			select {
			case <-peer.started:
			case <-time.After(20 * time.Second):
				t.Fatal("the hanging delivery never started")
			}
			if n := peer.count("first"); n != 1 {
				t.Fatalf("first delivered %d times before the crash, want 1", n)
			}
			box.killed.Store(true) // from here on, nothing reaches the store
			stop()
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"a new process does not take the message while its lease holds", func(t *testing.T) {
			var err error
			if st, err = store.Open(ctx, path, nil); err != nil {
				t.Fatal(err)
			}
			peer.block.Store(false)
			stop := run(t, &storeOutbox{s: st}) // Send again: the keys are taken, nothing is added
			time.Sleep(200 * time.Millisecond)
			stop()
			if n := peer.count("cut"); n != 0 {
				t.Fatalf("the leased message was delivered %d times during its lease", n)
			}
		}},
		{"after the lease the message is delivered once and the delivered one is not sent again", func(t *testing.T) {
			offset.Store(int64(lease + time.Second))
			stop := run(t, &storeOutbox{s: st})
			waitFor(t, "cut is delivered", func() bool { return peer.count("cut") == 1 })
			time.Sleep(100 * time.Millisecond) // room for a wrong second delivery
			stop()
			if a, b := peer.count("first"), peer.count("cut"); a != 1 || b != 1 {
				t.Errorf("deliveries: first %d, cut %d; want 1 and 1", a, b)
			}
			stats, err := st.OutboxStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if stats.Pending != 0 || stats.Delivered != 2 {
				t.Errorf("outbox %+v, want 2 delivered and none pending", stats)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			break
		}
	}
	if st != nil {
		st.Close()
	}
}

// TestTrackerStatesOverSQLiteAudit: the Tracker's states saved through the
// audit adapter are what a restarted Tracker loads.
func TestTrackerStatesOverSQLiteAudit(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	firing := slo.Status{Name: "a", Service: "checkout", Target: 0.999, Window: "30d",
		ErrorBudget: slo.BudgetFigures{Remaining: ptr(-0.1)},
		Alerts:      []slo.AlertState{{Severity: slo.SeverityPage, LongWindow: "1h", ShortWindow: "5m", Factor: 14.4, Firing: true}}}
	calm := firing
	calm.Alerts = []slo.AlertState{{Severity: slo.SeverityPage, LongWindow: "1h", ShortWindow: "5m", Factor: 14.4}}

	first, _ := alerting.NewTracker(alerting.TrackerConfig{Interval: time.Minute, State: alertlog.States{Store: st}})
	first.Observe(ctx, []slo.Status{firing}, at)

	// In order: the second case saves the resolution.
	tests := []struct {
		name   string
		status slo.Status
		want   func(events []alerting.Event) bool
	}{
		{
			name:   "a restarted tracker re-sends the alert with its first start and no second budget event",
			status: firing,
			want: func(ev []alerting.Event) bool {
				return len(ev) == 1 && ev[0].Kind == alerting.KindAlert && !ev[0].Alert.Transition && ev[0].Alert.StartsAt.Equal(at)
			},
		},
		{
			name:   "a restarted tracker resolves an alert that stopped",
			status: calm,
			want: func(ev []alerting.Event) bool {
				return len(ev) == 1 && ev[0].Kind == alerting.KindAlert && ev[0].Alert.Transition && !ev[0].Alert.Firing
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			restarted, _ := alerting.NewTracker(alerting.TrackerConfig{Interval: time.Minute, State: alertlog.States{Store: st}})
			if ev := restarted.Observe(ctx, []slo.Status{tc.status}, at.Add(5*time.Minute)); !tc.want(ev) {
				t.Errorf("events %+v", ev)
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }

// BenchmarkDispatchSQLite measures deliveries per second through a real
// SQLite outbox (a claim, a delivery and a MarkDelivered transaction each)
// to a loopback sink.
func BenchmarkDispatchSQLite(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+b.TempDir()+"/s.db", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sink := &countingSink{}
	d, err := alerting.NewDispatcher(alerting.DispatcherConfig{Outbox: &storeOutbox{s: st}, Notifiers: []alerting.Notifier{sink}, Poll: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	events := make([]alerting.Event, b.N)
	at := time.Now()
	for i := range events {
		events[i] = deployEvent(store.NewID("dep"), at)
	}
	if err := d.Send(ctx, events...); err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	b.ResetTimer()
	start := time.Now()
	done := make(chan struct{})
	go func() { d.Run(rctx); close(done) }()
	for sink.n.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
}

type countingSink struct{ n atomic.Int64 }

func (s *countingSink) Peer() string { return alerting.PeerGrafana }
func (s *countingSink) Key(e alerting.Event) string {
	return "deploy/" + e.Deploy.ID
}
func (s *countingSink) Notify(context.Context, alerting.Event) (bool, error) {
	s.n.Add(1)
	return false, nil
}
