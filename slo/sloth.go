package slo

import (
	"fmt"
	"strings"
)

// Sloth prometheus/v1 files (https://sloth.dev/specs/default/).

type slothFile struct {
	Version string            `yaml:"version"`
	Service string            `yaml:"service"`
	Labels  map[string]string `yaml:"labels"`
	SLOs    []slothSLO        `yaml:"slos"`
}

type slothSLO struct {
	Name        string            `yaml:"name"`
	Objective   float64           `yaml:"objective"`
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`
	SLI         slothSLI          `yaml:"sli"`
	Alerting    slothAlerting     `yaml:"alerting"`
}

type slothSLI struct {
	Events *slothEvents `yaml:"events"`
	Raw    *slothRaw    `yaml:"raw"`
	Plugin *slothPlugin `yaml:"plugin"`
}

type slothEvents struct {
	ErrorQuery string `yaml:"error_query"`
	TotalQuery string `yaml:"total_query"`
}

type slothRaw struct {
	ErrorRatioQuery string `yaml:"error_ratio_query"`
}

type slothPlugin struct {
	ID      string            `yaml:"id"`
	Options map[string]string `yaml:"options"`
}

type slothAlerting struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	PageAlert   slothAlert        `yaml:"page_alert"`
	TicketAlert slothAlert        `yaml:"ticket_alert"`
}

type slothAlert struct {
	Disable     bool              `yaml:"disable"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// SlothWindow is the SLO period of Sloth files, which do not name one
// (Sloth's own default).
const SlothWindow = 30 * Day

func (d *document) sloth() {
	var f slothFile
	if !d.decode(d.root, &f, "") {
		return
	}
	d.slothSLOs(f.Service, f.Labels, f.SLOs, "", slothFileFields)
}

// slothFields are the spellings of Sloth's query fields in one of its
// forms: snake_case in prometheus/v1 files, camelCase in the CRD.
type slothFields struct {
	errorQuery, totalQuery, errorRatioQuery, format string
}

var slothFileFields = slothFields{"error_query", "total_query", "error_ratio_query", "sloth"}

// slothSLOs maps the SLOs of a Sloth service (file or CRD spec at prefix)
// onto objectives named <service>-<slo name>, as Sloth names them.
func (d *document) slothSLOs(service string, labels map[string]string, slos []slothSLO, prefix string, names slothFields) {
	if !d.checkName(service, prefix+"service") {
		return
	}
	if len(slos) == 0 {
		d.errorf(prefix+"slos", "at least one SLO is required")
	}
	for i, s := range slos {
		path := fmt.Sprintf("%sslos[%d]", prefix, i)
		if !d.checkName(s.Name, path+".name") {
			continue
		}
		obj := Objective{
			Name:        service + "-" + s.Name,
			Service:     service,
			Description: s.Description,
			Target:      fromPercent(s.Objective),
			Window:      Rolling(SlothWindow),
			Budgeting:   "Occurrences",
			Labels:      merge(labels, s.Labels),
			Format:      names.format,
			Pos:         d.pos(path + ".name"),
			Alerting: Alerting{
				Name:           s.Alerting.Name,
				Labels:         s.Alerting.Labels,
				Annotations:    s.Alerting.Annotations,
				PageDisabled:   s.Alerting.PageAlert.Disable,
				TicketDisabled: s.Alerting.TicketAlert.Disable,
				SeverityLabels: map[Severity]map[string]string{
					SeverityPage: s.Alerting.PageAlert.Labels, SeverityTicket: s.Alerting.TicketAlert.Labels,
				},
				SeverityAnnotations: map[Severity]map[string]string{
					SeverityPage: s.Alerting.PageAlert.Annotations, SeverityTicket: s.Alerting.TicketAlert.Annotations,
				},
			},
		}
		if !(s.Objective > 0 && s.Objective < 100) {
			d.errorf(path+".objective", "must be a percentage in (0,100), got %v", s.Objective)
		}
		obj.SLI.Name = obj.Name
		obj.SLI.Pos = d.pos(path + ".sli")
		ev, raw := s.SLI.Events, s.SLI.Raw
		switch {
		case s.SLI.Plugin != nil:
			d.errorf(path+".sli.plugin", "Sloth SLI plugins are not supported: write the events or raw queries")
			continue
		case ev != nil && raw != nil:
			d.errorf(path+".sli", "give either events or raw, not both")
			continue
		case ev != nil:
			obj.SLI.Bad = d.slothQuery(ev.ErrorQuery, path+".sli.events."+names.errorQuery)
			obj.SLI.Total = d.slothQuery(ev.TotalQuery, path+".sli.events."+names.totalQuery)
			if obj.SLI.Bad == nil || obj.SLI.Total == nil {
				continue
			}
		case raw != nil:
			obj.SLI.Raw = d.slothQuery(raw.ErrorRatioQuery, path+".sli.raw."+names.errorRatioQuery)
			obj.SLI.RawType = RawFailure
			if obj.SLI.Raw == nil {
				continue
			}
		default:
			d.errorf(path+".sli", "events or raw is required")
			continue
		}
		if d.l.declare("SLO", obj.Name, obj.Pos, path+".name") {
			d.l.slos = append(d.l.slos, &rawSLO{pos: obj.Pos, file: d.file, name: obj.Name, obj: obj})
		}
	}
}

// slothQuery checks one of Sloth's queries, which must use {{.window}}.
func (d *document) slothQuery(text, path string) *Query {
	text = strings.TrimSpace(text)
	if text == "" {
		d.errorf(path, "required")
		return nil
	}
	if !strings.Contains(text, "{{.window}}") && !strings.Contains(text, "{{ .window }}") {
		d.errorf(path, "must use {{.window}} for its range, e.g. rate(http_requests_total[{{.window}}])")
		return nil
	}
	q := &Query{Source: SourcePrometheus, PromQL: text, Windowed: true, Pos: d.pos(path)}
	if err := CheckPromQL(q); err != nil {
		d.errorf(path, "%v", err)
		return nil
	}
	return q
}

func merge(a, b map[string]string) map[string]string {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// GatePolicy wire shape (apiVersion slogate.dev/v1).
type gatePolicyDoc struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   osMetadata `yaml:"metadata"`
	Spec       struct {
		Service      string   `yaml:"service"`
		Environments []string `yaml:"environments"`
		Budget       *struct {
			MinRemaining *float64 `yaml:"minRemaining"`
			Disabled     bool     `yaml:"disabled"`
			Mode         string   `yaml:"mode"`
		} `yaml:"budget"`
		Verification *struct {
			MinDuration  string   `yaml:"minDuration"`
			MinEvents    *float64 `yaml:"minEvents"`
			MaxBurnRate  *float64 `yaml:"maxBurnRate"`
			VersionLabel string   `yaml:"versionLabel"`
			Disabled     bool     `yaml:"disabled"`
			Mode         string   `yaml:"mode"`
		} `yaml:"verification"`
		Canary *struct {
			Tolerance  *float64 `yaml:"tolerance"`
			Confidence *float64 `yaml:"confidence"`
			Mode       string   `yaml:"mode"`
		} `yaml:"canary"`
		OnNoData      string `yaml:"onNoData"`
		OnSourceError string `yaml:"onSourceError"`
		Mode          string `yaml:"mode"`
	} `yaml:"spec"`
}

// ValidLabelName reports whether s is a Prometheus label name
// ([a-zA-Z_][a-zA-Z0-9_]*, the name every Prometheus version accepts).
func ValidLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (d *document) gatePolicy() {
	var doc gatePolicyDoc
	if !d.decode(d.root, &doc, "") || !d.checkName(doc.Metadata.Name, "metadata.name") {
		return
	}
	spec := doc.Spec
	p := DefaultPolicy(spec.Service)
	p.Name, p.Default, p.Pos = doc.Metadata.Name, false, d.pos("metadata.name")
	p.Environments = spec.Environments
	if spec.Service == "" {
		d.errorf("spec.service", "required")
	}
	for i, e := range spec.Environments {
		if e == "" {
			d.errorf(fmt.Sprintf("spec.environments[%d]", i), "must not be empty")
		}
	}
	p.Mode = d.mode("spec.mode", spec.Mode)
	if b := spec.Budget; b != nil {
		p.Budget.Disabled = b.Disabled
		p.Budget.Mode = d.mode("spec.budget.mode", b.Mode)
		if b.MinRemaining != nil {
			p.Budget.MinRemaining = *b.MinRemaining
			if !(*b.MinRemaining >= 0 && *b.MinRemaining < 1) {
				d.errorf("spec.budget.minRemaining", "must be in [0,1), got %v", *b.MinRemaining)
			}
		}
	}
	if v := spec.Verification; v != nil {
		p.Verification.Disabled = v.Disabled
		p.Verification.Mode = d.mode("spec.verification.mode", v.Mode)
		if v.MinDuration != "" {
			dur, err := ParseDuration(v.MinDuration)
			if err != nil {
				d.errorf("spec.verification.minDuration", "%v", err)
			}
			p.Verification.MinDuration = dur
		}
		if v.MinEvents != nil {
			p.Verification.MinEvents = *v.MinEvents
			if *v.MinEvents < 0 {
				d.errorf("spec.verification.minEvents", "must not be negative, got %v", *v.MinEvents)
			}
		}
		if v.MaxBurnRate != nil {
			p.Verification.MaxBurnRate = *v.MaxBurnRate
			if !(*v.MaxBurnRate > 0) {
				d.errorf("spec.verification.maxBurnRate", "must be positive, got %v", *v.MaxBurnRate)
			}
		}
		if v.VersionLabel != "" {
			p.Verification.VersionLabel = v.VersionLabel
			if !ValidLabelName(v.VersionLabel) {
				d.errorf("spec.verification.versionLabel", "invalid label name %q", v.VersionLabel)
			}
		}
	}
	if c := spec.Canary; c != nil {
		p.Canary = &CanaryPolicy{Tolerance: DefaultTolerance, Confidence: DefaultConfidence}
		p.Canary.Mode = d.mode("spec.canary.mode", c.Mode)
		if c.Tolerance != nil {
			p.Canary.Tolerance = *c.Tolerance
			if !(*c.Tolerance >= 0 && *c.Tolerance < 1) {
				d.errorf("spec.canary.tolerance", "must be in [0,1), got %v", *c.Tolerance)
			}
		}
		if c.Confidence != nil {
			p.Canary.Confidence = *c.Confidence
			if !(*c.Confidence >= 0.5 && *c.Confidence < 1) {
				d.errorf("spec.canary.confidence", "must be in [0.5,1), got %v", *c.Confidence)
			}
		}
	}
	switch OnNoData(spec.OnNoData) {
	case "":
	case NoDataHalt, NoDataWait:
		p.OnNoData = OnNoData(spec.OnNoData)
	default:
		d.errorf("spec.onNoData", "want halt or wait, got %q (missing data is never promote)", spec.OnNoData)
	}
	switch OnSourceError(spec.OnSourceError) {
	case "":
	case SourceErrorError, SourceErrorHalt, SourceErrorWait:
		p.OnSourceError = OnSourceError(spec.OnSourceError)
	default:
		d.errorf("spec.onSourceError", "want error, halt or wait, got %q (a failed source is never promote)", spec.OnSourceError)
	}
	if !d.l.declare("GatePolicy", p.Name, p.Pos, "metadata.name") {
		return
	}
	for _, other := range d.l.gates {
		if other.Service == p.Service && overlaps(other.Environments, p.Environments) {
			d.errorf("spec.environments", "GatePolicy %q already covers service %q in these environments (%s)", other.Name, p.Service, other.Pos)
			return
		}
	}
	d.l.gates = append(d.l.gates, p)
}

// mode reads a check's or a policy's mode: enforce (the default) or
// dryRun.
func (d *document) mode(field, m string) Mode {
	switch Mode(m) {
	case "", ModeEnforce:
		return ModeEnforce
	case ModeDryRun:
		return ModeDryRun
	}
	d.errorf(field, "want enforce or dryRun, got %q", m)
	return ModeEnforce
}

// overlaps reports whether two policies of a service claim the same
// environment. A policy with no environments is the service's catch-all:
// two catch-alls overlap; a catch-all and a specific one do not (the
// specific one wins where it applies).
func overlaps(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}
