package storetest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/store"
)

func figures(replica string, at time.Time, body string) store.Figures {
	return store.Figures{Name: "evaluation", Replica: replica, MeasuredAt: at, Statuses: []byte(body)}
}

func testFigures(t *testing.T, open Opener) {
	t.Run("the leader's figures read back byte for byte on another instance, measuredAt in UTC to the microsecond", func(t *testing.T) {
		leader, follower, ctx := open(t), open(t), ctxT(t)
		body := `[{"name":"checkout-availability","sli":{"ratio":0.9993}}]`
		before := time.Now().UTC().Truncate(time.Microsecond)
		saved, err := leader.SaveFigures(ctx, figures("replica-a", base, body))
		if err != nil || !saved {
			t.Fatalf("SaveFigures: saved %v, %v", saved, err)
		}
		got, found, err := follower.LatestFigures(ctx, "evaluation", time.Time{})
		if err != nil || !found {
			t.Fatalf("LatestFigures: found %v, %v", found, err)
		}
		if !bytes.Equal(got.Statuses, []byte(body)) || got.Replica != "replica-a" || got.Name != "evaluation" {
			t.Errorf("read back %+v, want %s by replica-a", got, body)
		}
		if want := store.UTC(base); !got.MeasuredAt.Equal(want) || got.MeasuredAt.Location() != time.UTC || got.MeasuredAt.Nanosecond()%1000 != 0 {
			t.Errorf("measuredAt %v, want %v", got.MeasuredAt, want)
		}
		if got.SavedAt.Before(before) || got.SavedAt.Location() != time.UTC {
			t.Errorf("savedAt %v, want UTC at or after %v", got.SavedAt, before)
		}
	})
	t.Run("nothing saved is not found, and neither is nothing newer than what a follower has", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		if _, found, err := s.LatestFigures(ctx, "evaluation", time.Time{}); err != nil || found {
			t.Fatalf("before any save: found %v, %v", found, err)
		}
		if _, err := s.SaveFigures(ctx, figures("a", base, `[1]`)); err != nil {
			t.Fatal(err)
		}
		if _, found, err := s.LatestFigures(ctx, "evaluation", base); err != nil || found {
			t.Errorf("newer than the stored measuredAt: found %v, %v; want none", found, err)
		}
		if f, found, err := s.LatestFigures(ctx, "evaluation", base.Add(-time.Microsecond)); err != nil || !found || string(f.Statuses) != `[1]` {
			t.Errorf("newer than a microsecond before: %+v %v %v; want the saved figures", f, found, err)
		}
		if _, found, err := s.LatestFigures(ctx, "other", time.Time{}); err != nil || found {
			t.Errorf("another name: found %v, %v", found, err)
		}
	})
	t.Run("a later run replaces the figures, an earlier or equal one (a deposed leader's) does not", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		if saved, err := s.SaveFigures(ctx, figures("a", base, `["first"]`)); err != nil || !saved {
			t.Fatal(saved, err)
		}
		if saved, err := s.SaveFigures(ctx, figures("b", base.Add(time.Minute), `["new leader"]`)); err != nil || !saved {
			t.Fatalf("a later run: saved %v, %v", saved, err)
		}
		for name, at := range map[string]time.Time{"an earlier run": base.Add(30 * time.Second), "a run at the same instant": base.Add(time.Minute)} {
			if saved, err := s.SaveFigures(ctx, figures("a", at, `["old leader"]`)); err != nil || saved {
				t.Errorf("%s: saved %v, %v; want not saved", name, saved, err)
			}
		}
		f, _, err := s.LatestFigures(ctx, "evaluation", time.Time{})
		if err != nil || string(f.Statuses) != `["new leader"]` || f.Replica != "b" || !f.MeasuredAt.Equal(store.UTC(base.Add(time.Minute))) {
			t.Errorf("latest %+v %v, want the new leader's", f, err)
		}
	})
	t.Run("figures without a name, replica, instant or statuses are invalid, each named", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		_, err := s.SaveFigures(ctx, store.Figures{})
		if !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
		for _, field := range []string{"name", "replica", "measuredAt", "statuses"} {
			if !strings.Contains(err.Error(), field) {
				t.Errorf("%q does not name %s", err, field)
			}
		}
	})
}

func testEnqueueWithAudit(t *testing.T, open Opener) {
	t.Run("messages and audit entries are written together", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		e := store.AuditEntry{Actor: "slogate", Action: "alert.state", Subject: "slo-a/page", Detail: `{"firing":true}`}
		if err := s.EnqueueWithAudit(ctx, []store.AuditEntry{e}, msg("trigger", "pagerduty")); err != nil {
			t.Fatal(err)
		}
		// The same key again is ignored, its entry is written.
		e.Detail = `{}`
		if err := s.EnqueueWithAudit(ctx, []store.AuditEntry{e}, msg("trigger", "pagerduty")); err != nil {
			t.Fatal(err)
		}
		if got := claimAll(t, s, "pagerduty", time.Now().Add(time.Second)); len(got) != 1 || got[0].Key != "trigger" {
			t.Errorf("claimed %v, want the one trigger", keys(got))
		}
		es, _, err := s.ListAudit(ctx, store.AuditFilter{Action: "alert.state"})
		if err != nil || len(es) != 2 || es[0].Detail != `{}` || es[1].Detail != `{"firing":true}` {
			t.Errorf("audit %+v %v, want both entries, newest first", es, err)
		}
	})
	t.Run("an invalid entry writes nothing", func(t *testing.T) {
		s, ctx := open(t), ctxT(t)
		err := s.EnqueueWithAudit(ctx, []store.AuditEntry{{Subject: "no action"}}, msg("trigger", "pagerduty"))
		if !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
		if got := claimAll(t, s, "pagerduty", time.Now().Add(time.Second)); len(got) != 0 {
			t.Errorf("claimed %v, want nothing", keys(got))
		}
	})
}
