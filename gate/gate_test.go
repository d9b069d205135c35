package gate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// traffic is a fake source: each version serves rate requests per second
// with an error ratio, constant over time; the unscoped figures are the
// sum of every version. Counts are rate × seconds of the range.
type traffic struct {
	versions map[string]struct{ rate, errRatio float64 }
	err      error
	calls    atomic.Int64
	delay    time.Duration
}

func (t *traffic) Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error) {
	t.calls.Add(1)
	if t.delay > 0 {
		select {
		case <-time.After(t.delay):
		case <-ctx.Done():
			return slo.Counts{}, ctx.Err()
		}
	}
	if t.err != nil {
		return slo.Counts{}, t.err
	}
	secs := r.Duration().Seconds()
	var good, total float64
	for v, tr := range t.versions {
		if want, ok := scope["version"]; ok && want != v {
			continue
		}
		total += tr.rate * secs
		good += tr.rate * secs * (1 - tr.errRatio)
	}
	if total == 0 {
		return slo.Counts{}, fmt.Errorf("fake: %w", slo.ErrNoData)
	}
	return slo.Counts{Good: good, Total: total}, nil
}

type fakeDeploys map[string]slogate.Deploy

func (f fakeDeploys) Deploy(_ context.Context, id string) (slogate.Deploy, error) {
	d, ok := f[id]
	if !ok {
		return slogate.Deploy{}, fmt.Errorf("deploy %s: %w", id, ErrUnknownDeploy)
	}
	return d, nil
}

func (f fakeDeploys) Latest(_ context.Context, service, env string, before time.Time, notVersion string) (slogate.Deploy, bool, error) {
	var best slogate.Deploy
	found := false
	for _, d := range f {
		if d.Service == service && d.Environment == env && d.StartedAt.Before(before) && !d.Failed() && d.Version != notVersion && (!found || d.StartedAt.After(best.StartedAt)) {
			best, found = d, true
		}
	}
	return best, found, nil
}

func (f fakeDeploys) OfVersion(_ context.Context, service, env, version string, before time.Time) (slogate.Deploy, bool, error) {
	var best slogate.Deploy
	found := false
	for _, d := range f {
		if d.Service == service && d.Environment == env && d.Version == version && !d.StartedAt.After(before) && (!found || d.StartedAt.After(best.StartedAt)) {
			best, found = d, true
		}
	}
	return best, found, nil
}

type fakeOverrides struct{ o *Override }

func (f fakeOverrides) Active(context.Context, string, string, time.Time) (Override, bool, error) {
	if f.o == nil {
		return Override{}, false, nil
	}
	return *f.o, true, nil
}

func set(policy *slo.GatePolicy) *slo.Set {
	q := func(s string) *slo.Query { return &slo.Query{Source: slo.SourcePrometheus, PromQL: s} }
	s := &slo.Set{Objectives: []slo.Objective{{
		Name: "checkout-availability", Service: "checkout", Target: 0.999, Window: slo.Rolling(30 * slo.Day),
		SLI: slo.SLI{Name: "ok", Good: q(`sum(ok_total)`), Total: q(`sum(all_total)`)},
	}}}
	if policy != nil {
		s.Policies = []slo.GatePolicy{*policy}
	}
	return s
}

func canaryPolicy() *slo.GatePolicy {
	p := slo.DefaultPolicy("checkout")
	p.Name, p.Default = "checkout-production", false
	p.Verification.MinEvents = 500
	p.Canary = &slo.CanaryPolicy{Tolerance: 0.005, Confidence: 0.95}
	return &p
}

func engine(t *testing.T, src Source, s *slo.Set, deploys Deploys, ov Overrides) *Engine {
	t.Helper()
	m, err := NewMeasurer(src, MeasurerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, Deploys: deploys, Overrides: ov, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type vt = struct{ rate, errRatio float64 }

func TestDecisions(t *testing.T) {
	deploy := slogate.Deploy{ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: now.Add(-20 * time.Minute)}
	tests := map[string]struct {
		versions map[string]vt
		srcErr   error
		policy   *slo.GatePolicy
		req      Request
		deploys  fakeDeploys
		override *Override
		want     slogate.Decision
		reason   string
	}{
		// v2: 10 req/s for 20 min = 12,000 events, 0.63 % errors → burn
		// 6.3, at least 4x at 95 % confidence.
		"a canary burning its budget at 6.3x is halted": {
			versions: map[string]vt{"v1": {100, 0.0002}, "v2": {10, 0.0063}},
			req:      Request{Service: "checkout", Environment: "production", DeployID: "dep_1"},
			deploys:  fakeDeploys{"dep_1": deploy}, want: slogate.Halt,
			reason: "checkout-availability: version v2 burns budget at 6.3x since 11:40 (max 2x)",
		},
		// 12,000 events are enough to show a burn of 0.2x is below 2x at a
		// 99.9 % target; 1,200 are not (0 errors in 1,200 allow 2.5x).
		"a clean canary is promoted": {
			versions: map[string]vt{"v1": {10, 0.0002}, "v2": {10, 0.0002}},
			req:      Request{Service: "checkout", Environment: "production", DeployID: "dep_1"},
			deploys:  fakeDeploys{"dep_1": deploy}, want: slogate.Promote, reason: "all 2 checks pass",
		},
		"a version alone finds its deploy": {
			versions: map[string]vt{"v1": {10, 0.0002}, "v2": {10, 0.0002}},
			req:      Request{Service: "checkout", Environment: "production", Version: "v2"},
			deploys:  fakeDeploys{"dep_1": deploy}, want: slogate.Promote,
		},
		// 2 % errors over 30 days: 20x the budget.
		"a service whose budget is spent is halted by policy": {
			versions: map[string]vt{"v1": {10, 0.02}},
			req:      Request{Service: "checkout", Environment: "production"},
			want:     slogate.Halt, reason: "checkout-availability: error budget exhausted: -1900% left over 30d (policy needs 0%)",
		},
		"an override lifts the budget policy": {
			versions: map[string]vt{"v1": {10, 0.02}},
			req:      Request{Service: "checkout", Environment: "production"},
			override: &Override{ID: "ovr_1", Reason: "hotfix for INC-42", ExpiresAt: now.Add(time.Hour)},
			want:     slogate.Promote,
		},
		"a service without data is not promoted": {
			versions: map[string]vt{},
			req:      Request{Service: "checkout", Environment: "production"},
			want:     slogate.Halt, reason: "error budget not measured",
		},
		"a failed source waits when the policy says so": {
			srcErr: fmt.Errorf("connection refused: %w", slo.ErrUnavailable),
			policy: func() *slo.GatePolicy { p := canaryPolicy(); p.OnSourceError = slo.SourceErrorWait; return p }(),
			req:    Request{Service: "checkout", Environment: "production"},
			want:   slogate.Wait, reason: "source unavailable",
		},
		"asking too early waits": {
			versions: map[string]vt{"v1": {10, 0.0002}, "v2": {1, 0.0002}},
			req:      Request{Service: "checkout", Environment: "production", DeployID: "dep_2"},
			deploys:  fakeDeploys{"dep_2": {ID: "dep_2", Service: "checkout", Environment: "production", Version: "v2", StartedAt: now.Add(-3 * time.Minute)}},
			want:     slogate.Wait, reason: "3m0s of 10m0s elapsed",
		},
		// v2 at 0.1 req/s for 20 min = 120 events < 500.
		"too few events waits": {
			versions: map[string]vt{"v1": {10, 0.0002}, "v2": {0.1, 0}},
			policy:   canaryPolicy(),
			req:      Request{Service: "checkout", Environment: "production", DeployID: "dep_1"},
			deploys:  fakeDeploys{"dep_1": deploy}, want: slogate.Wait, reason: "120 of 500 events",
		},
		"a version with no recorded deploy is not promoted": {
			versions: map[string]vt{"v1": {10, 0.0002}, "v3": {1, 0}},
			req:      Request{Service: "checkout", Environment: "production", Version: "v3"},
			deploys:  fakeDeploys{}, want: slogate.Halt, reason: "no deploy of version v3 is recorded",
		},
		// canary 1.2 % vs baseline 0.02 %, 12,000 events each: clearly worse by > 0.5 %.
		"a canary significantly worse than its baseline is halted": {
			versions: map[string]vt{"v1": {10, 0.0002}, "v2": {10, 0.012}},
			policy: func() *slo.GatePolicy {
				// The fake's traffic is constant over 30 days, so v2's errors
				// would spend the budget too: that check is off here.
				p := canaryPolicy()
				p.Verification.MaxBurnRate = 100
				p.Budget.Disabled = true
				return p
			}(),
			req:     Request{Service: "checkout", Environment: "production", DeployID: "dep_1"},
			deploys: fakeDeploys{"dep_1": deploy}, want: slogate.Halt, reason: "worse by more than 0.5% at 95% confidence",
		},
		"a canary no worse than its baseline is promoted": {
			versions: map[string]vt{"v1": {10, 0.0002}, "v2": {10, 0.0002}},
			policy:   canaryPolicy(),
			req:      Request{Service: "checkout", Environment: "production", DeployID: "dep_1"},
			deploys:  fakeDeploys{"dep_1": deploy}, want: slogate.Promote, reason: "all 3 checks pass",
		},
		// 0.6 % vs 0.02 % with 1,200 events: the difference 0.58 % is over the
		// tolerance but its interval reaches below it.
		"a small sample that cannot tell waits": {
			versions: map[string]vt{"v1": {10, 0.0002}, "v2": {1, 0.006}},
			policy: func() *slo.GatePolicy {
				p := canaryPolicy()
				p.Verification.MaxBurnRate = 100
				return p
			}(),
			req:     Request{Service: "checkout", Environment: "production", DeployID: "dep_1"},
			deploys: fakeDeploys{"dep_1": deploy}, want: slogate.Wait, reason: "cannot tell yet",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src := &traffic{versions: tc.versions, err: tc.srcErr}
			var deploys Deploys
			if tc.deploys != nil {
				deploys = tc.deploys
			}
			e := engine(t, src, set(tc.policy), deploys, fakeOverrides{tc.override})
			a, err := e.Evaluate(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if a.Decision != tc.want || !strings.Contains(a.Reason, tc.reason) {
				t.Errorf("got %s %q, want %s %q", a.Decision, a.Reason, tc.want, tc.reason)
				for _, c := range a.Checks {
					t.Logf("  %s %s %s", c.Kind, c.Verdict, c.Reason)
				}
			}
			if !strings.HasPrefix(a.EvaluationID, "ev_") || a.EvaluatedAt != now {
				t.Errorf("answer = %+v", a)
			}
			if a.Decision == slogate.Promote {
				for _, c := range a.Checks {
					if c.NoData {
						t.Errorf("promoted with a no-data check: %+v", c)
					}
				}
			}
		})
	}
}

func TestUnknownServiceAndDeploy(t *testing.T) {
	e := engine(t, &traffic{}, set(nil), fakeDeploys{}, nil)
	if _, err := e.Evaluate(context.Background(), Request{Service: "nope", Environment: "production"}); !errors.Is(err, ErrUnknownService) {
		t.Errorf("unknown service: %v", err)
	}
	if _, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", DeployID: "dep_x"}); !errors.Is(err, ErrUnknownDeploy) {
		t.Errorf("unknown deploy: %v", err)
	}
	e = engine(t, &traffic{}, set(nil), fakeDeploys{"dep_1": {ID: "dep_1", Service: "cart", Environment: "production"}}, nil)
	if _, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", DeployID: "dep_1"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("deploy of another service: %v", err)
	}
}

func TestIdenticalConcurrentAsksAreEvaluatedOnce(t *testing.T) {
	// The source holds the evaluation until every asker has started: the
	// ones that arrive while it runs join it, any later one finds its
	// answer in the cache. No sleep decides the outcome.
	src := &heldSource{traffic: traffic{versions: map[string]vt{"v1": {10, 0.0002}}}, entered: make(chan struct{}), release: make(chan struct{})}
	m, err := NewMeasurer(src, MeasurerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := set(nil)
	e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, CacheTTL: time.Hour, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var evals atomic.Int64
	e.OnEvaluate(func() { evals.Add(1) })
	var wg, started sync.WaitGroup
	ids := make([]string, 100)
	started.Add(100)
	for i := range 100 {
		wg.Go(func() {
			started.Done()
			a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production"})
			if err != nil {
				t.Error(err)
			}
			ids[i] = a.EvaluationID
		})
	}
	started.Wait()
	<-src.entered
	close(src.release)
	wg.Wait()
	if n := evals.Load(); n != 1 {
		t.Errorf("100 identical asks ran %d evaluations, want 1", n)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("answers differ: %s vs %s", id, ids[0])
		}
	}
}

// An ask that misses the cache while an identical evaluation runs, and
// reaches the flight only after that evaluation ended (its answer cached,
// its flight gone), takes the cached answer: a second evaluation is not
// started. Seen under load as 2 evaluations for 100 identical asks.
func TestAnAskThatMissedTheCacheJustBeforeItWasFilledTakesTheAnswer(t *testing.T) {
	src := &heldSource{traffic: traffic{versions: map[string]vt{"v1": {10, 0.0002}}}, entered: make(chan struct{}), release: make(chan struct{})}
	m, err := NewMeasurer(src, MeasurerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := set(nil)
	e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, CacheTTL: time.Hour, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var evals atomic.Int64
	e.OnEvaluate(func() { evals.Add(1) })
	missed, proceed := make(chan struct{}), make(chan struct{})
	var joins atomic.Int64
	e.beforeJoin = func() {
		if joins.Add(1) == 2 { // the second ask, after its cache miss
			close(missed)
			<-proceed
		}
	}
	req := Request{Service: "checkout", Environment: "production"}
	first := make(chan Answer, 1)
	go func() {
		a, err := e.Evaluate(context.Background(), req)
		if err != nil {
			t.Error(err)
		}
		first <- a
	}()
	<-src.entered // the first ask's evaluation is in the source
	second := make(chan Answer, 1)
	go func() {
		a, err := e.Evaluate(context.Background(), req)
		if err != nil {
			t.Error(err)
		}
		second <- a
	}()
	<-missed // the second ask missed the cache
	close(src.release)
	a1 := <-first // the first evaluation ended: cached, its flight gone
	close(proceed)
	a2 := <-second
	if n := evals.Load(); n != 1 {
		t.Errorf("%d evaluations, want 1", n)
	}
	if a2.EvaluationID != a1.EvaluationID || !a2.Cached {
		t.Errorf("the second ask got %s (cached %v), want the first's %s from the cache", a2.EvaluationID, a2.Cached, a1.EvaluationID)
	}
}

func TestAnswersAreCachedForTheTTL(t *testing.T) {
	src := &traffic{versions: map[string]vt{"v1": {10, 0.0002}}}
	clock := now
	m, err := NewMeasurer(src, MeasurerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := set(nil)
	e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, CacheTTL: 10 * time.Second, Clock: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Service: "checkout", Environment: "production"}
	ask := func() Answer {
		t.Helper()
		a, err := e.Evaluate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	first := ask()
	second := ask()
	if !second.Cached || second.EvaluationID != first.EvaluationID || first.Cached {
		t.Errorf("second ask within the TTL: cached=%v id %s vs %s", second.Cached, second.EvaluationID, first.EvaluationID)
	}
	clock = clock.Add(11 * time.Second)
	third := ask()
	if third.Cached || third.EvaluationID == first.EvaluationID {
		t.Errorf("ask after the TTL was served from cache")
	}
	e.Invalidate("checkout", "production")
	fourth := ask()
	if fourth.Cached {
		t.Errorf("ask after Invalidate was served from cache")
	}
}

func TestDiffInterval(t *testing.T) {
	tests := map[string]struct {
		badC, nC, badB, nB float64
		wantLoAbove        float64
		wantHiBelow        float64
		wantWidthAbove     float64
		wantHoldsZero      bool
	}{
		"equal large samples centre on zero":  {badC: 10, nC: 10000, badB: 10, nB: 10000, wantLoAbove: -0.001, wantHiBelow: 0.001},
		"a canary ten times worse is above 0": {badC: 100, nC: 10000, badB: 10, nB: 10000, wantLoAbove: 0.006, wantHiBelow: 0.012},
		"zero errors on both stays near zero": {badC: 0, nC: 5000, badB: 0, nB: 5000, wantLoAbove: -0.001, wantHiBelow: 0.001},
		"tiny samples give a wide interval":   {badC: 1, nC: 10, badB: 0, nB: 10, wantLoAbove: -0.3, wantHiBelow: 0.5, wantWidthAbove: 0.3, wantHoldsZero: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lo, hi := diffInterval(tc.badC, tc.nC, tc.badB, tc.nB, 0.95)
			if lo < tc.wantLoAbove || hi > tc.wantHiBelow || lo > hi {
				t.Errorf("interval [%v, %v], want within [%v, %v]", lo, hi, tc.wantLoAbove, tc.wantHiBelow)
			}
			if hi-lo <= tc.wantWidthAbove {
				t.Errorf("interval [%v, %v] is %v wide, want more than %v", lo, hi, hi-lo, tc.wantWidthAbove)
			}
			if tc.wantHoldsZero && !(lo < 0 && 0 < hi) {
				t.Errorf("interval [%v, %v] does not hold 0: 1 error in 10 cannot be told from 0 in 10", lo, hi)
			}
		})
	}
	if z := normalQuantile(0.95); z < 1.6448 || z > 1.6449 {
		t.Errorf("Φ⁻¹(0.95) = %v, want 1.64485", z)
	}
}
