package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/slogate/slogate/internal/testenv"
)

const (
	appID          = 123456
	installationID = 42424242
)

// fakeGitHubApp is GitHub's REST API as a GitHub App sees it, in its
// documented wire format: POST /app/installations/{id}/access_tokens
// (Bearer: the App's JWT, checked against the App's public key; 201
// {token, expires_at}) and POST
// /repos/{o}/{r}/actions/runs/{run}/deployment_protection_rule (Bearer:
// an installation token; {environment_name, state?, comment}; 204). A
// second decision of one run is refused 422, as GitHub does once nothing
// is pending.
type fakeGitHubApp struct {
	srv *httptest.Server
	pub *rsa.PublicKey

	mu         sync.Mutex
	tokens     map[string]bool
	exchanges  int
	reviews    map[int64][]appReview // by run id
	violations []string
}

type appReview struct {
	EnvironmentName string `json:"environment_name"`
	State           string `json:"state"`
	Comment         string `json:"comment"`
}

var runPath = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/actions/runs/([0-9]+)/deployment_protection_rule$`)

func startFakeGitHubApp(t *testing.T, pub *rsa.PublicKey) *fakeGitHubApp {
	f := &fakeGitHubApp{pub: pub, tokens: map[string]bool{}, reviews: map[int64][]appReview{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHubApp) violation(w http.ResponseWriter, status int, format string, args ...any) {
	f.mu.Lock()
	f.violations = append(f.violations, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q,"documentation_url":"https://docs.github.com/rest"}`, fmt.Sprintf(format, args...))
}

func (f *fakeGitHubApp) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-GitHub-Api-Version") != "2022-11-28" || r.Header.Get("Accept") != "application/vnd.github+json" {
		f.violation(w, http.StatusBadRequest, "%s %s: missing GitHub's Accept or API version header", r.Method, r.URL.Path)
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		f.violation(w, http.StatusUnauthorized, "%s: no bearer", r.URL.Path)
		return
	}
	if m := regexp.MustCompile(`^/app/installations/([0-9]+)/access_tokens$`).FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPost {
		tok, err := jwt.Parse(bearer, func(tk *jwt.Token) (any, error) { return f.pub, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(strconv.Itoa(appID)), jwt.WithIssuedAt(), jwt.WithExpirationRequired())
		if err != nil {
			f.violation(w, http.StatusUnauthorized, "JWT refused: %v", err)
			return
		}
		iat, _ := tok.Claims.GetIssuedAt()
		exp, _ := tok.Claims.GetExpirationTime()
		if exp.Sub(iat.Time) > 10*time.Minute {
			f.violation(w, http.StatusUnauthorized, "JWT lives %s, more than 10 minutes", exp.Sub(iat.Time))
			return
		}
		if m[1] != strconv.Itoa(installationID) {
			f.violation(w, http.StatusNotFound, "installation %s", m[1])
			return
		}
		f.mu.Lock()
		f.exchanges++
		token := fmt.Sprintf("ghs_installation%d", f.exchanges)
		f.tokens[token] = true
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token":%q,"expires_at":%q,"permissions":{"actions":"read","deployments":"write"},"repository_selection":"all"}`,
			token, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		return
	}
	m := runPath.FindStringSubmatch(r.URL.Path)
	if m == nil || r.Method != http.MethodPost {
		f.violation(w, http.StatusNotFound, "%s %s: no such route", r.Method, r.URL.Path)
		return
	}
	f.mu.Lock()
	known := f.tokens[bearer]
	f.mu.Unlock()
	if !known {
		f.violation(w, http.StatusUnauthorized, "callback with a token that is not an installation token")
		return
	}
	var rv appReview
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rv); err != nil || rv.EnvironmentName == "" || rv.Comment == "" {
		f.violation(w, http.StatusUnprocessableEntity, "body: %v (environment_name and comment are required)", err)
		return
	}
	if n := len([]rune(rv.Comment)); n > 1024 {
		f.violation(w, http.StatusUnprocessableEntity, "comment of %d characters, more than 1024", n)
		return
	}
	if rv.State != "" && rv.State != "approved" && rv.State != "rejected" {
		f.violation(w, http.StatusUnprocessableEntity, "state %q", rv.State)
		return
	}
	run, _ := strconv.ParseInt(m[3], 10, 64)
	f.mu.Lock()
	reports, decided := 0, false
	for _, p := range f.reviews[run] {
		decided = decided || p.State != ""
		if p.State == "" {
			reports++
		}
	}
	f.mu.Unlock()
	switch {
	case decided:
		f.violation(w, http.StatusUnprocessableEntity, "run %d: No pending deployment requests to approve or reject", run)
		return
	case rv.State == "" && reports >= 10:
		f.violation(w, http.StatusUnprocessableEntity, "run %d: more than 10 status reports", run)
		return
	}
	f.mu.Lock()
	f.reviews[run] = append(f.reviews[run], rv)
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// answers are the run's reviews: the decisions (states) and the number
// of status reports.
func (f *fakeGitHubApp) answers(run int64) (states []string, reports int, last appReview) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reviews[run] {
		if r.State != "" {
			states = append(states, r.State)
		} else {
			reports++
		}
		last = r
	}
	return states, reports, last
}

func (f *fakeGitHubApp) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"exchanges": f.exchanges, "reviews": f.reviews, "violations": f.violations})
	return string(b)
}

// ruleDelivery is the sample deployment_protection_rule payload
// (testdata/github) for one deployment and run of a repository.
func ruleDelivery(t *testing.T, repo string, deployment, run int64, callbackBase string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "github", "deployment_protection_rule.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	owner, name, _ := strings.Cut(repo, "/")
	ev["deployment_callback_url"] = fmt.Sprintf("%s/repos/%s/actions/runs/%d/deployment_protection_rule", callbackBase, repo, run)
	dep := ev["deployment"].(map[string]any)
	dep["id"] = deployment
	dep["created_at"] = time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	r := ev["repository"].(map[string]any)
	r["name"], r["full_name"] = name, repo
	r["owner"].(map[string]any)["login"] = owner
	b, _ := json.Marshal(ev)
	return string(b)
}

// TestGitHubProtectionRuleEndToEnd runs slogate serve as a GitHub App
// against a fake GitHub API and a real Prometheus: checkout's budget is
// healthy, legacy's is spent.
func TestGitHubProtectionRuleEndToEnd(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	gh := startFakeGitHubApp(t, &key.PublicKey)
	var evilHits int
	var evilMu sync.Mutex
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilMu.Lock()
		evilHits++
		evilMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(evil.Close)

	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-30*24*time.Hour - time.Hour)
	var om testenv.OpenMetrics
	om.Counter("http_requests", testenv.Requests("http_requests", map[string]string{"service": "checkout", "version": "v1"},
		start, 5*time.Minute, testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})...)
	om.Counter("http_requests", testenv.Requests("http_requests", map[string]string{"service": "legacy", "version": "v1"},
		start, 5*time.Minute, testenv.Phase{Until: now, Rate: 5, ErrorRatio: 0.05})...)
	prom := testenv.StartPrometheus(t, om.String())

	dir := t.TempDir()
	var slos strings.Builder
	fmt.Fprintf(&slos, e2eSLOs+"---\n", "checkout", "http_requests_total")
	fmt.Fprintf(&slos, e2eSLOs, "legacy", "http_requests_total")
	writeFile(t, filepath.Join(dir, "slos", "services.yaml"), slos.String())
	env := map[string]string{"GITHUB_WEBHOOK_SECRET": githubSecret, "GITHUB_APP_PRIVATE_KEY": pemKey}
	config := func(port int, promURL string) string {
		path := filepath.Join(dir, fmt.Sprintf("slogate-%d.yaml", port))
		writeFile(t, path, fmt.Sprintf(`
listen: 127.0.0.1:%d
externalURL: https://slogate.example.com
slos: [%s]
store: sqlite:%s
sources:
  prometheus: {url: "%s", timeout: 5s}
evaluation: {schedule: "@every 1h"}
gate: {cacheTTL: 0s}
webhooks:
  github:
    secret: "${GITHUB_WEBHOOK_SECRET}"
    app: {id: %d, privateKey: "${GITHUB_APP_PRIVATE_KEY}", apiURL: "%s", deadline: 2h, interval: 1s}
    services: {"acme/storefront": checkout}
log: {level: debug}
`, port, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), promURL, appID, gh.srv.URL))
		return path
	}
	start1 := func(promURL string) (string, func()) {
		port := testenv.FreePort(t)
		path := config(port, promURL)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		logs := &lockedWriter{w: &bytes.Buffer{}}
		go func() {
			done <- run(ctx, []string{"serve", "--config", path}, func(k string) string { return env[k] }, io.Discard, logs)
		}()
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve returned %v", err)
				}
			case <-time.After(40 * time.Second):
				t.Error("serve did not stop within 40s")
			}
			out := logs.String()
			if t.Failed() {
				t.Logf("slogate logs:\n%s\nfake GitHub: %s", out, gh)
			}
			for _, secret := range []string{githubSecret, "PRIVATE KEY", "ghs_installation"} {
				if strings.Contains(out, secret) {
					t.Errorf("the logs hold a secret (%s)", secret)
				}
			}
		}
		t.Cleanup(stop)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		testenv.WaitHTTP(t, nil, base+"/healthz", 30*time.Second)
		return base, stop
	}
	decided := func(run int64) func() bool {
		return func() bool { s, _, _ := gh.answers(run); return len(s) > 0 }
	}

	// First slogate: its Prometheus is down, so the gate faults and the
	// rule waits (a source fault is never an approval).
	base, stop := start1(testenv.DownURL(t))
	const waitRun = 7001
	if code, body := deliver(t, base, "deployment_protection_rule", ruleDelivery(t, "acme/storefront", 3001, waitRun, gh.srv.URL), githubSecret); code != http.StatusAccepted {
		t.Fatalf("protection rule: %d %s, want 202", code, body)
	}
	eventually(t, 30*time.Second, gh.String, func() bool { _, n, _ := gh.answers(waitRun); return n >= 2 })
	stop()
	states, reports, last := gh.answers(waitRun)
	if len(states) != 0 || !strings.Contains(last.Comment, "waiting") || last.EnvironmentName != "production" {
		t.Fatalf("with Prometheus down: states %v, last report %+v; want status reports only", states, last)
	}

	// Second slogate on the same store, Prometheus up: the pending rule
	// resumes and is approved, once.
	base, _ = start1(prom.URL)
	eventually(t, 30*time.Second, gh.String, decided(waitRun))

	t.Run("a wait turns into an approve across a restart", func(t *testing.T) {
		states, n, last := gh.answers(waitRun)
		if len(states) != 1 || states[0] != "approved" || n < reports || n > 10 {
			t.Fatalf("states %v, %d status reports; want one approval after the reports", states, n)
		}
		if !strings.Contains(last.Comment, "approved") || !strings.Contains(last.Comment, "https://slogate.example.com/v1/decisions/ev_") {
			t.Fatalf("approval comment %q: want the reason and a link to the decision", last.Comment)
		}
	})

	t.Run("a healthy budget is approved and a redelivered webhook approves once", func(t *testing.T) {
		body := ruleDelivery(t, "acme/checkout", 3002, 7002, gh.srv.URL)
		for range 2 {
			if code, b := deliver(t, base, "deployment_protection_rule", body, githubSecret); code != http.StatusAccepted {
				t.Fatalf("protection rule: %d %s, want 202", code, b)
			}
		}
		eventually(t, 30*time.Second, gh.String, decided(7002))
		if code, b := deliver(t, base, "deployment_protection_rule", body, githubSecret); code != http.StatusAccepted {
			t.Fatalf("redelivery after the answer: %d %s, want 202", code, b)
		}
		// A later rule answered means the redeliveries were processed.
		if code, b := deliver(t, base, "deployment_protection_rule", ruleDelivery(t, "acme/checkout", 3003, 7003, gh.srv.URL), githubSecret); code != http.StatusAccepted {
			t.Fatalf("protection rule: %d %s", code, b)
		}
		eventually(t, 30*time.Second, gh.String, decided(7003))
		if states, _, _ := gh.answers(7002); len(states) != 1 || states[0] != "approved" {
			t.Fatalf("run 7002: %v, want one approval", states)
		}
	})

	t.Run("a spent budget is rejected with its reason", func(t *testing.T) {
		if code, b := deliver(t, base, "deployment_protection_rule", ruleDelivery(t, "acme/legacy", 3004, 7004, gh.srv.URL), githubSecret); code != http.StatusAccepted {
			t.Fatalf("protection rule: %d %s", code, b)
		}
		eventually(t, 30*time.Second, gh.String, decided(7004))
		states, _, last := gh.answers(7004)
		if len(states) != 1 || states[0] != "rejected" || !strings.Contains(last.Comment, "legacy-availability") {
			t.Fatalf("run 7004: %v %q, want one rejection naming the SLO", states, last.Comment)
		}
	})

	t.Run("a callback URL on another host is refused and never called", func(t *testing.T) {
		code, b := deliver(t, base, "deployment_protection_rule", ruleDelivery(t, "acme/checkout", 3005, 7005, evil.URL), githubSecret)
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(b), "deployment_callback_url") {
			t.Fatalf("callback elsewhere: %d %s, want 422 naming deployment_callback_url", code, b)
		}
		// The next rule's answer shows the runner went on past it.
		if code, b := deliver(t, base, "deployment_protection_rule", ruleDelivery(t, "acme/checkout", 3006, 7006, gh.srv.URL), githubSecret); code != http.StatusAccepted {
			t.Fatalf("protection rule: %d %s", code, b)
		}
		eventually(t, 30*time.Second, gh.String, decided(7006))
		evilMu.Lock()
		defer evilMu.Unlock()
		if evilHits != 0 {
			t.Fatalf("the other host was called %d times", evilHits)
		}
	})

	t.Run("a wrong signature is answered 401", func(t *testing.T) {
		body := ruleDelivery(t, "acme/checkout", 3007, 7007, gh.srv.URL)
		if code, b := deliver(t, base, "deployment_protection_rule", body, "another-secret-0123456789"); code != http.StatusUnauthorized {
			t.Fatalf("wrong signature: %d %s, want 401", code, b)
		}
	})

	t.Run("the installation token is exchanged with a JWT the App's key signed", func(t *testing.T) {
		gh.mu.Lock()
		defer gh.mu.Unlock()
		if len(gh.violations) > 0 {
			t.Fatalf("the fake GitHub saw violations: %v", gh.violations)
		}
		// One exchange per process (cached): the first slogate's and the
		// second's.
		if gh.exchanges != 2 {
			t.Fatalf("%d token exchanges, want 2 (one per process, then cached)", gh.exchanges)
		}
	})
}
