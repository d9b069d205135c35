package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

var update = flag.Bool("update", false, "rewrite the golden request bodies in testdata/")

// The measured hour.
var (
	hourStart = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	hour      = slo.Range{Start: hourStart, End: hourStart.Add(time.Hour)}
)

// requestLogs builds the documents of the fake, worked out by hand:
//
//   - 10,000 checkout requests in the hour, one every 360 ms from 12:00:00
//     (the first exactly at the start: gte includes it). Requests 0–8,999
//     are version v1, 9,000–9,999 version v2. Request i failed with a 503
//     when i % 160 == 7: i = 7, 167, ..., 9,927, which is 63 requests
//     (57 in v1, 6 in v2); requests with i % 50 == 1 are 404s, which are
//     good (the service answered). So: 9,937 good of 10,000; v2 alone:
//     994 good of 1,000.
//   - 500 payments requests in the same hour, 30 of them 500s: another
//     service, excluded by the total query.
//   - 100 checkout requests a millisecond before the hour and 100 exactly
//     at its end (lt excludes it), all 503s: outside the range.
//
// The same events as an equivalent Prometheus SLI would count them:
// increase(http_requests_total{service="checkout"}[1h]) = 10,000 and
// increase(http_requests_total{service="checkout",code=~"5.."}[1h]) = 63.
func requestLogs() []doc {
	var docs []doc
	for i := 0; i < 10000; i++ {
		status, version := 200.0, "v1"
		switch {
		case i%160 == 7:
			status = 503
		case i%50 == 1:
			status = 404
		}
		if i >= 9000 {
			version = "v2"
		}
		docs = append(docs, doc{
			"@timestamp":       hourStart.Add(time.Duration(i) * 360 * time.Millisecond),
			"service.name":     "checkout",
			"version":          version,
			"http.status_code": status,
		})
	}
	for i := 0; i < 500; i++ {
		status := 200.0
		if i < 30 {
			status = 500
		}
		docs = append(docs, doc{
			"@timestamp":       hourStart.Add(time.Duration(i) * 7 * time.Second),
			"service.name":     "payments",
			"version":          "v1",
			"http.status_code": status,
		})
	}
	for i := 0; i < 100; i++ {
		for _, at := range []time.Time{hourStart.Add(-time.Millisecond), hour.End} {
			docs = append(docs, doc{"@timestamp": at, "service.name": "checkout", "version": "v1", "http.status_code": 503.0})
		}
	}
	return docs
}

// errorEvents holds only the failed checkout requests of the hour, as an
// error-tracking index would: 63 documents, event.time as timestamp.
func errorEvents() []doc {
	var docs []doc
	for _, d := range requestLogs() {
		ts := d["@timestamp"].(time.Time)
		if d["service.name"] == "checkout" && d["http.status_code"] == 503.0 && !ts.Before(hour.Start) && ts.Before(hour.End) {
			docs = append(docs, doc{"event.time": ts, "service.name": "checkout", "version": d["version"], "error.kind": "http_5xx"})
		}
	}
	return docs
}

func fakeIndices() map[string][]doc {
	return map[string][]doc{
		"logs-checkout-2026.11.21": requestLogs(),
		"logs-checkout-2026.11.20": nil,
		"errors-checkout":          errorEvents(),
	}
}

func esQuery(index, query string) *slo.Query {
	return &slo.Query{Source: slo.SourceElasticsearch, Elasticsearch: &slo.ElasticsearchQuery{Index: index, Query: query}}
}

const (
	checkoutQuery = `{"term":{"service.name":"checkout"}}`
	goodQuery     = `{"range":{"http.status_code":{"lt":500}}}`
	badQuery      = `{"range": {"http.status_code": {"gte": 500}}}`
)

func goodSLI() slo.SLI {
	return slo.SLI{Name: "checkout-availability", Total: esQuery("logs-checkout-*", checkoutQuery), Good: esQuery("logs-checkout-*", goodQuery)}
}

func badSLI() slo.SLI {
	return slo.SLI{Name: "checkout-availability", Total: esQuery("logs-checkout-*", checkoutQuery), Bad: esQuery("logs-checkout-*", badQuery)}
}

func newTestClient(t *testing.T, url string, mutate ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{Addresses: []string{url}, APIKey: "c2VjcmV0LWlkOnNlY3JldC1rZXk=", Timeout: 2 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestCounts(t *testing.T) {
	tests := map[string]struct {
		sli          slo.SLI
		scope        slo.Scope
		wantGood     float64
		wantTotal    float64
		wantRequests []string
		golden       string
	}{
		"63 failed requests of 10,000 leave 9,937 good, measured with a good query": {
			sli: goodSLI(), wantGood: 9937, wantTotal: 10000,
			wantRequests: []string{"/logs-checkout-*/_search"}, golden: "search_good",
		},
		"the same hour measured with a bad query gives the same figures": {
			sli: badSLI(), wantGood: 9937, wantTotal: 10000,
			wantRequests: []string{"/logs-checkout-*/_search"}, golden: "search_bad",
		},
		"a version scope keeps only v2's 1,000 requests, 6 of them failed": {
			sli: badSLI(), scope: slo.Scope{"version": "v2"}, wantGood: 994, wantTotal: 1000,
			wantRequests: []string{"/logs-checkout-*/_search"}, golden: "search_bad_scoped",
		},
		"bad events in another index are counted with two _count requests": {
			sli: slo.SLI{
				Name:  "checkout-errors",
				Total: esQuery("logs-checkout-*", checkoutQuery),
				Bad: &slo.Query{Source: slo.SourceElasticsearch, Elasticsearch: &slo.ElasticsearchQuery{
					Index: "errors-checkout", TimestampField: "event.time", Query: `{"term":{"error.kind":"http_5xx"}}`,
				}},
			},
			wantGood: 9937, wantTotal: 10000,
			wantRequests: []string{"/logs-checkout-*/_count", "/errors-checkout/_count"}, golden: "count_two_indices",
		},
		"two indices with a scope filter both counts by version": {
			sli: slo.SLI{
				Name:  "checkout-errors",
				Total: esQuery("logs-checkout-*", checkoutQuery),
				Bad: &slo.Query{Source: slo.SourceElasticsearch, Elasticsearch: &slo.ElasticsearchQuery{
					Index: "errors-checkout", TimestampField: "event.time",
				}},
			},
			scope:    slo.Scope{"version": "v2"},
			wantGood: 994, wantTotal: 1000,
			wantRequests: []string{"/logs-checkout-*/_count", "/errors-checkout/_count"},
		},
		"an empty total query counts every document of the index in the hour": {
			sli: slo.SLI{
				Name:  "everything",
				Total: esQuery("logs-checkout-2026.11.21", ""),
				Bad:   esQuery("logs-checkout-2026.11.21", `{"bool":{"must_not":[{"range":{"http.status_code":{"lt":500}}}]}}`),
			},
			// 10,000 checkout + 500 payments requests; 63 + 30 failed.
			wantGood: 10407, wantTotal: 10500,
			wantRequests: []string{"/logs-checkout-2026.11.21/_search"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFakeES(t, fakeIndices())
			c := newTestClient(t, srv.URL)
			got, err := c.Counts(context.Background(), tc.sli, hour, tc.scope)
			if err != nil {
				t.Fatalf("Counts: %v", err)
			}
			if got.Good != tc.wantGood || got.Total != tc.wantTotal {
				t.Errorf("Counts = good %v total %v, want good %v total %v", got.Good, got.Total, tc.wantGood, tc.wantTotal)
			}
			reqs := fake.recorded()
			var paths []string
			for _, r := range reqs {
				paths = append(paths, r.Path)
				if r.Method != "POST" {
					t.Errorf("%s: method %s, want POST", r.Path, r.Method)
				}
				if got := r.Header.Get("Authorization"); got != "APIKey c2VjcmV0LWlkOnNlY3JldC1rZXk=" {
					t.Errorf("%s: Authorization %q, want the API key", r.Path, got)
				}
			}
			if strings.Join(paths, " ") != strings.Join(tc.wantRequests, " ") {
				t.Errorf("requests %v, want %v", paths, tc.wantRequests)
			}
			if tc.golden != "" {
				var bodies bytes.Buffer
				for _, r := range reqs {
					if err := json.Indent(&bodies, r.Body, "", "  "); err != nil {
						t.Fatalf("request body is not JSON: %v: %s", err, r.Body)
					}
					bodies.WriteString("\n")
				}
				checkGolden(t, tc.golden+".golden.json", bodies.Bytes())
			}
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("request bodies differ from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", file, got, want)
	}
}

func TestCountsErrors(t *testing.T) {
	tests := map[string]struct {
		sli      slo.SLI
		scope    slo.Scope
		fault    string
		timeout  time.Duration
		want     error
		alsoWant error
		// wantText must appear in the message.
		wantText string
		// wantCalls is how many requests reach the server.
		wantCalls int
	}{
		"a scope value that looks like JSON is only a value and matches nothing": {
			sli: goodSLI(), scope: slo.Scope{"version": `v2"}},{"match_all":{}}]}}`},
			want: slo.ErrNoData, wantText: "no documents", wantCalls: 1,
		},
		"an index pattern that matches no index is no data": {
			sli:  slo.SLI{Name: "s", Total: esQuery("logs-nothing-*", ""), Good: esQuery("logs-nothing-*", goodQuery)},
			want: slo.ErrNoData, wantCalls: 1,
		},
		"an empty index is no data": {
			sli:  slo.SLI{Name: "s", Total: esQuery("logs-checkout-2026.11.20", ""), Good: esQuery("logs-checkout-2026.11.20", goodQuery)},
			want: slo.ErrNoData, wantCalls: 1,
		},
		"a concrete index that does not exist is a bad query": {
			sli:  slo.SLI{Name: "s", Total: esQuery("logs-chekout", ""), Good: esQuery("logs-chekout", goodQuery)},
			want: slo.ErrBadQuery, wantText: "HTTP 404: index_not_found_exception: no such index [logs-chekout]", wantCalls: 1,
		},
		"a clause Elasticsearch does not know is a bad query": {
			sli:  slo.SLI{Name: "s", Total: esQuery("logs-checkout-*", `{"termz":{"service.name":"checkout"}}`), Good: esQuery("logs-checkout-*", goodQuery)},
			want: slo.ErrBadQuery, wantText: "HTTP 400: parsing_exception: unknown query [termz]", wantCalls: 1,
		},
		"429 from a full search queue is unavailable, with the reason": {
			sli: goodSLI(), fault: "status:429:error_429.json",
			want: slo.ErrUnavailable, wantText: "HTTP 429: es_rejected_execution_exception: rejected execution", wantCalls: 1,
		},
		"503 is unavailable after two retries": {
			sli: goodSLI(), fault: "status:503:error_503.json",
			want: slo.ErrUnavailable, wantText: "HTTP 503: search_phase_execution_exception: all shards failed", wantCalls: 3,
		},
		"500 from a tripped circuit breaker is unavailable": {
			sli: goodSLI(), fault: "status:500:error_500.json",
			want: slo.ErrUnavailable, wantText: "HTTP 500: circuit_breaking_exception: [parent] Data too large", wantCalls: 1,
		},
		"401 for a revoked API key is unavailable, not a bad query": {
			sli: goodSLI(), fault: "status:401:error_401.json",
			want: slo.ErrUnavailable, wantText: "HTTP 401: credentials refused: security_exception", wantCalls: 1,
		},
		"an answer that is not JSON is unavailable": {
			sli: goodSLI(), fault: "malformed",
			want: slo.ErrUnavailable, wantText: "not the JSON expected", wantCalls: 1,
		},
		"a failed shard makes the counts unusable": {
			sli: goodSLI(), fault: "shard-failure",
			want: slo.ErrUnavailable, wantText: "1 of 3 shards failed (node_not_connected_exception", wantCalls: 1,
		},
		"a server without X-Elastic-Product is refused like the v8 client does": {
			sli: goodSLI(), fault: "no-product",
			want: slo.ErrUnavailable, alsoWant: ErrUnknownProduct, wantText: "X-Elastic-Product", wantCalls: 1,
		},
		"a server that does not answer in time is a timeout naming the call": {
			sli: goodSLI(), fault: "hang", timeout: 100 * time.Millisecond,
			want: slo.ErrTimeout, wantText: "elasticsearch search on logs-checkout-* timed out after 100ms", wantCalls: 1,
		},
		"a raw SLI is refused before any request": {
			sli:  slo.SLI{Name: "s", Raw: esQuery("logs-checkout-*", ""), RawType: slo.RawFailure},
			want: slo.ErrBadQuery, wantText: "raw (ratio) SLIs cannot be measured",
		},
		"an SLI with both good and bad is refused": {
			sli:  slo.SLI{Name: "s", Total: esQuery("a", ""), Good: esQuery("a", ""), Bad: esQuery("a", "")},
			want: slo.ErrBadQuery, wantText: "exactly one of good and bad",
		},
		"a query that is not a JSON object is refused": {
			sli:  slo.SLI{Name: "s", Total: esQuery("a", `service.name:checkout`), Good: esQuery("a", "")},
			want: slo.ErrBadQuery, wantText: "total: query: not a JSON object",
		},
		"an index name that would change the path is refused": {
			sli:  slo.SLI{Name: "s", Total: esQuery("logs/_delete_by_query?", ""), Good: esQuery("a", "")},
			want: slo.ErrBadQuery, wantText: "is not allowed in an index name",
		},
		"a Prometheus query is refused": {
			sli:  slo.SLI{Name: "s", Total: &slo.Query{Source: slo.SourcePrometheus, PromQL: "up"}, Good: esQuery("a", "")},
			want: slo.ErrBadQuery, wantText: `not an Elasticsearch query (source "prometheus")`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFakeES(t, fakeIndices())
			fake.setFault(tc.fault)
			c := newTestClient(t, srv.URL, func(cfg *Config) {
				if tc.timeout != 0 {
					cfg.Timeout = tc.timeout
				}
			})
			_, err := c.Counts(context.Background(), tc.sli, hour, tc.scope)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Counts error = %v, want %v", err, tc.want)
			}
			if tc.alsoWant != nil && !errors.Is(err, tc.alsoWant) {
				t.Errorf("Counts error = %v, want it to wrap %v too", err, tc.alsoWant)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("Counts error = %q, want it to contain %q", err, tc.wantText)
			}
			if got := len(fake.recorded()); got != tc.wantCalls {
				t.Errorf("%d requests reached the server, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestCountsHonoursTheCallersDeadline(t *testing.T) {
	fake, srv := newFakeES(t, fakeIndices())
	fake.setFault("hang")
	c := newTestClient(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Counts(ctx, goodSLI(), hour, nil)
	if !errors.Is(err, slo.ErrTimeout) {
		t.Fatalf("Counts error = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Counts took %s with a 50ms deadline", d)
	}
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	_, srv := newFakeES(t, nil)
	url := srv.URL
	srv.Close()
	c := newTestClient(t, url)
	_, err := c.Counts(context.Background(), goodSLI(), hour, nil)
	if !errors.Is(err, slo.ErrUnavailable) {
		t.Fatalf("Counts error = %v, want ErrUnavailable", err)
	}
}

func TestCredentialsAreNeverShown(t *testing.T) {
	const key, password = "c2VjcmV0LWlkOnNlY3JldC1rZXk=", "hunter2-password"
	fake, srv := newFakeES(t, fakeIndices())
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	for name, cfg := range map[string]Config{
		"api key":  {Addresses: []string{srv.URL}, APIKey: key},
		"password": {Addresses: []string{srv.URL}, Username: "slogate", Password: password},
	} {
		t.Run("with an "+name, func(t *testing.T) {
			c, err := New(cfg, logger)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Counts(context.Background(), goodSLI(), hour, nil); err != nil {
				t.Fatal(err)
			}
			fake.setFault("status:401:error_401.json")
			_, err = c.Counts(context.Background(), goodSLI(), hour, nil)
			fake.setFault("")
			for what, text := range map[string]string{"String()": c.String(), "the error": err.Error(), "the log": logs.String()} {
				if strings.Contains(text, key) || strings.Contains(text, password) {
					t.Errorf("%s shows a credential: %s", what, text)
				}
			}
			reqs := fake.recorded()
			scheme, _, _ := strings.Cut(reqs[len(reqs)-1].Header.Get("Authorization"), " ")
			if want := map[string]string{"api key": "APIKey", "password": "Basic"}[name]; scheme != want {
				t.Errorf("Authorization scheme %q, want %q", scheme, want)
			}
		})
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Config{
		Addresses: []string{"es.example.com:9200", "https://user:secret@es.example.com"},
		APIKey:    "k", Username: "u",
		Timeout: -time.Second,
		CACert:  []byte("not a certificate"),
	}, nil)
	if err == nil {
		t.Fatal("New accepted a broken config")
	}
	for _, want := range []string{
		`addresses[0]: want an http or https URL with a host, got "es.example.com:9200"`,
		"addresses[1]: put credentials in apiKey or username/password, not in the URL",
		"apiKey and username/password are exclusive",
		"username and password go together",
		"timeout: must not be negative",
		"caCert: no PEM certificate found",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("New error shows a password: %v", err)
	}
	if _, err := New(Config{}, nil); err == nil || !strings.Contains(err.Error(), "at least one address") {
		t.Errorf("New without addresses = %v", err)
	}
}

func TestDecodeSearchReadsTheSampleAnswer(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "search_response.json"))
	if err != nil {
		t.Fatal(err)
	}
	good, total, err := decodeSearch(data, "good")
	if err != nil || good != 9937 || total != 10000 {
		t.Errorf("decodeSearch = %v, %v, %v; want 9937, 10000, nil", good, total, err)
	}
	if _, _, err := decodeSearch(data, "bad"); !errors.Is(err, slo.ErrUnavailable) {
		t.Errorf("decodeSearch of a missing bucket = %v, want ErrUnavailable", err)
	}
	data, err = os.ReadFile(filepath.Join("testdata", "count_response.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := decodeCount(data); err != nil || n != 10000 {
		t.Errorf("decodeCount = %v, %v; want 10000, nil", n, err)
	}
}

// FuzzDecode feeds arbitrary answers to the decoders: they must never
// panic, and whatever they accept must be a usable pair of counts.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"search_response.json", "search_response_shard_failure.json", "count_response.json", "error_429.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"aggregations":{"slogate":{"buckets":{"good":{"doc_count":1e400},"total":{"doc_count":-1}}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if good, total, err := decodeSearch(data, "good"); err == nil {
			if good < 0 || total < good {
				t.Errorf("decodeSearch accepted good %v total %v", good, total)
			}
		}
		if n, err := decodeCount(data); err == nil && n < 0 {
			t.Errorf("decodeCount accepted %v", n)
		}
		_ = errorReason(data)
	})
}
