package traces

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate/collectors"
	"github.com/slogate/slogate/slo"
)

// DefaultTimeout bounds every request when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// instantPath is Tempo's instant TraceQL metrics endpoint (Tempo ≥ 2.7).
const instantPath = "/api/metrics/query"

// maxBody bounds how much of an answer is read.
const maxBody = 4 << 20

// Config tells the client where Tempo is and how to authenticate.
type Config struct {
	// URL is Tempo's query frontend, e.g. "http://tempo:3200", with a path
	// prefix if Tempo is served under one. Required.
	URL string
	// Timeout bounds each request; zero means DefaultTimeout.
	Timeout time.Duration
	// BearerToken is sent as "Authorization: Bearer ...". Exclusive with
	// Username/Password.
	BearerToken string
	// OrgID is the tenant, sent as X-Scope-OrgID (multi-tenant Tempo).
	OrgID string
	// Username and Password are sent as HTTP basic authentication (e.g.
	// Grafana Cloud: the instance id and an access token).
	Username string
	Password string
	// InsecureSkipVerify turns off TLS certificate verification. For
	// tests only.
	InsecureSkipVerify bool
}

// Client measures SLIs with Tempo's TraceQL metrics. It is safe for
// concurrent use.
type Client struct {
	base    *url.URL
	http    *http.Client
	timeout time.Duration
	cfg     Config
	logger  *slog.Logger
}

// New checks cfg and builds a client. Every problem with cfg is reported
// at once. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	var base *url.URL
	if cfg.URL == "" {
		errs = append(errs, errors.New("traces: url is required"))
	} else {
		u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("traces: url: want an http or https URL with a host, got %q", redactURL(cfg.URL)))
		case u.User != nil:
			errs = append(errs, errors.New("traces: url: put credentials in bearerToken or username/password, not in the URL"))
		case u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, errors.New("traces: url: must not have a query or a fragment"))
		default:
			base = u
		}
	}
	if cfg.BearerToken != "" && (cfg.Username != "" || cfg.Password != "") {
		errs = append(errs, errors.New("traces: bearerToken and username/password are exclusive"))
	}
	if cfg.Username == "" && cfg.Password != "" {
		errs = append(errs, errors.New("traces: password without username"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("traces: timeout: must not be negative, got %s", cfg.Timeout))
	}
	if strings.ContainsAny(cfg.OrgID, "\r\n") {
		errs = append(errs, errors.New("traces: orgID: must be one line"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("traces: http.DefaultTransport is not an *http.Transport")
	}
	tr = tr.Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, documented as tests only
	return &Client{
		base:    base,
		http:    &http.Client{Transport: tr},
		timeout: cfg.Timeout,
		cfg:     cfg,
		logger:  logger.With("component", "collectors/traces"),
	}, nil
}

// String describes the client without its credentials.
func (c *Client) String() string {
	auth := "none"
	switch {
	case c.cfg.BearerToken != "":
		auth = "bearer token"
	case c.cfg.Username != "":
		auth = "basic (" + c.cfg.Username + ")"
	}
	s := fmt.Sprintf("tempo %s (auth: %s, timeout %s", c.base, auth, c.timeout)
	if c.cfg.OrgID != "" {
		s += ", tenant " + c.cfg.OrgID
	}
	return s + ")"
}

// Counts measures an SLI's good and total spans in r, scoped by resource
// attributes. See the package documentation for the requests and errors.
func (c *Client) Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error) {
	total, ratio, ratioKey, err := queries(sli, r, scope)
	if err != nil {
		return slo.Counts{}, fmt.Errorf("tempo sli %s: %w", sli.Name, err)
	}
	totalN, err := c.count(ctx, "total", total, r)
	if err != nil {
		return slo.Counts{}, fmt.Errorf("tempo sli %s: %w", sli.Name, err)
	}
	if totalN == 0 {
		return slo.Counts{}, fmt.Errorf("tempo sli %s: no spans in %s: %w", sli.Name, r, slo.ErrNoData)
	}
	ratioN, err := c.count(ctx, ratioKey, ratio, r)
	if err != nil {
		return slo.Counts{}, fmt.Errorf("tempo sli %s: %w", sli.Name, err)
	}
	if ratioN > totalN {
		return slo.Counts{}, fmt.Errorf("tempo sli %s: %s spans (%v) outnumber total spans (%v): the %s filter must select a subset of the total filter: %w",
			sli.Name, ratioKey, ratioN, totalN, ratioKey, slo.ErrBadQuery)
	}
	good := ratioN
	if ratioKey == "bad" {
		good = totalN - ratioN
	}
	c.logger.DebugContext(ctx, "counted", "sli", sli.Name, "range", r.String(), "good", good, "total", totalN)
	return slo.Counts{Good: good, Total: totalN}, nil
}

// queries checks the SLI and builds the two TraceQL metrics queries.
func queries(sli slo.SLI, r slo.Range, scope slo.Scope) (total, ratio, ratioKey string, err error) {
	if sli.IsRaw() {
		return "", "", "", fmt.Errorf("raw (ratio) SLIs cannot be measured from traces, use good/total or bad/total spanset filters: %w", slo.ErrBadQuery)
	}
	var errs []error
	if sli.Total == nil {
		errs = append(errs, errors.New("total: query is required"))
	}
	if (sli.Good == nil) == (sli.Bad == nil) {
		errs = append(errs, errors.New("exactly one of good and bad is required"))
	}
	if !r.End.After(r.Start) {
		errs = append(errs, fmt.Errorf("range %s: end must be after start", r))
	}
	ratioKey = "good"
	rq := sli.Good
	if sli.Bad != nil {
		rq, ratioKey = sli.Bad, "bad"
	}
	build := func(name string, q *slo.Query) string {
		if q == nil {
			return ""
		}
		if q.Source != slo.SourceTempo || q.Tempo == nil {
			errs = append(errs, fmt.Errorf("%s: not a Tempo query (source %q)", name, q.Source))
			return ""
		}
		f, err := ScopeFilter(q.Tempo.TraceQL, scope)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return ""
		}
		return metricsQuery(f)
	}
	total = build("total", sli.Total)
	ratio = build(ratioKey, rq)
	if err := errors.Join(errs...); err != nil {
		if !errors.Is(err, slo.ErrBadQuery) {
			err = fmt.Errorf("%w: %w", slo.ErrBadQuery, err)
		}
		return "", "", "", err
	}
	return total, ratio, ratioKey, nil
}

// count runs one instant metrics query and sums its series.
func (c *Client) count(ctx context.Context, what, q string, r slo.Range) (float64, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout,
		fmt.Errorf("tempo %s metrics query timed out after %s", what, c.timeout))
	defer cancel()
	u := *c.base
	u.Path += instantPath
	u.RawQuery = url.Values{
		"q":     {q},
		"start": {strconv.FormatInt(r.Start.UnixNano(), 10)},
		"end":   {strconv.FormatInt(r.End.UnixNano(), 10)},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("%s query: %w", what, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "slogate")
	switch {
	case c.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+c.cfg.BearerToken)
	case c.cfg.Username != "":
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	if c.cfg.OrgID != "" {
		req.Header.Set("X-Scope-OrgID", c.cfg.OrgID)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, transportError(ctx, what, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return 0, transportError(ctx, what, err)
	}
	if res.StatusCode != http.StatusOK {
		return 0, statusError(what, res.StatusCode, body)
	}
	n, err := decodeInstant(body)
	if err != nil {
		return 0, fmt.Errorf("%s query: %w", what, err)
	}
	return n, nil
}

// instantResponse is Tempo's QueryInstantResponse in JSON (jsonpb):
// {"series":[{"labels":[...],"value":N,"promLabels":"..."}],
// "metrics":{...},"status":"COMPLETE"|"PARTIAL","message":"..."}.
type instantResponse struct {
	Series []struct {
		// Value is a number, or a string for NaN and ±Infinity as
		// protobuf's JSON mapping writes them.
		Value      json.RawMessage `json:"value"`
		PromLabels string          `json:"promLabels"`
	} `json:"series"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// decodeInstant sums the values of every series of an instant answer. An
// answer without series counts zero.
func decodeInstant(body []byte) (float64, error) {
	var ir instantResponse
	if err := json.Unmarshal(body, &ir); err != nil {
		return 0, fmt.Errorf("answer is not the JSON expected (%v): %w", err, slo.ErrUnavailable)
	}
	if ir.Status == "PARTIAL" {
		return 0, fmt.Errorf("partial results from Tempo (%s): %w", ir.Message, slo.ErrUnavailable)
	}
	sum := 0.0
	for _, s := range ir.Series {
		v, err := number(s.Value)
		if err != nil {
			return 0, fmt.Errorf("series %s: %w: %w", s.PromLabels, err, slo.ErrUnavailable)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("series %s has value %v: %w", s.PromLabels, v, slo.ErrNoData)
		}
		if v < 0 {
			return 0, fmt.Errorf("series %s has a negative count %v: %w", s.PromLabels, v, slo.ErrUnavailable)
		}
		sum += v
	}
	if math.IsInf(sum, 0) {
		return 0, fmt.Errorf("the counts overflow: %w", slo.ErrNoData)
	}
	return sum, nil
}

// number reads a protobuf JSON double: a number, or a string holding a
// number, "NaN", "Infinity" or "-Infinity". An absent value is 0 (proto3
// leaves zero out).
func number(raw json.RawMessage) (float64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("value %s is not a number", raw)
	}
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q is not a number", s)
	}
	return f, nil
}

// transportError classifies an error of the HTTP round trip.
func transportError(ctx context.Context, what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s query: %w: %w", what, slo.ErrTimeout, context.Cause(ctx))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s query: %w", what, context.Cause(ctx))
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		// url.Error repeats the URL, whose query is long; keep the cause.
		err = uerr.Err
	}
	return fmt.Errorf("%s query: %w: %w", what, slo.ErrUnavailable, err)
}

// statusError classifies a non-200 answer, quoting Tempo's error text
// (Tempo answers errors as text/plain).
func statusError(what string, status int, body []byte) error {
	text := strings.TrimSpace(string(body))
	if text == "" {
		text = http.StatusText(status)
	}
	const max = 300
	if len(text) > max {
		text = text[:max] + "..."
	}
	return collectors.StatusError(what+" query", status, text)
}

// redactURL drops the user info of a URL that may not even parse.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "xxxxx" + s[i:]
	}
	return s
}
