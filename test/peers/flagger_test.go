package peers

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	flaggerv1 "github.com/fluxcd/flagger/pkg/apis/flagger/v1beta1"
	"github.com/fluxcd/flagger/pkg/controller"
)

const (
	canaryFile = "../../deploy/flagger/canary.yaml"
	// The placeholder the Canary's urls carry instead of the token.
	tokenPlaceholder = "${SLOGATE_FLAGGER_TOKEN}"
)

// exampleCanary is deploy/flagger/canary.yaml decoded strictly into
// Flagger's Canary type.
func exampleCanary(t *testing.T) *flaggerv1.Canary {
	t.Helper()
	docs := documents(t, canaryFile)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", canaryFile, len(docs))
	}
	var c flaggerv1.Canary
	readStrict(t, canaryFile, docs[0], &c)
	if c.GetAnalysis() == nil || len(c.GetAnalysis().Webhooks) == 0 {
		t.Fatalf("%s: no analysis webhooks", canaryFile)
	}
	return &c
}

// canaryFor is the example Canary as a user deploys it: its urls with the
// token put in (and the test's host for slogate's), named name in
// namespace production, its metadata naming service and version (CI
// changes metadata.version with the image tag), at the revision rev.
func canaryFor(t *testing.T, s *slogate, name, service, version string) *flaggerv1.Canary {
	t.Helper()
	c := exampleCanary(t).DeepCopy()
	c.Name, c.Namespace = name, "production"
	c.Status.LastAppliedSpec = "rev-" + name
	for i := range c.Spec.Analysis.Webhooks {
		w := &c.Spec.Analysis.Webhooks[i]
		// What the user does: put the token in (envsubst, Flux postBuild).
		if !strings.Contains(w.URL, tokenPlaceholder) {
			t.Fatalf("%s: webhook %s: url %q carries no %s", canaryFile, w.Name, w.URL, tokenPlaceholder)
		}
		u, err := url.Parse(strings.ReplaceAll(w.URL, tokenPlaceholder, flaggerToken))
		if err != nil {
			t.Fatalf("%s: webhook %s: url %q: %v", canaryFile, w.Name, w.URL, err)
		}
		pw, _ := u.User.Password()
		if u.Host != exampleHost || u.User.Username() != "flagger" || pw != flaggerToken {
			t.Fatalf("%s: webhook %s: url %q: want http://flagger:%s@%s/v1/flagger/%s", canaryFile, w.Name, w.URL, tokenPlaceholder, exampleHost, w.Type)
		}
		if u.Path != "/v1/flagger/"+string(w.Type) {
			t.Fatalf("%s: webhook %s of type %s calls %s", canaryFile, w.Name, w.Type, u.Path)
		}
		u.Host = s.host
		w.URL = u.String()
		if w.Metadata == nil {
			t.Fatalf("%s: webhook %s: no metadata", canaryFile, w.Name)
		}
		md := map[string]string{}
		for k, v := range *w.Metadata {
			md[k] = v
		}
		md["service"], md["version"] = service, version
		w.Metadata = &md
	}
	return c
}

// flaggerRun is a canary's state as Flagger's scheduler keeps it in the
// Canary's status.
type flaggerRun struct {
	t            *testing.T
	canary       *flaggerv1.Canary
	phase        flaggerv1.CanaryPhase
	weight       int
	iterations   int
	failedChecks int
	newRevision  bool // the target changed: shouldAdvance
	log          []string
	calls        []time.Duration
	// explain asks the gate why (rollback answers carry no body to Flagger).
	explain     func(service, version string) string
	rollbackWhy string
}

func newFlaggerRun(t *testing.T, c *flaggerv1.Canary) *flaggerRun {
	return &flaggerRun{t: t, canary: c, phase: flaggerv1.CanaryPhaseInitialized, newRevision: true}
}

func (r *flaggerRun) logf(format string, args ...any) {
	r.log = append(r.log, fmt.Sprintf(format, args...))
}

// hooks calls every webhook of type typ with Flagger's own CallWebhook and
// reports whether all answered success, the scheduler's reading of them
// (pkg/controller/scheduler_hooks.go: the first refusal stops the loop;
// for rollback the first success does).
func (r *flaggerRun) hooks(typ flaggerv1.HookType, phase flaggerv1.CanaryPhase) bool {
	r.canary.Status.Phase = r.phase
	r.canary.Status.CanaryWeight = r.weight
	r.canary.Status.FailedChecks = r.failedChecks
	for _, w := range r.canary.GetAnalysis().Webhooks {
		if w.Type != typ {
			continue
		}
		begin := time.Now()
		err := controller.CallWebhook(*r.canary, phase, w)
		took := time.Since(begin)
		r.calls = append(r.calls, took)
		if err != nil {
			msg := strings.TrimSpace(err.Error())
			if strings.Contains(msg, flaggerToken) {
				r.t.Errorf("Flagger's error for %s shows the token: %s", w.Name, msg)
			}
			r.logf("%s refused in %.1fs: %s", typ, took.Seconds(), firstLine(msg))
			if typ != flaggerv1.RollbackHook {
				return false
			}
			continue
		}
		r.logf("%s passed in %.1fs", typ, took.Seconds())
		if typ == flaggerv1.RollbackHook {
			if r.explain != nil {
				r.rollbackWhy = r.explain((*w.Metadata)["service"], (*w.Metadata)["version"])
				r.logf("  the gate says: %s", r.rollbackWhy)
			}
			return true
		}
	}
	return typ != flaggerv1.RollbackHook
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// iterate is one run of Flagger's advanceCanary for a Canary with a
// Deployment target, the canary strategy (stepWeight/maxWeight) and no
// metrics of its own, reduced to what decides which hooks run and what
// their answers do (pkg/controller/scheduler.go of v1.44.0, line numbers
// of that file). It returns false once the canary reached a final phase.
func (r *flaggerRun) iterate() bool {
	a := r.canary.GetAnalysis()
	switch r.phase {
	case flaggerv1.CanaryPhaseSucceeded, flaggerv1.CanaryPhaseFailed:
		return false
	}
	// checkCanaryStatus (886): every phase but Progressing, WaitingPromotion,
	// Promoting and Finalising ends the iteration here; a new revision
	// (shouldAdvance, 852: also phase Waiting) asks confirm-rollout, and
	// scales the canary up and sets Progressing when it passes.
	switch r.phase {
	case flaggerv1.CanaryPhaseProgressing, flaggerv1.CanaryPhaseWaitingPromotion,
		flaggerv1.CanaryPhasePromoting, flaggerv1.CanaryPhaseFinalising:
	default:
		if r.newRevision || r.phase == flaggerv1.CanaryPhaseWaiting {
			if !r.hooks(flaggerv1.ConfirmRolloutHook, r.phase) {
				r.phase = flaggerv1.CanaryPhaseWaiting
				return true
			}
			r.newRevision = false
			r.phase, r.weight, r.failedChecks, r.iterations = flaggerv1.CanaryPhaseProgressing, 0, 0, 0
			r.logf("scaled up: Progressing")
		}
		return true
	}
	// Rollback hooks (372), in Progressing, Waiting or WaitingPromotion.
	if r.phase == flaggerv1.CanaryPhaseProgressing || r.phase == flaggerv1.CanaryPhaseWaitingPromotion {
		if r.hooks(flaggerv1.RollbackHook, r.phase) {
			r.rollback("rollback webhook")
			return false
		}
	}
	// Promotion (381, 393, runPromotionTrafficShift): the traffic goes to
	// the primary, then the canary is scaled to zero and post-rollout runs.
	if r.phase == flaggerv1.CanaryPhasePromoting {
		r.phase = flaggerv1.CanaryPhaseFinalising
		return true
	}
	if r.phase == flaggerv1.CanaryPhaseFinalising {
		r.phase = flaggerv1.CanaryPhaseSucceeded
		r.hooks(flaggerv1.PostRolloutHook, flaggerv1.CanaryPhaseSucceeded)
		r.logf("promoted: Succeeded")
		return false
	}
	// Failed checks threshold (431).
	if r.failedChecks >= r.canary.GetAnalysisThreshold() {
		r.rollback(fmt.Sprintf("failed checks threshold %d reached", r.failedChecks))
		return false
	}
	// Pre-rollout at weight 0 (454), else the analysis: rollout hooks (and
	// metrics, of which the example has none) (461, runAnalysis 752).
	if r.weight == 0 && r.iterations == 0 {
		if !r.hooks(flaggerv1.PreRolloutHook, flaggerv1.CanaryPhaseProgressing) {
			r.failedChecks++
			return true
		}
	} else if !r.hooks(flaggerv1.RolloutHook, flaggerv1.CanaryPhaseProgressing) {
		r.failedChecks++
		return true
	}
	if len(a.Metrics) > 0 {
		r.t.Fatalf("%s: the scheduler's metric checks are not emulated here", canaryFile)
	}
	// The canary strategy (493): confirm-traffic-increase while not at the
	// promotion stage, then runCanary (565): a step up, or at maxWeight
	// confirm-promotion and the promotion.
	if a.StepWeight <= 0 || a.MaxWeight <= 0 || len(a.StepWeights) > 0 || a.Iterations > 0 {
		r.t.Fatalf("%s: only the stepWeight/maxWeight canary strategy is emulated", canaryFile)
	}
	if r.phase != flaggerv1.CanaryPhaseWaitingPromotion {
		if !r.hooks(flaggerv1.ConfirmTrafficIncreaseHook, flaggerv1.CanaryPhaseProgressing) {
			return true
		}
	}
	if r.weight < a.MaxWeight {
		r.weight = min(r.weight+a.StepWeight, 100)
		r.logf("weight %d", r.weight)
		return true
	}
	if !r.hooks(flaggerv1.ConfirmPromotionHook, flaggerv1.CanaryPhaseProgressing) {
		r.phase = flaggerv1.CanaryPhaseWaitingPromotion
		return true
	}
	r.phase = flaggerv1.CanaryPhasePromoting
	r.logf("promoting")
	return true
}

// rollback is the scheduler's rollback (948): traffic back to the primary,
// canary scaled to zero, phase Failed, then post-rollout with phase Failed.
func (r *flaggerRun) rollback(why string) {
	r.logf("rolled back: %s", why)
	r.weight = 0
	r.hooks(flaggerv1.PostRolloutHook, flaggerv1.CanaryPhaseFailed)
	r.phase = flaggerv1.CanaryPhaseFailed
}

// run iterates up to n times, interval apart (Flagger's analysis.interval,
// scaled down), or until a final phase.
func (r *flaggerRun) run(n int, interval time.Duration) int {
	tick := time.NewTicker(max(interval, time.Millisecond))
	defer tick.Stop()
	for i := 1; i <= n; i++ {
		if !r.iterate() {
			return i
		}
		if interval > 0 && i < n {
			<-tick.C
		}
	}
	return n
}

// summary is what Flagger did, for the table.
func (r *flaggerRun) summary(iterations int) string {
	s := fmt.Sprintf("%s after %d iterations (weight %d, failed checks %d)", r.phase, iterations, r.weight, r.failedChecks)
	if r.phase == flaggerv1.CanaryPhaseFailed {
		s = fmt.Sprintf("rolled back at iteration %d (%s)", iterations, lastMatching(r.log, "rolled back: "))
		if r.rollbackWhy != "" {
			s += "; the gate: " + firstLine(r.rollbackWhy)
		}
	}
	if r.phase == flaggerv1.CanaryPhaseSucceeded {
		s = fmt.Sprintf("promoted at iteration %d", iterations)
	}
	return s
}

func lastMatching(log []string, prefix string) string {
	for i := len(log) - 1; i >= 0; i-- {
		if rest, ok := strings.CutPrefix(log[i], prefix); ok {
			return rest
		}
	}
	return ""
}

// TestFlaggerSendsTheURLCredentialsAsBasicAuth checks the auth story on
// Flagger's own client: the user and password of the webhook url arrive as
// `Authorization: Basic`, and a refusal's error hides the password.
func TestFlaggerSendsTheURLCredentialsAsBasicAuth(t *testing.T) {
	var gotUser, gotPass string
	var gotPayload flaggerv1.CanaryWebhookPayload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, _ = r.BasicAuth()
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &gotPayload)
		http.Error(w, "hold: wait: not yet", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	s := &slogate{host: strings.TrimPrefix(srv.URL, "http://")}
	c := canaryFor(t, s, "checkout", "checkout", "1.4.2")
	err := controller.CallWebhook(*c, flaggerv1.CanaryPhaseProgressing, c.Spec.Analysis.Webhooks[0])
	if gotUser != "flagger" || gotPass != flaggerToken {
		t.Errorf("Basic credentials %q:%q, want flagger and the token", gotUser, gotPass)
	}
	if gotPayload.Metadata["service"] != "checkout" || gotPayload.Metadata["version"] != "1.4.2" || gotPayload.Metadata["environment"] != "production" {
		t.Errorf("payload metadata %v", gotPayload.Metadata)
	}
	if err == nil || strings.Contains(err.Error(), flaggerToken) {
		t.Errorf("error %v: want a refusal that does not show the token", err)
	}
}

// To the lead — a server bug these cases find (issue #9), as of main
// d4181ad: api.flaggerRecords leaves hookRollback out, but the rollback
// hook is the first version hook Flagger calls once the canary is scaled
// up. In the first Progressing iteration the scheduler runs the rollback
// hooks (scheduler.go:372) before pre-rollout (scheduler.go:454), so
// /v1/flagger/rollback evaluates a version with no recorded deploy; the
// verification check answers noData ("no deploy of version v2 is recorded
// for ...") and, with onNoData: halt, the rollback hook says 200: Flagger
// rolls back every canary at its first iteration, healthy or not ("a
// promoted canary" fails: "rolled back at iteration 2"). The fix is one
// word: hookRollback in flaggerRecords (checked here with that change
// built from a copy of main: every case passes).

// liveInterval is Flagger's analysis.interval (1m in the example) scaled
// down for the cases that last until the gate can judge the canary: a
// minute after the first version hook recorded the deploy.
const liveInterval = 3 * time.Second

func testFlagger(t *testing.T, w *world, table *conclusions) {
	injection := `v2" } or vector(1) # & x`
	type want struct {
		phase        flaggerv1.CanaryPhase
		failedChecks int    // at most
		outcome      string // the deploy's recorded status, "" when none is recorded
		rollbackWhy  string // in the gate's reason when the rollback hook said yes
	}
	tests := []struct {
		name, canary, service, version string
		server                         *slogate
		start                          flaggerv1.CanaryPhase // "" : a new revision, from Initialized
		weight                         int
		iterations                     int
		interval                       time.Duration
		want                           want
	}{
		{name: "a halted canary", canary: "halted", service: "live-bad", version: "v2", server: w.direct,
			iterations: 35, interval: liveInterval,
			want: want{phase: flaggerv1.CanaryPhaseFailed, outcome: "rolledBack", rollbackWhy: "burns budget"}},
		{name: "a promoted canary", canary: "promoted", service: "live-good", version: "v2", server: w.direct,
			iterations: 35, interval: liveInterval,
			want: want{phase: flaggerv1.CanaryPhaseSucceeded, outcome: "succeeded"}},
		{name: "a spent budget", canary: "spent", service: "legacy", version: "v2", server: w.direct,
			iterations: 4, want: want{phase: flaggerv1.CanaryPhaseWaiting}},
		{name: "no data", canary: "nodata", service: "ghost", version: "v2", server: w.direct,
			iterations: 4, want: want{phase: flaggerv1.CanaryPhaseWaiting}},
		{name: "a fresh version with no traffic", canary: "fresh", service: "fresh", version: "v2", server: w.direct,
			iterations: 10, want: want{phase: flaggerv1.CanaryPhaseWaitingPromotion, outcome: "running"}},
		{name: "Prometheus down", canary: "down", service: "cart", version: "v2", server: w.down,
			start: flaggerv1.CanaryPhaseProgressing, weight: 20, iterations: 10,
			want: want{phase: flaggerv1.CanaryPhaseWaitingPromotion}},
		{name: "Prometheus down before the rollout", canary: "down-early", service: "cart", version: "v2", server: w.down,
			iterations: 4, want: want{phase: flaggerv1.CanaryPhaseWaiting}},
		{name: "Prometheus slower than slogate's deadline", canary: "slow", service: "cart", version: "v2", server: w.slow,
			start: flaggerv1.CanaryPhaseProgressing, weight: 50, iterations: 2,
			want: want{phase: flaggerv1.CanaryPhaseWaitingPromotion}},
		{name: "an injected version with quotes and spaces", canary: "injected", service: "live-good", version: injection, server: w.direct,
			iterations: 35, interval: liveInterval,
			want: want{phase: flaggerv1.CanaryPhaseFailed, outcome: "rolledBack", rollbackWhy: "no events of version"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFlaggerRun(t, canaryFor(t, tc.server, tc.canary, tc.service, tc.version))
			r.explain = func(service, version string) string { return tc.server.why(t, service, version) }
			if tc.start != "" {
				// The rollout had started before (Prometheus went down or
				// slow mid-rollout).
				r.phase, r.weight, r.newRevision = tc.start, tc.weight, false
			}
			n := r.run(tc.iterations, tc.interval)
			got := r.summary(n)
			var slowest time.Duration
			for _, d := range r.calls {
				slowest = max(slowest, d)
			}
			row := got
			if tc.server == w.slow {
				row += fmt.Sprintf("; each hook answered in ≤ %.1fs", slowest.Seconds())
			}
			table.set(tc.name, "Flagger", row)
			t.Logf("%s\n  %s", got, strings.Join(r.log, "\n  "))
			if r.phase != tc.want.phase {
				t.Errorf("Flagger ended in %s, want %s:\n  %s", r.phase, tc.want.phase, strings.Join(r.log, "\n  "))
			}
			if r.phase == flaggerv1.CanaryPhaseFailed && !strings.Contains(r.rollbackWhy, tc.want.rollbackWhy) {
				t.Errorf("rolled back because the gate said %q, want a reason with %q", r.rollbackWhy, tc.want.rollbackWhy)
			}
			if r.failedChecks > tc.want.failedChecks {
				t.Errorf("%d failed checks, want at most %d", r.failedChecks, tc.want.failedChecks)
			}
			// Flagger waits a webhook's timeout (10s in the Canary) and takes
			// a timeout as a refusal; slogate's deadline answers first.
			// To the lead: once, under heavy disk load, a 503 here took
			// 10.1s (the checks gave up at 7.5s, then gate.Engine.fresh's
			// Recorder.Record, which has its own 5s after the checks' 7.2s,
			// took the rest): gate.deadline does not bound recording, so an
			// answer can take up to 12.2s. Record within what is left of the
			// deadline, or after answering.
			if timeout := 10 * time.Second; slowest >= timeout {
				t.Errorf("a hook took %s: Flagger gives up at %s, slogate must answer first", slowest, timeout)
			}
			if tc.server == w.direct {
				status, n := tc.server.deployStatus(t, tc.service, tc.version)
				if tc.want.outcome == "" && n != 0 {
					t.Errorf("%d deploys recorded for %s %s before the canary was scaled up", n, tc.service, tc.version)
				}
				if tc.want.outcome != "" && (n != 1 || status != tc.want.outcome) {
					t.Errorf("%d deploys recorded for %s %s, the last %q; want exactly one, %s", n, tc.service, tc.version, status, tc.want.outcome)
				}
			}
		})
	}
}
