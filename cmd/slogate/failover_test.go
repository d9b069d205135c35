package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

var (
	runsOKLine    = regexp.MustCompile(`(?m)^slogate_evaluation_runs_total\{outcome="ok"\} ([0-9.e+]+)$`)
	followerLines = regexp.MustCompile(`(?m)^slogate_evaluation_runs_total\{outcome="skipped_follower"\} ([0-9.e+]+)$`)
)

func counterIn(re *regexp.Regexp, body []byte) float64 {
	m := re.FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestFailoverOfThreeReplicasOnOnePostgres: three `slogate serve`
// processes share one PostgreSQL and evaluate every 3s. One leads (only
// it queries Prometheus on the schedule); it is killed with SIGKILL while
// a run of its is querying; another replica's run starts within one
// schedule interval of the kill, and exactly one of the two survivors
// evaluates from then on.
func TestFailoverOfThreeReplicasOnOnePostgres(t *testing.T) {
	const interval = 3 * time.Second
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-30*24*time.Hour - time.Hour)
	var om testenv.OpenMetrics
	om.Counter("http_requests", testenv.Requests("http_requests",
		map[string]string{"service": "cart", "version": "v1"}, start, time.Minute, testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})...)
	prom := testenv.StartPrometheus(t, om.String())

	// Every instant query goes through a proxy that holds it 200ms (so a
	// run lasts long enough to be killed in) and says when one arrives.
	target, _ := url.Parse(prom.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	queried := make(chan time.Time, 4096)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/query" {
			select {
			case queried <- time.Now():
			default:
			}
			time.Sleep(200 * time.Millisecond) // the peer's latency, not synchronisation
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	dsn := testenv.PostgresDatabase(t, testenv.StartPostgres(t))
	bin := filepath.Join(t.TempDir(), "slogate")
	buildSlogate(t, "", bin)
	dir := t.TempDir()
	slos := filepath.Join(dir, "slos")
	if err := os.MkdirAll(slos, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(slos, "cart.yaml"), []byte(fmt.Sprintf(e2eSLOs, "cart", "http_requests_total")), 0o644); err != nil {
		t.Fatal(err)
	}
	type replica struct {
		p   *testenv.Process
		url string
	}
	var rs []replica
	for i := range 3 {
		port := testenv.FreePort(t)
		cfg := filepath.Join(dir, fmt.Sprintf("slogate-%d.yaml", i))
		body := fmt.Sprintf("listen: 127.0.0.1:%d\nslos: [%s]\nstore: %q\nsources:\n  prometheus: {url: %q, timeout: 10s}\nevaluation: {schedule: \"@every %s\"}\nlog: {level: warn}\n",
			port, slos, dsn, proxy.URL, interval)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		p := testenv.Start(t, fmt.Sprintf("slogate-%d", i), exec.Command(bin, "serve", "--config", cfg))
		u := fmt.Sprintf("http://127.0.0.1:%d", port)
		testenv.WaitHTTP(t, p, u+"/healthz", time.Minute)
		rs = append(rs, replica{p, u})
	}
	metrics := func(r replica) []byte {
		resp, err := http.Get(r.url + "/metrics")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %s waiting until %s", within, what)
			}
		}
	}

	// One leader.
	leader := -1
	waitFor("one replica has evaluated", time.Minute, func() bool {
		n := 0
		for i, r := range rs {
			if counterIn(runsOKLine, metrics(r)) > 0 {
				leader, n = i, n+1
			}
		}
		if n > 1 {
			t.Fatalf("%d replicas evaluated: two leaders", n)
		}
		return n == 1
	})
	// Kill it with SIGKILL while its next run queries.
	for len(queried) > 0 {
		<-queried
	}
	select {
	case <-queried:
	case <-time.After(time.Minute):
		t.Fatal("the leader's next run never queried")
	}
	rs[leader].p.Kill()
	killed := time.Now()
	for len(queried) > 0 {
		<-queried
	}
	// Only a survivor queries from now on: its run starts within one
	// interval (and the proxy's first query of it is slower by at most
	// the time to take the lock and build the first query).
	select {
	case at := <-queried:
		if d := at.Sub(killed); d > interval+time.Second {
			t.Errorf("the next run began %s after the leader's death, more than one interval (%s)", d.Round(time.Millisecond), interval)
		}
	case <-time.After(interval + 10*time.Second):
		t.Fatal("no replica evaluated after the leader's death")
	}
	var survivors []replica
	for i, r := range rs {
		if i != leader {
			survivors = append(survivors, r)
		}
	}
	waitFor("a survivor completes a run", 30*time.Second, func() bool {
		return counterIn(runsOKLine, metrics(survivors[0]))+counterIn(runsOKLine, metrics(survivors[1])) > 0
	})
	// Two more skipped runs on the survivors: one leads, the other follows.
	skips := counterIn(followerLines, metrics(survivors[0])) + counterIn(followerLines, metrics(survivors[1]))
	waitFor("two more follower runs", 30*time.Second, func() bool {
		return counterIn(followerLines, metrics(survivors[0]))+counterIn(followerLines, metrics(survivors[1])) >= skips+2
	})
	okA, okB := counterIn(runsOKLine, metrics(survivors[0])), counterIn(runsOKLine, metrics(survivors[1]))
	if (okA > 0) == (okB > 0) {
		t.Errorf("after the failover, runs ok: %v and %v; want exactly one survivor evaluating", okA, okB)
	}
}
