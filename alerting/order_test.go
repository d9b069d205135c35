package alerting_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// pager is a PagerDuty-like peer over alerts: it keeps, per SLO, the
// actions it accepted in the order they arrived, and answers each attempt
// from a script (an HTTP status; 202 once the script runs out).
type pager struct {
	mu       sync.Mutex
	got      map[string][]string
	script   map[string][]int // by action: the statuses of the first attempts
	attempts map[string]int
	arrived  chan string
	// holding, when set, is closed as the first trigger attempt starts,
	// which then waits for release before it answers.
	holding, release chan struct{}
}

func newPager(script map[string][]int) *pager {
	return &pager{got: map[string][]string{}, script: script, attempts: map[string]int{}, arrived: make(chan string, 64)}
}

func action(e alerting.Event) string {
	if e.Alert.Firing {
		return "trigger"
	}
	return "resolve"
}

func (p *pager) Peer() string { return alerting.PeerPagerDuty }
func (p *pager) Key(e alerting.Event) string {
	if e.Alert == nil || !e.Alert.Transition {
		return ""
	}
	return fmt.Sprintf("alert/%s/page/%d/%s", e.Alert.SLO, e.Alert.StartsAt.Unix(), action(e))
}

func (p *pager) Notify(_ context.Context, e alerting.Event) (bool, error) {
	a := action(e)
	p.mu.Lock()
	n := p.attempts[a]
	p.attempts[a]++
	p.mu.Unlock()
	if a == "trigger" && n == 0 && p.holding != nil {
		close(p.holding)
		<-p.release
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.script[a]; n < len(s) {
		switch status := s[n]; {
		case alerting.Misconfigured(status):
			return true, &alerting.ConfigError{Status: status, Err: fmt.Errorf("pager: %s: HTTP %d", a, status)}
		case status == http.StatusTooManyRequests || status >= 500:
			return true, fmt.Errorf("pager: %s: HTTP %d", a, status)
		default:
			return false, fmt.Errorf("pager: %s: HTTP %d", a, status)
		}
	}
	p.got[e.Alert.SLO] = append(p.got[e.Alert.SLO], a)
	p.arrived <- a
	return false, nil
}

func (p *pager) delivered(slo string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got[slo]...)
}

func page(sloName string, firing bool, startsAt, at time.Time) alerting.Event {
	return alerting.Event{Kind: alerting.KindAlert, At: at, Alert: &alerting.Alert{
		Service: "checkout", SLO: sloName, Severity: slo.SeverityPage, Firing: firing, Transition: true, StartsAt: startsAt,
	}}
}

// orderSetup is a dispatcher over a real SQLite outbox, backing off 1 to
// 20 ms, four deliveries in flight.
func orderSetup(t *testing.T, p *pager) (*alerting.Dispatcher, store.Store, *prometheus.Registry, func()) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	d, err := alerting.NewDispatcher(alerting.DispatcherConfig{Outbox: &storeOutbox{s: st}, Notifiers: []alerting.Notifier{p},
		BaseBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Poll: 5 * time.Millisecond, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	return d, st, reg, func() { cancel(); <-done; st.Close() }
}

func waitArrivals(t *testing.T, p *pager, n int) {
	t.Helper()
	for range n {
		select {
		case <-p.arrived:
		case <-time.After(20 * time.Second):
			t.Fatalf("fewer than %d deliveries within 20s", n)
		}
	}
}

func TestATriggerRetriedAfterA429StillArrivesBeforeItsResolve(t *testing.T) {
	// Before order keys, the resolve was delivered while the trigger was
	// in flight and then waited for its retry after a 429; the trigger
	// then reopened the incident and nothing closed it.
	p := newPager(map[string][]int{"trigger": {429, 429}})
	p.holding, p.release = make(chan struct{}), make(chan struct{})
	d, st, _, stop := orderSetup(t, p)
	defer stop()
	started := time.Now().Add(-2 * time.Minute)
	if err := d.Send(context.Background(), page("checkout-availability", true, started, started)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.holding:
	case <-time.After(20 * time.Second):
		t.Fatal("the trigger was never tried")
	}
	// The resolve is enqueued while the trigger is in flight: it cannot
	// supersede it, it must wait for it.
	if err := d.Send(context.Background(), page("checkout-availability", false, started, started.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	close(p.release)
	waitArrivals(t, p, 2)
	eventually(t, "nothing is pending", func() bool {
		s, _ := st.OutboxStats(context.Background())
		return s.Pending == 0
	})
	if got := p.delivered("checkout-availability"); len(got) != 2 || got[0] != "trigger" || got[1] != "resolve" {
		t.Fatalf("delivered %v, want trigger then resolve", got)
	}
}

func TestAResolveSupersedesATriggerThatWasNeverDelivered(t *testing.T) {
	// The peer is down (503) for the trigger; the alert resolves; the
	// resolve goes and the trigger is never sent after it.
	p := newPager(map[string][]int{"trigger": {503, 503, 503, 503, 503, 503, 503, 503}})
	d, st, _, stop := orderSetup(t, p)
	defer stop()
	started := time.Now().Add(-2 * time.Minute)
	// Both are enqueued together (one evaluation saw the alert fire and
	// the next resolve while the outbox had not run yet).
	if err := d.Send(context.Background(), page("checkout-latency", true, started, started), page("checkout-latency", false, started, started.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	waitArrivals(t, p, 1)
	if got := p.delivered("checkout-latency"); len(got) != 1 || got[0] != "resolve" {
		t.Fatalf("delivered %v, want the resolve alone", got)
	}
	eventually(t, "the trigger is abandoned and nothing is pending", func() bool {
		s, _ := st.OutboxStats(context.Background())
		return s.Pending == 0 && s.Abandoned == 1
	})
	if p.attempts["trigger"] != 0 {
		t.Errorf("the superseded trigger was tried %d times", p.attempts["trigger"])
	}
}

func TestABackdatedEventIsNotExpiredBeforeItsFirstAttempt(t *testing.T) {
	// MaxAge counted from the event's time gave up on an event older than
	// a day with no attempt at all.
	p := newPager(nil)
	d, _, reg, stop := orderSetup(t, p)
	defer stop()
	old := time.Now().Add(-48 * time.Hour)
	if err := d.Send(context.Background(), page("checkout-backfill", true, old, old)); err != nil {
		t.Fatal(err)
	}
	waitArrivals(t, p, 1)
	if n := testutil.ToFloat64(metric(t, reg, alerting.OutcomeExpired)); n != 0 {
		t.Errorf("%v expired", n)
	}
}

func TestA401IsRetriedAndCountedAsAConfigurationError(t *testing.T) {
	// A proxy's 401 and 404 during a misconfiguration were final: the page
	// was dropped for good, counted only as failed.
	p := newPager(map[string][]int{"trigger": {401, 404}})
	d, _, reg, stop := orderSetup(t, p)
	defer stop()
	now := time.Now()
	if err := d.Send(context.Background(), page("checkout-config", true, now, now)); err != nil {
		t.Fatal(err)
	}
	waitArrivals(t, p, 1)
	if n := testutil.ToFloat64(metric(t, reg, alerting.OutcomeConfigError)); n != 2 {
		t.Errorf("config errors counted %v, want 2", n)
	}
	if n := testutil.ToFloat64(metric(t, reg, alerting.OutcomeFailed)); n != 0 {
		t.Errorf("failed %v, want 0", n)
	}
}

// eventually polls cond until it holds (a state written after the peer's
// answer: the outbox's bookkeeping).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func metric(t *testing.T, reg *prometheus.Registry, outcome string) prometheus.Collector {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	for _, f := range fams {
		if f.GetName() != "slogate_notifications_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var peer, out string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "peer":
					peer = l.GetValue()
				case "outcome":
					out = l.GetValue()
				}
			}
			if peer == alerting.PeerPagerDuty && out == outcome {
				g.Set(m.GetCounter().GetValue())
			}
		}
	}
	return g
}
