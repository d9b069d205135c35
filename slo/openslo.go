package slo

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const slogateAPIVersion = "slogate.dev/v1"

// Wire shapes of OpenSLO v1 (https://github.com/OpenSLO/OpenSLO, v1).

type osMetadata struct {
	Name        string            `yaml:"name"`
	DisplayName string            `yaml:"displayName"`
	Labels      yaml.Node         `yaml:"labels"` // string or list values
	Annotations map[string]string `yaml:"annotations"`
}

type osDoc[S any] struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   osMetadata `yaml:"metadata"`
	Spec       S          `yaml:"spec"`
}

type osSLOSpec struct {
	Description     string         `yaml:"description"`
	Service         string         `yaml:"service"`
	Indicator       *osInlineSLI   `yaml:"indicator"`
	IndicatorRef    string         `yaml:"indicatorRef"`
	BudgetingMethod string         `yaml:"budgetingMethod"`
	TimeWindow      []osTimeWindow `yaml:"timeWindow"`
	Objectives      []osObjective  `yaml:"objectives"`
	AlertPolicies   []yaml.Node    `yaml:"alertPolicies"`
}

type osInlineSLI struct {
	Metadata osMetadata `yaml:"metadata"`
	Spec     osSLISpec  `yaml:"spec"`
}

type osTimeWindow struct {
	Duration  string `yaml:"duration"`
	IsRolling *bool  `yaml:"isRolling"`
	Calendar  *struct {
		StartTime string `yaml:"startTime"`
		TimeZone  string `yaml:"timeZone"`
	} `yaml:"calendar"`
}

type osObjective struct {
	DisplayName     string       `yaml:"displayName"`
	Op              string       `yaml:"op"`
	Value           *float64     `yaml:"value"`
	Target          *float64     `yaml:"target"`
	TargetPercent   *float64     `yaml:"targetPercent"`
	TimeSliceTarget *float64     `yaml:"timeSliceTarget"`
	TimeSliceWindow string       `yaml:"timeSliceWindow"`
	Indicator       *osInlineSLI `yaml:"indicator"`
	IndicatorRef    string       `yaml:"indicatorRef"`
	CompositeWeight *float64     `yaml:"compositeWeight"`
}

type osSLISpec struct {
	Description     string         `yaml:"description"`
	ThresholdMetric *osMetric      `yaml:"thresholdMetric"`
	RatioMetric     *osRatioMetric `yaml:"ratioMetric"`
}

type osRatioMetric struct {
	Counter *bool     `yaml:"counter"`
	Good    *osMetric `yaml:"good"`
	Bad     *osMetric `yaml:"bad"`
	Total   *osMetric `yaml:"total"`
	RawType string    `yaml:"rawType"`
	Raw     *osMetric `yaml:"raw"`
}

type osMetric struct {
	MetricSource *osMetricSource `yaml:"metricSource"`
}

type osMetricSource struct {
	MetricSourceRef string    `yaml:"metricSourceRef"`
	Type            string    `yaml:"type"`
	Spec            yaml.Node `yaml:"spec"`
}

type osDataSourceSpec struct {
	Description       string    `yaml:"description"`
	Type              string    `yaml:"type"`
	ConnectionDetails yaml.Node `yaml:"connectionDetails"`
}

type osServiceSpec struct {
	Description string `yaml:"description"`
}

type osAlertPolicySpec struct {
	Description         string      `yaml:"description"`
	AlertWhenNoData     bool        `yaml:"alertWhenNoData"`
	AlertWhenResolved   bool        `yaml:"alertWhenResolved"`
	AlertWhenBreaching  bool        `yaml:"alertWhenBreaching"`
	Conditions          []yaml.Node `yaml:"conditions"`
	NotificationTargets []yaml.Node `yaml:"notificationTargets"`
}

type osAlertConditionSpec struct {
	Description string `yaml:"description"`
	Severity    string `yaml:"severity"`
	Condition   struct {
		Kind           string  `yaml:"kind"`
		Op             string  `yaml:"op"`
		Threshold      float64 `yaml:"threshold"`
		LookbackWindow string  `yaml:"lookbackWindow"`
		AlertAfter     string  `yaml:"alertAfter"`
	} `yaml:"condition"`
}

type osTargetSpec struct {
	Description string `yaml:"description"`
	Target      string `yaml:"target"`
}

// Prometheus, Elasticsearch and Tempo metric source specs.
type promSpec struct {
	Query string `yaml:"query"`
	// PartialResponse is "allow" or "deny" (the default, or the
	// DataSource's).
	PartialResponse string `yaml:"partialResponse"`
}

// Values of partialResponse.
const (
	partialAllow = "allow"
	partialDeny  = "deny"
)

// partialResponse reads a partialResponse value: allow (true) or deny.
func partialResponse(v string) (bool, error) {
	switch v {
	case partialAllow:
		return true, nil
	case partialDeny:
		return false, nil
	}
	return false, fmt.Errorf("want allow or deny, got %q", v)
}

type esSpec struct {
	Index          string    `yaml:"index"`
	TimestampField string    `yaml:"timestampField"`
	Query          yaml.Node `yaml:"query"`
}

type tempoSpec struct {
	TraceQL string `yaml:"traceql"`
}

// Raw pieces kept until every file is read.

type rawSLO struct {
	pos          Position
	file         string
	name         string
	obj          Objective
	indicator    *SLI   // inline
	indicatorRef string // or by name
	refPos       Position
	policies     []string
	policyPos    []Position
	// objective is the OpenSLO objective the SLO came from, read once its
	// SLI is known (threshold.go).
	objective     *osObjective
	objectivePath string
	doc           *document
}

type rawSLI struct {
	sli  SLI
	refs []sourceRef
}

// sourceRef is a metric source waiting for its DataSource: its spec is
// decoded once the type is known.
type sourceRef struct {
	q     *Query
	name  string
	typ   string
	field string
	spec  *yaml.Node
	doc   *document
	// raw: the query is a raw ratio's (it must be windowed).
	raw bool
}

type rawAlertPolicy struct {
	resolved AlertPolicy
	condRefs []string
	condPos  []Position
}

func (d *document) openSLO(kind string) {
	switch kind {
	case "SLO":
		var doc osDoc[osSLOSpec]
		if d.decode(d.root, &doc, "") {
			d.slo(&doc)
		}
	case "SLI":
		var doc osDoc[osSLISpec]
		if d.decode(d.root, &doc, "") && d.checkName(doc.Metadata.Name, "metadata.name") {
			if sli, ok := d.sli(doc.Metadata.Name, &doc.Spec, "spec"); ok && d.l.declare("SLI", doc.Metadata.Name, d.pos("metadata.name"), "metadata.name") {
				d.l.slis[doc.Metadata.Name] = sli
			}
		}
	case "DataSource":
		var doc osDoc[osDataSourceSpec]
		if d.decode(d.root, &doc, "") && d.checkName(doc.Metadata.Name, "metadata.name") {
			d.dataSource(&doc)
		}
	case "Service":
		var doc osDoc[osServiceSpec]
		if d.decode(d.root, &doc, "") && d.checkName(doc.Metadata.Name, "metadata.name") &&
			d.l.declare("Service", doc.Metadata.Name, d.pos("metadata.name"), "metadata.name") {
			d.l.services[doc.Metadata.Name] = Service{
				Name: doc.Metadata.Name, DisplayName: doc.Metadata.DisplayName,
				Description: doc.Spec.Description, Pos: d.pos("metadata.name"),
			}
		}
	case "AlertPolicy":
		var doc osDoc[osAlertPolicySpec]
		if d.decode(d.root, &doc, "") && d.checkName(doc.Metadata.Name, "metadata.name") {
			d.alertPolicy(doc.Metadata.Name, &doc.Spec, "spec")
		}
	case "AlertCondition":
		var doc osDoc[osAlertConditionSpec]
		if d.decode(d.root, &doc, "") && d.checkName(doc.Metadata.Name, "metadata.name") {
			if c, ok := d.alertCondition(doc.Metadata.Name, &doc.Spec, "spec"); ok &&
				d.l.declare("AlertCondition", c.Name, c.Pos, "metadata.name") {
				d.l.conds[c.Name] = c
			}
		}
	case "AlertNotificationTarget":
		var doc osDoc[osTargetSpec]
		if d.decode(d.root, &doc, "") && d.checkName(doc.Metadata.Name, "metadata.name") &&
			d.l.declare("AlertNotificationTarget", doc.Metadata.Name, d.pos("metadata.name"), "metadata.name") {
			if doc.Spec.Target == "" {
				d.errorf("spec.target", "required")
			}
			d.l.targets[doc.Metadata.Name] = AlertNotificationTarget{
				Name: doc.Metadata.Name, Target: doc.Spec.Target,
				Description: doc.Spec.Description, Pos: d.pos("metadata.name"),
			}
		}
	case "":
		d.errorf("kind", "missing: want SLO, SLI, DataSource, Service, AlertPolicy, AlertCondition or AlertNotificationTarget")
	default:
		d.errorf("kind", "unknown kind %q for openslo/v1 (want SLO, SLI, DataSource, Service, AlertPolicy, AlertCondition or AlertNotificationTarget)", kind)
	}
}

func (d *document) slo(doc *osDoc[osSLOSpec]) {
	named := d.checkName(doc.Metadata.Name, "metadata.name")
	spec := &doc.Spec
	r := &rawSLO{pos: d.pos("metadata.name"), file: d.file, name: doc.Metadata.Name}
	r.obj = Objective{
		Name:        doc.Metadata.Name,
		DisplayName: doc.Metadata.DisplayName,
		Service:     spec.Service,
		Description: spec.Description,
		Budgeting:   "Occurrences",
		Labels:      labelsOf(&doc.Metadata.Labels),
		Format:      "openslo",
		Pos:         r.pos,
	}
	if spec.Service == "" {
		d.errorf("spec.service", "required")
	}
	d.groupAnnotations(&r.obj, doc.Metadata.Annotations)   // group.go
	d.alertingAnnotation(&r.obj, doc.Metadata.Annotations) // convert.go
	switch spec.BudgetingMethod {
	case BudgetOccurrences, BudgetTimeslices, BudgetRatioTimeslices:
		r.obj.Budgeting = spec.BudgetingMethod
	case "":
		d.errorf("spec.budgetingMethod", "required: Occurrences, Timeslices or RatioTimeslices")
	default:
		d.errorf("spec.budgetingMethod", "unknown budgeting method %q (want Occurrences, Timeslices or RatioTimeslices)", spec.BudgetingMethod)
	}
	r.obj.Window, _ = d.timeWindow(spec.TimeWindow, "spec.timeWindow")
	switch {
	case spec.Indicator != nil && spec.IndicatorRef != "":
		d.errorf("spec.indicatorRef", "give either indicator or indicatorRef, not both")
	case spec.Indicator != nil:
		name := spec.Indicator.Metadata.Name
		if name == "" {
			name = doc.Metadata.Name
		}
		if sli, ok := d.sli(name, &spec.Indicator.Spec, "spec.indicator.spec"); ok {
			d.l.slis["\x00inline/"+d.file+"/"+doc.Metadata.Name] = sli
			r.indicator = &sli.sli
			// Inline SLIs' source refs are resolved with the others.
			r.indicatorRef = "\x00inline/" + d.file + "/" + doc.Metadata.Name
		}
	case spec.IndicatorRef != "":
		r.indicatorRef = spec.IndicatorRef
		r.refPos = d.pos("spec.indicatorRef")
	default:
		own := len(spec.Objectives) > 0
		for _, o := range spec.Objectives {
			own = own && (o.Indicator != nil || o.IndicatorRef != "")
		}
		if !own {
			d.errorf("spec", "indicator or indicatorRef is required (or one on every objective, a composite SLO)")
		}
	}
	for i, ap := range spec.AlertPolicies {
		path := fmt.Sprintf("spec.alertPolicies[%d]", i)
		name := ""
		switch ap.Kind {
		case yaml.ScalarNode:
			name = ap.Value
		case yaml.MappingNode:
			var ref struct {
				AlertPolicyRef string     `yaml:"alertPolicyRef"`
				Kind           string     `yaml:"kind"`
				Metadata       osMetadata `yaml:"metadata"`
				Spec           yaml.Node  `yaml:"spec"`
			}
			if !d.decode(&ap, &ref, path) {
				continue
			}
			if ref.AlertPolicyRef != "" {
				name = ref.AlertPolicyRef
			} else if d.checkName(ref.Metadata.Name, path+".metadata.name") {
				var spec osAlertPolicySpec
				if d.decode(&ref.Spec, &spec, path+".spec") {
					d.alertPolicy(ref.Metadata.Name, &spec, path+".spec")
				}
				name = ref.Metadata.Name
			}
		}
		if name == "" {
			d.errorf(path, "want an AlertPolicy name, {alertPolicyRef: name} or an inline AlertPolicy")
			continue
		}
		r.policies = append(r.policies, name)
		r.policyPos = append(r.policyPos, d.pos(path))
	}
	if len(spec.Objectives) == 0 {
		d.errorf("spec.objectives", "at least one objective is required")
		return
	}
	for i, o := range spec.Objectives {
		path := fmt.Sprintf("spec.objectives[%d]", i)
		obj := r.obj
		switch {
		case len(spec.Objectives) == 1:
		case o.DisplayName != "":
			obj.Name = doc.Metadata.Name + "-" + slug(o.DisplayName)
		default:
			obj.Name = fmt.Sprintf("%s-%d", doc.Metadata.Name, i)
		}
		if o.DisplayName != "" {
			obj.DisplayName = o.DisplayName
		}
		obj.Pos = d.pos(path)
		switch {
		case o.Target != nil && o.TargetPercent != nil:
			d.errorf(path+".targetPercent", "give either target or targetPercent, not both")
		case o.Target != nil:
			obj.Target = *o.Target
			d.checkTarget(obj.Target, path+".target")
		case o.TargetPercent != nil:
			obj.Target = fromPercent(*o.TargetPercent)
			if !(*o.TargetPercent > 0 && *o.TargetPercent < 100) {
				d.errorf(path+".targetPercent", "must be in (0,100), got %v", *o.TargetPercent)
			}
		default:
			d.errorf(path+".target", "required: the fraction of good events wanted, in (0,1), e.g. 0.999")
		}
		rr := *r
		if !d.compositePart(&rr, &obj, &spec.Objectives[i], spec, path) {
			continue
		}
		if named && d.l.declare("SLO", obj.Name, obj.Pos, "metadata.name") {
			rr.obj = obj
			rr.objective, rr.objectivePath, rr.doc = &spec.Objectives[i], path, d
			d.l.slos = append(d.l.slos, &rr)
		}
	}
}

// fromPercent turns a percentage into a fraction without the float noise
// of a bare division (99.9/100 = 0.9990000000000001).
func fromPercent(p float64) float64 { return math.Round(p/100*1e12) / 1e12 }

func (d *document) checkTarget(t float64, path string) {
	if !(t > 0 && t < 1) || math.IsNaN(t) {
		d.errorf(path, "must be in (0,1), got %v", t)
	}
}

func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func labelsOf(n *yaml.Node) map[string]string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		switch v.Kind {
		case yaml.ScalarNode:
			out[k] = v.Value
		case yaml.SequenceNode:
			var vals []string
			for _, c := range v.Content {
				vals = append(vals, c.Value)
			}
			out[k] = strings.Join(vals, ",")
		}
	}
	return out
}

func (d *document) timeWindow(tws []osTimeWindow, path string) (Window, bool) {
	if len(tws) != 1 {
		d.errorf(path, "exactly one time window is required, got %d", len(tws))
		return Window{}, false
	}
	tw := tws[0]
	path += "[0]"
	if tw.Duration == "" {
		d.errorf(path+".duration", "required, e.g. 28d or 1M")
		return Window{}, false
	}
	rolling := tw.IsRolling == nil || *tw.IsRolling
	if tw.IsRolling == nil && tw.Calendar != nil {
		rolling = false
	}
	if rolling {
		if tw.Calendar != nil {
			d.errorf(path+".calendar", "a rolling window takes no calendar")
		}
		dur, err := ParseDuration(tw.Duration)
		if err != nil {
			d.errorf(path+".duration", "%v", err)
			return Window{}, false
		}
		if problem := shortWindowProblem(dur); problem != "" {
			d.errorf(path+".duration", "%s", problem)
			return Window{}, false
		}
		return Rolling(dur), true
	}
	unit, err := calendarUnit(tw.Duration)
	if err != nil {
		d.errorf(path+".duration", "%v", err)
		return Window{}, false
	}
	tz := ""
	if tw.Calendar != nil {
		tz = tw.Calendar.TimeZone
	}
	return d.calendarWindow(path, unit, tz)
}

// sli converts an OpenSLO SLI spec. Query text is checked later, once
// metricSourceRefs are resolved to their DataSource's type.
func (d *document) sli(name string, spec *osSLISpec, path string) (*rawSLI, bool) {
	r := &rawSLI{sli: SLI{Name: name, Pos: d.pos(path)}}
	if tm := spec.ThresholdMetric; tm != nil {
		if spec.RatioMetric != nil {
			d.errorf(path+".ratioMetric", "give either thresholdMetric or ratioMetric, not both")
			return nil, false
		}
		q, ok := d.metric(tm, path+".thresholdMetric", false)
		r.sli.Metric = q
		return r, ok
	}
	rm := spec.RatioMetric
	if rm == nil {
		d.errorf(path+".ratioMetric", "required")
		return nil, false
	}
	path += ".ratioMetric"
	ok := true
	metric := func(m *osMetric, field string) *Query {
		if m == nil {
			return nil
		}
		q, good := d.metric(m, path+"."+field, field == "raw")
		ok = ok && good
		return q
	}
	if rm.Raw != nil || rm.RawType != "" {
		if rm.Good != nil || rm.Bad != nil || rm.Total != nil {
			d.errorf(path+".raw", "a raw ratio takes no good, bad or total")
			return nil, false
		}
		switch RawType(rm.RawType) {
		case RawSuccess, RawFailure:
		case "":
			d.errorf(path+".rawType", "required with raw: success or failure")
			ok = false
		default:
			d.errorf(path+".rawType", "unknown raw type %q (want success or failure)", rm.RawType)
			ok = false
		}
		if rm.Raw == nil {
			d.errorf(path+".raw", "required with rawType")
			return nil, false
		}
		r.sli.RawType = RawType(rm.RawType)
		r.sli.Raw = metric(rm.Raw, "raw")
		return r, ok
	}
	if rm.Counter != nil && !*rm.Counter {
		d.errorf(path+".counter", "only counter metrics are supported (counter: true)")
		ok = false
	}
	switch {
	case rm.Total == nil:
		d.errorf(path+".total", "required (with good or bad)")
		ok = false
	case rm.Good == nil && rm.Bad == nil:
		d.errorf(path+".good", "good or bad is required")
		ok = false
	case rm.Good != nil && rm.Bad != nil:
		d.errorf(path+".bad", "give either good or bad, not both")
		ok = false
	}
	r.sli.Good = metric(rm.Good, "good")
	r.sli.Bad = metric(rm.Bad, "bad")
	r.sli.Total = metric(rm.Total, "total")
	return r, ok
}

func (d *document) metric(m *osMetric, path string, raw bool) (*Query, bool) {
	if m.MetricSource == nil {
		d.errorf(path+".metricSource", "required")
		return nil, false
	}
	ms := m.MetricSource
	path += ".metricSource"
	q := &Query{Pos: d.pos(path + ".spec")}
	if ms.Type == "" && ms.MetricSourceRef == "" {
		d.errorf(path+".type", "required (Prometheus, Elasticsearch or Tempo) unless metricSourceRef names a DataSource")
		return nil, false
	}
	d.l.pendingRefs = append(d.l.pendingRefs, sourceRef{
		q: q, name: ms.MetricSourceRef, typ: ms.Type, field: path, spec: &ms.Spec, doc: d, raw: raw,
	})
	return q, true
}

// sourceType maps OpenSLO's DataSource types to slogate's.
func sourceType(s string) (SourceType, bool) {
	switch strings.ToLower(s) {
	case "prometheus", "thanos", "mimir", "cortex":
		return SourcePrometheus, true
	case "elasticsearch", "opensearch":
		return SourceElasticsearch, true
	case "tempo", "traces":
		return SourceTempo, true
	}
	return "", false
}

func (d *document) dataSource(doc *osDoc[osDataSourceSpec]) {
	name := doc.Metadata.Name
	typ, ok := sourceType(doc.Spec.Type)
	if doc.Spec.Type == "" {
		d.errorf("spec.type", "required (Prometheus, Elasticsearch or Tempo)")
		return
	}
	if !ok {
		d.errorf("spec.type", "unsupported data source type %q (want Prometheus, Elasticsearch or Tempo)", doc.Spec.Type)
		return
	}
	ds := DataSource{Name: name, Type: typ, Pos: d.pos("metadata.name")}
	if strings.EqualFold(doc.Spec.Type, "opensearch") {
		ds.Flavor = "opensearch"
	}
	if cd := &doc.Spec.ConnectionDetails; cd.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(cd.Content); i += 2 {
			switch k, v := cd.Content[i].Value, cd.Content[i+1]; k {
			case "url", "address":
				ds.URL = v.Value
			case "partialResponse":
				field := "spec.connectionDetails.partialResponse"
				d.lines[field] = cd.Content[i].Line
				if typ != SourcePrometheus {
					d.errorf(field, "only Prometheus-compatible sources (Prometheus, Thanos, Mimir, Cortex) take partialResponse; a partial answer from %s is always unavailable", typ)
					continue
				}
				allow, err := partialResponse(v.Value)
				if err != nil || v.Kind != yaml.ScalarNode {
					d.errorf(field, "want allow or deny, got %s", kindName(v))
					continue
				}
				ds.AllowPartial = allow
			}
		}
	}
	if d.l.declare("DataSource", name, ds.Pos, "metadata.name") {
		d.l.dataSrc[name] = ds
	}
}

func (d *document) alertPolicy(name string, spec *osAlertPolicySpec, path string) {
	p := &rawAlertPolicy{resolved: AlertPolicy{Name: name, Pos: d.pos(path)}}
	if len(spec.Conditions) == 0 {
		d.errorf(path+".conditions", "at least one condition is required")
	}
	for i := range spec.Conditions {
		cpath := fmt.Sprintf("%s.conditions[%d]", path, i)
		var c struct {
			ConditionRef string               `yaml:"conditionRef"`
			Kind         string               `yaml:"kind"`
			Metadata     osMetadata           `yaml:"metadata"`
			Spec         osAlertConditionSpec `yaml:"spec"`
		}
		if !d.decode(&spec.Conditions[i], &c, cpath) {
			continue
		}
		if c.ConditionRef != "" {
			p.condRefs = append(p.condRefs, c.ConditionRef)
			p.condPos = append(p.condPos, d.pos(cpath+".conditionRef"))
			continue
		}
		if !d.checkName(c.Metadata.Name, cpath+".metadata.name") {
			continue
		}
		if ac, ok := d.alertCondition(c.Metadata.Name, &c.Spec, cpath+".spec"); ok {
			p.resolved.Conditions = append(p.resolved.Conditions, ac)
		}
	}
	for i := range spec.NotificationTargets {
		tpath := fmt.Sprintf("%s.notificationTargets[%d]", path, i)
		var t struct {
			TargetRef string       `yaml:"targetRef"`
			Kind      string       `yaml:"kind"`
			Metadata  osMetadata   `yaml:"metadata"`
			Spec      osTargetSpec `yaml:"spec"`
		}
		if d.decode(&spec.NotificationTargets[i], &t, tpath) {
			if t.TargetRef != "" {
				p.resolved.Targets = append(p.resolved.Targets, t.TargetRef)
			} else {
				p.resolved.Targets = append(p.resolved.Targets, t.Spec.Target)
			}
		}
	}
	if d.l.declare("AlertPolicy", name, p.resolved.Pos, path) {
		d.l.policies[name] = p
	}
}

func (d *document) alertCondition(name string, spec *osAlertConditionSpec, path string) (AlertCondition, bool) {
	c := AlertCondition{Name: name, Severity: spec.Severity, Op: spec.Condition.Op, Threshold: spec.Condition.Threshold, Pos: d.pos(path)}
	ok := true
	if spec.Severity == "" {
		d.errorf(path+".severity", "required")
		ok = false
	}
	if k := spec.Condition.Kind; k != "burnrate" {
		d.errorf(path+".condition.kind", "unsupported condition kind %q (want burnrate)", k)
		ok = false
	}
	switch spec.Condition.Op {
	case "gt", "gte", "lt", "lte":
	default:
		d.errorf(path+".condition.op", "want gt, gte, lt or lte, got %q", spec.Condition.Op)
		ok = false
	}
	if !(spec.Condition.Threshold > 0) {
		d.errorf(path+".condition.threshold", "must be a positive burn rate, got %v", spec.Condition.Threshold)
		ok = false
	}
	var err error
	if c.LookbackWindow, err = ParseDuration(spec.Condition.LookbackWindow); err != nil {
		d.errorf(path+".condition.lookbackWindow", "%v", err)
		ok = false
	}
	if spec.Condition.AlertAfter != "" {
		if c.AlertAfter, err = ParseDuration(spec.Condition.AlertAfter); err != nil {
			d.errorf(path+".condition.alertAfter", "%v", err)
			ok = false
		}
	}
	return c, ok
}

// resolve ties references across files and checks queries once their
// source type is known.
func (l *loader) resolve() {
	for _, r := range l.pendingRefs {
		l.resolveQuery(r)
	}
	for _, p := range l.policies {
		for i, name := range p.condRefs {
			c, ok := l.conds[name]
			if !ok {
				l.add(p.condPos[i], "conditionRef", "no AlertCondition named %q", name)
				continue
			}
			p.resolved.Conditions = append(p.resolved.Conditions, c)
		}
	}
	for _, r := range l.slos {
		obj := r.obj
		if r.indicatorRef != "" {
			sli, ok := l.slis[r.indicatorRef]
			if !ok {
				l.add(r.refPos, "spec.indicatorRef", "no SLI named %q", r.indicatorRef)
				continue
			}
			obj.SLI = sli.sli
			if r.indicator == nil {
				obj.SLI.Pos = sli.sli.Pos
			}
		}
		if len(obj.SLI.Queries()) == 0 {
			continue // its SLI had problems, already reported
		}
		if err := checkOneSourceType(obj.SLI); err != nil {
			l.add(obj.SLI.Pos, "ratioMetric", "%v", err)
			continue
		}
		l.osSlices(r, &obj)
		for i, name := range r.policies {
			if _, ok := l.policies[name]; !ok {
				l.add(r.policyPos[i], "spec.alertPolicies", "no AlertPolicy named %q", name)
			}
		}
		obj.Alerting.Policies = r.policies
		if obj.Window == (Window{}) {
			continue
		}
		if p := groupSourceProblem(obj); p != "" { // group.go
			l.add(obj.Pos, "groupBy", "%s", p)
			continue
		}
		l.objectives = append(l.objectives, obj.withQueryGrouping())
	}
	for _, g := range l.gates {
		found := false
		for _, o := range l.objectives {
			found = found || o.Service == g.Service
		}
		if !found && g.Service != "" {
			l.add(g.Pos, "spec.service", "no SLO has service %q", g.Service)
		}
	}
}

func checkOneSourceType(s SLI) error {
	qs := s.Queries()
	for _, q := range qs[1:] {
		if q.Source != qs[0].Source && q.Source != "" && qs[0].Source != "" {
			return fmt.Errorf("good, bad and total must come from the same kind of source, got %s and %s", qs[0].Source, q.Source)
		}
	}
	return nil
}

func (l *loader) resolveQuery(r sourceRef) {
	q, d := r.q, r.doc
	typ := r.typ
	if r.name != "" {
		ds, ok := l.dataSrc[r.name]
		if !ok {
			d.errorf(r.field+".metricSourceRef", "no DataSource named %q", r.name)
			return
		}
		q.DataSource = r.name
		q.AllowPartial = ds.AllowPartial
		if typ == "" {
			typ = string(ds.Type)
		} else if t, _ := sourceType(typ); t != ds.Type {
			d.errorf(r.field+".type", "type %s differs from DataSource %q's type %s", typ, r.name, ds.Type)
			return
		}
	}
	st, ok := sourceType(typ)
	if !ok {
		d.errorf(r.field+".type", "unsupported metric source type %q (want Prometheus, Elasticsearch or Tempo)", typ)
		return
	}
	q.Source = st
	path := r.field + ".spec"
	if r.spec.Kind == 0 {
		d.errorf(path, "required")
		return
	}
	switch st {
	case SourcePrometheus:
		var s promSpec
		if !d.decode(r.spec, &s, path) {
			return
		}
		q.PromQL, q.Windowed = s.Query, IsWindowed(s.Query)
		q.Pos = d.pos(path + ".query")
		if s.PartialResponse != "" {
			allow, err := partialResponse(s.PartialResponse)
			if err != nil {
				d.errorf(path+".partialResponse", "%v", err)
			}
			q.AllowPartial = allow
		}
		if r.raw && !q.Windowed && strings.TrimSpace(s.Query) != "" {
			// Without a window the query would be read as counters and
			// wrapped in increase(): a ratio gauge steady at 5 % would
			// read as about 0.
			d.errorf(path+".query", "a raw ratio must use {{.window}} for its range, e.g. sum(rate(errors_total[{{.window}}])) / sum(rate(requests_total[{{.window}}]))")
			return
		}
		if err := CheckPromQL(q); err != nil {
			d.errorf(path+".query", "%v", err)
		}
	case SourceElasticsearch:
		var s esSpec
		if !d.decode(r.spec, &s, path) {
			return
		}
		es := &ElasticsearchQuery{Index: s.Index, TimestampField: s.TimestampField}
		if es.Index == "" {
			d.errorf(path+".index", "required: an index name or pattern")
		} else if strings.ContainsAny(es.Index, " /?#\"\\") {
			d.errorf(path+".index", "invalid index %q", es.Index)
		}
		if es.TimestampField == "" {
			es.TimestampField = "@timestamp"
		}
		if s.Query.Kind != 0 {
			var v any
			if err := s.Query.Decode(&v); err != nil {
				d.errorf(path+".query", "%v", err)
				return
			}
			if str, isStr := v.(string); isStr {
				if err := json.Unmarshal([]byte(str), &v); err != nil {
					d.errorf(path+".query", "not a JSON query: %v", err)
					return
				}
			}
			if _, isMap := v.(map[string]any); !isMap {
				d.errorf(path+".query", "must be an Elasticsearch query clause (a mapping such as {term: {service.name: checkout}})")
				return
			}
			b, err := json.Marshal(v)
			if err != nil {
				d.errorf(path+".query", "%v", err)
				return
			}
			es.Query = string(b)
		}
		q.Elasticsearch = es
	case SourceTempo:
		var s tempoSpec
		if !d.decode(r.spec, &s, path) {
			return
		}
		t := strings.TrimSpace(s.TraceQL)
		if t == "" {
			d.errorf(path+".traceql", "required: a TraceQL spanset filter such as {resource.service.name=\"checkout\"}")
			return
		}
		if !strings.HasPrefix(t, "{") || !strings.HasSuffix(t, "}") || strings.Count(t, "{") != 1 || strings.Count(t, "}") != 1 {
			d.errorf(path+".traceql", "must be a single spanset filter {...} with no pipeline, got %q", t)
			return
		}
		q.Tempo = &TempoQuery{TraceQL: t}
	}
}

// calendarWindow is a calendar window of unit in the time zone tz (UTC
// when empty); an unknown zone is an error at path.calendar.timeZone.
func (d *document) calendarWindow(path string, unit Calendar, tz string) (Window, bool) {
	w := Window{Calendar: unit, Location: time.UTC}
	if tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			d.errorf(path+".calendar.timeZone", "unknown time zone %q", tz)
			return Window{}, false
		}
		w.Location = loc
	}
	return w, true
}
