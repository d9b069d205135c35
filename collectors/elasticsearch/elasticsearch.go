// Package elasticsearch measures event-ratio SLIs from documents in
// Elasticsearch (log lines, request events): it counts the documents that
// match an SLI's total query and its good (or bad) query in a time range.
//
// It talks to Elasticsearch through go-elasticsearch's esapi and
// elastic-transport-go packages only, with JSON bodies built by
// encoding/json; the root elasticsearch package (and its typed API, ~880
// packages) is not imported. Because that root package is where the v8
// client's product check lives, this package does the same check itself:
// every 2xx answer must carry the header X-Elastic-Product: Elasticsearch,
// or the answer is refused with ErrUnknownProduct.
//
// # OpenSearch
//
// OpenSearch (and Elasticsearch before 7.14) never sends that header, and
// speaks the same _search and _count wire format. With Config.Flavor
// "opensearch" the header is not required; instead the client reads the
// cluster's root (GET /) before its first measurement and requires
// version.distribution to be "opensearch". Until that check succeeds every
// measurement retries it; once it has, it is not repeated.
//
// # Requests
//
// When the total query and the good/bad query use the same index and the
// same timestamp field, Counts sends one request:
//
//	POST /<index>/_search
//	{
//	  "size": 0,
//	  "track_total_hits": false,
//	  "query": {"bool": {"filter": [
//	    {"range": {"@timestamp": {"gte": "<start>", "lt": "<end>", "format": "strict_date_optional_time"}}},
//	    <total query>,
//	    {"term": {"<scope key>": "<scope value>"}}, ...
//	  ]}},
//	  "aggs": {"slogate": {"filters": {"filters": {
//	    "total": {"match_all": {}},
//	    "good":  <good query>          (or "bad": <bad query>)
//	  }}}}
//	}
//
// and reads aggregations.slogate.buckets.total.doc_count and
// aggregations.slogate.buckets.good.doc_count (or bad). The total is read
// from its own match_all bucket, not from hits.total: hits.total is only a
// lower bound once it passes 10,000 documents (relation "gte") unless
// track_total_hits is true, and a bucket's doc_count is always exact.
// track_total_hits is false so Elasticsearch does not count twice.
//
// When the two queries use different indices or timestamp fields, Counts
// sends two POST /<index>/_count requests with the same bool filter, one
// for each query, and reads "count". There the good (or bad) query is
// counted on its own, not intersected with the total query (the two
// indices hold different documents), so it must select its events by
// itself; a good or bad count above the total is an ErrBadQuery.
//
// Scope labels are term filters on fields of the same name (use the field
// the mapping makes a keyword, e.g. "version" or "labels.version"); their
// values are JSON strings, never query text.
//
// # Outcomes
//
//   - connection failures, 5xx and 429 wrap slo.ErrUnavailable, with the
//     status and Elasticsearch's error type and reason;
//   - 401 and 403 wrap slo.ErrUnavailable too: the credentials, not the
//     SLI, need fixing;
//   - other 4xx (parsing_exception, search_phase_execution_exception, ...)
//     wrap slo.ErrBadQuery;
//   - 404 index_not_found_exception wraps slo.ErrBadQuery: a concrete index
//     that does not exist is a mistake in the SLO file, and reading it as
//     "no data" would let a typo wait forever. An index pattern that
//     matches no index is answered by Elasticsearch with zero hits, which is
//     slo.ErrNoData;
//   - a 2xx answer that is not JSON, lacks the aggregation, or reports
//     failed shards wraps slo.ErrUnavailable (partial counts are never
//     returned);
//   - the deadline (Config.Timeout, default 10s) wraps slo.ErrTimeout, and
//     so does an answer with "timed_out": true;
//   - zero total events wrap slo.ErrNoData;
//   - a caller's context cancelled without a deadline returns its cause
//     (context.Canceled), which is none of the sentinels.
package elasticsearch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"

	"github.com/slogate/slogate/slo"
)

// DefaultTimeout bounds every request when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// ErrUnknownProduct means the server answered 2xx without the header
// X-Elastic-Product: Elasticsearch, which the go-elasticsearch v8 client
// requires of every server it talks to. It comes wrapped with
// slo.ErrUnavailable.
var ErrUnknownProduct = errors.New("the server is not Elasticsearch: its answer lacks the header X-Elastic-Product: Elasticsearch")

// ErrNotOpenSearch means a client of flavor opensearch found another
// product at the cluster's root (GET /). It comes wrapped with
// slo.ErrUnavailable.
var ErrNotOpenSearch = errors.New("the server is not OpenSearch: GET / does not give version.distribution \"opensearch\"")

// Flavors of the search engine.
const (
	FlavorElasticsearch = "elasticsearch"
	FlavorOpenSearch    = "opensearch"
)

// Config tells the client where Elasticsearch is and how to authenticate.
type Config struct {
	// Addresses are the base URLs of the nodes, e.g.
	// "https://es.example.com:9200". Required.
	Addresses []string
	// APIKey is the base64-encoded API key (id:key), sent as
	// "Authorization: APIKey ..." (the scheme is case-insensitive). Exclusive with Username/Password.
	APIKey string
	// Username and Password are sent as HTTP basic authentication.
	Username string
	Password string
	// Timeout bounds each request; zero means DefaultTimeout.
	Timeout time.Duration
	// CACert is a PEM bundle of the certificate authorities to trust for
	// https addresses, in place of the system pool.
	CACert []byte
	// InsecureSkipVerify turns off TLS certificate verification. For
	// tests only.
	InsecureSkipVerify bool
	// Flavor is FlavorElasticsearch (the default) or FlavorOpenSearch: the
	// product the client requires (see the package documentation).
	Flavor string
}

// Client measures SLIs in Elasticsearch. It is safe for concurrent use.
type Client struct {
	transport *elastictransport.Client
	timeout   time.Duration
	logger    *slog.Logger
	// addresses are the configured URLs with any user info removed.
	addresses []string
	auth      string
	flavor    string
	// checked is set once the OpenSearch root check has passed.
	checked atomic.Bool
}

// New checks cfg and builds a client. Every problem with cfg is reported
// at once. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if len(cfg.Addresses) == 0 {
		errs = append(errs, errors.New("elasticsearch: addresses: at least one address is required"))
	}
	urls := make([]*url.URL, 0, len(cfg.Addresses))
	shown := make([]string, 0, len(cfg.Addresses))
	for i, a := range cfg.Addresses {
		u, err := url.Parse(strings.TrimRight(a, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("elasticsearch: addresses[%d]: want an http or https URL with a host, got %q", i, redactURL(a)))
			continue
		}
		if u.User != nil {
			errs = append(errs, fmt.Errorf("elasticsearch: addresses[%d]: put credentials in apiKey or username/password, not in the URL", i))
			continue
		}
		urls = append(urls, u)
		shown = append(shown, u.String())
	}
	if cfg.APIKey != "" && (cfg.Username != "" || cfg.Password != "") {
		errs = append(errs, errors.New("elasticsearch: apiKey and username/password are exclusive"))
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		errs = append(errs, errors.New("elasticsearch: username and password go together"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("elasticsearch: timeout: must not be negative, got %s", cfg.Timeout))
	}
	switch cfg.Flavor {
	case "":
		cfg.Flavor = FlavorElasticsearch
	case FlavorElasticsearch, FlavorOpenSearch:
	default:
		errs = append(errs, fmt.Errorf("elasticsearch: flavor: want %s or %s, got %q", FlavorElasticsearch, FlavorOpenSearch, cfg.Flavor))
	}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		errs = append(errs, errors.New("elasticsearch: http.DefaultTransport is not an *http.Transport"))
		base = &http.Transport{}
	}
	tr := base.Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, documented as tests only
	if len(cfg.CACert) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CACert) {
			errs = append(errs, errors.New("elasticsearch: caCert: no PEM certificate found"))
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	et, err := elastictransport.New(elastictransport.Config{
		UserAgent: "slogate",
		URLs:      urls,
		Username:  cfg.Username,
		Password:  cfg.Password,
		APIKey:    cfg.APIKey,
		Transport: tr,
		// Retry a node that is restarting or behind a busy proxy, and
		// move to the next node on connection errors, but never once the
		// deadline has passed.
		RetryOnStatus: []int{502, 503, 504},
		MaxRetries:    2,
		RetryBackoff:  func(attempt int) time.Duration { return time.Duration(attempt) * 100 * time.Millisecond },
		RetryOnError:  func(req *http.Request, _ error) bool { return req.Context().Err() == nil },
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	auth := "none"
	switch {
	case cfg.APIKey != "":
		auth = "api key"
	case cfg.Username != "":
		auth = "basic (" + cfg.Username + ")"
	}
	return &Client{
		transport: et,
		timeout:   timeout,
		logger:    logger.With("component", "collectors/elasticsearch"),
		addresses: shown,
		auth:      auth,
		flavor:    cfg.Flavor,
	}, nil
}

// String describes the client without its credentials.
func (c *Client) String() string {
	return fmt.Sprintf("%s %s (auth: %s, timeout %s)", c.flavor, strings.Join(c.addresses, ","), c.auth, c.timeout)
}

// Counts measures an SLI's good and total events in r, scoped. See the
// package documentation for the requests and the errors.
func (c *Client) Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error) {
	p, err := plan(sli, r, scope)
	if err != nil {
		return slo.Counts{}, fmt.Errorf("elasticsearch sli %s: %w", sli.Name, err)
	}
	if err := c.checkProduct(ctx); err != nil {
		return slo.Counts{}, fmt.Errorf("%s sli %s: %w", c.flavor, sli.Name, err)
	}
	var good, total float64
	if p.single {
		good, total, err = c.search(ctx, p)
	} else {
		good, total, err = c.countTwice(ctx, p)
	}
	if err != nil {
		return slo.Counts{}, fmt.Errorf("elasticsearch sli %s: %w", sli.Name, err)
	}
	if total == 0 {
		return slo.Counts{}, fmt.Errorf("elasticsearch sli %s: no documents in %s: %w", sli.Name, r, slo.ErrNoData)
	}
	c.logger.DebugContext(ctx, "counted", "sli", sli.Name, "range", r.String(), "good", good, "total", total)
	return slo.Counts{Good: good, Total: total}, nil
}

// redactURL drops the user info of a URL that may not even parse.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "xxxxx" + s[i:]
		}
		return "xxxxx" + s[i:]
	}
	return s
}
