package deploys

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/store/storetest"
)

func TestLookup(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	record := func(version, status string, started time.Time) slogate.Deploy {
		t.Helper()
		d, _, err := st.CreateDeploy(ctx, slogate.Deploy{Service: "checkout", Environment: "production", Version: version, StartedAt: started}, "")
		if err != nil {
			t.Fatal(err)
		}
		if status != slogate.StatusRunning {
			if d, err = st.FinishDeploy(ctx, d.ID, status, started.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	v1 := record("v1", slogate.StatusSucceeded, now.Add(-4*time.Hour))
	v2 := record("v2", slogate.StatusFailed, now.Add(-3*time.Hour))
	record("v2b", slogate.StatusRolledBack, now.Add(-2*time.Hour))
	v3 := record("v3", slogate.StatusRunning, now.Add(-time.Hour))
	l := Lookup{Store: st}

	t.Run("a baseline is the newest earlier deploy of another version that did not fail or roll back", func(t *testing.T) {
		got, found, err := l.Latest(ctx, "checkout", "production", now, "v3")
		if err != nil || !found || got.ID != v1.ID {
			t.Errorf("Latest = %s %v %v, want %s (v1)", got.Version, found, err, v1.ID)
		}
	})
	t.Run("a baseline started strictly before the instant", func(t *testing.T) {
		got, found, err := l.Latest(ctx, "checkout", "production", v1.StartedAt, "v3")
		if err != nil || found {
			t.Errorf("Latest at v1's start = %s %v %v, want none", got.Version, found, err)
		}
	})
	t.Run("the deploy of a version is the newest started at or before the instant", func(t *testing.T) {
		got, found, err := l.OfVersion(ctx, "checkout", "production", "v3", v3.StartedAt)
		if err != nil || !found || got.ID != v3.ID {
			t.Errorf("OfVersion v3 = %s %v %v, want %s", got.ID, found, err, v3.ID)
		}
		if _, found, err := l.OfVersion(ctx, "checkout", "production", "v3", v3.StartedAt.Add(-time.Second)); err != nil || found {
			t.Errorf("OfVersion v3 before it started: found %v (%v), want none", found, err)
		}
	})
	t.Run("a deploy is read by its id with every field the store keeps", func(t *testing.T) {
		got, err := l.Deploy(ctx, v2.ID)
		if err != nil || got.ID != v2.ID || got.Status != slogate.StatusFailed || got.FinishedAt == nil {
			t.Errorf("Deploy = %+v (%v), want %+v", got, err, v2)
		}
	})
	t.Run("an unknown id is an unknown deploy to the gate", func(t *testing.T) {
		if _, err := l.Deploy(ctx, "dep_nope"); !errors.Is(err, gate.ErrUnknownDeploy) {
			t.Errorf("Deploy of an unknown id: %v, want gate.ErrUnknownDeploy", err)
		}
	})
}
