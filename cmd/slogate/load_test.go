package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/internal/testenv"
)

// The load benchmarks of issue #4. Each one starts slogate in-process with
// run(), as a user would with `slogate serve --config FILE`, and loads it
// from a second process, the loadgen (internal/loadgen), over loopback. Each
// one measures a baseline in the same run with the same loadgen settings,
// so that the load of a shared machine weighs on both alike; the figures to
// read are the ratios.
//
//	go test -run '^$' -bench '^BenchmarkLoad[A-Z]' -benchtime 1x ./cmd/slogate/
//
// (`make bench` runs them.) The loadgen is built once per benchmark; every
// load goes to 127.0.0.1 and stops by itself (-n, -d, 60 s at most).

// loadAsk is the gate question of the load benchmarks: is cart's canary v2
// good to promote? It runs the three checks (budget, verification, canary).
var loadAsk = url.Values{"service": {"cart"}, "environment": {"production"}, "version": {"v2"}}

// loadAuth is the header of every request to slogate.
var loadAuth = []string{"-header", "Authorization: Bearer " + ciToken}

// loadgen is the path of a built loadgen.
type loadgen string

func buildLoadgen(b *testing.B) loadgen {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "loadgen")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 5*time.Minute,
		fmt.Errorf("go build ./internal/loadgen took longer than 5m"))
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/slogate/slogate/internal/loadgen").CombinedOutput()
	if err != nil {
		b.Fatalf("go build ./internal/loadgen: %v\n%s", err, out)
	}
	return loadgen(bin)
}

// loadFigures is the loadgen's JSON line.
type loadFigures struct {
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	Non2xx      int64   `json:"non2xx"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	P50         float64 `json:"p50_ms"`
	P90         float64 `json:"p90_ms"`
	P99         float64 `json:"p99_ms"`
	Max         float64 `json:"max_ms"`
	FirstError  string  `json:"first_error"`
	FirstNon2xx string  `json:"first_non2xx"`
}

func (f loadFigures) String() string {
	return fmt.Sprintf("%6d requests in %5.2fs = %8.1f/s, p50 %7.2f ms, p90 %7.2f ms, p99 %7.2f ms, max %7.2f ms",
		f.Requests, f.Seconds, f.RPS, f.P50, f.P90, f.P99, f.Max)
}

// run runs the loadgen as a child process and fails the benchmark unless
// every request got a 2xx answer.
func (lg loadgen) run(b *testing.B, target string, args ...string) loadFigures {
	b.Helper()
	// The loadgen stops by itself within 60 s; this is the backstop.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, string(lg), append([]string{"-url", target}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("loadgen against %s: %v\n%s", redactURL(target), err, stderr.String())
	}
	var f loadFigures
	if err := json.Unmarshal(stdout.Bytes(), &f); err != nil {
		b.Fatalf("loadgen against %s: %v in %q", redactURL(target), err, stdout.String())
	}
	if f.Requests == 0 || f.Errors > 0 || f.Non2xx > 0 {
		b.Fatalf("loadgen against %s: %d answers, %d errors (first: %s), %d non-2xx (first: %s)",
			redactURL(target), f.Requests, f.Errors, f.FirstError, f.Non2xx, f.FirstNon2xx)
	}
	return f
}

// redactURL keeps a query string (a PromQL expression) out of messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery = ""
	return u.String()
}

// loadServer is a slogate started in-process by run() for a load benchmark.
type loadServer struct {
	url  string
	logs *lockedWriter
}

type loadConfig struct {
	prometheus string // the Prometheus source's URL
	store      string // a DSN; SQLite in a temporary directory when empty
	cacheTTL   string // gate.cacheTTL
	logLevel   string // info when empty
	accessAll  bool   // log.access.all: every request logged (before sampling)
}

// startLoadServer writes cart's SLOs and a config, starts `slogate serve`
// through run() and waits until it serves and its first scheduled
// evaluation (at start-up, then every hour) is over, so that it does not
// weigh on the measurements.
func startLoadServer(b *testing.B, c loadConfig) *loadServer {
	b.Helper()
	dir := b.TempDir()
	if c.store == "" {
		c.store = "sqlite:" + filepath.Join(dir, "data", "slogate.db")
	}
	if c.logLevel == "" {
		c.logLevel = "info"
	}
	if err := os.MkdirAll(filepath.Join(dir, "slos"), 0o755); err != nil {
		b.Fatal(err)
	}
	port := testenv.FreePort(b)
	for path, body := range map[string]string{
		filepath.Join(dir, "slos", "cart.yaml"): fmt.Sprintf(e2eSLOs, "cart", "http_requests_total"),
		filepath.Join(dir, "slogate.yaml"): fmt.Sprintf(`
listen: 127.0.0.1:%d
slos: [%s]
store: %q
sources:
  prometheus: {url: %q, timeout: 10s}
evaluation: {schedule: "@every 1h"}
gate: {cacheTTL: %s, askRate: -1, maxConcurrentEvaluations: -1}
auth:
  tokens:
    - {name: ci, value: "${CI_TOKEN}", scopes: [gate:read, deploys:write]}
log: {level: %s, access: {all: %t}}
`, port, filepath.Join(dir, "slos"), c.store, c.prometheus, c.cacheTTL, c.logLevel, c.accessAll),
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &loadServer{url: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &lockedWriter{w: &bytes.Buffer{}}}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", filepath.Join(dir, "slogate.yaml")},
			func(k string) string { return map[string]string{"CI_TOKEN": ciToken}[k] }, io.Discard, s.logs)
	}()
	b.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("serve returned %v", err)
			}
		case <-time.After(40 * time.Second):
			b.Error("serve did not stop within 40s of its context ending")
		}
		if b.Failed() {
			b.Logf("slogate logs:\n%s", s.logs.String())
		}
	})
	testenv.WaitHTTP(b, nil, s.url+"/healthz", 30*time.Second)
	s.waitFirstEvaluation(b)
	return s
}

var evaluationRanOK = regexp.MustCompile(`(?m)^slogate_evaluation_runs_total\{outcome="ok"\} [1-9]`)

func (s *loadServer) waitFirstEvaluation(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.url + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if evaluationRanOK.Match(body) {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the first scheduled evaluation did not finish within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends one request with the ci token and returns the status and
// body.
func (s *loadServer) call(b *testing.B, method, path string, body any) (int, []byte) {
	b.Helper()
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ciToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// ask asks loadAsk once and returns the answer and its body.
func (s *loadServer) ask(b *testing.B) (gate.Answer, []byte) {
	b.Helper()
	status, body := s.call(b, http.MethodGet, "/v1/gate?"+loadAsk.Encode(), nil)
	var a gate.Answer
	if err := json.Unmarshal(body, &a); status != http.StatusOK || err != nil {
		b.Fatalf("GET /v1/gate: %d %s", status, body)
	}
	return a, body
}

// deployCanary records cart v2's deploy, started at deployed.
func (s *loadServer) deployCanary(b *testing.B, deployed time.Time) {
	b.Helper()
	status, body := s.call(b, http.MethodPost, "/v1/deploys", map[string]any{
		"service": "cart", "environment": "production", "version": "v2", "previousVersion": "v1",
		"startedAt": deployed.Format(time.RFC3339), "strategy": "canary",
	})
	if status != http.StatusCreated {
		b.Fatalf("POST /v1/deploys: %d %s", status, body)
	}
}

// startLoadPrometheus starts a Prometheus with 30 days of cart's traffic
// ending now: v1 at 10 req/s, and the canary v2 from 20 minutes ago at
// 2 req/s, both at 0.02 % errors (the canary is promoted). It returns the
// server and when v2 was deployed.
func startLoadPrometheus(b *testing.B) (*testenv.Prometheus, time.Time) {
	b.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-30*24*time.Hour - time.Hour)
	deployed := now.Add(-20 * time.Minute)
	var om testenv.OpenMetrics
	traffic := func(version string, phases ...testenv.Phase) {
		om.Counter("http_requests", testenv.Requests("http_requests",
			map[string]string{"service": "cart", "version": version}, start, time.Minute, phases...)...)
	}
	traffic("v1", testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})
	traffic("v2", testenv.Phase{Until: deployed, Rate: 0}, testenv.Phase{Until: now, Rate: 2, ErrorRatio: 0.0002})
	return testenv.StartPrometheus(b, om.String()), deployed
}

// sumRPS is the rate over several runs: their answers over their time.
func sumRPS(runs []loadFigures) float64 {
	var n int64
	var secs float64
	for _, r := range runs {
		n += r.Requests
		secs += r.Seconds
	}
	return float64(n) / secs
}

// meanOf averages a figure over runs.
func meanOf(runs []loadFigures, f func(loadFigures) float64) float64 {
	var sum float64
	for _, r := range runs {
		sum += f(r)
	}
	return sum / float64(len(runs))
}

func p50(f loadFigures) float64 { return f.P50 }
func p99(f loadFigures) float64 { return f.P99 }

// BenchmarkLoadGateCached: cached gate answers per second (gate.cacheTTL
// 1h, warmed by one ask) on GET /v1/gate with a bearer token, against a
// bare net/http handler on its own loopback listener that encodes the very
// same answer with encoding/json. Both with -c 16 -d 5s, alternated twice.
// Goal: slogate/bare ≥ 0.8 (issue 13); logging-every-request/bare is
// slogate with log.access.all (one line per request, as before sampling).
func BenchmarkLoadGateCached(b *testing.B) {
	lg := buildLoadgen(b)
	prom, deployed := startLoadPrometheus(b)
	s := startLoadServer(b, loadConfig{prometheus: prom.URL, cacheTTL: "1h"})
	s.deployCanary(b, deployed)
	s.ask(b) // warms the cache
	a, _ := s.ask(b)
	if !a.Cached {
		b.Fatalf("the second ask was not answered from the cache: %+v", a)
	}
	// Today's logging (one info line per request) on a second slogate, in
	// the same run: the figure before sampling.
	all := startLoadServer(b, loadConfig{prometheus: prom.URL, cacheTTL: "1h", accessAll: true})
	all.deployCanary(b, deployed)
	all.ask(b)
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(a)
	}))
	b.Cleanup(bare.Close)
	b.Logf("the answer: %s, %q, %d checks, cached", a.Decision, a.Reason, len(a.Checks))

	gateURL := s.url + "/v1/gate?" + loadAsk.Encode()
	args := append([]string{"-c", "16", "-d", "5s"}, loadAuth...)
	var gateRuns, bareRuns, allRuns []loadFigures
	for b.Loop() {
		for range 2 {
			g := lg.run(b, gateURL, args...)
			r := lg.run(b, bare.URL+"/v1/gate?"+loadAsk.Encode(), args...)
			l := lg.run(b, all.url+"/v1/gate?"+loadAsk.Encode(), args...)
			b.Logf("slogate: %s", g)
			b.Logf("bare:    %s", r)
			b.Logf("all-log: %s", l)
			gateRuns, bareRuns, allRuns = append(gateRuns, g), append(bareRuns, r), append(allRuns, l)
		}
	}
	rps, bareRPS := sumRPS(gateRuns), sumRPS(bareRuns)
	b.ReportMetric(sumRPS(allRuns)/bareRPS, "logging-every-request/bare")
	b.ReportMetric(rps, "answers/s")
	b.ReportMetric(bareRPS, "bare-answers/s")
	b.ReportMetric(rps/bareRPS, "slogate/bare")
	b.ReportMetric(meanOf(gateRuns, p99), "p99-ms")
	b.ReportMetric(meanOf(bareRuns, p99), "bare-p99-ms")
}

// BenchmarkLoadIdenticalConcurrentAsks: 100 identical asks at once (-c 100
// -n 100) with the cache off (gate.cacheTTL 0s) must run one evaluation,
// the others waiting for its answer. Evaluations are counted by a reverse
// proxy in front of Prometheus: the instant queries of the 100 asks over
// those of one ask alone, measured just before (the baseline). Goal: 1.
func BenchmarkLoadIdenticalConcurrentAsks(b *testing.B) {
	lg := buildLoadgen(b)
	prom, deployed := startLoadPrometheus(b)
	proxyURL, queries := countingProxy(b, prom.URL)
	s := startLoadServer(b, loadConfig{prometheus: proxyURL, cacheTTL: "0s"})
	s.deployCanary(b, deployed)

	gateURL := s.url + "/v1/gate?" + loadAsk.Encode()
	var evaluations, perEvaluation float64
	var ones, hundreds []loadFigures
	for b.Loop() {
		queries.Store(0)
		one := lg.run(b, gateURL, append([]string{"-c", "1", "-n", "1"}, loadAuth...)...)
		q1 := queries.Swap(0)
		if q1 == 0 {
			b.Fatal("one ask sent no query to Prometheus: is the cache off?")
		}
		many := lg.run(b, gateURL, append([]string{"-c", "100", "-n", "100"}, loadAuth...)...)
		q100 := queries.Swap(0)
		b.Logf("1 ask:    %s; %d queries", one, q1)
		b.Logf("100 asks: %s; %d queries = %.2f evaluations", many, q100, float64(q100)/float64(q1))
		evaluations += float64(q100) / float64(q1)
		perEvaluation += float64(q1)
		ones, hundreds = append(ones, one), append(hundreds, many)
	}
	n := float64(len(ones))
	b.ReportMetric(evaluations/n, "evaluations/100-asks")
	b.ReportMetric(perEvaluation/n, "queries/evaluation")
	b.ReportMetric(meanOf(ones, p50), "one-ask-ms")
	b.ReportMetric(meanOf(hundreds, p99), "p99-of-100-ms")
}

// BenchmarkLoadDeploys: durable deploy events per second (POST /v1/deploys,
// each with its own Idempotency-Key and body) on SQLite, the default store
// (synchronous=FULL), and on PostgreSQL (testenv's server, which runs with
// fsync off), against a bare net/http handler that decodes the same JSON
// and INSERTs a row with database/sql into a table of the same database.
// Both with -c 16 -d 5s, alternated twice. Goal: 5,000 deploys/s on SQLite.
func BenchmarkLoadDeploys(b *testing.B) {
	lg := buildLoadgen(b)
	b.Run("SQLite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "data", "slogate.db")
		s := startLoadServer(b, loadConfig{prometheus: testenv.DownURL(b), store: "sqlite:" + path, cacheTTL: "0s"})
		// The store's own writer settings: one connection, WAL, FULL.
		db, err := sql.Open("sqlite", path+"?_busy_timeout=10000&_foreign_keys=1&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate")
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		b.Cleanup(func() { db.Close() })
		var mode string
		var synchronous int
		if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			b.Fatalf("baseline journal_mode %q (%v), want wal", mode, err)
		}
		if err := db.QueryRow("PRAGMA synchronous").Scan(&synchronous); err != nil || synchronous != 2 {
			b.Fatalf("baseline synchronous %d (%v), want 2 (FULL)", synchronous, err)
		}
		benchDeploys(b, lg, s, db, func(int) string { return "?" })
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		dsn := testenv.StartPostgres(b)
		s := startLoadServer(b, loadConfig{prometheus: testenv.DownURL(b), store: dsn, cacheTTL: "0s"})
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			b.Fatal(err)
		}
		// pgxpool's default, which the store keeps.
		db.SetMaxOpenConns(max(4, runtime.NumCPU()))
		db.SetMaxIdleConns(max(4, runtime.NumCPU()))
		b.Cleanup(func() { db.Close() })
		benchDeploys(b, lg, s, db, func(i int) string { return fmt.Sprintf("$%d", i) })
	})
}

// bareDeploy is the body the baseline decodes: the fields the loadgen sends.
type bareDeploy struct {
	Service         string `json:"service"`
	Environment     string `json:"environment"`
	Version         string `json:"version"`
	PreviousVersion string `json:"previousVersion"`
	Commit          string `json:"commit"`
	Strategy        string `json:"strategy"`
}

// bareDeploys is the baseline: decode, one INSERT, 201 with the row.
func bareDeploys(db *sql.DB, ph func(int) string) http.Handler {
	var marks []string
	for i := range 8 {
		marks = append(marks, ph(i+1))
	}
	insert := `INSERT INTO load_bench_deploys (id, idempotency_key, service, environment, version, previous_version, commit_sha, strategy, created_at)
VALUES (` + strings.Join(marks, ", ") + `, ` + ph(9) + `)`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d bareDeploy
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&d); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := "dep_" + rand.Text()
		now := time.Now().UTC()
		if _, err := db.ExecContext(r.Context(), insert, id, r.Header.Get("Idempotency-Key"), d.Service, d.Environment,
			d.Version, d.PreviousVersion, d.Commit, d.Strategy, now.UnixMicro()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(struct {
			ID string `json:"id"`
			bareDeploy
			CreatedAt time.Time `json:"createdAt"`
		}{id, d, now})
	})
}

func benchDeploys(b *testing.B, lg loadgen, s *loadServer, db *sql.DB, ph func(int) string) {
	b.Helper()
	if _, err := db.Exec(`CREATE TABLE load_bench_deploys (
  id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
  service TEXT NOT NULL, environment TEXT NOT NULL, version TEXT NOT NULL,
  previous_version TEXT NOT NULL, commit_sha TEXT NOT NULL, strategy TEXT NOT NULL,
  created_at BIGINT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	bare := httptest.NewServer(bareDeploys(db, ph))
	b.Cleanup(bare.Close)

	// Every run has its own keys and bodies: {{n}} is the request number,
	// the round tells the runs apart.
	dir := b.TempDir()
	round := 0
	deploys := func(target string) loadFigures {
		round++
		body := filepath.Join(dir, fmt.Sprintf("deploy-%d.json", round))
		if err := os.WriteFile(body, fmt.Appendf(nil,
			`{"service":"cart","environment":"production","version":"r%[1]d-{{n}}","previousVersion":"v1","commit":"c%[1]d-{{n}}","strategy":"canary"}`,
			round), 0o644); err != nil {
			b.Fatal(err)
		}
		return lg.run(b, target, slices.Concat([]string{"-method", "POST", "-body", body, "-unique", "-c", "16", "-d", "5s",
			"-header", "Content-Type: application/json", "-header", fmt.Sprintf("Idempotency-Key: load-%d-{{n}}", round)}, loadAuth)...)
	}
	var gateRuns, bareRuns []loadFigures
	for b.Loop() {
		for range 2 {
			g := deploys(s.url + "/v1/deploys")
			r := deploys(bare.URL + "/v1/deploys")
			b.Logf("slogate: %s", g)
			b.Logf("bare:    %s", r)
			gateRuns, bareRuns = append(gateRuns, g), append(bareRuns, r)
		}
	}
	rps, bareRPS := sumRPS(gateRuns), sumRPS(bareRuns)
	b.ReportMetric(rps, "deploys/s")
	b.ReportMetric(bareRPS, "bare-inserts/s")
	b.ReportMetric(rps/bareRPS, "slogate/bare")
	b.ReportMetric(meanOf(gateRuns, p99), "p99-ms")
	b.ReportMetric(meanOf(bareRuns, p99), "bare-p99-ms")
}

// BenchmarkLoadGateUncached: p50/p99 latency of an uncached answer (the
// cache off) against the real Prometheus, -c 4 -n 200, against the same
// number of raw PromQL instant queries at the same concurrency, sent to
// Prometheus' /api/v1/query: the most expensive single query of the
// evaluation (found by timing each of one evaluation's queries 5 times).
// An evaluation runs its queries concurrently, so this baseline is its
// floor.
//
// With the cache off, identical asks in flight together still share one
// evaluation (de-duplication): the 4 workers ask the same question, so at
// -c 4 fewer than 200 evaluations run; evaluations/200-asks says how many.
// The c1 sub-benchmark asks one at a time, where every answer is a fresh
// evaluation. slogate logs at debug here, to list and count the queries; a
// handful of log lines per answer.
func BenchmarkLoadGateUncached(b *testing.B) {
	lg := buildLoadgen(b)
	prom, deployed := startLoadPrometheus(b)
	s := startLoadServer(b, loadConfig{prometheus: prom.URL, cacheTTL: "0s", logLevel: "debug"})
	s.deployCanary(b, deployed)

	mark := len(s.logs.String())
	a, _ := s.ask(b)
	sent := loggedQueries(s.logs.String()[mark:])
	if len(sent) == 0 {
		b.Fatalf("no \"prometheus query\" in the debug log of one ask")
	}
	heaviest, took := heaviestQuery(b, prom.URL, sent)
	// Logged by each sub-benchmark: a parent's log is not printed.
	about := fmt.Sprintf("the answer: %s, %q; %d queries, the heaviest alone takes %.2f ms (median of 5): %s",
		a.Decision, a.Reason, len(sent), took, heaviest.Query)
	bareURL := prom.URL + "/api/v1/query?" + url.Values{"query": {heaviest.Query}, "time": {heaviest.At}}.Encode()
	gateURL := s.url + "/v1/gate?" + loadAsk.Encode()

	for _, c := range []string{"4", "1"} {
		b.Run("c"+c, func(b *testing.B) {
			b.Log(about)
			var gateRuns, bareRuns []loadFigures
			var evaluations float64
			for b.Loop() {
				mark := len(s.logs.String())
				g := lg.run(b, gateURL, append([]string{"-c", c, "-n", "200"}, loadAuth...)...)
				evals := float64(len(loggedQueries(s.logs.String()[mark:]))) / float64(len(sent))
				r := lg.run(b, bareURL, "-c", c, "-n", "200")
				b.Logf("slogate: %s; %.1f evaluations", g, evals)
				b.Logf("bare:    %s", r)
				gateRuns, bareRuns = append(gateRuns, g), append(bareRuns, r)
				evaluations += evals
			}
			b.ReportMetric(meanOf(gateRuns, p50), "p50-ms")
			b.ReportMetric(meanOf(gateRuns, p99), "p99-ms")
			b.ReportMetric(meanOf(bareRuns, p50), "bare-p50-ms")
			b.ReportMetric(meanOf(bareRuns, p99), "bare-p99-ms")
			b.ReportMetric(meanOf(gateRuns, p50)/meanOf(bareRuns, p50), "p50-slogate/bare")
			b.ReportMetric(evaluations/float64(len(gateRuns)), "evaluations/200-asks")
			if c == "1" {
				// A second floor, for one ask at a time: every query
				// of the evaluation at once, as the evaluation sends
				// them, 50 times in a row.
				all := allQueries(b, prom.URL, sent, 50)
				b.Logf("bare, all %d queries at once: p50 %.2f ms, p99 %.2f ms", len(sent), all.P50, all.P99)
				b.ReportMetric(all.P50, "bare-all-p50-ms")
				b.ReportMetric(all.P99, "bare-all-p99-ms")
			}
		})
	}
}

// allQueries sends every query at once, rounds times one after the other,
// and returns the p50 and p99 of the rounds' durations (the slowest query
// of each).
func allQueries(b *testing.B, promURL string, queries []promQuery, rounds int) loadFigures {
	b.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = len(queries)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var took []time.Duration
	for range rounds {
		began := time.Now()
		errs := make([]error, len(queries))
		var wg sync.WaitGroup
		for i, q := range queries {
			wg.Go(func() {
				resp, err := client.Get(promURL + "/api/v1/query?" + url.Values{"query": {q.Query}, "time": {q.At}}.Encode())
				if err != nil {
					errs[i] = err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs[i] = fmt.Errorf("query %s: %s", q.Query, resp.Status)
				}
			})
		}
		wg.Wait()
		took = append(took, time.Since(began))
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(took)
	at := func(p float64) float64 {
		i := max(0, int(math.Ceil(p/100*float64(len(took))))-1)
		return float64(took[i]) / float64(time.Millisecond)
	}
	return loadFigures{Requests: int64(rounds), P50: at(50), P99: at(99)}
}

// promQuery is one instant query an evaluation sent, from slogate's debug
// log.
type promQuery struct {
	Msg   string `json:"msg"`
	Query string `json:"query"`
	At    string `json:"at"`
}

// loggedQueries are the "prometheus query" lines of slogate's JSON log.
func loggedQueries(logs string) []promQuery {
	var sent []promQuery
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, `"prometheus query"`) {
			continue
		}
		var q promQuery
		if json.Unmarshal([]byte(line), &q) == nil && q.Msg == "prometheus query" {
			sent = append(sent, q)
		}
	}
	return sent
}

// heaviestQuery times each query 5 times, one at a time, and returns the
// one with the largest median, and that median in milliseconds.
func heaviestQuery(b *testing.B, promURL string, queries []promQuery) (promQuery, float64) {
	b.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	var heaviest promQuery
	var worst time.Duration
	for _, q := range queries {
		var times []time.Duration
		for range 5 {
			began := time.Now()
			resp, err := client.Get(promURL + "/api/v1/query?" + url.Values{"query": {q.Query}, "time": {q.At}}.Encode())
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("query %s at %s: %s", q.Query, q.At, resp.Status)
			}
			times = append(times, time.Since(began))
		}
		slices.Sort(times)
		if times[2] > worst {
			heaviest, worst = q, times[2]
		}
	}
	return heaviest, float64(worst) / float64(time.Millisecond)
}
