package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// timedSLOs gives one objective whose figures depend on the instant: the
// budget left falls by 1 % every 5 minutes after fixedTime-1h, and a
// failed window at fixedTime-30m.
type timedSLOs struct{ fakeSLOs }

func (s *timedSLOs) Status(_ context.Context, name string, at time.Time) (slo.Status, bool) {
	if name != "checkout-availability" {
		return slo.Status{}, false
	}
	st := exampleStatus()
	st.EvaluatedAt = at
	k := float64(at.Sub(fixedTime.Add(-time.Hour)) / (5 * time.Minute))
	st.ErrorBudget.Remaining = ptr(0.8 - k/100)
	st.SLI.Ratio = ptr(0.9992 - k/100000)
	st.BurnRates = map[string]*float64{"5m": ptr(k / 4), "1h": ptr(k / 8)}
	if at.Equal(fixedTime.Add(-30 * time.Minute)) {
		st.BurnRates["5m"] = nil
		st.Errors = []slo.MeasureError{{Window: "5m", Error: "prometheus: source unavailable: connection refused"}}
	}
	return st, true
}

// fakeRecords keeps decisions for the history and the UI.
type fakeRecords struct {
	mu        sync.Mutex
	decisions []slogate.DecisionRecord
	audit     []store.AuditEntry
}

func (r *fakeRecords) ListDecisions(_ context.Context, f store.DecisionFilter) ([]slogate.DecisionRecord, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slogate.DecisionRecord
	for i := len(r.decisions) - 1; i >= 0; i-- {
		d := r.decisions[i]
		if (f.Service == "" || d.Service == f.Service) && (f.DeployID == "" || d.DeployID == f.DeployID) && !d.EvaluatedAt.Before(f.Since) {
			out = append(out, d)
		}
	}
	return out, "", nil
}

func (r *fakeRecords) ListAudit(_ context.Context, f store.AuditFilter) ([]store.AuditEntry, string, error) {
	return nil, "", nil
}

func (r *fakeRecords) ActiveOverride(context.Context, string, string, time.Time) (store.Override, bool, error) {
	return store.Override{}, false, nil
}

func historyHarness(t *testing.T) *harness {
	t.Helper()
	recs := &fakeRecords{decisions: []slogate.DecisionRecord{
		{EvaluationID: "ev_before", Service: "checkout", Environment: "production", Version: "v1", Decision: "promote", Reason: "all checks pass", EvaluatedAt: fixedTime.Add(-3 * time.Hour)},
		{EvaluationID: "ev_wait", Service: "checkout", Environment: "production", Version: "v2", DeployID: "dep_v2", Decision: "wait", Reason: "checkout-availability: 5m of 10m elapsed", EvaluatedAt: fixedTime.Add(-25 * time.Minute)},
		{EvaluationID: "ev_halt", Service: "checkout", Environment: "production", Version: "v2", DeployID: "dep_v2", Decision: "halt", Reason: "checkout-availability: version v2 burns budget at 6.3x since 11:45 (max 2x)", EvaluatedAt: fixedTime.Add(-20 * time.Minute)},
		{EvaluationID: "ev_other", Service: "cart", Environment: "production", Decision: "halt", EvaluatedAt: fixedTime.Add(-20 * time.Minute)},
	}}
	h := newHarness(t, func(d *Deps) {
		d.SLOs = &timedSLOs{}
		d.Records = recs
	})
	ctx := context.Background()
	for _, d := range []slogate.Deploy{
		{ID: "dep_old", Service: "checkout", Environment: "production", Version: "v0", StartedAt: fixedTime.Add(-30 * time.Hour), Status: "succeeded"},
		{ID: "dep_v1", Service: "checkout", Environment: "production", Version: "v1", StartedAt: fixedTime.Add(-2 * time.Hour), Status: "succeeded"},
		{ID: "dep_v2", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1", StartedAt: fixedTime.Add(-30 * time.Minute), Status: "running"},
		{ID: "dep_cart", Service: "cart", Environment: "production", Version: "v9", StartedAt: fixedTime.Add(-30 * time.Minute), Status: "running"},
	} {
		d.CreatedAt = d.StartedAt
		if _, _, err := h.store.CreateDeploy(ctx, d, ""); err != nil {
			t.Fatal(err)
		}
	}
	finished := fixedTime.Add(-50 * time.Minute)
	if _, err := h.store.FinishDeploy(ctx, "dep_v1", "succeeded", finished); err != nil {
		t.Fatal(err)
	}
	oldEnd := fixedTime.Add(-29 * time.Hour)
	if _, err := h.store.FinishDeploy(ctx, "dep_old", "succeeded", oldEnd); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSLOHistory(t *testing.T) {
	h := historyHarness(t)
	q := url.Values{"from": {fixedTime.Add(-time.Hour).Format(time.RFC3339)}, "to": {fixedTime.Format(time.RFC3339)}, "step": {"10m"}}
	r := h.do(t, call{method: "GET", path: "/v1/slos/checkout-availability/history?" + q.Encode(), token: tokRead})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, r.body, "", "  "); err != nil {
		t.Fatal(err)
	}
	golden(t, "history.golden.json", pretty.Bytes())
}

func TestSLOHistoryRefusesBadSpans(t *testing.T) {
	h := historyHarness(t)
	at := func(d time.Duration) string { return fixedTime.Add(d).Format(time.RFC3339) }
	tests := map[string]struct {
		query      url.Values
		status     int
		field, msg string
	}{
		"a start after the end is refused":    {url.Values{"from": {at(0)}, "to": {at(-time.Hour)}}, 400, "from", "must be before to"},
		"a step that is not a duration":       {url.Values{"step": {"fortnight"}}, 400, "step", "must be a duration"},
		"a step below a second":               {url.Values{"step": {"10ms"}}, 400, "step", "at least 1s"},
		"more than 500 points are refused":    {url.Values{"from": {at(-24 * time.Hour)}, "to": {at(0)}, "step": {"1m"}}, 400, "step", "gives 1441 points"},
		"a time that is not RFC 3339":         {url.Values{"to": {"yesterday"}}, 400, "to", "RFC 3339"},
		"an SLO that does not exist is a 404": {url.Values{}, 404, "", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := "/v1/slos/checkout-availability/history?" + tc.query.Encode()
			if tc.status == 404 {
				path = "/v1/slos/nope/history"
			}
			p := problem(t, h.do(t, call{method: "GET", path: path, token: tokRead}), tc.status)
			if tc.field == "" {
				return
			}
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field || !strings.Contains(p.Errors[0].Message, tc.msg) {
				t.Fatalf("errors %+v, want %s: ...%s...", p.Errors, tc.field, tc.msg)
			}
		})
	}
	t.Run("without a token it is a 401", func(t *testing.T) {
		problem(t, h.do(t, call{method: "GET", path: "/v1/slos/checkout-availability/history"}), 401)
	})
}

// uiClient is a browser's view of the UI: cookies, no redirects followed.
type uiClient struct {
	h      *harness
	cookie *http.Cookie
}

func (u *uiClient) send(t *testing.T, method, path string, form url.Values, header map[string]string) *http.Response {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, u.h.url+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if u.cookie != nil {
		req.AddCookie(u.cookie)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (u *uiClient) login(t *testing.T, token string) *http.Response {
	t.Helper()
	resp := u.send(t, "POST", "/ui/login", url.Values{"token": {token}, "next": {"/ui/overrides"}}, nil)
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			u.cookie = c
		}
	}
	return resp
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (u *uiClient) csrf(t *testing.T) string {
	t.Helper()
	resp := u.send(t, "GET", "/ui/overrides", nil, nil)
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	m := csrfField.FindStringSubmatch(b.String())
	if m == nil {
		t.Fatalf("no CSRF token on /ui/overrides (%d):\n%s", resp.StatusCode, b.String())
	}
	return m[1]
}

func TestUILogin(t *testing.T) {
	h := newHarness(t)
	t.Run("a good token gets a Secure HttpOnly SameSite=Strict session cookie without the token", func(t *testing.T) {
		u := &uiClient{h: h}
		resp := u.login(t, tokRead)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/overrides" {
			t.Fatalf("status %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		c := u.cookie
		if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
			t.Fatalf("cookie %+v", c)
		}
		if strings.Contains(c.Value, tokRead) {
			t.Fatal("the cookie holds the token")
		}
	})
	t.Run("a wrong token is a 401 and no cookie", func(t *testing.T) {
		u := &uiClient{h: h}
		if resp := u.login(t, "wrong-token-0000000"); resp.StatusCode != http.StatusUnauthorized || u.cookie != nil {
			t.Fatalf("status %d, cookie %v", resp.StatusCode, u.cookie)
		}
	})
	t.Run("a page without a session sends the browser to the login", func(t *testing.T) {
		u := &uiClient{h: h}
		resp := u.send(t, "GET", "/ui/deploys?service=checkout", nil, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login?next=%2Fui%2Fdeploys%3Fservice%3Dcheckout" {
			t.Fatalf("status %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("the session reads the API but does not write it", func(t *testing.T) {
		u := &uiClient{h: h}
		u.login(t, tokAdmin)
		if resp := u.send(t, "GET", "/v1/slos", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/slos with the cookie: %d", resp.StatusCode)
		}
		req := u.send(t, "DELETE", "/v1/overrides/ovr_x", nil, nil)
		if req.StatusCode != http.StatusUnauthorized {
			t.Fatalf("DELETE /v1/overrides with the cookie: %d, want 401", req.StatusCode)
		}
	})
	t.Run("a tampered cookie is no session", func(t *testing.T) {
		u := &uiClient{h: h}
		u.login(t, tokRead)
		payload, _, _ := cutLast(u.cookie.Value, ".")
		parts := strings.Split(payload, ".")
		parts[0] = b64.EncodeToString([]byte("root")) // claim the admin token's name
		u.cookie.Value = strings.Join(parts, ".") + "." + strings.Split(u.cookie.Value, ".")[3]
		if resp := u.send(t, "GET", "/", nil, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d, want 303 to the login", resp.StatusCode)
		}
	})
	t.Run("a next that leaves the site goes home", func(t *testing.T) {
		for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
			u := &uiClient{h: h}
			resp := u.send(t, "POST", "/ui/login", url.Values{"token": {tokRead}, "next": {next}}, nil)
			if loc := resp.Header.Get("Location"); loc != "/" {
				t.Errorf("next %q: to %q", next, loc)
			}
		}
	})
}

func TestUIOverrideForms(t *testing.T) {
	h := newHarness(t)
	oncall := func(t *testing.T) *uiClient {
		u := &uiClient{h: h}
		u.login(t, tokAdmin)
		return u
	}
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "service": {"checkout"}, "environment": {"production"}, "reason": {"incident 42"}, "expiresIn": {"1h"}}
	}
	t.Run("a form with the session's CSRF token creates an override", func(t *testing.T) {
		u := oncall(t)
		before := len(h.store.overrides)
		resp := u.send(t, "POST", "/ui/overrides", form(u.csrf(t)), nil)
		if resp.StatusCode != http.StatusSeeOther || len(h.store.overrides) != before+1 {
			t.Fatalf("status %d, %d overrides", resp.StatusCode, len(h.store.overrides))
		}
		if inv := h.gate.invalidations(); len(inv) == 0 || inv[len(inv)-1] != "checkout/production" {
			t.Fatalf("invalidations %v", inv)
		}
	})
	t.Run("a form without the CSRF token is refused", func(t *testing.T) {
		u := oncall(t)
		if resp := u.send(t, "POST", "/ui/overrides", form(""), nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("another session's CSRF token is refused", func(t *testing.T) {
		a, b := oncall(t), oncall(t)
		if resp := a.send(t, "POST", "/ui/overrides", form(b.csrf(t)), nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("a form from another origin is refused", func(t *testing.T) {
		u := oncall(t)
		if resp := u.send(t, "POST", "/ui/overrides", form(u.csrf(t)), map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("a read-only session cannot create or revoke", func(t *testing.T) {
		u := &uiClient{h: h}
		u.login(t, tokRead)
		csrf := u.csrf(t)
		for _, path := range []string{"/ui/overrides", "/ui/overrides/ovr_x/revoke"} {
			if resp := u.send(t, "POST", path, form(csrf), nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: status %d", path, resp.StatusCode)
			}
		}
	})
	t.Run("a form without a reason says so", func(t *testing.T) {
		u := oncall(t)
		f := form(u.csrf(t))
		f.Del("reason")
		resp := u.send(t, "POST", "/ui/overrides", f, nil)
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b.String(), "reason: is required") {
			t.Fatalf("status %d:\n%s", resp.StatusCode, b.String())
		}
	})
}

func TestUIOpenOnLoopbackWithoutTokens(t *testing.T) {
	h := newHarness(t, func(d *Deps) { d.Tokens = nil })
	u := &uiClient{h: h}
	for _, path := range []string{"/", "/ui/deploys", "/ui/overrides", "/ui/slos/checkout-availability"} {
		if resp := u.send(t, "GET", path, nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	// Open, but another site's page still cannot post the forms.
	f := url.Values{"service": {"checkout"}, "environment": {"production"}, "reason": {"x"}, "expiresIn": {"1h"}}
	if resp := u.send(t, "POST", "/ui/overrides", f, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a form without the CSRF token: %d", resp.StatusCode)
	}
	f.Set("csrf", u.csrf(t))
	if resp := u.send(t, "POST", "/ui/overrides", f, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a form with it: %d", resp.StatusCode)
	}
}

func TestPlainSourceError(t *testing.T) {
	tests := map[string]struct {
		source slo.SourceType
		msg    string
		want   string
	}{
		"a refused Prometheus is named with its address": {slo.SourcePrometheus,
			`prometheus checkout-requests-ok: good query: sum(increase(x[30d])): source unavailable: Post "http://127.0.0.1:9090/api/v1/query": dial tcp 127.0.0.1:9090: connect: connection refused`,
			"Prometheus at http://127.0.0.1:9090: connection refused"},
		"a dial without a URL names the address": {slo.SourceElasticsearch,
			"elasticsearch sli search-log-lines-ok: search: source unavailable: dial tcp 127.0.0.1:9200: connect: connection refused",
			"Elasticsearch at 127.0.0.1:9200: connection refused"},
		"a source that is not set up says so": {slo.SourceTempo,
			"no tempo source is configured for SLI search-spans-ok (set sources.tempo in the config): source unavailable",
			"Tempo: no tempo source is configured for SLI search-spans-ok"},
		"anything else keeps its last part": {slo.SourcePrometheus, "prometheus x: bad_data: parse error", "Prometheus: parse error"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := PlainSourceError(tc.source, tc.msg); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGroupThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 2584000: "2,584,000", -12345: "-12,345"} {
		if got := groupThousands(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}

func TestUISLOListOrderAndFilters(t *testing.T) {
	set, err := slo.Parse("slos.yaml", []byte(`
apiVersion: openslo/v1
kind: SLO
metadata: {name: a-avail, labels: {team: shop}}
spec:
  service: a
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    metadata: {name: a-ok}
    spec: {ratioMetric: {counter: true, good: {metricSource: {type: Prometheus, spec: {query: 'sum(x{code="200"})'}}}, total: {metricSource: {type: Prometheus, spec: {query: 'sum(x)'}}}}}
  objectives: [{target: 0.99}]
`))
	if err != nil {
		t.Fatal(err)
	}
	st := func(name, service string, remaining *float64, errs ...slo.MeasureError) slo.Status {
		s := exampleStatus()
		s.Name, s.Service, s.ErrorBudget.Remaining, s.Errors = name, service, remaining, errs
		return s
	}
	down := slo.MeasureError{Window: "period", Error: `q: source unavailable: Post "http://127.0.0.1:9/api/v1/query": dial tcp 127.0.0.1:9: connect: connection refused`}
	h := newHarness(t, func(d *Deps) {
		d.Tokens = nil
		d.SLOs = &fakeSLOs{statuses: []slo.Status{
			st("a-avail", "a", ptr(0.7)), st("b-avail", "b", ptr(0.2)), st("c-avail", "c", ptr(0.9)),
			st("d-down", "d", nil, down), st("e-down", "d", nil, down),
		}}
		d.Objectives = func() *slo.Set { return set }
	})
	u := &uiClient{h: h}
	page := func(t *testing.T, path string) string {
		resp := u.send(t, "GET", path, nil, nil)
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return b.String()
	}
	rows := regexp.MustCompile(`data-slo="([^"]+)"`)
	names := func(html string) string {
		var out []string
		for _, m := range rows.FindAllStringSubmatch(html, -1) {
			out = append(out, m[1])
		}
		return strings.Join(out, " ")
	}
	t.Run("worst budget first, the unmeasured on top", func(t *testing.T) {
		if got := names(page(t, "/")); got != "d-down e-down b-avail a-avail c-avail" {
			t.Fatalf("order %s", got)
		}
	})
	t.Run("a failed source is said once", func(t *testing.T) {
		html := page(t, "/")
		if n := strings.Count(html, "Prometheus at http://127.0.0.1:9: connection refused"); n != 1 {
			t.Fatalf("said %d times", n)
		}
	})
	t.Run("filtered by service", func(t *testing.T) {
		if got := names(page(t, "/?service=d")); got != "d-down e-down" {
			t.Fatalf("rows %s", got)
		}
	})
	t.Run("filtered by label", func(t *testing.T) {
		if got := names(page(t, "/?label=team%3Dshop")); got != "a-avail" {
			t.Fatalf("rows %s", got)
		}
		if got := names(page(t, "/?label=team")); got != "a-avail" {
			t.Fatalf("rows with the key %s", got)
		}
	})
}

// TestUIDeliveryPage: the four keys of GET /v1/dora on a page, with the
// change failures linking to their deploys; a bad window is said on the
// page.
func TestUIDeliveryPage(t *testing.T) {
	h := newHarness(t, func(d *Deps) { d.Tokens = nil })
	fin := func(d time.Duration) string { return fixedTime.Add(-d).Format(time.RFC3339) }
	for i, d := range []struct {
		version, status string
		start, end      time.Duration
	}{{"v1", "succeeded", 72 * time.Hour, 71 * time.Hour}, {"v2", "rolledBack", 48 * time.Hour, 47 * time.Hour}, {"v3", "succeeded", 24 * time.Hour, 23 * time.Hour}} {
		r := h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, header: map[string]string{"Idempotency-Key": fmt.Sprint("k", i)},
			body: fmt.Sprintf(`{"service":"checkout","environment":"production","version":%q,"startedAt":%q}`, d.version, fin(d.start))})
		dep := decodeAs[Deploy](t, r, http.StatusCreated)
		decodeAs[Deploy](t, h.do(t, call{method: "PATCH", path: "/v1/deploys/" + dep.ID, token: tokCI,
			body: fmt.Sprintf(`{"status":%q,"finishedAt":%q}`, d.status, fin(d.end))}), http.StatusOK)
	}
	u := &uiClient{h: h}
	resp := u.send(t, "GET", "/ui/dora?service=checkout&window=7d", nil, nil)
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, page)
	}
	for _, want := range []string{"Deployment frequency", "2 succeeded deploys", "Change failure rate", "33.3 %", "1 of 3 finished deploys", "rolledBack", `href="/ui/deploys?service=checkout#dep_`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	resp = u.send(t, "GET", "/ui/dora?window=forever", nil, nil)
	b, _ = io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "window: must be a duration") {
		t.Errorf("a bad window is not said on the page: %s", b)
	}
}
