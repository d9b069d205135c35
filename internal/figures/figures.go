// Package figures keeps the leader's figures in the store for the replicas
// that follow (gate.SharedFigures), as gzip-compressed JSON, and names
// this process among the replicas. cmd only wires it.
package figures

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// Leadership is the name of the evaluation's leadership, and of the
// figures its leader saves.
const Leadership = "evaluation"

// Store keeps the leader's figures in the store, as a
// gzip-compressed JSON array, for the replicas that follow
// (gate.SharedFigures). The statuses are encoded one at a time into the
// compressor: no buffer of the whole array is held, so a run of 10,000
// SLOs saves a few MiB rather than holding tens.
type Store struct{ Store store.FiguresStore }

var _ gate.SharedFigures = Store{}

func (f Store) SaveFigures(ctx context.Context, lf gate.LeaderFigures) error {
	b, err := Pack(lf.Statuses)
	if err != nil {
		return fmt.Errorf("encoding %d statuses: %w", len(lf.Statuses), err)
	}
	_, err = f.Store.SaveFigures(ctx, store.Figures{Name: Leadership, Replica: lf.Replica, MeasuredAt: lf.MeasuredAt, Statuses: b})
	return err
}

func (f Store) LatestFigures(ctx context.Context, newerThan time.Time) (gate.LeaderFigures, bool, error) {
	sf, found, err := f.Store.LatestFigures(ctx, Leadership, newerThan)
	if err != nil || !found {
		return gate.LeaderFigures{}, false, err
	}
	sts, err := Unpack(sf.Statuses)
	if err != nil {
		return gate.LeaderFigures{}, false, fmt.Errorf("decoding the figures replica %s saved at %s: %w", sf.Replica, sf.SavedAt.Format(time.RFC3339), err)
	}
	return gate.LeaderFigures{Replica: sf.Replica, MeasuredAt: sf.MeasuredAt, Statuses: sts}, true, nil
}

// Pack encodes statuses as a gzip-compressed JSON array, one status at a
// time into the compressor.
func Pack(sts []slo.Status) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(zw)
	if _, err := zw.Write([]byte{'['}); err != nil {
		return nil, err
	}
	for i := range sts {
		if i > 0 {
			if _, err := zw.Write([]byte{','}); err != nil {
				return nil, err
			}
		}
		if err := enc.Encode(&sts[i]); err != nil {
			return nil, fmt.Errorf("status %s: %w", sts[i].Name, err)
		}
	}
	if _, err := zw.Write([]byte{']'}); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unpack decodes what Pack encoded.
func Unpack(b []byte) ([]slo.Status, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	var sts []slo.Status
	if err := json.NewDecoder(zr).Decode(&sts); err != nil {
		return nil, err
	}
	return sts, nil
}

// ReplicaID names this process among the replicas: host name and pid.
func ReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}
