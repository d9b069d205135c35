package rulequeue

import (
	"context"
	"testing"
	"time"

	"github.com/slogate/slogate/store/storetest"
)

func TestQueueKeepsPendingRulesUnderTheirOwnPeer(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	q := Queue{Store: st}
	at := time.Now()
	if err := q.Enqueue(ctx, "42", []byte(`{"deploymentId":42}`)); err != nil {
		t.Fatal(err)
	}
	if ms, err := st.ClaimOutbox(ctx, "github", 10, time.Minute, at.Add(time.Hour)); err != nil || len(ms) != 0 {
		t.Errorf("the dispatcher's peer claimed %d rules (%v), want none", len(ms), err)
	}
	items, err := q.Claim(ctx, 10, time.Minute, at.Add(time.Hour))
	if err != nil || len(items) != 1 || string(items[0].Payload) != `{"deploymentId":42}` || items[0].Attempts != 1 {
		t.Fatalf("claimed %+v (%v), want the rule", items, err)
	}
	if err := q.Reschedule(ctx, items[0].ID, "still waiting", at.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if items, err := q.Claim(ctx, 10, time.Minute, at.Add(time.Hour)); err != nil || len(items) != 0 {
		t.Errorf("claimed %d rules before their next attempt (%v), want none", len(items), err)
	}
	items, err = q.Claim(ctx, 10, time.Minute, at.Add(3*time.Hour))
	if err != nil || len(items) != 1 {
		t.Fatalf("claimed %d (%v) after the next attempt, want 1", len(items), err)
	}
	if err := q.Done(ctx, items[0].ID); err != nil {
		t.Fatal(err)
	}
	if stats, err := st.OutboxStats(ctx); err != nil || stats.Delivered != 1 || stats.Pending != 0 {
		t.Errorf("stats %+v (%v), want the rule done", stats, err)
	}
}
