package dashboards

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// BenchmarkRuleCycle1000SLOs measures what one rule cycle of 1,000 SLOs
// costs a real Prometheus, with the rules of today (Rules) and, as the
// same-run baseline, those of slogate ≤ #13 (ruleOptions.legacy: every
// window measured from the raw series at every evaluation), read from
// Prometheus' own prometheus_rule_group_last_duration_seconds.
//
// The fleet is the one of cmd/slogate's scale benchmarks: 100 services of
// 10 SLOs (good/total and bad/total counters, histogram buckets, rolling
// 7d to 30d and calendar week and month windows, a Sloth events SLI and a
// Sloth raw one). The server holds 31 days up to the start of the
// benchmark:
//   - the raw series (6 per service) at one sample a minute, Prometheus'
//     default scrape interval (a 15s or 30s scrape makes the raw windows
//     of the old rules 2–4× dearer, and the new ones barely);
//   - the buckets (RecordGood, RecordTotal) of the 1,000 SLOs (the Sloth
//     raw one is a ratio of sums of rates, rawEvents) every 5m, as a
//     Prometheus that has run the new rules for 31 days has them:
//     without them, the sums over 30 days would read a few minutes of
//     buckets and cost nothing;
//   - the last 2 hours in blocks of their own, as a live Prometheus holds
//     them in its head: in one 20-day block, every selector of a 5m
//     window would read the chunk index of 20 days.
//
// One server runs three groups: the old rules (their series and alerts
// renamed legacy:…, Legacy…, so that both sets run side by side), the new
// fast rules and the new slow rules, each set merged into one group.
// Prometheus runs each group in a goroutine of its own: 1,000 groups a
// cycle on 2 cores overlap, and a group's last duration then counts the
// time it waited for the others (summed over the groups, a cycle of the
// old rules read 1,679 s on this machine, for far less CPU time). In one
// group the rules are evaluated one after the other, each as the query it
// is in its own group, so the group's last duration is the sum of their
// costs. The three groups share the machine's load (other processes come
// and go), which a sequential old-then-new run does not. The new groups
// are evaluated every 30s (the slow one too: ruleOptions.slowInterval; an
// evaluation reads the same samples at any interval), the old one every
// 2m (it takes 20–30s), until the old one has been evaluated twice and
// each new one three times alone. A group's figure is the mean of its
// evaluations that overlapped no other group's, or else the least of them
// (the old group is rarely alone: its least evaluation may still hold a
// few percent of overlap with the short new groups, so old-cycle-s and
// speedup may be that much too high; the log says how many evaluations
// ran alone).
// Reported:
//
//	old-cycle-s   one evaluation of every old rule: what they cost every
//	              minute
//	cycle-s       the new rules per minute of their real intervals: fast
//	              rules + slow rules × 1m/5m
//	cycle-all-s   one evaluation of every new rule, slow ones included
//	speedup       old-cycle-s / cycle-s
//	old-rules, rules, slow-groups
//
// Set SLOGATE_BENCH_KEEP=DIR to keep the rule files there, with
// Prometheus' /api/v1/rules (every rule's evaluationTime).
func BenchmarkRuleCycle1000SLOs(b *testing.B) {
	testenv.Binary(b, "prometheus", "prometheus")
	set := benchFleet(b)
	oldRules, err := rules(set, ruleOptions{legacy: true})
	if err != nil {
		b.Fatal(err)
	}
	newRules, err := rules(set, ruleOptions{slowInterval: benchEvalInterval})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	keep := os.Getenv("SLOGATE_BENCH_KEEP")
	if keep != "" {
		dir = keep
	}
	file := filepath.Join(dir, "bench-rules.yaml")
	merged := mergeGroups(b, newRules, "")
	old := mergeGroups(b, oldRules, "legacy")
	old[0] = append(old[0].(ymap)[:1:1], append(ymap{{"interval", slo.PromDuration(benchOldInterval)}}, old[0].(ymap)[1:]...)...)
	merged = append(merged, old...)
	var body bytes.Buffer
	writeYAML(&body, ymap{{"groups", merged}})
	if err := os.WriteFile(file, body.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	end := time.Now().Truncate(time.Minute)
	began := time.Now()
	files := writeBenchData(b, set, b.TempDir(), end)
	blocks := testenv.BackfillFiles(b, files...)
	for _, f := range files {
		_ = os.Remove(f)
	}
	b.Logf("data backfilled in %s", time.Since(began).Round(time.Second))

	b.ResetTimer()
	for range b.N {
		c := measureRuleCycle(b, blocks, file, keep)
		fast, slow, old := c.seconds[mergedFast], c.seconds[mergedSlow], c.seconds["legacy"+mergedFast]
		perMinute := fast + slow*float64(time.Minute)/float64(SlowInterval)
		slowGroups := strings.Count(string(newRules), SlowGroupSuffix+"\n")
		b.ReportMetric(old, "old-cycle-s")
		b.ReportMetric(perMinute, "cycle-s")
		b.ReportMetric(fast+slow, "cycle-all-s")
		b.ReportMetric(old/perMinute, "speedup")
		b.ReportMetric(float64(c.rules["legacy"+mergedFast]), "old-rules")
		b.ReportMetric(float64(c.rules[mergedFast]+c.rules[mergedSlow]), "rules")
		b.ReportMetric(float64(slowGroups), "slow-groups")
		b.Logf("old: %d rules, %.3fs a cycle; new: %d fast rules %.3fs + %d slow rules %.3fs an evaluation, %.3fs a minute: %.1f× cheaper (samples %v)",
			c.rules["legacy"+mergedFast], old, c.rules[mergedFast], fast, c.rules[mergedSlow], slow, perMinute, old/perMinute, c.samples)
	}
}

// benchEvalInterval is the new groups' interval in the benchmark, and
// benchOldInterval the old group's: over four times one evaluation of the
// old rules, so that most evaluations of the new ones run alone.
const (
	benchEvalInterval = 30 * time.Second
	benchOldInterval  = 120 * time.Second
)

// The groups of a merged rule file.
const (
	mergedFast = "fast"
	mergedSlow = "slow"
)

// mergeGroups puts every rule of the fast groups in one group and every
// rule of the slow groups in another, named prefix+"fast" and
// prefix+"slow". With a prefix, the recorded series and the alerts are
// renamed so that they do not clash with those of the file without one.
func mergeGroups(tb testing.TB, rules []byte, prefix string) yseq {
	tb.Helper()
	if prefix != "" {
		text := string(rules)
		for _, name := range []string{"slo:sli_error:", "slo:error_budget", "slo:objective:", "slo:sli_good:", "slo:sli_total:"} {
			text = strings.ReplaceAll(text, name, prefix+":"+strings.TrimPrefix(name, "slo:"))
		}
		rules = []byte(strings.ReplaceAll(text, "- alert: ", "- alert: "+strings.ToUpper(prefix[:1])+prefix[1:]))
	}
	var f struct {
		Groups []struct {
			Name     string
			Interval string
			Rules    []map[string]any
		}
	}
	if err := yaml.Unmarshal(rules, &f); err != nil {
		tb.Fatal(err)
	}
	// Written by this package's YAML writer: yaml.v3 writes an expression
	// whose first line starts with spaces in a way it cannot read back.
	var fast, slow yseq
	interval := ""
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if strings.HasSuffix(g.Name, SlowGroupSuffix) {
				interval = g.Interval
				slow = append(slow, toYAML(r))
			} else {
				fast = append(fast, toYAML(r))
			}
		}
	}
	out := yseq{ymap{{"name", prefix + mergedFast}, {"rules", fast}}}
	if len(slow) > 0 {
		out = append(out, ymap{{"name", prefix + mergedSlow}, {"interval", interval}, {"rules", slow}})
	}
	return out
}

// toYAML turns a decoded rule back into this package's YAML values.
func toYAML(v any) any {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m := make(ymap, 0, len(v))
		for _, k := range keys {
			m = append(m, ykv{k, toYAML(v[k])})
		}
		return m
	default:
		return fmt.Sprint(v)
	}
}

// benchDeadline bounds the wait for three evaluations of each group.
const benchDeadline = 10 * time.Minute

// benchEvaluations is how many evaluations of each group are seen, and
// benchClean how many of the new groups' must have run alone.
const (
	benchEvaluations = 2
	benchClean       = 2
)

// ruleCycle is the cost of one evaluation of each group of a rule file.
type ruleCycle struct {
	seconds map[string]float64 // by group name
	rules   map[string]int
	samples map[string][]evaluation
}

// evaluation is one evaluation of a group: when it began, how long it took.
type evaluation struct{ at, took float64 }

func (e evaluation) String() string { return strconv.FormatFloat(e.took, 'f', 3, 64) + "s" }

func (e evaluation) overlaps(o evaluation) bool { return e.at < o.at+o.took && o.at < e.at+e.took }

// clean are the durations of g's evaluations that overlapped no other
// group's.
func (c ruleCycle) clean(g string) []float64 {
	var out []float64
	for _, e := range c.samples[g] {
		alone := true
		for h, es := range c.samples {
			for _, o := range es {
				if h != g && e.overlaps(o) {
					alone = false
				}
			}
		}
		if alone {
			out = append(out, e.took)
		}
	}
	return out
}

// figure is a group's cost from its evaluations: the mean of those that
// overlapped no other group's (clean), else the least of them, so that
// each group is charged as nearly as possible its own time.
func (c ruleCycle) figure(g string) (float64, int) {
	clean := c.clean(g)
	least := 0.0
	for i, e := range c.samples[g] {
		if i == 0 || e.took < least {
			least = e.took
		}
	}
	if len(clean) == 0 {
		return least, 0
	}
	var sum float64
	for _, d := range clean {
		sum += d
	}
	return sum / float64(len(clean)), len(clean)
}

// measureRuleCycle starts a Prometheus on a copy of blocks with the rule
// file, records each group's last duration after each of its first
// benchEvaluations evaluations, and stops it.
func measureRuleCycle(b *testing.B, blocks []string, path, keep string) ruleCycle {
	b.Helper()
	var f ruleFile
	body, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := yaml.Unmarshal(body, &f); err != nil {
		b.Fatal(err)
	}
	c := ruleCycle{seconds: map[string]float64{}, rules: map[string]int{}, samples: map[string][]evaluation{}}
	for _, g := range f.Groups {
		c.rules[g.Name] = len(g.Rules)
	}
	prom := testenv.StartPrometheusWith(b, "", testenv.PrometheusConfig{
		Blocks: blocks, RuleFiles: []string{path}, EvaluationInterval: benchEvalInterval,
	})
	defer prom.Stop()
	deadline := time.Now().Add(benchDeadline)
	last := map[string]float64{}
	for {
		fams := scrape(b, prom.URL)
		if n := sumOf(fams["prometheus_rule_evaluation_failures_total"]); n > 0 {
			b.Fatalf("%v rule evaluations failed:\n%s", n, prom.Process.Output())
		}
		at := byGroup(fams["prometheus_rule_group_last_evaluation_timestamp_seconds"])
		took := byGroup(fams["prometheus_rule_group_last_duration_seconds"])
		for g := range c.rules {
			if at[g] > 0 && at[g] != last[g] {
				last[g] = at[g]
				c.samples[g] = append(c.samples[g], evaluation{at: at[g], took: took[g]})
			}
		}
		done := 0
		for g := range c.rules {
			enough := len(c.samples[g]) >= benchEvaluations
			if !strings.HasPrefix(g, "legacy") {
				// A running evaluation of another group may still
				// overlap the last one: it is counted once all have ended.
				enough = enough && len(c.clean(g)) >= benchClean+1
			}
			if enough {
				done++
			}
		}
		if done == len(c.rules) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not every group evaluated %d times (the new ones %d times alone) after %s: %v", benchEvaluations, benchClean+1, benchDeadline, c.samples)
		}
		// Polling Prometheus' own metrics for a state it reaches by
		// itself: nothing here is synchronised by the wait.
		time.Sleep(time.Second)
	}
	for g := range c.samples {
		var clean int
		c.seconds[g], clean = c.figure(g)
		b.Logf("group %s: evaluations %v; figure %.3fs from %d evaluations that overlapped no other group's (0: the least)", g, c.samples[g], c.seconds[g], clean)
	}
	if keep != "" {
		saveRules(b, prom.URL, filepath.Join(keep, "bench-rules.api.json"))
	}
	return c
}

// saveRules keeps Prometheus' /api/v1/rules, which has every rule's
// evaluationTime, for a look at where a cycle's time goes.
func saveRules(b *testing.B, url, file string) {
	b.Helper()
	resp, err := http.Get(url + "/api/v1/rules")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		b.Fatal(err)
	}
}

func scrape(b *testing.B, url string) map[string]*familyT {
	b.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatalf("prometheus /metrics: %v", err)
	}
	return fams
}

// byGroup maps a rule-group metric's values by group name (the label
// rule_group is "file;name").
func byGroup(f *familyT) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "rule_group" {
				name := l.GetValue()
				if i := strings.LastIndexByte(name, ';'); i >= 0 {
					name = name[i+1:]
				}
				out[name] = metricValue(m)
			}
		}
	}
	return out
}

type familyT = dto.MetricFamily

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func sumOf(f *familyT) float64 {
	var s float64
	for _, m := range f.GetMetric() {
		s += metricValue(m)
	}
	return s
}

// benchServices is the fleet's size: 10 SLOs each.
const benchServices = 100

// benchFleet builds the 1,000 SLOs of cmd/slogate's scale benchmarks
// (benchOpenSLO and benchSloth there) as objectives.
func benchFleet(tb testing.TB) *slo.Set {
	tb.Helper()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		tb.Fatal(err)
	}
	q := func(format, svc string) *slo.Query { return promQuery(strings.ReplaceAll(format, "S", svc)) }
	set := &slo.Set{}
	for i := range benchServices {
		svc := fmt.Sprintf("svc-%03d", i)
		add := func(name string, target float64, w slo.Window, sli slo.SLI) {
			set.Objectives = append(set.Objectives, slo.Objective{Name: svc + "-" + name, Service: svc, Target: target, Window: w, SLI: sli})
		}
		req := `sum(bench_requests_total{service="S"})`
		add("availability", 0.999, slo.Rolling(30*slo.Day), slo.SLI{Good: q(`sum(bench_requests_total{service="S",code!~"5.."})`, svc), Total: q(req, svc)})
		add("errors", 0.995, slo.Rolling(28*slo.Day), slo.SLI{Bad: q(`sum(bench_requests_total{service="S",code=~"5.."})`, svc), Total: q(req, svc)})
		add("availability-7d", 0.99, slo.Rolling(7*slo.Day), slo.SLI{Good: q(`sum(bench_requests_total{service="S",code="200"})`, svc), Total: q(req, svc)})
		add("availability-14d", 0.9995, slo.Rolling(14*slo.Day), slo.SLI{Bad: q(`sum(bench_requests_total{service="S",code="500"})`, svc), Total: q(req, svc)})
		add("latency", 0.99, slo.Rolling(30*slo.Day), slo.SLI{
			Good: q(`sum(bench_request_duration_seconds_bucket{service="S",le="0.3"})`, svc), Total: q(`sum(bench_request_duration_seconds_count{service="S"})`, svc)})
		add("latency-28d", 0.95, slo.Rolling(28*slo.Day), slo.SLI{
			Good: q(`sum(bench_request_duration_seconds_bucket{service="S",le="0.3"})`, svc), Total: q(`sum(bench_request_duration_seconds_bucket{service="S",le="+Inf"})`, svc)})
		add("month", 0.999, slo.Window{Calendar: slo.CalendarMonth, Location: paris}, slo.SLI{Bad: q(`sum(bench_requests_total{service="S",code=~"5.."})`, svc), Total: q(req, svc)})
		add("week", 0.995, slo.Window{Calendar: slo.CalendarWeek, Location: time.UTC}, slo.SLI{Good: q(`sum(bench_requests_total{service="S",code!~"5.."})`, svc), Total: q(req, svc)})
		add("events", 0.999, slo.Rolling(30*slo.Day), slo.SLI{
			Bad:   q(`sum(rate(bench_requests_total{service="S",code=~"5.."}[{{.window}}]))`, svc),
			Total: q(`sum(rate(bench_requests_total{service="S"}[{{.window}}]))`, svc)})
		add("raw", 0.995, slo.Rolling(30*slo.Day), slo.SLI{
			Raw:     q(`sum(rate(bench_requests_total{service="S",code=~"5.."}[{{.window}}])) / sum(rate(bench_requests_total{service="S"}[{{.window}}]))`, svc),
			RawType: slo.RawFailure})
	}
	return set
}

// benchBlockRange is the block range promtool cuts with
// --max-block-duration=720h (testenv): data is written one file per
// range, so that each file is read once and the files are backfilled at
// once.
const benchBlockRange = 486 * time.Hour

// benchHead is the span of the newest data, backfilled as a block of its
// own as a live Prometheus holds it in its head.
const benchHead = 2 * time.Hour

// writeBenchData writes the fleet's 31 days up to end as OpenMetrics
// files under dir, one per block range, and returns them.
func writeBenchData(tb testing.TB, set *slo.Set, dir string, end time.Time) []string {
	tb.Helper()
	start := end.Add(-31 * slo.Day)
	head := end.Add(-benchHead)
	var files []string
	r := benchBlockRange.Milliseconds()
	for from := start; from.Before(end) || from.Equal(end); {
		to := time.UnixMilli((from.UnixMilli()/r + 1) * r) // the next range's start
		if from.Before(head) && to.After(head) {
			to = head
		}
		if to.After(end) {
			to = end.Add(time.Millisecond)
		}
		f := filepath.Join(dir, fmt.Sprintf("data-%d.om", len(files)))
		writeBenchRange(tb, set, f, start, from, to)
		files = append(files, f)
		from = to
	}
	return files
}

// writeBenchRange writes the samples in [from, to) of series that start
// at start: raw counters every minute, buckets every 5m.
func writeBenchRange(tb testing.TB, set *slo.Set, file string, start, from, to time.Time) {
	tb.Helper()
	out, err := os.Create(file)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(out, 1<<20)
	var line []byte
	series := func(name, labels string, step time.Duration, value func(t time.Time) float64) {
		first := start.Add(from.Sub(start).Truncate(step))
		if first.Before(from) {
			first = first.Add(step)
		}
		prefix := name + labels + " "
		for t := first; t.Before(to); t = t.Add(step) {
			line = append(line[:0], prefix...)
			line = strconv.AppendFloat(line, value(t), 'f', -1, 64)
			line = append(line, ' ')
			line = strconv.AppendInt(line, t.Unix(), 10)
			line = append(line, '\n')
			_, _ = w.Write(line)
		}
	}
	counter := func(rate float64) func(time.Time) float64 {
		return func(t time.Time) float64 { return float64(int64(rate * t.Sub(start).Seconds())) }
	}
	rate := func(i int) (float64, float64) { return float64(1 + i%7), 0.0001 * float64(1+i%10) }
	fmt.Fprintln(w, "# TYPE bench_requests counter")
	for i := range benchServices {
		rt, er := rate(i)
		svc := fmt.Sprintf("svc-%03d", i)
		series("bench_requests_total", `{code="200",service="`+svc+`"}`, time.Minute, counter(rt*(1-er)))
		series("bench_requests_total", `{code="500",service="`+svc+`"}`, time.Minute, counter(rt*er))
	}
	fmt.Fprintln(w, "# TYPE bench_request_duration_seconds histogram")
	for i := range benchServices {
		rt, _ := rate(i)
		svc := fmt.Sprintf("svc-%03d", i)
		series("bench_request_duration_seconds_bucket", `{le="0.3",service="`+svc+`"}`, time.Minute, counter(rt*0.995))
		series("bench_request_duration_seconds_bucket", `{le="+Inf",service="`+svc+`"}`, time.Minute, counter(rt))
		series("bench_request_duration_seconds_count", `{service="`+svc+`"}`, time.Minute, counter(rt))
		series("bench_request_duration_seconds_sum", `{service="`+svc+`"}`, time.Minute, counter(rt*0.1))
	}
	// The buckets: a steady 5m worth of events (a per-second rate for the
	// Sloth events SLI, whose queries are rates, as Prometheus records it).
	for _, metric := range []string{RecordGood, RecordTotal} {
		fmt.Fprintf(w, "# TYPE %s gauge\n", metric)
		for i, o := range set.Objectives {
			ob, err := newObjective(o)
			if err != nil {
				tb.Fatal(err)
			}
			if o.SLI.IsRaw() && ob.rawEvents() == nil {
				continue // no buckets
			}
			rt, er := rate(i / 10)
			v := rt * Bucket.Seconds()
			if q := o.SLI.Queries()[0]; q.Windowed {
				v = rt
			}
			if metric == RecordGood {
				v *= 1 - er
			}
			series(metric, `{`+LabelService+`="`+o.Service+`",`+LabelSLO+`="`+o.Name+`"}`, Bucket, func(time.Time) float64 { return v })
		}
	}
	fmt.Fprintln(w, "# EOF")
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}
