package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
)

// accessLines counts the access log lines at a level for a route.
func accessLines(logs, level, route string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Msg, Level, Route string
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && l.Level == level && l.Route == route {
			n++
		}
	}
	return n
}

func cachedAnswers(d *Deps) {
	g := d.Gate.(*fakeGate)
	g.answer = func(req gate.Request) (gate.Answer, error) {
		a, err := decided(slogate.Promote, "all 1 checks pass")(req)
		a.Cached = true
		return a, err
	}
}

func TestProbesAndCachedAnswersAreLoggedAtDebugWhileErrorsAndUncachedAnswersAreLogged(t *testing.T) {
	h := newHarness(t, cachedAnswers, func(d *Deps) { d.AccessLog.SampleEvery = 1000 })
	const n = 20
	for range n {
		h.do(t, call{method: "GET", path: "/healthz"})
		h.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production", token: tokRead})
	}
	h.do(t, call{method: "GET", path: "/v1/deploys/dep_404", token: tokRead})
	logs := h.logs.String()
	for _, route := range []string{"/healthz", "/v1/gate"} {
		if info, debug := accessLines(logs, "INFO", route), accessLines(logs, "DEBUG", route); info != 0 || debug != n {
			t.Errorf("%s: %d lines at info and %d at debug, want 0 and %d", route, info, debug, n)
		}
	}
	if n := accessLines(logs, "INFO", "/v1/deploys/:id"); n != 1 {
		t.Errorf("a 404: %d lines at info, want 1", n)
	}

	fresh := newHarness(t) // answers not cached
	fresh.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production", token: tokRead})
	if n := accessLines(fresh.logs.String(), "INFO", "/v1/gate"); n != 1 {
		t.Errorf("an uncached answer: %d lines at info, want 1", n)
	}
}

func TestOneSampledRequestInSampleEveryIsLoggedAtInfo(t *testing.T) {
	h := newHarness(t, func(d *Deps) { d.AccessLog.SampleEvery = 5 })
	for range 20 {
		h.do(t, call{method: "GET", path: "/healthz"})
	}
	if n := accessLines(h.logs.String(), "INFO", "/healthz"); n != 4 {
		t.Errorf("%d probe lines at info, want 4 (1 in 5 of 20)", n)
	}
}

func TestAccessLogAllLogsEveryRequest(t *testing.T) {
	h := newHarness(t, cachedAnswers, func(d *Deps) { d.AccessLog.All = true })
	for range 5 {
		h.do(t, call{method: "GET", path: "/healthz"})
	}
	if n := accessLines(h.logs.String(), "INFO", "/healthz"); n != 5 {
		t.Errorf("%d probe lines at info, want 5", n)
	}
}

func TestACachedAnswerIsTheSameBytesAsItsEncoding(t *testing.T) {
	h := newHarness(t, cachedAnswers)
	var bodies [][]byte
	for range 3 {
		r := h.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production", token: tokRead})
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("%d %s", r.status, r.header)
		}
		bodies = append(bodies, r.body)
	}
	a, _ := decided(slogate.Promote, "all 1 checks pass")(gate.Request{Service: "checkout", Environment: "production"})
	a.Cached = true
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(a)
	for i, b := range bodies {
		if !bytes.Equal(b, want.Bytes()) {
			t.Errorf("answer %d:\n%s\nwant\n%s", i, b, want.Bytes())
		}
	}
}
