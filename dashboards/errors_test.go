package dashboards

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/slogate/slogate/slo"
)

func counterObjective(name string) slo.Objective {
	return slo.Objective{
		Name: name, Service: "svc", Target: 0.99, Window: slo.Rolling(30 * slo.Day),
		SLI: slo.SLI{Bad: promQuery(`sum(errors_total)`), Total: promQuery(`sum(requests_total)`)},
	}
}

func TestRulesRefuseBadObjectives(t *testing.T) {
	tests := map[string]struct {
		edit func(o *slo.Objective)
		want []string
	}{
		"a target of 1 leaves no budget and is refused": {
			edit: func(o *slo.Objective) { o.Target = 1 },
			want: []string{"objective a: target must be in (0,1), got 1"},
		},
		"an objective without a service is refused": {
			edit: func(o *slo.Objective) { o.Service = "" },
			want: []string{"objective a: service is empty"},
		},
		"an alert name Prometheus refuses is refused": {
			edit: func(o *slo.Objective) { o.Alerting.Name = "High-Error-Rate" },
			want: []string{`alerting.name "High-Error-Rate": must match`},
		},
		"an alert label that is not a label name is refused": {
			edit: func(o *slo.Objective) { o.Alerting.Labels = map[string]string{"team-name": "x"} },
			want: []string{`alerting.labels: "team-name" is not a label name`},
		},
		"an annotation that is not a label name is refused": {
			edit: func(o *slo.Objective) { o.Alerting.Annotations = map[string]string{"run book": "x"} },
			want: []string{`alerting.annotations: "run book" is not an annotation name`},
		},
		"a template over an unknown key is refused with the window it failed for": {
			edit: func(o *slo.Objective) {
				o.SLI.Bad = &slo.Query{Source: slo.SourcePrometheus, PromQL: `sum(rate(errors_total[{{.range}}]))`, Windowed: true}
			},
			want: []string{"objective a: events over 5m: template:", "error ratio over 5m: template:", "error ratio over 1h: template:"},
		},
		"the place of the objective is named when it is known": {
			edit: func(o *slo.Objective) { o.Target = 0; o.Pos = slo.Position{File: "slos/a.yaml", Line: 7} },
			want: []string{"slos/a.yaml:7: objective a: target must be in (0,1), got 0"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := counterObjective("a")
			tc.edit(&o)
			_, err := Rules(&slo.Set{Objectives: []slo.Objective{o, counterObjective("b")}})
			if err == nil {
				t.Fatal("Rules accepted the objective")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "objective b") {
				t.Errorf("error %q blames the good objective b", err)
			}
		})
	}
}

func TestRulesReportEveryProblemAtOnce(t *testing.T) {
	a, b := counterObjective("a"), counterObjective("b")
	a.Target, b.Target = 0, 2
	dup := counterObjective("a")
	_, err := Rules(&slo.Set{Objectives: []slo.Objective{a, b, dup}})
	if err == nil {
		t.Fatal("Rules accepted the objectives")
	}
	for _, w := range []string{"objective a: target", "objective b: target", "objective a: another objective (or another objective's slow group, <name>:slow) has the same name"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name     string
		Interval string
		Rules    []struct {
			Record, Alert, Expr string
			Labels              map[string]string
			Annotations         map[string]string
		}
	}
}

func TestRulesFollowTheObjective(t *testing.T) {
	tests := map[string]struct {
		edit        func(o *slo.Objective)
		severities  string // of the alerts, in order
		records     int    // in the fast group
		slowRecords int
	}{
		"an objective pages and files tickets": {
			edit: func(o *slo.Objective) {}, severities: "page ticket", records: 3, slowRecords: 10,
		},
		"an objective with pages disabled only files tickets": {
			edit: func(o *slo.Objective) { o.Alerting.PageDisabled = true }, severities: "ticket", records: 3, slowRecords: 10,
		},
		"an objective with tickets disabled only pages": {
			edit: func(o *slo.Objective) { o.Alerting.TicketDisabled = true }, severities: "page", records: 3, slowRecords: 10,
		},
		"an objective with both disabled only records": {
			edit: func(o *slo.Objective) { o.Alerting.PageDisabled, o.Alerting.TicketDisabled = true, true }, records: 3, slowRecords: 10,
		},
		"a one-day objective records its period once, as a burn-rate window": {
			edit: func(o *slo.Objective) { o.Window = slo.Rolling(slo.Day) }, severities: "page ticket", records: 3, slowRecords: 9,
		},
		"a raw ratio of two sums of rates is summed from buckets like events": {
			edit: func(o *slo.Objective) {
				o.SLI = slo.SLI{Raw: promQuery(`sum(rate(errors_total[{{.window}}])) / sum(rate(requests_total[{{.window}}]))`), RawType: slo.RawFailure}
			},
			severities: "page ticket", records: 3, slowRecords: 10,
		},
		"another raw objective has no buckets: its slow group holds its own long windows": {
			edit: func(o *slo.Objective) {
				o.SLI = slo.SLI{Raw: promQuery(`max_over_time(error_ratio[{{.window}}])`), RawType: slo.RawFailure}
			},
			severities: "page ticket", records: 3, slowRecords: 8,
		},
		"a raw ratio over a fixed range is not taken for events": {
			edit: func(o *slo.Objective) {
				o.SLI = slo.SLI{Raw: promQuery(`sum(rate(errors_total[5m])) / sum(rate(requests_total[{{.window}}]))`), RawType: slo.RawFailure}
			},
			severities: "page ticket", records: 3, slowRecords: 8,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := counterObjective("a")
			tc.edit(&o)
			out, err := Rules(&slo.Set{Objectives: []slo.Objective{o}})
			if err != nil {
				t.Fatalf("Rules: %v", err)
			}
			var f ruleFile
			if err := yaml.Unmarshal(out, &f); err != nil {
				t.Fatalf("not YAML: %v\n%s", err, out)
			}
			if len(f.Groups) != 2 || f.Groups[0].Name != "a" || f.Groups[1].Name != "a:slow" {
				t.Fatalf("groups %+v, want a and a:slow", f.Groups)
			}
			if f.Groups[0].Interval != "" || f.Groups[1].Interval != "5m" {
				t.Errorf("intervals %q and %q, want Prometheus' own and 5m", f.Groups[0].Interval, f.Groups[1].Interval)
			}
			slow := 0
			var slowSev []string
			for _, r := range f.Groups[1].Rules {
				if r.Record == "" {
					if r.Labels["severity"] != "ticket" {
						t.Errorf("a %s alert in the slow group", r.Labels["severity"])
					}
					slowSev = append(slowSev, r.Labels["severity"])
					continue
				}
				if r.Labels[LabelService] != "svc" || r.Labels[LabelSLO] != "a" {
					t.Errorf("record %s has labels %v", r.Record, r.Labels)
				}
				slow++
			}
			if slow != tc.slowRecords {
				t.Errorf("%d records in the slow group, want %d", slow, tc.slowRecords)
			}
			var sev []string
			records := 0
			for _, r := range f.Groups[0].Rules {
				if r.Record != "" {
					records++
					if r.Labels[LabelService] != "svc" || r.Labels[LabelSLO] != "a" {
						t.Errorf("record %s has labels %v", r.Record, r.Labels)
					}
					continue
				}
				sev = append(sev, r.Labels["severity"])
				if strings.Contains(r.Expr, "ratio_rate6h") && !strings.Contains(r.Expr, `last_over_time(slo:sli_error:ratio_rate6h{slogate_service="svc",slogate_slo="a"}[10m])`) {
					t.Errorf("the page alert reads the slow group's 6h ratio without last_over_time:\n%s", r.Expr)
				}
				if r.Alert != "AErrorBudgetBurn" || r.Labels["service"] != "svc" || r.Labels["slo"] != "a" {
					t.Errorf("alert %s has labels %v", r.Alert, r.Labels)
				}
			}
			if got := strings.Join(append(sev, slowSev...), " "); got != tc.severities {
				t.Errorf("alert severities %q, want %q", got, tc.severities)
			}
			if records != tc.records {
				t.Errorf("%d records in the fast group, want %d", records, tc.records)
			}
		})
	}
}

func TestAlertName(t *testing.T) {
	tests := map[string]struct{ name, alert, want string }{
		"the alerting name wins":                   {"checkout-availability", "CheckoutDown", "CheckoutDown"},
		"a kebab-case name becomes CamelCase":      {"checkout-availability", "", "CheckoutAvailabilityErrorBudgetBurn"},
		"a name that starts with a digit is fixed": {"5xx.ratio", "", "SLO5xxRatioErrorBudgetBurn"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := AlertName(slo.Objective{Name: tc.name, Alerting: slo.Alerting{Name: tc.alert}})
			if got != tc.want {
				t.Errorf("AlertName = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestYAMLScalarsReadBackUnchanged(t *testing.T) {
	tests := map[string]string{
		"a metric name stays plain":             "slo:sli_error:ratio_rate5m",
		"a number stays a string":               "0.999",
		"a YAML 1.1 boolean stays a string":     "on",
		"an empty string":                       "",
		"quotes and backslashes":                `a "b" \c`,
		"a template":                            "{{ $value | humanizePercentage }}",
		"a key-like string":                     "a: b",
		"a trailing colon":                      "ab:",
		"a leading dash":                        "- item",
		"a comment sign":                        "# not a comment",
		"unicode and control characters":        "14.4× \t\x01",
		"several lines":                         "a\nb",
		"several lines starting with spaces":    "  (\n  a\n)",
		"several lines ending with a newline":   "a\nb\n",
		"several lines with trailing spaces":    "a \nb",
		"several lines with an empty line":      "a\n\nb",
		"a date stays a string":                 "2026-11-21",
		"a sexagesimal number stays a string":   "12:30",
		"an HTML-looking string is not escaped": "a < b && c > d",
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			writeYAML(&b, ymap{{"k", s}, {"list", yseq{s, ymap{{s, s}}}}})
			var got struct {
				K    string
				List []any
			}
			if err := yaml.Unmarshal([]byte(b.String()), &got); err != nil {
				t.Fatalf("not YAML: %v\n%s", err, b.String())
			}
			if got.K != s {
				t.Errorf("read back %q, want %q from\n%s", got.K, s, b.String())
			}
			if len(got.List) != 2 || got.List[0] != s {
				t.Fatalf("list %#v from\n%s", got.List, b.String())
			}
			m, ok := got.List[1].(map[string]any)
			if !ok || m[s] != s {
				t.Errorf("map %#v, want {%q: %q} from\n%s", got.List[1], s, s, b.String())
			}
		})
	}
}
