package deploys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/store"
)

// Lookup is the gate's view of the recorded deploys (gate.Deploys), read
// from the store.
type Lookup struct{ Store store.Store }

var _ gate.Deploys = Lookup{}

// Deploy is the deploy with the id; an unknown id is gate.ErrUnknownDeploy.
func (l Lookup) Deploy(ctx context.Context, id string) (slogate.Deploy, error) {
	d, err := l.Store.GetDeploy(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return slogate.Deploy{}, fmt.Errorf("deploy %q: %w", id, gate.ErrUnknownDeploy)
	}
	return d, err
}

// Latest is the newest deploy started strictly before the instant, of
// another version, that did not fail or roll back: a canary's baseline.
// A redeploy of the same version looks past the earlier deploys of it.
func (l Lookup) Latest(ctx context.Context, service, env string, before time.Time, notVersion string) (slogate.Deploy, bool, error) {
	return l.newest(ctx, store.DeployFilter{Service: service, Environment: env, Before: before}, func(d slogate.Deploy) bool {
		return d.StartedAt.Before(before) && d.Version != notVersion && !d.Failed()
	})
}

// ofVersionScan bounds how many recent deploys a lookup looks through.
const ofVersionScan = 1000

// OfVersion is the newest deploy of the version started at or before the
// instant (a point-in-time ask sees only the deploys that had begun).
func (l Lookup) OfVersion(ctx context.Context, service, env, version string, before time.Time) (slogate.Deploy, bool, error) {
	return l.newest(ctx, store.DeployFilter{Service: service, Environment: env, Before: before}, func(d slogate.Deploy) bool {
		return d.Version == version
	})
}

// newest is the first deploy of the filter's pages, newest first, that
// matches, among the ofVersionScan newest.
func (l Lookup) newest(ctx context.Context, f store.DeployFilter, match func(slogate.Deploy) bool) (slogate.Deploy, bool, error) {
	f.Limit = 200
	for seen := 0; seen < ofVersionScan; {
		page, next, err := l.Store.ListDeploys(ctx, f)
		if err != nil {
			return slogate.Deploy{}, false, err
		}
		for _, d := range page {
			if match(d) {
				return d, true, nil
			}
		}
		seen += len(page)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	return slogate.Deploy{}, false, nil
}
