// Package layout holds the test that keeps the package layout of
// DESIGN.md: each package imports only the packages of ours it may.
package layout

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/slogate/slogate"

// root names the module's root package, slogate, in the patterns below.
const root = "."

// allowed lists, per package pattern, the packages of ours it may depend
// on (directly or not). A pattern ending in "/..." covers the subpackages.
var allowed = map[string][]string{
	// The domain types every layer shares (Deploy, Decision, ...).
	root:             {},
	"slo":            {},
	"collectors/...": {"slo", "collectors/..."},
	"gate":           {root, "slo"},
	// The DORA keys: pure functions over deploys and burns, and the
	// measuring of past burns through a counter it declares.
	"gate/dora":    {root, "slo"},
	"dashboards":   {"slo"},
	"store/...":    {root, "slo", "store/..."},
	"alerting/...": {root, "slo", "gate", "alerting/..."},
	"api":          {root, "slo", "gate", "gate/dora", "store"},
	// The purge of the store's outbox.
	"internal/outbox": {root, "slo", "store/..."},
	// The GitHub App's pending protection rules in the store's outbox.
	"internal/rulequeue": {root, "slo", "gate", "store/...", "alerting", "alerting/githubapp"},
	// The alert tracker's record in the audit log, which the DORA keys
	// read back.
	"internal/alertlog": {root, "slo", "gate", "gate/dora", "store/...", "alerting"},
	// The use case of recording deploys with their notifications, and the
	// gate's view of the recorded deploys: the store and alerting's event
	// types, no concrete notifier.
	"internal/deploys": {root, "slo", "gate", "store/...", "alerting"},
	// The leader's figures in the store, for the replicas that follow.
	"internal/figures": {root, "slo", "gate", "store/..."},
	// The DORA keys as gauges on /metrics.
	"internal/dorametrics": {root, "slo", "gate/dora", "store/..."},
	// The replay of the gate over recorded deploys (slogate backtest).
	"internal/backtest": {root, "slo", "gate", "store/..."},
	// The use case of recording gate answers with their notifications, and
	// the gate's view of the overrides.
	"internal/decisions": {root, "slo", "gate", "store/...", "alerting", "internal/deploys"},
}

// rel is an import path relative to the module (root for the module's own
// package), or false when the package is not ours.
func rel(importPath string) (string, bool) {
	if importPath == module {
		return root, true
	}
	return strings.CutPrefix(importPath, module+"/")
}

// name is how a message names a package of ours.
func name(pkg string) string {
	if pkg == root {
		return "slogate (the module root)"
	}
	return pkg
}

func matches(pattern, pkg string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	return pkg == pattern
}

func TestPackagesImportOnlyWhatTheLayoutAllows(t *testing.T) {
	for pattern, may := range allowed {
		t.Run(pattern, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps", "../../"+pattern).Output()
			if err != nil {
				t.Fatalf("go list %s: %v", pattern, err)
			}
			dec := json.NewDecoder(strings.NewReader(string(out)))
			for dec.More() {
				var p struct {
					ImportPath string
					Deps       []string
				}
				if err := dec.Decode(&p); err != nil {
					t.Fatal(err)
				}
				self, ok := rel(p.ImportPath)
				if !ok || !matches(pattern, self) {
					continue
				}
				for _, d := range p.Deps {
					dep, ours := rel(d)
					if !ours || matches(pattern, dep) && !strings.HasSuffix(pattern, "/...") {
						continue
					}
					ok := false
					for _, m := range may {
						ok = ok || matches(m, dep)
					}
					if !ok {
						t.Errorf("%s depends on %s, which the layout does not allow (DESIGN.md, Layout)", name(self), name(dep))
					}
				}
			}
		})
	}
}
