package slo

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// benchFiles writes n SLO files (an SLI, an SLO and a Sloth file in turn)
// into a temporary directory.
func benchFiles(b *testing.B, n int) (string, []string) {
	b.Helper()
	dir := b.TempDir()
	var files []string
	for i := 0; i < n; i++ {
		var body string
		switch i % 2 {
		case 0:
			body = fmt.Sprintf(`apiVersion: openslo/v1
kind: SLO
metadata:
  name: svc%[1]d-availability
spec:
  service: svc%[1]d
  budgetingMethod: Occurrences
  timeWindow:
    - duration: 30d
      isRolling: true
  indicator:
    metadata:
      name: svc%[1]d-ok
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(http_requests_total{service="svc%[1]d", code!~"5.."})
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(http_requests_total{service="svc%[1]d"})
  objectives:
    - target: 0.999
`, i)
		default:
			body = fmt.Sprintf(`version: prometheus/v1
service: svc%[1]d
slos:
  - name: requests-availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests_total{service="svc%[1]d", code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total{service="svc%[1]d"}[{{.window}}]))
`, i)
		}
		p := filepath.Join(dir, fmt.Sprintf("slo-%04d.yaml", i))
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
		files = append(files, p)
	}
	return dir, files
}

// BenchmarkLoad1000Files loads and validates 1,000 SLO files (PromQL parsed,
// references resolved). Its baseline is BenchmarkYAMLDecode1000Files: a
// bare yaml.v3 decode of the same files into yaml.Node.
func BenchmarkLoad1000Files(b *testing.B) {
	dir, _ := benchFiles(b, 1000)
	b.ResetTimer()
	for b.Loop() {
		set, err := Load(dir)
		if err != nil || len(set.Objectives) != 1000 {
			b.Fatalf("%v (%d objectives)", err, len(set.Objectives))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "µs/file")
}

func BenchmarkYAMLDecode1000Files(b *testing.B) {
	_, files := benchFiles(b, 1000)
	b.ResetTimer()
	for b.Loop() {
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			dec := yaml.NewDecoder(bytes.NewReader(data))
			for {
				var n yaml.Node
				if err := dec.Decode(&n); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "µs/file")
}
