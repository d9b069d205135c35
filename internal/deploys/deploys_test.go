package deploys

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/store"
	"github.com/slogate/slogate/store/storetest"
)

// notifier is a fake of the dispatcher: one message per event, keyed by
// the event's kind and deploy id, and a count of wake-ups.
type notifier struct {
	woken atomic.Int64
	fail  error
}

func (n *notifier) Messages(e alerting.Event) ([]slogate.OutboxMessage, error) {
	if n.fail != nil {
		return nil, n.fail
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return []slogate.OutboxMessage{{Key: "fake/" + string(e.Kind) + "/" + e.Deploy.ID, Peer: "fake", Payload: b, CreatedAt: e.At}}, nil
}

func (n *notifier) Wake() { n.woken.Add(1) }

var now = time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC)

func TestRecorder(t *testing.T) {
	ctx := context.Background()
	sent := slogate.Deploy{Service: "checkout", Environment: "production", Version: "v2"}

	t.Run("a retry with the key and the body stores and notifies once, with the start it stored", func(t *testing.T) {
		st, n := storetest.SQLite(t), &notifier{}
		clock := now
		r, err := New(Config{Store: st, Notifier: n, Clock: func() time.Time { return clock }})
		if err != nil {
			t.Fatal(err)
		}
		first, created, err := r.CreateDeploy(ctx, sent, "key-1")
		if err != nil || !created {
			t.Fatalf("first: %v %v", created, err)
		}
		clock = now.Add(time.Minute) // the retry comes later
		second, created, err := r.CreateDeploy(ctx, sent, "key-1")
		if err != nil || created || second.ID != first.ID || !second.StartedAt.Equal(store.UTC(now)) {
			t.Fatalf("retry: %+v %v %v; want the first deploy %+v", second, created, err, first)
		}
		if _, _, err := r.CreateDeploy(ctx, slogate.Deploy{Service: "checkout", Environment: "production", Version: "v3"}, "key-1"); !errors.Is(err, store.ErrIdempotencyConflict) {
			t.Errorf("another body with the key: %v, want an idempotency conflict", err)
		}
		msgs, err := st.ClaimOutbox(ctx, "", 10, time.Minute, now.Add(time.Hour))
		if err != nil || len(msgs) != 1 || n.woken.Load() != 1 {
			t.Fatalf("outbox %d messages (%v), woken %d: want 1 and 1", len(msgs), err, n.woken.Load())
		}
		var e alerting.Event
		if err := json.Unmarshal(msgs[0].Payload, &e); err != nil || e.Deploy.ID != first.ID || !e.Deploy.StartedAt.Equal(first.StartedAt) || e.Deploy.Status != slogate.StatusRunning {
			t.Errorf("announced %+v (%v), stored %+v", e.Deploy, err, first)
		}
	})
	t.Run("finishing stores the status with its notification", func(t *testing.T) {
		st, n := storetest.SQLite(t), &notifier{}
		r, _ := New(Config{Store: st, Notifier: n, Clock: func() time.Time { return now }})
		d, _, err := r.CreateDeploy(ctx, sent, "")
		if err != nil {
			t.Fatal(err)
		}
		done, err := r.FinishDeploy(ctx, d.ID, slogate.StatusSucceeded, time.Time{})
		if err != nil || done.Status != slogate.StatusSucceeded || done.FinishedAt == nil || !done.FinishedAt.Equal(store.UTC(now)) {
			t.Fatalf("finished %+v, %v", done, err)
		}
		if stats, _ := st.OutboxStats(ctx); stats.Pending != 2 || n.woken.Load() != 2 {
			t.Errorf("pending %d, woken %d: want 2 and 2", stats.Pending, n.woken.Load())
		}
	})
	t.Run("notifications that cannot be built store nothing", func(t *testing.T) {
		st := storetest.SQLite(t)
		r, _ := New(Config{Store: st, Notifier: &notifier{fail: errors.New("encode")}})
		if _, _, err := r.CreateDeploy(ctx, sent, "key-1"); err == nil {
			t.Fatal("stored without its notifications")
		}
		if list, _, _ := st.ListDeploys(ctx, store.DeployFilter{}); len(list) != 0 {
			t.Errorf("%d deploys stored", len(list))
		}
	})
	t.Run("without a notifier it is the store", func(t *testing.T) {
		st := storetest.SQLite(t)
		r, _ := New(Config{Store: st})
		if _, created, err := r.CreateDeploy(ctx, sent, "key-1"); err != nil || !created {
			t.Fatalf("%v %v", created, err)
		}
		if stats, _ := st.OutboxStats(ctx); stats.Pending != 0 {
			t.Errorf("pending %d", stats.Pending)
		}
	})
	if _, err := New(Config{}); err == nil {
		t.Error("New without a store")
	}
}

func TestNotificationsCarryTheDeployWithoutItsCommitList(t *testing.T) {
	ctx := context.Background()
	st, n := storetest.SQLite(t), &notifier{}
	r, err := New(Config{Store: st, Notifier: n, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	sent := slogate.Deploy{Service: "checkout", Environment: "production", Version: "v2", Commit: "abc", CreatedBy: "ci",
		Commits: []slogate.Commit{{SHA: "abc", Time: now.Add(-time.Hour)}, {SHA: "def", Time: now.Add(-2 * time.Hour)}}}
	d, _, err := r.CreateDeploy(ctx, sent, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.FinishDeploy(ctx, d.ID, slogate.StatusSucceeded, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if stored, err := st.GetDeploy(ctx, d.ID); err != nil || len(stored.Commits) != 2 {
		t.Fatalf("stored %+v (%v), want its two commits", stored, err)
	}
	msgs, err := st.ClaimOutbox(ctx, "", 10, time.Minute, now.Add(time.Hour))
	if err != nil || len(msgs) != 2 {
		t.Fatalf("%d messages (%v), want the start and the finish", len(msgs), err)
	}
	for _, m := range msgs {
		var e struct {
			Deploy map[string]any `json:"deploy"`
		}
		if err := json.Unmarshal(m.Payload, &e); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.Deploy["commits"]; ok || e.Deploy["commit"] != "abc" || e.Deploy["id"] != d.ID {
			t.Errorf("%s carries %v, want the deploy without its commit list", m.Key, e.Deploy)
		}
	}
}
