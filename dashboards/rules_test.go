package dashboards

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

func TestRulesGolden(t *testing.T) {
	got, err := Rules(fixture(t))
	if err != nil {
		t.Fatalf("Rules: %v", err)
	}
	golden(t, "rules.yaml", got)
}

// promtool runs the real promtool in dir and fails the test with its
// output when it does not succeed.
func promtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	bin := testenv.Binary(t, "promtool", "prometheus")
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRulesPassPromtoolCheck(t *testing.T) {
	tests := map[string]*slo.Set{
		"the fixture's rule file is valid": fixture(t),
		"a single objective with every alert disabled is valid": {Objectives: []slo.Objective{{
			Name: "quiet", Service: "svc", Target: 0.9, Window: slo.Rolling(slo.Day),
			SLI:      slo.SLI{Bad: promQuery(`sum(errors_total)`), Total: promQuery(`sum(requests_total)`)},
			Alerting: slo.Alerting{PageDisabled: true, TicketDisabled: true},
		}}},
		"an empty set is a valid empty rule file": {},
		"names that look like templates or PromQL stay data": {Objectives: []slo.Objective{{
			Name: `odd{{.x}}"}`, Service: `shop{{ $value }}\`, Target: 0.99, Window: slo.Rolling(28 * slo.Day),
			Alerting: slo.Alerting{Name: "OddBurn"},
			SLI:      slo.SLI{Good: promQuery(`sum(ok_total)`), Total: promQuery(`sum(requests_total)`)},
		}}},
	}
	for name, set := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := Rules(set)
			if err != nil {
				t.Fatalf("Rules: %v", err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), out, 0o644); err != nil {
				t.Fatal(err)
			}
			res := promtool(t, dir, "check", "rules", "rules.yaml")
			if !strings.Contains(res, "SUCCESS") {
				t.Errorf("promtool check rules did not report SUCCESS:\n%s", res)
			}
		})
	}
}

// promtoolTests are rule unit tests over the fixture's rule file. Samples
// are one a minute; the figures are worked out by hand:
//   - checkout: 100 requests a minute, 2 of them 5xx: error ratio 2 %, 20×
//     the 0.1 % budget, above the page factors 14.4 and 6 and the ticket
//     factors 3 and 1 as soon as the windows hold data;
//   - catalog: 0.4 % errors for a 0.5 % budget (burn 0.8): nothing fires;
//   - search (raw success ratio, tickets only, 7d): 95 % success for a 98 %
//     target, error ratio 5 % = 2.5× the budget, above 0.7 (1d) and 0.233 (3d).
//
// promtool evaluates every group at evaluation_interval, whatever its own
// interval, so the tests evaluate at 5m, the slow groups' interval: the
// buckets then tile time as in Prometheus. The slow groups go first, so
// that the fast groups read the buckets of the same instant: the figures
// a fast group reads in Prometheus up to 5m later (doc.go, "Staleness").
const promtoolTests = `rule_files: [rules.yaml]
evaluation_interval: 5m
tests:
  - interval: 1m
    input_series:
      - series: 'http_requests_total{service="checkout",code="200"}'
        values: '0+98x180'
      - series: 'http_requests_total{service="checkout",code="500"}'
        values: '0+2x180'
      - series: 'http_requests_total{job="catalog",code="200"}'
        values: '0+996x180'
      - series: 'http_requests_total{job="catalog",code="503"}'
        values: '0+4x180'
      - series: 'search_queries_ok_total'
        values: '0+95x180'
      - series: 'search_queries_total'
        values: '0+100x180'
    promql_expr_test:
      - expr: round(slo:sli_error:ratio_rate5m{slogate_slo="checkout-availability"}, 0.0001)
        eval_time: 2h
        exp_samples:
          - labels: '{slogate_service="checkout",slogate_slo="checkout-availability"}'
            value: 0.02
      - expr: round(slo:sli_error:ratio_rate1h{slogate_slo="catalog-errors"}, 0.0001)
        eval_time: 2h
        exp_samples:
          - labels: '{slogate_service="catalog",slogate_slo="catalog-errors"}'
            value: 0.004
      - expr: round(slo:error_budget_remaining:ratio{slogate_slo="checkout-availability"}, 0.001)
        eval_time: 2h
        exp_samples:
          - labels: '{slogate_service="checkout",slogate_slo="checkout-availability"}'
            value: -19
      - expr: slo:objective:ratio{slogate_slo="checkout-availability"}
        eval_time: 2h
        exp_samples:
          - labels: 'slo:objective:ratio{slogate_service="checkout",slogate_slo="checkout-availability"}'
            value: 0.999
    alert_rule_test:
      - alertname: CheckoutAvailabilityErrorBudgetBurn
        eval_time: 2h
        exp_alerts:
          - exp_labels:
              severity: page
              service: checkout
              slo: checkout-availability
              team: payments
              slogate_service: checkout
              slogate_slo: checkout-availability
            exp_annotations:
              summary: "checkout-availability (checkout) is burning its error budget too fast (page)"
              description: "SLO checkout-availability of service checkout has a target of 99.9% over 30d, an error budget of 0.1%. This page fires when the error ratio exceeds 14.4× the budget (error ratio 1.44%) over both 1h and 5m, or 6× the budget (error ratio 0.6%) over both 6h and 30m. Error ratio over the long window: 2%."
              runbook_url: https://runbooks.example.com/checkout/availability
          - exp_labels:
              severity: ticket
              service: checkout
              slo: checkout-availability
              team: payments
              slogate_service: checkout
              slogate_slo: checkout-availability
            exp_annotations:
              summary: "checkout-availability (checkout) is burning its error budget too fast (ticket)"
              description: "SLO checkout-availability of service checkout has a target of 99.9% over 30d, an error budget of 0.1%. This ticket fires when the error ratio exceeds 3× the budget (error ratio 0.3%) over both 1d and 2h, or 1× the budget (error ratio 0.1%) over both 3d and 6h. Error ratio over the long window: 2%."
              runbook_url: https://runbooks.example.com/checkout/availability
      - alertname: CatalogHighErrorRate
        eval_time: 2h
        exp_alerts: []
      - alertname: SearchSuccessErrorBudgetBurn
        eval_time: 2h
        exp_alerts:
          - exp_labels:
              severity: ticket
              service: search
              slo: search-success
              slogate_service: search
              slogate_slo: search-success
            exp_annotations:
              summary: "search-success (search) is burning its error budget too fast (ticket)"
              description: "SLO search-success of service search has a target of 98% over 7d, an error budget of 2%. This ticket fires when the error ratio exceeds 0.7× the budget (error ratio 1.4%) over both 1d and 2h, or 0.2333× the budget (error ratio 0.4667%) over both 3d and 6h. Error ratio over the long window: 5%."
  - interval: 1m
    input_series:
      # 0.05 % errors (half the budget) for 2h: no alert; then 90m at 50 %.
      # The counters start high so that increase() extrapolates them alike.
      - series: 'http_requests_total{service="checkout",code="200"}'
        values: '1000000+1999x120 1240880+1000x89'
      - series: 'http_requests_total{service="checkout",code="500"}'
        values: '5000+1x120 6120+1000x89'
    alert_rule_test:
      - alertname: CheckoutAvailabilityErrorBudgetBurn
        eval_time: 2h
        exp_alerts: []
      # At 3h30m the last hour and the last 5m are half errors: page,
      # value 50 %. The day so far holds 90120 errors in 420000 requests
      # (21.46 %), the last 2h more: ticket.
      - alertname: CheckoutAvailabilityErrorBudgetBurn
        eval_time: 3h30m
        exp_alerts:
          - exp_labels:
              severity: page
              service: checkout
              slo: checkout-availability
              team: payments
              slogate_service: checkout
              slogate_slo: checkout-availability
            exp_annotations:
              summary: "checkout-availability (checkout) is burning its error budget too fast (page)"
              description: "SLO checkout-availability of service checkout has a target of 99.9% over 30d, an error budget of 0.1%. This page fires when the error ratio exceeds 14.4× the budget (error ratio 1.44%) over both 1h and 5m, or 6× the budget (error ratio 0.6%) over both 6h and 30m. Error ratio over the long window: 50%."
              runbook_url: https://runbooks.example.com/checkout/availability
          - exp_labels:
              severity: ticket
              service: checkout
              slo: checkout-availability
              team: payments
              slogate_service: checkout
              slogate_slo: checkout-availability
            exp_annotations:
              summary: "checkout-availability (checkout) is burning its error budget too fast (ticket)"
              description: "SLO checkout-availability of service checkout has a target of 99.9% over 30d, an error budget of 0.1%. This ticket fires when the error ratio exceeds 3× the budget (error ratio 0.3%) over both 1d and 2h, or 1× the budget (error ratio 0.1%) over both 3d and 6h. Error ratio over the long window: 21.46%."
              runbook_url: https://runbooks.example.com/checkout/availability
`

func TestRulesFireOnKnownErrorRates(t *testing.T) {
	out, err := Rules(fixture(t))
	if err != nil {
		t.Fatalf("Rules: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yaml"), []byte(slowFirst(t, out)+promtoolTests), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, dir, "test", "rules", "rules_test.yaml")
}

// slowFirst is the group_eval_order line of a promtool test file that
// evaluates every slow group before the fast ones (promtool puts a group
// it is not told about first, so all are listed).
func slowFirst(t *testing.T, rules []byte) string {
	t.Helper()
	var f ruleFile
	if err := yaml.Unmarshal(rules, &f); err != nil {
		t.Fatalf("rule file: %v", err)
	}
	var slow, fast []string
	for _, g := range f.Groups {
		name := strconv.Quote(g.Name)
		if strings.HasSuffix(g.Name, SlowGroupSuffix) {
			slow = append(slow, name)
		} else {
			fast = append(fast, name)
		}
	}
	return "group_eval_order: [" + strings.Join(append(slow, fast...), ", ") + "]\n"
}
