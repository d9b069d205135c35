package dashboards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slogate/slogate/slo"
)

// TestExamplesRenderValidArtifacts loads the repository's example SLO files
// and checks that their rule file passes the real promtool and that every
// query of their dashboards parses.
func TestExamplesRenderValidArtifacts(t *testing.T) {
	dir := filepath.Join("..", "examples")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the repository's examples are missing: %v", err)
	}
	set, err := slo.Load(dir)
	if err != nil {
		t.Fatalf("slo.Load(%s): %v", dir, err)
	}
	if len(set.Objectives) == 0 {
		t.Fatalf("no objectives under %s", dir)
	}
	rules, err := Rules(set)
	if err != nil {
		t.Fatalf("Rules: %v", err)
	}
	t.Run("the examples' rule file passes promtool check rules", func(t *testing.T) {
		tmp := t.TempDir()
		if err := os.WriteFile(filepath.Join(tmp, "rules.yaml"), rules, 0o644); err != nil {
			t.Fatal(err)
		}
		if out := promtool(t, tmp, "check", "rules", "rules.yaml"); !strings.Contains(out, "SUCCESS") {
			t.Errorf("promtool check rules did not report SUCCESS:\n%s", out)
		}
	})
	t.Run("every query of the examples' dashboards parses", func(t *testing.T) {
		dashboards, err := GrafanaAll(set)
		if err != nil {
			t.Fatalf("GrafanaAll: %v", err)
		}
		if len(dashboards) == 0 {
			t.Fatal("no dashboard")
		}
		records := recorded(t, rules)
		for svc, b := range dashboards {
			var dash map[string]any
			if err := json.Unmarshal(b, &dash); err != nil {
				t.Fatalf("%s: not JSON: %v", svc, err)
			}
			for path, q := range targets(t, dash, svc) {
				expr, err := slo.ParsePromQL(q)
				if err != nil {
					t.Errorf("%s: %q does not parse: %v", path, q, err)
					continue
				}
				for _, name := range selectorNames(expr) {
					exported := name == ExportedBudgetRemaining || name == ExportedBurnRate || name == ExportedSLI
					if !records[name] && !exported {
						t.Errorf("%s: %s is not recorded by the rule file", path, name)
					}
				}
			}
		}
	})
}
