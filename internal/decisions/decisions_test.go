package decisions

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/store"
	"github.com/slogate/slogate/store/storetest"
)

// notifier is a fake of the dispatcher: one message per event, keyed by
// its evaluation id, and a count of wake-ups.
type notifier struct {
	woken int
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
	return []slogate.OutboxMessage{{Key: "fake/" + e.Decision.EvaluationID, Peer: "fake", Payload: b, CreatedAt: e.At}}, nil
}

func (n *notifier) Wake() { n.woken++ }

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func answer(id string, d slogate.Decision) gate.Answer {
	return gate.Answer{Decision: d, Reason: "because", EvaluationID: id, Service: "checkout", Environment: "production",
		Version: "v2", EvaluatedAt: now, Checks: []gate.Check{}}
}

// pending is what the outbox holds for delivery.
func pending(t *testing.T, st store.Store) []slogate.OutboxMessage {
	t.Helper()
	msgs, err := st.ClaimOutbox(context.Background(), "", 10, time.Minute, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestRecorder(t *testing.T) {
	ctx := context.Background()

	t.Run("a decision about a deploy is stored with its notification, which carries the deploy and its pipeline", func(t *testing.T) {
		st, n := storetest.SQLite(t), &notifier{}
		dep, _, err := st.CreateDeploy(ctx, slogate.Deploy{Service: "checkout", Environment: "production", Version: "v2",
			PipelineURL: "https://ci.example/run/42"}, "")
		if err != nil {
			t.Fatal(err)
		}
		r, err := New(Config{Store: st, Notifier: n})
		if err != nil {
			t.Fatal(err)
		}
		a := answer("ev_1", slogate.Halt)
		a.DeployID = dep.ID
		if err := r.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := st.GetDecision(ctx, "ev_1")
		if err != nil || got.Decision != slogate.Halt || got.DeployID != dep.ID || got.Reason != "because" {
			t.Fatalf("stored %+v (%v)", got, err)
		}
		var stored gate.Answer
		if err := json.Unmarshal(got.Body, &stored); err != nil || stored.EvaluationID != "ev_1" {
			t.Errorf("stored body %s (%v), want the answer", got.Body, err)
		}
		msgs := pending(t, st)
		if len(msgs) != 1 || n.woken != 1 {
			t.Fatalf("%d messages, woken %d times: want 1 and 1", len(msgs), n.woken)
		}
		var e alerting.Event
		if err := json.Unmarshal(msgs[0].Payload, &e); err != nil || e.DecisionDeploy == nil || e.DecisionDeploy.ID != dep.ID ||
			len(e.Links) != 1 || e.Links[0].Href != dep.PipelineURL {
			t.Errorf("notified %+v (%v), want the deploy %s and its pipeline link", e, err, dep.ID)
		}
	})
	t.Run("a source fault is stored and notified to no one", func(t *testing.T) {
		st, n := storetest.SQLite(t), &notifier{}
		r, _ := New(Config{Store: st, Notifier: n})
		if err := r.Record(ctx, answer("ev_2", slogate.Fault)); err != nil {
			t.Fatal(err)
		}
		if got, err := st.GetDecision(ctx, "ev_2"); err != nil || got.Decision != slogate.Fault {
			t.Errorf("stored %+v (%v), want the fault", got, err)
		}
		if msgs := pending(t, st); len(msgs) != 0 || n.woken != 0 {
			t.Errorf("%d messages, woken %d times: want none", len(msgs), n.woken)
		}
	})
	t.Run("an answer asked for an instant is audited as a backtest, never stored as a decision nor notified", func(t *testing.T) {
		st, n := storetest.SQLite(t), &notifier{}
		r, _ := New(Config{Store: st, Notifier: n})
		a := answer("ev_3", slogate.Promote)
		at := now.Add(-time.Hour)
		a.At = &at
		if err := r.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := st.GetDecision(ctx, "ev_3"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a backtest stored as a decision: %v", err)
		}
		es, _, err := st.ListAudit(ctx, store.AuditFilter{Action: ActionBacktest})
		if err != nil || len(es) != 1 || es[0].Subject != "ev_3" {
			t.Errorf("audit %+v (%v), want one backtest entry for ev_3", es, err)
		}
		if msgs := pending(t, st); len(msgs) != 0 || n.woken != 0 {
			t.Errorf("%d messages, woken %d times: want none", len(msgs), n.woken)
		}
	})
	t.Run("an answer whose notifications cannot be built is stored without them", func(t *testing.T) {
		st, n := storetest.SQLite(t), &notifier{fail: errors.New("no template")}
		r, _ := New(Config{Store: st, Notifier: n})
		if err := r.Record(ctx, answer("ev_4", slogate.Wait)); err != nil {
			t.Fatal(err)
		}
		if got, err := st.GetDecision(ctx, "ev_4"); err != nil || got.Decision != slogate.Wait {
			t.Errorf("stored %+v (%v), want the wait", got, err)
		}
		if msgs := pending(t, st); len(msgs) != 0 || n.woken != 0 {
			t.Errorf("%d messages, woken %d times: want none", len(msgs), n.woken)
		}
	})
	t.Run("without a notifier answers are stored only", func(t *testing.T) {
		st := storetest.SQLite(t)
		r, _ := New(Config{Store: st})
		if err := r.Record(ctx, answer("ev_5", slogate.Halt)); err != nil {
			t.Fatal(err)
		}
		if msgs := pending(t, st); len(msgs) != 0 {
			t.Errorf("%d messages, want none", len(msgs))
		}
	})
	t.Run("a store is required", func(t *testing.T) {
		if _, err := New(Config{}); err == nil {
			t.Error("New without a store: no error")
		}
	})
}

func TestOverrides(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	o, err := st.CreateOverride(ctx, store.Override{Service: "checkout", Environment: "production", Reason: "incident 42",
		CreatedBy: "alice", CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := Overrides{Store: st}.Active(ctx, "checkout", "production", now)
	if err != nil || !ok || got != (gate.Override{ID: o.ID, Reason: "incident 42", CreatedBy: "alice", ExpiresAt: o.ExpiresAt}) {
		t.Errorf("Active = %+v %v %v, want the override %s", got, ok, err, o.ID)
	}
	if _, ok, err := (Overrides{Store: st}).Active(ctx, "checkout", "production", now.Add(2*time.Hour)); err != nil || ok {
		t.Errorf("Active after it expired: %v %v, want none", ok, err)
	}
}
