package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// fakeGate answers every ask with decision.
type fakeGate struct {
	mu       sync.Mutex
	decision slogate.Decision
}

func (g *fakeGate) Evaluate(_ context.Context, r gate.Request) (gate.Answer, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return gate.Answer{Decision: g.decision, Reason: "fake gate: " + string(g.decision), Service: r.Service, Environment: r.Environment,
		Version: r.Version, DeployID: r.DeployID, EvaluationID: "ev_1", EvaluatedAt: time.Now().UTC()}, nil
}
func (g *fakeGate) Invalidate(string, string) {}

type noSLOs struct{}

func (noSLOs) Statuses(context.Context, time.Time) []slo.Status { return nil }
func (noSLOs) Status(context.Context, string, time.Time) (slo.Status, bool) {
	return slo.Status{}, false
}

const ciToken = "ci-token-0123456789abcdef"

// startSlogate serves slogate's real API over a real SQLite store.
func startSlogate(t *testing.T, g *fakeGate) (string, store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "slogate.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(api.NewServer(api.Deps{Gate: g, Store: st, SLOs: noSLOs{},
		Tokens: []api.Token{{Name: "ci", Value: ciToken, Scopes: []string{api.ScopeGateRead, api.ScopeDeploysWrite}}}}))
	t.Cleanup(srv.Close)
	return srv.URL, st
}

// TestArgoCDNotifications renders the notification templates as Argo CD
// does (Go templates over the Application and the context) and posts them
// to slogate: the deploy is recorded once and failed by its id.
func TestArgoCDNotifications(t *testing.T) {
	docs, err := parseFile("argocd/notifications.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := docs[0].v["data"].(map[string]any)
	type webhook struct {
		Method, Path, Body string
	}
	templates := map[string]webhook{}
	for k, v := range data {
		name, ok := strings.CutPrefix(k, "template.")
		if !ok {
			continue
		}
		var tpl struct {
			Webhook map[string]webhook `yaml:"webhook"`
		}
		if err := yaml.Unmarshal([]byte(v.(string)), &tpl); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		templates[name] = tpl.Webhook["slogate"]
	}
	sends := map[string][]string{}
	for _, trig := range []string{"on-sync-running", "on-deployed", "on-sync-failed", "on-health-degraded"} {
		var conds []struct {
			When, OncePer string
			Send          []string
		}
		if err := yaml.Unmarshal([]byte(data["trigger."+trig].(string)), &conds); err != nil || len(conds) == 0 {
			t.Fatalf("trigger.%s: %v", trig, err)
		}
		for _, c := range conds {
			for _, s := range c.Send {
				if _, ok := templates[s]; !ok {
					t.Fatalf("trigger.%s sends %s, which is not a template", trig, s)
				}
			}
			sends[trig] = append(sends[trig], c.Send...)
		}
	}
	var service struct {
		URL     string
		Headers []struct{ Name, Value string }
	}
	if err := yaml.Unmarshal([]byte(data["service.webhook.slogate"].(string)), &service); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile("argocd/testdata/application.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, annotated := range map[string]bool{"an annotated Application": true, "an Application without slogate's annotations": false} {
		t.Run(name, func(t *testing.T) {
			var app map[string]any
			if err := json.Unmarshal(raw, &app); err != nil {
				t.Fatal(err)
			}
			wantService, wantEnv := "checkout", "production"
			if !annotated {
				delete(app["metadata"].(map[string]any), "annotations")
				wantService, wantEnv = "checkout-production", "checkout"
			}
			vars := map[string]any{"app": app, "context": map[string]any{"argocdUrl": "https://argocd.example.com"}}
			render := func(s string) string {
				t.Helper()
				tpl, err := template.New("t").Parse(s)
				if err != nil {
					t.Fatal(err)
				}
				var b bytes.Buffer
				if err := tpl.Execute(&b, vars); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(b.String(), "<no value>") {
					t.Fatalf("rendered with a missing value:\n%s", b.String())
				}
				return b.String()
			}
			base, st := startSlogate(t, &fakeGate{decision: slogate.Promote})
			send := func(trig string, want int) {
				t.Helper()
				for _, name := range sends[trig] {
					w := templates[name]
					body := render(w.Body)
					if !json.Valid([]byte(body)) {
						t.Fatalf("%s renders invalid JSON:\n%s", name, body)
					}
					req, _ := http.NewRequest(w.Method, base+render(w.Path), strings.NewReader(body))
					for _, h := range service.Headers {
						req.Header.Set(h.Name, strings.ReplaceAll(h.Value, "$slogate-token", ciToken))
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					var b bytes.Buffer
					b.ReadFrom(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != want {
						t.Fatalf("%s (%s %s): %d %s, want %d", trig, w.Method, w.Path, resp.StatusCode, b.String(), want)
					}
				}
			}
			send("on-sync-running", http.StatusCreated)
			send("on-deployed", http.StatusOK) // the same deploy
			send("on-health-degraded", http.StatusOK)
			send("on-sync-failed", http.StatusOK) // failed again: no change
			list, _, err := st.ListDeploys(context.Background(), store.DeployFilter{})
			if err != nil || len(list) != 1 {
				t.Fatalf("deploys %v %v, want one", list, err)
			}
			d := list[0]
			if d.Service != wantService || d.Environment != wantEnv || d.Version != "9f2c1e4b7a6d5c3b2a1f0e9d8c7b6a5f4e3d2c1b" ||
				d.Status != slogate.StatusFailed || d.PipelineURL != "https://argocd.example.com/applications/argocd/checkout-production" ||
				!d.StartedAt.Equal(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)) {
				t.Fatalf("deploy %+v", d)
			}
		})
	}
}

// jenkinsCommands are the shell commands of the Jenkinsfile's sh steps
// and gate() calls that run slogate.
func jenkinsCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("ci/Jenkinsfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	var cmds []string
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?s)script: '''(.*?)'''`),
		regexp.MustCompile(`(?m)\bsh '([^']*)'`),
		regexp.MustCompile(`(?m)\bgate\('([^']*)'\)`),
	} {
		for _, m := range re.FindAllStringSubmatch(s, -1) {
			if c := strings.TrimSpace(m[1]); strings.HasPrefix(c, "slogate ") {
				cmds = append(cmds, c)
			}
		}
	}
	return cmds
}

// TestJenkinsfile runs the Jenkinsfile's slogate commands with the real
// CLI against slogate's API, as Jenkins' sh steps would, and checks the
// exit codes its gate() maps to stage results.
func TestJenkinsfile(t *testing.T) {
	b, err := os.ReadFile("ci/Jenkinsfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"credentials('slogate-token')", "returnStatus: true", "case 0:", "case 1:", "case 3:", "unstable(", "error(", "--wait 15m --interval 30s"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Jenkinsfile: %q not found", want)
		}
	}
	cmds := jenkinsCommands(t)
	if len(cmds) != 4 {
		t.Fatalf("slogate commands %q, want validate, deploy and two checks", cmds)
	}
	bin := filepath.Join(t.TempDir(), "slogate")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/slogate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for name, tc := range map[string]struct {
		decision slogate.Decision
		check    int
	}{
		"a promote passes every stage": {slogate.Promote, 0},
		"a halt fails the stage":       {slogate.Halt, 1},
	} {
		t.Run(name, func(t *testing.T) {
			base, st := startSlogate(t, &fakeGate{decision: tc.decision})
			env := append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"),
				"SLOGATE_SERVER="+base, "SLOGATE_TOKEN="+ciToken, "SERVICE=checkout", "ENVIRONMENT=production",
				"GIT_COMMIT=9f2c1e4b7a6d5c3b2a1f0e9d8c7b6a5f4e3d2c1b", "BUILD_URL=https://jenkins.example.com/job/checkout/42/",
				"BUILD_TAG=jenkins-checkout-42")
			for _, c := range cmds {
				if strings.HasPrefix(c, "slogate validate") {
					continue // needs the team's slos/ directory
				}
				cmd := exec.Command("bash", "-eu", "-c", c)
				cmd.Env = env
				var out, errOut bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errOut
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				want := 0
				if strings.HasPrefix(c, "slogate check") {
					want = tc.check
				}
				if code != want {
					t.Fatalf("%s: exit %d, want %d\n%s%s", c, code, want, out.String(), errOut.String())
				}
				if strings.HasPrefix(c, "slogate deploy") {
					id := strings.TrimSpace(out.String())
					d, err := st.GetDeploy(context.Background(), id)
					if err != nil || d.PipelineURL != "https://jenkins.example.com/job/checkout/42/" || d.Commit == "" {
						t.Fatalf("deploy %q: %+v %v", id, d, err)
					}
					env = append(env, "SLOGATE_DEPLOY_ID="+id)
				}
			}
		})
	}
}
