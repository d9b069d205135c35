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
// and keeps whatever labels the SLI's error-ratio expression returns.
//
// # Rule groups
//
// Per objective, two rule groups:
//
//	<name>        at Prometheus' evaluation_interval (1m by default): the
//	              short windows and the page alert, fresh at every
//	              evaluation
//	<name>:slow   every 5m (SlowInterval): the buckets, every window summed
//	              from them, the constants and the ticket alert
//
// <name> holds
//
//	slo:sli_error:ratio_rate5m, …30m, …1h  error ratio over the window, from
//	                                     the SLI's own queries
//	                                     (slo.SLI.ErrorRatioExpr: increase()
//	                                     of counter SLIs, {{.window}} of
//	                                     templated ones; 1 − good/total for a
//	                                     good/total SLI, which reads total
//	                                     once)
//	the page alert
//
// and <name>:slow holds
//
//	slo:sli_good:increase5m              the good events of the last 5m
//	slo:sli_total:increase5m             all events of the last 5m (event
//	                                     SLIs and raw ratios of sums, below:
//	                                     the SLI's good query, or total −
//	                                     bad, and its total query, over 5m;
//	                                     for a templated query that
//	                                     returns a per-second rate the buckets
//	                                     are rates: only their ratio means
//	                                     anything, and it is the SLI's)
//	slo:sli_error:ratio_rate2h, …6h, …1d, …3d, and over the SLO period
//	                                     (30d, 28d …; a calendar window uses
//	                                     its nominal period, e.g. 30d for a
//	                                     month, measured rolling): from the
//	                                     buckets, or the SLI's own queries for
//	                                     a raw SLI
//	slo:objective:ratio                  the target, e.g. 0.999
//	slo:error_budget:ratio               1 − target
//	slo:error_budget_remaining:ratio     1 − period error ratio / (1 − target);
//	                                     negative when overspent
//	the ticket alert
//
// A window summed from the buckets changes only when a bucket is added,
// so it is computed once per bucket, in the slow group right after them.
//
// A window w built from the buckets is a ratio of event sums, weighted by
// traffic like the SLI's own ratio (not an average of the 5m ratios,
// which gives a quiet night's 10 % errors the weight of a busy day's
// 0.1 %):
//
//	1 - sum_over_time(slo:sli_good:increase5m{…}[w - 1s])
//	  / sum_over_time(slo:sli_total:increase5m{…}[w - 1s])
//
// The buckets are recorded every 5m and each spans 5m, so they tile time:
// w/5m of them cover the window, no event counted twice. The range is
// w less a second so that it holds w/5m buckets on Prometheus 2, which
// counts a sample exactly w old (3 does not). Recording them every minute
// instead would count each event five times and blur both ends of the
// window over 5m; the ratio would cancel the five, not the blur.
//
// A raw SLI (a ratio measured directly) that is a ratio of two sums of
// rate() or increase() over {{.window}}, Sloth's usual raw form,
//
//	sum(rate(errors_total[{{.window}}])) / sum(rate(requests_total[{{.window}}]))
//
// is a ratio of events under another name: its two sides add up over
// time, so it gets buckets (its numerator and denominator over 5m) like an
// event SLI. Any other raw SLI (an average, a quantile, a share of time
// slices) has no events to sum, and an average of its 5m ratios would not
// be its ratio: its windows stay its own expression, the long ones
// evaluated every 5m in the slow group.
//
// # Cost
//
// BenchmarkRuleCycle1000SLOs measures one rule cycle of 1,000 SLOs on a
// real Prometheus against the layout of old (every window from the raw
// series at every evaluation, one group per objective), in the same run.
// An SLO-period window read 43,200 raw samples of each series every
// minute (30d at a 1m scrape); it now reads 8,640 buckets of each of two
// series every five minutes. On this project's 2-core machine, one run:
// the old rules cost 26.8 s of evaluation a minute (13,000 rules), the new
// ones 2.26 s a minute (1.12 s of fast rules every minute, 5.69 s of slow
// rules every 5m; 15,000 rules): 11.8× less. Runs vary by ±30 % with the
// machine's load (the benchmark says how each figure was taken); what is
// left is mostly the per-rule cost of the 5m, 30m and 1h windows and the
// page alert, evaluated every minute as before.
//
// # Accuracy
//
// A window from the buckets equals the SLI's own expression over the
// window that ends at the newest bucket. TestBucketWindowsMatchTheRawExpression
// checks it with promtool test rules (2h, 6h, 1d, 3d and 7d, steady,
// bursty and diurnal traffic, good/total, bad/total and rate SLIs) to a
// relative 1e-9: in promtool the samples fall on the evaluation grid, so
// the SLI's increase() and the buckets read the counters at the same
// instants and only float rounding is left. In a live Prometheus, scrapes
// fall between evaluations: each bucket's increase() extrapolates from its
// first and last samples to its edges, so the events between two buckets'
// samples are counted at the bucket's own rate. That is exact for steady
// traffic; at a change of rate it is off by at most the change times one
// scrape interval, per series, where the SLI's own increase() over w
// extrapolates only at the window's two ends. So a window's event sum is
// off by at most Σ|change of rate| × scrape interval / events in the
// window: for a day of 1,000 requests a minute with a one-hour burst at
// 5,000 and a 1m scrape, 2 × 4,000 / 1.68M = 0.5 % of the total; for its
// errors, which jump from 2 to 2,000 a minute, 3.3 % of the errors. A
// bound, not the usual figure: the two buckets around a change partly
// make up for each other. Counter resets are handled inside each
// bucket by increase(), as in the SLI's own expression.
//
// # Staleness
//
//   - 5m, 30m, 1h: as fresh as the evaluation interval.
//   - 2h, 6h, 1d, 3d, the period, the budget remaining and the ticket
//     alert: evaluated every 5m, so up to 5m old (plus the slow group's own
//     evaluation time). The page tier 6h/30m fires or resets up to 5m late
//     on its long window only (the 1h/5m tier is as before); a ticket fires
//     or resolves up to 5m later than at a 1m interval (its windows are a
//     day and three).
//   - A slow record is sampled every 5m, Prometheus' lookback: an instant
//     query made while the slow group writes its next sample can find
//     none. The page alert therefore reads the 6h ratio through
//     last_over_time(…[10m]); read slow records so wherever a gap matters
//     (a Grafana graph does not show one). The ticket alert reads its own
//     group only.
//   - History: the buckets exist from the moment the rules are loaded, so
//     a 30d window holds 30 days only 30 days later (backfill with
//     promtool tsdb create-blocks-from rules to have it at once). While
//     Prometheus does not evaluate rules (down, restarting) no buckets are
//     written and the events of that time, but its last 5m, are missing
//     from the long windows; the SLI's own expression would still count
//     them from the counters.
//
// # Alerts
//
// One alert per severity (page, ticket) and objective, the page in
// <name>, the ticket in <name>:slow, named
// Alerting.Name or <CamelCaseName>ErrorBudgetBurn, the severities sharing
// the name as in Sloth. Its expression joins the severity's tiers with or;
// a tier is
//
//	slo:sli_error:ratio_rate<long>{…} > (factor * budget)
//	and
//	slo:sli_error:ratio_rate<short>{…} > (factor * budget)
//
// with factor = Tier.Factor(Window.NominalPeriod()) (the page alert reads
// 6h through last_over_time, see Staleness). No `for` clause: the
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
