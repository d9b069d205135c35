package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slogate/slogate/slo"
)

// SharedFigures keeps the leader's latest figures where every replica
// reads them (the store, through an adapter): the leader saves each run's
// statuses, a follower serves the latest saved ones.
type SharedFigures interface {
	// SaveFigures keeps f unless figures measured at or after
	// f.MeasuredAt are kept already.
	SaveFigures(ctx context.Context, f LeaderFigures) error
	// LatestFigures returns the latest figures when they were measured
	// after newerThan; found is false otherwise.
	LatestFigures(ctx context.Context, newerThan time.Time) (f LeaderFigures, found bool, err error)
}

// LeaderFigures are the statuses one run of the leader measured.
type LeaderFigures struct {
	Replica    string
	MeasuredAt time.Time
	Statuses   []slo.Status
}

const (
	// StaleAfterIntervals: scheduled figures older than this many
	// schedule intervals are stale (Origin.Stale): several runs have
	// passed, on any replica, without measuring them again.
	StaleAfterIntervals = 3
	// DefaultInterval is the schedule interval assumed when
	// BoardConfig.Interval is unset.
	DefaultInterval = time.Minute
	// followerRefresh is the most often a request on a follower reads the
	// store for newer figures (at most once per schedule interval when
	// that is shorter); the follower's own schedule reads it too.
	followerRefresh = 5 * time.Second
	// requestRefreshTimeout bounds a store read made for a request.
	requestRefreshTimeout = 2 * time.Second
)

// ErrNoLeaderFigures is the error of every window of an objective on a
// follower before the leader has saved figures of it.
var ErrNoLeaderFigures = errors.New("not measured here: this replica follows, and the leader has saved no figures of this SLO yet")

// save keeps a run's statuses for the followers; a failure is logged: the
// followers serve older figures, marked stale in time.
func (b *Board) save(ctx context.Context, statuses []slo.Status, at time.Time) {
	if b.shared == nil {
		return
	}
	ctx, cancel := context.WithTimeoutCause(ctx, b.leaderTimeout,
		fmt.Errorf("saving the figures for the followers timed out after %s", b.leaderTimeout))
	defer cancel()
	if err := b.shared.SaveFigures(ctx, LeaderFigures{Replica: b.replica, MeasuredAt: at, Statuses: statuses}); err != nil {
		b.metrics.saves.WithLabelValues("failed").Inc()
		b.logger.WarnContext(ctx, "figures not saved for the followers; they serve older ones", "err", err)
		return
	}
	b.metrics.saves.WithLabelValues("ok").Inc()
}

// refresh reads the leader's figures when newer ones were saved than those
// this follower serves. One refresh at a time: a request that finds one
// running serves what there is.
func (b *Board) refresh(ctx context.Context, timeout time.Duration) {
	if b.shared == nil || !b.refreshing.TryLock() {
		return
	}
	defer b.refreshing.Unlock()
	b.mu.RLock()
	have, from := b.measuredAt, b.from
	b.mu.RUnlock()
	if from != slo.OriginLeader {
		return // this replica leads now
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("reading the leader's figures timed out after %s", timeout))
	defer cancel()
	f, found, err := b.shared.LatestFigures(ctx, have)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.checkedAt = b.clock()
	if err != nil {
		b.logger.WarnContext(ctx, "the leader's figures could not be read; serving the ones read before", "err", err)
		return
	}
	if !found || b.from != slo.OriginLeader || !f.MeasuredAt.After(b.measuredAt) {
		return
	}
	m := make(map[string]slo.Status, len(f.Statuses))
	for _, st := range f.Statuses {
		m[st.Name] = st
	}
	b.statuses, b.measuredAt, b.measuredBy, b.notReadyErr = m, f.MeasuredAt.UTC(), f.Replica, ErrNoLeaderFigures
}

// refreshIfDue refreshes a follower's figures for a request when the last
// read is older than followerRefresh (or the interval, when shorter).
func (b *Board) refreshIfDue(ctx context.Context) {
	if b.shared == nil {
		return
	}
	b.mu.RLock()
	due := b.from == slo.OriginLeader && b.clock().Sub(b.checkedAt) >= min(followerRefresh, b.interval)
	b.mu.RUnlock()
	if due {
		b.refresh(ctx, requestRefreshTimeout)
	}
}

// origin describes the figures served now (b.mu held); nil when there are
// none.
func (b *Board) origin() *slo.Origin {
	if b.measuredAt.IsZero() {
		return nil
	}
	age := b.clock().Sub(b.measuredAt)
	staleAfter := StaleAfterIntervals * b.interval
	return &slo.Origin{
		From: b.from, Replica: b.measuredBy, MeasuredAt: b.measuredAt,
		AgeSeconds: max(0, age.Seconds()), Stale: age > staleAfter, StaleAfterSeconds: staleAfter.Seconds(),
	}
}
