package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

const githubSecret = "github-webhook-secret-0123456789"

// githubDeliveries are a deployment and its success status in GitHub's
// shape (the fields slogate reads and a few it ignores).
func githubDeliveries(id int64, created, finished time.Time) (deployment, status string) {
	dep := fmt.Sprintf(`{
    "url": "https://api.github.com/repos/acme/checkout/deployments/%[1]d",
    "id": %[1]d, "node_id": "DE_kwDOAbCdEc5JlAKS",
    "sha": "9f2c1e4b7a6d5c3b2a1f0e9d8c7b6a5f4e3d2c1b", "ref": "main", "task": "deploy",
    "payload": {"service": "checkout", "version": "v2"},
    "original_environment": "production", "environment": "production", "description": null,
    "creator": {"login": "octo-deployer", "id": 583231, "type": "User"},
    "created_at": %[2]q, "updated_at": %[2]q,
    "statuses_url": "https://api.github.com/repos/acme/checkout/deployments/%[1]d/statuses"
  }`, id, created.Format(time.RFC3339))
	repo := `{"id": 186853002, "name": "checkout", "full_name": "acme/checkout", "private": true,
    "html_url": "https://github.com/acme/checkout", "default_branch": "main"}`
	deployment = fmt.Sprintf(`{"action": "created", "deployment": %s, "repository": %s, "sender": {"login": "octo-deployer"}}`, dep, repo)
	status = fmt.Sprintf(`{"action": "created",
  "deployment_status": {"id": 9876543210, "state": "success", "description": "Deployed.", "environment": "production",
    "target_url": "https://github.com/acme/checkout/actions/runs/11223344556",
    "log_url": "https://github.com/acme/checkout/actions/runs/11223344556",
    "created_at": %[3]q, "updated_at": %[3]q},
  "deployment": %[1]s, "repository": %[2]s, "sender": {"login": "github-actions[bot]"}}`, dep, repo, finished.Format(time.RFC3339))
	return deployment, status
}

// deliver posts body to the GitHub webhook as GitHub does, signed with
// secret ("" sends no signature).
func deliver(t *testing.T, base, event, body, secret string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/webhooks/github", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(body))
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestGitHubWebhookEndToEnd runs slogate serve with webhooks.github and
// delivers a signed deployment and its status; the deploy is then read
// through the API.
func TestGitHubWebhookEndToEnd(t *testing.T) {
	t.Run("a secret shorter than 16 characters is refused by the config", func(t *testing.T) {
		const short = "tiny-secret"
		_, err := ParseConfig("slogate.yaml", []byte("webhooks: {github: {secret: \"${S}\"}}\n"),
			func(string) string { return short })
		if err == nil || !strings.Contains(err.Error(), "webhooks.github.secret") || strings.Contains(err.Error(), short) {
			t.Fatalf("error %v: want webhooks.github.secret named, its value left out", err)
		}
		if _, err := ParseConfig("slogate.yaml", []byte("webhooks: {github: {secret: x, token: y}}\n"), nil); err == nil {
			t.Fatal("an unknown key under webhooks.github is accepted")
		}
	})

	t.Run("a signed deployment and its success status become a finished deploy", func(t *testing.T) {
		prom := testenv.StartEmptyPrometheus(t)
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "slos", "checkout.yaml"), fmt.Sprintf(e2eSLOs, "checkout", "http_requests_total"))
		port := testenv.FreePort(t)
		writeFile(t, filepath.Join(dir, "slogate.yaml"), fmt.Sprintf(`
listen: 127.0.0.1:%d
slos: [%s]
store: sqlite:%s
sources:
  prometheus: {url: "%s", timeout: 10s}
evaluation: {schedule: "@every 1h"}
auth:
  tokens:
    - {name: reader, value: %s, scopes: [gate:read]}
webhooks:
  github: {secret: "${GITHUB_WEBHOOK_SECRET}"}
log: {level: debug}
`, port, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), prom.URL, readToken))

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		logs := &lockedWriter{w: &bytes.Buffer{}}
		go func() {
			done <- run(ctx, []string{"serve", "--config", filepath.Join(dir, "slogate.yaml")},
				func(k string) string { return map[string]string{"GITHUB_WEBHOOK_SECRET": githubSecret}[k] }, io.Discard, logs)
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
				t.Logf("slogate logs:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), githubSecret) {
				t.Error("the webhook secret appears in the logs")
			}
		})
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		testenv.WaitHTTP(t, nil, base+"/healthz", 30*time.Second)
		e := &e2e{url: base}

		now := time.Now().UTC().Truncate(time.Second)
		started, finished := now.Add(-10*time.Minute), now.Add(-time.Minute)
		deployment, status := githubDeliveries(1234567890, started, finished)

		if code, body := deliver(t, base, "ping", `{"zen":"Design for failure.","hook_id":1}`, githubSecret); code != http.StatusOK {
			t.Fatalf("ping: %d %s", code, body)
		}
		if code, body := deliver(t, base, "deployment", deployment, ""); code != http.StatusUnauthorized {
			t.Fatalf("unsigned deployment: %d %s, want 401", code, body)
		}
		if code, body := deliver(t, base, "deployment", deployment, "another-secret-0123456789"); code != http.StatusUnauthorized {
			t.Fatalf("deployment signed with another secret: %d %s, want 401", code, body)
		}
		if code, body := deliver(t, base, "deployment", deployment, githubSecret); code != http.StatusCreated {
			t.Fatalf("deployment: %d %s, want 201", code, body)
		}
		if code, body := deliver(t, base, "deployment", deployment, githubSecret); code != http.StatusOK {
			t.Fatalf("redelivered deployment: %d %s, want 200", code, body)
		}
		if code, body := deliver(t, base, "deployment_status", status, githubSecret); code != http.StatusOK {
			t.Fatalf("deployment_status: %d %s, want 200", code, body)
		}

		code, body := e.call(t, http.MethodGet, "/v1/deploys/dep_gh_1234567890", readToken, nil)
		if code != http.StatusOK {
			t.Fatalf("GET /v1/deploys/dep_gh_1234567890: %d %s", code, body)
		}
		var d struct {
			ID, Service, Environment, Version, Commit, PipelineURL, Status, CreatedBy string
			Labels                                                                    map[string]string
			StartedAt                                                                 time.Time
			FinishedAt                                                                *time.Time
		}
		if err := json.Unmarshal(body, &d); err != nil {
			t.Fatal(err)
		}
		if d.ID != "dep_gh_1234567890" || d.Service != "checkout" || d.Environment != "production" || d.Version != "v2" ||
			d.Commit != "9f2c1e4b7a6d5c3b2a1f0e9d8c7b6a5f4e3d2c1b" || d.PipelineURL != "https://github.com/acme/checkout/deployments" ||
			d.Status != "succeeded" || d.CreatedBy != "github" || d.Labels["github.repository"] != "acme/checkout" ||
			!d.StartedAt.Equal(started) || d.FinishedAt == nil || !d.FinishedAt.Equal(finished) {
			t.Fatalf("deploy %s", body)
		}
		code, body = e.call(t, http.MethodGet, "/v1/deploys?service=checkout", readToken, nil)
		var list struct{ Items []json.RawMessage }
		if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil || len(list.Items) != 1 {
			t.Fatalf("GET /v1/deploys: %d %s, want the one deploy", code, body)
		}
	})
}
