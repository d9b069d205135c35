package alerting

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slogate/slogate"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeOutbox is an in-memory Outbox that behaves like the store's: unique
// keys, due times, leases, attempts counted at claim.
type fakeOutbox struct {
	mu       sync.Mutex
	nextID   int64
	msgs     map[int64]*fakeMsg
	list     []*fakeMsg // by id
	byKey    map[string]int64
	claimErr error
	// claimFailed, when set, is closed at the first claim refused with
	// claimErr.
	claimFailed chan struct{}
	failedOnce  sync.Once
	failed      []failure // every MarkFailed, in order
	now         func() time.Time
}

type fakeMsg struct {
	slogate.OutboxMessage
	next      time.Time
	leaseEnd  time.Time
	delivered bool
	lastErr   string
}

type failure struct {
	id        int64
	errMsg    string
	next, now time.Time
}

func newFakeOutbox() *fakeOutbox {
	return &fakeOutbox{msgs: map[int64]*fakeMsg{}, byKey: map[string]int64{}}
}

func (o *fakeOutbox) Enqueue(_ context.Context, msgs ...slogate.OutboxMessage) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range msgs {
		if m.Key == "" || m.Peer == "" {
			return errors.New("key and peer are required")
		}
		if _, dup := o.byKey[m.Key]; dup {
			continue
		}
		o.nextID++
		m.ID, m.Attempts = o.nextID, 0
		fm := &fakeMsg{OutboxMessage: m, next: m.CreatedAt}
		o.msgs[m.ID] = fm
		o.list = append(o.list, fm)
		o.byKey[m.Key] = m.ID
	}
	return nil
}

func (o *fakeOutbox) ClaimOutbox(_ context.Context, peer string, limit int, lease time.Duration, now time.Time) ([]slogate.OutboxMessage, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.claimErr != nil {
		if o.claimFailed != nil {
			o.failedOnce.Do(func() { close(o.claimFailed) })
		}
		return nil, o.claimErr
	}
	// The limit earliest due (by next attempt, then id), without sorting
	// the whole outbox: claims are frequent and limits small.
	before := func(a, b *fakeMsg) bool {
		if !a.next.Equal(b.next) {
			return a.next.Before(b.next)
		}
		return a.ID < b.ID
	}
	due := make([]*fakeMsg, 0, limit+1)
	for _, m := range o.list {
		if m.delivered || m.next.After(now) || m.leaseEnd.After(now) || (peer != "" && m.Peer != peer) {
			continue
		}
		if len(due) == limit && !before(m, due[limit-1]) {
			continue
		}
		i := len(due)
		for i > 0 && before(m, due[i-1]) {
			i--
		}
		due = append(due, nil)
		copy(due[i+1:], due[i:])
		due[i] = m
		if len(due) > limit {
			due = due[:limit]
		}
	}
	out := make([]slogate.OutboxMessage, 0, len(due))
	for _, m := range due {
		m.leaseEnd = now.Add(lease)
		m.Attempts++
		out = append(out, m.OutboxMessage)
	}
	return out, nil
}

func (o *fakeOutbox) MarkDelivered(_ context.Context, id int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	m, ok := o.msgs[id]
	if !ok {
		return fmt.Errorf("outbox message %d: not found", id)
	}
	m.delivered, m.leaseEnd = true, time.Time{}
	return nil
}

func (o *fakeOutbox) MarkFailed(_ context.Context, id int64, errMsg string, next time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	m, ok := o.msgs[id]
	if !ok {
		return fmt.Errorf("outbox message %d: not found", id)
	}
	if m.delivered {
		return fmt.Errorf("outbox message %d was delivered", id)
	}
	m.lastErr, m.next, m.leaseEnd = errMsg, next, time.Time{}
	f := failure{id: id, errMsg: errMsg, next: next}
	if o.now != nil {
		f.now = o.now()
	}
	o.failed = append(o.failed, f)
	return nil
}

// get returns a copy of the message with key.
func (o *fakeOutbox) get(key string) fakeMsg {
	o.mu.Lock()
	defer o.mu.Unlock()
	return *o.msgs[o.byKey[key]]
}

// undelivered counts messages not delivered.
func (o *fakeOutbox) undelivered() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, m := range o.list {
		if !m.delivered {
			n++
		}
	}
	return n
}

func (o *fakeOutbox) failures() []failure {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]failure(nil), o.failed...)
}

// fakeNotifier delivers events whose first link's text is their key, by
// calling notify; it counts the successful deliveries per key and the
// deliveries in flight.
type fakeNotifier struct {
	peer   string
	notify func(ctx context.Context, e Event) (bool, error)

	mu          sync.Mutex
	delivered   map[string]int
	calls       int
	inflight    int
	maxInflight int
}

func newFakeNotifier(peer string, notify func(ctx context.Context, e Event) (bool, error)) *fakeNotifier {
	return &fakeNotifier{peer: peer, notify: notify, delivered: map[string]int{}}
}

func (n *fakeNotifier) Peer() string { return n.peer }

func (n *fakeNotifier) Key(e Event) string {
	if len(e.Links) == 0 {
		return ""
	}
	return e.Links[0].Text
}

func (n *fakeNotifier) Notify(ctx context.Context, e Event) (bool, error) {
	n.mu.Lock()
	n.calls++
	n.inflight++
	n.maxInflight = max(n.maxInflight, n.inflight)
	n.mu.Unlock()
	retry, err := n.notify(ctx, e)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.inflight--
	if err == nil {
		n.delivered[n.Key(e)]++
	}
	return retry, err
}

func (n *fakeNotifier) stats() (calls, inflight, maxInflight int, delivered map[string]int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := map[string]int{}
	for k, v := range n.delivered {
		d[k] = v
	}
	return n.calls, n.inflight, n.maxInflight, d
}

// keyed is an event that fakeNotifier keys as key.
func keyed(key string, at time.Time) Event {
	return Event{Kind: KindDeployStarted, At: at, Deploy: &slogate.Deploy{ID: key, Service: "checkout"}, Links: []Link{{Href: "https://ci.example/" + key, Text: key}}}
}

// fakeStateStore keeps Tracker states in memory, as a store would.
type fakeStateStore struct {
	mu      sync.Mutex
	states  map[string]State
	loadErr error
	saves   int
}

func (s *fakeStateStore) Load(context.Context) (map[string]State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	out := map[string]State{}
	for k, v := range s.states {
		out[k] = v
	}
	return out, nil
}

func (s *fakeStateStore) Save(_ context.Context, key string, st State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.states == nil {
		s.states = map[string]State{}
	}
	s.states[key] = st
	s.saves++
	return nil
}
