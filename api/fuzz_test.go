package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// decodeFuzzed decodes body as a handler does and checks the outcome: a
// problem of the decoding statuses, or a value.
func decodeFuzzed(t *testing.T, body string, v any) bool {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	err := decodeJSON(httptest.NewRecorder(), req, 4096, v, false)
	if err == nil {
		return true
	}
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("decoding %q: %v is not a problem", body, err)
	}
	switch p.Status {
	case http.StatusBadRequest:
		if len(p.Errors) == 0 || p.Errors[0].Field == "" {
			t.Fatalf("decoding %q: a 400 without a field: %+v", body, p)
		}
	case http.StatusRequestEntityTooLarge:
		if len(body) <= 4096 {
			t.Fatalf("decoding %d bytes: 413", len(body))
		}
	default:
		t.Fatalf("decoding %q: status %d", body, p.Status)
	}
	return false
}

func FuzzDecodeDeploy(f *testing.F) {
	f.Add(goodDeploy)
	f.Add(`{"service":"checkout","environment":"production","version":"v2"}`)
	f.Add(`{"service":"","labels":{"":"x"},"startedAt":"2026-13-01T00:00:00Z"}`)
	f.Add(`{"version":1e999}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		var r createDeployRequest
		if !decodeFuzzed(t, body, &r) {
			return
		}
		d, problems := r.deploy(fixedTime)
		if len(problems) > 0 {
			for _, p := range problems {
				if p.Field == "" || p.Message == "" {
					t.Fatalf("problem without a field: %+v", p)
				}
			}
			return
		}
		if d.Service == "" || d.Environment == "" || d.Version == "" || len(d.Service) > maxNameLen {
			t.Fatalf("accepted %+v from %q", d, body)
		}
		if !d.StartedAt.IsZero() && d.StartedAt.After(fixedTime.Add(maxFutureSkew)) {
			t.Fatalf("accepted a deploy started in the future: %v", d.StartedAt)
		}
	})
}

func FuzzDecodeGate(f *testing.F) {
	f.Add(`{"service":"checkout","environment":"production","version":"v2","deployId":"dep_1","baselineVersion":"v1"}`)
	f.Add(`{"service":"checkout"}`)
	f.Add(`{"service":"\u0000","environment":" "}`)
	f.Add(`{"service":"checkout","environment":"production"} x`)
	f.Add(`{"service":"checkout","environment":"production","version":"v\u0007","baselineVersion":"v1\n"}`)
	f.Fuzz(func(t *testing.T, body string) {
		var r gateRequest
		if !decodeFuzzed(t, body, &r) {
			return
		}
		req, err := r.request()
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest || len(p.Errors) == 0 {
				t.Fatalf("validating %q: %v", body, err)
			}
			return
		}
		if strings.TrimSpace(req.Service) == "" || strings.TrimSpace(req.Environment) == "" {
			t.Fatalf("accepted %+v from %q", req, body)
		}
		for field, v := range map[string]string{"service": req.Service, "environment": req.Environment, "version": req.Version,
			"deployId": req.DeployID, "baselineVersion": req.BaselineVersion} {
			if !utf8.ValidString(v) || len(v) > maxNameLen || strings.IndexFunc(v, unicode.IsControl) >= 0 {
				t.Fatalf("accepted %s %q (%d bytes) from %q", field, v, len(v), body)
			}
		}
	})
}

// FuzzGitHubWebhook delivers arbitrary bodies, validly signed, as each
// event GitHub sends: never a panic, never a 5xx, and every problem names
// its field.
func FuzzGitHubWebhook(f *testing.F) {
	for _, name := range []string{"deployment", "deployment_repo_only", "deployment_status", "ping"} {
		b, err := os.ReadFile(filepath.Join("testdata", "github", name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		for _, event := range []string{"deployment", "deployment_status"} {
			f.Add(event, string(b))
		}
	}
	f.Add("deployment", `{"deployment":{"id":-1,"payload":"x","created_at":"2026-11-21T12:00:00Z"},"repository":{}}`)
	f.Add("deployment", `{"deployment":{"id":9223372036854775807,"environment":"p","sha":"a","created_at":"2026-11-21T12:00:00Z","payload":{"service":1,"version":["v"]}},"repository":{"name":"r","html_url":"::"}}`)
	f.Add("deployment_status", `{"deployment_status":{"state":"success","target_url":"javascript:x","created_at":"0001-01-01T00:00:00Z"},"deployment":{"id":1,"environment":"p","sha":"a","created_at":"2026-11-21T12:00:00Z"},"repository":{"name":"r"}}`)
	f.Add("deployment_status", `{"deployment_status":null,"deployment":null,"repository":null}`)
	f.Add("ping", `[]`)
	f.Fuzz(func(t *testing.T, event, body string) {
		if event == "" || strings.ContainsAny(event, "\r\n\x00") || !utf8.ValidString(event) {
			event = "deployment"
		}
		deps := Deps{
			Gate: &fakeGate{}, Store: newFakeStore(), SLOs: &fakeSLOs{}, Tokens: testTokens,
			Clock: func() time.Time { return fixedTime }, MaxBodyBytes: 1 << 16, GitHubWebhookSecret: testWebhookSecret,
		}
		srv := newEngine(deps)
		for range 2 { // the second delivery is a redelivery
			req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/github", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", event)
			req.Header.Set("X-Hub-Signature-256", signGitHub(testWebhookSecret, body))
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, req)
			switch {
			case w.Code >= 500:
				t.Fatalf("event %q body %q: %d %s", event, body, w.Code, w.Body)
			case w.Code >= 400:
				var p Problem
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || len(p.Errors) == 0 || p.Errors[0].Field == "" {
					t.Fatalf("event %q body %q: %d %s: a problem without a field", event, body, w.Code, w.Body)
				}
				if w.Code == http.StatusUnauthorized || w.Code == http.StatusNotFound {
					t.Fatalf("event %q body %q: %d for a signed delivery", event, body, w.Code)
				}
			}
		}
	})
}
