package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// buildSlogate builds cmd/slogate of the module checked out at dir (the
// working tree when dir is "") into out.
func buildSlogate(tb testing.TB, dir, out string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/slogate")
	cmd.Dir = dir
	if dir == "" {
		cmd.Dir = "../.."
	}
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if dir != "" {
		// A tree of its own: its go.mod may be rewritten there.
		cmd.Env = append(cmd.Env, "GOFLAGS=-mod=mod")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build in %s: %v\n%s", cmd.Dir, err, b)
	}
}

// baselineTree writes the files of git revision rev (today's code: main)
// into a temporary directory.
func baselineTree(tb testing.TB, rev string) string {
	tb.Helper()
	dir := tb.TempDir()
	archive := exec.Command("git", "archive", "--format=tar", rev)
	archive.Dir = "../.."
	tarball, err := archive.Output()
	if err != nil {
		tb.Fatalf("git archive %s: %v", rev, err)
	}
	untar := exec.Command("tar", "-x", "-C", dir)
	untar.Stdin = strings.NewReader(string(tarball))
	if b, err := untar.CombinedOutput(); err != nil {
		tb.Fatalf("tar: %v\n%s", err, b)
	}
	return dir
}

var (
	runsOK       = regexp.MustCompile(`(?m)^slogate_evaluation_runs_total\{outcome="ok"\} ([0-9.e+]+)`)
	evalDuration = regexp.MustCompile(`(?m)^slogate_evaluation_duration_seconds_sum ([0-9.e+-]+)`)
)

// rssAfterRun starts bin serve over copies × 1,000 SLOs, waits for its
// first scheduled run to end and returns its resident set (VmRSS) and
// peak (VmHWM) in MiB, and the run's seconds.
func rssAfterRun(b *testing.B, bin, promURL string, copies int) (rss, hwm, secs float64) {
	b.Helper()
	dir := b.TempDir()
	slos := filepath.Join(dir, "slos")
	if err := os.MkdirAll(slos, 0o755); err != nil {
		b.Fatal(err)
	}
	writeScaleSLOs(b, slos, copies)
	port := testenv.FreePort(b)
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
slos: [%s]
store: "sqlite:%s"
sources:
  prometheus: {url: %q, timeout: 30s}
evaluation: {schedule: "@every 1h"}
log: {level: warn}
`, port, slos, filepath.Join(dir, "slogate.db"), promURL)
	path := filepath.Join(dir, "slogate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	p := testenv.Start(b, filepath.Base(bin), exec.Command(bin, "serve", "--config", path))
	defer p.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.WaitHTTP(b, p, base+"/healthz", 2*time.Minute)
	deadline := time.Now().Add(15 * time.Minute)
	for {
		resp, err := http.Get(base + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if m := runsOK.FindSubmatch(body); m != nil && string(m[1]) != "0" {
				if d := evalDuration.FindSubmatch(body); d != nil {
					secs, _ = strconv.ParseFloat(string(d[1]), 64)
				}
				break
			}
		}
		if time.Now().After(deadline) || p.Exited() {
			b.Fatalf("%s: no scheduled run finished\n%s", bin, p.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	field := func(name string) float64 {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, name+":"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				return kb / 1024
			}
		}
		b.Fatalf("/proc status has no %s", name)
		return 0
	}
	return field("VmRSS"), field("VmHWM"), secs
}

// BenchmarkRSSAfterRun: slogate serve (a process of its own) over 1,000 and
// 10,000 SLOs against a real Prometheus, its resident memory after its
// first scheduled run, a baseline revision (main, or $SLOGATE_BASELINE_REV,
// built from `git archive`) and this tree, in the same run. Figures:
// rss-MiB and hwm-MiB (peak), and run-s, the run's own duration; old-* for
// the baseline.
//
//	SLOGATE_BASELINE_REV=baaf78c go test -run '^$' -bench RSSAfterRun -benchtime 1x -timeout 60m ./cmd/slogate/
func BenchmarkRSSAfterRun(b *testing.B) {
	end := time.Now().UTC().Truncate(time.Minute)
	prom := testenv.StartPrometheus(b, benchData(end))
	bins := b.TempDir()
	cur, old := filepath.Join(bins, "slogate"), filepath.Join(bins, "slogate-main")
	buildSlogate(b, "", cur)
	rev := cmp.Or(os.Getenv("SLOGATE_BASELINE_REV"), "main")
	b.Logf("baseline: %s", rev)
	buildSlogate(b, baselineTree(b, rev), old)
	for _, copies := range []int{1, 10} {
		b.Run(fmt.Sprintf("%dSLOs", copies*1000), func(b *testing.B) {
			for b.Loop() {
				rss, hwm, secs := rssAfterRun(b, cur, prom.URL, copies)
				orss, ohwm, osecs := rssAfterRun(b, old, prom.URL, copies)
				b.ReportMetric(rss, "rss-MiB")
				b.ReportMetric(hwm, "hwm-MiB")
				b.ReportMetric(secs, "run-s")
				b.ReportMetric(orss, "old-rss-MiB")
				b.ReportMetric(ohwm, "old-hwm-MiB")
				b.ReportMetric(osecs, "old-run-s")
			}
		})
	}
}
