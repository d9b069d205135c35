// Package dashboards generates, from SLOs, the artifacts that make them
// visible where teams already look: a Prometheus rule file (recording rules
// and multi-window multi-burn-rate alerts) and Grafana dashboards that draw
// the recorded series.
//
// # Recorded series
//
// Every series slogate records carries two labels that name its objective
// and that cannot clash with the labels of an SLI's own query:
//
//	slogate_service  the objective's service
//	slogate_slo      the objective's name
//
// and keeps whatever labels the SLI's error-ratio expression returns. Per
// objective, one rule group named after the objective holds:
//
//	slo:sli_error:ratio_rate<w>          error ratio over w, for every window of
//	                                     slo.BurnRateWindows (5m … 3d) and for
//	                                     the SLO period (30d, 28d …; a calendar
//	                                     window uses its nominal period, e.g.
//	                                     30d for a month, measured rolling)
//	slo:objective:ratio                  the target, e.g. 0.999
//	slo:error_budget:ratio               1 − target
//	slo:error_budget_remaining:ratio     1 − period error ratio / (1 − target);
//	                                     negative when overspent
//
// The error ratios come from slo.SLI.ErrorRatioExpr, so counter SLIs are
// measured with increase() over each window and templated ones are rendered
// with {{.window}}.
//
// # Alerts
//
// One alert per severity (page, ticket) and objective, named
// Alerting.Name or <CamelCaseName>ErrorBudgetBurn, the severities sharing
// the name as in Sloth. Its expression joins the severity's tiers with or;
// a tier is
//
//	slo:sli_error:ratio_rate<long>{…} > (factor * budget)
//	and
//	slo:sli_error:ratio_rate<short>{…} > (factor * budget)
//
// with factor = Tier.Factor(Window.NominalPeriod()). No `for` clause: the
// short window already stops it flapping and resets it quickly. Labels:
// severity (page or ticket), service, slo, and the objective's
// Alerting.Labels (slogate's three win over a label of the same name).
// Annotations: summary and description, which state the target, windows,
// factors and thresholds, then the objective's Alerting.Annotations (which
// win over slogate's). The alert's value is the long-window error ratio of
// the first tier that fires.
//
// Objectives measured from a source other than Prometheus have no rules and
// no panels: the rule file lists them in a comment.
//
// # Grafana
//
// One dashboard per service (schema 39, uid DashboardUID(service), title
// "SLOs: <service>"), querying only the recorded series above through a
// ${datasource} variable of type prometheus. Per objective, a row with:
// the error budget remaining (stat), the burn rate over every window of
// slo.BurnRateWindows (error ratio / budget, with the alert factors as
// threshold lines), and the SLI over the period and over 1h against the
// target. Deploys are drawn from the Grafana annotations tagged "slogate"
// and the service's name (built-in Grafana datasource, type tags), the tags
// slogate's Grafana notifier posts them with.
//
// The rule file is YAML written by this package (no YAML library), and
// every PromQL expression in either output is parsed again with
// slo.ParsePromQL before it is accepted.
package dashboards
