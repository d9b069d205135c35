package peers

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/metricproviders/webmetric"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	"github.com/argoproj/argo-rollouts/utils/defaults"
	flaggerv1 "github.com/fluxcd/flagger/pkg/apis/flagger/v1beta1"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	analysisTemplateFile = "../../deploy/argo-rollouts/analysis-template.yaml"
	rolloutExampleFile   = "../../deploy/argo-rollouts/rollout-example.yaml"
	// exampleHost is where the examples expect slogate (deploy/kubernetes).
	exampleHost = "slogate.slogate.svc:8080"
)

// readStrict decodes one YAML document into v with the client's own Go
// type; a field the type does not know is an error, as it is for the
// Kubernetes API server with strict field validation.
func readStrict(t *testing.T, file string, data []byte, v any) {
	t.Helper()
	if err := decodeStrict(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// decodeStrict is the Kubernetes API server's strict decoding
// (apimachinery's serializer): YAML to JSON refusing duplicate keys, then
// case-sensitive field names, unknown and duplicate fields refused.
// encoding/json alone matches field names case-insensitively, so
// "jsonpath" would pass for "jsonPath".
func decodeStrict(data []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// TestStrictDecodingRefusesUnknownFields: a misspelt field in an example
// is an error, not silently dropped (as a lenient decoder would).
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	tests := map[string]struct {
		file, from, to string
		v              any
	}{
		"a misspelt web provider field": {analysisTemplateFile, "jsonPath:", "jsonpath:", &v1alpha1.AnalysisTemplate{}},
		"a misspelt webhook field":      {canaryFile, "timeout: 10s", "timeOut: 10s", &flaggerv1.Canary{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.from) {
				t.Fatalf("%s has no %q", tc.file, tc.from)
			}
			bad := strings.Replace(string(b), tc.from, tc.to, 1)
			if err := decodeStrict([]byte(bad), tc.v); err == nil || !strings.Contains(err.Error(), "unknown field") {
				t.Errorf("decoding with %q: %v, want an unknown field error", tc.to, err)
			}
		})
	}
}

// documents splits a multi-document YAML file at its "---" lines.
func documents(t *testing.T, file string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range strings.Split("\n"+string(b), "\n---\n") {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// analysisTemplate is deploy/argo-rollouts/analysis-template.yaml, decoded
// strictly into Argo Rollouts' AnalysisTemplate and validated by Argo's own
// ValidateMetrics.
func analysisTemplate(t *testing.T) *v1alpha1.AnalysisTemplate {
	t.Helper()
	docs := documents(t, analysisTemplateFile)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", analysisTemplateFile, len(docs))
	}
	var at v1alpha1.AnalysisTemplate
	readStrict(t, analysisTemplateFile, docs[0], &at)
	if err := analysisutil.ValidateMetrics(at.Spec.Metrics); err != nil {
		t.Fatalf("%s: Argo Rollouts refuses the metrics: %v", analysisTemplateFile, err)
	}
	return &at
}

// argoMeasure runs one measurement the way Argo's AnalysisRun reconciler
// does (analysis/analysis.go runMeasurements): the template's args merged
// with the Rollout's, the secret arg resolved (here: the token),
// analysisutil.ResolveMetricArgs, then the web provider's Run. Only the
// host of the URL is changed, to the test's slogate.
func argoMeasure(t *testing.T, at *v1alpha1.AnalysisTemplate, s *slogate, rolloutArgs map[string]string) (v1alpha1.Metric, v1alpha1.Measurement, time.Duration) {
	t.Helper()
	var args []v1alpha1.Argument
	for _, a := range at.Spec.Args {
		a := *a.DeepCopy()
		if v, ok := rolloutArgs[a.Name]; ok {
			a.Value = &v
		}
		if a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil {
			// The reconciler reads the Secret; the test's token stands in.
			tok := argoToken
			a.Value, a.ValueFrom = &tok, nil
		}
		if a.Value == nil {
			t.Fatalf("%s: arg %q has no value: the Rollout must pass it", analysisTemplateFile, a.Name)
		}
		args = append(args, a)
	}
	metric, err := analysisutil.ResolveMetricArgs(at.Spec.Metrics[0], args)
	if err != nil {
		t.Fatalf("ResolveMetricArgs: %v", err)
	}
	u, err := url.Parse(metric.Provider.Web.URL)
	if err != nil || u.Host != exampleHost {
		t.Fatalf("%s: url %q: want http://%s/...", analysisTemplateFile, metric.Provider.Web.URL, exampleHost)
	}
	u.Host = s.host
	metric.Provider.Web.URL = u.String()

	client, err := webmetric.NewWebMetricHttpClient(*metric)
	if err != nil {
		t.Fatal(err)
	}
	parser, err := webmetric.NewWebMetricJsonParser(*metric)
	if err != nil {
		t.Fatalf("%s: jsonPath: %v", analysisTemplateFile, err)
	}
	logger := log.New()
	logger.SetOutput(testWriter{t})
	p := webmetric.NewWebMetricProvider(*log.NewEntry(logger), client, parser)
	begin := time.Now()
	m := p.Run(&v1alpha1.AnalysisRun{}, *metric)
	return *metric, m, time.Since(begin)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// argoRun is what the AnalysisRun concludes when every measurement of the
// metric is like m, by the rules of analysis/analysis.go
// (assessMetricFailureInconclusiveOrError, assessMetricStatus) and the
// template's limits.
func argoRun(metric v1alpha1.Metric, m v1alpha1.Measurement) string {
	limit := func(v *intstr.IntOrString, def int) int {
		if v == nil {
			return def
		}
		return v.IntValue()
	}
	switch m.Phase {
	case v1alpha1.AnalysisPhaseSuccessful:
		return fmt.Sprintf("Successful after count %s: next step", metric.EffectiveCount().String())
	case v1alpha1.AnalysisPhaseFailed:
		return fmt.Sprintf("Failed after %d: abort", limit(metric.FailureLimit, 0)+1)
	case v1alpha1.AnalysisPhaseInconclusive:
		return fmt.Sprintf("Inconclusive after %d: pause", limit(metric.InconclusiveLimit, 0)+1)
	case v1alpha1.AnalysisPhaseError:
		return fmt.Sprintf("Error after %d in a row, 10s apart: abort", defaults.GetConsecutiveErrorLimitOrDefault(&metric)+1)
	}
	return string(m.Phase)
}

func testArgoRollouts(t *testing.T, w *world, table *conclusions) {
	at := analysisTemplate(t)
	injection := `v2" } or vector(1) # & x`
	// Deploys recorded by CI before the Rollout starts (deploy/ci).
	w.direct.deploy(t, "checkout", "v2", w.deployed)
	w.direct.deploy(t, "cart", "v2", w.deployed)
	w.direct.deploy(t, "legacy", "v1", w.deployed)
	w.direct.deploy(t, "ghost", "v1", w.deployed)
	w.direct.deploy(t, "cart", injection, w.deployed)
	w.direct.deploy(t, "fresh", "v2", time.Now())
	w.down.deploy(t, "cart", "v2", w.deployed)
	w.slow.deploy(t, "cart", "v2", w.deployed)

	tests := []struct {
		name, service, version string
		server                 *slogate
		want                   v1alpha1.AnalysisPhase
		decision               string // verdict.decision in the value; "" for an Error
		message                string // in the measurement's message (Errors)
	}{
		{name: "a halted canary", service: "checkout", version: "v2", server: w.direct,
			want: v1alpha1.AnalysisPhaseFailed, decision: "halt"},
		{name: "a promoted canary", service: "cart", version: "v2", server: w.direct,
			want: v1alpha1.AnalysisPhaseSuccessful, decision: "promote"},
		{name: "a spent budget", service: "legacy", version: "v1", server: w.direct,
			want: v1alpha1.AnalysisPhaseFailed, decision: "halt"},
		{name: "no data", service: "ghost", version: "v1", server: w.direct,
			want: v1alpha1.AnalysisPhaseFailed, decision: "halt"},
		{name: "a fresh version with no traffic", service: "fresh", version: "v2", server: w.direct,
			want: v1alpha1.AnalysisPhaseInconclusive, decision: "wait"},
		{name: "Prometheus down", service: "cart", version: "v2", server: w.down,
			want: v1alpha1.AnalysisPhaseError, message: "received non 2xx response code: 503"},
		{name: "Prometheus slower than slogate's deadline", service: "cart", version: "v2", server: w.slow,
			want: v1alpha1.AnalysisPhaseError, message: "received non 2xx response code: 503"},
		{name: "an injected version with quotes and spaces", service: "cart", version: injection, server: w.direct,
			want: v1alpha1.AnalysisPhaseFailed, decision: "halt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			metric, m, took := argoMeasure(t, at, tc.server, map[string]string{
				"service": tc.service, "environment": "production", "version": tc.version})
			got := strings.TrimSpace(fmt.Sprintf("%s %s", m.Phase, m.Value))
			if m.Message != "" {
				got += " (" + m.Message + ")"
			}
			table.set(tc.name, "Argo Rollouts", fmt.Sprintf("%s in %.1fs → run %s", got, took.Seconds(), argoRun(metric, m)))
			t.Logf("measurement: %s in %s", got, took.Round(10*time.Millisecond))
			if m.Phase != tc.want {
				t.Errorf("measurement %s, want %s", got, tc.want)
			}
			if tc.decision != "" {
				var v struct{ Decision, Reason string }
				if err := yaml.Unmarshal([]byte(m.Value), &v); err != nil || v.Decision != tc.decision || v.Reason == "" {
					t.Errorf("value %q: want the verdict object {decision: %s, reason: ...} (jsonPath {$.verdict})", m.Value, tc.decision)
				}
			}
			if tc.message != "" && !strings.Contains(m.Message, tc.message) {
				t.Errorf("message %q, want %q (slogate's own answer, not the client giving up)", m.Message, tc.message)
			}
			if timeout := time.Duration(metric.Provider.Web.TimeoutSeconds) * time.Second; took >= timeout {
				t.Errorf("took %s: Argo gives up at timeoutSeconds %s, slogate must answer first", took, timeout)
			}
		})
	}
}

// TestArgoExamplesDecodeStrictly decodes every document of
// deploy/argo-rollouts with Argo Rollouts' and Kubernetes' Go types.
func TestArgoExamplesDecodeStrictly(t *testing.T) {
	analysisTemplate(t)
	for i, d := range documents(t, rolloutExampleFile) {
		var meta struct {
			Kind string `json:"kind"`
		}
		_ = yaml.Unmarshal(d, &meta)
		switch meta.Kind {
		case "Rollout":
			var r v1alpha1.Rollout
			readStrict(t, rolloutExampleFile, d, &r)
			steps := 0
			for _, s := range r.Spec.Strategy.Canary.Steps {
				if s.Analysis != nil && s.Analysis.Templates[0].TemplateName == "slogate-gate" {
					steps++
				}
			}
			if steps == 0 {
				t.Errorf("%s: the Rollout has no analysis step with template slogate-gate", rolloutExampleFile)
			}
		case "Secret":
			var s corev1.Secret
			readStrict(t, rolloutExampleFile, d, &s)
		default:
			t.Errorf("%s: document %d: unexpected kind %q", rolloutExampleFile, i+1, meta.Kind)
		}
	}
}
