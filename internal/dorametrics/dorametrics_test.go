package dorametrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate/dora"
	"github.com/slogate/slogate/store"
)

// deploys is a store of a fixed list, counting the lists.
type deploys struct {
	list  []slogate.Deploy
	calls int
	fail  error
}

func (d *deploys) ListDeploys(_ context.Context, f store.DeployFilter) ([]slogate.Deploy, string, error) {
	d.calls++
	if d.fail != nil {
		return nil, "", d.fail
	}
	return d.list, "", nil
}

type noBurns struct{}

func (noBurns) Burns(context.Context, string, []dora.Span, time.Time) ([]dora.Burn, dora.Stats, error) {
	return nil, dora.Stats{}, nil
}

func TestCollector(t *testing.T) {
	now := time.Now().UTC()
	finished := func(ago time.Duration, status string) slogate.Deploy {
		start := now.Add(-ago)
		end := start.Add(10 * time.Minute)
		return slogate.Deploy{ID: "dep_" + status + ago.String(), Service: "checkout", Environment: "production",
			StartedAt: start, FinishedAt: &end, Status: status}
	}
	d := &deploys{list: []slogate.Deploy{
		finished(72*time.Hour, slogate.StatusSucceeded),
		finished(48*time.Hour, slogate.StatusFailed),
		finished(24*time.Hour, slogate.StatusSucceeded),
	}}
	c := New(d, noBurns{}, time.Hour, nil)
	want := `
# HELP slogate_dora_change_failures Change failures among the deploys finished in the last 30 days.
# TYPE slogate_dora_change_failures gauge
slogate_dora_change_failures{environment="production",service="checkout"} 1
# HELP slogate_dora_deployments Deploys finished succeeded in the last 30 days.
# TYPE slogate_dora_deployments gauge
slogate_dora_deployments{environment="production",service="checkout"} 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "slogate_dora_deployments", "slogate_dora_change_failures"); err != nil {
		t.Error(err)
	}
	t.Run("figures are kept for the ttl, and stay when they cannot be computed", func(t *testing.T) {
		d.fail = errors.New("store down")
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), "slogate_dora_deployments", "slogate_dora_change_failures"); err != nil {
			t.Error(err)
		}
		if d.calls != 1 {
			t.Errorf("the store was listed %d times within the ttl, want 1", d.calls)
		}
		stale := New(d, noBurns{}, 0, nil)
		if n := testutil.CollectAndCount(stale); n != 0 {
			t.Errorf("a collector that never computed sends %d gauges while the store is down, want 0", n)
		}
	})
	var _ prometheus.Collector = c
}
