package slo

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./slo -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (run go test ./slo -update after checking):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

func TestLoadExamplesIsValid(t *testing.T) {
	set, err := Load("../examples/slos")
	if err != nil {
		t.Fatalf("examples must be valid:\n%v", err)
	}
	want := map[string]struct {
		service string
		target  float64
		window  string
		source  SourceType
	}{
		"checkout-availability":           {"checkout", 0.999, "30d", SourcePrometheus},
		"checkout-latency":                {"checkout", 0.99, "28d", SourcePrometheus},
		"payments-requests-availability":  {"payments", 0.9995, "30d", SourcePrometheus},
		"payments-authorizations-success": {"payments", 0.995, "30d", SourcePrometheus},
		"search-availability":             {"search", 0.995, "month (Europe/Paris)", SourceElasticsearch},
		"search-span-errors":              {"search", 0.999, "7d", SourceTempo},
	}
	if len(set.Objectives) != len(want) {
		t.Errorf("got %d objectives, want %d", len(set.Objectives), len(want))
	}
	for _, o := range set.Objectives {
		t.Run(o.Name, func(t *testing.T) {
			w, ok := want[o.Name]
			if !ok {
				t.Fatalf("unexpected objective %q", o.Name)
			}
			if o.Service != w.service || o.Target != w.target || o.Window.String() != w.window || o.SLI.SourceType() != w.source {
				t.Errorf("got %s %v %s %s, want %+v", o.Service, o.Target, o.Window, o.SLI.SourceType(), w)
			}
			if o.Pos.Line == 0 || o.Pos.File == "" {
				t.Errorf("objective has no position: %+v", o.Pos)
			}
		})
	}
	p := set.Policy("checkout", "production")
	if p.Default || p.Verification.MinEvents != 500 || p.Canary == nil || p.Canary.Tolerance != 0.005 {
		t.Errorf("checkout production policy = %+v", p)
	}
	if p := set.Policy("checkout", "staging"); !p.Default {
		t.Errorf("checkout staging should get the default policy, got %q", p.Name)
	}
	avail, _ := set.Objective("checkout-availability")
	if avail.SLI.Good.DataSource != "prometheus" || avail.SLI.Good.Windowed {
		t.Errorf("checkout-availability good query = %+v", avail.SLI.Good)
	}
	if got := avail.Alerting.Policies; len(got) != 1 || got[0] != "checkout-burn" {
		t.Errorf("alert policies = %v", got)
	}
	if ap := set.AlertPolicy["checkout-burn"]; len(ap.Conditions) != 1 || ap.Conditions[0].LookbackWindow != time.Hour {
		t.Errorf("alert policy = %+v", ap)
	}
	search, _ := set.Objective("search-availability")
	if es := search.SLI.Bad.Elasticsearch; es == nil || es.Index != "logs-search-*" ||
		es.Query != `{"range":{"http.response.status_code":{"gte":500}}}` {
		t.Errorf("search bad query = %+v", search.SLI.Bad.Elasticsearch)
	}
	if ts := search.SLI.Total.Elasticsearch.TimestampField; ts != "@timestamp" {
		t.Errorf("default timestamp field = %q", ts)
	}
	pay, _ := set.Objective("payments-authorizations-success")
	if !pay.SLI.IsRaw() || pay.SLI.RawType != RawFailure || !pay.Alerting.TicketDisabled {
		t.Errorf("payments raw SLO = %+v", pay)
	}
}

// Each file under testdata/invalid is a kind of bad input; its problems,
// one a line, are in testdata/invalid/NAME.golden.
func TestLoadReportsEveryProblemWithFileLineAndField(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) < 10 {
		t.Fatalf("only %d invalid cases", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			var b strings.Builder
			for _, p := range Problems(err) {
				if p.Pos.File != f {
					t.Errorf("problem names file %q, want %q", p.Pos.File, f)
				}
				if p.Pos.Line == 0 {
					t.Errorf("problem without a line: %v", p)
				}
				b.WriteString(p.Error() + "\n")
			}
			if b.String() != err.Error()+"\n" {
				t.Errorf("Problems(err) does not cover err:\n%v", err)
			}
			golden(t, "invalid/"+name+".golden", []byte(b.String()))
		})
	}
}

func TestLoadReadsEveryFileOfATreeAndResolvesAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("team-a/sli.yml", `apiVersion: openslo/v1
kind: SLI
metadata: {name: ok}
spec:
  ratioMetric:
    counter: true
    good: {metricSource: {metricSourceRef: prom, spec: {query: sum(ok_total)}}}
    total: {metricSource: {metricSourceRef: prom, spec: {query: sum(all_total)}}}
`)
	write("team-a/nested/slo.yaml", `apiVersion: openslo/v1
kind: SLO
metadata: {name: a}
spec:
  service: a
  budgetingMethod: Occurrences
  timeWindow: [{duration: 4w, isRolling: true}]
  indicatorRef: ok
  objectives: [{target: 0.95}]
`)
	write("sources.yaml", `apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec: {type: Prometheus, connectionDetails: {url: "http://prom:9090"}}
`)
	write("README.md", "not an SLO file")
	write(".hidden/skip.yaml", "this: [is not read")
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if set.Files != 3 || len(set.Objectives) != 1 {
		t.Fatalf("files %d objectives %d", set.Files, len(set.Objectives))
	}
	o := set.Objectives[0]
	if o.Window.Duration != 28*Day || o.SLI.Total.PromQL != "sum(all_total)" || set.DataSources["prom"].URL != "http://prom:9090" {
		t.Errorf("objective = %+v", o)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestProblemsOfANonLoadErrorIsEmpty(t *testing.T) {
	if p := Problems(errors.New("x")); len(p) != 0 {
		t.Errorf("got %v", p)
	}
}

func TestAnOpenSearchDataSourceIsMeasuredByTheElasticsearchCollectorAsOpenSearch(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"os.yaml": "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: logs}\nspec: {type: OpenSearch, connectionDetails: {url: \"http://os:9200\"}}\n",
		"es.yaml": "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: es}\nspec: {type: Elasticsearch, connectionDetails: {url: \"http://es:9200\"}}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, flavor string }{{"logs", "opensearch"}, {"es", ""}} {
		ds, ok := set.DataSources[tc.name]
		if !ok || ds.Type != SourceElasticsearch || ds.Flavor != tc.flavor {
			t.Errorf("DataSource %s: %+v, want type %s flavor %q", tc.name, ds, SourceElasticsearch, tc.flavor)
		}
	}
}
