package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/slogate/slogate"
)

// ordered is a message of an order key whose event happened at at.
func ordered(key, orderKey string, at time.Time) slogate.OutboxMessage {
	m := msg(key, "pagerduty")
	m.OrderKey, m.CreatedAt = orderKey, at
	return m
}

type abandoner interface {
	Abandon(ctx context.Context, id int64, errMsg string) error
}

func testOutboxOrder(t *testing.T, open Opener) {
	now := time.Now().UTC().Truncate(time.Second)
	t.Run("only the oldest undelivered message of an order key is claimed, whatever the order of enqueueing", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		// The resolve is enqueued first (a replica that was late), the
		// trigger's event is older: the trigger goes first.
		if err := s.Enqueue(ctx, ordered("resolve", "slo-a/page", now.Add(-time.Minute))); err != nil {
			t.Fatal(err)
		}
		if err := s.Enqueue(ctx, ordered("trigger", "slo-a/page", now.Add(-2*time.Minute)), ordered("other", "slo-b/page", now.Add(-time.Minute)), msg("free", "pagerduty")); err != nil {
			t.Fatal(err)
		}
		got := claimAll(t, s, "pagerduty", time.Now().Add(time.Second))
		if want := []string{"free", "other", "trigger"}; !reflect.DeepEqual(keys(got), want) {
			t.Fatalf("claimed %v, want %v", keys(got), want)
		}
		// While the trigger is in flight (leased) or retrying, its resolve
		// is not claimed, even after the lease.
		var trigger slogate.OutboxMessage
		for _, m := range got {
			if m.Key == "trigger" {
				trigger = m
			} else if err := s.MarkDelivered(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
		}
		if got := claimAll(t, s, "pagerduty", time.Now().Add(2*time.Minute)); len(got) != 0 && keys(got)[0] == "resolve" {
			t.Fatalf("claimed %v while the trigger was leased", keys(got))
		}
		if err := s.MarkFailed(ctx, trigger.ID, "HTTP 429", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, m := range claimAll(t, s, "pagerduty", time.Now().Add(30*time.Minute)) {
			if m.Key == "resolve" {
				t.Fatal("the resolve was claimed while its trigger waited to be retried")
			}
		}
		if err := s.MarkDelivered(ctx, trigger.ID); err != nil {
			t.Fatal(err)
		}
		if got := keys(claimAll(t, s, "pagerduty", time.Now().Add(2*time.Hour))); !reflect.DeepEqual(got, []string{"resolve"}) {
			t.Fatalf("after the trigger was delivered, claimed %v, want the resolve", got)
		}
	})
	t.Run("an abandoned message does not hold the next one back", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		s.Enqueue(ctx, ordered("trigger", "k", now.Add(-2*time.Minute)), ordered("resolve", "k", now.Add(-time.Minute)))
		got := claimAll(t, s, "pagerduty", now.Add(time.Second))
		if len(got) != 1 {
			t.Fatalf("claimed %v", keys(got))
		}
		if a, ok := s.(abandoner); ok {
			if err := a.Abandon(ctx, got[0].ID, "gave up"); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Fatal("the store cannot abandon a message")
		}
		if got := keys(claimAll(t, s, "pagerduty", now.Add(2*time.Second))); !reflect.DeepEqual(got, []string{"resolve"}) {
			t.Fatalf("claimed %v, want the resolve", got)
		}
	})
	t.Run("a resolve supersedes an older undelivered trigger that is not in flight", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		s.Enqueue(ctx, ordered("trigger", "k", now.Add(-2*time.Minute)), ordered("free", "", now))
		resolve := ordered("resolve", "k", now.Add(-time.Minute))
		resolve.Supersedes = true
		if err := s.Enqueue(ctx, resolve); err != nil {
			t.Fatal(err)
		}
		if got := keys(claimAll(t, s, "pagerduty", time.Now().Add(time.Second))); !reflect.DeepEqual(got, []string{"free", "resolve"}) {
			t.Fatalf("claimed %v, want free and the resolve only", got)
		}
		st, err := s.OutboxStats(ctx)
		if err != nil || st.Abandoned != 1 {
			t.Errorf("stats %+v, %v: want the trigger abandoned", st, err)
		}
	})
	t.Run("a resolve waits for a trigger in flight rather than superseding it", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		s.Enqueue(ctx, ordered("trigger", "k", now.Add(-2*time.Minute)))
		got := claimAll(t, s, "pagerduty", time.Now())
		resolve := ordered("resolve", "k", now.Add(-time.Minute))
		resolve.Supersedes = true
		if err := s.Enqueue(ctx, resolve); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkDelivered(ctx, got[0].ID); err != nil {
			t.Fatalf("the trigger in flight was superseded: %v", err)
		}
		if got := keys(claimAll(t, s, "pagerduty", time.Now().Add(time.Second))); !reflect.DeepEqual(got, []string{"resolve"}) {
			t.Fatalf("claimed %v, want the resolve", got)
		}
	})
	t.Run("a message's enqueueing time is kept apart from its event's time", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		before := time.Now().UTC().Add(-time.Second)
		s.Enqueue(ctx, ordered("backdated", "", now.Add(-72*time.Hour)))
		got := claimAll(t, s, "pagerduty", time.Now().Add(time.Second))
		if len(got) != 1 || !got[0].CreatedAt.Equal(now.Add(-72*time.Hour)) || got[0].EnqueuedAt.Before(before) {
			t.Fatalf("claimed %+v: want CreatedAt the event's time and EnqueuedAt now", got)
		}
	})
}
