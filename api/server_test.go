package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestRequestIDsAreEchoedAndOnEveryLogLine(t *testing.T) {
	h := newHarness(t)
	h.gate.answer = failing(fmt.Errorf("source exploded"))
	r := h.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production", token: tokRead,
		header: map[string]string{"X-Request-Id": "ci-run-77"}})
	if r.header.Get("X-Request-Id") != "ci-run-77" {
		t.Fatalf("X-Request-Id %q", r.header.Get("X-Request-Id"))
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("want an error line and an access line, got %v", lines)
	}
	for _, m := range lines {
		if m["request_id"] != "ci-run-77" {
			t.Fatalf("line without the request id: %v", m)
		}
	}
	access := lines[1]
	if access["msg"] != "request" || access["method"] != "GET" || access["route"] != "/v1/gate" ||
		access["status"] != 500.0 || access["principal"] != "reader" || access["duration"] == nil {
		t.Fatalf("access line %v", access)
	}
	if lines[0]["level"] != "ERROR" || !strings.Contains(fmt.Sprint(lines[0]["error"]), "source exploded") {
		t.Fatalf("error line %v", lines[0])
	}

	for _, bad := range []string{"", "has space", strings.Repeat("x", 200)} {
		r := h.do(t, call{method: "GET", path: "/healthz", header: map[string]string{"X-Request-Id": bad}})
		got := r.header.Get("X-Request-Id")
		if got == "" || got == bad {
			t.Fatalf("X-Request-Id %q for %q: want a fresh one", got, bad)
		}
	}
}

func TestUnknownRoutesAndMethodsAreProblems(t *testing.T) {
	h := newHarness(t)
	problem(t, h.do(t, call{method: "GET", path: "/v2/gate", token: tokRead}), http.StatusNotFound)
	p := problem(t, h.do(t, call{method: "PUT", path: "/v1/gate", token: tokRead, body: `{}`}), http.StatusMethodNotAllowed)
	if !strings.Contains(p.Detail, "PUT") {
		t.Fatalf("problem %+v does not name the method", p)
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	h := newHarness(t)
	h.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production", token: tokRead})
	h.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production"})
	h.do(t, call{method: "GET", path: "/nothing"})
	body := string(h.do(t, call{method: "GET", path: "/metrics"}).body)
	for _, want := range []string{
		`slogate_http_requests_total{code="200",method="GET",route="/v1/gate"} 1`,
		`slogate_http_requests_total{code="401",method="GET",route="/v1/gate"} 1`,
		`slogate_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`slogate_http_request_duration_seconds_count{method="GET",route="/v1/gate"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestTwoServersMayShareARegistry(t *testing.T) {
	h := newHarness(t)
	newHarness(t, func(d *Deps) { d.Metrics = h.metrics })
}

// TestEveryRouteIsInTheOpenAPIDocument holds the gin routes and the paths
// of openapi.yaml equal, both ways.
func TestEveryRouteIsInTheOpenAPIDocument(t *testing.T) {
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
		Comps   struct {
			Schemas map[string]any `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Fatalf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s has no responses", method, path)
			}
		}
	}
	var routed []string
	for _, r := range newEngine(Deps{Gate: &fakeGate{}, Store: newFakeStore(), SLOs: &fakeSLOs{}}).Routes() {
		segs := strings.Split(r.Path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") {
				segs[i] = "{" + s[1:] + "}"
			}
		}
		routed = append(routed, r.Method+" "+strings.Join(segs, "/"))
	}
	sort.Strings(documented)
	sort.Strings(routed)
	if !slices.Equal(documented, routed) {
		t.Fatalf("routes and openapi.yaml differ\n routed     %v\n documented %v", routed, documented)
	}
	for _, s := range []string{"Answer", "Check", "Deploy", "Override", "Status", "Problem"} {
		if doc.Comps.Schemas[s] == nil {
			t.Errorf("openapi.yaml has no schema %s", s)
		}
	}
	h := newHarness(t)
	if r := h.do(t, call{method: "GET", path: "/openapi.yaml"}); string(r.body) != string(openapiYAML) {
		t.Fatal("/openapi.yaml does not serve the document")
	}
}

func TestDepsAreRequired(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewServer without a gate did not panic")
		}
	}()
	NewServer(Deps{Store: newFakeStore(), SLOs: &fakeSLOs{}})
}
