package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate/alerting/github"
	"github.com/slogate/slogate/alerting/pagerduty"
	"github.com/slogate/slogate/internal/testenv"
)

// Secrets of the peers, given to slogate through the environment; none may
// appear in its logs.
const (
	pdRoutingKey = "R0UTINGKEY0123456789abcdefghijkl"
	grafanaToken = "glsa_notify_e2e_0123456789abcdef"
	githubToken  = "ghp_notifyE2E0123456789abcdefghij"
	githubRepo   = "acme/shop"
)

// notifyEnv is what every slogate of these tests reads: SLO files and a
// real Prometheus whose data ends at the start of the test.
//
//	checkout — v1 10 req/s at 0.02 % errors for 30 days; canary v2 from
//	           20 minutes ago at 2 req/s with 2 % errors: a halted deploy.
//	cart     — clean (0.02 %): deploys that are only annotated.
//	legacy   — 5 % errors for 30 days: burns at 50×, its budget spent.
//	fast     — 0.02 % errors, then 5 % for the last 2 hours: burns at 50×
//	           over every page window, 66 % of the budget left.
//	slow     — 0.02 % errors, then 0.2 % for the last 5 days: burns at 2×,
//	           so only the 1× ticket tier (3d/6h) fires.
type notifyEnv struct {
	prom     string
	slos     string
	deployed time.Time
}

func startNotifyEnv(t *testing.T) notifyEnv {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-30*24*time.Hour - time.Hour)
	deployed := now.Add(-20 * time.Minute)
	var om testenv.OpenMetrics
	traffic := func(service, version string, phases ...testenv.Phase) {
		om.Counter("http_requests", testenv.Requests("http_requests",
			map[string]string{"service": service, "version": version}, start, time.Minute, phases...)...)
	}
	traffic("checkout", "v1", testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})
	traffic("checkout", "v2", testenv.Phase{Until: deployed, Rate: 0}, testenv.Phase{Until: now, Rate: 2, ErrorRatio: 0.02})
	traffic("cart", "v1", testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})
	traffic("legacy", "v1", testenv.Phase{Until: now, Rate: 5, ErrorRatio: 0.05})
	traffic("fast", "v1", testenv.Phase{Until: now.Add(-2 * time.Hour), Rate: 10, ErrorRatio: 0.0002},
		testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.05})
	traffic("slow", "v1", testenv.Phase{Until: now.Add(-5 * 24 * time.Hour), Rate: 10, ErrorRatio: 0.0002},
		testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.002})
	prom := testenv.StartPrometheus(t, om.String())

	dir := filepath.Join(t.TempDir(), "slos")
	var slos strings.Builder
	for i, svc := range []string{"checkout", "cart", "legacy", "fast", "slow"} {
		if i > 0 {
			slos.WriteString("---\n")
		}
		fmt.Fprintf(&slos, e2eSLOs, svc, "http_requests_total")
	}
	writeFile(t, filepath.Join(dir, "services.yaml"), slos.String())
	return notifyEnv{prom: prom.URL, slos: dir, deployed: deployed}
}

// notifyConfig is the configuration of one slogate of these tests; an
// empty peer URL leaves that peer out.
type notifyConfig struct {
	port                                     int
	store                                    string
	alertmanager, pagerduty, grafana, github string
}

func (e notifyEnv) writeConfig(t *testing.T, path string, c notifyConfig) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `listen: 127.0.0.1:%[1]d
externalURL: http://127.0.0.1:%[1]d
slos: [%[2]s]
store: %[3]q
sources:
  prometheus: {url: %[4]q, timeout: 10s}
evaluation: {schedule: "@every 1s"}
gate: {cacheTTL: 0s}
auth:
  tokens:
    - {name: ci, value: "${CI_TOKEN}", scopes: [gate:read, deploys:write]}
    - {name: reader, value: %[5]s, scopes: [gate:read]}
log: {level: debug}
notify:
`, c.port, e.slos, c.store, e.prom, readToken)
	if c.alertmanager != "" {
		fmt.Fprintf(&b, "  alertmanager: {url: %q}\n", c.alertmanager)
	}
	if c.pagerduty != "" {
		fmt.Fprintf(&b, "  pagerduty: {routingKey: \"${PD_ROUTING_KEY}\", url: %q}\n", c.pagerduty)
	}
	if c.grafana != "" {
		fmt.Fprintf(&b, "  grafana: {url: %q, token: \"${GRAFANA_TOKEN}\"}\n", c.grafana)
	}
	if c.github != "" {
		fmt.Fprintf(&b, "  github: {repo: %s, token: \"${GITHUB_TOKEN}\", url: %q, labels: [slogate, reliability]}\n", githubRepo, c.github)
	}
	writeFile(t, path, b.String())
}

// notifyServer is one slogate started in-process with `slogate serve`.
type notifyServer struct {
	*e2e
	logs *lockedWriter
	once sync.Once
}

// startNotifyServer runs `slogate serve --config cfg` until stop (or the
// end of the test) and waits until it answers.
func startNotifyServer(t *testing.T, cfg string, port int, deployed time.Time) *notifyServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &notifyServer{
		e2e:  &e2e{url: fmt.Sprintf("http://127.0.0.1:%d", port), deployed: deployed, cancel: cancel, done: make(chan error, 1)},
		logs: &lockedWriter{w: &bytes.Buffer{}},
	}
	env := map[string]string{"CI_TOKEN": ciToken, "PD_ROUTING_KEY": pdRoutingKey, "GRAFANA_TOKEN": grafanaToken, "GITHUB_TOKEN": githubToken}
	go func() {
		s.done <- run(ctx, []string{"serve", "--config", cfg}, func(k string) string { return env[k] }, io.Discard, s.logs)
	}()
	t.Cleanup(func() { s.stop(t) })
	testenv.WaitHTTP(t, nil, s.url+"/healthz", 30*time.Second)
	return s
}

// stop cancels the server's context and waits for `slogate serve` to
// return; it checks that no secret reached the logs.
func (s *notifyServer) stop(t *testing.T) {
	t.Helper()
	s.once.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop within 40s of its context ending")
		}
		logs := s.logs.String()
		for _, secret := range []string{ciToken, pdRoutingKey, grafanaToken, githubToken} {
			if strings.Contains(logs, secret) {
				t.Errorf("the secret %.8s… appears in the logs", secret)
			}
		}
		if t.Failed() {
			t.Logf("logs of slogate at %s:\n%s", s.url, logs)
		}
	})
}

// metric sums the samples of name on GET /metrics whose labels include
// the given name/value pairs.
func (s *notifyServer) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	sum := 0.0
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && strings.Contains(line, labels[i]+`="`+labels[i+1]+`"`)
		}
		if !match {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// runs is the number of scheduled evaluations the server started, led or
// skipped as a follower.
func (s *notifyServer) runs(t *testing.T) float64 {
	t.Helper()
	return s.metric(t, "slogate_evaluation_runs_total", "outcome", "ok") +
		s.metric(t, "slogate_evaluation_runs_total", "outcome", "skipped_follower")
}

// delivered is slogate_notifications_total{peer, outcome="delivered"}.
func (s *notifyServer) delivered(t *testing.T, peer string) float64 {
	t.Helper()
	return s.metric(t, "slogate_notifications_total", "peer", peer, "outcome", "delivered")
}

// awaitRuns waits until every server has run n more scheduled
// evaluations than now: what slogate re-sends or re-evaluates has had its
// chance to reach the peers.
func awaitRuns(t *testing.T, n float64, servers ...*notifyServer) {
	t.Helper()
	for _, s := range servers {
		from := s.runs(t)
		eventually(t, 30*time.Second, func() string {
			return fmt.Sprintf("%s ran %v scheduled evaluations, want %v", s.url, s.runs(t)-from, n)
		}, func() bool { return s.runs(t) >= from+n })
	}
}

// eventually polls cond every 50ms until it holds, failing the test with
// what() after within.
func eventually(t *testing.T, within time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so after %s: %s", within, what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finish ends a deploy through PATCH /v1/deploys/{id}.
func (e *e2e) finish(t *testing.T, id, status string) {
	t.Helper()
	if code, body := e.call(t, http.MethodPatch, "/v1/deploys/"+id, ciToken, map[string]any{"status": status}); code != http.StatusOK {
		t.Fatalf("PATCH /v1/deploys/%s: %d %s", id, code, body)
	}
}

// halt asks the gate about a deploy and wants a halt.
func (e *e2e) halt(t *testing.T, service, deployID string) answer {
	t.Helper()
	a := e.gate(t, url.Values{"service": {service}, "environment": {"production"}, "deployId": {deployID}})
	if a.Decision != "halt" {
		t.Fatalf("gate on %s %s: %s %q, want halt", service, deployID, a.Decision, a.Reason)
	}
	return a
}

// --- fakes of the peers, speaking their documented wire formats ---

// fakeMode is how a fake peer answers.
type fakeMode int

const (
	// up: as the peer does.
	modeUp fakeMode = iota
	// down: 503 to everything.
	modeDown
	// hang: the GitHub fake files the issue, then never answers (until the
	// client goes away): a delivery whose answer is lost.
	modeHang
)

// fakePeer is what the fakes share: the mode, the 503s answered, the
// contract violations seen, the requests left hanging.
type fakePeer struct {
	mu       sync.Mutex
	mode     fakeMode
	refused  int
	hanging  int
	problems []string
	release  chan struct{}
}

func newFakePeer() *fakePeer { return &fakePeer{release: make(chan struct{})} }

func (f *fakePeer) setMode(m fakeMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = m
}

// refuse answers 503 when the peer is down.
func (f *fakePeer) refuse(w http.ResponseWriter) bool {
	f.mu.Lock()
	down := f.mode == modeDown
	if down {
		f.refused++
	}
	f.mu.Unlock()
	if down {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"message":"service unavailable"}`)
	}
	return down
}

func (f *fakePeer) violation(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.mu.Lock()
	f.problems = append(f.problems, msg)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (f *fakePeer) refusals() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// check fails the test on any contract violation the fake saw.
func (f *fakePeer) check(t *testing.T, peer string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.problems {
		t.Errorf("%s: %s", peer, p)
	}
}

// serve starts the fake's server; hanging requests are let go at the end.
func (f *fakePeer) serve(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.release) }) // runs first: frees the hanging
	return srv.URL
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fakePagerDuty is the Events API v2: POST /v2/enqueue, the routing key in
// the body, no auth header, 202 with JSON.
type fakePagerDuty struct {
	*fakePeer
	url    string
	events []pdEvent
}

type pdEvent struct {
	RoutingKey string `json:"routing_key"`
	Action     string `json:"event_action"`
	DedupKey   string `json:"dedup_key"`
	Payload    *struct {
		Summary  string `json:"summary"`
		Source   string `json:"source"`
		Severity string `json:"severity"`
	} `json:"payload"`
}

func startFakePagerDuty(t *testing.T) *fakePagerDuty {
	f := &fakePagerDuty{fakePeer: newFakePeer()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/enqueue", func(w http.ResponseWriter, r *http.Request) {
		if f.refuse(w) {
			return
		}
		if a := r.Header.Get("Authorization"); a != "" {
			f.violation(w, http.StatusBadRequest, "the Events API takes no Authorization header, got %q", a)
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			f.violation(w, http.StatusBadRequest, "Content-Type %q", ct)
			return
		}
		var ev pdEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			f.violation(w, http.StatusBadRequest, "body: %v", err)
			return
		}
		switch {
		case ev.RoutingKey != pdRoutingKey:
			f.violation(w, http.StatusBadRequest, "routing_key %q", ev.RoutingKey)
			return
		case ev.DedupKey == "" || len(ev.DedupKey) > 255:
			f.violation(w, http.StatusBadRequest, "dedup_key %q", ev.DedupKey)
			return
		case ev.Action == "trigger" && (ev.Payload == nil || ev.Payload.Summary == "" || ev.Payload.Source == "" || ev.Payload.Severity == ""):
			f.violation(w, http.StatusBadRequest, "trigger %s without summary, source or severity", ev.DedupKey)
			return
		case ev.Action != "trigger" && ev.Action != "resolve" && ev.Action != "acknowledge":
			f.violation(w, http.StatusBadRequest, "event_action %q", ev.Action)
			return
		}
		f.mu.Lock()
		f.events = append(f.events, ev)
		f.mu.Unlock()
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
	})
	f.url = f.serve(t, mux)
	return f
}

// count is the number of accepted events of action with dedupKey ("" for
// any key).
func (f *fakePagerDuty) count(action, dedupKey string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.events {
		if e.Action == action && (dedupKey == "" || e.DedupKey == dedupKey) {
			n++
		}
	}
	return n
}

func (f *fakePagerDuty) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, e := range f.events {
		s = append(s, e.Action+" "+e.DedupKey)
	}
	return fmt.Sprintf("%d events %v, %d refused", len(f.events), s, f.refused)
}

// fakeGrafana is Grafana's annotations API with a service account token.
type fakeGrafana struct {
	*fakePeer
	url     string
	anns    []grafanaAnnotation
	created int
	patched int
	deleted int
}

type grafanaAnnotation struct {
	ID           int64    `json:"id"`
	DashboardUID string   `json:"dashboardUID,omitempty"`
	Time         int64    `json:"time"`
	TimeEnd      int64    `json:"timeEnd"`
	Tags         []string `json:"tags"`
	Text         string   `json:"text"`
}

func startFakeGrafana(t *testing.T) *fakeGrafana {
	f := &fakeGrafana{fakePeer: newFakePeer()}
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if f.refuse(w) {
				return
			}
			if a := r.Header.Get("Authorization"); a != "Bearer "+grafanaToken {
				f.violation(w, http.StatusUnauthorized, "%s %s: Authorization %q", r.Method, r.URL.Path, a)
				return
			}
			h(w, r)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/annotations", auth(func(w http.ResponseWriter, r *http.Request) {
		var a grafanaAnnotation
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil || a.Time <= 0 || len(a.Tags) == 0 || a.Text == "" {
			f.violation(w, http.StatusBadRequest, "POST /api/annotations: bad annotation %+v (%v)", a, err)
			return
		}
		f.mu.Lock()
		f.created++
		a.ID = int64(f.created)
		if a.TimeEnd == 0 {
			a.TimeEnd = a.Time // as Grafana stores a point
		}
		f.anns = append(f.anns, a)
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"message": "Annotation added", "id": a.ID})
	}))
	mux.HandleFunc("GET /api/annotations", auth(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 {
			limit = 100
		}
		out := []grafanaAnnotation{}
		f.mu.Lock()
		for i := len(f.anns) - 1; i >= 0 && len(out) < limit; i-- { // newest first
			a := f.anns[i]
			if uid := q.Get("dashboardUID"); uid != "" && a.DashboardUID != uid {
				continue
			}
			all := true
			for _, tag := range q["tags"] {
				all = all && slices.Contains(a.Tags, tag)
			}
			if all {
				out = append(out, a)
			}
		}
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("DELETE /api/annotations/{id}", auth(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := range f.anns {
			if f.anns[i].ID == id {
				f.anns = slices.Delete(f.anns, i, i+1)
				f.deleted++
				writeJSON(w, http.StatusOK, map[string]string{"message": "Annotation deleted"})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Annotation not found"})
	}))
	mux.HandleFunc("PATCH /api/annotations/{id}", auth(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		var p struct {
			Time    *int64   `json:"time"`
			TimeEnd *int64   `json:"timeEnd"`
			Tags    []string `json:"tags"`
			Text    *string  `json:"text"`
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			f.violation(w, http.StatusBadRequest, "PATCH %s: %v", r.URL.Path, err)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := range f.anns {
			a := &f.anns[i]
			if a.ID != id {
				continue
			}
			if p.Time != nil {
				a.Time = *p.Time
			}
			if p.TimeEnd != nil {
				a.TimeEnd = *p.TimeEnd
			}
			if p.Tags != nil {
				a.Tags = p.Tags
			}
			if p.Text != nil {
				a.Text = *p.Text
			}
			f.patched++
			writeJSON(w, http.StatusOK, map[string]string{"message": "Annotation patched"})
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Could not find annotation to update"})
	}))
	f.url = f.serve(t, mux)
	return f
}

// withTags returns the annotations carrying every tag.
func (f *fakeGrafana) withTags(tags ...string) []grafanaAnnotation {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []grafanaAnnotation
	for _, a := range f.anns {
		all := true
		for _, tag := range tags {
			all = all && slices.Contains(a.Tags, tag)
		}
		if all {
			out = append(out, a)
		}
	}
	return out
}

func (f *fakeGrafana) creations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created
}

func (f *fakeGrafana) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("%d annotations %+v, %d patches, %d refused", len(f.anns), f.anns, f.patched, f.refused)
}

// fakeGitHub is GitHub's Issues API for one repository.
type fakeGitHub struct {
	*fakePeer
	url      string
	issues   []*ghIssue
	comments int
}

type ghIssue struct {
	Number int
	Title  string
	Body   string
	Labels []string
}

func startFakeGitHub(t *testing.T) *fakeGitHub {
	f := &fakeGitHub{fakePeer: newFakePeer()}
	owner, repo, _ := strings.Cut(githubRepo, "/")
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if f.refuse(w) {
				return
			}
			switch {
			case r.Header.Get("Authorization") != "Bearer "+githubToken:
				f.violation(w, http.StatusUnauthorized, "%s %s: Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
			case r.Header.Get("Accept") != "application/vnd.github+json":
				f.violation(w, http.StatusBadRequest, "%s %s: Accept %q", r.Method, r.URL.Path, r.Header.Get("Accept"))
			case r.Header.Get("X-GitHub-Api-Version") != "2022-11-28":
				f.violation(w, http.StatusBadRequest, "%s %s: X-GitHub-Api-Version %q", r.Method, r.URL.Path, r.Header.Get("X-GitHub-Api-Version"))
			case r.PathValue("owner") != owner || r.PathValue("repo") != repo:
				writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
			default:
				h(w, r)
			}
		}
	}
	issueJSON := func(is *ghIssue) map[string]any {
		labels := make([]map[string]string, len(is.Labels))
		for i, l := range is.Labels {
			labels[i] = map[string]string{"name": l}
		}
		return map[string]any{
			"number": is.Number, "html_url": fmt.Sprintf("https://github.com/%s/issues/%d", githubRepo, is.Number),
			"title": is.Title, "body": is.Body, "state": "open", "labels": labels,
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{owner}/{repo}/issues", auth(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("state") != "open" || q.Get("labels") == "" {
			f.violation(w, http.StatusBadRequest, "listing issues with %q: want state=open and a label", r.URL.RawQuery)
			return
		}
		want := strings.Split(q.Get("labels"), ",")
		out := []map[string]any{}
		f.mu.Lock()
		for i := len(f.issues) - 1; i >= 0; i-- { // newest first
			is := f.issues[i]
			all := true
			for _, l := range want {
				all = all && slices.Contains(is.Labels, l)
			}
			if all {
				out = append(out, issueJSON(is))
			}
		}
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues", auth(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Title  string   `json:"title"`
			Body   string   `json:"body"`
			Labels []string `json:"labels"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Title == "" {
			f.violation(w, http.StatusUnprocessableEntity, "POST issues: bad issue %+v (%v)", in, err)
			return
		}
		f.mu.Lock()
		is := &ghIssue{Number: len(f.issues) + 1, Title: in.Title, Body: in.Body, Labels: in.Labels}
		f.issues = append(f.issues, is)
		hang := f.mode == modeHang
		if hang {
			f.hanging++
		}
		f.mu.Unlock()
		if hang {
			// Filed, but the answer never comes.
			select {
			case <-r.Context().Done():
			case <-f.release:
			}
			f.mu.Lock()
			f.hanging--
			f.mu.Unlock()
			return
		}
		writeJSON(w, http.StatusCreated, issueJSON(is))
	}))
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues/{number}/comments", auth(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Body string `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == "" {
			f.violation(w, http.StatusUnprocessableEntity, "POST comments: bad comment (%v)", err)
			return
		}
		n, _ := strconv.Atoi(r.PathValue("number"))
		f.mu.Lock()
		defer f.mu.Unlock()
		if n < 1 || n > len(f.issues) {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
			return
		}
		f.comments++
		writeJSON(w, http.StatusCreated, map[string]any{"id": f.comments, "html_url": fmt.Sprintf("https://github.com/%s/issues/%d#issuecomment-%d", githubRepo, n, f.comments)})
	}))
	f.url = f.serve(t, mux)
	return f
}

// issuesWith is the number of issues filed whose body carries the fingerprint
// marker of fp, or, when prefix, of a fingerprint starting with fp.
func (f *fakeGitHub) issuesWith(fp string, prefix bool) int {
	marker := github.Marker(fp)
	if prefix {
		marker = strings.TrimSuffix(marker, " -->")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, is := range f.issues {
		if strings.Contains(is.Body, marker) {
			n++
		}
	}
	return n
}

func (f *fakeGitHub) filed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.issues)
}

func (f *fakeGitHub) hangingNow() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hanging
}

func (f *fakeGitHub) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, is := range f.issues {
		s = append(s, fmt.Sprintf("#%d %q", is.Number, is.Title))
	}
	return fmt.Sprintf("issues %v, %d comments, %d refused", s, f.comments, f.refused)
}

// webhookReceiver is Alertmanager's webhook receiver: what Alertmanager
// notified.
type webhookReceiver struct {
	mu       sync.Mutex
	url      string
	payloads []amWebhook
}

type amWebhook struct {
	Status string `json:"status"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

func startWebhookReceiver(t *testing.T) *webhookReceiver {
	rcv := &webhookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p amWebhook
		if err := json.NewDecoder(r.Body).Decode(&p); err == nil {
			rcv.mu.Lock()
			rcv.payloads = append(rcv.payloads, p)
			rcv.mu.Unlock()
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	rcv.url = srv.URL
	return rcv
}

// got tells whether an alert with the labels came with status.
func (r *webhookReceiver) got(status string, labels map[string]string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.payloads {
		for _, a := range p.Alerts {
			if a.Status != status {
				continue
			}
			match := true
			for k, v := range labels {
				match = match && a.Labels[k] == v
			}
			if match {
				return true
			}
		}
	}
	return false
}

// activeAlerts reads GET /api/v2/alerts of the real Alertmanager filtered
// by the labels and returns the active ones' labels.
func activeAlerts(t *testing.T, am string, labels map[string]string) []map[string]string {
	t.Helper()
	q := url.Values{"active": {"true"}}
	for k, v := range labels {
		q.Add("filter", fmt.Sprintf("%s=%q", k, v))
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(am + "/api/v2/alerts?" + q.Encode())
	if err != nil {
		t.Fatalf("GET alertmanager alerts: %v", err)
	}
	defer resp.Body.Close()
	var alerts []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET alertmanager alerts: %d %v", resp.StatusCode, err)
	}
	var out []map[string]string
	for _, a := range alerts {
		if a.Status.State == "active" {
			out = append(out, a.Labels)
		}
	}
	return out
}

// --- the tests ---

// TestNotificationsEndToEnd runs slogate as DESIGN.md configures it, over
// a real Prometheus and a real Alertmanager, with fakes of PagerDuty,
// Grafana and GitHub, evaluating every second.
func TestNotificationsEndToEnd(t *testing.T) {
	env := startNotifyEnv(t)
	t.Run("one slogate with every peer", func(t *testing.T) {
		t.Parallel()
		testEveryPeer(t, env)
	})
	t.Run("peers down for a while, then slogate stopped mid-delivery", func(t *testing.T) {
		t.Parallel()
		testNotificationFaults(t, env)
	})
	t.Run("two replicas on one PostgreSQL", func(t *testing.T) {
		t.Parallel()
		testReplicasNotifyOnce(t, env)
	})
}

func testEveryPeer(t *testing.T, env notifyEnv) {
	rcv := startWebhookReceiver(t)
	am := testenv.StartAlertmanager(t, rcv.url)
	pd, gf, gh := startFakePagerDuty(t), startFakeGrafana(t), startFakeGitHub(t)
	dir := t.TempDir()
	port := testenv.FreePort(t)
	cfg := filepath.Join(dir, "slogate.yaml")
	env.writeConfig(t, cfg, notifyConfig{
		port: port, store: "sqlite:" + filepath.Join(dir, "data", "slogate.db"),
		alertmanager: am.URL, pagerduty: pd.url, grafana: gf.url, github: gh.url,
	})
	s := startNotifyServer(t, cfg, port, env.deployed)
	t.Cleanup(func() {
		pd.check(t, "pagerduty")
		gf.check(t, "grafana")
		gh.check(t, "github")
	})

	t.Run("a fast burn pages once: Alertmanager holds a page alert and PagerDuty gets one trigger", func(t *testing.T) {
		page := map[string]string{"slo": "fast-availability", "severity": "page", "service": "fast"}
		key := pagerduty.DedupKey("fast", "fast-availability")
		eventually(t, 30*time.Second, func() string {
			return fmt.Sprintf("alertmanager %v, webhook firing %v, pagerduty %s",
				activeAlerts(t, am.URL, page), rcv.got("firing", page), pd)
		}, func() bool {
			return len(activeAlerts(t, am.URL, page)) == 1 && rcv.got("firing", page) && pd.count("trigger", key) >= 1
		})
		// The alert is re-sent to Alertmanager at every evaluation; none
		// of the re-sends may page again.
		resent := s.delivered(t, "alertmanager")
		awaitRuns(t, 3, s)
		eventually(t, 10*time.Second, func() string {
			return fmt.Sprintf("%v alerts re-sent to Alertmanager over 3 evaluations", s.delivered(t, "alertmanager")-resent)
		}, func() bool { return s.delivered(t, "alertmanager") >= resent+3 })
		if n := pd.count("trigger", key); n != 1 {
			t.Errorf("PagerDuty got %d triggers for %s, want 1: %s", n, key, pd)
		}
		if n := pd.count("resolve", key); n != 0 {
			t.Errorf("PagerDuty got %d resolves for %s, want 0: %s", n, key, pd)
		}
		if got := activeAlerts(t, am.URL, page); len(got) != 1 {
			t.Errorf("after the re-sends Alertmanager has %v, want the page alert active", got)
		}
	})

	t.Run("a slow burn files a ticket alert and never pages", func(t *testing.T) {
		ticket := map[string]string{"slo": "slow-availability", "severity": "ticket"}
		eventually(t, 30*time.Second, func() string {
			return fmt.Sprintf("alertmanager %v", activeAlerts(t, am.URL, ticket))
		}, func() bool { return len(activeAlerts(t, am.URL, ticket)) == 1 })
		awaitRuns(t, 2, s)
		if got := activeAlerts(t, am.URL, map[string]string{"slo": "slow-availability", "severity": "page"}); len(got) != 0 {
			t.Errorf("a 2x burn pages at Alertmanager: %v", got)
		}
		if n := pd.count("trigger", pagerduty.DedupKey("slow", "slow-availability")); n != 0 {
			t.Errorf("a 2x burn triggered PagerDuty %d times: %s", n, pd)
		}
	})

	t.Run("a deploy is a region on Grafana, closed when it finishes", func(t *testing.T) {
		started := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
		code, body := s.call(t, http.MethodPost, "/v1/deploys", ciToken, map[string]any{
			"service": "cart", "environment": "production", "version": "v7", "previousVersion": "v1",
			"commit": "3f9c2ab", "pipelineUrl": "https://ci.example.com/cart/runs/7", "startedAt": started.Format(time.RFC3339),
		})
		if code != http.StatusCreated {
			t.Fatalf("POST /v1/deploys: %d %s", code, body)
		}
		var d struct{ ID string }
		_ = json.Unmarshal(body, &d)
		tag := "deploy-id:" + d.ID
		eventually(t, 15*time.Second, gf.String, func() bool { return len(gf.withTags(tag)) == 1 })
		a := gf.withTags(tag)[0]
		for _, want := range []string{"slogate", "cart", "production", "v7"} {
			if !slices.Contains(a.Tags, want) {
				t.Errorf("deploy annotation tags %v lack %q", a.Tags, want)
			}
		}
		if a.Time != started.UnixMilli() || a.TimeEnd != a.Time {
			t.Errorf("a running deploy's annotation spans %d–%d, want a point at its start %d", a.Time, a.TimeEnd, started.UnixMilli())
		}
		if !strings.Contains(a.Text, "3f9c2ab") || !strings.Contains(a.Text, "https://ci.example.com/cart/runs/7") {
			t.Errorf("annotation text %q lacks the commit or the pipeline", a.Text)
		}

		s.finish(t, d.ID, "succeeded")
		eventually(t, 15*time.Second, gf.String, func() bool {
			as := gf.withTags(tag)
			return len(as) == 1 && as[0].TimeEnd > as[0].Time
		})
		awaitRuns(t, 2, s)
		if as := gf.withTags(tag); len(as) != 1 {
			t.Errorf("%d annotations for deploy %s, want 1: %s", len(as), d.ID, gf)
		}
	})

	t.Run("a halted deploy files one issue however often it is asked, and a spent budget one", func(t *testing.T) {
		id := s.deploy(t, "checkout", "v2", "v1", s.deployed)
		for range 3 {
			if a := s.halt(t, "checkout", id); !strings.Contains(a.Reason, "burns budget at") {
				t.Errorf("halt reason %q", a.Reason)
			}
		}
		halt := "halt/checkout/production/" + id
		budget := "budget/legacy-availability/"
		eventually(t, 20*time.Second, gh.String, func() bool {
			return gh.issuesWith(halt, false) >= 1 && gh.issuesWith(budget, true) >= 1
		})
		s.halt(t, "checkout", id)
		awaitRuns(t, 3, s)
		if n := gh.issuesWith(halt, false); n != 1 {
			t.Errorf("%d issues for %s, want 1: %s", n, halt, gh)
		}
		if n := gh.issuesWith(budget, true); n != 1 {
			t.Errorf("%d issues for legacy's spent budget, want 1: %s", n, gh)
		}
		// Grafana marks the halt once too.
		if n := len(gf.withTags("slogate", "checkout", "halt")); n != 1 {
			t.Errorf("%d halt annotations for checkout, want 1: %s", n, gf)
		}
	})
}

func testNotificationFaults(t *testing.T, env notifyEnv) {
	pd, gf, gh := startFakePagerDuty(t), startFakeGrafana(t), startFakeGitHub(t)
	peers := []*fakePeer{pd.fakePeer, gf.fakePeer, gh.fakePeer}
	dir := t.TempDir()
	port := testenv.FreePort(t)
	cfg := filepath.Join(dir, "slogate.yaml")
	env.writeConfig(t, cfg, notifyConfig{
		port: port, store: "sqlite:" + filepath.Join(dir, "data", "slogate.db"),
		pagerduty: pd.url, grafana: gf.url, github: gh.url,
	})
	t.Cleanup(func() {
		pd.check(t, "pagerduty")
		gf.check(t, "grafana")
		gh.check(t, "github")
	})
	fastKey, legacyKey := pagerduty.DedupKey("fast", "fast-availability"), pagerduty.DedupKey("legacy", "legacy-availability")
	const budget = "budget/legacy-availability/"

	for _, p := range peers {
		p.setMode(modeDown)
	}
	s := startNotifyServer(t, cfg, port, env.deployed)
	var halted, cartDeploy string

	t.Run("every notification is delivered exactly once after its peer comes back", func(t *testing.T) {
		// While every peer answers 503: two pages, a spent budget, two
		// deploys started, a halt.
		code, body := s.call(t, http.MethodPost, "/v1/deploys", ciToken, map[string]any{
			"service": "cart", "environment": "production", "version": "v5", "previousVersion": "v1",
		})
		if code != http.StatusCreated {
			t.Fatalf("POST /v1/deploys: %d %s", code, body)
		}
		var d struct{ ID string }
		_ = json.Unmarshal(body, &d)
		cartDeploy = d.ID
		halted = s.deploy(t, "checkout", "v2", "v1", s.deployed)
		s.halt(t, "checkout", halted)
		eventually(t, 20*time.Second, func() string {
			return fmt.Sprintf("refusals: pagerduty %d, grafana %d, github %d", pd.refusals(), gf.refusals(), gh.refusals())
		}, func() bool { return pd.refusals() >= 2 && gf.refusals() >= 2 && gh.refusals() >= 2 })
		for _, peer := range []string{"pagerduty", "grafana", "github"} {
			retried := func() float64 { return s.metric(t, "slogate_notifications_total", "peer", peer, "outcome", "retried") }
			eventually(t, 10*time.Second, func() string {
				return fmt.Sprintf("%s: %v retries counted while it was down", peer, retried())
			}, func() bool { return retried() >= 1 })
		}
		for _, p := range peers {
			p.setMode(modeUp)
		}

		// Grafana down again while the deploy finishes, maybe before its
		// start got there: start and finish may then be delivered at the
		// same moment, and must still draw one region, closed.
		gf.setMode(modeDown)
		refused := gf.refusals()
		s.finish(t, cartDeploy, "succeeded")
		eventually(t, 20*time.Second, gf.String, func() bool { return gf.refusals() >= refused+2 })
		gf.setMode(modeUp)

		// PagerDuty: two triggers; Grafana: two deploys' starts, one
		// finish, the halt; GitHub: the halt and the budget.
		want := map[string]float64{"pagerduty": 2, "grafana": 4, "github": 2}
		eventually(t, 40*time.Second, func() string {
			return fmt.Sprintf("delivered pagerduty %v, grafana %v, github %v; %s; %s; %s",
				s.delivered(t, "pagerduty"), s.delivered(t, "grafana"), s.delivered(t, "github"), pd, gf, gh)
		}, func() bool {
			for peer, n := range want {
				if s.delivered(t, peer) < n {
					return false
				}
			}
			return true
		})
		awaitRuns(t, 2, s)
		for peer, n := range want {
			if got := s.delivered(t, peer); got != n {
				t.Errorf("%s: %v notifications delivered, want %v", peer, got, n)
			}
		}
		for _, key := range []string{fastKey, legacyKey} {
			if n := pd.count("trigger", key); n != 1 {
				t.Errorf("%d triggers for %s, want 1: %s", n, key, pd)
			}
		}
		if as := gf.withTags("deploy-id:" + cartDeploy); len(as) != 1 || as[0].TimeEnd <= as[0].Time {
			t.Errorf("deploy %s: annotations %+v, want one closed region: %s", cartDeploy, as, gf)
		}
		if n := len(gf.withTags("slogate", "checkout", "halt")); n != 1 {
			t.Errorf("%d halt annotations, want 1: %s", n, gf)
		}
		if n := gh.issuesWith("halt/checkout/production/"+halted, false); n != 1 {
			t.Errorf("%d halt issues, want 1: %s", n, gh)
		}
		if n := gh.issuesWith(budget, true); n != 1 {
			t.Errorf("%d budget issues, want 1: %s", n, gh)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("slogate stopped while GitHub holds an issue's answer, then started again, files it once", func(t *testing.T) {
		triggers, annotations, issues := pd.count("trigger", ""), gf.creations(), gh.filed()
		gh.setMode(modeHang)
		id := s.deploy(t, "checkout", "v3", "v2", s.deployed)
		s.halt(t, "checkout", id) // no data for v3: halted by policy
		fp := "halt/checkout/production/" + id
		eventually(t, 20*time.Second, gh.String, func() bool { return gh.hangingNow() == 1 })
		s.stop(t)
		eventually(t, 10*time.Second, func() string {
			return fmt.Sprintf("%d GitHub calls still open after slogate stopped", gh.hangingNow())
		}, func() bool { return gh.hangingNow() == 0 })
		gh.setMode(modeUp)

		s = startNotifyServer(t, cfg, port, env.deployed)
		eventually(t, 30*time.Second, func() string {
			return fmt.Sprintf("delivered to github after the restart: %v; %s", s.delivered(t, "github"), gh)
		}, func() bool { return s.delivered(t, "github") >= 1 })
		awaitRuns(t, 3, s)
		if n := gh.issuesWith(fp, false); n != 1 {
			t.Errorf("%d issues for %s, want 1: %s", n, fp, gh)
		}
		if n := gh.filed(); n != issues+1 {
			t.Errorf("%d issues filed, want %d: %s", n, issues+1, gh)
		}
		if got := s.delivered(t, "github"); got != 1 {
			t.Errorf("the restarted slogate delivered %v GitHub notifications, want 1", got)
		}
		// Nothing else went again: the pages were already triggered and
		// the budget reported before the restart; Grafana got the v3
		// deploy and its halt, once each.
		if n := pd.count("trigger", ""); n != triggers {
			t.Errorf("%d PagerDuty triggers after the restart, want %d: %s", n, triggers, pd)
		}
		if n := gh.issuesWith(budget, true); n != 1 {
			t.Errorf("%d budget issues, want 1: %s", n, gh)
		}
		eventually(t, 15*time.Second, gf.String, func() bool { return gf.creations() >= annotations+2 })
		if n := gf.creations(); n != annotations+2 {
			t.Errorf("%d Grafana annotations, want %d: %s", n, annotations+2, gf)
		}
		if n := len(gf.withTags("deploy-id:" + id)); n != 1 {
			t.Errorf("%d annotations for deploy %s, want 1: %s", n, id, gf)
		}
	})
}

func testReplicasNotifyOnce(t *testing.T, env notifyEnv) {
	dsn := testenv.StartPostgres(t)
	pd, gf, gh := startFakePagerDuty(t), startFakeGrafana(t), startFakeGitHub(t)
	t.Cleanup(func() {
		pd.check(t, "pagerduty")
		gf.check(t, "grafana")
		gh.check(t, "github")
	})
	dir := t.TempDir()
	var replicas []*notifyServer
	for i := range 2 {
		port := testenv.FreePort(t)
		cfg := filepath.Join(dir, fmt.Sprintf("replica%d.yaml", i))
		env.writeConfig(t, cfg, notifyConfig{port: port, store: dsn, pagerduty: pd.url, grafana: gf.url, github: gh.url})
		replicas = append(replicas, startNotifyServer(t, cfg, port, env.deployed))
	}
	r0, r1 := replicas[0], replicas[1]

	// A deploy recorded on one replica and finished on the other; a halt
	// asked of both, twice each.
	code, body := r0.call(t, http.MethodPost, "/v1/deploys", ciToken, map[string]any{
		"service": "cart", "environment": "production", "version": "v6", "previousVersion": "v1",
	})
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/deploys: %d %s", code, body)
	}
	var d struct{ ID string }
	_ = json.Unmarshal(body, &d)
	// Finished at once, on the other replica: start and finish may be
	// delivered at the same moment by two processes.
	r1.finish(t, d.ID, "succeeded")
	halted := r0.deploy(t, "checkout", "v2", "v1", env.deployed)
	for range 2 {
		r0.halt(t, "checkout", halted)
		r1.halt(t, "checkout", halted)
	}

	fastKey, legacyKey := pagerduty.DedupKey("fast", "fast-availability"), pagerduty.DedupKey("legacy", "legacy-availability")
	const budget = "budget/legacy-availability/"
	// Grafana: the two deploys' starts, one finish, the halt.
	want := map[string]float64{"pagerduty": 2, "grafana": 4, "github": 2}
	delivered := func(peer string) float64 { return r0.delivered(t, peer) + r1.delivered(t, peer) }
	eventually(t, 40*time.Second, func() string {
		return fmt.Sprintf("delivered pagerduty %v, grafana %v, github %v; %s; %s; %s",
			delivered("pagerduty"), delivered("grafana"), delivered("github"), pd, gf, gh)
	}, func() bool {
		for peer, n := range want {
			if delivered(peer) < n {
				return false
			}
		}
		return true
	})
	okBefore := []float64{r0.metric(t, "slogate_evaluation_runs_total", "outcome", "ok"), r1.metric(t, "slogate_evaluation_runs_total", "outcome", "ok")}
	followBefore := []float64{r0.metric(t, "slogate_evaluation_runs_total", "outcome", "skipped_follower"), r1.metric(t, "slogate_evaluation_runs_total", "outcome", "skipped_follower")}
	awaitRuns(t, 3, r0, r1)

	t.Run("one replica evaluates, the other follows", func(t *testing.T) {
		var leads, follows []int
		for i, r := range replicas {
			ok := r.metric(t, "slogate_evaluation_runs_total", "outcome", "ok") - okBefore[i]
			follower := r.metric(t, "slogate_evaluation_runs_total", "outcome", "skipped_follower") - followBefore[i]
			switch {
			case ok > 0 && follower == 0:
				leads = append(leads, i)
			case follower > 0 && ok == 0:
				follows = append(follows, i)
			default:
				t.Errorf("replica %d: %v evaluations and %v skipped as a follower over the same runs", i, ok, follower)
			}
		}
		if len(leads) != 1 || len(follows) != 1 {
			t.Errorf("replicas leading %v, following %v: want one of each", leads, follows)
		}
	})

	t.Run("each notification reaches its peer once", func(t *testing.T) {
		for peer, n := range want {
			if got := delivered(peer); got != n {
				t.Errorf("%s: %v notifications delivered by the replicas together, want %v", peer, got, n)
			}
		}
		for _, key := range []string{fastKey, legacyKey} {
			if n := pd.count("trigger", key); n != 1 {
				t.Errorf("%d triggers for %s, want 1: %s", n, key, pd)
			}
		}
		if n := gh.issuesWith("halt/checkout/production/"+halted, false); n != 1 {
			t.Errorf("%d halt issues, want 1: %s", n, gh)
		}
		if n := gh.issuesWith(budget, true); n != 1 {
			t.Errorf("%d budget issues, want 1: %s", n, gh)
		}
		if as := gf.withTags("deploy-id:" + d.ID); len(as) != 1 || as[0].TimeEnd <= as[0].Time {
			t.Errorf("deploy %s: annotations %+v, want one closed region", d.ID, as)
		}
		if n := len(gf.withTags("slogate", "checkout", "halt")); n != 1 {
			t.Errorf("%d halt annotations, want 1: %s", n, gf)
		}
	})
}
