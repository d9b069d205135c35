package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slogate/slogate"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// harness runs a Dispatcher over a fake outbox and clock.
type harness struct {
	d      *Dispatcher
	outbox *fakeOutbox
	clock  *fakeClock
	stop   func()
}

func startDispatcher(t *testing.T, cfg DispatcherConfig) *harness {
	t.Helper()
	h := &harness{outbox: newFakeOutbox(), clock: newFakeClock(t0)}
	h.outbox.now = h.clock.Now
	if cfg.Outbox == nil {
		cfg.Outbox = h.outbox
	}
	cfg.Clock = h.clock.Now
	if cfg.Poll == 0 {
		cfg.Poll = 2 * time.Millisecond
	}
	d, err := NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	var once sync.Once
	h.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(h.stop)
	return h
}

func (h *harness) send(t *testing.T, events ...Event) {
	t.Helper()
	if err := h.d.Send(context.Background(), events...); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond (advancing the fake clock by step each time) until
// it holds or 20 s of real time pass.
func (h *harness) eventually(t *testing.T, step time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		h.clock.Advance(step)
		h.d.Wake()
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) count(peer, outcome string) float64 {
	return testutil.ToFloat64(h.d.metrics.total.WithLabelValues(peer, outcome))
}

func TestDispatcherDelivery(t *testing.T) {
	tests := map[string]func(t *testing.T){
		"a peer down for a while then back gets every message exactly once": func(t *testing.T) {
			var h *harness
			up := t0.Add(2 * time.Minute)
			n := newFakeNotifier("grafana", func(ctx context.Context, e Event) (bool, error) {
				if h.clock.Now().Before(up) {
					return true, errors.New("503 Service Unavailable")
				}
				return false, nil
			})
			h = startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}, BaseBackoff: time.Second, MaxBackoff: 20 * time.Second})
			const total = 30
			for i := range total {
				h.send(t, keyed(fmt.Sprintf("deploy-%d", i), t0))
			}
			h.eventually(t, 500*time.Millisecond, "every message is delivered", func() bool { return h.outbox.undelivered() == 0 })
			h.stop()
			_, _, _, delivered := n.stats()
			for i := range total {
				if k := fmt.Sprintf("deploy-%d", i); delivered[k] != 1 {
					t.Errorf("%s delivered %d times, want once", k, delivered[k])
				}
			}
			if got := h.count("grafana", OutcomeDelivered); got != total {
				t.Errorf("delivered counter %v, want %d", got, total)
			}
			if h.count("grafana", OutcomeRetried) == 0 {
				t.Error("no retry counted while the peer was down")
			}
		},
		"a message enqueued twice under one key is delivered once": func(t *testing.T) {
			n := newFakeNotifier("grafana", func(context.Context, Event) (bool, error) { return false, nil })
			h := startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}})
			h.send(t, keyed("same", t0), keyed("same", t0))
			h.eventually(t, 0, "it is delivered", func() bool { return h.outbox.undelivered() == 0 })
			h.stop()
			if calls, _, _, _ := n.stats(); calls != 1 {
				t.Errorf("%d deliveries, want 1", calls)
			}
		},
		"a final failure is given up at once and never retried": func(t *testing.T) {
			n := newFakeNotifier("github", func(context.Context, Event) (bool, error) {
				return false, errors.New("422 Validation Failed")
			})
			h := startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}})
			h.send(t, keyed("issue-1", t0))
			h.eventually(t, 0, "it is given up", func() bool { return h.count("github", OutcomeFailed) == 1 })
			// Hours later, still not claimed again.
			for range 50 {
				h.clock.Advance(time.Hour)
				h.d.Wake()
				time.Sleep(time.Millisecond)
			}
			h.stop()
			m := h.outbox.get("github/issue-1")
			if calls, _, _, _ := n.stats(); calls != 1 || m.Attempts != 1 {
				t.Errorf("%d calls, %d attempts, want 1", calls, m.Attempts)
			}
			if !m.next.Equal(Never) || !strings.Contains(m.lastErr, "gave up: 422 Validation Failed") || m.delivered {
				t.Errorf("given-up message: next %v, error %q, delivered %v", m.next, m.lastErr, m.delivered)
			}
		},
		"a message older than the maximum age expires without a delivery": func(t *testing.T) {
			n := newFakeNotifier("grafana", func(context.Context, Event) (bool, error) { return false, nil })
			h := startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}, MaxAge: time.Hour})
			h.send(t, keyed("stale", t0.Add(-2*time.Hour)))
			h.eventually(t, 0, "it expires", func() bool { return h.count("grafana", OutcomeExpired) == 1 })
			h.stop()
			if calls, _, _, _ := n.stats(); calls != 0 {
				t.Errorf("%d deliveries of an expired message, want 0", calls)
			}
			if m := h.outbox.get("grafana/stale"); !strings.HasPrefix(m.lastErr, "gave up: expired") {
				t.Errorf("last error %q", m.lastErr)
			}
		},
		"a message retried past the maximum age expires": func(t *testing.T) {
			n := newFakeNotifier("grafana", func(context.Context, Event) (bool, error) { return true, errors.New("connection refused") })
			h := startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}, MaxAge: 10 * time.Minute, BaseBackoff: time.Minute, MaxBackoff: 4 * time.Minute})
			h.send(t, keyed("flaky", t0))
			h.eventually(t, 10*time.Second, "it expires", func() bool { return h.count("grafana", OutcomeExpired) == 1 })
			h.stop()
			calls, _, _, _ := n.stats()
			if calls < 2 || h.count("grafana", OutcomeRetried) != float64(calls-1) {
				t.Errorf("%d calls, %v retries: want retries until the last call", calls, h.count("grafana", OutcomeRetried))
			}
			if m := h.outbox.get("grafana/flaky"); !strings.Contains(m.lastErr, "connection refused") || !m.next.Equal(Never) {
				t.Errorf("last error %q, next %v", m.lastErr, m.next)
			}
		},
		"a rate-limited peer is not called again before the time its error names": func(t *testing.T) {
			var h *harness
			n := newFakeNotifier("github", func(context.Context, Event) (bool, error) {
				if h.clock.Now().Before(t0.Add(time.Hour)) {
					return true, &rateLimited{until: t0.Add(time.Hour)}
				}
				return false, nil
			})
			h = startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}, Concurrency: 1})
			h.send(t, keyed("a", t0), keyed("b", t0))
			h.eventually(t, 0, "the first call is refused", func() bool { return h.count("github", OutcomeRetried) == 1 })
			h.eventually(t, time.Minute, "both are delivered", func() bool { return h.outbox.undelivered() == 0 })
			h.stop()
			if calls, _, _, _ := n.stats(); calls != 3 {
				t.Errorf("%d calls, want 3: the other message waited for the reset too", calls)
			}
			if f := h.outbox.failures(); len(f) != 1 || !f[0].next.Equal(t0.Add(time.Hour)) {
				t.Errorf("failures %+v, want one retry at the reset", f)
			}
		},
		"an undecodable payload is given up": func(t *testing.T) {
			n := newFakeNotifier("grafana", func(context.Context, Event) (bool, error) { return false, nil })
			h := startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}})
			if err := h.outbox.Enqueue(context.Background(), slogate.OutboxMessage{Key: "grafana/bad", Peer: "grafana", Payload: []byte("{"), CreatedAt: t0}); err != nil {
				t.Fatal(err)
			}
			h.eventually(t, 0, "it is given up", func() bool { return h.count("grafana", OutcomeFailed) == 1 })
		},
		"a notifier that overruns its deadline is retried, not delivered": func(t *testing.T) {
			n := newFakeNotifier("grafana", func(ctx context.Context, e Event) (bool, error) {
				<-ctx.Done()
				return false, nil // ignores its deadline and claims success
			})
			h := startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}, NotifyTimeout: 20 * time.Millisecond})
			h.send(t, keyed("slow", t0))
			h.eventually(t, 0, "it is retried", func() bool { return h.count("grafana", OutcomeRetried) >= 1 })
			h.stop()
			f := h.outbox.failures()
			if len(f) == 0 || !strings.Contains(f[0].errMsg, "grafana notification timed out after 20ms") {
				t.Errorf("failures %+v, want the deadline's cause naming the peer", f)
			}
		},
		"stopping mid-delivery hands the message back for the next claim": func(t *testing.T) {
			started := make(chan struct{})
			n := newFakeNotifier("grafana", func(ctx context.Context, e Event) (bool, error) {
				close(started)
				<-ctx.Done()
				return true, ctx.Err()
			})
			h := startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}})
			h.send(t, keyed("cut", t0))
			<-started
			h.stop()
			m := h.outbox.get("grafana/cut")
			if m.delivered || !m.leaseEnd.IsZero() || m.next.After(h.clock.Now()) {
				t.Errorf("after a stop: delivered %v, lease %v, next %v: want released and due", m.delivered, m.leaseEnd, m.next)
			}
			if h.count("grafana", OutcomeRetried)+h.count("grafana", OutcomeFailed) != 0 {
				t.Error("a stop was counted as a failed attempt")
			}
		},
		"an outbox that cannot be claimed from is tried again": func(t *testing.T) {
			n := newFakeNotifier("grafana", func(context.Context, Event) (bool, error) { return false, nil })
			h := &harness{}
			box := newFakeOutbox()
			box.claimErr = errors.New("database is locked")
			box.claimFailed = make(chan struct{})
			h = startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}, Outbox: box})
			h.outbox = box
			h.send(t, keyed("later", t0))
			select {
			case <-box.claimFailed: // a claim really failed
			case <-time.After(10 * time.Second):
				t.Fatal("the dispatcher never tried to claim")
			}
			if box.undelivered() != 1 {
				t.Fatal("delivered while the outbox refused every claim")
			}
			box.mu.Lock()
			box.claimErr = nil
			box.mu.Unlock()
			h.eventually(t, 0, "it is delivered", func() bool { return box.undelivered() == 0 })
		},
	}
	for name, test := range tests {
		t.Run(name, test)
	}
}

func TestDispatcherConcurrencyPerPeer(t *testing.T) {
	release := make(chan struct{})
	slow := newFakeNotifier("grafana", func(ctx context.Context, e Event) (bool, error) {
		select {
		case <-release:
			return false, nil
		case <-ctx.Done():
			return true, ctx.Err()
		}
	})
	fast := newFakeNotifier("github", func(context.Context, Event) (bool, error) { return false, nil })
	h := startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{slow, fast}, Concurrency: 3})
	for i := range 10 {
		h.send(t, keyed(fmt.Sprintf("m%d", i), t0))
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a slow peer has no more deliveries in flight than the limit", func(t *testing.T) {
			h.eventually(t, 0, "three deliveries are in flight", func() bool { _, in, _, _ := slow.stats(); return in == 3 })
			time.Sleep(50 * time.Millisecond) // polls and wakes happen meanwhile
			if _, in, maxIn, _ := slow.stats(); in != 3 || maxIn != 3 {
				t.Errorf("in flight %d (max %d), want 3", in, maxIn)
			}
		}},
		{"another peer is not held up by the slow one", func(t *testing.T) {
			h.eventually(t, 0, "the fast peer got all ten", func() bool { _, _, _, d := fast.stats(); return len(d) == 10 })
		}},
		{"once released, the slow peer delivers every message within the limit", func(t *testing.T) {
			close(release)
			h.eventually(t, 0, "all are delivered", func() bool { return h.outbox.undelivered() == 0 })
			calls, _, maxIn, d := slow.stats()
			if calls != 10 || len(d) != 10 || maxIn != 3 {
				t.Errorf("%d calls, %d keys delivered, max in flight %d; want 10, 10, 3", calls, len(d), maxIn)
			}
		}},
	}
	for _, tc := range tests {
		if !t.Run(tc.name, tc.run) {
			return
		}
	}
}

func TestBackoff(t *testing.T) {
	d, err := NewDispatcher(DispatcherConfig{Outbox: newFakeOutbox(), Notifiers: []Notifier{newFakeNotifier("p", nil)},
		BaseBackoff: time.Second, MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		attempts int
		r        float64
		want     time.Duration
	}{
		"the first retry waits up to the base":               {attempts: 1, r: 0.999999, want: time.Second},
		"each attempt doubles the ceiling":                   {attempts: 4, r: 0.999999, want: 8 * time.Second},
		"the ceiling stops at the maximum":                   {attempts: 7, r: 0.999999, want: time.Minute},
		"a huge attempt count neither overflows nor exceeds": {attempts: 500, r: 0.999999, want: time.Minute},
		"jitter reaches down to zero":                        {attempts: 5, r: 0, want: 0},
		"jitter is uniform over the ceiling":                 {attempts: 5, r: 0.5, want: 8 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d.rand = func() float64 { return tc.r }
			got := d.backoff(tc.attempts)
			if diff := got - tc.want; diff < -time.Millisecond || diff > time.Millisecond {
				t.Errorf("backoff(%d) with r=%v = %s, want %s", tc.attempts, tc.r, got, tc.want)
			}
		})
	}

	t.Run("retries of a failing message are scheduled with growing, jittered delays", func(t *testing.T) {
		n := newFakeNotifier("grafana", func(context.Context, Event) (bool, error) { return true, errors.New("503") })
		h := startDispatcher(t, DispatcherConfig{Notifiers: []Notifier{n}, BaseBackoff: time.Second, MaxBackoff: 64 * time.Second})
		const msgs = 40
		for i := range msgs {
			h.send(t, keyed(fmt.Sprintf("m%d", i), t0))
		}
		const step = 250 * time.Millisecond
		h.eventually(t, step, "every message failed six times", func() bool {
			for i := range msgs {
				if h.outbox.get(fmt.Sprintf("grafana/m%d", i)).Attempts < 6 {
					return false
				}
			}
			return true
		})
		h.stop()
		// Per attempt: every delay within its ceiling (measured from the
		// clock at MarkFailed, never earlier than the dispatcher's), spread out across messages (jitter), the longest
		// growing with the attempt.
		byAttempt := map[int][]time.Duration{}
		attempts := map[int64]int{}
		for _, f := range h.outbox.failures() {
			attempts[f.id]++
			byAttempt[attempts[f.id]] = append(byAttempt[attempts[f.id]], f.next.Sub(f.now))
		}
		prevHi := time.Duration(0)
		for a := 1; a <= 5; a++ {
			ceiling := time.Second << (a - 1)
			ds := byAttempt[a]
			if len(ds) != msgs {
				t.Fatalf("attempt %d: %d failures, want %d", a, len(ds), msgs)
			}
			lo, hi := ds[0], ds[0]
			for _, d := range ds {
				lo, hi = min(lo, d), max(hi, d)
			}
			if hi > ceiling {
				t.Errorf("attempt %d: delays %s..%s, want at most %s", a, lo, hi, ceiling)
			}
			if hi-lo < ceiling/4 {
				t.Errorf("attempt %d: delays %s..%s, want a spread (jitter) over the %s ceiling", a, lo, hi, ceiling)
			}
			if hi <= prevHi {
				t.Errorf("attempt %d: the longest delay %s does not grow (was %s)", a, hi, prevHi)
			}
			prevHi = hi
		}
	})
}

func TestNewDispatcherConfig(t *testing.T) {
	n := newFakeNotifier("grafana", nil)
	tests := map[string]struct {
		cfg     DispatcherConfig
		wantErr []string
	}{
		"defaults fill a minimal configuration": {cfg: DispatcherConfig{Outbox: newFakeOutbox(), Notifiers: []Notifier{n}}},
		"every problem is reported at once": {
			cfg:     DispatcherConfig{Lease: time.Second, Concurrency: -1},
			wantErr: []string{"outbox is required", "at least one notifier", "notify timeout 30s must be shorter than the lease 1s", "concurrency must be positive"},
		},
		"two notifiers for one peer are refused": {
			cfg:     DispatcherConfig{Outbox: newFakeOutbox(), Notifiers: []Notifier{n, newFakeNotifier("grafana", nil)}},
			wantErr: []string{"two notifiers for peer grafana"},
		},
		"a maximum back-off below the base is refused": {
			cfg:     DispatcherConfig{Outbox: newFakeOutbox(), Notifiers: []Notifier{n}, BaseBackoff: time.Minute, MaxBackoff: time.Second},
			wantErr: []string{"max back-off 1s is shorter than the base back-off 1m0s"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d, err := NewDispatcher(tc.cfg)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				c := d.cfg
				if c.BaseBackoff != time.Second || c.MaxBackoff != 5*time.Minute || c.MaxAge != 24*time.Hour ||
					c.Lease != time.Minute || c.Concurrency != 4 || c.Poll != time.Second {
					t.Errorf("defaults: %+v", c)
				}
				return
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want it to say %q", err, w)
				}
			}
		})
	}
}

func TestMessages(t *testing.T) {
	grafana := newFakeNotifier("grafana", nil)
	// A peer that takes nothing.
	none := &keyFunc{peer: "pagerduty", key: func(Event) string { return "" }}
	d, err := NewDispatcher(DispatcherConfig{Outbox: newFakeOutbox(), Notifiers: []Notifier{grafana, none},
		Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	e := keyed("dep_1", t0)
	msgs, err := d.Messages(e)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Key != "grafana/dep_1" || msgs[0].Peer != "grafana" || !msgs[0].CreatedAt.Equal(t0) {
		t.Fatalf("messages %+v, want one for grafana keyed grafana/dep_1", msgs)
	}
	var back Event
	if err := json.Unmarshal(msgs[0].Payload, &back); err != nil || back.Deploy.ID != "dep_1" || !back.At.Equal(t0) {
		t.Errorf("payload decodes to %+v (%v)", back, err)
	}
}

type keyFunc struct {
	peer string
	key  func(Event) string
}

func (k *keyFunc) Peer() string                                { return k.peer }
func (k *keyFunc) Key(e Event) string                          { return k.key(e) }
func (k *keyFunc) Notify(context.Context, Event) (bool, error) { return false, nil }

type rateLimited struct{ until time.Time }

func (e *rateLimited) Error() string        { return "403 rate limited" }
func (e *rateLimited) NotBefore() time.Time { return e.until }
