package main

import (
	"encoding/json"
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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slogate/slogate/alerting/pagerduty"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

var (
	runsOKLine    = regexp.MustCompile(`(?m)^slogate_evaluation_runs_total\{outcome="ok"\} ([0-9.e+]+)$`)
	followerLines = regexp.MustCompile(`(?m)^slogate_evaluation_runs_total\{outcome="skipped_follower"\} ([0-9.e+]+)$`)
	deliveredLine = regexp.MustCompile(`(?m)^slogate_notifications_total\{outcome="delivered",peer="pagerduty"\} ([0-9.e+]+)$`)
	sloSeries     = regexp.MustCompile(`(?m)^slogate_slo_sli\{`)
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
// processes share one PostgreSQL and evaluate every 3s; they page through
// a fake PagerDuty (Events API v2). The SLO burns at 50×, so the leader
// pages; the followers serve its figures from the store, with their age,
// and export none. The leader is killed with SIGKILL while a run of its
// is querying; another replica's run starts within one schedule interval
// of the kill, exactly one survivor evaluates from then on, and it sends
// no second trigger. Then the burn stops (the proxy in front of
// Prometheus switches the series to a calm one): the new leader resolves
// the page. PagerDuty sees exactly one trigger and one resolve for the
// dedup key, and nothing stays open; the real Alertmanager, which held the
// alert the dead leader fired, has it resolved by the new one.
func TestFailoverOfThreeReplicasOnOnePostgres(t *testing.T) {
	const interval = 3 * time.Second
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-30*24*time.Hour - time.Hour)
	labels := map[string]string{"service": "cart", "version": "v1"}
	var om testenv.OpenMetrics
	// 0.02 % errors, then 5 % for the last 2 hours: 50× over every page
	// window, two thirds of the budget left.
	om.Counter("http_requests", testenv.Requests("http_requests", labels, start, time.Minute,
		testenv.Phase{Until: now.Add(-2 * time.Hour), Rate: 10, ErrorRatio: 0.0002}, testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.05})...)
	// The same traffic without the burn.
	om.Counter("http_requests_calm", testenv.Requests("http_requests_calm", labels, start, time.Minute,
		testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})...)
	prom := testenv.StartPrometheus(t, om.String())
	pd := startFakePagerDuty(t)
	t.Cleanup(func() { pd.check(t, "pagerduty") })
	rcv := startWebhookReceiver(t)
	am := testenv.StartAlertmanager(t, rcv.url)
	page := map[string]string{"slo": "cart-availability", "severity": "page", "service": "cart"}

	// Every instant query goes through a proxy that holds it 200ms (so a
	// run lasts long enough to be killed in) and says when one arrives.
	// Once calm is set, it queries the calm series instead: the burn ends.
	target, _ := url.Parse(prom.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	queried := make(chan time.Time, 4096)
	var calm atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/query" {
			select {
			case queried <- time.Now():
			default:
			}
			if calm.Load() {
				if err := r.ParseForm(); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				form := r.Form
				form.Set("query", strings.ReplaceAll(form.Get("query"), "http_requests_total", "http_requests_calm_total"))
				r.Method, r.Body, r.ContentLength = http.MethodGet, http.NoBody, 0
				r.Header.Del("Content-Type")
				r.URL.RawQuery = form.Encode()
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
	host, _ := os.Hostname()
	type replica struct {
		p   *testenv.Process
		url string
		id  string // as the replica names itself: host/pid
	}
	var rs []replica
	for i := range 3 {
		port := testenv.FreePort(t)
		cfg := filepath.Join(dir, fmt.Sprintf("slogate-%d.yaml", i))
		body := fmt.Sprintf(`listen: 127.0.0.1:%d
slos: [%s]
store: %q
sources:
  prometheus: {url: %q, timeout: 10s}
evaluation: {schedule: "@every %s", ageDivisor: -1}
log: {level: warn}
notify:
  pagerduty: {routingKey: %q, url: %q}
  alertmanager: {url: %q}
`, port, slos, dsn, proxy.URL, interval, pdRoutingKey, pd.url, am.URL)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		p := testenv.Start(t, fmt.Sprintf("slogate-%d", i), exec.Command(bin, "serve", "--config", cfg))
		u := fmt.Sprintf("http://127.0.0.1:%d", port)
		testenv.WaitHTTP(t, p, u+"/healthz", time.Minute)
		rs = append(rs, replica{p, u, fmt.Sprintf("%s/%d", host, p.Cmd.Process.Pid)})
	}
	get := func(r replica, path string) []byte {
		resp, err := http.Get(r.url + path)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	metrics := func(r replica) []byte { return get(r, "/metrics") }
	status := func(r replica) slo.Status {
		var l struct{ Items []slo.Status }
		_ = json.Unmarshal(get(r, "/v1/slos"), &l)
		if len(l.Items) != 1 {
			return slo.Status{}
		}
		return l.Items[0]
	}
	pageFiring := func(st slo.Status) bool {
		for _, a := range st.Alerts {
			if a.Severity == slo.SeverityPage && a.Firing {
				return true
			}
		}
		return false
	}
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %s waiting until %s; pagerduty saw %s", within, what, pd)
			}
		}
	}
	// delivered counts the pagerduty deliveries of every replica, the
	// killed one's as it counted them before its death.
	var deadDelivered float64
	delivered := func() float64 {
		n := deadDelivered
		for _, r := range rs {
			if !r.p.Exited() {
				n += counterIn(deliveredLine, metrics(r))
			}
		}
		return n
	}
	key := pagerduty.DedupKey("cart", "cart-availability")

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
	// It pages, and the trigger is delivered and marked so (by whichever
	// replica's dispatcher claimed it).
	waitFor("the page's trigger is delivered and marked, and Alertmanager holds the alert", 30*time.Second, func() bool {
		return pd.count("trigger", key) == 1 && delivered() == 1 && len(activeAlerts(t, am.URL, page)) == 1
	})

	t.Run("the followers serve the leader's figures from the store, with their age, and export none", func(t *testing.T) {
		for i, r := range rs {
			if i == leader {
				if o := status(r).Origin; o == nil || o.From != slo.OriginMeasured || o.Replica != r.id {
					t.Errorf("the leader's figures: origin %+v, want measured by %s", o, r.id)
				}
				if !sloSeries.Match(metrics(r)) {
					t.Error("the leader exports no slogate_slo_sli")
				}
				continue
			}
			var st slo.Status
			waitFor("a follower serves figures", 10*time.Second, func() bool { st = status(r); return st.Origin != nil })
			o := st.Origin
			if o.From != slo.OriginLeader || o.Replica != rs[leader].id || o.Stale || o.AgeSeconds < 0 || o.AgeSeconds > 3*interval.Seconds() {
				t.Errorf("follower %d: origin %+v, want the leader %s's fresh figures", i, o, rs[leader].id)
			}
			if st.NotReady || st.ErrorBudget.Remaining == nil || !pageFiring(st) {
				t.Errorf("follower %d: %+v, want the leader's figures (budget measured, page firing)", i, st)
			}
			if sloSeries.Match(metrics(r)) {
				t.Errorf("follower %d exports slogate_slo_sli: the leader's figures would be counted twice", i)
			}
		}
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
	deadDelivered = counterIn(deliveredLine, metrics(rs[leader])) // nothing is in flight: the trigger is marked
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
	ok := func(r replica) float64 { return counterIn(runsOKLine, metrics(r)) }
	waitFor("a survivor completes two runs", 30*time.Second, func() bool {
		return ok(survivors[0])+ok(survivors[1]) >= 2
	})
	newLeader, follower := survivors[0], survivors[1]
	if ok(follower) > ok(newLeader) {
		newLeader, follower = follower, newLeader
	}
	t.Run("the new leader sends no second trigger", func(t *testing.T) {
		if n := pd.count("trigger", key); n != 1 {
			t.Errorf("%d triggers after the failover, want 1: %s", n, pd)
		}
		if st := status(newLeader); !pageFiring(st) {
			t.Errorf("the new leader's page is not firing: %+v", st.Alerts)
		}
	})

	// The burn ends: the new leader resolves the page.
	calm.Store(true)
	waitFor("the page's resolve is delivered and marked", 30*time.Second, func() bool {
		return pd.count("resolve", key) >= 1 && delivered() >= 2
	})
	// Two more runs on the survivors: one leads, the other follows, and
	// nothing more is sent.
	skips := counterIn(followerLines, metrics(survivors[0])) + counterIn(followerLines, metrics(survivors[1]))
	waitFor("two more follower runs", 30*time.Second, func() bool {
		return counterIn(followerLines, metrics(survivors[0]))+counterIn(followerLines, metrics(survivors[1])) >= skips+2
	})
	okA, okB := ok(survivors[0]), ok(survivors[1])
	if (okA > 0) == (okB > 0) {
		t.Errorf("after the failover, runs ok: %v and %v; want exactly one survivor evaluating", okA, okB)
	}

	t.Run("every trigger and resolve reached PagerDuty exactly once, and nothing is open", func(t *testing.T) {
		pd.mu.Lock()
		counts := map[string]int{}
		last := map[string]string{}
		for _, e := range pd.events {
			counts[e.DedupKey+" "+e.Action]++
			last[e.DedupKey] = e.Action
		}
		pd.mu.Unlock()
		want := map[string]int{key + " trigger": 1, key + " resolve": 1}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Errorf("events by dedup key and action %v, want %v", counts, want)
		}
		for k, a := range last {
			if a != "resolve" {
				t.Errorf("%s is left open: its last event is %s", k, a)
			}
		}
		if d := delivered(); d != 2 {
			t.Errorf("the replicas count %v deliveries, want 2", d)
		}
	})
	t.Run("the new leader resolves at Alertmanager the alert the dead one fired", func(t *testing.T) {
		// A re-send the dead replica had in flight would hold the alert's
		// order key for its lease (1m): allow for it.
		waitFor("Alertmanager has no active page alert and sent the resolution", 90*time.Second, func() bool {
			return len(activeAlerts(t, am.URL, page)) == 0 && rcv.got("resolved", page)
		})
	})
	t.Run("the follower serves the new leader's figures: the page no longer fires", func(t *testing.T) {
		var st slo.Status
		waitFor("the follower serves the new leader's calm figures", 15*time.Second, func() bool {
			st = status(follower)
			return st.Origin != nil && st.Origin.Replica == newLeader.id && !pageFiring(st) && st.ErrorBudget.Remaining != nil
		})
		if o := st.Origin; o.From != slo.OriginLeader || o.Stale {
			t.Errorf("origin %+v", o)
		}
	})
}
