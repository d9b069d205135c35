package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// leadership is the name of the evaluation's leadership, and of the
// figures its leader saves.
const leadership = "evaluation"

// storeFigures keeps the leader's figures in the store, as JSON, for the
// replicas that follow (gate.SharedFigures).
type storeFigures struct{ s store.FiguresStore }

var _ gate.SharedFigures = storeFigures{}

func (f storeFigures) SaveFigures(ctx context.Context, lf gate.LeaderFigures) error {
	b, err := json.Marshal(lf.Statuses)
	if err != nil {
		return fmt.Errorf("encoding %d statuses: %w", len(lf.Statuses), err)
	}
	_, err = f.s.SaveFigures(ctx, store.Figures{Name: leadership, Replica: lf.Replica, MeasuredAt: lf.MeasuredAt, Statuses: b})
	return err
}

func (f storeFigures) LatestFigures(ctx context.Context, newerThan time.Time) (gate.LeaderFigures, bool, error) {
	sf, found, err := f.s.LatestFigures(ctx, leadership, newerThan)
	if err != nil || !found {
		return gate.LeaderFigures{}, false, err
	}
	var sts []slo.Status
	if err := json.Unmarshal(sf.Statuses, &sts); err != nil {
		return gate.LeaderFigures{}, false, fmt.Errorf("decoding the figures replica %s saved at %s: %w", sf.Replica, sf.SavedAt.Format(time.RFC3339), err)
	}
	return gate.LeaderFigures{Replica: sf.Replica, MeasuredAt: sf.MeasuredAt, Statuses: sts}, true, nil
}

// replicaID names this process among the replicas: host name and pid.
func replicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}
