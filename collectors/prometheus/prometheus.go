// Package prometheus measures SLIs from a Prometheus-compatible HTTP API
// (Prometheus, Thanos, Mimir, Cortex) through client_golang's API v1 client.
//
// Every measurement is a set of instant queries evaluated at the end of the
// measured range (the API's time parameter), with the range's length as
// the window:
//
//   - counter queries (slo.Query.Windowed false) become
//     increase(selector[window]) on every selector, so each answers a
//     number of events;
//   - templated queries (Sloth style, rate(...[{{.window}}])) answer
//     per-second rates averaged over the window: the events are the value ×
//     the window in seconds (rate is increase / window, so this is exact);
//   - raw ratio queries answer the ratio itself.
//
// Queries are built by slo.(*Query).Expr on the parsed AST, scope matchers
// included, and sent as the AST's text: no scope value is ever spliced into
// query text here.
package prometheus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// DefaultTimeout bounds each query when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config says where the Prometheus-compatible API lives and how to reach it.
type Config struct {
	// URL is the API's base URL, path prefix included for Thanos, Mimir or
	// Cortex (e.g. http://mimir:8080/prometheus); /api/v1/query is
	// appended to it. Required.
	URL string
	// Timeout bounds each query (the client's deadline and Prometheus'
	// own timeout parameter). Zero means DefaultTimeout.
	Timeout time.Duration
	// BearerToken is sent as "Authorization: Bearer ...". At most one of
	// BearerToken and Username/Password.
	BearerToken string
	// Username and Password are sent with HTTP basic authentication.
	Username, Password string
	// TLS configures https URLs.
	TLS TLSConfig
	// Headers are added to every request, e.g. X-Scope-OrgID for a Mimir
	// or Cortex tenant.
	Headers map[string]string
}

// TLSConfig configures the TLS client.
type TLSConfig struct {
	// CAFile is a PEM file of the CAs that sign the server's certificate,
	// in addition to the system's.
	CAFile string
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
}

// Client measures SLIs from one Prometheus-compatible API. It is safe for
// concurrent use.
type Client struct {
	api     v1.API
	timeout time.Duration
	name    string // the URL without credentials
	logger  *slog.Logger
}

// New checks cfg and returns a client. Every problem in cfg is reported at
// once. logger may be nil (nothing is logged).
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	var errs []error
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		errs = append(errs, errors.New("url: required"))
	case err != nil:
		// url.Parse's message quotes the URL, credentials and all.
		errs = append(errs, errors.New("url: not a valid URL (want http://host:port/prefix or https://...)"))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url: scheme must be http or https, got %q", u.Scheme))
	case u.Host == "":
		errs = append(errs, errors.New("url: no host"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must not be negative, got %s", cfg.Timeout))
	}
	if cfg.BearerToken != "" && (cfg.Username != "" || cfg.Password != "") {
		errs = append(errs, errors.New("bearerToken and username/password: set one, not both"))
	}
	if cfg.Password != "" && cfg.Username == "" {
		errs = append(errs, errors.New("password: set without a username"))
	}
	if u != nil && u.User != nil && (cfg.Username != "" || cfg.BearerToken != "") {
		errs = append(errs, errors.New("url: has credentials and so does the config: set one"))
	}
	for k := range cfg.Headers {
		if http.CanonicalHeaderKey(k) == "Authorization" {
			errs = append(errs, errors.New("headers: Authorization is set with bearerToken or username/password"))
		}
	}
	tlsConfig, err := cfg.TLS.build()
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("prometheus config: %w", errors.Join(errs...))
	}

	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.MaxIdleConnsPerHost = 16
	rt := &roundTripper{
		next:     transport,
		bearer:   cfg.BearerToken,
		username: cfg.Username,
		password: cfg.Password,
		headers:  cfg.Headers,
	}
	c, err := api.NewClient(api.Config{Address: cfg.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus config: url: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	name := u.Redacted()
	return &Client{
		api:     v1.NewAPI(c),
		timeout: timeout,
		name:    name,
		logger:  logger.With("component", "collectors/prometheus", "source", name),
	}, nil
}

func (t TLSConfig) build() (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in
	if t.CAFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tls.caFile: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls.caFile: %s: no PEM certificate", t.CAFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// roundTripper adds credentials and headers to each request (on a clone, as
// http.RoundTripper requires) and records the answer's status code for
// the error classification.
type roundTripper struct {
	next               http.RoundTripper
	bearer             string
	username, password string
	headers            map[string]string
}

type statusKey struct{}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range rt.headers {
		req.Header.Set(k, v)
	}
	switch {
	case rt.bearer != "":
		req.Header.Set("Authorization", "Bearer "+rt.bearer)
	case rt.username != "":
		req.SetBasicAuth(rt.username, rt.password)
	}
	resp, err := rt.next.RoundTrip(req)
	if resp != nil {
		if p, ok := req.Context().Value(statusKey{}).(*int); ok {
			*p = resp.StatusCode
		}
	}
	return resp, err
}

// String names the source without credentials: "prometheus http://host:9090".
func (c *Client) String() string { return "prometheus " + c.name }

// Name is the source's URL without credentials.
func (c *Client) Name() string { return c.name }

// Result is one query a measurement ran.
type Result struct {
	// Role is "good", "bad", "total" or "raw".
	Role string
	// Query is the PromQL sent, scope matchers included.
	Query string
	// Value is what Prometheus answered (summed over the vector's series).
	Value float64
	// Events is Value turned into a number of events (× window seconds
	// for templated queries) or, for a raw SLI, the ratio as answered.
	Events float64
}

// Measurement is a measurement with its evidence.
type Measurement struct {
	Counts slo.Counts
	// At is the instant the queries were evaluated at; Window their range.
	At     time.Time
	Window time.Duration
	// Results are the queries run, in the order good, bad, total, raw.
	Results []Result
	// Warnings are Prometheus' warnings (e.g. a partial answer from a
	// Thanos store or Mimir ingester that was down), each prefixed with
	// the query's role. They are logged at warn level too. The figures
	// stand; a caller may decide they are not to be trusted.
	Warnings []string
}

// Counts measures sli over r, narrowed to scope: the events of the window
// r.Duration() ending at r.End. It satisfies the gate's Source interface;
// Measure returns the same with the queries and warnings.
func (c *Client) Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error) {
	m, err := c.Measure(ctx, sli, r, scope)
	return m.Counts, err
}

// Measure is Counts with its evidence. Counter SLIs run their queries
// concurrently; good is total − bad when the SLI counts bad events. Errors
// wrap slo.ErrNoData (empty vector, NaN, ±Inf), slo.ErrBadQuery,
// slo.ErrUnavailable or slo.ErrTimeout and name the query.
func (c *Client) Measure(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (Measurement, error) {
	window := r.Duration()
	m := Measurement{At: r.End, Window: window}
	if window <= 0 {
		return m, fmt.Errorf("prometheus %s: range %s: %w: empty range", sli.Name, r, slo.ErrBadQuery)
	}
	for _, k := range scope.Keys() {
		// A name outside [a-zA-Z_][a-zA-Z0-9_]* would be sent quoted (UTF-8
		// label names), which Prometheus before 3.0 refuses: say so here.
		if !model.LabelName(k).IsValidLegacy() {
			return m, fmt.Errorf("prometheus %s: %w: scope label name %q is not a Prometheus label name", sli.Name, slo.ErrBadQuery, k)
		}
	}
	jobs, err := roleQueries(sli)
	if err != nil {
		return m, err
	}

	results := make([]Result, len(jobs))
	warns := make([][]string, len(jobs))
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		expr, err := j.q.Expr(window, scope)
		if err != nil {
			errs[i] = fmt.Errorf("prometheus %s: %s query %s: %w: %w", sli.Name, j.role, j.q.Pos, slo.ErrBadQuery, err)
			continue
		}
		results[i] = Result{Role: j.role, Query: expr.String()}
	}
	if err := errors.Join(errs...); err != nil {
		return m, err
	}
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			// A raw ratio is one figure: several series would be summed
			// (per-pod ratios added), so it must answer exactly one.
			v, w, err := c.query(ctx, results[i].Query, r.End, j.role == "raw", j.q.AllowPartial)
			warns[i] = w
			if err != nil {
				errs[i] = fmt.Errorf("prometheus %s: %s query: %w", sli.Name, j.role, err)
				return
			}
			results[i].Value = v
			results[i].Events = v
			if j.q.Windowed && j.role != "raw" {
				// A templated query answers a rate per second averaged over
				// the window: the events are rate × window.
				results[i].Events = v * window.Seconds()
			}
		})
	}
	wg.Wait()
	// A good or bad query with no series while total has events counts
	// zero: a counter of 5xx responses that never happened does not exist
	// (Sloth's error_query on a healthy service). Only an empty total is
	// no data.
	if len(jobs) == 2 && errors.Is(errs[0], errEmpty) && errs[1] == nil {
		errs[0] = nil
		results[0].Value, results[0].Events = 0, 0
	}
	m.Results = results
	for i, w := range warns {
		for _, s := range w {
			m.Warnings = append(m.Warnings, jobs[i].role+": "+s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return m, err
	}

	switch jobs[0].role {
	case "raw":
		ratio := results[0].Events
		if sli.RawType == slo.RawSuccess {
			ratio = 1 - ratio
		}
		m.Counts = slo.Counts{Raw: true, RawErrorRatio: ratio}
	case "good":
		m.Counts = slo.Counts{Good: results[0].Events, Total: results[1].Events}
	case "bad":
		m.Counts = slo.Counts{Good: results[1].Events - results[0].Events, Total: results[1].Events}
	}
	return m, nil
}

// Query runs one instant query at instant at (the zero time means the
// server's now) and returns its single value: a scalar, or a vector of
// exactly one series. expr is sent as it is: build it from trusted text
// only (scoped measurements go through Counts). Errors are classified as
// for Counts; several series are an slo.ErrBadQuery, and an answer with
// warnings (partial) is slo.ErrUnavailable.
func (c *Client) Query(ctx context.Context, expr string, at time.Time) (float64, error) {
	v, _, err := c.query(ctx, expr, at, true, false)
	if err != nil {
		return 0, fmt.Errorf("prometheus: %w", err)
	}
	return v, nil
}

// ErrPartial marks an answer that came with warnings: a Thanos store, a
// Mimir or Cortex ingester or store-gateway did not answer, so the
// figures may be undercounted. It is wrapped with slo.ErrUnavailable.
var ErrPartial = errors.New("partial response")

// query runs expr at at and reads its value (single: exactly one series,
// else the sum of the vector's samples). An answer with warnings is
// ErrPartial (slo.ErrUnavailable) unless allowPartial; infos are only
// logged.
func (c *Client) query(ctx context.Context, expr string, at time.Time, single, allowPartial bool) (float64, []string, error) {
	val, warnings, err := c.queryValue(ctx, expr, at, allowPartial)
	if err != nil {
		return 0, warnings, err
	}
	v, err := value(val, single)
	if err != nil {
		return 0, warnings, fmt.Errorf("%s: %w", expr, err)
	}
	return v, warnings, nil
}

// queryValue runs expr at at under the client's deadline and returns the
// answer as it is, with its warnings: every instant query of the client
// goes through it. Errors are classified (classify); an answer with
// warnings is ErrPartial (slo.ErrUnavailable) unless allowPartial, and
// infos are only logged.
func (c *Client) queryValue(ctx context.Context, expr string, at time.Time, allowPartial bool) (model.Value, []string, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout,
		fmt.Errorf("prometheus query %s did not answer within %s", expr, c.timeout))
	defer cancel()
	var status int
	ctx = context.WithValue(ctx, statusKey{}, &status)

	began := time.Now()
	val, warnings, infos, err := c.api.Query(ctx, expr, at, v1.WithTimeout(c.timeout))
	for _, w := range warnings {
		c.logger.WarnContext(ctx, "prometheus warning", "query", expr, "warning", w)
	}
	for _, i := range infos {
		c.logger.DebugContext(ctx, "prometheus info", "query", expr, "info", i)
	}
	if err != nil {
		err = classify(ctx, status, err)
		c.logger.DebugContext(ctx, "prometheus query failed", "query", expr, "error", err, "took", time.Since(began))
		return nil, warnings, fmt.Errorf("%s: %w", expr, err)
	}
	c.logger.DebugContext(ctx, "prometheus query", "query", expr, "at", at, "took", time.Since(began))
	if len(warnings) > 0 && !allowPartial {
		return nil, warnings, fmt.Errorf("%s: %w: %w: %s (partialResponse: allow in the SLO file accepts such answers)",
			expr, slo.ErrUnavailable, ErrPartial, strings.Join(warnings, "; "))
	}
	return val, warnings, nil
}

// errEmpty marks an empty vector: no series matched.
var errEmpty = errors.New("empty result")

// value reads an instant query's answer: a scalar, or the sum of a
// vector's samples (single: exactly one sample, as for a raw ratio, whose
// per-series ratios cannot be added). Empty, NaN and ±Inf are
// slo.ErrNoData.
func value(val model.Value, single bool) (float64, error) {
	var v float64
	switch r := val.(type) {
	case *model.Scalar:
		v = float64(r.Value)
	case model.Vector:
		if len(r) == 0 {
			return 0, fmt.Errorf("%w: %w", slo.ErrNoData, errEmpty)
		}
		if single && len(r) > 1 {
			return 0, fmt.Errorf("%w: answered %d series, want one: aggregate them into one (a ratio is a quotient of sums, sum(rate(bad[w])) / sum(rate(all[w])), never a sum of per-series ratios)", slo.ErrBadQuery, len(r))
		}
		for _, s := range r {
			v += float64(s.Value)
		}
	default:
		typ := "nothing"
		if val != nil {
			typ = val.Type().String()
		}
		return 0, fmt.Errorf("%w: answered a %s, want an instant vector or a scalar", slo.ErrBadQuery, typ)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: value %v", slo.ErrNoData, v)
	}
	return v, nil
}

// classify maps a client_golang error onto the slo outcomes:
//   - our deadline (or the caller's) passed: slo.ErrTimeout, with the
//     cause naming the query;
//   - the server's own timeout (503 errorType timeout): slo.ErrTimeout;
//   - 400 bad_data, 422 execution and other 4xx answers: slo.ErrBadQuery
//     with Prometheus' errorType and message;
//   - 429, 5xx, unreadable bodies and connection failures:
//     slo.ErrUnavailable.
//
// A caller's cancellation is returned as it is, not as an outcome.
func classify(ctx context.Context, status int, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", slo.ErrTimeout, context.Cause(ctx))
		}
		return ctxErr
	}
	var apiErr *v1.Error
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%w: %w", slo.ErrUnavailable, err)
	}
	if apiErr.Detail != "" {
		// client_golang decodes the API's error body for 400 and 422 only;
		// Prometheus answers its own query timeout with a 503 whose body
		// says errorType "timeout".
		var body struct {
			ErrorType v1.ErrorType `json:"errorType"`
			Error     string       `json:"error"`
		}
		if json.Unmarshal([]byte(apiErr.Detail), &body) == nil && body.ErrorType != "" {
			apiErr = &v1.Error{Type: body.ErrorType, Msg: body.Error}
		}
	}
	msg := apiErr.Msg
	if d := strings.TrimSpace(apiErr.Detail); d != "" {
		if len(d) > 200 {
			d = d[:200] + "…"
		}
		msg += ": " + d
	}
	switch {
	case apiErr.Type == v1.ErrBadData || apiErr.Type == v1.ErrExec:
		return fmt.Errorf("%w: %s: %s", slo.ErrBadQuery, apiErr.Type, msg)
	case apiErr.Type == v1.ErrTimeout:
		return fmt.Errorf("%w: the server's query timeout: %s", slo.ErrTimeout, msg)
	case status == http.StatusTooManyRequests:
		return fmt.Errorf("%w: rate limited: %s", slo.ErrUnavailable, msg)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Errorf("%w: %s (check the credentials): %s", slo.ErrBadQuery, http.StatusText(status), msg)
	case status == http.StatusNotFound:
		return fmt.Errorf("%w: not found (check the URL's path prefix): %s", slo.ErrBadQuery, msg)
	case status >= 400 && status < 500:
		return fmt.Errorf("%w: %s: %s", slo.ErrBadQuery, apiErr.Type, msg)
	}
	return fmt.Errorf("%w: %s: %s", slo.ErrUnavailable, apiErr.Type, msg)
}

// roleQuery is one query of an SLI with its role: good, bad, total or raw.
type roleQuery struct {
	role string
	q    *slo.Query
}

// roleQueries are the queries an SLI is measured by: raw alone, or total
// and one of good or bad.
func roleQueries(sli slo.SLI) ([]roleQuery, error) {
	switch {
	case sli.IsRaw():
		return []roleQuery{{"raw", sli.Raw}}, nil
	case sli.Total == nil || (sli.Good == nil) == (sli.Bad == nil):
		return nil, fmt.Errorf("prometheus %s: %w: an SLI needs total and one of good or bad, or raw", sli.Name, slo.ErrBadQuery)
	case sli.Good != nil:
		return []roleQuery{{"good", sli.Good}, {"total", sli.Total}}, nil
	default:
		return []roleQuery{{"bad", sli.Bad}, {"total", sli.Total}}, nil
	}
}
