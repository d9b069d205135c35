package alerting

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// pageKeys keys page transitions as the PagerDuty notifier does: one
// message per alert start and action.
type pageKeys struct{}

func (pageKeys) Peer() string { return PeerPagerDuty }
func (pageKeys) Key(e Event) string {
	a := e.Alert
	if e.Kind != KindAlert || a == nil || a.Severity != slo.SeverityPage || !a.Transition {
		return ""
	}
	action := "resolve"
	if a.Firing {
		action = "trigger"
	}
	return fmt.Sprintf("alert/%s/page/%d/%s", a.SLO, a.StartsAt.Unix(), action)
}
func (pageKeys) Notify(context.Context, Event) (bool, error) { return false, nil }

// db is the store of a test: an outbox (a duplicate key is ignored) and
// the saved states, shared by the trackers of several processes.
type db struct {
	mu     sync.Mutex
	outbox map[string]slogate.OutboxMessage
	states map[string]State
	// crash makes the next write fail: the process dies there.
	crashNextSave, crashNextCommit bool
}

func newDB() *db { return &db{outbox: map[string]slogate.OutboxMessage{}, states: map[string]State{}} }

func (d *db) enqueue(events []Event) error {
	for _, e := range events {
		ms, err := Messages(e, pageKeys{})
		if err != nil {
			return err
		}
		for _, m := range ms {
			if _, dup := d.outbox[m.Key]; !dup {
				d.outbox[m.Key] = m
			}
		}
	}
	return nil
}

func (d *db) Load(context.Context) (map[string]State, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.states), nil
}

func (d *db) Save(_ context.Context, key string, s State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashNextSave {
		d.crashNextSave = false
		return errors.New("killed")
	}
	d.states[key] = s
	return nil
}

func (d *db) send(_ context.Context, events []Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.enqueue(events)
}

// commit is the store's transaction: messages and states, or neither.
func (d *db) commit(_ context.Context, events []Event, states map[string]State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashNextCommit {
		d.crashNextCommit = false
		return errors.New("killed")
	}
	if err := d.enqueue(events); err != nil {
		return err
	}
	maps.Copy(d.states, states)
	return nil
}

func (d *db) triggers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, m := range d.outbox {
		if len(m.Key) > 8 && m.Key[len(m.Key)-8:] == "/trigger" {
			n++
		}
	}
	return n
}

// TestACrashBetweenTheEnqueueAndTheStateSave: the leader enqueues a page's
// trigger and dies before its state is saved; the next leader reloads the
// states and evaluates the same burn.
func TestACrashBetweenTheEnqueueAndTheStateSave(t *testing.T) {
	ctx := context.Background()
	firing := []slo.Status{status("a", "ff", "--", fp(0.5))}
	tracker := func(d *db, atomic bool) *Tracker {
		cfg := TrackerConfig{State: d, Interval: time.Minute}
		if atomic {
			cfg.Commit = d.commit
		} else {
			cfg.Send = d.send
		}
		tr, err := NewTracker(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	t.Run("with the enqueue and the save apart, the next leader sends a second trigger (why Commit exists)", func(t *testing.T) {
		d := newDB()
		d.crashNextSave = true
		tracker(d, false).Observe(ctx, firing, t0)
		tracker(d, false).Observe(ctx, firing, t0.Add(time.Minute))
		if n := d.triggers(); n != 2 {
			t.Fatalf("%d triggers, want the 2 this test shows", n)
		}
	})
	t.Run("in one commit, a leader that dies before it commits leaves the next one a single trigger to send", func(t *testing.T) {
		d := newDB()
		d.crashNextCommit = true
		tracker(d, true).Observe(ctx, firing, t0)
		tracker(d, true).Observe(ctx, firing, t0.Add(time.Minute))
		if n := d.triggers(); n != 1 {
			t.Fatalf("%d triggers, want 1", n)
		}
	})
	t.Run("in one commit, a leader that dies after it commits leaves the next one nothing to trigger", func(t *testing.T) {
		d := newDB()
		tracker(d, true).Observe(ctx, firing, t0)
		next := tracker(d, true)
		next.Reload()
		ev := next.Observe(ctx, firing, t0.Add(time.Minute))
		if n := d.triggers(); n != 1 || len(ev) != 1 || ev[0].Alert.Transition || !ev[0].Alert.StartsAt.Equal(t0) {
			t.Fatalf("%d triggers, events %v (transition %v); want 1 trigger and a re-send of the alert started at %v",
				n, describe(ev), len(ev) == 1 && ev[0].Alert.Transition, t0)
		}
		if s := next.States()[StateKey("a", slo.SeverityPage)]; !s.Firing || !s.StartsAt.Equal(t0) {
			t.Errorf("state %+v, want firing since %v", s, t0)
		}
	})
}
