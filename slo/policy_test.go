package slo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAnEmptyCanaryBlockGetsTheDefaultToleranceAndConfidence(t *testing.T) {
	dir := t.TempDir()
	body := `apiVersion: openslo/v1
kind: SLO
metadata: {name: a}
spec:
  service: a
  budgetingMethod: Occurrences
  timeWindow: [{duration: 4w, isRolling: true}]
  indicator:
    metadata: {name: ok}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: sum(ok_total)}}}
        total: {metricSource: {type: Prometheus, spec: {query: sum(all_total)}}}
  objectives: [{target: 0.999}]
---
apiVersion: slogate.dev/v1
kind: GatePolicy
metadata: {name: a-production}
spec:
  service: a
  canary: {}
`
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := set.Policy("a", "production")
	if p.Canary == nil || p.Canary.Tolerance != DefaultTolerance || p.Canary.Confidence != DefaultConfidence {
		t.Errorf("canary policy = %+v, want tolerance %v confidence %v", p.Canary, DefaultTolerance, DefaultConfidence)
	}
	if !(DefaultTolerance > 0) {
		t.Errorf("DefaultTolerance %v: equal versions could never pass", DefaultTolerance)
	}
}
