package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate/slo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	tokRead   = "read-secret-0001"
	tokCI     = "ci-secret-0002"
	tokOncall = "oncall-secret-0003"
	tokAdmin  = "admin-secret-0004"
	tokFlag   = "flagger-secret-0005"
)

var testTokens = []Token{
	{Name: "reader", Value: tokRead, Scopes: []string{ScopeGateRead}},
	{Name: "ci", Value: tokCI, Scopes: []string{ScopeGateRead, ScopeDeploysWrite}},
	{Name: "oncall", Value: tokOncall, Scopes: []string{ScopeOverridesWrite}},
	{Name: "root", Value: tokAdmin, Scopes: []string{ScopeAdmin}},
	{Name: "flagger", Value: tokFlag, Scopes: []string{ScopeFlagger}},
}

// syncBuffer is a log sink shared by the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type harness struct {
	url     string
	gate    *fakeGate
	store   *fakeStore
	slos    *fakeSLOs
	logs    *syncBuffer
	metrics *prometheus.Registry
}

func newHarness(t testing.TB, mods ...func(*Deps)) *harness {
	t.Helper()
	h := &harness{
		gate: &fakeGate{}, store: newFakeStore(), slos: &fakeSLOs{statuses: []slo.Status{exampleStatus()}},
		logs: &syncBuffer{}, metrics: prometheus.NewRegistry(),
	}
	deps := Deps{
		Gate: h.gate, Store: h.store, SLOs: h.slos, Tokens: testTokens,
		Logger:  slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: h.metrics,
		Clock:   func() time.Time { return fixedTime },
	}
	for _, m := range mods {
		m(&deps)
	}
	srv := httptest.NewServer(NewServer(deps))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

type call struct {
	method, path, token, body string
	header                    map[string]string
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends c; a body is declared JSON unless c.header says otherwise.
func (h *harness) do(t testing.TB, c call) reply {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, h.url+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// problem checks that r is a problem+json answer of the status and returns it.
func problem(t testing.TB, r reply, status int) Problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p Problem
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Status != status || p.Type == "" || p.Title == "" {
		t.Fatalf("problem %+v: want status %d with a type and a title", p, status)
	}
	return p
}

func (p Problem) names(field string) bool {
	return slices.ContainsFunc(p.Errors, func(e FieldError) bool { return e.Field == field })
}

func decodeAs[T any](t testing.TB, r reply, status int) T {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return v
}

func TestProbesAreOpenAndReadinessFailsWithAProblem(t *testing.T) {
	h := newHarness(t)
	if r := h.do(t, call{method: "GET", path: "/healthz"}); r.status != 200 {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	if r := h.do(t, call{method: "GET", path: "/readyz"}); r.status != 200 {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	h.store.mu.Lock()
	h.store.pingErr = errors.New("dial tcp db.internal:5432: connection refused")
	h.store.mu.Unlock()
	p := problem(t, h.do(t, call{method: "GET", path: "/readyz"}), http.StatusServiceUnavailable)
	if !p.names("store") || strings.Contains(p.Detail+p.Errors[0].Message, "db.internal") {
		t.Fatalf("problem %+v: want the store named, its error left in the log", p)
	}
	if !strings.Contains(h.logs.String(), "db.internal") {
		t.Fatal("the store's error is not in the log")
	}

	notReady := newHarness(t, func(d *Deps) {
		d.Ready = func(context.Context) error { return errors.New("no SLO loaded yet") }
	})
	p = problem(t, notReady.do(t, call{method: "GET", path: "/readyz"}), http.StatusServiceUnavailable)
	if !p.names("ready") || !strings.Contains(p.Errors[0].Message, "no SLO loaded yet") {
		t.Fatalf("problem %+v: want the readiness error", p)
	}
}
