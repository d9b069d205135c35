package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const token = "ghp_S3cr3tT0kenS3cr3tT0kenS3cr3tT0ken00"

var now = time.Date(2026, 11, 21, 12, 15, 0, 0, time.UTC)

func fptr(f float64) *float64 { return &f }

func haltEvent() alerting.Event {
	return alerting.Event{
		Kind: alerting.KindDecision, At: now,
		Decision: &gate.Answer{
			Decision:     slogate.Halt,
			Reason:       "checkout-availability: version v2 burns budget at 6.3x since 12:01 (max 2x)",
			EvaluationID: "ev_7", Service: "checkout", Environment: "production", Version: "v2",
			DeployID: "dep_01", Policy: "checkout-production", EvaluatedAt: now,
			Checks: []gate.Check{
				{Kind: gate.KindBudget, SLO: "checkout-availability", Verdict: gate.Pass,
					Reason: "41% of the budget left", Target: 0.999, BudgetRemaining: fptr(0.41)},
				{Kind: gate.KindVerification, SLO: "checkout-availability", Verdict: gate.Fail,
					Reason: "burns 6.3x | over the 2x limit",
					Window: &gate.Window{Start: now.Add(-14 * time.Minute), End: now},
					Good:   fptr(9937), Total: fptr(10000), SLI: fptr(0.9937), Target: 0.999,
					BurnRate: fptr(6.3), MaxBurnRate: fptr(2), BudgetRemaining: fptr(0.41),
					Query: `sum(rate(http_requests_total{code!~"5..",version="v2"}[14m]))`},
				{Kind: gate.KindVerification, SLO: "checkout-latency", Verdict: gate.Fail,
					Reason: "no data since the deploy began", Target: 0.99, NoData: true},
			},
		},
		DecisionDeploy: &slogate.Deploy{
			ID: "dep_01", Service: "checkout", Environment: "production", Version: "v2",
			PreviousVersion: "v1", Commit: "3f9c2ab", Strategy: "canary", Status: "running",
			PipelineURL: "https://ci.example.com/checkout/runs/42", StartedAt: now.Add(-14 * time.Minute),
		},
		Links: []alerting.Link{{Href: "https://slogate.example.com/v1/gate?service=checkout&environment=production", Text: "the gate's answer"}},
	}
}

func budgetEvent() alerting.Event {
	return alerting.Event{
		Kind: alerting.KindBudgetExhausted, At: now,
		Budget: &alerting.Budget{
			Service: "checkout", SLO: "checkout-availability", Target: 0.999, Window: "30d",
			Remaining: -0.12, Period: "rolling-2026-11",
			Status: slo.Status{
				Name: "checkout-availability", Service: "checkout", DisplayName: "Checkout availability",
				Target: 0.999, Window: "30d",
				SLI:         slo.SLIFigures{Good: fptr(998880), Total: fptr(1e6), Ratio: fptr(0.99888), ErrorRatio: fptr(0.00112)},
				ErrorBudget: slo.BudgetFigures{Total: 0.001, Consumed: fptr(1.12), Remaining: fptr(-0.12)},
				BurnRates:   map[string]*float64{"5m": fptr(2.5), "1h": fptr(1.75), "30m": fptr(2.25), "3d": nil, "1d": fptr(1.2)},
				Alerts: []slo.AlertState{
					{Severity: slo.SeverityPage, LongWindow: "1h", ShortWindow: "5m", Factor: 14.4},
					{Severity: slo.SeverityTicket, LongWindow: "1d", ShortWindow: "2h", Factor: 1, Firing: true},
				},
				EvaluatedAt: now,
				Range:       slo.RangeJSON{Start: now.Add(-30 * 24 * time.Hour), End: now},
				Errors:      []slo.MeasureError{{Window: "3d", Error: "prometheus: timeout", NoData: false}},
			},
		},
		Links: []alerting.Link{{Href: "https://grafana.example.com/d/slo-checkout", Text: "SLO dashboard"}},
	}
}

// fakeGitHub is GitHub's issues API for one repository, in memory.
type fakeGitHub struct {
	t      *testing.T
	prefix string // the API's path prefix: "" or "/api/v3"
	url    string

	mu sync.Mutex
	// fail answers the next requests with these before answering as
	// GitHub; a zero failure lets the request through.
	fail     []failure
	pageSize int
	issues   []*fakeIssue
	created  int
	comments map[int][]string
	requests []request
}

type failure struct {
	status int
	header map[string]string
	body   string
}

type fakeIssue struct {
	Number int      `json:"number"`
	Title  string   `json:"title"`
	Body   string   `json:"body"`
	Labels []string `json:"-"`
	Pull   bool     `json:"-"`
}

type request struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

func newFake(t *testing.T, prefix string) (*fakeGitHub, *httptest.Server) {
	f := &fakeGitHub{t: t, prefix: prefix, pageSize: 100, comments: map[int][]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/acme/shop/issues", f.list)
	mux.HandleFunc("GET /repositories/1296269/issues", f.list) // GitHub's Link headers name the repository by id
	mux.HandleFunc("POST /repos/acme/shop/issues", f.create)
	mux.HandleFunc("POST /repos/acme/shop/issues/{n}/comments", f.comment)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusNotFound, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.requests = append(f.requests, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		var fl failure
		if len(f.fail) > 0 {
			fl, f.fail = f.fail[0], f.fail[1:]
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "4999")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
		switch {
		case fl.status != 0:
			for k, v := range fl.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(fl.status)
			_, _ = io.WriteString(w, fl.body)
		case r.Header.Get("Authorization") != "Bearer "+token:
			answer(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
		case !strings.HasPrefix(r.URL.Path, prefix+"/"):
			answer(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		default:
			r.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
			mux.ServeHTTP(w, r)
		}
	}))
	f.url = srv.URL
	t.Cleanup(srv.Close)
	return f, srv
}

func answer(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeGitHub) issueJSON(is *fakeIssue) map[string]any {
	labels := []map[string]string{}
	for _, l := range is.Labels {
		labels = append(labels, map[string]string{"name": l})
	}
	m := map[string]any{
		"id": 1000 + is.Number, "number": is.Number, "title": is.Title, "body": is.Body,
		"state": "open", "labels": labels,
		"html_url": fmt.Sprintf("https://github.com/acme/shop/issues/%d", is.Number),
		"url":      fmt.Sprintf("%s%s/repos/acme/shop/issues/%d", f.url, f.prefix, is.Number),
	}
	if is.Pull {
		m["pull_request"] = map[string]string{"url": fmt.Sprintf("%s/repos/acme/shop/pulls/%d", f.url, is.Number)}
	}
	return m
}

func (f *fakeGitHub) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 || per > f.pageSize {
		per = f.pageSize
	}
	page, _ := strconv.Atoi(q.Get("page"))
	if page < 1 {
		page = 1
	}
	var match []*fakeIssue
	for i := len(f.issues) - 1; i >= 0; i-- { // newest first
		is := f.issues[i]
		ok := q.Get("state") == "open"
		for _, l := range strings.Split(q.Get("labels"), ",") {
			ok = ok && (l == "" || slices.Contains(is.Labels, l))
		}
		if ok {
			match = append(match, is)
		}
	}
	last := (len(match) + per - 1) / per
	out := []map[string]any{}
	for i := (page - 1) * per; i < len(match) && i < page*per; i++ {
		out = append(out, f.issueJSON(match[i]))
	}
	link := func(p int) string {
		q.Set("page", strconv.Itoa(p))
		return fmt.Sprintf("<%s%s/repositories/1296269/issues?%s>", f.url, f.prefix, q.Encode())
	}
	var links []string
	if page < last {
		links = append(links, link(page+1)+`; rel="next"`, link(last)+`; rel="last"`)
	}
	if page > 1 {
		links = append(links, link(1)+`; rel="first"`, link(page-1)+`; rel="prev"`)
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	answer(w, http.StatusOK, out)
}

func (f *fakeGitHub) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title  string   `json:"title"`
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Title == "" {
		answer(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
			"errors": []map[string]string{{"resource": "Issue", "code": "missing_field", "field": "title"}}})
		return
	}
	f.mu.Lock()
	is := &fakeIssue{Number: len(f.issues) + 1, Title: in.Title, Body: in.Body, Labels: in.Labels}
	f.issues = append(f.issues, is)
	f.created++
	f.mu.Unlock()
	answer(w, http.StatusCreated, f.issueJSON(is))
}

func (f *fakeGitHub) comment(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	var in struct {
		Body string `json:"body"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	f.mu.Lock()
	defer f.mu.Unlock()
	if n < 1 || n > len(f.issues) {
		answer(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	f.comments[n] = append(f.comments[n], in.Body)
	answer(w, http.StatusCreated, map[string]any{"id": 5000 + len(f.comments[n]), "body": in.Body,
		"html_url": fmt.Sprintf("https://github.com/acme/shop/issues/%d#issuecomment-%d", n, 5000+len(f.comments[n]))})
}

func (f *fakeGitHub) seed(is ...fakeIssue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, i := range is {
		i.Number = len(f.issues) + 1
		f.issues = append(f.issues, &i)
	}
}

func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("request body is not JSON: %v: %s", err, body)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("request body differs from %s:\ngot:\n%s\nwant:\n%s", path, buf.Bytes(), want)
	}
}

func newNotifier(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	n, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	n.now = func() time.Time { return now }
	return n
}

func TestNew(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
		want    string
	}{
		"a repository and a token are enough": {
			cfg:  Config{Repo: "acme/shop", Token: token},
			want: "github(https://api.github.com, repo acme/shop, labels slogate)",
		},
		"GitHub Enterprise is an API base": {
			cfg:  Config{Repo: "acme/shop", Token: token, URL: "https://ghe.example.com/api/v3/", Labels: []string{"slogate", "sre"}},
			want: "github(https://ghe.example.com/api/v3, repo acme/shop, labels slogate,sre)",
		},
		"an empty config names every problem at once": {
			cfg:     Config{URL: "ghe.example.com", Labels: []string{}, Timeout: -time.Second},
			wantErr: "github: repo: required (owner/name)\ngithub: token: required\ngithub: url: scheme must be http or https, got \"\"\ngithub: labels: at least one is needed to find slogate's issues\ngithub: timeout: must not be negative, got -1s",
		},
		"a repository without its owner is refused": {
			cfg:     Config{Repo: "shop", Token: token, Labels: []string{"a,b"}},
			wantErr: "github: repo: must be owner/name, got \"shop\"\ngithub: labels[0]: must be a non-empty name without commas, got \"a,b\"",
		},
		"a URL with credentials is refused": {
			cfg:     Config{Repo: "acme/shop", Token: token, URL: "https://x:" + token + "@ghe.example.com/api/v3"},
			wantErr: "github: url: must not hold credentials (use the token or key setting)",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			n, err := New(tt.cfg, nil)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Fatalf("New() error = %q, want %q", got, tt.wantErr)
			}
			if err == nil && n.String() != tt.want {
				t.Errorf("String() = %q, want %q", n.String(), tt.want)
			}
			if strings.Contains(got, token) || (n != nil && strings.Contains(n.String(), token)) {
				t.Errorf("the token shows")
			}
		})
	}
}

func TestKey(t *testing.T) {
	byVersion := haltEvent()
	byVersion.Decision.DeployID, byVersion.DecisionDeploy = "", nil
	promote := haltEvent()
	promote.Decision.Decision = slogate.Promote
	tests := map[string]struct {
		e    alerting.Event
		want string
	}{
		"a halt is keyed by its deploy":               {e: haltEvent(), want: "halt/checkout/production/dep_01"},
		"a halt without a deploy is keyed by version": {e: byVersion, want: "halt/checkout/production/v2"},
		"a spent budget is keyed by SLO and period":   {e: budgetEvent(), want: "budget/checkout-availability/rolling-2026-11"},
		"a promote files nothing":                     {e: promote},
		"a deploy files nothing":                      {e: alerting.Event{Kind: alerting.KindDeployStarted, Deploy: &slogate.Deploy{ID: "d"}}},
	}
	n := newNotifier(t, Config{Repo: "acme/shop", Token: token})
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := n.Key(tt.e); got != tt.want {
				t.Errorf("Key() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNotify(t *testing.T) {
	halt := haltEvent()
	_, haltBody := render(halt, "halt/checkout/production/dep_01")
	type call struct{ method, path, query, golden string }
	list := call{"GET", "/repos/acme/shop/issues", "labels=slogate&per_page=100&state=open", ""}
	tests := map[string]struct {
		e           alerting.Event
		prefix      string
		seed        []fakeIssue
		pageSize    int
		calls       []call
		wantIssues  int
		wantComment int // the issue commented on
	}{
		"a halt files an issue with its checks": {
			e:          halt,
			calls:      []call{list, {"POST", "/repos/acme/shop/issues", "", "halt-issue.json"}},
			wantIssues: 1,
		},
		"a spent budget files an issue with its figures": {
			e:          budgetEvent(),
			calls:      []call{list, {"POST", "/repos/acme/shop/issues", "", "budget-issue.json"}},
			wantIssues: 1,
		},
		"GitHub Enterprise is called under its API path": {
			e: halt, prefix: "/api/v3",
			calls:      []call{{"GET", "/api/v3/repos/acme/shop/issues", list.query, ""}, {"POST", "/api/v3/repos/acme/shop/issues", "", "halt-issue.json"}},
			wantIssues: 1,
		},
		"an open issue with the fingerprint on a later page gets a comment": {
			e:        halt,
			pageSize: 2,
			seed: []fakeIssue{
				{Title: "slogate halted checkout v2 in production", Body: "Earlier text.\n\n" + Marker("halt/checkout/production/dep_01") + "\n", Labels: []string{"slogate"}},
				{Title: "unrelated", Body: "no marker", Labels: []string{"slogate"}},
				{Title: "a pull request quoting the marker", Body: Marker("halt/checkout/production/dep_01"), Labels: []string{"slogate"}, Pull: true},
				{Title: "another", Body: "", Labels: []string{"slogate"}},
			},
			calls: []call{
				{"GET", "/repos/acme/shop/issues", list.query, ""},
				{"GET", "/repositories/1296269/issues", "labels=slogate&page=2&per_page=100&state=open", ""},
				{"POST", "/repos/acme/shop/issues/1/comments", "", "halt-comment.json"},
			},
			wantIssues: 4, wantComment: 1,
		},
		"an issue filed by a try whose answer was lost is not filed again": {
			e:          halt,
			seed:       []fakeIssue{{Title: "slogate halted checkout v2 in production", Body: haltBody, Labels: []string{"slogate"}}},
			calls:      []call{list},
			wantIssues: 1,
		},
		"an issue with the fingerprint but without the label is not seen": {
			e:          halt,
			seed:       []fakeIssue{{Title: "x", Body: Marker("halt/checkout/production/dep_01"), Labels: []string{"bug"}}},
			calls:      []call{list, {"POST", "/repos/acme/shop/issues", "", "halt-issue.json"}},
			wantIssues: 2,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFake(t, tt.prefix)
			if tt.pageSize != 0 {
				fake.pageSize = tt.pageSize
			}
			fake.seed(tt.seed...)
			n := newNotifier(t, Config{Repo: "acme/shop", Token: token, URL: srv.URL + tt.prefix})
			if retry, err := n.Notify(context.Background(), tt.e); err != nil {
				t.Fatalf("Notify() = %t, %v", retry, err)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if len(fake.requests) != len(tt.calls) {
				t.Fatalf("GitHub saw %d requests, want %d: %+v", len(fake.requests), len(tt.calls), fake.requests)
			}
			for i, c := range tt.calls {
				r := fake.requests[i]
				if r.Method != c.method || r.Path != c.path || r.Query != c.query {
					t.Errorf("request %d = %s %s?%s, want %s %s?%s", i, r.Method, r.Path, r.Query, c.method, c.path, c.query)
				}
				want := map[string]string{
					"Authorization": "Bearer " + token, "Accept": "application/vnd.github+json",
					"X-GitHub-Api-Version": "2022-11-28", "User-Agent": "slogate",
				}
				if c.method == "POST" {
					want["Content-Type"] = "application/json"
				}
				for h, v := range want {
					if got := r.Header.Get(h); got != v {
						t.Errorf("request %d header %s = %q, want %q", i, h, got, v)
					}
				}
				if c.golden != "" {
					golden(t, c.golden, r.Body)
				}
			}
			if len(fake.issues) != tt.wantIssues {
				t.Errorf("GitHub holds %d issues, want %d", len(fake.issues), tt.wantIssues)
			}
			wantCommented := 0
			if tt.wantComment != 0 {
				wantCommented = 1
			}
			if len(fake.comments) != wantCommented {
				t.Errorf("comments on %d issues, want %d (issue %d): %v", len(fake.comments), wantCommented, tt.wantComment, fake.comments)
			}
			for n, cs := range fake.comments {
				if n != tt.wantComment || len(cs) != 1 {
					t.Errorf("issue %d got %d comments, want one on issue %d", n, len(cs), tt.wantComment)
				}
			}
		})
	}
}

// TestIssueBodies keeps the rendered markdown readable in testdata/.
func TestIssueBodies(t *testing.T) {
	tests := map[string]struct {
		e    alerting.Event
		file string
	}{
		"a halt lists its checks in a table": {e: haltEvent(), file: "halt-issue.md"},
		"a spent budget lists its figures":   {e: budgetEvent(), file: "budget-issue.md"},
	}
	n := newNotifier(t, Config{Repo: "acme/shop", Token: token})
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			title, body := render(tt.e, n.Key(tt.e))
			got := []byte("# " + title + "\n\n" + body)
			path := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("issue differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

func TestNotifyFailures(t *testing.T) {
	reset := now.Add(37 * time.Minute)
	secondary := `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`
	primary := `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}`
	tests := map[string]struct {
		fail      []failure
		repo      string
		token     string
		timeout   time.Duration
		wantRetry bool
		wantErr   string
		wantUntil time.Time
	}{
		"a secondary rate limit waits for retry-after": {
			fail:      []failure{{status: 403, header: map[string]string{"Retry-After": "60"}, body: secondary}},
			wantRetry: true, wantUntil: now.Add(time.Minute),
			wantErr: "github: halt/checkout/production/dep_01: GET /repos/acme/shop/issues: HTTP 403: rate limited, retry after 2026-11-21T12:16:00Z (retry-after): You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
		},
		"a spent primary rate limit waits for its reset": {
			fail: []failure{{}, {status: 403, header: map[string]string{
				"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(reset.Unix(), 10),
			}, body: primary}},
			wantRetry: true, wantUntil: reset,
			wantErr: "github: halt/checkout/production/dep_01: POST /repos/acme/shop/issues: HTTP 403: rate limited, retry after 2026-11-21T12:52:00Z (x-ratelimit-reset): API rate limit exceeded for user ID 1.",
		},
		"a 429 without headers waits a minute": {
			fail:      []failure{{status: 429, body: secondary}},
			wantRetry: true, wantUntil: now.Add(time.Minute),
			wantErr: "github: halt/checkout/production/dep_01: GET /repos/acme/shop/issues: HTTP 429: rate limited, retry after 2026-11-21T12:16:00Z (secondary rate limit): You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
		},
		"a 403 that is no rate limit is final": {
			fail:    []failure{{status: 403, body: `{"message":"Resource not accessible by personal access token"}`}},
			wantErr: "github: halt/checkout/production/dep_01: GET /repos/acme/shop/issues: HTTP 403: Resource not accessible by personal access token (check the repository and that the token may read and write its issues)",
		},
		"a bad token is final": {
			token:   "ghp_wrong",
			wantErr: "github: halt/checkout/production/dep_01: GET /repos/acme/shop/issues: HTTP 401: Bad credentials (check the token)",
		},
		"an unknown repository is final": {
			repo:    "acme/nope",
			wantErr: "github: halt/checkout/production/dep_01: GET /repos/acme/nope/issues: HTTP 404: Not Found (check the repository and that the token may read and write its issues)",
		},
		"a validation failure is final": {
			fail:    []failure{{}, {status: 422, body: `{"message":"Validation Failed","errors":[{"value":"nope","resource":"Label","field":"name","code":"invalid"}]}`}},
			wantErr: "github: halt/checkout/production/dep_01: POST /repos/acme/shop/issues: HTTP 422: Validation Failed; Label.name: invalid",
		},
		"a server error is retried": {
			fail:      []failure{{status: 502, body: "<html>Bad gateway</html>"}},
			wantRetry: true,
			wantErr:   "github: halt/checkout/production/dep_01: GET /repos/acme/shop/issues: HTTP 502: <html>Bad gateway</html>",
		},
		"a GitHub that does not answer in time is retried": {
			timeout: time.Nanosecond, wantRetry: true,
			wantErr: "github: halt/checkout/production/dep_01: GET /repos/acme/shop/issues: github GET /repos/acme/shop/issues timed out after 1ns",
		},
		"a next page on another host is not followed": {
			fail:    []failure{{status: 200, header: map[string]string{"Link": `<https://evil.example.com/repos/acme/shop/issues?page=2>; rel="next"`}, body: "[]"}},
			wantErr: "github: halt/checkout/production/dep_01: listing open issues: next page on another host (evil.example.com) refused",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFake(t, "")
			fake.fail = tt.fail
			cfg := Config{Repo: "acme/shop", Token: token, URL: srv.URL, Timeout: tt.timeout}
			if tt.repo != "" {
				cfg.Repo = tt.repo
			}
			if tt.token != "" {
				cfg.Token = tt.token
			}
			n := newNotifier(t, cfg)
			retry, err := n.Notify(context.Background(), haltEvent())
			got := ""
			if err != nil {
				got = err.Error()
			}
			if retry != tt.wantRetry || got != tt.wantErr {
				t.Errorf("Notify() = %t, %q\nwant %t, %q", retry, got, tt.wantRetry, tt.wantErr)
			}
			until, ok := RetryAfter(err)
			if ok != !tt.wantUntil.IsZero() || !until.Equal(tt.wantUntil) {
				t.Errorf("RetryAfter() = %s, %t; want %s", until, ok, tt.wantUntil)
			}
			var nb interface{ NotBefore() time.Time }
			if ok && (!errors.As(err, &nb) || !nb.NotBefore().Equal(tt.wantUntil)) {
				t.Errorf("the rate limit error does not expose NotBefore() = %s", tt.wantUntil)
			}
			if strings.Contains(got, cfg.Token) {
				t.Errorf("the error shows the token")
			}
			if fake.created != 0 {
				t.Errorf("GitHub created %d issues", fake.created)
			}
		})
	}
}

// TestPeerDownThenBack: GitHub fails while a halt is filed, then comes
// back; the retries file one issue.
func TestPeerDownThenBack(t *testing.T) {
	fake, srv := newFake(t, "")
	// The list passes and the creation fails; then the list fails.
	fake.fail = []failure{{}, {status: 500, body: `{"message":"Server Error"}`}, {status: 503, body: ""}}
	n := newNotifier(t, Config{Repo: "acme/shop", Token: token, URL: srv.URL})
	var retries int
	for {
		retry, err := n.Notify(context.Background(), haltEvent())
		if err == nil {
			break
		}
		if !retry {
			t.Fatalf("Notify() while GitHub is down = final error %v, want a retry", err)
		}
		if retries++; retries > 5 {
			t.Fatalf("Notify() still failing after %d retries: %v", retries, err)
		}
	}
	// The outbox, unsure whether it went, sends it once more.
	if _, err := n.Notify(context.Background(), haltEvent()); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if retries != 2 || fake.created != 1 || len(fake.comments) != 0 {
		t.Errorf("retries %d, issues created %d, comments %v; want 2, 1, none", retries, fake.created, fake.comments)
	}
}
