// Package peers runs the real client code of Argo Rollouts and Flagger
// against a live `slogate serve` backed by a real Prometheus, on the
// examples in deploy/ exactly as shipped (token and host aside).
//
// It is a module of its own so that the main module stays free of the
// clients' dependencies (Kubernetes, cloud SDKs): `cd test/peers && go test
// ./...`, run by `make test`.
package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// Tokens of the test servers (at least 16 characters, as slogate wants).
const (
	ciToken      = "ci-token-0123456789abcdef"
	argoToken    = "argo-token-0123456789abcd"
	flaggerToken = "flagger-token-0123456789a"
)

// The SLO file of one service: an availability SLO over the counter
// family http_requests_total and the service's GatePolicy. %[1]s is the
// service, %[2]s the metric, %[3]s the verification block.
const sloTemplate = `
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
  verification: %[3]s
  onNoData: halt
---
`

// The verification blocks: the example's (deploy/kubernetes), and a short
// one for the services whose canary traffic goes on while the test runs:
// Flagger records the deploy at its first version hook, so the
// verification window starts during the test, and the gate measures no
// window shorter than a minute.
const (
	exampleVerification = "{minDuration: 10m, minEvents: 500, maxBurnRate: 2, versionLabel: version}"
	liveVerification    = "{minDuration: 1m, minEvents: 100, maxBurnRate: 2, versionLabel: version}"
)

// world is the Prometheus and the slogate servers every case asks.
type world struct {
	now      time.Time // the data's "now": Prometheus was loaded up to it
	deployed time.Time // when the recorded canaries began, 20 minutes before now
	direct   *slogate  // slogate on the real Prometheus
	down     *slogate  // slogate whose Prometheus is unreachable
	slow     *slogate  // slogate whose Prometheus answers after 20s
}

// The services of the data (one counter family, labels service, version,
// code):
//
//	checkout   v1 10 req/s at 0.02 % errors for 30 days; canary v2 from 20
//	           minutes ago at 2 req/s with 2 % errors (burns 20x): halted.
//	cart       the same, v2 at 10 req/s as clean as v1: promoted.
//	legacy     5 % errors for 30 days: the 99.9 % budget is spent 50 times.
//	ghost      an SLO over a metric that does not exist: no data.
//	fresh      v1 clean; v2 has no traffic at all yet.
//	live-bad   v1 clean; v2 at 200 req/s with 2 % errors from now on, into
//	           the future (samples every second up to 40 minutes ahead, so
//	           Prometheus shows them as time passes), verification after 1m.
//	live-good  the same with v2 as clean as v1.
func startWorld(t *testing.T) *world {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-30*24*time.Hour - time.Hour)
	future := now.Add(40 * time.Minute)
	w := &world{now: now, deployed: now.Add(-20 * time.Minute)}

	var om testenv.OpenMetrics
	traffic := func(service, version string, start time.Time, step time.Duration, phases ...testenv.Phase) {
		om.Counter("http_requests", testenv.Requests("http_requests",
			map[string]string{"service": service, "version": version}, start, step, phases...)...)
	}
	for _, svc := range []string{"checkout", "cart", "fresh"} {
		traffic(svc, "v1", start, time.Minute, testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})
	}
	traffic("checkout", "v2", start, time.Minute, testenv.Phase{Until: w.deployed, Rate: 0}, testenv.Phase{Until: now, Rate: 2, ErrorRatio: 0.02})
	// The gate's tests are anytime-valid: showing that a clean canary burns
	// less than 2x takes thousands of events (12,000 here), a canary at 20x
	// far fewer.
	traffic("cart", "v2", start, time.Minute, testenv.Phase{Until: w.deployed, Rate: 0}, testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})
	traffic("legacy", "v1", start, time.Minute, testenv.Phase{Until: now, Rate: 5, ErrorRatio: 0.05})
	for svc, errs := range map[string]float64{"live-bad": 0.02, "live-good": 0.0002} {
		// 12,000 canary events a minute, enough for the gate to judge a
		// clean canary after its one-minute minimum. v2's 2 % beside as much
		// v1 traffic burns the service's budget at about 10x over 5 minutes
		// and far less over the long windows: no page tier (14.4x over 1h
		// and 5m, 6x over 6h and 30m) fires to make the budget policy refuse
		// the rollout, while the version burns at 20x.
		traffic(svc, "v1", start, time.Minute, testenv.Phase{Until: future, Rate: 200, ErrorRatio: 0.0002})
		traffic(svc, "v2", now, time.Second, testenv.Phase{Until: future, Rate: 200, ErrorRatio: errs})
	}
	prom := testenv.StartPrometheus(t, om.String())

	var slos strings.Builder
	for _, svc := range []string{"checkout", "cart", "legacy", "fresh"} {
		fmt.Fprintf(&slos, sloTemplate, svc, "http_requests_total", exampleVerification)
	}
	fmt.Fprintf(&slos, sloTemplate, "ghost", "ghost_requests_total", exampleVerification)
	for _, svc := range []string{"live-bad", "live-good"} {
		fmt.Fprintf(&slos, sloTemplate, svc, "http_requests_total", liveVerification)
	}
	slosDir := t.TempDir()
	writeFile(t, filepath.Join(slosDir, "services.yaml"), slos.String())

	bin := slogateBinary(t)
	// A Prometheus that answers after 20s, longer than slogate's 8s
	// deadline and than the clients' 10s; its own query timeout is longer
	// still, so that the deadline is what answers.
	slowProm := delayingProxy(t, prom.URL, 20*time.Second)
	var wg sync.WaitGroup
	for _, s := range []struct {
		dst     **slogate
		promURL string
		timeout string
	}{
		{&w.direct, prom.URL, "5s"},
		{&w.down, testenv.DownURL(t), "5s"},
		{&w.slow, slowProm, "30s"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*s.dst = startSlogate(t, bin, slosDir, s.promURL, s.timeout)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return w
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildDir  string
)

// slogateBinary builds ./cmd/slogate of the main module (../..) once per
// test binary; SLOGATE_PEERS_BIN names a binary to run instead.
func slogateBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("SLOGATE_PEERS_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "slogate-peers-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "slogate")
		cmd := exec.Command(goTool(), "build", "-o", buildBin, "./cmd/slogate")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/slogate: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// slogate is a running `slogate serve`.
type slogate struct {
	url  string
	host string // 127.0.0.1:port
	proc *testenv.Process
}

func startSlogate(t *testing.T, bin, slosDir, promURL, promTimeout string) *slogate {
	t.Helper()
	dir := t.TempDir()
	port := testenv.FreePort(t)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	// gate.deadline is left out: the default (8s) is what the examples'
	// timeouts are derived from.
	cfg := fmt.Sprintf(`
listen: %s
slos: [%s]
store: sqlite:%s
sources:
  prometheus: {url: "%s", timeout: %s}
evaluation: {schedule: "@every 1h"}
gate: {cacheTTL: 0s}
auth:
  tokens:
    - {name: ci, value: "${PEERS_CI_TOKEN}", scopes: [gate:read, deploys:write]}
    - {name: argo-rollouts, value: "${PEERS_ARGO_TOKEN}", scopes: [gate:read]}
    - {name: flagger, value: "${PEERS_FLAGGER_TOKEN}", scopes: [flagger]}
log: {level: debug}
`, host, slosDir, filepath.Join(dir, "slogate.db"), promURL, promTimeout)
	writeFile(t, filepath.Join(dir, "slogate.yaml"), cfg)
	cmd := exec.Command(bin, "serve", "--config", filepath.Join(dir, "slogate.yaml"))
	cmd.Env = append(os.Environ(),
		"PEERS_CI_TOKEN="+ciToken, "PEERS_ARGO_TOKEN="+argoToken, "PEERS_FLAGGER_TOKEN="+flaggerToken)
	p := testenv.Start(t, "slogate", cmd)
	s := &slogate{url: "http://" + host, host: host, proc: p}
	testenv.WaitHTTP(t, p, s.url+"/healthz", 30*time.Second)
	t.Cleanup(func() {
		if out := p.Output(); strings.Contains(out, flaggerToken) || strings.Contains(out, argoToken) || strings.Contains(out, ciToken) {
			t.Error("a token appears in slogate's logs")
		}
	})
	return s
}

// delayingProxy forwards to target after delay, or drops the request when
// its client (slogate) gives up first: a Prometheus that is slow.
func delayingProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
			rp.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL
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

// call sends a JSON request with a bearer token.
func (s *slogate) call(t *testing.T, method, path, token string, body any, header ...string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// deploy records a deploy the way CI does (`slogate deploy`) before Argo
// Rollouts starts the canary.
func (s *slogate) deploy(t *testing.T, service, version string, startedAt time.Time) string {
	t.Helper()
	status, body := s.call(t, http.MethodPost, "/v1/deploys", ciToken, map[string]any{
		"service": service, "environment": "production", "version": version, "previousVersion": "v1",
		"startedAt": startedAt.Format(time.RFC3339), "strategy": "canary",
	}, "Idempotency-Key", service+"/"+version)
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("POST /v1/deploys %s %s: %d %s", service, version, status, body)
	}
	var d struct{ ID string }
	_ = json.Unmarshal(body, &d)
	return d.ID
}

// deployStatus is the status of the one deploy of service and version
// (as Flagger's hooks recorded it), or "" when there is none.
func (s *slogate) deployStatus(t *testing.T, service, version string) (string, int) {
	t.Helper()
	status, body := s.call(t, http.MethodGet, "/v1/deploys?service="+url.QueryEscape(service)+"&environment=production", ciToken, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /v1/deploys: %d %s", status, body)
	}
	var page struct {
		Items []struct {
			Version string `json:"version"`
			Status  string `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("GET /v1/deploys: %v: %s", err, body)
	}
	n, st := 0, ""
	for _, d := range page.Items {
		if d.Version == version {
			n++
			st = d.Status
		}
	}
	return st, n
}

// conclusions is the table case × client → what the client concluded,
// printed at the end for the notes.
type conclusions struct {
	mu   sync.Mutex
	rows map[string]map[string]string
	keys []string
}

func (c *conclusions) set(caseName, client, conclusion string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows == nil {
		c.rows = map[string]map[string]string{}
	}
	if _, ok := c.rows[caseName]; !ok {
		c.rows[caseName] = map[string]string{}
		c.keys = append(c.keys, caseName)
	}
	c.rows[caseName][client] = conclusion
}

func (c *conclusions) markdown(clients ...string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	b.WriteString("| case | " + strings.Join(clients, " | ") + " |\n|---|" + strings.Repeat("---|", len(clients)) + "\n")
	keys := slices.Clone(c.keys)
	slices.SortStableFunc(keys, func(a, b string) int { return caseRank(a) - caseRank(b) })
	for _, k := range keys {
		b.WriteString("| " + k)
		for _, cl := range clients {
			v := c.rows[k][cl]
			if v == "" {
				v = "—"
			}
			b.WriteString(" | " + strings.ReplaceAll(v, "|", `\|`))
		}
		b.WriteString(" |\n")
	}
	return b.String()
}

// why asks the gate (POST /v1/gate) about a version and returns its
// decision and reason, for the logs.
func (s *slogate) why(t *testing.T, service, version string) string {
	t.Helper()
	status, body := s.call(t, http.MethodPost, "/v1/gate", ciToken, map[string]any{
		"service": service, "environment": "production", "version": version})
	var a struct{ Decision, Reason string }
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Sprintf("%d %s", status, body)
	}
	return fmt.Sprintf("%d %s: %s", status, a.Decision, a.Reason)
}

// caseOrder is the order of the table's rows.
var caseOrder = []string{
	"a halted canary", "a promoted canary", "a spent budget", "no data",
	"a fresh version with no traffic", "Prometheus down", "Prometheus down before the rollout",
	"Prometheus slower than slogate's deadline", "an injected version with quotes and spaces",
}

func caseRank(name string) int {
	if i := slices.Index(caseOrder, name); i >= 0 {
		return i
	}
	return len(caseOrder)
}
