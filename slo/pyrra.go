package slo

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// Pyrra's Kubernetes form: apiVersion pyrra.dev/v1alpha1, kind
// ServiceLevelObjective (https://github.com/pyrra-dev/pyrra, the CRD's
// fields). One document is one objective named metadata.name. Pyrra files
// name no service: the service is the label or annotation
// slogate.dev/service, else metadata.namespace, else metadata.name.

const pyrraAPIVersion = "pyrra.dev/v1alpha1"

// PyrraServiceKey is the metadata label or annotation naming the service of
// a Pyrra objective.
const PyrraServiceKey = "slogate.dev/service"

type pyrraDoc struct {
	APIVersion string      `yaml:"apiVersion"`
	Kind       string      `yaml:"kind"`
	Metadata   k8sMetadata `yaml:"metadata"`
	Spec       struct {
		Description string `yaml:"description"`
		Target      string `yaml:"target"`
		Window      string `yaml:"window"`
		Indicator   struct {
			Ratio *struct {
				Errors   pyrraQuery `yaml:"errors"`
				Total    pyrraQuery `yaml:"total"`
				Grouping []string   `yaml:"grouping"`
			} `yaml:"ratio"`
			Latency *struct {
				Success  pyrraQuery `yaml:"success"`
				Total    pyrraQuery `yaml:"total"`
				Grouping []string   `yaml:"grouping"`
			} `yaml:"latency"`
			LatencyNative *struct {
				Total    pyrraQuery `yaml:"total"`
				Latency  string     `yaml:"latency"`
				Grouping []string   `yaml:"grouping"`
			} `yaml:"latencyNative"`
			BoolGauge *struct {
				Metric   string   `yaml:"metric"`
				Grouping []string `yaml:"grouping"`
			} `yaml:"bool_gauge"`
		} `yaml:"indicator"`
		Alerting struct {
			Disabled   *bool  `yaml:"disabled"`
			Burnrates  *bool  `yaml:"burnrates"`
			Absent     *bool  `yaml:"absent"`
			Name       string `yaml:"name"`
			AbsentName string `yaml:"absentName"`
			Severities *struct {
				Absent       string `yaml:"absent"`
				FastBurn     string `yaml:"fastBurn"`
				MediumBurn   string `yaml:"mediumBurn"`
				SlowBurn     string `yaml:"slowBurn"`
				LongTermBurn string `yaml:"longTermBurn"`
			} `yaml:"severities"`
		} `yaml:"alerting"`
		PartialResponseStrategy string    `yaml:"partial_response_strategy"`
		PerformanceOverAccuracy bool      `yaml:"performanceOverAccuracy"`
		RuleOutput              yaml.Node `yaml:"ruleOutput"`
	} `yaml:"spec"`
}

type pyrraQuery struct {
	Metric string `yaml:"metric"`
}

func (d *document) pyrra(kind string) {
	if kind != "ServiceLevelObjective" {
		d.errorf("kind", "unknown kind %q for %s (want ServiceLevelObjective)", kind, pyrraAPIVersion)
		return
	}
	var doc pyrraDoc
	if !d.decode(d.root, &doc, "") || !d.checkName(doc.Metadata.Name, "metadata.name") {
		return
	}
	md, spec := doc.Metadata, doc.Spec
	obj := Objective{
		Name:        md.Name,
		Service:     pyrraService(md),
		Description: spec.Description,
		Budgeting:   "Occurrences",
		Labels:      pyrraLabels(md.Labels),
		Format:      "pyrra",
		Pos:         d.pos("metadata.name"),
	}
	ok := true
	bad := func(field, format string, args ...any) {
		d.errorf(field, format, args...)
		ok = false
	}
	switch t, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(spec.Target), "%"), 64); {
	case spec.Target == "":
		bad("spec.target", "required: a percentage as a string, e.g. \"99.5\"")
	case err != nil:
		bad("spec.target", "must be a percentage as a string, e.g. \"99.5\", got %q", spec.Target)
	case !(t > 0 && t < 100):
		bad("spec.target", "must be a percentage in (0,100), got %v", t)
	default:
		obj.Target = fromPercent(t)
	}
	if spec.Window == "" {
		bad("spec.window", "required, e.g. 4w or 28d")
	} else if dur, err := ParseDuration(spec.Window); err != nil {
		bad("spec.window", "%v", err)
	} else if problem := shortWindowProblem(dur); problem != "" {
		bad("spec.window", "%s", problem)
	} else {
		obj.Window = Rolling(dur)
	}
	d.pyrraAlerting(&obj, &doc, bad)
	allowPartial := false
	switch spec.PartialResponseStrategy {
	case "", "abort":
	case "warn":
		allowPartial = true
	default:
		bad("spec.partial_response_strategy", "want warn or abort, got %q", spec.PartialResponseStrategy)
	}
	if spec.PerformanceOverAccuracy {
		bad("spec.performanceOverAccuracy", "not honoured: slogate measures the whole window from the raw series, it has no subquery shortcut; remove the field")
	}
	if spec.RuleOutput.Kind != 0 {
		bad("spec.ruleOutput", "not honoured: slogate writes one rule file (slogate rules), not PrometheusRule objects; remove the field")
	}
	ind, path := spec.Indicator, "spec.indicator"
	n := 0
	for _, set := range []bool{ind.Ratio != nil, ind.Latency != nil, ind.LatencyNative != nil, ind.BoolGauge != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		bad(path, "exactly one of ratio, latency, latencyNative or bool_gauge is required, got %d", n)
		return
	}
	obj.SLI = SLI{Name: obj.Name, Pos: d.pos(path)}
	var grouping []string
	gpath := ""
	switch {
	case ind.Ratio != nil:
		path += ".ratio"
		obj.SLI.Bad = d.pyrraSelector(ind.Ratio.Errors.Metric, path+".errors.metric", "")
		obj.SLI.Total = d.pyrraSelector(ind.Ratio.Total.Metric, path+".total.metric", "")
		grouping, gpath = ind.Ratio.Grouping, path+".grouping"
	case ind.Latency != nil:
		path += ".latency"
		obj.SLI.Good = d.pyrraSelector(ind.Latency.Success.Metric, path+".success.metric", "le")
		obj.SLI.Total = d.pyrraSelector(ind.Latency.Total.Metric, path+".total.metric", "")
		grouping, gpath = ind.Latency.Grouping, path+".grouping"
	case ind.LatencyNative != nil:
		path += ".latencyNative"
		obj.SLI.Good, obj.SLI.Total = d.pyrraNative(ind.LatencyNative.Total.Metric, ind.LatencyNative.Latency, path)
		grouping, gpath = ind.LatencyNative.Grouping, path+".grouping"
	case ind.BoolGauge != nil:
		path += ".bool_gauge"
		obj.SLI.Raw, obj.SLI.RawType = d.pyrraBoolGauge(ind.BoolGauge.Metric, path+".metric"), RawSuccess
		grouping, gpath = ind.BoolGauge.Grouping, path+".grouping"
	}
	if !d.groupBy(&obj, grouping, gpath) {
		ok = false
	}
	for _, q := range obj.SLI.Queries() {
		q.AllowPartial = allowPartial
	}
	if len(obj.SLI.Queries()) == 0 || obj.SLI.Total == nil && obj.SLI.Raw == nil || (obj.SLI.Good == nil && obj.SLI.Bad == nil && obj.SLI.Raw == nil) || !ok {
		return
	}
	if d.l.declare("SLO", obj.Name, obj.Pos, "metadata.name") {
		d.l.slos = append(d.l.slos, &rawSLO{pos: obj.Pos, file: d.file, name: obj.Name, obj: obj})
	}
}

func pyrraService(md k8sMetadata) string {
	for _, m := range []map[string]string{md.Labels, md.Annotations} {
		if s := m[PyrraServiceKey]; s != "" {
			return s
		}
	}
	if md.Namespace != "" {
		return md.Namespace
	}
	return md.Name
}

// pyrraLabels keeps the labels Pyrra puts on its rules: pyrra.dev/<name>
// as <name>, and plain label names as they are. Kubernetes-only keys (with
// a prefix) are not Prometheus label names and are dropped.
func pyrraLabels(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		if name, cut := strings.CutPrefix(k, "pyrra.dev/"); cut && ValidLabelName(name) {
			out[name] = v
		} else if ValidLabelName(k) {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *document) pyrraAlerting(obj *Objective, doc *pyrraDoc, bad func(field, format string, args ...any)) {
	a := doc.Spec.Alerting
	obj.Alerting.Name = a.Name
	if a.Disabled != nil && *a.Disabled || a.Burnrates != nil && !*a.Burnrates {
		obj.Alerting.PageDisabled, obj.Alerting.TicketDisabled = true, true
	}
	const noAbsent = "not honoured: slogate writes no absent alerts (a missing SLI series is no data, which the gate never promotes); remove the field or set absent: false"
	if a.Absent != nil && *a.Absent {
		bad("spec.alerting.absent", "%s", noAbsent)
	}
	if a.AbsentName != "" {
		bad("spec.alerting.absentName", "%s", noAbsent)
	}
	s := a.Severities
	if s == nil {
		return
	}
	if s.Absent != "" {
		bad("spec.alerting.severities.absent", "%s", noAbsent)
	}
	// slogate has one alert per severity: page for the fast and medium
	// burn tiers (1h/5m, 6h/30m), ticket for the slow and long-term ones
	// (1d/2h, 3d/6h). A Pyrra severity becomes that alert's severity label.
	pair := func(sev Severity, a, b, fa, fb string) {
		v := a
		switch {
		case a != "" && b != "" && a != b:
			bad("spec.alerting.severities."+fb, "not honoured: %s and %s are one %s alert in slogate, so they take one severity (got %q and %q)", fa, fb, sev, a, b)
			return
		case v == "":
			v = b
		}
		if v == "" {
			return
		}
		if !ValidLabelValue(v) {
			bad("spec.alerting.severities."+fa, "invalid label value %q", v)
			return
		}
		if obj.Alerting.SeverityLabels == nil {
			obj.Alerting.SeverityLabels = map[Severity]map[string]string{}
		}
		obj.Alerting.SeverityLabels[sev] = map[string]string{"severity": v}
	}
	pair(SeverityPage, s.FastBurn, s.MediumBurn, "fastBurn", "mediumBurn")
	pair(SeverityTicket, s.SlowBurn, s.LongTermBurn, "slowBurn", "longTermBurn")
}

// ValidLabelValue reports whether v can be a label value (valid UTF-8).
func ValidLabelValue(v string) bool { return strings.ToValidUTF8(v, "\uFFFD") == v }

// pyrraSelector reads one of Pyrra's metrics: a bare counter selector,
// which slogate measures as a counter expression (increase over each
// window, summed). need names a label the selector must match exactly
// (le for a latency bucket).
func (d *document) pyrraSelector(text, path, need string) *Query {
	text = strings.TrimSpace(text)
	if text == "" {
		d.errorf(path, "required: a metric selector such as http_requests_total{job=\"api\"}")
		return nil
	}
	expr, err := ParsePromQL(text)
	if err != nil {
		d.errorf(path, "%v", err)
		return nil
	}
	vs, isSel := expr.(*parser.VectorSelector)
	if !isSel {
		d.errorf(path, "must be a metric selector such as http_requests_total{job=\"api\"}, as Pyrra reads it")
		return nil
	}
	if need != "" {
		found := false
		for _, m := range vs.LabelMatchers {
			found = found || m.Name == need && m.Type == labels.MatchEqual
		}
		if !found {
			d.errorf(path, "must select one bucket with %s=\"...\", e.g. http_request_duration_seconds_bucket{le=\"0.5\"}", need)
			return nil
		}
	}
	// Summed, as Pyrra sums it, so the generated rules divide one series
	// by one series (per value when grouped: group.go keeps the labels).
	q := &Query{Source: SourcePrometheus, PromQL: "sum(" + vs.String() + ")", Pos: d.pos(path)}
	if err := CheckPromQL(q); err != nil {
		d.errorf(path, "%v", err)
		return nil
	}
	return q
}

// pyrraNative reads a latencyNative indicator: the share of a native
// histogram's observations at or under latency. Good and total are
// windowed rates, which slogate turns into events (rate × window).
func (d *document) pyrraNative(metric, latency, path string) (good, total *Query) {
	sel := d.pyrraSelector(metric, path+".total.metric", "")
	if latency == "" {
		d.errorf(path+".latency", "required, e.g. 100ms or 1s")
		return nil, nil
	}
	lat, err := ParseDuration(latency)
	if err != nil {
		d.errorf(path+".latency", "%v", err)
		return nil, nil
	}
	if sel == nil {
		return nil, nil
	}
	le := strconv.FormatFloat(lat.Seconds(), 'f', -1, 64)
	rate := fmt.Sprintf("sum(rate(%s[{{.window}}]))", sel.PromQL[len("sum("):len(sel.PromQL)-1])
	mk := func(text string) *Query {
		q := &Query{Source: SourcePrometheus, PromQL: text, Windowed: true, Pos: sel.Pos}
		if err := CheckPromQL(q); err != nil {
			d.errorf(path+".total.metric", "%v", err)
			return nil
		}
		return q
	}
	return mk(fmt.Sprintf("histogram_fraction(0, %s, %s) * histogram_count(%s)", le, rate, rate)),
		mk(fmt.Sprintf("histogram_count(%s)", rate))
}

// pyrraBoolGauge reads a bool_gauge indicator: a 0/1 gauge whose share of
// samples at 1 is the SLI (Pyrra's sum_over_time / count_over_time), a raw
// success ratio.
func (d *document) pyrraBoolGauge(metric, path string) *Query {
	sel := d.pyrraSelector(metric, path, "")
	if sel == nil {
		return nil
	}
	s := sel.PromQL[len("sum(") : len(sel.PromQL)-1]
	text := fmt.Sprintf("sum(sum_over_time(%s[{{.window}}])) / sum(count_over_time(%s[{{.window}}]))", s, s)
	q := &Query{Source: SourcePrometheus, PromQL: text, Windowed: true, Pos: sel.Pos}
	if err := CheckPromQL(q); err != nil {
		d.errorf(path, "%v", err)
		return nil
	}
	return q
}
