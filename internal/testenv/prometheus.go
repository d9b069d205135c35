package testenv

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file runs a real Prometheus (Debian package prometheus: 2.42 on
// bookworm) loaded with deterministic data, and builds that data as
// OpenMetrics text.
//
// How the data gets in: the OpenMetrics text is backfilled into TSDB blocks
// with `promtool tsdb create-blocks-from openmetrics` before Prometheus
// starts, then Prometheus opens those blocks. Nothing is scraped.
//
//   - --max-block-duration=720h (a hidden flag in 2.42) lets promtool cut
//     blocks of up to 486h (the largest TSDB block range ≤ 720h), so 30 days
//     of 1-minute samples make 2 or 3 blocks in a few seconds instead of
//     hundreds of 2-hour blocks in over a minute. Prometheus' own maximum
//     block duration (10 % of the retention, capped at 31 days) is larger,
//     so it does not compact them again.
//   - Data may end at time.Now(): promtool does not refuse recent samples,
//     and a Prometheus that starts on blocks with an empty head sets the
//     head's lower bound at the newest block's end, so every backfilled
//     sample, up to the last, is queryable (TestStartPrometheusDataEndingNow
//     checks it). What does not work is backfilling into a Prometheus that
//     already runs: blocks overlapping its head are refused, which is why
//     every test gets its own server.
//   - --storage.tsdb.retention.time=10y: with the default 15 days, blocks
//     older than 15 days before the newest one are deleted at start-up.
//     Retention is measured from the newest block, not from the wall clock,
//     so data at a fixed instant in the past stays queryable.

// Prometheus is a real Prometheus server started by a test.
type Prometheus struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string
	// Dir is the TSDB directory.
	Dir     string
	Process *Process
}

// Stop ends the server by its PID (it is stopped at the test's end anyway).
func (p *Prometheus) Stop() { p.Process.Stop() }

// promtoolTimeout bounds the backfill: 30 days × a dozen series take a few
// seconds on a loaded 2-core machine.
const promtoolTimeout = 2 * time.Minute

// StartPrometheus backfills openMetrics (OpenMetrics text, e.g. from
// OpenMetrics.String) into a fresh TSDB and starts a Prometheus on it that
// scrapes nothing. The server is stopped by its PID when the test ends.
// Without the binaries it fails under CI=true and skips elsewhere.
func StartPrometheus(t testing.TB, openMetrics string) *Prometheus {
	t.Helper()
	return startPrometheus(t, openMetrics)
}

// StartEmptyPrometheus starts a Prometheus with no data at all.
func StartEmptyPrometheus(t testing.TB) *Prometheus {
	t.Helper()
	return startPrometheus(t, "")
}

// PrometheusConfig is what StartPrometheusWith adds to the server
// StartPrometheus starts.
type PrometheusConfig struct {
	// Blocks are directories of TSDB blocks (from BackfillFiles), copied
	// into the server's TSDB before it starts.
	Blocks []string
	// RuleFiles are the server's rule_files, evaluated every
	// EvaluationInterval (Prometheus' default, 1m, when zero) but for a
	// group with its own interval.
	RuleFiles          []string
	EvaluationInterval time.Duration
}

// StartPrometheusWith is StartPrometheus with blocks copied in and rule
// files loaded.
func StartPrometheusWith(t testing.TB, openMetrics string, cfg PrometheusConfig) *Prometheus {
	t.Helper()
	return startPrometheus(t, openMetrics, cfg)
}

func startPrometheus(t testing.TB, openMetrics string, pc ...PrometheusConfig) *Prometheus {
	t.Helper()
	var conf PrometheusConfig
	if len(pc) > 0 {
		conf = pc[0]
	}
	prom := Binary(t, "prometheus", "prometheus")
	dir := t.TempDir()
	tsdbDir := filepath.Join(dir, "tsdb")
	if err := os.MkdirAll(tsdbDir, 0o755); err != nil {
		t.Fatalf("tsdb dir: %v", err)
	}
	if openMetrics != "" {
		backfill(t, dir, tsdbDir, openMetrics)
	}
	for _, b := range conf.Blocks {
		if err := os.CopyFS(tsdbDir, os.DirFS(b)); err != nil {
			t.Fatalf("copy blocks %s: %v", b, err)
		}
	}
	global := "global: {}\n"
	if conf.EvaluationInterval > 0 {
		global = fmt.Sprintf("global: {evaluation_interval: %dms}\n", conf.EvaluationInterval.Milliseconds())
	}
	rules := ""
	for _, f := range conf.RuleFiles {
		rules += fmt.Sprintf("  - %s\n", strconv.Quote(f))
	}
	if rules != "" {
		rules = "rule_files:\n" + rules
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(global+rules+"scrape_configs: []\n"), 0o644); err != nil {
		t.Fatalf("prometheus config: %v", err)
	}
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(prom,
		"--config.file="+cfg,
		"--storage.tsdb.path="+tsdbDir,
		"--storage.tsdb.retention.time=10y",
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	p := Start(t, "prometheus", cmd)
	url := "http://" + addr
	WaitHTTP(t, p, url+"/-/ready", 30*time.Second)
	return &Prometheus{URL: url, Dir: tsdbDir, Process: p}
}

// BackfillFiles turns OpenMetrics files, too large to hold as a string,
// into TSDB blocks for StartPrometheusWith: one promtool per file, all at
// once, each into its own directory under a temporary one. A file whose
// samples fit in one block range (486h, aligned on the epoch) is read
// once; one spanning several ranges is read once per range.
func BackfillFiles(t testing.TB, files ...string) []string {
	t.Helper()
	promtool := Binary(t, "promtool", "prometheus")
	dir := t.TempDir()
	timeout := promtoolTimeout * time.Duration(max(1, len(files)))
	ctx, cancel := context.WithTimeoutCause(context.Background(), timeout,
		fmt.Errorf("promtool backfill took longer than %s", timeout))
	defer cancel()
	dirs := make([]string, len(files))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		dirs[i] = filepath.Join(dir, strconv.Itoa(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics",
				"--max-block-duration=720h", "--quiet", f, dirs[i])
			if out, err := cmd.CombinedOutput(); err != nil {
				if c := context.Cause(ctx); c != nil {
					err = fmt.Errorf("%w (%v)", err, c)
				}
				errs[i] = fmt.Errorf("promtool tsdb create-blocks-from openmetrics %s: %v\n%s", f, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return dirs
}

// backfill writes the OpenMetrics text to dir/data.om and turns it into
// blocks under tsdbDir.
func backfill(t testing.TB, dir, tsdbDir, openMetrics string) {
	t.Helper()
	promtool := Binary(t, "promtool", "prometheus")
	if !strings.HasSuffix(strings.TrimRight(openMetrics, "\n"), "# EOF") {
		t.Fatalf("OpenMetrics text must end with a line \"# EOF\"")
	}
	data := filepath.Join(dir, "data.om")
	if err := os.WriteFile(data, []byte(openMetrics), 0o644); err != nil {
		t.Fatalf("write %s: %v", data, err)
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), promtoolTimeout,
		fmt.Errorf("promtool backfill took longer than %s", promtoolTimeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics",
		"--max-block-duration=720h", "--quiet", data, tsdbDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		if c := context.Cause(ctx); c != nil {
			err = fmt.Errorf("%w (%v)", err, c)
		}
		t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
}

// DownURL returns the URL of a Prometheus that is down: a loopback port
// that was free a moment ago and that nothing listens on.
func DownURL(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
}

// Sample is one point of a series.
type Sample struct {
	T time.Time
	V float64
}

// Series is one time series: its full sample name (http_requests_total,
// http_request_duration_seconds_bucket), its labels, and its samples in
// time order.
type Series struct {
	Name    string
	Labels  map[string]string
	Samples []Sample
}

// Metric types of OpenMetrics families.
const (
	TypeCounter   = "counter"
	TypeGauge     = "gauge"
	TypeHistogram = "histogram"
)

// OpenMetrics builds an OpenMetrics text exposition with explicit
// timestamps for backfilling: one "# TYPE" line per family, every line of a
// family together, timestamps in seconds, "# EOF" last. The zero value is
// ready to use.
type OpenMetrics struct {
	families []*omFamily
}

type omFamily struct {
	name, typ string
	series    []Series
}

// Add appends series to the family name of type typ (TypeCounter,
// TypeGauge, TypeHistogram), creating it on first use; adding to a family
// again keeps its lines together. Series names must belong to the family:
// name_total for a counter; name_bucket (with an "le" label), name_count and
// name_sum for a histogram; name for a gauge. A mistake panics: it is a bug
// in the test, and promtool would refuse the file anyway.
func (o *OpenMetrics) Add(typ, name string, series ...Series) {
	var f *omFamily
	for _, g := range o.families {
		if g.name == name {
			f = g
		}
	}
	if f == nil {
		f = &omFamily{name: name, typ: typ}
		o.families = append(o.families, f)
	}
	if f.typ != typ {
		panic(fmt.Sprintf("testenv: family %s is a %s, not a %s", name, f.typ, typ))
	}
	for _, s := range series {
		ok := false
		switch typ {
		case TypeCounter:
			ok = s.Name == name+"_total"
		case TypeGauge:
			ok = s.Name == name
		case TypeHistogram:
			_, le := s.Labels["le"]
			ok = (s.Name == name+"_bucket" && le) || s.Name == name+"_count" || s.Name == name+"_sum"
		default:
			panic(fmt.Sprintf("testenv: unsupported metric type %q", typ))
		}
		if !ok {
			panic(fmt.Sprintf("testenv: series %s does not belong to %s family %s", s.Name, typ, name))
		}
		for i := 1; i < len(s.Samples); i++ {
			if !s.Samples[i].T.After(s.Samples[i-1].T) {
				panic(fmt.Sprintf("testenv: series %s: samples out of time order at %s", s.Name, s.Samples[i].T))
			}
		}
	}
	f.series = append(f.series, series...)
}

// Counter adds series to a counter family (names name_total).
func (o *OpenMetrics) Counter(name string, series ...Series) { o.Add(TypeCounter, name, series...) }

// Histogram adds series to a histogram family.
func (o *OpenMetrics) Histogram(name string, series ...Series) {
	o.Add(TypeHistogram, name, series...)
}

// String renders the exposition.
func (o *OpenMetrics) String() string {
	var b strings.Builder
	for _, f := range o.families {
		fmt.Fprintf(&b, "# TYPE %s %s\n", f.name, f.typ)
		for _, s := range f.series {
			ls := formatLabels(s.Labels)
			for _, p := range s.Samples {
				b.WriteString(s.Name)
				b.WriteString(ls)
				b.WriteByte(' ')
				b.WriteString(formatValue(p.V))
				b.WriteByte(' ')
				b.WriteString(formatTimestamp(p.T))
				b.WriteByte('\n')
			}
		}
	}
	b.WriteString("# EOF\n")
	return b.String()
}

func formatLabels(ls map[string]string) string {
	if len(ls) == 0 {
		return ""
	}
	names := make([]string, 0, len(ls))
	for n := range ls {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(ls[n]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// formatTimestamp writes seconds since the epoch, with milliseconds when
// the instant is not on a whole second.
func formatTimestamp(t time.Time) string {
	ms := t.UnixMilli()
	if ms%1000 == 0 {
		return strconv.FormatInt(ms/1000, 10)
	}
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}

// Segment is a span of steady growth: Rate per second from the end of the
// previous segment (or the series' start) until Until.
type Segment struct {
	Until time.Time
	Rate  float64
}

// CounterSeries is a counter that is 0 at start and grows by the segments'
// rates, sampled every step from start to the last segment's end
// (inclusive; the end is sampled even off the step grid). Values are exact
// integrals of the rates: a counter at 10/s sampled every minute reads
// 0, 600, 1200, ...
func CounterSeries(name string, labels map[string]string, start time.Time, step time.Duration, segs ...Segment) Series {
	if step <= 0 {
		panic("testenv: step must be positive")
	}
	s := Series{Name: name, Labels: labels}
	if len(segs) == 0 {
		return s
	}
	end := segs[len(segs)-1].Until
	value := func(at time.Time) float64 {
		v, from := 0.0, start
		for _, g := range segs {
			if !at.After(from) {
				break
			}
			to := g.Until
			if at.Before(to) {
				to = at
			}
			if to.After(from) {
				v += g.Rate * to.Sub(from).Seconds()
			}
			from = g.Until
		}
		return v
	}
	for at := start; !at.After(end); at = at.Add(step) {
		s.Samples = append(s.Samples, Sample{T: at, V: value(at)})
	}
	if last := s.Samples[len(s.Samples)-1].T; last.Before(end) {
		s.Samples = append(s.Samples, Sample{T: end, V: value(end)})
	}
	return s
}

// Phase is a span of steady traffic: Rate requests per second, of which
// ErrorRatio fail, from the end of the previous phase (or the start) until
// Until.
type Phase struct {
	Until      time.Time
	Rate       float64
	ErrorRatio float64
}

// Requests is the traffic of one label set as two series of the counter
// family name: name_total{labels, code="200"} for the successes and
// name_total{labels, code="500"} for the failures, sampled every step.
// For "10 req/s for v1 with 0.1 % errors until t1, then 2 % until t2":
//
//	om.Counter("http_requests", testenv.Requests("http_requests",
//		map[string]string{"version": "v1"}, t0, time.Minute,
//		testenv.Phase{Until: t1, Rate: 10, ErrorRatio: 0.001},
//		testenv.Phase{Until: t2, Rate: 10, ErrorRatio: 0.02})...)
func Requests(name string, labels map[string]string, start time.Time, step time.Duration, phases ...Phase) []Series {
	ok := make([]Segment, len(phases))
	bad := make([]Segment, len(phases))
	for i, p := range phases {
		ok[i] = Segment{Until: p.Until, Rate: p.Rate * (1 - p.ErrorRatio)}
		bad[i] = Segment{Until: p.Until, Rate: p.Rate * p.ErrorRatio}
	}
	return []Series{
		CounterSeries(name+"_total", withLabel(labels, "code", "200"), start, step, ok...),
		CounterSeries(name+"_total", withLabel(labels, "code", "500"), start, step, bad...),
	}
}

// LatencyPhase is a span of steady traffic for a histogram: Rate requests
// per second until Until, of which Below[i] (cumulative, non-decreasing)
// take at most the i-th bucket bound, with a mean duration of Mean seconds
// (for _sum).
type LatencyPhase struct {
	Until time.Time
	Rate  float64
	Below []float64
	Mean  float64
}

// HistogramSeries is a classic histogram of family name for one label set:
// name_bucket{le=...} for every bound plus le="+Inf", name_count and
// name_sum, sampled every step. Bounds must be increasing and every phase
// must give one fraction per bound.
func HistogramSeries(name string, labels map[string]string, bounds []float64, start time.Time, step time.Duration, phases ...LatencyPhase) []Series {
	for _, p := range phases {
		if len(p.Below) != len(bounds) {
			panic(fmt.Sprintf("testenv: histogram %s: %d fractions for %d bounds", name, len(p.Below), len(bounds)))
		}
	}
	var out []Series
	bucket := func(le string, frac func(LatencyPhase) float64) {
		segs := make([]Segment, len(phases))
		for i, p := range phases {
			segs[i] = Segment{Until: p.Until, Rate: p.Rate * frac(p)}
		}
		out = append(out, CounterSeries(name+"_bucket", withLabel(labels, "le", le), start, step, segs...))
	}
	for i, b := range bounds {
		bucket(strconv.FormatFloat(b, 'f', -1, 64), func(p LatencyPhase) float64 { return p.Below[i] })
	}
	bucket("+Inf", func(LatencyPhase) float64 { return 1 })
	count := make([]Segment, len(phases))
	sum := make([]Segment, len(phases))
	for i, p := range phases {
		count[i] = Segment{Until: p.Until, Rate: p.Rate}
		sum[i] = Segment{Until: p.Until, Rate: p.Rate * p.Mean}
	}
	out = append(out,
		CounterSeries(name+"_count", labels, start, step, count...),
		CounterSeries(name+"_sum", labels, start, step, sum...))
	return out
}

func withLabel(labels map[string]string, name, value string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		out[k] = v
	}
	out[name] = value
	return out
}
