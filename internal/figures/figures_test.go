package figures

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// The figures a leader saves read back identical on a follower, through
// the real store (SQLite here; PostgreSQL in the failover test).
func TestTheLeadersFiguresReadBackThroughTheStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "slogate.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := func(v float64) *float64 { return &v }
	statuses := []slo.Status{{
		Name: "checkout-availability", Service: "checkout", Target: 0.999, Window: "30d", Source: slo.SourcePrometheus,
		SLI:         slo.SLIFigures{Good: f(9990), Total: f(10000), Ratio: f(0.999), ErrorRatio: f(0.001)},
		ErrorBudget: slo.BudgetFigures{Total: 0.001, Consumed: f(1), Remaining: f(0)},
		BurnRates:   map[string]*float64{"5m": f(1), "1h": nil},
		Alerts:      []slo.AlertState{{Severity: slo.SeverityPage, LongWindow: "1h", ShortWindow: "5m", Factor: 14.4, Unknown: true}},
		EvaluatedAt: at, Range: slo.RangeJSON{Start: at.Add(-30 * 24 * time.Hour), End: at},
		Errors:     []slo.MeasureError{{Window: "1h", Error: "no data", NoData: true}},
		AgeSeconds: map[string]float64{"period": 60},
	}}
	sf := Store{st}
	if err := sf.SaveFigures(ctx, gate.LeaderFigures{Replica: "host/1", MeasuredAt: at, Statuses: statuses}); err != nil {
		t.Fatal(err)
	}
	got, found, err := sf.LatestFigures(ctx, time.Time{})
	if err != nil || !found {
		t.Fatalf("found %v, %v", found, err)
	}
	if got.Replica != "host/1" || !got.MeasuredAt.Equal(at) || !reflect.DeepEqual(got.Statuses, statuses) {
		t.Fatalf("read back %+v\nwant %+v", got, statuses)
	}
	if _, found, err := sf.LatestFigures(ctx, at); err != nil || found {
		t.Errorf("newer than what was read: found %v, %v", found, err)
	}
}
