package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slogate/slogate/slo"
)

// Defaults of the leader checks.
const (
	// DefaultLeaderTimeout bounds one leader check (a ping of the lock's
	// session, or taking the lock).
	DefaultLeaderTimeout = 5 * time.Second
	// DefaultLeaderCheck is how often a run in progress checks that this
	// replica still leads; a run whose leadership is lost is cancelled.
	DefaultLeaderCheck = 5 * time.Second
)

// ErrLostLeadership is the cause of a run cancelled because this replica
// stopped being the leader during it.
var ErrLostLeadership = errors.New("this replica lost the leadership during the evaluation")

// ErrFollower is the error of every window of an objective on a replica
// that does not lead the evaluation (several replicas: the leader measures).
var ErrFollower = errors.New("not measured here: this replica follows; the leader evaluates (ask it, or read its /metrics)")

// isLeader asks the leader check under its deadline; a check that errs or
// times out says no.
func (b *Board) isLeader(ctx context.Context) bool {
	ctx, cancel := context.WithTimeoutCause(ctx, b.leaderTimeout,
		fmt.Errorf("leader check timed out after %s", b.leaderTimeout))
	defer cancel()
	return b.leader(ctx)
}

// lead is called at the start of a run on the leader: when this replica
// was not the leader at its previous run, OnLeader runs (the tracker
// reloads the states another leader saved).
func (b *Board) lead(ctx context.Context) {
	if b.wasLeader {
		return
	}
	b.wasLeader = true
	b.logger.InfoContext(ctx, "this replica leads the evaluation")
	if b.onLeader != nil {
		b.onLeader(ctx)
	}
}

// follow is a run on a replica that does not lead. It drops this
// replica's own figures and their gauges (nothing frozen is served or
// scraped); with Shared it serves the leader's saved figures instead
// (Origin "leader", never exported as gauges), read now; without, its
// objectives say ErrFollower.
func (b *Board) follow(ctx context.Context) {
	if b.wasLeader {
		b.logger.WarnContext(ctx, "this replica no longer leads the evaluation; its figures are dropped")
	}
	b.wasLeader = false
	b.metrics.leading.Set(0)
	b.mu.Lock()
	if b.from != slo.OriginLeader {
		for _, st := range b.statuses {
			b.unexport(st)
		}
		b.statuses = map[string]slo.Status{}
		b.from, b.measuredAt, b.measuredBy, b.checkedAt = slo.OriginLeader, time.Time{}, "", time.Time{}
		b.notReadyErr = ErrFollower
		if b.shared != nil {
			b.notReadyErr = ErrNoLeaderFigures
		}
	}
	b.mu.Unlock()
	b.refresh(ctx, b.leaderTimeout)
}

// watchLeader checks every leaderCheck that this replica still leads, and
// cancels the run with ErrLostLeadership when it does not. It returns when
// ctx ends.
func (b *Board) watchLeader(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(b.leaderCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !b.isLeader(ctx) && ctx.Err() == nil {
				cancel(ErrLostLeadership)
				return
			}
		}
	}
}
