package gate

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// fixedCounts is a fake source answering the same counts for every range,
// by version; a version it does not know has series with no events yet
// (zero counts, no error), which is what Prometheus answers for a
// rollout with no traffic.
type fixedCounts map[string]slo.Counts

func (f fixedCounts) Counts(_ context.Context, _ slo.SLI, _ slo.Range, scope slo.Scope) (slo.Counts, error) {
	return f[scope["version"]], nil
}

func checkOf(a Answer, kind string) *Check {
	for i := range a.Checks {
		if a.Checks[i].Kind == kind {
			return &a.Checks[i]
		}
	}
	return nil
}

func rawSet(policy *slo.GatePolicy) *slo.Set {
	s := set(policy)
	s.Objectives[0].SLI = slo.SLI{Name: "ratio", Raw: &slo.Query{Source: slo.SourcePrometheus, PromQL: `avg(error_ratio)`}}
	return s
}

func TestCanaryAndVerificationVerdicts(t *testing.T) {
	dep := func(ago time.Duration) fakeDeploys {
		return fakeDeploys{"dep_1": {ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: now.Add(-ago)}}
	}
	canaryOnly := func() *slo.GatePolicy {
		p := canaryPolicy()
		p.Budget.Disabled = true
		p.Verification.Disabled = true
		return p
	}
	verificationOnly := func() *slo.GatePolicy {
		p := slo.DefaultPolicy("checkout") // minEvents 100, minDuration 10m, 2x
		p.Budget.Disabled = true
		return &p
	}
	tests := map[string]struct {
		src         Source
		set         *slo.Set
		deploys     fakeDeploys
		req         Request
		fixed       bool // the old fixed-sample rules
		kind        string
		wantVerdict Verdict
		wantNoData  bool
		reason      string
	}{
		// 3 % vs 1 % over 20,000 requests each: 2 points worse, tolerance 0.5.
		"a canary clearly worse than the tolerance fails": {
			src: fixedCounts{"v2": {Good: 19400, Total: 20000}, "v1": {Good: 19800, Total: 20000}},
			set: set(canaryOnly()), deploys: dep(30 * time.Minute), kind: KindCanary,
			wantVerdict: Fail, reason: "worse by more than 0.5% at 95% confidence",
		},
		"a canary equal to its baseline passes": {
			src: fixedCounts{"v2": {Good: 99000, Total: 100000}, "v1": {Good: 99000, Total: 100000}},
			set: set(canaryOnly()), deploys: dep(30 * time.Minute), kind: KindCanary,
			wantVerdict: Pass, reason: "not worse by more than 0.5%",
		},
		"a canary near the tolerance on few events waits": {
			src: fixedCounts{"v2": {Good: 1970, Total: 2000}, "v1": {Good: 1980, Total: 2000}},
			set: set(canaryOnly()), deploys: dep(30 * time.Minute), kind: KindCanary,
			wantVerdict: Pending, reason: "cannot tell yet",
		},
		// Finding 4: a raw SLI used to answer pass, "not compared".
		"a canary on a raw SLI is no data, not pass": {
			src: fixedCounts{"v2": {Raw: true, RawErrorRatio: 0.5}, "v1": {Raw: true}},
			set: rawSet(canaryOnly()), deploys: dep(30 * time.Minute), kind: KindCanary,
			wantVerdict: Fail, wantNoData: true, reason: "raw SLI has no event counts",
		},
		// Finding 4: with no recorded deploy the canary check was skipped.
		"a canary with no recorded deploy is no data, not absent": {
			src: fixedCounts{"v2": {Good: 99000, Total: 100000}, "v1": {Good: 99000, Total: 100000}},
			set: set(canaryOnly()), deploys: fakeDeploys{},
			req:  Request{Service: "checkout", Environment: "production", Version: "v2", BaselineVersion: "v1"},
			kind: KindCanary, wantVerdict: Fail, wantNoData: true, reason: "no deploy of it is recorded",
		},
		// Finding 5: series that exist with no events, 3 minutes in, halted.
		"a canary with no events yet inside minDuration waits": {
			src: fixedCounts{"v1": {Good: 99000, Total: 100000}},
			set: set(canaryOnly()), deploys: dep(3 * time.Minute), kind: KindCanary,
			wantVerdict: Pending, reason: "no events of version v2 yet",
		},
		"a canary with no events after minDuration is no data": {
			src: fixedCounts{"v1": {Good: 99000, Total: 100000}},
			set: set(canaryOnly()), deploys: dep(30 * time.Minute), kind: KindCanary,
			wantVerdict: Fail, wantNoData: true, reason: "no data",
		},
		"a version with no events yet inside minDuration waits": {
			src: fixedCounts{},
			set: set(verificationOnly()), deploys: dep(3 * time.Minute), kind: KindVerification,
			wantVerdict: Pending, reason: "no events of version v2 yet",
		},
		// The old failure: minEvents 100 at 99.9 %, a version burning 10x
		// whose first 100 events are clean was promoted.
		"a version whose first 100 events are clean does not pass on them": {
			src: fixedCounts{"v2": {Good: 100, Total: 100}},
			set: set(verificationOnly()), deploys: dep(10 * time.Minute), kind: KindVerification,
			wantVerdict: Pending, reason: "cannot tell yet",
		},
		"the old point estimate passed it": {
			src: fixedCounts{"v2": {Good: 100, Total: 100}},
			set: set(verificationOnly()), deploys: dep(10 * time.Minute), kind: KindVerification, fixed: true,
			wantVerdict: Pass, reason: "fixed-sample point estimate",
		},
		// 1 % errors against a 0.2 % limit: halts at once, before minDuration.
		"a version burning 10x over many events fails before minDuration": {
			src: fixedCounts{"v2": {Good: 49500, Total: 50000}},
			set: set(verificationOnly()), deploys: dep(5 * time.Minute), kind: KindVerification,
			wantVerdict: Fail, reason: "burns budget at 10.0x",
		},
		"a version burning 0.5x over many events passes": {
			src: fixedCounts{"v2": {Good: 99950, Total: 100000}},
			set: set(verificationOnly()), deploys: dep(20 * time.Minute), kind: KindVerification,
			wantVerdict: Pass, reason: "at most",
		},
		"a version at a billion clean events passes without NaN": {
			src: fixedCounts{"v2": {Good: 1e9, Total: 1e9}},
			set: set(verificationOnly()), deploys: dep(20 * time.Minute), kind: KindVerification,
			wantVerdict: Pass,
		},
		"a canary at a billion events each decides without NaN": {
			src: fixedCounts{"v2": {Good: 0.99e9, Total: 1e9}, "v1": {Good: 0.99e9, Total: 1e9}},
			set: set(canaryOnly()), deploys: dep(20 * time.Minute), kind: KindCanary,
			wantVerdict: Pass,
		},
		"a raw SLI is verified on its point estimate, and says so": {
			src: fixedCounts{"v2": {Raw: true, RawErrorRatio: 0.0001}},
			set: rawSet(verificationOnly()), deploys: dep(20 * time.Minute), kind: KindVerification,
			wantVerdict: Pass, reason: "point estimate of a raw SLI",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := engine(t, tc.src, tc.set, tc.deploys, nil)
			e.fixedSample = tc.fixed
			req := tc.req
			if req.Service == "" {
				req = Request{Service: "checkout", Environment: "production", DeployID: "dep_1"}
			}
			a, err := e.Evaluate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			c := checkOf(a, tc.kind)
			if c == nil {
				t.Fatalf("no %s check in %+v", tc.kind, a.Checks)
			}
			if c.Verdict != tc.wantVerdict || c.NoData != tc.wantNoData || !strings.Contains(c.Reason, tc.reason) {
				t.Errorf("got %s (noData %v) %q, want %s (noData %v) %q", c.Verdict, c.NoData, c.Reason, tc.wantVerdict, tc.wantNoData, tc.reason)
			}
			if a.Decision == slogate.Promote && (c.NoData || c.Verdict != Pass) {
				t.Errorf("promoted with %+v", c)
			}
			if _, err := json.Marshal(a); err != nil {
				t.Errorf("answer does not encode (a NaN?): %v", err)
			}
			if c.Interval != nil {
				for _, v := range c.Interval {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Errorf("interval %v", *c.Interval)
					}
				}
			}
		})
	}
}

func TestCanaryAndVerificationShowTheirTest(t *testing.T) {
	p := canaryPolicy()
	p.Budget.Disabled = true
	src := fixedCounts{"v2": {Good: 99000, Total: 100000}, "v1": {Good: 99000, Total: 100000}}
	deploys := fakeDeploys{"dep_1": {ID: "dep_1", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: now.Add(-30 * time.Minute)}}
	req := Request{Service: "checkout", Environment: "production", DeployID: "dep_1"}
	for _, fixed := range []bool{false, true} {
		e := engine(t, src, set(p), deploys, nil)
		e.fixedSample = fixed
		a, err := e.Evaluate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		can, ver := checkOf(a, KindCanary), checkOf(a, KindVerification)
		if can == nil || ver == nil {
			t.Fatalf("checks %+v", a.Checks)
		}
		wantCan, wantVer, label := TestNormalMixtureCS, TestBetaBinomialCS, "95% anytime-valid"
		if fixed {
			// The old interval was two-sided 90 % and labelled 95 %.
			wantCan, wantVer, label = testAgrestiCaffo, testFixedPointEstimate, "90% two-sided fixed-sample"
		}
		if can.Test != wantCan || can.Confidence != 0.95 || can.Interval == nil || can.Threshold == nil || *can.Threshold != 0.005 || !strings.Contains(can.Reason, label) {
			t.Errorf("fixed=%v canary check: test %q confidence %v interval %v threshold %v reason %q", fixed, can.Test, can.Confidence, can.Interval, can.Threshold, can.Reason)
		}
		if ver.Test != wantVer {
			t.Errorf("fixed=%v verification test %q, want %q", fixed, ver.Test, wantVer)
		}
		if !fixed && (ver.Interval == nil || ver.Threshold == nil || math.Abs(*ver.Threshold-0.002) > 1e-12 || ver.Confidence != slo.DefaultConfidence) {
			t.Errorf("verification check: interval %v threshold %v confidence %v", ver.Interval, ver.Threshold, ver.Confidence)
		}
	}
}
