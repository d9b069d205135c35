package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// A CI retry of POST /v1/deploys with the same Idempotency-Key and the
// same body, with notifications configured, stores the deploy once and
// answers the same deploy; its notification announces the start that was
// stored (issue 8, finding 6). Through `slogate serve` on SQLite.
func TestADeployRetriedWithItsIdempotencyKeyIsStoredOnceWithNotifications(t *testing.T) {
	grafana := startFakeGrafana(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slos", "checkout.yaml"), fmt.Sprintf(e2eSLOs, "checkout", "http_requests_total"))
	port := testenv.FreePort(t)
	cfg := filepath.Join(dir, "slogate.yaml")
	writeFile(t, cfg, fmt.Sprintf(`listen: 127.0.0.1:%d
slos: [%s]
store: sqlite:%s
sources:
  prometheus: {url: %q, timeout: 2s}
evaluation: {schedule: "@every 1h"}
auth:
  tokens:
    - {name: ci, value: "${CI_TOKEN}", scopes: [gate:read, deploys:write]}
notify:
  grafana: {url: %q, token: "${GRAFANA_TOKEN}"}
`, port, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), testenv.DownURL(t), grafana.url))
	s := startNotifyServer(t, cfg, port, time.Now())

	// No startedAt: the server picks it, which is what used to differ
	// between the two requests.
	body := map[string]any{"service": "checkout", "environment": "production", "version": "v2", "commit": "abc123"}
	post := func() (int, deployJSON) {
		status, b := s.call(t, http.MethodPost, "/v1/deploys", ciToken, body, "Idempotency-Key", "ci-run-42")
		var d deployJSON
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("POST /v1/deploys: %d %s", status, b)
		}
		return status, d
	}
	status, first := post()
	if status != http.StatusCreated {
		t.Fatalf("first POST: %d %+v", status, first)
	}
	status, second := post()
	if status != http.StatusOK || second != first {
		t.Errorf("retry: %d %+v, want 200 and the first deploy %+v", status, second, first)
	}
	status, b := s.call(t, http.MethodGet, "/v1/deploys?service=checkout", ciToken, nil)
	var list struct{ Items []deployJSON }
	if err := json.Unmarshal(b, &list); err != nil || status != http.StatusOK || len(list.Items) != 1 || list.Items[0] != first {
		t.Errorf("GET /v1/deploys: %d %s, want the one deploy %+v", status, b, first)
	}
	started, err := time.Parse(time.RFC3339Nano, first.StartedAt)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, grafana.String, func() bool {
		anns := grafana.withTags("deploy")
		return len(anns) == 1 && anns[0].Time == started.UnixMilli()
	})
}

type deployJSON struct {
	ID        string `json:"id"`
	Version   string `json:"version"`
	StartedAt string `json:"startedAt"`
	Status    string `json:"status"`
}
