package dashboards

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

// accuracyTolerance is the relative difference allowed between an error
// ratio summed from the buckets and the SLI's own expression over the
// same window, when the samples fall on the evaluation grid as they do in
// promtool: both then read the counters at the same instants, the buckets
// tile the window exactly, and only float rounding is left (doc.go,
// "Accuracy").
const accuracyTolerance = 1e-9

// phase is a span of steady traffic: minutes long, total requests and
// errors per minute.
type phase struct {
	minutes      int
	total, error int
}

// promtoolValues writes a counter that grows by per(phase) every minute in
// promtool's expanding notation, starting at start.
func promtoolValues(start int, phases []phase, per func(phase) int) string {
	var parts []string
	v := start
	for i, p := range phases {
		if i > 0 {
			v += per(p) // the first sample of a phase is one minute on
			parts = append(parts, fmt.Sprintf("%d+%dx%d", v, per(p), p.minutes-1))
			v += per(p) * (p.minutes - 1)
			continue
		}
		parts = append(parts, fmt.Sprintf("%d+%dx%d", v, per(p), p.minutes))
		v += per(p) * p.minutes
	}
	return strings.Join(parts, " ")
}

// Traffic shapes over 7 days and 2 hours, one sample a minute.
var accuracyTraffic = map[string][]phase{
	// 1,000 requests a minute, 0.2 % errors throughout.
	"steady": {{minutes: 7*24*60 + 120, total: 1000, error: 2}},
	// Steady, with a one-hour burst of 40 % errors at 5× the traffic
	// every day, and a 10-minute outage (all errors) on day 6.
	"bursty": bursty(),
	// Day and night: 6h at 50 requests a minute with 10 % errors, then
	// 6h at 5,000 a minute with 0.1 %. Weighted by traffic the error
	// ratio is ~0.2 %; an average of the 5m ratios is ~5 %.
	"diurnal": diurnal(),
}

func bursty() []phase {
	var ps []phase
	for d := range 7 {
		ps = append(ps, phase{minutes: 600, total: 1000, error: 2}, phase{minutes: 60, total: 5000, error: 2000}, phase{minutes: 780, total: 1000, error: 2})
		if d == 5 {
			ps = append(ps, phase{minutes: 10, total: 800, error: 800})
		}
	}
	return append(ps, phase{minutes: 120 - 10, total: 1000, error: 2})
}

func diurnal() []phase {
	var ps []phase
	for range 14 {
		ps = append(ps, phase{minutes: 360, total: 50, error: 5}, phase{minutes: 360, total: 5000, error: 5})
	}
	return append(ps, phase{minutes: 120, total: 50, error: 5})
}

// accuracySet has a good/total and a bad/total objective per traffic
// shape, a Sloth-style one over rates and a Sloth-style raw ratio of rates.
func accuracySet() *slo.Set {
	set := &slo.Set{}
	for _, shape := range []string{"bursty", "diurnal", "steady"} {
		total := fmt.Sprintf(`sum(http_requests_total{service=%q})`, shape)
		set.Objectives = append(set.Objectives,
			slo.Objective{Name: shape + "-good", Service: shape, Target: 0.99, Window: slo.Rolling(7 * slo.Day), SLI: slo.SLI{
				Good: promQuery(fmt.Sprintf(`sum(http_requests_total{service=%q,code="200"})`, shape)), Total: promQuery(total)}},
			slo.Objective{Name: shape + "-bad", Service: shape, Target: 0.99, Window: slo.Rolling(7 * slo.Day), SLI: slo.SLI{
				Bad: promQuery(fmt.Sprintf(`sum(http_requests_total{service=%q,code="500"})`, shape)), Total: promQuery(total)}},
		)
	}
	// Sloth-style: rates over {{.window}}, whose buckets are rates.
	set.Objectives = append(set.Objectives, slo.Objective{Name: "diurnal-rate", Service: "diurnal", Target: 0.99, Window: slo.Rolling(7 * slo.Day), SLI: slo.SLI{
		Bad:   promQuery(`sum(rate(http_requests_total{service="diurnal",code="500"}[{{.window}}]))`),
		Total: promQuery(`sum(rate(http_requests_total{service="diurnal"}[{{.window}}]))`)}})
	// Sloth-style raw: a ratio of two sums of rates, summed from buckets.
	set.Objectives = append(set.Objectives, slo.Objective{Name: "bursty-raw", Service: "bursty", Target: 0.99, Window: slo.Rolling(7 * slo.Day), SLI: slo.SLI{
		Raw:     promQuery(`sum(rate(http_requests_total{service="bursty",code="500"}[{{.window}}])) / sum(rate(http_requests_total{service="bursty"}[{{.window}}]))`),
		RawType: slo.RawFailure}})
	return set
}

// The long windows summed from the buckets match the SLI's own expression
// over the same window, for steady, bursty and diurnal traffic, and the
// diurnal case tells a traffic-weighted ratio from an average of ratios.
func TestBucketWindowsMatchTheRawExpression(t *testing.T) {
	set := accuracySet()
	out, err := Rules(set)
	if err != nil {
		t.Fatalf("Rules: %v", err)
	}
	var b strings.Builder
	b.WriteString(slowFirst(t, out))
	b.WriteString("rule_files: [rules.yaml]\nevaluation_interval: 5m\ntests:\n  - interval: 1m\n    input_series:\n")
	for _, shape := range []string{"bursty", "diurnal", "steady"} {
		ps := accuracyTraffic[shape]
		// Counters start high, as they do in a long-running process.
		fmt.Fprintf(&b, "      - series: 'http_requests_total{service=%q,code=\"200\"}'\n        values: '%s'\n", shape,
			promtoolValues(1_000_000, ps, func(p phase) int { return p.total - p.error }))
		fmt.Fprintf(&b, "      - series: 'http_requests_total{service=%q,code=\"500\"}'\n        values: '%s'\n", shape,
			promtoolValues(10_000, ps, func(p phase) int { return p.error }))
	}
	b.WriteString("    promql_expr_test:\n")
	// 5m, 30m, 1h: the SLI's own queries (1 − good/total for a good/total
	// SLI); the others: the buckets.
	windows := []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, slo.Day, 3 * slo.Day, 7 * slo.Day}
	// Instants: early (windows not yet full), in and after a burst, at
	// night and by day, the period nearly full (promtool refuses to load
	// more than 10,000 samples of a series at once, so the SLI's own 7d
	// expression cannot be evaluated over a full week of 1m samples).
	instants := []time.Duration{3 * time.Hour, 10*time.Hour + 30*time.Minute, 11*time.Hour + 5*time.Minute,
		2*slo.Day + 6*time.Hour, 5*slo.Day + 23*time.Hour, 6*slo.Day + 22*time.Hour}
	cases := 0
	for _, o := range set.Objectives {
		for _, w := range windows {
			raw, err := o.SLI.ErrorRatioExpr(w, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := fmt.Sprintf(`%s{%s=%q}`, ErrorRatioRecord(w), LabelSLO, o.Name)
			for _, at := range instants {
				fmt.Fprintf(&b, "      - expr: 'abs(%s - on() (%s)) <= bool on() (%g * %s)'\n        eval_time: %s\n        exp_samples:\n          - labels: '{}'\n            value: 1\n",
					rec, raw, accuracyTolerance, rec, slo.PromDuration(at))
				cases++
			}
		}
		if strings.HasPrefix(o.Name, "diurnal") {
			// An average of the 5m ratios (Sloth's optimized period) is
			// far off: the test would catch rules built that way.
			raw, _ := o.SLI.ErrorRatioExpr(slo.Day, nil)
			avg := fmt.Sprintf(`avg_over_time(%s{%s=%q}[%s])`, ErrorRatioRecord(Bucket), LabelSLO, o.Name, slo.PromDuration(bucketRange(slo.Day)))
			fmt.Fprintf(&b, "      - expr: 'abs(%s - on() (%s)) > bool on() (0.5 * %s)'\n        eval_time: %s\n        exp_samples:\n          - labels: '{}'\n            value: 1\n",
				avg, raw, avg, slo.PromDuration(3*slo.Day))
		}
	}
	dir := t.TempDir()
	for name, body := range map[string][]byte{"rules.yaml": out, "accuracy_test.yaml": []byte(b.String())} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	promtool(t, dir, "test", "rules", "accuracy_test.yaml")
	t.Logf("%d comparisons within %g", cases, accuracyTolerance)
}
