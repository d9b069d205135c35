package backtest

import (
	"context"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

func TestAgreement(t *testing.T) {
	dry := func(d slogate.Decision) *gate.Outcome { return &gate.Outcome{Decision: d} }
	tests := map[string]struct {
		rp   Replay
		want string
	}{
		"a halt of a deploy that failed agrees":               {Replay{Decision: slogate.Halt, Status: slogate.StatusFailed}, "agree"},
		"a halt of a deploy that was rolled back agrees":      {Replay{Decision: slogate.Halt, Status: slogate.StatusRolledBack}, "agree"},
		"a promote of a deploy that went well agrees":         {Replay{Decision: slogate.Promote, Status: slogate.StatusSucceeded}, "agree"},
		"a promote of a deploy a page followed disagrees":     {Replay{Decision: slogate.Promote, Status: slogate.StatusSucceeded, PageAfter: true}, "disagree"},
		"a halt of a deploy that went well disagrees":         {Replay{Decision: slogate.Halt, Status: slogate.StatusSucceeded}, "disagree"},
		"a deploy still running is unknown":                   {Replay{Decision: slogate.Promote, Status: slogate.StatusRunning}, "unknown"},
		"no decision is unknown":                              {Replay{Decision: slogate.Wait, Status: slogate.StatusFailed}, "unknown"},
		"a dry run is judged by its real verdict":             {Replay{Decision: slogate.Promote, DryRun: dry(slogate.Halt), Status: slogate.StatusFailed}, "agree"},
		"a dry run that never decided keeps the answer given": {Replay{Decision: slogate.Promote, DryRun: dry(slogate.Wait), Status: slogate.StatusFailed}, "disagree"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := agreement(tc.rp); got != tc.want {
				t.Errorf("agreement = %s, want %s", got, tc.want)
			}
		})
	}
}

type fakeGate struct{}

func (fakeGate) Evaluate(context.Context, gate.Request) (gate.Answer, error) {
	return gate.Answer{}, nil
}

type fakeMeasurer struct{}

func (fakeMeasurer) Statuses(context.Context, []slo.Objective, time.Time) []slo.Status { return nil }

type noDeploys struct{}

func (noDeploys) ListDeploys(context.Context, store.DeployFilter) ([]slogate.Deploy, string, error) {
	return nil, "", nil
}

func TestRunRefusesAnIncompleteConfigOrBadOptions(t *testing.T) {
	good := Options{Since: time.Hour, Interval: time.Minute, Horizon: time.Hour}
	full := Config{Gate: fakeGate{}, Measurer: fakeMeasurer{}, SLOs: &slo.Set{}, Deploys: noDeploys{}}
	if r, err := Run(context.Background(), full, good, time.Now()); err != nil || len(r.Deploys) != 0 {
		t.Fatalf("a complete config: %+v %v, want an empty report", r, err)
	}
	tests := map[string]struct {
		cfg  Config
		opts Options
	}{
		"no gate":                             {Config{}, good},
		"a horizon shorter than the interval": {full, Options{Since: time.Hour, Interval: time.Hour, Horizon: time.Minute}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Run(context.Background(), tc.cfg, tc.opts, time.Now()); err == nil {
				t.Error("no error")
			}
		})
	}
}
