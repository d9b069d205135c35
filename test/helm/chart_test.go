package helm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "../../deploy/helm/slogate"

// prometheus-operator's objects are not in k8s.io/api: these are the
// fields the chart sets, decoded as strictly.
type serviceMonitor struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type prometheusRule struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Record      string            `json:"record,omitempty"`
				Alert       string            `json:"alert,omitempty"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// objects are the rendered objects by kind.
type objects struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	configMaps  []corev1.ConfigMap
	pvcs        []corev1.PersistentVolumeClaim
	pdbs        []policyv1.PodDisruptionBudget
	monitors    []serviceMonitor
	rules       []prometheusRule
}

func load(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// render renders the chart with values (YAML) over its defaults.
func render(t *testing.T, values string) (map[string]string, error) {
	t.Helper()
	c := load(t)
	var vals map[string]any
	if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{Name: "slogate", Namespace: "slogate", IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Render(c, top)
}

// decode splits the rendered manifests and decodes each object strictly
// (unknown fields are errors) into its type.
func decode(t *testing.T, files map[string]string) objects {
	t.Helper()
	var o objects
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for i, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(doc), "---")) == "" {
				continue
			}
			var head struct{ Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s document %d: %v\n%s", name, i, err, doc)
			}
			strict := func(v any) {
				t.Helper()
				if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
					t.Fatalf("%s document %d (%s): %v\n%s", name, i, head.Kind, err, doc)
				}
			}
			switch head.Kind {
			case "Deployment":
				var v appsv1.Deployment
				strict(&v)
				o.deployments = append(o.deployments, v)
			case "Service":
				var v corev1.Service
				strict(&v)
				o.services = append(o.services, v)
			case "ConfigMap":
				var v corev1.ConfigMap
				strict(&v)
				o.configMaps = append(o.configMaps, v)
			case "PersistentVolumeClaim":
				var v corev1.PersistentVolumeClaim
				strict(&v)
				o.pvcs = append(o.pvcs, v)
			case "PodDisruptionBudget":
				var v policyv1.PodDisruptionBudget
				strict(&v)
				o.pdbs = append(o.pdbs, v)
			case "ServiceMonitor":
				var v serviceMonitor
				strict(&v)
				o.monitors = append(o.monitors, v)
			case "PrometheusRule":
				var v prometheusRule
				strict(&v)
				o.rules = append(o.rules, v)
			default:
				t.Fatalf("%s document %d: unexpected kind %q", name, i, head.Kind)
			}
		}
	}
	return o
}

func configOf(t *testing.T, o objects) map[string]any {
	t.Helper()
	for _, cm := range o.configMaps {
		if s, ok := cm.Data["slogate.yaml"]; ok {
			var cfg map[string]any
			if err := yaml.UnmarshalStrict([]byte(s), &cfg); err != nil {
				t.Fatalf("slogate.yaml: %v\n%s", err, s)
			}
			return cfg
		}
	}
	t.Fatal("no ConfigMap holds slogate.yaml")
	return nil
}

func TestChart(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join("testdata", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rulesValue, _ := json.Marshal(string(rules))

	t.Run("the default values render one SQLite replica with a claim, probes and a locked-down container", func(t *testing.T) {
		files, err := render(t, "")
		if err != nil {
			t.Fatal(err)
		}
		o := decode(t, files)
		if len(o.deployments) != 1 || len(o.services) != 1 || len(o.pvcs) != 1 || len(o.pdbs) != 0 || len(o.configMaps) != 2 {
			t.Fatalf("objects: %d deployments, %d services, %d claims, %d PDBs, %d config maps", len(o.deployments), len(o.services), len(o.pvcs), len(o.pdbs), len(o.configMaps))
		}
		d := o.deployments[0]
		if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("replicas %d, strategy %s; want 1, Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		pod := d.Spec.Template.Spec
		c := pod.Containers[0]
		if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
			c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Error("the pod must run as non-root with a read-only root filesystem")
		}
		if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("probes %s and %s, want /healthz and /readyz", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Error("resources are not set")
		}
		for k, v := range d.Spec.Selector.MatchLabels {
			if d.Spec.Template.Labels[k] != v || o.services[0].Spec.Selector[k] != v {
				t.Errorf("selector %s=%s does not select the pods or the service", k, v)
			}
		}
		if cfg := configOf(t, o); cfg["store"] != "sqlite:/var/lib/slogate/slogate.db" || cfg["listen"] != "0.0.0.0:8080" {
			t.Errorf("config %v", cfg)
		}
		var secretEnv bool
		for _, e := range c.Env {
			secretEnv = secretEnv || (e.Name == "SLOGATE_CI_TOKEN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef.Name == "slogate-tokens")
		}
		if !secretEnv {
			t.Error("the CI token is not read from the Secret")
		}
	})

	t.Run("PostgreSQL with three replicas renders a PodDisruptionBudget, no claim and the DSN from a Secret", func(t *testing.T) {
		files, err := render(t, `
replicas: 3
store: {type: postgres, postgres: {dsnSecret: {name: slogate-db, key: dsn}}}
serviceMonitor: {enabled: true, labels: {release: kube-prometheus-stack}}
prometheusRule: {enabled: true, rules: `+string(rulesValue)+`}
slos: {existingConfigMap: my-slos}
`)
		if err != nil {
			t.Fatal(err)
		}
		o := decode(t, files)
		if len(o.pvcs) != 0 || len(o.pdbs) != 1 || len(o.monitors) != 1 || len(o.rules) != 1 || len(o.configMaps) != 1 {
			t.Fatalf("objects: %d claims, %d PDBs, %d monitors, %d rules, %d config maps", len(o.pvcs), len(o.pdbs), len(o.monitors), len(o.rules), len(o.configMaps))
		}
		d := o.deployments[0]
		if *d.Spec.Replicas != 3 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
			t.Errorf("replicas %d, strategy %s", *d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		var dsn bool
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			dsn = dsn || (e.Name == "SLOGATE_STORE_DSN" && e.ValueFrom.SecretKeyRef.Name == "slogate-db" && e.ValueFrom.SecretKeyRef.Key == "dsn")
		}
		if !dsn || configOf(t, o)["store"] != "${SLOGATE_STORE_DSN}" {
			t.Error("the store DSN is not read from the Secret")
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == "slos" && v.ConfigMap.Name != "my-slos" {
				t.Errorf("SLO volume from %s, want the existing my-slos", v.ConfigMap.Name)
			}
			if v.PersistentVolumeClaim != nil {
				t.Error("a claim is mounted with PostgreSQL")
			}
		}
		if o.pdbs[0].Spec.MinAvailable.IntValue() != 1 {
			t.Errorf("PDB minAvailable %s", o.pdbs[0].Spec.MinAvailable.String())
		}
		var want struct {
			Groups []json.RawMessage `json:"groups"`
		}
		if err := yaml.Unmarshal(rules, &want); err != nil {
			t.Fatal(err)
		}
		if got := o.rules[0].Spec.Groups; len(got) != len(want.Groups) || len(got[0].Rules) == 0 {
			t.Errorf("PrometheusRule has %d groups, the slogate rules output %d", len(got), len(want.Groups))
		}
	})

	t.Run("existing ConfigMaps replace the rendered config and SLO files", func(t *testing.T) {
		files, err := render(t, "existingConfigMap: my-config\nslos: {existingConfigMap: my-slos}\n")
		if err != nil {
			t.Fatal(err)
		}
		o := decode(t, files)
		if len(o.configMaps) != 0 {
			t.Fatalf("%d config maps rendered, want none", len(o.configMaps))
		}
		got := map[string]string{}
		for _, v := range o.deployments[0].Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil {
				got[v.Name] = v.ConfigMap.Name
			}
		}
		if got["config"] != "my-config" || got["slos"] != "my-slos" {
			t.Fatalf("config map volumes %v", got)
		}
	})

	for name, tc := range map[string]struct{ values, want string }{
		"two replicas on SQLite are refused":     {"replicas: 2", "replicas > 1 needs store.type: postgres"},
		"PostgreSQL without a DSN Secret":        {"store: {type: postgres}", "store.postgres.dsnSecret.name"},
		"a PrometheusRule without rules":         {"prometheusRule: {enabled: true}", "prometheusRule.rules"},
		"a PrometheusRule that is no rule file":  {`prometheusRule: {enabled: true, rules: "foo: bar"}`, "no groups"},
		"an unknown store type is refused early": {"store: {type: mysql}", "store.type"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := render(t, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
