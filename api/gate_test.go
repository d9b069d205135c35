package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/store"
)

func TestTheGateAnswers200WhateverTheDecision(t *testing.T) {
	for _, d := range []slogate.Decision{slogate.Promote, slogate.Halt, slogate.Wait} {
		t.Run(string(d)+" is a 200", func(t *testing.T) {
			h := newHarness(t)
			h.gate.answer = decided(d, "because")
			get := h.do(t, call{method: "GET", token: tokRead,
				path: "/v1/gate?service=checkout&environment=production&version=v2&deployId=dep_1&baselineVersion=v1"})
			a := decodeAs[gate.Answer](t, get, http.StatusOK)
			if a.Decision != d {
				t.Fatalf("decision %q, want %q", a.Decision, d)
			}
			want := gate.Request{Service: "checkout", Environment: "production", Version: "v2", DeployID: "dep_1", BaselineVersion: "v1"}
			if got := h.gate.lastAsked(); !reflect.DeepEqual(got, want) {
				t.Fatalf("asked %+v, want %+v", got, want)
			}
			if get.header.Get("Cache-Control") != "no-store" {
				t.Fatal("a gate answer may be cached by the client")
			}
			post := h.do(t, call{method: "POST", path: "/v1/gate", token: tokRead,
				body: `{"service":"checkout","environment":"production","version":"v2","deployId":"dep_1","baselineVersion":"v1"}`})
			if string(post.body) != string(get.body) || post.status != http.StatusOK {
				t.Fatalf("POST answered %d %s, GET %s", post.status, post.body, get.body)
			}
			if got := h.gate.lastAsked(); !reflect.DeepEqual(got, want) {
				t.Fatalf("POST asked %+v", got)
			}
		})
	}
}

func TestTheGateAnswersProblemsWhenItCannotEvaluate(t *testing.T) {
	tests := map[string]struct {
		answer func(gate.Request) (gate.Answer, error)
		query  string
		status int
		field  string
	}{
		"a missing service is a 400 naming service": {
			query: "environment=production", status: 400, field: "service"},
		"a missing environment is a 400 naming environment": {
			query: "service=checkout", status: 400, field: "environment"},
		"an unknown service is a 404 naming service": {
			answer: failing(fmt.Errorf("gate x/y: %w", gate.ErrUnknownService)), status: 404, field: "service"},
		"an unknown deploy is a 404 naming deployId": {
			answer: failing(fmt.Errorf("deploy dep_9: %w", gate.ErrUnknownDeploy)), query: "service=checkout&environment=production&deployId=dep_9",
			status: 404, field: "deployId"},
		"a deploy unknown to the store is a 404 naming deployId": {
			answer: failing(fmt.Errorf("deploy dep_9: %w", store.ErrNotFound)), query: "service=checkout&environment=production&deployId=dep_9",
			status: 404, field: "deployId"},
		"a deploy of another service is a 400 naming deployId": {
			answer: failing(fmt.Errorf("%w: deploy dep_9 is of cart/production", gate.ErrInvalid)), query: "service=checkout&environment=production&deployId=dep_9",
			status: 400, field: "deployId"},
		"a caller that went away gets a 503, not a logged fault": {
			answer: failing(fmt.Errorf("gate: %w", context.Canceled)), status: 503},
		"a store failure is a 500, never an answer": {
			answer: failing(errors.New("recording answer: database is locked")), status: 500},
		"an answer without a decision is a 500, never a promote": {
			answer: func(gate.Request) (gate.Answer, error) { return gate.Answer{Reason: "?"}, nil }, status: 500},
		"a panic in the gate is a 500": {
			answer: func(gate.Request) (gate.Answer, error) { panic("boom") }, status: 500},
		"an at that is not RFC 3339 is a 400 naming at": {
			query: "service=checkout&environment=production&at=yesterday", status: 400, field: "at"},
		"a source fault is a 503 with its checks, never a decision": {
			answer: failing(&gate.SourceFaultError{Answer: gate.Answer{Decision: slogate.Fault, EvaluationID: "ev_1",
				Reason: "checkout-availability: error budget not measured (period): connection refused",
				Checks: []gate.Check{{Kind: gate.KindBudget, SLO: "checkout-availability", Verdict: gate.Errored, SourceError: true}}}}),
			status: 503},
		"a gate at its limit of uncached evaluations is a 503 with Retry-After": {
			answer: failing(fmt.Errorf("gate checkout/production: %w", &gate.BusyError{Limit: 16, Waited: time.Second / 4, RetryAfter: 2 * time.Second})),
			status: 503},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.gate.answer = tc.answer
			q := tc.query
			if q == "" {
				q = "service=checkout&environment=production"
			}
			r := h.do(t, call{method: "GET", path: "/v1/gate?" + q, token: tokRead})
			p := problem(t, r, tc.status)
			if tc.field != "" && !p.names(tc.field) {
				t.Fatalf("problem %+v does not name %s", p, tc.field)
			}
			if bytes.Contains(r.body, []byte("promote")) {
				t.Fatalf("a problem mentions promote: %s", r.body)
			}
			if tc.status == 503 && tc.answer != nil && strings.Contains(name, "source fault") {
				if p.Verdict == nil || p.Verdict.Decision != slogate.Fault || len(p.Checks) != 1 || !p.Checks[0].SourceError || p.EvaluationID != "ev_1" {
					t.Fatalf("the 503 lacks the evaluation behind it: %s", r.body)
				}
				if r.header.Get("Retry-After") == "" {
					t.Fatal("the 503 says nothing of when to retry")
				}
			}
			if strings.Contains(name, "limit of uncached") {
				if r.header.Get("Retry-After") != "2" || p.Type != typeBusy || !strings.Contains(p.Detail, "maxConcurrentEvaluations") {
					t.Fatalf("Retry-After %q, problem %+v", r.header.Get("Retry-After"), p)
				}
			}
			if tc.status == 500 {
				if strings.Contains(p.Detail, "database is locked") || strings.Contains(p.Detail, "boom") {
					t.Fatalf("the detail %q leaks the cause", p.Detail)
				}
				if !strings.Contains(h.logs.String(), `"level":"ERROR"`) {
					t.Fatal("the fault is not logged")
				}
			}
		})
	}
}

func failing(err error) func(gate.Request) (gate.Answer, error) {
	return func(gate.Request) (gate.Answer, error) { return gate.Answer{}, err }
}

func TestBadGateBodiesAreRefused(t *testing.T) {
	h := newHarness(t)
	for name, tc := range map[string]struct {
		body   string
		ct     string
		status int
		field  string
	}{
		"an unknown field is a 400 naming it":    {`{"service":"checkout","environment":"production","team":"x"}`, "", 400, "team"},
		"a deployId that is a number is a 400":   {`{"service":"checkout","environment":"production","deployId":7}`, "", 400, "deployId"},
		"an empty body is a 400 naming the body": {` `, "", 400, "body"},
		"a form is a 415":                        {`service=checkout`, "application/x-www-form-urlencoded", 415, "Content-Type"},
		"application/merge-patch+json is JSON":   {`{"service":"checkout"}`, "application/merge-patch+json", 400, "environment"},
	} {
		t.Run(name, func(t *testing.T) {
			var hdr map[string]string
			if tc.ct != "" {
				hdr = map[string]string{"Content-Type": tc.ct}
			}
			p := problem(t, h.do(t, call{method: "POST", path: "/v1/gate", token: tokRead, body: tc.body, header: hdr}), tc.status)
			if !p.names(tc.field) {
				t.Fatalf("problem %+v does not name %s", p, tc.field)
			}
		})
	}
}

// TestTheAnswerKeepsItsShape compares the answer with the golden file
// (go test ./api/ -update rewrites it).
func TestTheAnswerKeepsItsShape(t *testing.T) {
	h := newHarness(t)
	h.gate.answer = func(gate.Request) (gate.Answer, error) { return fixedAnswer(), nil }
	r := h.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production&version=v2", token: tokRead})
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, r.body, "", "  "); err != nil {
		t.Fatal(err)
	}
	golden(t, "answer.golden.json", pretty.Bytes())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./api/ -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the answer (go test ./api/ -update rewrites it):\n got %s\nwant %s", path, got, want)
	}
}

// TestArgoRolloutsWebMetric replays what Argo Rollouts' web provider sends
// for an AnalysisTemplate such as
//
//	provider:
//	  web:
//	    url: "http://slogate/v1/gate?service={{args.service}}&environment={{args.env}}&version={{args.version}}"
//	    headers:
//	      - {key: Authorization, value: "Bearer {{args.token}}"}
//	      - {key: Content-Type, value: application/json}
//	    jsonPath: "{$.decision}"
//	successCondition: result == "promote"
//	failureCondition: result == "halt"
//
// and judges our body as Argo does.
func TestArgoRolloutsWebMetric(t *testing.T) {
	for decision, want := range map[slogate.Decision]string{
		slogate.Promote: "Successful", slogate.Halt: "Failed", slogate.Wait: "Inconclusive",
	} {
		t.Run(fmt.Sprintf("a %s answer makes the measurement %s", decision, want), func(t *testing.T) {
			h := newHarness(t)
			h.gate.answer = decided(decision, "r")
			req, err := http.NewRequest(http.MethodGet, h.url+"/v1/gate?service=checkout&environment=production&version=v2", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tokRead)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "Argo-Rollouts/v1.8.3")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				t.Fatalf("status %d: Argo counts it as an Error", resp.StatusCode)
			}
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			result, _ := body["decision"].(string)         // jsonPath {$.decision}
			verdict, _ := body["verdict"].(map[string]any) // jsonPath {$.verdict}
			if verdict["decision"] != result || verdict["reason"] != "r" {
				t.Fatalf("verdict %v does not carry the decision %q and its reason", verdict, result)
			}
			got := "Inconclusive"
			switch {
			case result == "promote":
				got = "Successful"
			case result == "halt":
				got = "Failed"
			}
			if got != want {
				t.Fatalf("result %q measured %s, want %s", result, got, want)
			}
		})
	}
}

func TestStoredDecisionsAreReadBackByteForByte(t *testing.T) {
	h := newHarness(t)
	body := []byte(`{"decision":"halt","reason":"x > y","evaluationId":"ev_1",  "checks":[]}`)
	h.store.decisions["ev_1"] = slogate.DecisionRecord{EvaluationID: "ev_1", Body: body}
	r := h.do(t, call{method: "GET", path: "/v1/decisions/ev_1", token: tokRead})
	if r.status != http.StatusOK || !bytes.Equal(r.body, body) {
		t.Fatalf("%d %s, want %s", r.status, r.body, body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	problem(t, h.do(t, call{method: "GET", path: "/v1/decisions/ev_2", token: tokRead}), http.StatusNotFound)
}
