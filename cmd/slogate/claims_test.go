package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slogate/slogate/internal/testenv"
)

// The claims of the README about the CLI, each through run().

const invalidSLO = "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: broken}\nspec:\n  service: checkout\n  budgetingMethod: Occurrences\n  timeWindow: [{duration: 30d, isRolling: true}]\n  objectives: [{target: 1.5}]\n"

func TestValidateRulesAndDashboardsExitCodesAndOutputs(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(invalidSLO), 0o644); err != nil {
		t.Fatal(err)
	}
	const good = "../../examples/slos"
	tests := map[string]struct {
		args     []string
		wantCode int
		check    func(t *testing.T, r cliResult)
	}{
		"validate accepts the examples and says what it read": {
			args: []string{"validate", good}, wantCode: exitOK,
			check: func(t *testing.T, r cliResult) {
				if !strings.HasPrefix(r.stdout, "valid: ") {
					t.Errorf("stdout %q", r.stdout)
				}
			},
		},
		"validate exits 1 on an invalid file, naming file, line and field": {
			args: []string{"validate", bad}, wantCode: exitFailed,
			check: func(t *testing.T, r cliResult) {
				if !strings.Contains(r.stdout, bad+":8: spec.objectives[0].target") {
					t.Errorf("stdout %q does not name file, line and field", r.stdout)
				}
			},
		},
		"validate -o json is an object with every problem": {
			args: []string{"validate", "-o", "json", bad}, wantCode: exitFailed,
			check: func(t *testing.T, r cliResult) {
				var out struct {
					Valid    bool
					Files    int
					Problems []struct {
						File, Field, Message string
						Line                 int
					}
				}
				if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
					t.Fatalf("%v: %s", err, r.stdout)
				}
				found := false
				for _, p := range out.Problems {
					found = found || p.Field == "spec.objectives[0].target" && p.Line == 8 && p.File == bad
				}
				// The file has two problems: no indicator (line 4) and the target.
				if out.Valid || out.Files != 1 || len(out.Problems) != 2 || !found {
					t.Errorf("json %+v", out)
				}
			},
		},
		"validate -o github prints workflow annotations": {
			args: []string{"validate", "-o", "github", bad}, wantCode: exitFailed,
			check: func(t *testing.T, r cliResult) {
				if !strings.Contains(r.stdout, "::error file="+bad+",line=8,title=slogate validate::spec.objectives[0].target: ") ||
					strings.Count(r.stdout, "::error ") != 2 {
					t.Errorf("stdout %q", r.stdout)
				}
			},
		},
		"validate -o yaml is a usage error":      {args: []string{"validate", "-o", "yaml", good}, wantCode: exitUsage},
		"validate with no path is a usage error": {args: []string{"validate"}, wantCode: exitUsage},
		"rules of the examples is a Prometheus rule file": {
			args: []string{"rules", good}, wantCode: exitOK,
			check: func(t *testing.T, r cliResult) {
				var doc struct {
					Groups []struct {
						Name  string
						Rules []map[string]any
					}
				}
				if err := yaml.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Groups) == 0 || len(doc.Groups[0].Rules) == 0 {
					t.Errorf("rules: %v, %d groups", err, len(doc.Groups))
				}
			},
		},
		"rules of an invalid file exits 1": {args: []string{"rules", bad}, wantCode: exitFailed},
		"dashboards of one service is Grafana JSON": {
			args: []string{"dashboards", "-service", "checkout", good}, wantCode: exitOK,
			check: func(t *testing.T, r cliResult) {
				var d struct {
					Title  string
					Panels []any
				}
				if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || len(d.Panels) == 0 {
					t.Errorf("dashboard: %v, %d panels: %.200s", err, len(d.Panels), r.stdout)
				}
			},
		},
		"dashboards of an invalid file exits 1":    {args: []string{"dashboards", bad}, wantCode: exitFailed},
		"dashboards of an unknown service exits 1": {args: []string{"dashboards", "-service", "nope", good}, wantCode: exitFailed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, nil, tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d, want %d: %v\nstdout %s\nstderr %s", r.code, tc.wantCode, r.err, r.stdout, r.stderr)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// TestWithoutTokensTheAPIListensOnLoopbackOnly: an open API refuses any
// address but loopback, and serves on loopback.
func TestWithoutTokensTheAPIListensOnLoopbackOnly(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slos", "checkout.yaml"), fmt.Sprintf(e2eSLOs, "checkout", "http_requests_total"))
	config := func(listen string) string {
		path := filepath.Join(dir, strings.NewReplacer(":", "_", ".", "_", "[", "", "]", "").Replace(listen)+".yaml")
		writeFile(t, path, fmt.Sprintf("listen: %q\nslos: [%s]\nstore: sqlite:%s\nsources:\n  prometheus: {url: %q}\nevaluation: {schedule: \"@every 1h\"}\n",
			listen, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), testenv.DownURL(t)))
		return path
	}
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"} {
		t.Run("without tokens "+listen+" is refused", func(t *testing.T) {
			r := runCLI(t, nil, "serve", "--config", config(listen))
			if r.code != exitUsage || !strings.Contains(r.err.Error(), "loopback only") {
				t.Fatalf("exit %d %v, want a usage error saying loopback only", r.code, r.err)
			}
		})
	}
	t.Run("without tokens 127.0.0.1 serves, anonymously", func(t *testing.T) {
		port := testenv.FreePort(t)
		logs := startNotifyServer(t, config(fmt.Sprintf("127.0.0.1:%d", port)), port, time.Time{}).logs
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/slos", port))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/slos without a token: %d", resp.StatusCode)
		}
		if !strings.Contains(logs.String(), "API is open") {
			t.Fatalf("the open API is not said in the log:\n%s", logs.String())
		}
	})
}

// TestSIGHUPReloadsTheSLOFilesAndKeepsThemWhenInvalid.
func TestSIGHUPReloadsTheSLOFilesAndKeepsThemWhenInvalid(t *testing.T) {
	dir := t.TempDir()
	slos := filepath.Join(dir, "slos")
	writeFile(t, filepath.Join(slos, "checkout.yaml"), fmt.Sprintf(e2eSLOs, "checkout", "http_requests_total"))
	port := testenv.FreePort(t)
	cfg := filepath.Join(dir, "slogate.yaml")
	writeFile(t, cfg, fmt.Sprintf("listen: 127.0.0.1:%d\nslos: [%s]\nstore: sqlite:%s\nsources:\n  prometheus: {url: %q}\nevaluation: {schedule: \"@every 1h\"}\n",
		port, slos, filepath.Join(dir, "data", "slogate.db"), testenv.DownURL(t)))
	srv := startNotifyServer(t, cfg, port, time.Time{})
	logs, base := srv.logs, srv.url
	slo := func(name string) int {
		resp, err := http.Get(base + "/v1/slos/" + name)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Wait, by signal, for the log line that says a reload happened (or
	// was refused), counting from the lines seen so far.
	waitLog := func(what string, before int) {
		deadline := time.Now().Add(30 * time.Second)
		for strings.Count(logs.String(), what) <= before {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log within 30s:\n%s", what, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if slo("cart-availability") != http.StatusNotFound {
		t.Fatal("cart is served before it exists")
	}
	writeFile(t, filepath.Join(slos, "cart.yaml"), fmt.Sprintf(e2eSLOs, "cart", "http_requests_total"))
	n := strings.Count(logs.String(), "SLOs reloaded")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog("SLOs reloaded", n)
	if got := slo("cart-availability"); got != http.StatusOK {
		t.Fatalf("after SIGHUP, cart-availability: %d, want 200", got)
	}
	writeFile(t, filepath.Join(slos, "broken.yaml"), invalidSLO)
	n = strings.Count(logs.String(), "SLO reload refused")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog("SLO reload refused", n)
	if slo("cart-availability") != http.StatusOK || slo("checkout-availability") != http.StatusOK {
		t.Fatal("an invalid file dropped the SLOs in force")
	}
}
