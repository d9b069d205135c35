package api

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// routeScopes gives, for every route of the engine, the scope it needs
// and a request body and a token lacking the scope; open and signed
// routes are listed with scope "". A route of the engine missing here
// fails TestEveryRouteIsListedWithItsScope: a new route must say how it is
// protected.
var routeScopes = map[string]struct {
	path, body string
	scope      string
	wrongScope string
}{
	"GET /healthz":               {path: "/healthz"},
	"GET /readyz":                {path: "/readyz"},
	"GET /metrics":               {path: "/metrics"},
	"GET /openapi.yaml":          {path: "/openapi.yaml"},
	"POST /v1/webhooks/github":   {path: "/v1/webhooks/github"}, // signed: TestGitHub*
	"GET /v1/slos":               {path: "/v1/slos", scope: ScopeGateRead, wrongScope: tokOncall},
	"GET /v1/slos/:name":         {path: "/v1/slos/checkout-availability", scope: ScopeGateRead, wrongScope: tokOncall},
	"POST /v1/deploys":           {path: "/v1/deploys", body: `{"service":"checkout","environment":"production","version":"v2"}`, scope: ScopeDeploysWrite, wrongScope: tokRead},
	"GET /v1/deploys":            {path: "/v1/deploys", scope: ScopeGateRead, wrongScope: tokOncall},
	"GET /v1/deploys/:id":        {path: "/v1/deploys/dep_001", scope: ScopeGateRead, wrongScope: tokOncall},
	"PATCH /v1/deploys/:id":      {path: "/v1/deploys/dep_001", body: `{"status":"succeeded"}`, scope: ScopeDeploysWrite, wrongScope: tokRead},
	"GET /v1/gate":               {path: "/v1/gate?service=checkout&environment=production", scope: ScopeGateRead, wrongScope: tokOncall},
	"POST /v1/gate":              {path: "/v1/gate", body: `{"service":"checkout","environment":"production"}`, scope: ScopeGateRead, wrongScope: tokOncall},
	"GET /v1/decisions/:id":      {path: "/v1/decisions/ev_1", scope: ScopeGateRead, wrongScope: tokOncall},
	"GET /v1/dora":               {path: "/v1/dora?service=checkout", scope: ScopeGateRead, wrongScope: tokOncall},
	"POST /v1/overrides":         {path: "/v1/overrides", body: `{"service":"checkout","environment":"production","reason":"r","expiresAt":"2026-11-21T13:00:00Z"}`, scope: ScopeOverridesWrite, wrongScope: tokCI},
	"DELETE /v1/overrides/:id":   {path: "/v1/overrides/ovr_1", scope: ScopeOverridesWrite, wrongScope: tokCI},
	"POST /v1/flagger/:hook":     {path: "/v1/flagger/confirm-promotion", body: `{"name":"checkout","namespace":"production"}`, scope: ScopeFlagger, wrongScope: tokRead},
	"GET /v1/slos/:name/history": {path: "/v1/slos/checkout-availability/history", scope: ScopeGateRead, wrongScope: tokOncall},
	// The web UI: a session cookie instead of a token (uiSessionRoutes,
	// TestEveryUIPageNeedsASession); its assets and login are open.
	"GET /ui/static/:file":          {path: "/ui/static/app.css"},
	"GET /ui/login":                 {path: "/ui/login"},
	"POST /ui/login":                {path: "/ui/login"},
	"GET /":                         {path: "/"},
	"GET /ui/slos/:name":            {path: "/ui/slos/checkout-availability"},
	"GET /ui/deploys":               {path: "/ui/deploys"},
	"GET /ui/dora":                  {path: "/ui/dora"},
	"GET /ui/decisions/:id":         {path: "/ui/decisions/ev_1"},
	"GET /ui/overrides":             {path: "/ui/overrides"},
	"POST /ui/logout":               {path: "/ui/logout"},
	"POST /ui/overrides":            {path: "/ui/overrides"},
	"POST /ui/overrides/:id/revoke": {path: "/ui/overrides/ovr_1/revoke"},
}

// uiSessionRoutes are the UI's routes that need a session, with the scope
// the session's token must hold.
var uiSessionRoutes = map[string]string{
	"GET /": ScopeGateRead, "GET /ui/slos/:name": ScopeGateRead, "GET /ui/deploys": ScopeGateRead, "GET /ui/dora": ScopeGateRead,
	"GET /ui/decisions/:id": ScopeGateRead, "GET /ui/overrides": ScopeGateRead, "POST /ui/logout": "",
	"POST /ui/overrides": ScopeOverridesWrite, "POST /ui/overrides/:id/revoke": ScopeOverridesWrite,
}

func TestEveryUIPageNeedsASession(t *testing.T) {
	h := newHarness(t)
	for key, scope := range uiSessionRoutes {
		method, path := strings.Fields(key)[0], routeScopes[key].path
		t.Run(key, func(t *testing.T) {
			u := &uiClient{h: h}
			resp := u.send(t, method, path, nil, nil)
			want := http.StatusSeeOther
			if method == http.MethodPost {
				want = http.StatusUnauthorized
			}
			if resp.StatusCode != want {
				t.Fatalf("without a session: %d, want %d", resp.StatusCode, want)
			}
			if scope == "" {
				return
			}
			u.login(t, tokFlag) // a token without gate:read or overrides:write
			if resp := u.send(t, method, path, nil, nil); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("a session lacking %s: %d, want 403", scope, resp.StatusCode)
			}
		})
	}
}

// TestEveryRouteIsListedWithItsScope walks the engine's routes: each is in
// routeScopes, and routeScopes names no route the engine lacks.
func TestEveryRouteIsListedWithItsScope(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range newEngine(Deps{Gate: &fakeGate{}, Store: newFakeStore(), SLOs: &fakeSLOs{}}).Routes() {
		key := r.Method + " " + r.Path
		seen[key] = true
		if _, ok := routeScopes[key]; !ok {
			t.Errorf("route %s is not in routeScopes: say which scope protects it (and test it)", key)
		}
	}
	for key := range routeScopes {
		if !seen[key] {
			t.Errorf("routeScopes lists %s, which the engine does not serve", key)
		}
	}
}

func TestEveryAPIRouteNeedsATokenWithItsScope(t *testing.T) {
	h := newHarness(t)
	for key, r := range routeScopes {
		if r.scope == "" {
			continue
		}
		r := struct{ method, path, body, scope, wrongScope string }{strings.Fields(key)[0], r.path, r.body, r.scope, r.wrongScope}
		t.Run(key, func(t *testing.T) {
			t.Run("without a token it is a 401 with a Bearer challenge", func(t *testing.T) {
				rep := h.do(t, call{method: r.method, path: r.path, body: r.body})
				problem(t, rep, http.StatusUnauthorized)
				if !strings.HasPrefix(rep.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("WWW-Authenticate %q", rep.header.Get("WWW-Authenticate"))
				}
			})
			t.Run("with an unknown token it is a 401", func(t *testing.T) {
				rep := h.do(t, call{method: r.method, path: r.path, body: r.body, token: tokAdmin + "x"})
				problem(t, rep, http.StatusUnauthorized)
				if !strings.Contains(rep.header.Get("WWW-Authenticate"), "invalid_token") {
					t.Fatalf("WWW-Authenticate %q", rep.header.Get("WWW-Authenticate"))
				}
			})
			t.Run("with another scheme it is a 401", func(t *testing.T) {
				rep := h.do(t, call{method: r.method, path: r.path, body: r.body,
					header: map[string]string{"Authorization": "Token " + tokAdmin}})
				problem(t, rep, http.StatusUnauthorized)
			})
			t.Run("with a token lacking the scope it is a 403", func(t *testing.T) {
				rep := h.do(t, call{method: r.method, path: r.path, body: r.body, token: r.wrongScope})
				p := problem(t, rep, http.StatusForbidden)
				if !strings.Contains(p.Detail, r.scope) {
					t.Fatalf("detail %q does not name the scope %s", p.Detail, r.scope)
				}
			})
			t.Run("with an admin token it passes", func(t *testing.T) {
				rep := h.do(t, call{method: r.method, path: r.path, body: r.body, token: tokAdmin})
				if rep.status == http.StatusUnauthorized || rep.status == http.StatusForbidden {
					t.Fatalf("admin got %d: %s", rep.status, rep.body)
				}
			})
		})
	}
	logs := h.logs.String()
	for _, tok := range testTokens {
		if strings.Contains(logs, tok.Value) {
			t.Fatalf("the log holds the token of %s", tok.Name)
		}
	}
}

func TestOpenRoutesNeedNoToken(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml"} {
		if r := h.do(t, call{method: "GET", path: path}); r.status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}
}

func TestWithoutTokensEveryRequestIsAllowedAsAnonymous(t *testing.T) {
	h := newHarness(t, func(d *Deps) { d.Tokens = nil })
	if r := h.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production"}); r.status != http.StatusOK {
		t.Fatalf("gate: %d %s", r.status, r.body)
	}
	o := decodeAs[Override](t, h.do(t, call{method: "POST", path: "/v1/overrides",
		body: `{"service":"checkout","environment":"production","reason":"incident 42","expiresAt":"2026-11-21T14:00:00Z"}`}), http.StatusCreated)
	if o.CreatedBy != "anonymous" {
		t.Fatalf("createdBy %q, want anonymous", o.CreatedBy)
	}
}

func TestTokensAreFoundWhateverTheirPosition(t *testing.T) {
	a := newAuth(testTokens)
	for _, tok := range testTokens {
		got, ok := a.lookup(tok.Value)
		if !ok || got.name != tok.Name {
			t.Errorf("lookup(%s) = %q, %v", tok.Name, got.name, ok)
		}
	}
	for _, bad := range []string{"", "read-secret-000", "read-secret-00011", strings.Repeat("x", 4096)} {
		if _, ok := a.lookup(bad); ok {
			t.Errorf("lookup(%q) matched", bad)
		}
	}
}

func TestFlaggerMayPassTheTokenAsBasicCredentials(t *testing.T) {
	h := newHarness(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("flagger:"+tokFlag))
	r := h.do(t, call{method: "POST", path: "/v1/flagger/confirm-promotion",
		body: `{"name":"checkout","namespace":"production"}`, header: map[string]string{"Authorization": basic}})
	if r.status != http.StatusOK {
		t.Fatalf("flagger with basic credentials: %d %s", r.status, r.body)
	}
	// Other routes take bearer tokens only.
	r = h.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production",
		header: map[string]string{"Authorization": basic}})
	problem(t, r, http.StatusUnauthorized)
	// The flagger scope serves the Flagger hooks and nothing else.
	for _, c := range []call{
		{method: "GET", path: "/v1/gate?service=checkout&environment=production", token: tokFlag},
		{method: "POST", path: "/v1/deploys", token: tokFlag, body: `{"service":"checkout","environment":"production","version":"v2"}`},
		{method: "GET", path: "/v1/deploys", token: tokFlag},
	} {
		problem(t, h.do(t, c), http.StatusForbidden)
	}
}
