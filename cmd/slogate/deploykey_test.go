package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

func TestDeployKeyNamesTheCIAttempt(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		want string
	}{
		"GitHub Actions: run, attempt and job":  {env: map[string]string{"GITHUB_RUN_ID": "77", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_JOB": "deploy"}, want: "cli/checkout/production/v2/github/77/2/deploy"},
		"GitLab CI: the job id":                 {env: map[string]string{"CI_JOB_ID": "9001"}, want: "cli/checkout/production/v2/gitlab/9001"},
		"Jenkins: the build tag":                {env: map[string]string{"BUILD_TAG": "jenkins-checkout-42"}, want: "cli/checkout/production/v2/jenkins/jenkins-checkout-42"},
		"outside a known CI there is no key":    {env: map[string]string{}, want: ""},
		"a long attempt id is hashed under 255": {env: map[string]string{"BUILD_TAG": strings.Repeat("x", 300)}, want: "cli/"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := deployKey(func(k string) string { return tc.env[k] }, "checkout", "production", "v2")
			if tc.want == "cli/" {
				if !strings.HasPrefix(got, "cli/") || len(got) > 255 {
					t.Fatalf("key %q", got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("key %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSlogateDeployDeduplicatesARetryButNotANewAttempt: the same CI attempt
// run twice records one deploy (and says it was a replay); a re-run of the
// job (a new attempt, e.g. a redeploy after a rollback) records a new one.
func TestSlogateDeployDeduplicatesARetryButNotANewAttempt(t *testing.T) {
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
`, port, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), testenv.DownURL(t)))
	s := startNotifyServer(t, cfg, port, time.Now())
	deploy := func(attempt string) cliResult {
		return runCLI(t, map[string]string{"GITHUB_RUN_ID": "77", "GITHUB_RUN_ATTEMPT": attempt, "SLOGATE_TOKEN": ciToken},
			"deploy", "--server", s.url, "--service", "checkout", "--environment", "production", "--version", "v2")
	}
	first, retry, rerun := deploy("1"), deploy("1"), deploy("2")
	for _, r := range []cliResult{first, retry, rerun} {
		if r.code != exitOK {
			t.Fatalf("slogate deploy: %d %v %s", r.code, r.err, r.stderr)
		}
	}
	if retry.stdout != first.stdout || !strings.Contains(retry.stderr, "recorded before") {
		t.Errorf("a retry of the attempt gave %q (stderr %q), want the first deploy %q, said to be a replay", retry.stdout, retry.stderr, first.stdout)
	}
	if rerun.stdout == first.stdout || strings.Contains(rerun.stderr, "recorded before") {
		t.Errorf("a new attempt gave the old deploy %q", rerun.stdout)
	}
	if status, b := s.call(t, http.MethodGet, "/v1/deploys?service=checkout", ciToken, nil); status != http.StatusOK || strings.Count(string(b), `"id"`) != 2 {
		t.Errorf("GET /v1/deploys: %d %s, want two deploys", status, b)
	}
}
