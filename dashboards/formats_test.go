package dashboards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slogate/slogate/slo"
)

// Every form slogate reads (slo/testdata/formats) maps onto the model, so
// its rules pass promtool and its dashboards are JSON, unchanged.
func TestRulesAndDashboardsOfEveryFormAreValid(t *testing.T) {
	files, _ := filepath.Glob("../slo/testdata/formats/*.yaml")
	if len(files) == 0 {
		t.Fatal("no format cases")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			set, err := slo.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Rules(set)
			if err != nil {
				t.Fatalf("Rules: %v", err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), out, 0o644); err != nil {
				t.Fatal(err)
			}
			if res := promtool(t, dir, "check", "rules", "rules.yaml"); !strings.Contains(res, "SUCCESS") {
				t.Errorf("promtool check rules did not report SUCCESS:\n%s", res)
			}
			boards, err := GrafanaAll(set)
			if err != nil {
				t.Fatalf("GrafanaAll: %v", err)
			}
			for name, b := range boards {
				if !json.Valid(b) {
					t.Errorf("dashboard %s is not JSON", name)
				}
			}
		})
	}
}

func TestAnObjectivesOwnSeverityLabelIsKeptOnItsAlert(t *testing.T) {
	set, err := slo.Load("../slo/testdata/formats/pyrra-ratio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Rules(set)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"severity: critical", "severity: warning"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rules lack %q (Pyrra's severities):\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "severity: page") {
		t.Errorf("the page alert's severity was overwritten with page:\n%s", out)
	}
}

// A grouped objective's rules keep route: promtool fires the page of the
// route that burns, with route in its labels, and no other. 10 requests a
// minute per route for 3h; /b fails 3 of them (30 %, 30x the 1 % budget,
// above the page factors 13.44 and 5.6 for 4w), /a and /c none.
const groupedPromtoolTests = `rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'http_requests_total{job="api",route="/a",code="200"}'
        values: '0+10x180'
      - series: 'http_requests_total{job="api",route="/b",code="200"}'
        values: '0+7x180'
      - series: 'http_requests_total{job="api",route="/b",code="500"}'
        values: '0+3x180'
      - series: 'http_requests_total{job="api",route="/c",code="200"}'
        values: '0+10x180'
    promql_expr_test:
      - expr: round(slo:sli_error:ratio_rate1h{slogate_slo="api-routes"}, 0.0001)
        eval_time: 3h
        exp_samples:
          # /a and /c have no 5xx series at all, so no recorded ratio (the
          # gate's measurement reads their missing errors as 0).
          - labels: '{route="/b",slogate_service="api",slogate_slo="api-routes"}'
            value: 0.3
    alert_rule_test:
      - alertname: ApiRoutesErrorBudgetBurn
        eval_time: 3h
        exp_alerts:
          - exp_labels:
              severity: page
              service: api
              slo: api-routes
              route: /b
              slogate_service: api
              slogate_slo: api-routes
            exp_annotations:
              summary: "api-routes (api) is burning its error budget too fast (page)"
              description: "SLO api-routes of service api has a target of 99% over 28d, an error budget of 1%. This page fires when the error ratio exceeds 13.44× the budget (error ratio 13.44%) over both 1h and 5m, or 5.6× the budget (error ratio 5.6%) over both 6h and 30m. Error ratio over the long window: 30%."
          - exp_labels:
              severity: ticket
              service: api
              slo: api-routes
              route: /b
              slogate_service: api
              slogate_slo: api-routes
            exp_annotations:
              summary: "api-routes (api) is burning its error budget too fast (ticket)"
              description: "SLO api-routes of service api has a target of 99% over 28d, an error budget of 1%. This ticket fires when the error ratio exceeds 2.8× the budget (error ratio 2.8%) over both 1d and 2h, or 0.9333× the budget (error ratio 0.9333%) over both 3d and 6h. Error ratio over the long window: 30%."
`

func TestAGroupedObjectivesRulesFirePerValue(t *testing.T) {
	set, err := slo.Load("../slo/testdata/formats/pyrra-grouping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Rules(set)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yaml"), []byte(groupedPromtoolTests), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, dir, "test", "rules", "rules_test.yaml")
}
