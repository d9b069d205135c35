package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// Tokens of the end-to-end server (values at least 16 characters).
const (
	ciToken     = "ci-token-0123456789abcdef"
	readToken   = "reader-token-0123456789ab"
	opsToken    = "ops-token-0123456789abcdef"
	flagerToken = "flagger-token-0123456789a"
)

// e2eSLOs are the services of the end-to-end test, each measured from the
// same counter family:
//
//	checkout — v1 10 req/s at 0.02 % errors for 30 days; canary v2 from
//	           20 minutes ago at 2 req/s with 2 % errors (burn 20x).
//	cart     — the same, but v2 as clean as v1 (0.02 %).
//	legacy   — 5 % errors for 30 days: the 99.9 % budget is spent 50 times.
//	ghost    — an SLO over a metric that does not exist.
const e2eSLOs = `
apiVersion: openslo/v1
kind: SLI
metadata: {name: %[1]s-ok}
spec:
  ratioMetric:
    counter: true
    good: {metricSource: {type: Prometheus, spec: {query: 'sum(%[2]s{service="%[1]s", code!~"5.."})'}}}
    total: {metricSource: {type: Prometheus, spec: {query: 'sum(%[2]s{service="%[1]s"})'}}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: %[1]s-availability}
spec:
  service: %[1]s
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicatorRef: %[1]s-ok
  objectives: [{target: 0.999}]
---
apiVersion: slogate.dev/v1
kind: GatePolicy
metadata: {name: %[1]s-production}
spec:
  service: %[1]s
  environments: [production]
  verification: {minDuration: 10m, minEvents: 500, maxBurnRate: 2, versionLabel: version}
  canary: {tolerance: 0.005, confidence: 0.95}
  onNoData: halt
`

// e2e is a running slogate over a real Prometheus.
type e2e struct {
	url      string
	deployed time.Time
	cancel   context.CancelFunc
	done     chan error
	logs     *bytes.Buffer
}

func startE2E(t *testing.T) *e2e {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-30*24*time.Hour - time.Hour)
	deployed := now.Add(-20 * time.Minute)
	var om testenv.OpenMetrics
	traffic := func(service, version string, phases ...testenv.Phase) {
		om.Counter("http_requests", testenv.Requests("http_requests",
			map[string]string{"service": service, "version": version}, start, time.Minute, phases...)...)
	}
	for _, svc := range []string{"checkout", "cart"} {
		traffic(svc, "v1", testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})
	}
	traffic("checkout", "v2", testenv.Phase{Until: deployed, Rate: 0}, testenv.Phase{Until: now, Rate: 2, ErrorRatio: 0.02})
	// 20 req/s: 24,000 events in 20 min are enough for the anytime-valid
	// verification to show a 0.2x burn is below 2x at 99.9 %; 2,400 are not.
	traffic("cart", "v2", testenv.Phase{Until: deployed, Rate: 0}, testenv.Phase{Until: now, Rate: 20, ErrorRatio: 0.0002})
	traffic("legacy", "v1", testenv.Phase{Until: now, Rate: 5, ErrorRatio: 0.05})
	prom := testenv.StartPrometheus(t, om.String())

	dir := t.TempDir()
	var slos strings.Builder
	for _, svc := range []string{"checkout", "cart", "legacy"} {
		fmt.Fprintf(&slos, e2eSLOs+"---\n", svc, "http_requests_total")
	}
	fmt.Fprintf(&slos, e2eSLOs, "ghost", "ghost_requests_total")
	writeFile(t, filepath.Join(dir, "slos", "services.yaml"), slos.String())
	port := testenv.FreePort(t)
	writeFile(t, filepath.Join(dir, "slogate.yaml"), fmt.Sprintf(`
listen: 127.0.0.1:%d
slos: [%s]
store: sqlite:%s
sources:
  prometheus: {url: "%s", timeout: 10s}
evaluation: {schedule: "@every 1h"}
gate: {cacheTTL: 0s}
auth:
  tokens:
    - {name: ci, value: "${CI_TOKEN}", scopes: [gate:read, deploys:write]}
    - {name: reader, value: %s, scopes: [gate:read]}
    - {name: ops, value: %s, scopes: [overrides:write]}
    - {name: flagger, value: %s, scopes: [flagger]}
log: {level: debug}
`, port, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), prom.URL, readToken, opsToken, flagerToken))

	ctx, cancel := context.WithCancel(context.Background())
	e := &e2e{url: fmt.Sprintf("http://127.0.0.1:%d", port), deployed: deployed, cancel: cancel, done: make(chan error, 1), logs: &bytes.Buffer{}}
	logs := &lockedWriter{w: e.logs}
	go func() {
		e.done <- run(ctx, []string{"serve", "--config", filepath.Join(dir, "slogate.yaml")},
			func(k string) string { return map[string]string{"CI_TOKEN": ciToken}[k] }, io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-e.done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop within 40s of its context ending")
		}
		if t.Failed() {
			t.Logf("slogate logs:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), ciToken) || strings.Contains(logs.String(), opsToken) {
			t.Error("a token appears in the logs")
		}
	})
	testenv.WaitHTTP(t, nil, e.url+"/healthz", 30*time.Second)
	return e
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// call sends a request and returns the status and body.
func (e *e2e) call(t *testing.T, method, path, token string, body any, header ...string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type answer struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	DeployID string `json:"deployId"`
	Checks   []struct {
		Kind    string `json:"kind"`
		Verdict string `json:"verdict"`
		Reason  string `json:"reason"`
		Query   string `json:"query"`
		NoData  bool   `json:"noData"`
	} `json:"checks"`
}

func (e *e2e) gate(t *testing.T, q url.Values) answer {
	t.Helper()
	status, body := e.call(t, http.MethodGet, "/v1/gate?"+q.Encode(), readToken, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /v1/gate?%s: %d %s", q.Encode(), status, body)
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *e2e) deploy(t *testing.T, service, version, previous string, startedAt time.Time) string {
	t.Helper()
	status, body := e.call(t, http.MethodPost, "/v1/deploys", ciToken, map[string]any{
		"service": service, "environment": "production", "version": version,
		"previousVersion": previous, "startedAt": startedAt.Format(time.RFC3339), "strategy": "canary",
	}, "Idempotency-Key", service+"/"+version)
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("POST /v1/deploys: %d %s", status, body)
	}
	var d struct{ ID string }
	_ = json.Unmarshal(body, &d)
	return d.ID
}

func TestGateEndToEndAgainstARealPrometheus(t *testing.T) {
	e := startE2E(t)
	checkoutV2 := e.deploy(t, "checkout", "v2", "v1", e.deployed)
	cartV2 := e.deploy(t, "cart", "v2", "v1", e.deployed)
	q := func(kv ...string) url.Values {
		v := url.Values{"environment": {"production"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	tests := map[string]struct {
		q      url.Values
		want   string
		reason string
	}{
		"a canary burning its budget is halted": {
			q: q("service", "checkout", "deployId", checkoutV2), want: "halt", reason: "version v2 burns budget at",
		},
		"a clean canary is promoted": {
			q: q("service", "cart", "deployId", cartV2), want: "promote", reason: "all 3 checks pass",
		},
		"a version alone finds its deploy": {
			q: q("service", "cart", "version", "v2"), want: "promote",
		},
		"a service whose 30-day budget is spent is halted by policy": {
			q: q("service", "legacy"), want: "halt", reason: "error budget exhausted",
		},
		"a service with no data is not promoted": {
			q: q("service", "ghost"), want: "halt", reason: "error budget not measured",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := e.gate(t, tc.q)
			if a.Decision != tc.want || !strings.Contains(a.Reason, tc.reason) {
				t.Errorf("got %s %q, want %s %q", a.Decision, a.Reason, tc.want, tc.reason)
			}
		})
	}

	t.Run("asking too early waits", func(t *testing.T) {
		id := e.deploy(t, "cart", "v3", "v2", time.Now().Add(-2*time.Minute))
		a := e.gate(t, q("service", "cart", "deployId", id))
		if a.Decision != "wait" {
			t.Errorf("got %s %q, want wait", a.Decision, a.Reason)
		}
	})

	t.Run("an override promotes a service whose budget is spent, and is audited", func(t *testing.T) {
		status, body := e.call(t, http.MethodPost, "/v1/overrides", opsToken, map[string]any{
			"service": "legacy", "environment": "production", "reason": "hotfix for INC-42",
			"expiresAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		})
		if status != http.StatusCreated {
			t.Fatalf("POST /v1/overrides: %d %s", status, body)
		}
		a := e.gate(t, q("service", "legacy"))
		if a.Decision != "promote" {
			t.Fatalf("after the override: %s %q", a.Decision, a.Reason)
		}
		var o struct{ ID string }
		_ = json.Unmarshal(body, &o)
		if status, body := e.call(t, http.MethodDelete, "/v1/overrides/"+o.ID, opsToken, nil); status != http.StatusOK {
			t.Fatalf("DELETE override: %d %s", status, body)
		}
		if a := e.gate(t, q("service", "legacy")); a.Decision != "halt" {
			t.Errorf("after revoking the override: %s %q", a.Decision, a.Reason)
		}
	})

	t.Run("an injection attempt through version never reaches PromQL as text", func(t *testing.T) {
		injection := `v2"}) or vector(1) #`
		id := e.deploy(t, "cart", injection, "v1", e.deployed)
		a := e.gate(t, q("service", "cart", "deployId", id))
		if a.Decision == "promote" {
			t.Fatalf("an injected version was promoted: %q", a.Reason)
		}
		found := false
		for _, c := range a.Checks {
			if c.Kind == "verification" {
				found = true
				if !c.NoData || !strings.Contains(c.Query, `version="v2\"}) or vector(1) #"`) {
					t.Errorf("verification %+v: the version must stay a quoted label value matching nothing", c)
				}
			}
		}
		if !found {
			t.Errorf("no verification check: %+v", a)
		}
	})

	t.Run("Argo Rollouts' web provider request and jsonPath", func(t *testing.T) {
		// What an AnalysisTemplate with provider.web sends: a GET with its
		// configured headers, then jsonPath "{$.decision}" on the body.
		for _, tc := range []struct {
			service, version string
			success, failure bool
		}{{"cart", "v2", true, false}, {"checkout", "v2", false, true}} {
			req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/gate?"+q("service", tc.service, "version", tc.version).Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+readToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d %v", tc.service, resp.StatusCode, err)
			}
			result := doc["decision"] // jsonPath {$.decision}
			if (result == "promote") != tc.success || (result == "halt") != tc.failure {
				t.Errorf("%s %s: result %v: successCondition %v, failureCondition %v", tc.service, tc.version, result, tc.success, tc.failure)
			}
		}
	})

	t.Run("Flagger webhooks, rollback inverted", func(t *testing.T) {
		payload := func(service string) map[string]any {
			return map[string]any{"name": service, "namespace": "production", "phase": "Progressing",
				"checksum": "85d557f47b", "metadata": map[string]string{"version": "v2"}}
		}
		tests := []struct {
			hook, service string
			want          int
		}{
			{"confirm-promotion", "cart", http.StatusOK},
			{"confirm-promotion", "checkout", http.StatusForbidden},
			{"rollback", "checkout", http.StatusOK},
			{"rollback", "cart", http.StatusForbidden},
			{"pre-rollout", "legacy", http.StatusForbidden},
		}
		for _, tc := range tests {
			status, body := e.call(t, http.MethodPost, "/v1/flagger/"+tc.hook, flagerToken, payload(tc.service))
			if status != tc.want {
				t.Errorf("%s for %s: %d %s, want %d", tc.hook, tc.service, status, body, tc.want)
			}
		}
	})

	t.Run("scopes are enforced", func(t *testing.T) {
		d := map[string]any{"service": "cart", "environment": "production", "version": "v9"}
		for _, tc := range []struct {
			token string
			want  int
		}{{"", http.StatusUnauthorized}, {"wrong-token-0123456789", http.StatusUnauthorized}, {readToken, http.StatusForbidden}, {ciToken, http.StatusCreated}} {
			if status, body := e.call(t, http.MethodPost, "/v1/deploys", tc.token, d); status != tc.want {
				t.Errorf("token %q: %d %s, want %d", tc.token, status, body, tc.want)
			}
		}
	})

	t.Run("slogate deploy and slogate check exit 0 on promote, 1 on halt, 3 on wait", func(t *testing.T) {
		env := map[string]string{"SLOGATE_SERVER": e.url, "SLOGATE_TOKEN": ciToken}
		r := runCLI(t, env, "deploy", "--service", "cart", "--environment", "production", "--version", "v4",
			"--previous-version", "v2", "--commit", "abc123")
		if r.code != exitOK || !strings.HasPrefix(strings.TrimSpace(r.stdout), "dep_") {
			t.Fatalf("deploy: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
		for _, tc := range []struct {
			args []string
			want int
		}{
			{[]string{"--service", "cart", "--deploy-id", cartV2}, exitOK},
			{[]string{"--service", "cart", "--version", "v4"}, exitWaiting},
			{[]string{"--service", "checkout", "--deploy-id", checkoutV2}, exitFailed},
			{[]string{"--service", "cart", "--version", "v3"}, exitWaiting},
			{[]string{"--service", "cart", "--version", "v3", "--wait", "2s", "--interval", "500ms"}, exitWaiting},
			{[]string{"--service", "nope"}, exitUsage},
		} {
			r := runCLI(t, env, append([]string{"check", "--environment", "production"}, tc.args...)...)
			if r.code != tc.want {
				t.Errorf("check %v: exit %d, want %d\n%s%s", tc.args, r.code, tc.want, r.stdout, r.stderr)
			}
		}
	})
}
