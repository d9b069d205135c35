package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/slogate/slogate/internal/testenv"
)

// Tokens of the UI's end-to-end server.
const (
	uiReadToken   = "ui-reader-token-0123456789"
	uiOncallToken = "ui-oncall-token-0123456789"
	uiCIToken     = "ui-ci-token-0123456789abc"
)

// uiWorld is slogate serving the demo world (the SLOs and policies of
// slogate demo) over a real Prometheus holding its traffic: a day of v1
// for every service at its History error ratio, and for the last 20
// minutes checkout v2 (healthy) and search v2 (burning) on their canary
// share. Both deploys are recorded and the gate asked once for each.
type uiWorld struct {
	url       string
	deployed  time.Time
	decisions map[string]string // service -> evaluation id
	logs      *lockedWriter
}

func startUIWorld(t *testing.T, slos string, extraTraffic func(om *testenv.OpenMetrics, start, now time.Time)) *uiWorld {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-24 * time.Hour)
	deployed := now.Add(-20 * time.Minute)
	var om testenv.OpenMetrics
	traffic := func(service, version string, phases ...testenv.Phase) {
		om.Counter("http_requests", testenv.Requests("http_requests",
			map[string]string{"service": service, "version": version}, start, time.Minute, phases...)...)
	}
	for _, s := range demoServices {
		if !s.Rollouts {
			traffic(s.Name, "v1", testenv.Phase{Until: now, Rate: s.Rate, ErrorRatio: s.History})
			continue
		}
		canary := demoHealthy
		if s.Burning(2) {
			canary = demoBurning
		}
		traffic(s.Name, "v1", testenv.Phase{Until: deployed, Rate: s.Rate, ErrorRatio: s.History},
			testenv.Phase{Until: now, Rate: s.Rate * (1 - s.CanaryShare), ErrorRatio: s.BaseErrors})
		traffic(s.Name, "v2", testenv.Phase{Until: deployed, Rate: 0}, testenv.Phase{Until: now, Rate: s.Rate * s.CanaryShare, ErrorRatio: canary})
	}
	if extraTraffic != nil {
		extraTraffic(&om, start, now)
	}
	prom := testenv.StartPrometheus(t, om.String())

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slos", "demo.yaml"), slos)
	port := testenv.FreePort(t)
	writeFile(t, filepath.Join(dir, "slogate.yaml"), fmt.Sprintf(`
listen: 127.0.0.1:%d
slos: [%s]
store: sqlite:%s
sources:
  prometheus: {url: "%s", timeout: 10s}
evaluation: {schedule: "@every 1h", concurrency: 16}
gate: {cacheTTL: 0s}
auth:
  tokens:
    - {name: ci, value: %s, scopes: [gate:read, deploys:write]}
    - {name: reader, value: %s, scopes: [gate:read]}
    - {name: oncall, value: %s, scopes: [gate:read, overrides:write]}
`, port, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), prom.URL, uiCIToken, uiReadToken, uiOncallToken))

	ctx, cancel := context.WithCancel(context.Background())
	w := &uiWorld{url: fmt.Sprintf("http://127.0.0.1:%d", port), deployed: deployed, decisions: map[string]string{}, logs: &lockedWriter{w: &bytes.Buffer{}}}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", filepath.Join(dir, "slogate.yaml")}, func(string) string { return "" }, io.Discard, w.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop within 40s of its context ending")
		}
		if t.Failed() {
			t.Logf("slogate logs:\n%s", w.logs.String())
		}
	})
	waitHealthy(t, w.url, done, time.Minute)
	return w
}

func waitHealthy(t testing.TB, base string, died <-chan error, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		// The first scheduled evaluation has run when /v1/slos has figures.
		resp, err := apiGet(base+"/v1/slos", uiReadToken)
		if err == nil {
			var l struct {
				Items []struct {
					EvaluatedAt time.Time `json:"evaluatedAt"`
				} `json:"items"`
			}
			ok := json.NewDecoder(resp.Body).Decode(&l) == nil && len(l.Items) > 0 && !l.Items[0].EvaluatedAt.IsZero()
			resp.Body.Close()
			if ok {
				return
			}
		}
		select {
		case err := <-died:
			t.Fatalf("serve stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("slogate was not serving figures within %s", within)
}

func apiGet(u, token string) (*http.Response, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return http.DefaultClient.Do(req)
}

func apiJSON(t testing.TB, method, u, token string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, r)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %d: %v", method, u, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// rollOut records the demo world's two deploys and asks the gate once
// about each.
func (w *uiWorld) rollOut(t *testing.T) {
	t.Helper()
	for _, s := range demoServices {
		if !s.Rollouts {
			continue
		}
		var dep struct{ ID string }
		if code := apiJSON(t, http.MethodPost, w.url+"/v1/deploys", uiCIToken, map[string]any{
			"service": s.Name, "environment": "production", "version": "v2", "previousVersion": "v1", "strategy": "canary",
			"startedAt": w.deployed.Format(time.RFC3339), "pipelineUrl": "https://ci.example.com/" + s.Name + "/v2",
		}, &dep); code != http.StatusCreated {
			t.Fatalf("deploy %s: %d", s.Name, code)
		}
		var a struct{ Decision, EvaluationID string }
		q := url.Values{"service": {s.Name}, "environment": {"production"}, "deployId": {dep.ID}}
		if code := apiJSON(t, http.MethodGet, w.url+"/v1/gate?"+q.Encode(), uiCIToken, nil, &a); code != http.StatusOK {
			t.Fatalf("gate %s: %d", s.Name, code)
		}
		want := "promote"
		if s.Burning(2) {
			want = "halt"
		}
		if a.Decision != want {
			t.Fatalf("gate %s v2: %s, want %s", s.Name, a.Decision, want)
		}
		w.decisions[s.Name] = a.EvaluationID
		if want == "halt" {
			apiJSON(t, http.MethodPatch, w.url+"/v1/deploys/"+dep.ID, uiCIToken, map[string]any{"status": "rolledBack"}, nil)
		}
	}
}

// browser is a headless Debian chromium driven over the DevTools
// protocol, which records console errors, exceptions, requests that
// leave loopback and the bytes of every script and style sheet.
type browser struct {
	ctx context.Context

	mu       sync.Mutex
	problems []string
	outside  []string
	mime     map[network.RequestID]string
	bytes    map[string]float64 // by kind: js, css
}

func startBrowser(t testing.TB) *browser {
	t.Helper()
	exe := "/usr/bin/chromium"
	if _, err := os.Stat(exe); err != nil {
		testenv.Unavailable(t, "no %s (Debian package chromium)", exe)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{mime: map[network.RequestID]string{}, bytes: map[string]float64{}}
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(b.observe))
	b.ctx = ctx
	// The first Run starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
		return err
	})); err != nil {
		cancelCtx()
		cancelAlloc()
		testenv.Unavailable(t, "starting %s: %v", exe, err)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return b
}

func (b *browser) observe(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		b.problems = append(b.problems, "exception: "+ev.ExceptionDetails.Text+" "+exceptionText(ev.ExceptionDetails))
	case *network.EventRequestWillBeSent:
		u, err := url.Parse(ev.Request.URL)
		if err != nil || (u.Scheme != "data" && u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") {
			b.outside = append(b.outside, ev.Request.URL)
		}
	case *network.EventResponseReceived:
		b.mime[ev.RequestID] = ev.Response.MimeType
		// The tests ask for a 401 (a wrong token) and a 403 (a read-only
		// token's form) on purpose.
		expected := (ev.Response.Status == http.StatusUnauthorized && strings.HasSuffix(ev.Response.URL, "/ui/login")) ||
			(ev.Response.Status == http.StatusForbidden && strings.HasSuffix(ev.Response.URL, "/ui/overrides"))
		if ev.Response.Status >= 400 && !expected {
			b.problems = append(b.problems, fmt.Sprintf("HTTP %d for %s", ev.Response.Status, ev.Response.URL))
		}
	case *network.EventLoadingFinished:
		switch b.mime[ev.RequestID] {
		case "text/javascript", "application/javascript":
			b.bytes["js"] += ev.EncodedDataLength
		case "text/css":
			b.bytes["css"] += ev.EncodedDataLength
		}
	case *network.EventLoadingFailed:
		if !ev.Canceled {
			b.problems = append(b.problems, "loading failed: "+ev.ErrorText)
		}
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

func (b *browser) run(t testing.TB, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// value runs one action of the browser and returns its value.
func value[T any](t testing.TB, b *browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

func clearCookies() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{})
		return err
	})
}

func (b *browser) cookies(t testing.TB) []*network.Cookie {
	t.Helper()
	var out []*network.Cookie
	b.run(t, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		r, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
		out = r.Cookies
		return err
	}))
	return out
}

// login logs in with the token and waits for the page it leads to: with
// a good token one with the log-out form, else the login's error.
func (b *browser) login(t testing.TB, base, token string, good bool) {
	t.Helper()
	landed := `header .who form`
	if !good {
		landed = `#login-error`
	}
	b.run(t, clearCookies(),
		chromedp.Navigate(base+"/ui/login"),
		chromedp.WaitVisible(css(`#login input[name=token]`)),
		chromedp.SendKeys(css(`#login input[name=token]`), token),
		chromedp.Submit(css(`#login`)),
		chromedp.WaitVisible(css(landed)),
	)
}

func (b *browser) screenshot(t testing.TB, name string) {
	t.Helper()
	if !*update {
		return
	}
	png := value(t, b, chromedp.FullScreenshot(100))
	path := filepath.Join("..", "..", "docs", "img", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWebUIInABrowser(t *testing.T) {
	br := startBrowser(t)
	w := startUIWorld(t, demoSLOFile(), nil)
	w.rollOut(t)
	text := func(t *testing.T, sel string) string { return value(t, br, chromedp.Text(css(sel))) }
	eval := func(t *testing.T, js string) any {
		return value(t, br, chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise))
	}
	location := func(t *testing.T) string { return value(t, br, chromedp.Location()) }

	t.Run("a wrong token is refused", func(t *testing.T) {
		br.login(t, w.url, "not-a-token-of-this-server", false)
		if msg, loc := text(t, "#login-error"), location(t); msg != "the token is not valid" || !strings.HasSuffix(loc, "/ui/login") {
			t.Fatalf("after a wrong token: %q at %s", msg, loc)
		}
		if c := br.cookies(t); len(c) != 0 {
			t.Fatalf("a wrong token got cookies %v", c)
		}
	})

	t.Run("a page without a session leads to the login", func(t *testing.T) {
		br.run(t, clearCookies(), chromedp.Navigate(w.url+"/ui/deploys"), chromedp.WaitVisible(css(`#login`)))
		if loc := location(t); !strings.Contains(loc, "/ui/login?next=%2Fui%2Fdeploys") {
			t.Fatalf("at %s", loc)
		}
	})

	t.Run("a token logs in into a Secure HttpOnly SameSite=Strict cookie that does not hold it", func(t *testing.T) {
		br.login(t, w.url, uiReadToken, true)
		cookies := br.cookies(t)
		if len(cookies) != 1 {
			t.Fatalf("cookies %v, want the session", cookies)
		}
		c := cookies[0]
		if c.Name != "slogate_session" || !c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
			t.Fatalf("cookie %s secure=%v httpOnly=%v sameSite=%s", c.Name, c.Secure, c.HTTPOnly, c.SameSite)
		}
		if strings.Contains(c.Value, uiReadToken) {
			t.Fatal("the cookie holds the token")
		}
		if js := eval(t, `document.cookie`); js != "" {
			t.Fatalf("scripts read the cookie: %q", js)
		}
	})

	t.Run("the SLO list is in budget order with the figures of the API", func(t *testing.T) {
		var api struct {
			Items []struct {
				Name        string
				ErrorBudget struct{ Remaining *float64 } `json:"errorBudget"`
				SLI         struct{ Ratio *float64 }
			}
		}
		apiJSON(t, http.MethodGet, w.url+"/v1/slos", uiReadToken, nil, &api)
		sort.Slice(api.Items, func(i, j int) bool { return *api.Items[i].ErrorBudget.Remaining < *api.Items[j].ErrorBudget.Remaining })
		br.run(t, chromedp.Navigate(w.url+"/"), chromedp.WaitVisible(css(`#slo-list`)))
		rows := value(t, br, chromedp.Evaluate[[]map[string]string](`[...document.querySelectorAll('#slo-list tbody tr')].map(r => ({name: r.dataset.slo, left: r.querySelector('.remaining').textContent, sli: r.cells[2].textContent, state: r.querySelector('.state').textContent}))`))
		if len(rows) != len(api.Items) || len(rows) != len(demoServices) {
			t.Fatalf("rows %v, API %d SLOs", rows, len(api.Items))
		}
		for i, r := range rows {
			a := api.Items[i]
			want := fmt.Sprintf("%.1f %%", *a.ErrorBudget.Remaining*100)
			if r["name"] != a.Name || r["left"] != want || r["sli"] != fmt.Sprintf("%.3f %%", *a.SLI.Ratio*100) || r["state"] != "ok" {
				t.Errorf("row %d: %v, want %s with %s left", i, r, a.Name, want)
			}
		}
		br.screenshot(t, "slos.png")
	})

	var haltHref string
	t.Run("an SLO chart has a deploy region and a halt marker", func(t *testing.T) {
		br.run(t, chromedp.Navigate(w.url+"/ui/slos/search-availability"), chromedp.WaitVisible(css(`#charts[data-ready=true]`)))
		regions := eval(t, `document.querySelectorAll('#chart-budget .deploy-region').length`)
		halts := eval(t, `document.querySelectorAll('#chart-budget a.marker.halt').length`)
		if regions != 1.0 || halts != 1.0 {
			t.Fatalf("%v deploy regions and %v halt markers, want 1 and 1", regions, halts)
		}
		haltHref = value(t, br, chromedp.AttributeValue(css(`#chart-budget a.marker.halt`), "href")).Value
		if haltHref != "/ui/decisions/"+w.decisions["search"] {
			t.Fatalf("the halt marker links to %s, want the decision %s", haltHref, w.decisions["search"])
		}
		br.screenshot(t, "slo.png")
	})

	t.Run("the halt marker leads to the decision with the failing check's figures", func(t *testing.T) {
		var api struct {
			Checks []struct {
				Kind, Verdict string
				BurnRate      *float64
			}
		}
		apiJSON(t, http.MethodGet, w.url+"/v1/decisions/"+w.decisions["search"], uiReadToken, nil, &api)
		var burnRate *float64
		for _, c := range api.Checks {
			if c.Kind == "verification" && c.Verdict == "fail" {
				burnRate = c.BurnRate
			}
		}
		if burnRate == nil {
			t.Fatalf("the decision has no failing verification: %+v", api)
		}
		br.run(t, chromedp.Click(css(`#chart-budget a.marker.halt`)), chromedp.WaitVisible(css(`#decision`)))
		loc, decision := location(t), text(t, "#decision")
		burn := text(t, `.check[data-kind=verification][data-verdict=fail] .fig-burn`)
		if !strings.HasSuffix(loc, haltHref) || strings.ToLower(decision) != "halt" || burn != fmt.Sprintf("%.2fx", *burnRate) {
			t.Fatalf("at %s: decision %q, burn %q, want halt and %.2fx", loc, decision, burn, *burnRate)
		}
		br.screenshot(t, "decision.png")
	})

	t.Run("the deploys page has both deploys and their answers", func(t *testing.T) {
		br.run(t, chromedp.Navigate(w.url+"/ui/deploys"), chromedp.WaitVisible(css(`.timeline`)))
		answers := value(t, br, chromedp.Evaluate[[]string](`[...document.querySelectorAll('.timeline')].map(s => s.dataset.service + ':' + [...s.querySelectorAll('a.answer')].map(a => a.textContent).join(','))`))
		if strings.Join(answers, " ") != "checkout:promote search:halt" {
			t.Fatalf("answers %v", answers)
		}
		br.screenshot(t, "deploys.png")
	})

	t.Run("a read-only token cannot create or revoke an override", func(t *testing.T) {
		br.run(t, chromedp.Navigate(w.url+"/ui/overrides"), chromedp.WaitVisible(css(`#active-overrides`)))
		readOnly := eval(t, `document.querySelectorAll('#read-only').length`)
		forms := eval(t, `document.querySelectorAll('#create-override, button.revoke').length`)
		// The form posted by hand, with the session's CSRF token.
		status := eval(t, `fetch('/ui/overrides', {method: 'POST', body: new URLSearchParams({csrf: document.querySelector('input[name=csrf]').value, service: 'search', environment: 'production', reason: 'x', expiresIn: '1h'})}).then(r => r.status)`)
		if readOnly != 1.0 || forms != 0.0 || status != float64(http.StatusForbidden) {
			t.Fatalf("read-only note %v, forms %v, POST %v (want 1, 0, 403)", readOnly, forms, status)
		}
	})

	t.Run("an oncall token creates and revokes an override", func(t *testing.T) {
		br.login(t, w.url, uiOncallToken, true)
		reason := "search v2 rollback verified by hand"
		br.run(t, chromedp.Navigate(w.url+"/ui/overrides"), chromedp.WaitVisible(css(`#create-override`)),
			chromedp.SetValue(css(`#create-override select[name=service]`), "search"),
			chromedp.SendKeys(css(`#create-override input[name=reason]`), reason),
			chromedp.Submit(css(`#create-override`)),
			chromedp.WaitVisible(css(`#active-overrides tr[data-override]`)))
		if active := text(t, "#active-overrides"); !strings.Contains(active, reason) || !strings.Contains(active, "oncall") {
			t.Fatalf("in force: %q", active)
		}
		br.screenshot(t, "overrides.png")
		br.run(t, chromedp.Click(css(`#active-overrides button.revoke`)), chromedp.WaitVisible(css(`#past-overrides tr[data-override]`)))
		past, active := text(t, "#past-overrides"), text(t, "#active-overrides")
		if !strings.Contains(past, reason) || !strings.Contains(past, "revoked") || strings.Contains(active, reason) {
			t.Fatalf("after revoking: in force %q, past %q", active, past)
		}
	})

	t.Run("a form from another origin is refused", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, w.url+"/ui/overrides", strings.NewReader("service=search"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	t.Run("no console errors and no request left loopback", func(t *testing.T) {
		br.mu.Lock()
		defer br.mu.Unlock()
		if len(br.problems) > 0 {
			t.Errorf("the pages had problems:\n%s", strings.Join(br.problems, "\n"))
		}
		if len(br.outside) > 0 {
			t.Errorf("requests left loopback: %v", br.outside)
		}
		t.Logf("page weights: %.0f bytes of JS, %.0f bytes of CSS over every page of this test", br.bytes["js"], br.bytes["css"])
	})
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }
