package slo

import (
	"fmt"
	"strings"
	"time"
)

// OpenSLO v1alpha SLOs, read as Sloth reads them: one objective per entry
// of spec.objectives, named <metadata.name>-<index>, each with its own
// target (spec field target, the Go field BudgetTarget of OpenSLO's oslo
// library, also accepted as budgetTarget) and a ratioMetrics SLI of
// Prometheus queries. v1alpha Service documents are read too.

type v1alphaDoc struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   osMetadata `yaml:"metadata"`
	Spec       struct {
		Description     string              `yaml:"description"`
		Service         string              `yaml:"service"`
		Indicator       *v1alphaIndicator   `yaml:"indicator"`
		TimeWindows     []v1alphaTimeWindow `yaml:"timeWindows"`
		BudgetingMethod string              `yaml:"budgetingMethod"`
		Objectives      []v1alphaObjective  `yaml:"objectives"`
	} `yaml:"spec"`
}

type v1alphaIndicator struct {
	ThresholdMetric *v1alphaMetric `yaml:"thresholdMetric"`
}

type v1alphaTimeWindow struct {
	Unit      string `yaml:"unit"`
	Count     int    `yaml:"count"`
	IsRolling *bool  `yaml:"isRolling"`
	Calendar  *struct {
		StartTime string `yaml:"startTime"`
		TimeZone  string `yaml:"timeZone"`
	} `yaml:"calendar"`
}

type v1alphaObjective struct {
	DisplayName     string   `yaml:"displayName"`
	Op              string   `yaml:"op"`
	Value           *float64 `yaml:"value"`
	Target          *float64 `yaml:"target"`
	BudgetTarget    *float64 `yaml:"budgetTarget"`
	TimeSliceTarget *float64 `yaml:"timeSliceTarget"`
	TimeSliceWindow string   `yaml:"timeSliceWindow"`
	RatioMetrics    *struct {
		Incremental *bool          `yaml:"incremental"`
		Good        *v1alphaMetric `yaml:"good"`
		Total       *v1alphaMetric `yaml:"total"`
	} `yaml:"ratioMetrics"`
}

type v1alphaMetric struct {
	Source    string            `yaml:"source"`
	QueryType string            `yaml:"queryType"`
	Query     string            `yaml:"query"`
	Metadata  map[string]string `yaml:"metadata"`
}

func (d *document) openSLOV1alpha(kind string) {
	switch kind {
	case "SLO":
	case "Service":
		var doc osDoc[osServiceSpec]
		if d.decode(d.root, &doc, "") && d.checkName(doc.Metadata.Name, "metadata.name") &&
			d.l.declare("Service", doc.Metadata.Name, d.pos("metadata.name"), "metadata.name") {
			d.l.services[doc.Metadata.Name] = Service{
				Name: doc.Metadata.Name, DisplayName: doc.Metadata.DisplayName,
				Description: doc.Spec.Description, Pos: d.pos("metadata.name"),
			}
		}
		return
	default:
		d.errorf("kind", "unknown kind %q for openslo/v1alpha (want SLO or Service)", kind)
		return
	}
	var doc v1alphaDoc
	if !d.decode(d.root, &doc, "") {
		return
	}
	named := d.checkName(doc.Metadata.Name, "metadata.name")
	spec := doc.Spec
	if !d.checkName(spec.Service, "spec.service") {
		named = false
	}
	switch spec.BudgetingMethod {
	case "", "Occurrences":
	case "Timeslices":
		d.errorf("spec.budgetingMethod", "Timeslices is not supported for openslo/v1alpha: use Occurrences")
	default:
		d.errorf("spec.budgetingMethod", "unknown budgeting method %q (want Occurrences)", spec.BudgetingMethod)
	}
	if spec.Indicator != nil && spec.Indicator.ThresholdMetric != nil {
		d.errorf("spec.indicator.thresholdMetric", "v1alpha threshold SLIs are not supported: write an openslo/v1 thresholdMetric SLI")
		return
	}
	window, ok := d.v1alphaWindow(spec.TimeWindows)
	if len(spec.Objectives) == 0 {
		d.errorf("spec.objectives", "at least one objective is required")
		return
	}
	for i, o := range spec.Objectives {
		path := fmt.Sprintf("spec.objectives[%d]", i)
		obj := Objective{
			Name:        fmt.Sprintf("%s-%d", doc.Metadata.Name, i),
			DisplayName: doc.Metadata.DisplayName,
			Service:     spec.Service,
			Description: spec.Description,
			Window:      window,
			Budgeting:   "Occurrences",
			Labels:      labelsOf(&doc.Metadata.Labels),
			Format:      "openslo-v1alpha",
			Pos:         d.pos(path),
		}
		if o.DisplayName != "" {
			obj.DisplayName = o.DisplayName
		}
		if !d.groupAnnotations(&obj, doc.Metadata.Annotations) {
			continue
		}
		target := o.Target
		switch {
		case o.Target != nil && o.BudgetTarget != nil:
			d.errorf(path+".budgetTarget", "give either target or budgetTarget, not both")
			continue
		case o.BudgetTarget != nil:
			target = o.BudgetTarget
		case target == nil:
			d.errorf(path+".target", "required: the fraction of good events wanted, in (0,1), e.g. 0.999")
			continue
		}
		obj.Target = *target
		d.checkTarget(obj.Target, path+".target")
		if o.Op != "" || o.TimeSliceTarget != nil || o.TimeSliceWindow != "" {
			d.errorf(path+".op", "v1alpha threshold and time-slice objectives are not supported: use ratioMetrics with a target")
			continue
		}
		// value is documentation in a ratio objective (OpenSLO's own
		// examples set it); it is not read.
		rm := o.RatioMetrics
		if rm == nil {
			d.errorf(path+".ratioMetrics", "required: good and total queries")
			continue
		}
		obj.SLI = SLI{Name: obj.Name, Pos: d.pos(path + ".ratioMetrics")}
		obj.SLI.Good = d.v1alphaQuery(rm.Good, path+".ratioMetrics.good")
		obj.SLI.Total = d.v1alphaQuery(rm.Total, path+".ratioMetrics.total")
		if obj.SLI.Good == nil || obj.SLI.Total == nil || !ok || !named {
			continue
		}
		if d.l.declare("SLO", obj.Name, obj.Pos, path) {
			d.l.slos = append(d.l.slos, &rawSLO{pos: obj.Pos, file: d.file, name: obj.Name, obj: obj})
		}
	}
}

// v1alphaQuery reads one v1alpha metric: a Prometheus (or Sloth) PromQL
// query, with {{.window}} as Sloth writes it, or a counter expression.
func (d *document) v1alphaQuery(m *v1alphaMetric, path string) *Query {
	if m == nil {
		d.errorf(path, "required")
		return nil
	}
	switch strings.ToLower(m.Source) {
	case "prometheus", "sloth":
	case "":
		d.errorf(path+".source", "required: prometheus")
		return nil
	default:
		d.errorf(path+".source", "unsupported source %q for openslo/v1alpha (want prometheus)", m.Source)
		return nil
	}
	if qt := strings.ToLower(m.QueryType); qt != "promql" && qt != "" {
		d.errorf(path+".queryType", "unsupported query type %q (want promql)", m.QueryType)
		return nil
	}
	text := strings.TrimSpace(m.Query)
	if text == "" {
		d.errorf(path+".query", "required")
		return nil
	}
	q := &Query{Source: SourcePrometheus, PromQL: text, Windowed: IsWindowed(text), Pos: d.pos(path + ".query")}
	if err := CheckPromQL(q); err != nil {
		d.errorf(path+".query", "%v", err)
		return nil
	}
	return q
}

// v1alphaWindow reads timeWindows: none is Sloth's 30 days; a rolling
// window in Minute, Hour, Day or Week units; a calendar window of one
// Week, Month, Quarter or Year.
func (d *document) v1alphaWindow(tws []v1alphaTimeWindow) (Window, bool) {
	switch len(tws) {
	case 0:
		return Rolling(SlothWindow), true
	case 1:
	default:
		d.errorf("spec.timeWindows", "exactly one time window is allowed, got %d", len(tws))
		return Window{}, false
	}
	tw, path := tws[0], "spec.timeWindows[0]"
	if tw.Count <= 0 {
		d.errorf(path+".count", "must be a positive whole number, got %d", tw.Count)
		return Window{}, false
	}
	rolling := tw.IsRolling != nil && *tw.IsRolling || tw.IsRolling == nil && tw.Calendar == nil
	if rolling {
		units := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": Day, "week": Week}
		u, known := units[strings.ToLower(tw.Unit)]
		if !known {
			d.errorf(path+".unit", "unsupported rolling unit %q (want Minute, Hour, Day or Week)", tw.Unit)
			return Window{}, false
		}
		dur := time.Duration(tw.Count) * u
		if problem := shortWindowProblem(dur); problem != "" {
			d.errorf(path+".count", "%s", problem)
			return Window{}, false
		}
		return Rolling(dur), true
	}
	units := map[string]Calendar{"week": CalendarWeek, "month": CalendarMonth, "quarter": CalendarQuarter, "year": CalendarYear}
	c, known := units[strings.ToLower(tw.Unit)]
	if !known || tw.Count != 1 {
		d.errorf(path+".unit", "calendar window %d %s not supported: want one Week, Month, Quarter or Year", tw.Count, tw.Unit)
		return Window{}, false
	}
	tz := ""
	if tw.Calendar != nil {
		tz = tw.Calendar.TimeZone
	}
	return d.calendarWindow(path, c, tz)
}
