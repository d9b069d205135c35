package alerting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

func TestATrackerThatLeadsAgainResolvesWhatAnotherReplicaFired(t *testing.T) {
	// Two replicas share the saved states. B leads, then A leads and fires
	// the page; B leads again after it has resolved. Without Reload, B
	// kept its own stale "not firing" and never sent the resolve: the
	// PagerDuty incident stayed open.
	saved := &fakeStateStore{}
	a, _ := NewTracker(TrackerConfig{Interval: time.Minute, State: saved})
	b, _ := NewTracker(TrackerConfig{Interval: time.Minute, State: saved})
	ctx := context.Background()
	quiet := []slo.Status{status("checkout-availability", "--", "--", fp(0.5))}
	burning := []slo.Status{status("checkout-availability", "f-", "--", fp(0.5))}

	b.Observe(ctx, quiet, t0)
	if got := describe(a.Observe(ctx, burning, t0.Add(time.Minute))); strings.Join(got, ",") != "alert page fired" {
		t.Fatalf("A: %v, want the page fired", got)
	}
	b.Reload() // B leads again
	if got := describe(b.Observe(ctx, quiet, t0.Add(2*time.Minute))); strings.Join(got, ",") != "alert page resolved" {
		t.Fatalf("B after leading again: %v, want the page resolved", got)
	}
	// And A, leading again after B resolved it, does not resolve it twice
	// nor re-send it.
	a.Reload()
	if got := describe(a.Observe(ctx, quiet, t0.Add(3*time.Minute))); len(got) != 0 {
		t.Fatalf("A after leading again: %v, want nothing", got)
	}
}
