package slo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Conversion to OpenSLO v1 (slogate convert --to openslo). Every objective
// becomes one SLO document with an inline indicator, so each is whole on
// its own; DataSources, AlertPolicies and AlertNotificationTargets follow.
// What OpenSLO has no field for is carried by slogate's annotations:
// slogate.dev/groupBy and slogate.dev/maxGroups (group.go) and
// slogate.dev/alerting (Sloth's and Pyrra's alerting block, as JSON).
// Reading the output back gives the same model (the round-trip test).

// AlertingAnnotation carries an objective's alerting settings (alert
// name, labels, annotations, a severity turned off, per-severity labels
// and annotations) in an OpenSLO SLO's metadata.annotations, as JSON.
const AlertingAnnotation = "slogate.dev/alerting"

type alertingJSON struct {
	Name        string            `json:"name,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Page        *severityJSON     `json:"page,omitempty"`
	Ticket      *severityJSON     `json:"ticket,omitempty"`
}

type severityJSON struct {
	Disable     bool              `json:"disable,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func (a Alerting) annotation() (string, bool) {
	j := alertingJSON{Name: a.Name, Labels: a.Labels, Annotations: a.Annotations}
	sev := func(s Severity, off bool) *severityJSON {
		v := &severityJSON{Disable: off, Labels: a.SeverityLabels[s], Annotations: a.SeverityAnnotations[s]}
		if !v.Disable && len(v.Labels) == 0 && len(v.Annotations) == 0 {
			return nil
		}
		return v
	}
	j.Page, j.Ticket = sev(SeverityPage, a.PageDisabled), sev(SeverityTicket, a.TicketDisabled)
	if j.Name == "" && len(j.Labels) == 0 && len(j.Annotations) == 0 && j.Page == nil && j.Ticket == nil {
		return "", false
	}
	b, _ := json.Marshal(j)
	return string(b), true
}

// alertingAnnotation reads slogate.dev/alerting.
func (d *document) alertingAnnotation(obj *Objective, ann map[string]string) {
	v, ok := ann[AlertingAnnotation]
	if !ok {
		return
	}
	var j alertingJSON
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		d.errorf("metadata.annotations."+AlertingAnnotation, "want a JSON object {name, labels, annotations, page: {disable, labels, annotations}, ticket: {...}}: %v", err)
		return
	}
	a := &obj.Alerting
	a.Name, a.Labels, a.Annotations = j.Name, j.Labels, j.Annotations
	for sev, s := range map[Severity]*severityJSON{SeverityPage: j.Page, SeverityTicket: j.Ticket} {
		if s == nil {
			continue
		}
		if sev == SeverityPage {
			a.PageDisabled = s.Disable
		} else {
			a.TicketDisabled = s.Disable
		}
		if len(s.Labels) > 0 {
			if a.SeverityLabels == nil {
				a.SeverityLabels = map[Severity]map[string]string{}
			}
			a.SeverityLabels[sev] = s.Labels
		}
		if len(s.Annotations) > 0 {
			if a.SeverityAnnotations == nil {
				a.SeverityAnnotations = map[Severity]map[string]string{}
			}
			a.SeverityAnnotations[sev] = s.Annotations
		}
	}
}

// Output shapes.

type outMeta struct {
	Name        string            `yaml:"name"`
	DisplayName string            `yaml:"displayName,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

type outDoc struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   outMeta `yaml:"metadata"`
	Spec       any     `yaml:"spec"`
}

type outSLO struct {
	Description     string          `yaml:"description,omitempty"`
	Service         string          `yaml:"service"`
	Indicator       *outIndicator   `yaml:"indicator,omitempty"`
	BudgetingMethod string          `yaml:"budgetingMethod"`
	TimeWindow      []outTimeWindow `yaml:"timeWindow"`
	Objectives      []outObjective  `yaml:"objectives"`
	AlertPolicies   []string        `yaml:"alertPolicies,omitempty"`
}

type outIndicator struct {
	Metadata outMeta `yaml:"metadata"`
	Spec     outSLI  `yaml:"spec"`
}

type outSLI struct {
	ThresholdMetric *outMetric `yaml:"thresholdMetric,omitempty"`
	RatioMetric     *outRatio  `yaml:"ratioMetric,omitempty"`
}

type outRatio struct {
	Counter *bool      `yaml:"counter,omitempty"`
	Good    *outMetric `yaml:"good,omitempty"`
	Bad     *outMetric `yaml:"bad,omitempty"`
	Total   *outMetric `yaml:"total,omitempty"`
	RawType string     `yaml:"rawType,omitempty"`
	Raw     *outMetric `yaml:"raw,omitempty"`
}

type outMetric struct {
	MetricSource outSource `yaml:"metricSource"`
}

type outSource struct {
	MetricSourceRef string         `yaml:"metricSourceRef,omitempty"`
	Type            string         `yaml:"type,omitempty"`
	Spec            map[string]any `yaml:"spec"`
}

type outTimeWindow struct {
	Duration  string `yaml:"duration"`
	IsRolling bool   `yaml:"isRolling"`
	Calendar  *struct {
		TimeZone string `yaml:"timeZone"`
	} `yaml:"calendar,omitempty"`
}

type outObjective struct {
	DisplayName     string        `yaml:"displayName,omitempty"`
	Op              string        `yaml:"op,omitempty"`
	Value           *float64      `yaml:"value,omitempty"`
	Target          float64       `yaml:"target"`
	TimeSliceTarget *float64      `yaml:"timeSliceTarget,omitempty"`
	TimeSliceWindow string        `yaml:"timeSliceWindow,omitempty"`
	Indicator       *outIndicator `yaml:"indicator,omitempty"`
	CompositeWeight *float64      `yaml:"compositeWeight,omitempty"`
}

var sourceTypeNames = map[SourceType]string{SourcePrometheus: "Prometheus", SourceElasticsearch: "Elasticsearch", SourceTempo: "Tempo"}

func outQuery(q *Query) *outMetric {
	if q == nil {
		return nil
	}
	src := outSource{Spec: map[string]any{}}
	if q.DataSource != "" {
		src.MetricSourceRef = q.DataSource
	} else {
		src.Type = sourceTypeNames[q.Source]
	}
	switch q.Source {
	case SourcePrometheus:
		src.Spec["query"] = q.PromQL
		if q.AllowPartial {
			src.Spec["partialResponse"] = partialAllow
		}
	case SourceElasticsearch:
		es := q.Elasticsearch
		src.Spec["index"] = es.Index
		src.Spec["timestampField"] = es.TimestampField
		if es.Query != "" {
			src.Spec["query"] = es.Query
		}
	case SourceTempo:
		src.Spec["traceql"] = q.Tempo.TraceQL
	}
	return &outMetric{MetricSource: src}
}

func outRatioOf(s SLI) *outRatio {
	if s.IsRaw() {
		return &outRatio{RawType: string(s.RawType), Raw: outQuery(s.Raw)}
	}
	yes := true
	return &outRatio{Counter: &yes, Good: outQuery(s.Good), Bad: outQuery(s.Bad), Total: outQuery(s.Total)}
}

func outWindow(w Window) outTimeWindow {
	if !w.IsCalendar() {
		return outTimeWindow{Duration: FormatDuration(w.Duration), IsRolling: true}
	}
	unit := map[Calendar]string{CalendarWeek: "1w", CalendarMonth: "1M", CalendarQuarter: "1Q", CalendarYear: "1Y"}[w.Calendar]
	tw := outTimeWindow{Duration: unit, Calendar: &struct {
		TimeZone string `yaml:"timeZone"`
	}{TimeZone: w.loc().String()}}
	return tw
}

// ToOpenSLO writes a set's objectives as OpenSLO v1 documents, with the
// DataSources, AlertPolicies and AlertNotificationTargets they name.
// GatePolicies are slogate's own and are not part of the output.
func ToOpenSLO(set *Set) ([]byte, error) {
	var docs []outDoc
	for _, o := range set.Objectives {
		docs = append(docs, sloDoc(o))
	}
	for _, name := range sortedNames(set.DataSources) {
		ds := set.DataSources[name]
		cd := map[string]any{}
		if ds.URL != "" {
			cd["url"] = ds.URL
		}
		if ds.AllowPartial {
			cd["partialResponse"] = partialAllow
		}
		spec := map[string]any{"type": sourceTypeNames[ds.Type]}
		if len(cd) > 0 {
			spec["connectionDetails"] = cd
		}
		docs = append(docs, outDoc{APIVersion: "openslo/v1", Kind: "DataSource", Metadata: outMeta{Name: name}, Spec: spec})
	}
	for _, name := range sortedNames(set.AlertPolicy) {
		p := set.AlertPolicy[name]
		var conds []any
		for _, c := range p.Conditions {
			cond := map[string]any{"kind": "burnrate", "op": c.Op, "threshold": c.Threshold, "lookbackWindow": FormatDuration(c.LookbackWindow)}
			if c.AlertAfter > 0 {
				cond["alertAfter"] = FormatDuration(c.AlertAfter)
			}
			conds = append(conds, map[string]any{
				"kind":     "AlertCondition",
				"metadata": map[string]any{"name": c.Name},
				"spec":     map[string]any{"severity": c.Severity, "condition": cond},
			})
		}
		var targets []any
		for _, t := range p.Targets {
			targets = append(targets, map[string]any{"targetRef": t})
		}
		spec := map[string]any{"conditions": conds}
		if len(targets) > 0 {
			spec["notificationTargets"] = targets
		}
		docs = append(docs, outDoc{APIVersion: "openslo/v1", Kind: "AlertPolicy", Metadata: outMeta{Name: name}, Spec: spec})
	}
	for _, name := range sortedNames(set.Targets) {
		t := set.Targets[name]
		spec := map[string]any{"target": t.Target}
		if t.Description != "" {
			spec["description"] = t.Description
		}
		docs = append(docs, outDoc{APIVersion: "openslo/v1", Kind: "AlertNotificationTarget", Metadata: outMeta{Name: name}, Spec: spec})
	}
	var b bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("objective %s: %w", d.Metadata.Name, err)
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sloDoc(o Objective) outDoc {
	meta := outMeta{Name: o.Name, DisplayName: o.DisplayName, Labels: o.Labels, Annotations: map[string]string{}}
	if o.IsGrouped() {
		meta.Annotations[GroupByAnnotation] = strings.Join(o.GroupBy, ",")
		if o.MaxGroups != DefaultMaxGroups {
			meta.Annotations[MaxGroupsAnnotation] = strconv.Itoa(o.MaxGroups)
		}
	}
	if a, ok := o.Alerting.annotation(); ok {
		meta.Annotations[AlertingAnnotation] = a
	}
	if len(meta.Annotations) == 0 {
		meta.Annotations = nil
	}
	ind := &outIndicator{Metadata: outMeta{Name: o.SLI.Name}}
	obj := outObjective{Target: o.Target}
	switch {
	case o.Threshold != nil:
		ind.Spec.ThresholdMetric = outQuery(o.Threshold.Metric)
		obj.Op, obj.Value = o.Threshold.Op, &o.Threshold.Value
		if o.Budgeting == BudgetTimeslices {
			obj.TimeSliceWindow = FormatDuration(o.TimeSlice.Window)
		}
	case o.SliceSLI != nil:
		ind.Spec.RatioMetric = outRatioOf(*o.SliceSLI)
		obj.TimeSliceWindow = FormatDuration(o.TimeSlice.Window)
		if o.Budgeting == BudgetTimeslices {
			obj.TimeSliceTarget = &o.TimeSlice.Target
			if o.TimeSlice.Op != "gte" {
				obj.Op = o.TimeSlice.Op
			}
		}
	default:
		ind.Spec.RatioMetric = outRatioOf(o.SLI)
	}
	spec := outSLO{
		Description: o.Description, Service: o.Service, BudgetingMethod: o.Budgeting,
		TimeWindow: []outTimeWindow{outWindow(o.Window)}, AlertPolicies: o.Alerting.Policies,
	}
	if o.CompositeWeight != 0 {
		obj.Indicator, obj.CompositeWeight = ind, &o.CompositeWeight
	} else {
		spec.Indicator = ind
	}
	spec.Objectives = []outObjective{obj}
	return outDoc{APIVersion: "openslo/v1", Kind: "SLO", Metadata: meta, Spec: spec}
}
