package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slogate/slogate/internal/testenv"
)

// TestCIExamplesRunAsPasted runs every slogate command of the CI examples
// in deploy/ci through run(), in their order, against a live slogate over
// a real Prometheus: each parses, and each answers what the pipeline's
// comments say. Only the waits are shortened (--wait 15m → 2s,
// --interval 30s → 200ms), so that the test does not wait a quarter hour.
func TestCIExamplesRunAsPasted(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	var om testenv.OpenMetrics
	om.Counter("http_requests", testenv.Requests("http_requests", map[string]string{"service": "checkout", "version": "v1"},
		now.Add(-31*24*time.Hour), time.Minute, testenv.Phase{Until: now, Rate: 10, ErrorRatio: 0.0002})...)
	prom := testenv.StartPrometheus(t, om.String())
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slos", "checkout.yaml"), fmt.Sprintf(e2eSLOs, "checkout", "http_requests_total"))
	port := testenv.FreePort(t)
	cfg := filepath.Join(dir, "slogate.yaml")
	writeFile(t, cfg, fmt.Sprintf(`listen: 127.0.0.1:%d
slos: [%s]
store: sqlite:%s
sources:
  prometheus: {url: %q, timeout: 5s}
evaluation: {schedule: "@every 1h"}
auth:
  tokens:
    - {name: ci, value: "${CI_TOKEN}", scopes: [gate:read, deploys:write]}
`, port, filepath.Join(dir, "slos"), filepath.Join(dir, "data", "slogate.db"), prom.URL))
	s := startNotifyServer(t, cfg, port, now)
	// v1 is what runs in production (its deploy recorded last month): the
	// baseline the gate compares the pipeline's v2 with.
	if code, b := s.call(t, "POST", "/v1/deploys", ciToken, map[string]any{"service": "checkout", "environment": "production",
		"version": "v1", "startedAt": now.Add(-30 * 24 * time.Hour).Format(time.RFC3339)}); code != 201 {
		t.Fatalf("recording v1: %d %s", code, b)
	}
	// The pipelines run in the service's checkout, with its slos/.
	t.Chdir(dir)

	vars := map[string]string{
		"SLOGATE_URL": s.url, "SLOGATE_TOKEN": ciToken, "SERVICE": "checkout",
		"VERSION": "v2", "COMMIT": "4f1c0ffee", "PIPELINE_URL": "https://ci.example.com/runs/42",
		"CI_COMMIT_SHA": "v2", "CI_PIPELINE_URL": "https://gitlab.example.com/shop/checkout/-/pipelines/42",
	}
	// What each command answers here: the examples' SLO files are valid,
	// the budget is healthy (promote), the deploy is recorded, and the new
	// version has no traffic yet (wait at the end of --wait: exit 3).
	want := []struct {
		command string
		code    int
	}{
		{"slogate validate", exitOK},
		{"slogate check", exitOK},
		{"slogate deploy", exitOK},
		{"slogate check", exitWaiting},
	}
	for _, file := range []string{"github-actions.yaml", "gitlab-ci.yml"} {
		t.Run(file, func(t *testing.T) {
			cmds := ciCommands(t, filepath.Join(pkgDir, "..", "..", "deploy", "ci", file))
			if len(cmds) != len(want) {
				t.Fatalf("%d slogate commands, want %d: %q", len(cmds), len(want), cmds)
			}
			for i, line := range cmds {
				words := shellWords(t, line, vars)
				if !strings.HasPrefix(strings.Join(words, " "), want[i].command) {
					t.Fatalf("command %d is %q, want %s", i, line, want[i].command)
				}
				for j := range words {
					switch {
					case words[j] == "--wait" && j+1 < len(words):
						words[j+1] = "2s"
					case words[j] == "--interval" && j+1 < len(words):
						words[j+1] = "200ms"
					}
				}
				r := runCLI(t, map[string]string{"SLOGATE_TOKEN": ciToken}, words[1:]...)
				if r.code != want[i].code {
					t.Errorf("%s\nexit %d, want %d: %v\nstdout %s\nstderr %s", line, r.code, want[i].code, r.err, r.stdout, r.stderr)
				}
			}
		})
	}
}

// pkgDir is the directory of this package's sources, read before any test
// changes the working directory.
var pkgDir = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return wd
}()

// ciCommands returns the slogate command lines of a GitHub Actions
// workflow (steps' run) or a GitLab CI file (jobs' script), in file order,
// with shell line continuations joined.
func ciCommands(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var scripts []string
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, key)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], n.Content[i].Value)
			}
		case yaml.ScalarNode:
			if key == "run" || key == "script" {
				scripts = append(scripts, n.Value)
			}
		}
	}
	walk(&doc, "")
	var out []string
	for _, s := range scripts {
		s = strings.ReplaceAll(s, "\\\n", " ")
		for _, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "slogate ") {
				out = append(out, line)
			}
		}
	}
	return out
}

var shellVar = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// shellWords splits a command line as a POSIX shell does for the simple
// commands of the examples: words, "double" and 'single' quotes, and $VAR
// expanded from vars (an unknown variable fails the test, so a new one in
// an example is noticed).
func shellWords(t *testing.T, line string, vars map[string]string) []string {
	t.Helper()
	expand := func(s string) string {
		return shellVar.ReplaceAllStringFunc(s, func(ref string) string {
			name := shellVar.FindStringSubmatch(ref)[1]
			v, ok := vars[name]
			if !ok {
				t.Fatalf("%q uses $%s, which the test does not set", line, name)
			}
			return v
		})
	}
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				t.Fatalf("unterminated quote in %q", line)
			}
			cur.WriteString(expand(line[i+1 : i+1+j]))
			i += j + 1
			inWord = true
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated quote in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '$':
			m := shellVar.FindString(line[i:])
			cur.WriteString(expand(m))
			i += len(m) - 1
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
