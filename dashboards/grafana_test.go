package dashboards

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/slogate/slogate/slo"
)

func TestGrafanaGolden(t *testing.T) {
	dashboards, err := GrafanaAll(fixture(t))
	if err != nil {
		t.Fatalf("GrafanaAll: %v", err)
	}
	if len(dashboards) != 5 {
		t.Errorf("got dashboards for %d services, want 5 (checkout, catalog, search, payments, and shipping from slogate's exported series)", len(dashboards))
	}
	for svc, b := range dashboards {
		t.Run("the "+svc+" dashboard matches its golden file", func(t *testing.T) {
			golden(t, "grafana-"+svc+".json", b)
		})
	}
}

// recorded reads a rule file and returns the names it records.
func recorded(t *testing.T, rules []byte) map[string]bool {
	t.Helper()
	var file struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Record, Alert, Expr string
				Labels, Annotations map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatalf("rule file is not YAML: %v", err)
	}
	out := map[string]bool{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out[r.Record] = true
			}
		}
	}
	return out
}

// targets walks a dashboard's JSON and returns every panel target's expr,
// checking on the way that each query is sent to the ${datasource}
// variable.
func targets(t *testing.T, v any, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			if expr, ok := v["expr"].(string); ok {
				out[path] = expr
				ds, _ := v["datasource"].(map[string]any)
				if ds["uid"] != "${datasource}" || ds["type"] != "prometheus" {
					t.Errorf("%s: datasource %v, want the prometheus ${datasource} variable", path, v["datasource"])
				}
			}
			for k, x := range v {
				walk(x, path+"."+k)
			}
		case []any:
			for i, x := range v {
				walk(x, path+"["+itoa(i)+"]")
			}
		}
	}
	walk(v, path)
	return out
}

func TestGrafanaQueriesParseAndReadRecordedSeries(t *testing.T) {
	set := fixture(t)
	rules, err := Rules(set)
	if err != nil {
		t.Fatalf("Rules: %v", err)
	}
	records := recorded(t, rules)
	dashboards, err := GrafanaAll(set)
	if err != nil {
		t.Fatalf("GrafanaAll: %v", err)
	}
	for svc, b := range dashboards {
		t.Run("every query of the "+svc+" dashboard parses and reads a recorded series", func(t *testing.T) {
			var dash map[string]any
			if err := json.Unmarshal(b, &dash); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			exprs := targets(t, dash, svc)
			want := 0
			for _, o := range set.ByService(svc) {
				if o.SLI.SourceType() == slo.SourcePrometheus {
					want += 11
				} else {
					want += 4
				}
			}
			if len(exprs) != want {
				t.Errorf("got %d queries, want %d (11 per Prometheus objective, 4 per other)", len(exprs), want)
			}
			for path, q := range exprs {
				expr, err := slo.ParsePromQL(q)
				if err != nil {
					t.Errorf("%s: %q does not parse: %v", path, q, err)
					continue
				}
				parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
					vs, ok := n.(*parser.VectorSelector)
					if !ok {
						return nil
					}
					sloLabel, serviceLabel := LabelSLO, LabelService
					switch vs.Name {
					case ExportedBudgetRemaining, ExportedBurnRate, ExportedSLI:
						sloLabel, serviceLabel = "slo", "service" // slogate's own series
					default:
						if !records[vs.Name] {
							t.Errorf("%s: %s is not recorded by the rule file", path, vs.Name)
						}
					}
					var scoped int
					for _, m := range vs.LabelMatchers {
						if (m.Name == serviceLabel && m.Value == svc) || m.Name == sloLabel {
							scoped++
						}
					}
					if scoped != 2 {
						t.Errorf("%s: %s is not scoped to one objective of %s", path, vs, svc)
					}
					return nil
				})
			}
		})
	}
}

func TestGrafanaDashboardShape(t *testing.T) {
	b, err := Grafana(fixture(t), "checkout")
	if err != nil {
		t.Fatalf("Grafana: %v", err)
	}
	var dash struct {
		UID           string
		Title         string
		SchemaVersion int
		Annotations   struct {
			List []struct {
				Name       string
				Datasource struct{ Type, UID string }
				Target     struct {
					Type string
					Tags []string
				}
			}
		}
		Templating struct {
			List []struct{ Name, Type, Query string }
		}
		Panels []struct {
			Type, Title string
			ID          int
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if dash.UID != "slogate-checkout" || dash.Title != "SLOs: checkout" || dash.SchemaVersion != 39 {
		t.Errorf("uid %q, title %q, schema %d; want slogate-checkout, SLOs: checkout, 39", dash.UID, dash.Title, dash.SchemaVersion)
	}
	var deploys bool
	for _, a := range dash.Annotations.List {
		if a.Name != "Deploys" {
			continue
		}
		deploys = true
		if a.Datasource.UID != "-- Grafana --" || a.Target.Type != "tags" || strings.Join(a.Target.Tags, ",") != "slogate,checkout" {
			t.Errorf("deploy annotations %+v: want the -- Grafana -- datasource, type tags, tags slogate and checkout", a)
		}
	}
	if !deploys {
		t.Error("no deploy annotations")
	}
	if len(dash.Templating.List) != 1 || dash.Templating.List[0].Name != "datasource" || dash.Templating.List[0].Query != "prometheus" {
		t.Errorf("templating %+v: want one prometheus datasource variable", dash.Templating.List)
	}
	var kinds []string
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		kinds = append(kinds, p.Type)
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
	}
	if got, want := strings.Join(kinds, " "), "row stat timeseries timeseries row stat timeseries timeseries"; got != want {
		t.Errorf("panels %s, want %s", got, want)
	}
}

func TestGrafanaRefusesServicesWithNothingToDraw(t *testing.T) {
	if _, err := Grafana(fixture(t), "nobody"); !errors.Is(err, ErrNoObjectives) {
		t.Errorf("err = %v, want ErrNoObjectives", err)
	}
}

// TestAServiceMeasuredFromLogsIsDrawnFromSlogatesExportedSeries: an
// Elasticsearch or Tempo SLO has no recording rules, so its row reads the
// series slogate exports on /metrics.
func TestAServiceMeasuredFromLogsIsDrawnFromSlogatesExportedSeries(t *testing.T) {
	b, err := Grafana(fixture(t), "shipping")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Type, Title string
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if _, err := slo.ParsePromQL(tg.Expr); err != nil {
				t.Errorf("panel %q: %q does not parse: %v", p.Title, tg.Expr, err)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, metric := range []string{ExportedBudgetRemaining, ExportedBurnRate, ExportedSLI} {
		if !strings.Contains(all, metric+`{service="shipping"`) {
			t.Errorf("no panel reads %s of shipping:\n%s", metric, all)
		}
	}
	all2, err := GrafanaAll(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all2["shipping"]; !ok {
		t.Error("GrafanaAll leaves out the service measured from logs")
	}
}

func TestDashboardUID(t *testing.T) {
	tests := map[string]struct{ service, want string }{
		"a short service name is kept":                {"checkout", "slogate-checkout"},
		"a name Grafana refuses in a uid is hashed":   {"shop/checkout", "slogate-shop-checkout-" + uidHash("shop/checkout")},
		"a name too long for 40 characters is hashed": {"a-very-long-service-name-for-a-dashboard-uid", "slogate-a-very-long-service-na-" + uidHash("a-very-long-service-name-for-a-dashboard-uid")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := DashboardUID(tc.service)
			if got != tc.want {
				t.Errorf("DashboardUID(%q) = %q, want %q", tc.service, got, tc.want)
			}
			if len(got) > 40 || !validUID.MatchString(got) {
				t.Errorf("%q is not a valid Grafana uid", got)
			}
		})
	}
}

func uidHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// selectorNames returns the metric names an expression selects.
func selectorNames(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}
