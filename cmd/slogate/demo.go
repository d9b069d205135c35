package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// slogate demo: a living demo world on this machine. A traffic generator
// serves /metrics for the demo services (each version healthy or
// burning), a real Prometheus (the Debian package, started here on a free
// loopback port, data under --dir) scrapes it every 5s, slogate serves
// the gate and the web UI over that Prometheus, and a driver rolls new
// versions out, records their deploys and asks the gate every 10s, so
// promotes and halts appear in the UI within two minutes. Ctrl-C stops
// everything (Prometheus by its PID).

// demoSLOs are the demo world's objectives and policies: short
// verification windows so that answers come within minutes.
const demoSLOs = `# The demo world of slogate demo (written by it; changes are overwritten).
apiVersion: openslo/v1
kind: SLI
metadata: {name: demo-requests-ok}
spec:
  ratioMetric:
    counter: true
    good: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{code!~"5.."})'}}}
    total: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total)'}}}
`

const demoServiceSLO = `---
apiVersion: openslo/v1
kind: SLI
metadata: {name: %[1]s-requests-ok}
spec:
  ratioMetric:
    counter: true
    good: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{service="%[1]s", code!~"5.."})'}}}
    total: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{service="%[1]s"})'}}}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: %[1]s-availability
  labels: {team: %[2]s}
spec:
  service: %[1]s
  description: requests of %[1]s answered without a 5xx
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicatorRef: %[1]s-requests-ok
  objectives: [{target: %[3]s}]
---
apiVersion: slogate.dev/v1
kind: GatePolicy
metadata: {name: %[1]s-production}
spec:
  service: %[1]s
  environments: [production]
  budget: {minRemaining: 0}
  verification: {minDuration: 1m, minEvents: 200, maxBurnRate: 2, versionLabel: version}
  onNoData: wait
`

// demoService is one service of the demo world.
type demoService struct {
	Name, Team, Target string
	Rate               float64 // requests per second
	BaseErrors         float64 // error ratio of the running version
	CanaryShare        float64 // share of traffic a new version gets while it is judged
	// Burning says whether rollout n (2, 3, ...) burns its budget.
	Burning func(n int) bool
	// Rollouts: whether the driver rolls versions out at all.
	Rollouts bool
	// History is the error ratio of the day before the demo started
	// (backfilled into Prometheus on the first run), and Incident an
	// hour of it with this error ratio, 5 hours ago (0: none).
	History, Incident float64
}

// Error ratios of healthy and burning versions.
const (
	demoHealthy = 0.0005
	demoBurning = 0.05
)

var demoServices = []demoService{
	{Name: "checkout", Team: "shop", Target: "0.99", Rate: 40, BaseErrors: demoHealthy, CanaryShare: 0.3, Rollouts: true,
		Burning: func(n int) bool { return n%3 == 0 }, History: 0.002},
	{Name: "search", Team: "discovery", Target: "0.99", Rate: 30, BaseErrors: demoHealthy, CanaryShare: 0.3, Rollouts: true,
		Burning: func(n int) bool { return n%2 == 0 }, History: 0.003, Incident: 0.03},
	{Name: "payments", Team: "payments", Target: "0.995", Rate: 20, BaseErrors: 0.003, History: 0.0025},
}

func demoSLOFile() string {
	var b strings.Builder
	b.WriteString(strings.SplitN(demoSLOs, "\n", 2)[0] + "\n")
	for i, s := range demoServices {
		text := fmt.Sprintf(demoServiceSLO, s.Name, s.Team, s.Target)
		if i == 0 {
			text = strings.TrimPrefix(text, "---\n")
		}
		b.WriteString(text)
	}
	return b.String()
}

// trafficGen counts the requests of every service and version and serves
// them as Prometheus counters.
type trafficGen struct {
	mu sync.Mutex
	// versions[service] are the versions serving, with their share of
	// traffic and error ratio.
	versions map[string][]genVersion
	rate     map[string]float64
	good     map[[2]string]float64
	bad      map[[2]string]float64
	carry    map[[2]string]float64
	badCarry map[[2]string]float64
}

type genVersion struct {
	version string
	share   float64
	errors  float64
}

func newTrafficGen() *trafficGen {
	g := &trafficGen{versions: map[string][]genVersion{}, rate: map[string]float64{},
		good: map[[2]string]float64{}, bad: map[[2]string]float64{}, carry: map[[2]string]float64{}, badCarry: map[[2]string]float64{}}
	for _, s := range demoServices {
		g.rate[s.Name] = s.Rate
		g.set(s.Name, "v1", 1, s.BaseErrors)
	}
	return g
}

// set gives a version its share and error ratio (share 0: it serves
// nothing, but its series stay).
func (g *trafficGen) set(service, version string, share, errRatio float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := [2]string{service, version}
	if _, ok := g.good[k]; !ok {
		g.good[k], g.bad[k] = 0, 0
	}
	vs := g.versions[service]
	for i := range vs {
		if vs[i].version == version {
			vs[i].share, vs[i].errors = share, errRatio
			return
		}
	}
	g.versions[service] = append(vs, genVersion{version, share, errRatio})
}

// tick adds dt of traffic: whole requests, the fractions carried over.
func (g *trafficGen) tick(dt time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for svc, vs := range g.versions {
		total := 0.0
		for _, v := range vs {
			total += v.share
		}
		if total == 0 {
			continue
		}
		for _, v := range vs {
			k := [2]string{svc, v.version}
			n := g.rate[svc]*dt.Seconds()*v.share/total + g.carry[k]
			whole := math.Floor(n)
			g.carry[k] = n - whole
			g.badCarry[k] += whole * v.errors
			bad := math.Floor(g.badCarry[k])
			g.badCarry[k] -= bad
			g.good[k] += whole - bad
			g.bad[k] += bad
		}
	}
}

func (g *trafficGen) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	g.mu.Lock()
	keys := make([][2]string, 0, len(g.good))
	for k := range g.good {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	var b strings.Builder
	b.WriteString("# HELP http_requests_total Requests of the demo services.\n# TYPE http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "http_requests_total{service=%q,version=%q,code=\"200\"} %g\n", k[0], k[1], g.good[k])
		fmt.Fprintf(&b, "http_requests_total{service=%q,version=%q,code=\"500\"} %g\n", k[0], k[1], g.bad[k])
	}
	g.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = io.WriteString(w, b.String())
}

type demoFlags struct {
	dir, listen, prometheus string
	pause                   time.Duration
}

func runDemo(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "demo", "demo [--dir DIR] [--listen ADDR] [--prometheus-bin PATH]")
	var f demoFlags
	fs.StringVar(&f.dir, "dir", "data/demo", "directory of the demo's Prometheus data, SQLite store, SLO file and logs")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "slogate's address (a free loopback port when it is taken)")
	fs.StringVar(&f.prometheus, "prometheus-bin", "prometheus", "the Prometheus server binary (make deps installs Debian's)")
	fs.DurationVar(&f.pause, "pause", 40*time.Second, "time between a decision and the next rollout of a service")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageError("demo takes no arguments (got %q)", rest)
	}
	promBin, err := exec.LookPath(f.prometheus)
	if err != nil {
		return usageError("demo: no Prometheus server (%s): run make deps (apt-get install prometheus)", f.prometheus)
	}
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "slos"), 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &syncWriter{w: env.stdout}
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}

	// The traffic generator.
	gen := newTrafficGen()
	genLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	genSrv := &http.Server{Handler: gen, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = genSrv.Serve(genLn) }()
	defer genSrv.Close()
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				gen.tick(now.Sub(last))
				last = now
			}
		}
	}()

	// Prometheus, scraping the generator every 5s.
	prom, err := startDemoPrometheus(ctx, promBin, dir, genLn.Addr().String())
	if err != nil {
		return err
	}
	defer prom.stop()

	// slogate.
	listen := f.listen
	if ln, err := net.Listen("tcp", listen); err != nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		listen = ln.Addr().String()
		ln.Close()
	} else {
		ln.Close()
	}
	sloFile := filepath.Join(dir, "slos", "demo.yaml")
	if err := os.WriteFile(sloFile, []byte(demoSLOFile()), 0o644); err != nil {
		return err
	}
	cfgFile := filepath.Join(dir, "slogate.yaml")
	cfg := fmt.Sprintf("listen: %s\nslos: [%s]\nstore: sqlite:%s\nsources:\n  prometheus: {url: %q, timeout: 5s}\nevaluation: {schedule: \"@every 15s\"}\nlog: {level: info, format: text}\n",
		listen, filepath.Join(dir, "slos"), filepath.Join(dir, "slogate.db"), prom.url)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "slogate.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	serveDone := make(chan error, 1)
	go func() {
		serveDone <- run(ctx, []string{"serve", "--config", cfgFile}, env.getenv, io.Discard, logFile)
	}()
	base := "http://" + listen
	if err := waitReady(ctx, base+"/readyz", 30*time.Second, serveDone); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nslogate demo: open the UI at %s/\n\n", base)
	fmt.Fprintf(out, "  traffic generator  http://%s/metrics  (checkout, search, payments; new versions healthy or burning)\n", genLn.Addr())
	fmt.Fprintf(out, "  Prometheus         %s  (pid %d, data in %s)\n", prom.url, prom.cmd.Process.Pid, prom.data)
	fmt.Fprintf(out, "  slogate            %s  (log in %s)\n", base, logFile.Name())
	fmt.Fprintf(out, "  first answers in about a minute and a half; Ctrl-C stops everything\n\n")

	var wg sync.WaitGroup
	c := &demoClient{base: base, http: &http.Client{Timeout: 15 * time.Second}}
	for i, s := range demoServices {
		if !s.Rollouts {
			continue
		}
		wg.Go(func() { driveService(ctx, c, gen, s, time.Duration(i)*3*time.Second, f.pause, say) })
	}
	var serveErr error
	select {
	case <-ctx.Done():
		serveErr = <-serveDone
	case serveErr = <-serveDone:
		cancel()
	}
	wg.Wait()
	fmt.Fprintln(out, "slogate demo: stopping")
	return serveErr
}

func waitReady(ctx context.Context, u string, timeout time.Duration, died <-chan error) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: %s not ready within %s", u, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-died:
			return fmt.Errorf("demo: slogate stopped: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// demoProm is the demo's Prometheus process.
type demoProm struct {
	cmd  *exec.Cmd
	url  string
	data string
	done chan struct{}
}

func startDemoPrometheus(ctx context.Context, bin, dir, target string) (*demoProm, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("global: {scrape_interval: 5s, evaluation_interval: 5s}\nscrape_configs:\n  - job_name: demo\n    static_configs: [{targets: [%q]}]\n", target)), 0o644); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "prometheus")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(data); errors.Is(err, os.ErrNotExist) {
		if err := backfillDemo(ctx, dir, data, time.Now()); err != nil {
			logf.Close()
			return nil, err
		}
	}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+data, "--web.listen-address="+addr, "--storage.tsdb.retention.time=30d")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: Ctrl-C reaches the demo, which stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("demo: starting %s: %w", bin, err)
	}
	p := &demoProm{cmd: cmd, url: "http://" + addr, data: data, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("demo: Prometheus exited at start; see %s", logf.Name())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("demo: Prometheus not ready within 60s; see %s", logf.Name())
		}
	}
}

// demoHistory is the day of traffic before the demo, in OpenMetrics
// text: every service's v1 at its rate and History error ratio, one
// sample a minute, ending at end.
func demoHistory(end time.Time) string {
	const step = time.Minute
	var b strings.Builder
	b.WriteString("# TYPE http_requests counter\n")
	start := end.Add(-24 * time.Hour).Truncate(step)
	for _, s := range demoServices {
		for _, code := range []string{"200", "500"} {
			v := 0.0
			for t := start; !t.After(end); t = t.Add(step) {
				e := s.History
				if ago := end.Sub(t); s.Incident > 0 && ago > 5*time.Hour && ago <= 6*time.Hour {
					e = s.Incident
				}
				n := s.Rate * step.Seconds()
				if code == "500" {
					v += math.Round(n * e)
				} else {
					v += n - math.Round(n*e)
				}
				fmt.Fprintf(&b, "http_requests_total{code=%q,service=%q,version=\"v1\"} %g %d\n", code, s.Name, v, t.Unix())
			}
		}
	}
	b.WriteString("# EOF\n")
	return b.String()
}

// backfillDemo writes the day before the demo into Prometheus' data
// directory (promtool tsdb create-blocks-from openmetrics), so that the
// budgets have a past. Without promtool the demo starts with no past.
func backfillDemo(ctx context.Context, dir, data string, now time.Time) error {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		return nil
	}
	om := filepath.Join(dir, "history.om")
	if err := os.WriteFile(om, []byte(demoHistory(now.Add(-time.Minute))), 0o644); err != nil {
		return err
	}
	defer os.Remove(om)
	ctx, cancel := context.WithTimeoutCause(ctx, 2*time.Minute, errors.New("promtool backfill took longer than 2m"))
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", om, data).CombinedOutput()
	if err != nil {
		return fmt.Errorf("demo: backfilling the day before: promtool: %w\n%s", err, out)
	}
	return nil
}

// stop ends Prometheus by its PID: SIGTERM, then SIGKILL after 10s.
func (p *demoProm) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// demoClient talks to the demo's slogate.
type demoClient struct {
	base string
	http *http.Client
}

func (c *demoClient) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

type demoAnswer struct {
	Decision     string `json:"decision"`
	Reason       string `json:"reason"`
	EvaluationID string `json:"evaluationId"`
	Detail       string `json:"detail"`
}

// driveService rolls versions of a service out, one after the other.
func driveService(ctx context.Context, c *demoClient, gen *trafficGen, s demoService, delay, pause time.Duration, say func(string, ...any)) {
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	if !sleep(delay) {
		return
	}
	current := "v1"
	for n := 2; ; n++ {
		version := fmt.Sprintf("v%d", n)
		burning := s.Burning(n)
		errRatio, kind := demoHealthy, "healthy"
		if burning {
			errRatio, kind = demoBurning, "burning"
		}
		// The version's series exist (at 0) before its deploy begins.
		gen.set(s.Name, version, 0, errRatio)
		if !sleep(6 * time.Second) {
			return
		}
		var dep struct {
			ID string `json:"id"`
		}
		code, err := c.do(ctx, http.MethodPost, "/v1/deploys", map[string]any{
			"service": s.Name, "environment": "production", "version": version, "previousVersion": current,
			"strategy": "canary", "commit": fmt.Sprintf("%07x", n*0x1f3a5b), "pipelineUrl": "https://ci.example.com/" + s.Name + "/" + version,
		}, &dep)
		if err != nil || code != http.StatusCreated {
			if ctx.Err() == nil {
				say("%s %s: recording the deploy failed (%d %v); trying again", s.Name, version, code, err)
			}
			if !sleep(5 * time.Second) {
				return
			}
			n--
			continue
		}
		gen.set(s.Name, version, s.CanaryShare, errRatio)
		say("%-8s %s deployed as a canary on %.0f %% of traffic (%s: %.2f %% errors)", s.Name, version, s.CanaryShare*100, kind, errRatio*100)
		decision := ""
		for decision == "" {
			if !sleep(10 * time.Second) {
				return
			}
			var a demoAnswer
			q := url.Values{"service": {s.Name}, "environment": {"production"}, "deployId": {dep.ID}}
			code, err := c.do(ctx, http.MethodGet, "/v1/gate?"+q.Encode(), nil, &a)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					say("%-8s %s: asking the gate failed: %v", s.Name, version, err)
				}
			case code == http.StatusServiceUnavailable:
				say("%-8s %s: a source failed, asking again: %s", s.Name, version, a.Detail)
			case code != http.StatusOK:
				say("%-8s %s: the gate answered %d: %s", s.Name, version, code, a.Detail)
			case a.Decision == "wait":
				say("%-8s %s → wait: %s", s.Name, version, a.Reason)
			default:
				decision = a.Decision
				say("%-8s %s → %s: %s  %s/ui/decisions/%s", s.Name, version, strings.ToUpper(a.Decision), a.Reason, c.base, a.EvaluationID)
			}
		}
		status := "succeeded"
		if decision == "halt" {
			status = "rolledBack"
			gen.set(s.Name, version, 0, errRatio)
		} else {
			gen.set(s.Name, version, 1, errRatio)
			gen.set(s.Name, current, 0, 0)
			current = version
		}
		if _, err := c.do(ctx, http.MethodPatch, "/v1/deploys/"+dep.ID, map[string]any{"status": status}, nil); err != nil && ctx.Err() == nil {
			say("%-8s %s: finishing the deploy failed: %v", s.Name, version, err)
		}
		if !sleep(pause) {
			return
		}
	}
}

// syncWriter serialises the demo's lines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
