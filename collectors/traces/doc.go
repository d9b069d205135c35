// Package traces measures event-ratio SLIs from distributed traces, with
// Grafana Tempo's TraceQL metrics.
//
// # Three routes from traces to an SLO
//
// 1. Span metrics, through the Prometheus collector (the most useful). The
// OpenTelemetry Collector's spanmetrics connector, or Tempo's
// metrics-generator, turns every span into Prometheus counters and
// histograms. Those are ordinary Prometheus series, so the SLI is a PromQL
// SLI measured by collectors/prometheus, with all its precision and
// history; nothing in this package is involved:
//
//	apiVersion: openslo/v1
//	kind: SLO
//	metadata:
//	  name: checkout-availability
//	spec:
//	  service: checkout
//	  budgetingMethod: Occurrences
//	  timeWindow:
//	    - duration: 28d
//	      isRolling: true
//	  objectives:
//	    - target: 0.999
//	  indicator:
//	    metadata:
//	      name: checkout-span-errors
//	    spec:
//	      ratioMetric:
//	        counter: true
//	        bad:
//	          metricSource:
//	            type: Prometheus
//	            spec:
//	              query: traces_spanmetrics_calls_total{service="checkout", span_kind="SPAN_KIND_SERVER", status_code="STATUS_CODE_ERROR"}
//	        total:
//	          metricSource:
//	            type: Prometheus
//	            spec:
//	              query: traces_spanmetrics_calls_total{service="checkout", span_kind="SPAN_KIND_SERVER"}
//
// (The connector's series are named traces_spanmetrics_calls_total with
// its default namespace; older collectors name it calls_total. A canary's
// version label comes from the connector's dimensions, e.g.
// service.version.)
//
// 2. TraceQL metrics, with this package's Client. Tempo 2.7 and later
// count the spans that match a TraceQL spanset filter over any range with
// the instant metrics API. Counts sends two requests per SLI:
//
//	GET /api/metrics/query?q={<total filter>} | count_over_time()&start=<unix ns>&end=<unix ns>
//	GET /api/metrics/query?q={<good or bad filter>} | count_over_time()&start=<unix ns>&end=<unix ns>
//
// and sums the "value" of every series of each answer
// ({"series":[{"labels":[...],"value":N,"promLabels":"..."}]}). Times are
// sent as Unix nanoseconds, which Tempo reads as such because they are
// longer than 10 digits. No metrics-generator or Prometheus is needed, but
// the figures depend on Tempo's retention and sampling: head sampling at
// 10 % gives counts a tenth of the real ones, ratios unbiased only if
// errors are sampled like the rest (tail sampling that keeps every error
// skews them). The SLI's queries are spanset filters such as
//
//	total: {resource.service.name = "checkout" && kind = server}
//	bad:   {resource.service.name = "checkout" && kind = server && status = error}
//
// A scope {"service.version": "v2"} becomes a condition on the resource
// attribute of that name: the filter {F} is sent as
// { (F) && resource.service.version = "v2" }. TraceQL has no Go AST
// library, so ScopeFilter does a careful minimal rewrite: the filter must
// be exactly one spanset (braces and parentheses balanced, outside string
// literals; no comments, no pipeline), scope keys must match
// [A-Za-z_][A-Za-z0-9_.]*, and values are written as Go-quoted string
// literals, which Tempo's lexer (text/scanner + strconv.Unquote) reads back
// exactly, so no value can close the brace or add a pipeline stage.
//
// 3. OTLP span ingest (later). A receiver for OTLP/HTTP (POST /v1/traces)
// would count spans exactly as they arrive, without sampling by a tracing
// backend; it is not implemented yet.
//
// # Outcomes
//
//   - connection failures, 5xx and 429 wrap slo.ErrUnavailable, with the
//     status and Tempo's error text; so do 401 and 403 (credentials, not
//     the SLI, need fixing), an answer that is not the JSON expected, and
//     an answer marked PARTIAL;
//   - other 4xx (Tempo's "invalid TraceQL query: parse error ...") and
//     filters the rewrite refuses wrap slo.ErrBadQuery;
//   - the deadline (Config.Timeout, default 10s, for each request) wraps
//     slo.ErrTimeout;
//   - zero total spans, or a NaN or infinite value, wrap slo.ErrNoData.
package traces
