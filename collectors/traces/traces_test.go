package traces

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

var (
	hourStart = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	hour      = slo.Range{Start: hourStart, End: hourStart.Add(time.Hour)}
)

// checkoutSpans builds the fake's spans, worked out by hand:
//
//   - 10,000 checkout server spans in the hour, one every 360 ms from
//     12:00:00; spans 0–8,999 come from service.version v1, 9,000–9,999
//     from v2. Span i has status error when i % 160 == 7: 63 spans (57 in
//     v1, 6 in v2). So 9,937 good of 10,000; v2 alone 994 of 1,000 — the
//     figures the Prometheus and Elasticsearch collectors give for the
//     same hour.
//   - 2,000 checkout client spans (calls to payments), 40 of them errors:
//     excluded by kind = server.
//   - 500 payments server spans, 30 errors: another service.
//   - 100 checkout server error spans a millisecond before the hour and
//     100 exactly at its end: outside the range.
func checkoutSpans() []span {
	var spans []span
	res := func(service, version string) map[string]string {
		return map[string]string{"service.name": service, "service.version": version}
	}
	for i := 0; i < 10000; i++ {
		status, version := "ok", "v1"
		if i%160 == 7 {
			status = "error"
		}
		if i >= 9000 {
			version = "v2"
		}
		spans = append(spans, span{
			start: hourStart.Add(time.Duration(i) * 360 * time.Millisecond), resource: res("checkout", version),
			attrs: map[string]any{"http.route": "/orders/{id}"}, status: status, kind: "server", name: "POST /orders",
		})
	}
	for i := 0; i < 2000; i++ {
		status := "unset"
		if i < 40 {
			status = "error"
		}
		spans = append(spans, span{start: hourStart.Add(time.Duration(i) * time.Second), resource: res("checkout", "v1"), status: status, kind: "client", name: "payments.Charge"})
	}
	for i := 0; i < 500; i++ {
		status := "ok"
		if i < 30 {
			status = "error"
		}
		spans = append(spans, span{start: hourStart.Add(time.Duration(i) * 7 * time.Second), resource: res("payments", "v1"), status: status, kind: "server", name: "Charge"})
	}
	for i := 0; i < 100; i++ {
		for _, at := range []time.Time{hourStart.Add(-time.Millisecond), hour.End} {
			spans = append(spans, span{start: at, resource: res("checkout", "v1"), status: "error", kind: "server", name: "POST /orders"})
		}
	}
	return spans
}

func tempoQuery(q string) *slo.Query {
	return &slo.Query{Source: slo.SourceTempo, Tempo: &slo.TempoQuery{TraceQL: q}}
}

const (
	totalFilter = `{resource.service.name="checkout" && kind=server}`
	badFilter   = `{resource.service.name="checkout" && kind=server && status=error}`
	goodFilter  = `{resource.service.name="checkout" && kind=server && status!=error}`
)

func badSLI() slo.SLI {
	return slo.SLI{Name: "checkout-availability", Total: tempoQuery(totalFilter), Bad: tempoQuery(badFilter)}
}

func newTestClient(t *testing.T, url string, mutate ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{URL: url, Timeout: 2 * time.Second}
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
		sli       slo.SLI
		scope     slo.Scope
		wantGood  float64
		wantTotal float64
		wantQ     []string
	}{
		"63 error spans of 10,000 leave 9,937 good, measured with a bad filter": {
			sli: badSLI(), wantGood: 9937, wantTotal: 10000,
			wantQ: []string{
				totalFilter + " | count_over_time()",
				badFilter + " | count_over_time()",
			},
		},
		"the same hour measured with a good filter gives the same figures": {
			sli:      slo.SLI{Name: "checkout-availability", Total: tempoQuery(totalFilter), Good: tempoQuery(goodFilter)},
			wantGood: 9937, wantTotal: 10000,
		},
		"a version scope keeps v2's 1,000 spans, 6 of them errors": {
			sli: badSLI(), scope: slo.Scope{"service.version": "v2"}, wantGood: 994, wantTotal: 1000,
			wantQ: []string{
				`{ (resource.service.name="checkout" && kind=server) && resource.service.version = "v2" } | count_over_time()`,
				`{ (resource.service.name="checkout" && kind=server && status=error) && resource.service.version = "v2" } | count_over_time()`,
			},
		},
		"an or in the filter stays inside the scope": {
			sli: slo.SLI{
				Name:  "checkout-or-payments",
				Total: tempoQuery(`{ resource.service.name = "checkout" || resource.service.name = "payments" }`),
				Bad:   tempoQuery(`{ (resource.service.name = "checkout" || resource.service.name = "payments") && status = error }`),
			},
			// v2 exists only in checkout's server spans: 1,000 with 6 errors.
			scope: slo.Scope{"service.version": "v2"}, wantGood: 994, wantTotal: 1000,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFakeTempo(t, checkoutSpans())
			c := newTestClient(t, srv.URL)
			got, err := c.Counts(context.Background(), tc.sli, hour, tc.scope)
			if err != nil {
				t.Fatalf("Counts: %v", err)
			}
			if got.Good != tc.wantGood || got.Total != tc.wantTotal {
				t.Errorf("Counts = good %v total %v, want good %v total %v", got.Good, got.Total, tc.wantGood, tc.wantTotal)
			}
			reqs := fake.recorded()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			for i, r := range reqs {
				q := r.URL.Query()
				if r.URL.Path != "/api/metrics/query" {
					t.Errorf("request %d: path %s", i, r.URL.Path)
				}
				if q.Get("start") != strconv.FormatInt(hour.Start.UnixNano(), 10) || q.Get("end") != strconv.FormatInt(hour.End.UnixNano(), 10) {
					t.Errorf("request %d: start %s end %s, want the hour in Unix nanoseconds", i, q.Get("start"), q.Get("end"))
				}
				if tc.wantQ != nil && q.Get("q") != tc.wantQ[i] {
					t.Errorf("request %d: q =\n%s\nwant\n%s", i, q.Get("q"), tc.wantQ[i])
				}
			}
		})
	}
}

func TestCountsErrors(t *testing.T) {
	tests := map[string]struct {
		sli       slo.SLI
		scope     slo.Scope
		fault     string
		timeout   time.Duration
		want      error
		wantText  string
		wantCalls int
	}{
		"a scope value that tries to add a pipeline is only a value and matches nothing": {
			sli: badSLI(), scope: slo.Scope{"service.version": `v2" } | count_over_time() by (name) { "`},
			want: slo.ErrNoData, wantText: "no spans", wantCalls: 1,
		},
		"a scope label name that is not an attribute name is refused before any request": {
			sli: badSLI(), scope: slo.Scope{`version" = "v2" } | rate() {`: "v2"},
			want: slo.ErrBadQuery, wantText: "scope label",
		},
		"a filter Tempo cannot parse is a bad query with Tempo's message": {
			sli:  slo.SLI{Name: "s", Total: tempoQuery(`{ resource.service.name "checkout" }`), Bad: tempoQuery(badFilter)},
			want: slo.ErrBadQuery, wantText: "total query: HTTP 400: invalid TraceQL query: parse error at line 1", wantCalls: 1,
		},
		"a good filter that selects more than the total is a bad query": {
			sli:  slo.SLI{Name: "s", Total: tempoQuery(totalFilter), Good: tempoQuery(`{ status != error }`)},
			want: slo.ErrBadQuery, wantText: "must select a subset", wantCalls: 2,
		},
		"no spans at all is no data": {
			sli:  slo.SLI{Name: "s", Total: tempoQuery(`{ resource.service.name = "nobody" }`), Bad: tempoQuery(`{ status = error }`)},
			want: slo.ErrNoData, wantCalls: 1,
		},
		"429 from the query frontend is unavailable, with Tempo's text": {
			sli: badSLI(), fault: "status:429:too many outstanding requests",
			want: slo.ErrUnavailable, wantText: "HTTP 429: too many outstanding requests", wantCalls: 1,
		},
		"500 is unavailable": {
			sli: badSLI(), fault: "status:500:rpc error: code = Unavailable desc = connection error",
			want: slo.ErrUnavailable, wantText: "HTTP 500: rpc error", wantCalls: 1,
		},
		"503 is unavailable": {
			sli: badSLI(), fault: "status:503:no healthy upstream",
			want: slo.ErrUnavailable, wantText: "HTTP 503: no healthy upstream", wantCalls: 1,
		},
		"an answer that is not JSON is unavailable": {
			sli: badSLI(), fault: "malformed",
			want: slo.ErrUnavailable, wantText: "not the JSON expected", wantCalls: 1,
		},
		"a partial answer is unavailable, never a figure": {
			sli: badSLI(), fault: "file:instant_response_partial.json",
			want: slo.ErrUnavailable, wantText: "partial results from Tempo (2 of 4 jobs failed", wantCalls: 1,
		},
		"a NaN count is no data": {
			sli: badSLI(), fault: "file:instant_response_nan.json",
			want: slo.ErrNoData, wantCalls: 1,
		},
		"a Tempo that does not answer in time is a timeout naming the call": {
			sli: badSLI(), fault: "hang", timeout: 100 * time.Millisecond,
			want: slo.ErrTimeout, wantText: "tempo total metrics query timed out after 100ms", wantCalls: 1,
		},
		"a raw SLI is refused": {
			sli:  slo.SLI{Name: "s", Raw: tempoQuery(totalFilter), RawType: slo.RawFailure},
			want: slo.ErrBadQuery, wantText: "raw (ratio) SLIs cannot be measured from traces",
		},
		"an SLI with neither good nor bad is refused": {
			sli:  slo.SLI{Name: "s", Total: tempoQuery(totalFilter)},
			want: slo.ErrBadQuery, wantText: "exactly one of good and bad",
		},
		"an Elasticsearch query is refused": {
			sli:  slo.SLI{Name: "s", Total: &slo.Query{Source: slo.SourceElasticsearch, Elasticsearch: &slo.ElasticsearchQuery{Index: "x"}}, Bad: tempoQuery(badFilter)},
			want: slo.ErrBadQuery, wantText: `total: not a Tempo query (source "elasticsearch")`,
		},
		"a filter with its own pipeline is refused": {
			sli:  slo.SLI{Name: "s", Total: tempoQuery(totalFilter + " | rate()"), Bad: tempoQuery(badFilter)},
			want: slo.ErrBadQuery, wantText: "text after the spanset",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFakeTempo(t, checkoutSpans())
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
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("Counts error = %q, want it to contain %q", err, tc.wantText)
			}
			if got := len(fake.recorded()); got != tc.wantCalls {
				t.Errorf("%d requests reached Tempo, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestTenantAndCredentials(t *testing.T) {
	const token, password = "glc_secret-token-value", "hunter2-password"
	tests := map[string]struct {
		cfg      Config
		wantAuth string
	}{
		"a bearer token is sent with the tenant": {
			cfg: Config{BearerToken: token, OrgID: "team-checkout"}, wantAuth: "Bearer " + token,
		},
		"a username and password are sent as basic authentication": {
			cfg: Config{Username: "123456", Password: password, OrgID: "team-checkout"}, wantAuth: "Basic MTIzNDU2Omh1bnRlcjItcGFzc3dvcmQ=",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFakeTempo(t, checkoutSpans())
			fake.orgID, fake.auth = "team-checkout", tc.wantAuth
			var logs bytes.Buffer
			tc.cfg.URL = srv.URL
			c, err := New(tc.cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Counts(context.Background(), badSLI(), hour, nil)
			if err != nil || got.Good != 9937 || got.Total != 10000 {
				t.Fatalf("Counts = %+v, %v; want 9937 of 10000", got, err)
			}
			fake.setFault("status:401:invalid token")
			_, err = c.Counts(context.Background(), badSLI(), hour, nil)
			if !errors.Is(err, slo.ErrUnavailable) || !strings.Contains(err.Error(), "credentials refused") {
				t.Errorf("Counts after 401 = %v, want ErrUnavailable naming the credentials", err)
			}
			for what, text := range map[string]string{"String()": c.String(), "the error": err.Error(), "the log": logs.String()} {
				if strings.Contains(text, token) || strings.Contains(text, password) {
					t.Errorf("%s shows a credential: %s", what, text)
				}
			}
		})
	}
	t.Run("a missing tenant is refused by a multi-tenant Tempo", func(t *testing.T) {
		fake, srv := newFakeTempo(t, checkoutSpans())
		fake.orgID = "team-checkout"
		_, err := newTestClient(t, srv.URL).Counts(context.Background(), badSLI(), hour, nil)
		if !errors.Is(err, slo.ErrUnavailable) || !strings.Contains(err.Error(), "no org id") {
			t.Errorf("Counts without a tenant = %v, want ErrUnavailable quoting Tempo", err)
		}
	})
}

func TestCountsHonoursTheCallersDeadline(t *testing.T) {
	fake, srv := newFakeTempo(t, checkoutSpans())
	fake.setFault("hang")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := newTestClient(t, srv.URL).Counts(ctx, badSLI(), hour, nil)
	if !errors.Is(err, slo.ErrTimeout) {
		t.Fatalf("Counts error = %v, want ErrTimeout", err)
	}
}

func TestUnreachableTempoIsUnavailable(t *testing.T) {
	_, srv := newFakeTempo(t, nil)
	url := srv.URL
	srv.Close()
	_, err := newTestClient(t, url).Counts(context.Background(), badSLI(), hour, nil)
	if !errors.Is(err, slo.ErrUnavailable) {
		t.Fatalf("Counts error = %v, want ErrUnavailable", err)
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Config{
		URL:         "https://user:secret@tempo.example.com",
		BearerToken: "t", Username: "u",
		Timeout: -time.Second,
		OrgID:   "a\nb",
	}, nil)
	if err == nil {
		t.Fatal("New accepted a broken config")
	}
	for _, want := range []string{
		"url: put credentials in bearerToken or username/password, not in the URL",
		"bearerToken and username/password are exclusive",
		"timeout: must not be negative",
		"orgID: must be one line",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("New error shows a password: %v", err)
	}
	if _, err := New(Config{URL: "tempo:3200"}, nil); err == nil || !strings.Contains(err.Error(), "want an http or https URL") {
		t.Errorf("New with a bare host = %v", err)
	}
}

func TestDecodeInstant(t *testing.T) {
	tests := map[string]struct {
		file string
		want float64
		err  error
	}{
		"one series is read as it is":                                   {file: "instant_response.json", want: 10000},
		"series grouped by service are summed, a missing value is zero": {file: "instant_response_by_service.json", want: 93},
		"an answer without series counts zero":                          {file: "instant_response_empty.json", want: 0},
		"a NaN value is no data":                                        {file: "instant_response_nan.json", err: slo.ErrNoData},
		"a partial answer is unavailable":                               {file: "instant_response_partial.json", err: slo.ErrUnavailable},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeInstant(data)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("decodeInstant = %v, %v; want %v", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("decodeInstant = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// FuzzDecodeInstant: whatever the decoder accepts is a finite,
// non-negative count.
func FuzzDecodeInstant(f *testing.F) {
	for _, name := range []string{"instant_response.json", "instant_response_by_service.json", "instant_response_nan.json", "instant_response_partial.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"series":[{"value":"1e308"},{"value":"1e308"}]}`))
	f.Add([]byte(`{"series":[{"value":"-Infinity"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := decodeInstant(data)
		if err == nil && (n < 0 || math.IsNaN(n) || math.IsInf(n, 0)) {
			t.Errorf("decodeInstant accepted %v", n)
		}
	})
}
