package dashboards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slogate/slogate/slo"
)

// Every form slogate reads (slo/testdata/formats) maps onto the model, so
// its rules pass promtool and its dashboards are JSON, unchanged.
func TestRulesAndDashboardsOfEveryFormAreValid(t *testing.T) {
	files, _ := filepath.Glob("../slo/testdata/formats/*.yaml")
	if len(files) == 0 {
		t.Fatal("no format cases")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			set, err := slo.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Rules(set)
			if err != nil {
				t.Fatalf("Rules: %v", err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), out, 0o644); err != nil {
				t.Fatal(err)
			}
			if res := promtool(t, dir, "check", "rules", "rules.yaml"); !strings.Contains(res, "SUCCESS") {
				t.Errorf("promtool check rules did not report SUCCESS:\n%s", res)
			}
			boards, err := GrafanaAll(set)
			if err != nil {
				t.Fatalf("GrafanaAll: %v", err)
			}
			for name, b := range boards {
				if !json.Valid(b) {
					t.Errorf("dashboard %s is not JSON", name)
				}
			}
		})
	}
}

func TestAnObjectivesOwnSeverityLabelIsKeptOnItsAlert(t *testing.T) {
	set, err := slo.Load("../slo/testdata/formats/pyrra-ratio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Rules(set)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"severity: critical", "severity: warning"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rules lack %q (Pyrra's severities):\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "severity: page") {
		t.Errorf("the page alert's severity was overwritten with page:\n%s", out)
	}
}
