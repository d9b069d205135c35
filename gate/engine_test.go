package gate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// TestSourceFaultsAreNotNoData: a failed source is answered by the
// policy's onSourceError (default: an error the API turns into a 503),
// never by onNoData, and never promote.
func TestSourceFaultsAreNotNoData(t *testing.T) {
	down := fmt.Errorf("connection refused: %w", slo.ErrUnavailable)
	tests := map[string]struct {
		onSourceError slo.OnSourceError
		onNoData      slo.OnNoData
		err           error
		wantFault     bool
		want          slogate.Decision
	}{
		"by default a failed source is a fault, not a halt":  {err: down, wantFault: true},
		"a failed source is a fault even when no data waits": {err: down, onNoData: slo.NoDataWait, wantFault: true},
		"onSourceError halt halts":                           {err: down, onSourceError: slo.SourceErrorHalt, want: slogate.Halt},
		"onSourceError wait waits":                           {err: down, onSourceError: slo.SourceErrorWait, want: slogate.Wait},
		"a timeout is a source fault":                        {err: fmt.Errorf("query: %w", slo.ErrTimeout), wantFault: true},
		"a query the source refuses is a source fault":       {err: fmt.Errorf("parse error: %w", slo.ErrBadQuery), wantFault: true},
		"no data follows onNoData, not onSourceError":        {err: fmt.Errorf("empty: %w", slo.ErrNoData), onSourceError: slo.SourceErrorWait, want: slogate.Halt},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := slo.DefaultPolicy("checkout")
			if tc.onSourceError != "" {
				p.OnSourceError = tc.onSourceError
			}
			if tc.onNoData != "" {
				p.OnNoData = tc.onNoData
			}
			e := engine(t, &traffic{err: tc.err}, set(&p), nil, nil)
			a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production"})
			var sf *SourceFaultError
			if tc.wantFault {
				if !errors.As(err, &sf) || !errors.Is(err, ErrSourceFault) {
					t.Fatalf("got %v %v, want a source fault", a.Decision, err)
				}
				if sf.Answer.Decision != slogate.Fault || len(sf.Answer.Checks) == 0 || !sf.Answer.Checks[0].SourceError || sf.Answer.Checks[0].Verdict != Errored {
					t.Fatalf("the fault's answer does not say what failed: %+v", sf.Answer)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Decision != tc.want || a.Verdict.Decision != tc.want || a.Verdict.Reason != a.Reason {
				t.Fatalf("got %s (verdict %+v), want %s", a.Decision, a.Verdict, tc.want)
			}
		})
	}
}

// TestEvidenceOfHarmOutweighsAFailedSource: a check that fails on its
// figures halts even when another source is down; a fault only stands in
// for the checks that could not run.
func TestEvidenceOfHarmOutweighsAFailedSource(t *testing.T) {
	s := set(nil)
	o := s.Objectives[0]
	o.Name, o.SLI.Name = "checkout-latency", "latency"
	s.Objectives = append(s.Objectives, o)
	src := &perSLI{by: map[string]Source{
		"ok":      &traffic{versions: map[string]vt{"v1": {10, 0.02}}},
		"latency": &traffic{err: fmt.Errorf("down: %w", slo.ErrUnavailable)},
	}}
	e := engine(t, src, s, nil, nil)
	a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Decision != slogate.Halt || !strings.Contains(a.Reason, "exhausted") {
		t.Fatalf("got %s %q, want a halt on the spent budget", a.Decision, a.Reason)
	}
}

type perSLI struct{ by map[string]Source }

func (p *perSLI) Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error) {
	return p.by[sli.Name].Counts(ctx, sli, r, scope)
}

// TestTheDeadlineAnswersInTime: a source slower than the deadline gives a
// fault before the deadline, not an answer the client no longer waits for.
func TestTheDeadlineAnswersInTime(t *testing.T) {
	src := &traffic{versions: map[string]vt{"v1": {10, 0.0002}}, delay: time.Hour}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	s := set(nil)
	e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, Deadline: 200 * time.Millisecond, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production"})
	took := time.Since(start)
	var sf *SourceFaultError
	if !errors.As(err, &sf) || !strings.Contains(sf.Answer.Reason, "deadline") {
		t.Fatalf("got %v, want a source fault naming the deadline", err)
	}
	if took > 2*time.Second {
		t.Fatalf("answered after %s, the deadline is 200ms", took)
	}
}

// blockingOverrides serves an override until revoked; Active blocks on
// its first call until released, so that a revocation can happen while an
// evaluation is running.
type blockingOverrides struct {
	mu       sync.Mutex
	revoked  bool
	entered  chan struct{}
	release  chan struct{}
	blockOne sync.Once
}

func (b *blockingOverrides) Active(context.Context, string, string, time.Time) (Override, bool, error) {
	b.mu.Lock()
	revoked := b.revoked
	b.mu.Unlock()
	blocked := false
	b.blockOne.Do(func() { blocked = true })
	if blocked {
		close(b.entered)
		<-b.release
	}
	if revoked {
		return Override{}, false, nil
	}
	return Override{ID: "ovr_1", Reason: "INC-1", ExpiresAt: now.Add(time.Hour)}, true, nil
}

// TestARevokedOverrideIsNotServedFromACacheFilledBeforeIt: an evaluation
// that read an override before it was revoked neither caches its promote
// nor serves the asks made after the revocation.
func TestARevokedOverrideIsNotServedFromACacheFilledBeforeIt(t *testing.T) {
	// 2 % errors over 30 days: the budget is spent; only the override
	// lets a release through.
	src := &traffic{versions: map[string]vt{"v1": {10, 0.02}}}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	s := set(nil)
	ov := &blockingOverrides{entered: make(chan struct{}), release: make(chan struct{})}
	e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, Overrides: ov, CacheTTL: time.Minute, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Service: "checkout", Environment: "production"}
	first := make(chan Answer)
	go func() {
		a, err := e.Evaluate(context.Background(), req)
		if err != nil {
			t.Error(err)
		}
		first <- a
	}()
	<-ov.entered // the first evaluation has begun and holds the override
	ov.mu.Lock()
	ov.revoked = true
	ov.mu.Unlock()
	e.Invalidate("checkout", "production")
	// An ask after the revocation does not join the running flight.
	second, err := e.Evaluate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	close(ov.release)
	a := <-first
	if a.Decision != slogate.Promote {
		t.Fatalf("the evaluation begun under the override answered %s", a.Decision)
	}
	if second.Decision != slogate.Halt || second.EvaluationID == a.EvaluationID {
		t.Fatalf("an ask after the revocation got %s (evaluation %s, first %s), want a fresh halt", second.Decision, second.EvaluationID, a.EvaluationID)
	}
	third, err := e.Evaluate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if third.Decision != slogate.Halt {
		t.Fatalf("the stale promote was cached: third ask got %s %q", third.Decision, third.Reason)
	}
}

// TestPointInTimeAnswers: an ask with at is measured up to at, sees only
// the deploys begun by then, and never touches the live cache.
func TestPointInTimeAnswers(t *testing.T) {
	deploys := fakeDeploys{
		"dep_1": {ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: now.Add(-20 * time.Minute)},
		"dep_2": {ID: "dep_2", Service: "checkout", Environment: "production", Version: "v3", PreviousVersion: "v2", StartedAt: now.Add(-5 * time.Minute)},
	}
	src := &rangeRecorder{traffic: traffic{versions: map[string]vt{"v1": {10, 0.0002}, "v2": {10, 0.0002}, "v3": {1, 0.0002}}}}
	m, _ := NewMeasurer(src, MeasurerConfig{})
	s := set(nil)
	e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, Deploys: deploys, CacheTTL: time.Minute, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	at := now.Add(-8 * time.Minute)
	tests := map[string]struct {
		req     Request
		want    slogate.Decision
		reason  string
		wantErr error
	}{
		"a version asked at an instant 12 minutes into its deploy is judged then": {
			req: Request{Service: "checkout", Environment: "production", Version: "v2", At: now.Add(-8 * time.Minute)}, want: slogate.Promote},
		"a version deployed after the instant has no deploy then": {
			req: Request{Service: "checkout", Environment: "production", Version: "v3", At: at}, want: slogate.Halt, reason: "no deploy of version v3"},
		"a deploy named by id that began after the instant is refused": {
			req: Request{Service: "checkout", Environment: "production", DeployID: "dep_2", At: at}, wantErr: ErrInvalid},
		"an instant in the future is refused": {
			req: Request{Service: "checkout", Environment: "production", At: now.Add(time.Hour)}, wantErr: ErrInvalid},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src.reset()
			a, err := e.Evaluate(context.Background(), tc.req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Decision != tc.want || !strings.Contains(a.Reason, tc.reason) {
				t.Fatalf("got %s %q, want %s %q", a.Decision, a.Reason, tc.want, tc.reason)
			}
			if a.At == nil || !a.At.Equal(tc.req.At) {
				t.Fatalf("the answer is not marked with its instant: %v", a.At)
			}
			for _, end := range src.ends() {
				if end.After(tc.req.At) {
					t.Fatalf("measured up to %s, after at %s", end, tc.req.At)
				}
			}
		})
	}
	// The live cache was never filled by the asks with at.
	live, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if live.Cached || live.At != nil {
		t.Fatalf("a live ask was served a point-in-time answer: %+v", live)
	}
	again, _ := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", Version: "v2", At: at})
	if again.Cached {
		t.Fatal("a point-in-time answer came from the cache")
	}
}

// rangeRecorder records the end of every range it measures.
type rangeRecorder struct {
	traffic
	mu   sync.Mutex
	seen []time.Time
}

func (r *rangeRecorder) Counts(ctx context.Context, sli slo.SLI, rg slo.Range, scope slo.Scope) (slo.Counts, error) {
	r.mu.Lock()
	r.seen = append(r.seen, rg.End)
	r.mu.Unlock()
	return r.traffic.Counts(ctx, sli, rg, scope)
}

func (r *rangeRecorder) reset() { r.mu.Lock(); r.seen = nil; r.mu.Unlock() }
func (r *rangeRecorder) ends() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.seen...)
}

// TestDryRuns: a dry-run policy or check answers with the enforced checks
// only, and keeps the real verdict beside the answer.
func TestDryRuns(t *testing.T) {
	deploy := slogate.Deploy{ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: now.Add(-20 * time.Minute)}
	burning := map[string]vt{"v1": {100, 0.0002}, "v2": {10, 0.0063}} // v2 burns 6.3x, at least 3.8x at 95 %
	tests := map[string]struct {
		policy     func(*slo.GatePolicy)
		versions   map[string]vt
		srcErr     error
		want       slogate.Decision
		wantDryRun slogate.Decision // "" when the answer carries none
	}{
		"a dry-run policy promotes a halted version and records the halt": {
			policy: func(p *slo.GatePolicy) { p.Mode = slo.ModeDryRun }, versions: burning, want: slogate.Promote, wantDryRun: slogate.Halt},
		"a dry-run verification check promotes and records the halt": {
			policy: func(p *slo.GatePolicy) { p.Verification.Mode = slo.ModeDryRun }, versions: burning, want: slogate.Promote, wantDryRun: slogate.Halt},
		"a dry-run budget check does not lift a verification halt": {
			policy: func(p *slo.GatePolicy) { p.Budget.Mode = slo.ModeDryRun }, versions: burning, want: slogate.Halt},
		"a dry-run policy with a healthy version carries no dry-run verdict": {
			policy: func(p *slo.GatePolicy) { p.Mode = slo.ModeDryRun }, versions: map[string]vt{"v1": {10, 0.0002}, "v2": {10, 0.0002}}, want: slogate.Promote},
		"a dry-run policy with its source down promotes and records the fault": {
			policy: func(p *slo.GatePolicy) { p.Mode = slo.ModeDryRun }, srcErr: fmt.Errorf("down: %w", slo.ErrUnavailable), want: slogate.Promote, wantDryRun: slogate.Fault},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := slo.DefaultPolicy("checkout")
			tc.policy(&p)
			e := engine(t, &traffic{versions: tc.versions, err: tc.srcErr}, set(&p), fakeDeploys{"dep_1": deploy}, nil)
			a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", DeployID: "dep_1"})
			if err != nil {
				t.Fatal(err)
			}
			if a.Decision != tc.want {
				t.Fatalf("decision %s %q, want %s", a.Decision, a.Reason, tc.want)
			}
			switch {
			case tc.wantDryRun == "" && a.DryRun != nil:
				t.Fatalf("dry run %+v, want none", a.DryRun)
			case tc.wantDryRun != "" && (a.DryRun == nil || a.DryRun.Decision != tc.wantDryRun || a.DryRun.Reason == ""):
				t.Fatalf("dry run %+v, want %s with its reason", a.DryRun, tc.wantDryRun)
			}
		})
	}
}

// TestTheBaselineIsNeverAFailedVersion: without previousVersion the
// baseline is the newest earlier deploy that did not fail or roll back.
func TestTheBaselineIsNeverAFailedVersion(t *testing.T) {
	deploys := fakeDeploys{
		"dep_1": {ID: "dep_1", Service: "checkout", Environment: "production", Version: "v1", StartedAt: now.Add(-3 * time.Hour), Status: "succeeded"},
		"dep_2": {ID: "dep_2", Service: "checkout", Environment: "production", Version: "v2", StartedAt: now.Add(-2 * time.Hour), Status: "rolledBack"},
		"dep_3": {ID: "dep_3", Service: "checkout", Environment: "production", Version: "v3", StartedAt: now.Add(-20 * time.Minute)},
	}
	e := engine(t, &traffic{versions: map[string]vt{"v1": {10, 0.0002}, "v3": {1, 0.0002}}}, set(canaryPolicy()), deploys, nil)
	a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", DeployID: "dep_3"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Baseline != "v1" {
		t.Fatalf("baseline %q, want v1 (v2 was rolled back)", a.Baseline)
	}
	// A redeploy of v3 compares with v1 too, not with the earlier v3.
	deploys["dep_4"] = slogate.Deploy{ID: "dep_4", Service: "checkout", Environment: "production", Version: "v3", StartedAt: now.Add(-10 * time.Minute)}
	a, err = e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", DeployID: "dep_4"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Baseline != "v1" {
		t.Fatalf("baseline of a redeploy %q, want v1", a.Baseline)
	}
}

// TestFewEventsInTheBudgetPeriodAreNotAnExhaustedBudget: minutes into a
// calendar month one error reads as a spent budget; under minEvents the
// budget is not judged.
func TestFewEventsInTheBudgetPeriodAreNotAnExhaustedBudget(t *testing.T) {
	s := set(nil)
	s.Objectives[0].Window = slo.Window{Calendar: slo.CalendarMonth}
	// 0.02 req/s for the 11 days of November before now: ~19,000 events at
	// 2 % errors is a spent budget; the same rate over the first minutes
	// of a month is not judged.
	tests := map[string]struct {
		at     time.Time
		want   slogate.Decision
		reason string
	}{
		"eleven days into the month 2 % errors is a spent budget":  {at: now, want: slogate.Halt, reason: "exhausted"},
		"ten minutes into the month it is too few events to judge": {at: time.Date(2026, 11, 1, 0, 10, 0, 0, time.UTC), want: slogate.Promote, reason: "not judged"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := engine(t, &traffic{versions: map[string]vt{"v1": {0.02, 0.02}}}, s, nil, nil)
			a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", At: tc.at})
			if err != nil {
				t.Fatal(err)
			}
			if a.Decision != tc.want || len(a.Checks) != 1 || !strings.Contains(a.Checks[0].Reason, tc.reason) {
				t.Fatalf("got %s %+v, want %s %q", a.Decision, a.Checks, tc.want, tc.reason)
			}
		})
	}
}

// a request limited to checks the
// policy turns off (the budget check of a policy without one) is not held.
func TestAMomentWhoseChecksAreOffGoesOn(t *testing.T) {
	p := slo.DefaultPolicy("checkout")
	p.Budget.Disabled = true
	e := engine(t, &traffic{versions: map[string]vt{"v1": {10, 0.02}}}, set(&p), nil, nil)
	a, err := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", Checks: []string{KindBudget}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Decision != slogate.Promote || len(a.Checks) != 0 {
		t.Fatalf("got %s %q with %d checks", a.Decision, a.Reason, len(a.Checks))
	}
	// Without a restriction, no check at all is never a promote.
	p.Verification.Disabled = true
	e = engine(t, &traffic{versions: map[string]vt{"v1": {10, 0.02}}}, set(&p), nil, nil)
	if a, _ := e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production", Version: "v2"}); a.Decision != slogate.Halt {
		t.Fatalf("a policy with every check off answered %s", a.Decision)
	}
}

type slowRecorder struct{}

func (slowRecorder) Record(ctx context.Context, _ Answer) error {
	<-ctx.Done()
	return context.Cause(ctx)
}

// TestRecordingIsWithinTheDeadline: a store slower than the deadline
// fails the answer by the deadline, not after it (the client would have
// given up).
func TestRecordingIsWithinTheDeadline(t *testing.T) {
	m, _ := NewMeasurer(&traffic{versions: map[string]vt{"v1": {10, 0.0002}}}, MeasurerConfig{})
	s := set(nil)
	e, err := New(Config{Measurer: m, SLOs: func() *slo.Set { return s }, Recorder: slowRecorder{}, Deadline: 300 * time.Millisecond, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = e.Evaluate(context.Background(), Request{Service: "checkout", Environment: "production"})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "recording the answer passed the deadline") {
		t.Fatalf("got %v, want the recording's deadline", err)
	}
	if took > 2*time.Second {
		t.Fatalf("answered after %s; the deadline is 300ms", took)
	}
}
