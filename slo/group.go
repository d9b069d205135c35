package slo

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// Per-label objectives (Pyrra's grouping; slogate.dev/groupBy in the
// other forms). A grouped objective is one objective per value of its
// grouping labels, discovered from the source when it is measured: each
// value has its own budget, burn rates and alert tiers, under the name
// GroupName(name, value), e.g. api-errors{route="/checkout"}. Its queries
// carry the value as fixed matchers (Query.Fixed); the generated rules keep
// the labels in every aggregation (Query.GroupBy), so the recorded ratios
// and the alerts are per value too. Prometheus only.

// Annotations of slogate's grouping extension, on metadata.annotations of
// OpenSLO (v1 and v1alpha) and Sloth CRD documents: a comma-separated list
// of label names, and the most values measured (default DefaultMaxGroups).
const (
	GroupByAnnotation   = "slogate.dev/groupBy"
	MaxGroupsAnnotation = "slogate.dev/maxGroups"
)

// DefaultMaxGroups bounds the values of a grouped objective.
const DefaultMaxGroups = 100

// IsGrouped reports whether the objective is evaluated per label value.
func (o Objective) IsGrouped() bool { return len(o.GroupBy) > 0 }

// GroupName names one value's objective: name{l1="v1",l2="v2"}.
func GroupName(name string, group Scope) string {
	var parts []string
	for _, k := range group.Keys() {
		parts = append(parts, k+"="+strconv.Quote(group[k]))
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// BaseName is the grouped objective's name of a value's name (the name
// itself when it names no value).
func BaseName(name string) string {
	if i := strings.IndexByte(name, '{'); i > 0 && strings.HasSuffix(name, "}") {
		return name[:i]
	}
	return name
}

// ForGroup returns the objective of one value of its grouping labels:
// every query narrowed to the value, the name and labels carrying it.
func (o Objective) ForGroup(group Scope) Objective {
	g := make(Scope, len(group))
	for k, v := range group {
		g[k] = v
	}
	fix := func(q *Query) *Query {
		if q == nil {
			return nil
		}
		c := *q
		c.Fixed = g
		return &c
	}
	fixSLI := func(s SLI) SLI {
		s.Good, s.Bad, s.Total, s.Raw, s.Metric = fix(s.Good), fix(s.Bad), fix(s.Total), fix(s.Raw), fix(s.Metric)
		return s
	}
	out := o
	out.Name = GroupName(o.Name, g)
	out.SLI = fixSLI(o.SLI)
	out.SLI.Name = out.Name
	if o.SliceSLI != nil {
		s := fixSLI(*o.SliceSLI)
		out.SliceSLI = &s
	}
	if o.Threshold != nil {
		t := *o.Threshold
		t.Metric = fix(t.Metric)
		out.Threshold = &t
	}
	out.Group = g
	out.Labels = merge(o.Labels, g)
	return out
}

// GroupsExpr is the query that discovers the values of the grouping
// labels over r: group by (labels) (last_over_time(selector[r])) on the
// first selector of the SLI's total (or raw, or threshold metric) query,
// whatever the query aggregates away. Every series seen in the range
// counts, even one gone quiet since.
func (o Objective) GroupsExpr(r Range) (parser.Expr, error) {
	q := o.SLI.Total
	if q == nil {
		q = o.SLI.Raw
	}
	if o.Threshold != nil {
		q = o.Threshold.Metric
	}
	if o.SliceSLI != nil {
		if q = o.SliceSLI.Total; q == nil {
			q = o.SliceSLI.Raw
		}
	}
	if q == nil || q.Source != SourcePrometheus {
		return nil, fmt.Errorf("objective %s: grouping needs a Prometheus query", o.Name)
	}
	text := q.PromQL
	if q.Windowed {
		var err error
		if text, err = RenderWindow(text, time.Minute); err != nil {
			return nil, err
		}
	}
	expr, err := ParsePromQL(text)
	if err != nil {
		return nil, err
	}
	var sel *parser.VectorSelector
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && sel == nil {
			sel = &parser.VectorSelector{Name: vs.Name, LabelMatchers: vs.LabelMatchers}
		}
		return nil
	})
	if sel == nil {
		return nil, fmt.Errorf("objective %s: its query selects no series to find the values of %s in", o.Name, strings.Join(o.GroupBy, ", "))
	}
	window := r.Duration()
	if window < time.Minute {
		window = time.Minute
	}
	return &parser.AggregateExpr{
		Op:       parser.GROUP,
		Grouping: append([]string(nil), o.GroupBy...),
		Expr: &parser.Call{
			Func: parser.Functions["last_over_time"],
			Args: parser.Expressions{&parser.MatrixSelector{VectorSelector: sel, Range: window}},
		},
	}, nil
}

// SortGroups orders discovered values for stable names and output.
func SortGroups(gs []Scope) {
	sort.Slice(gs, func(i, j int) bool { return GroupName("", gs[i]) < GroupName("", gs[j]) })
}

// withFixed merges a query's fixed matchers (its group value) under the
// measurement's scope.
func (q *Query) withFixed(scope Scope) Scope {
	if len(q.Fixed) == 0 {
		return scope
	}
	out := make(Scope, len(q.Fixed)+len(scope))
	for k, v := range q.Fixed {
		out[k] = v
	}
	for k, v := range scope {
		out[k] = v
	}
	return out
}

// addGrouping keeps the grouping labels through every aggregation of expr
// (sum(x) becomes sum by (route) (x); sum by (le) keeps route too), so
// the generated rules record one series per value. An aggregation
// "without" labels keeps them unless it names them.
func addGrouping(expr parser.Expr, by []string) {
	if len(by) == 0 {
		return
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		a, ok := n.(*parser.AggregateExpr)
		if !ok {
			return nil
		}
		if a.Without {
			kept := a.Grouping[:0:0]
			for _, g := range a.Grouping {
				if !contains(by, g) {
					kept = append(kept, g)
				}
			}
			a.Grouping = kept
			return nil
		}
		for _, l := range by {
			if !contains(a.Grouping, l) {
				a.Grouping = append(a.Grouping, l)
			}
		}
		return nil
	})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// groupBy reads an objective's grouping labels (Pyrra's grouping, the
// slogate.dev/groupBy annotation) and the bound on their values.
func (d *document) groupBy(obj *Objective, names []string, path string) bool {
	if len(names) == 0 {
		return true
	}
	seen := map[string]bool{}
	for i, n := range names {
		field := fmt.Sprintf("%s[%d]", path, i)
		if _, ok := d.lines[field]; !ok {
			field = path
		}
		switch {
		case !ValidLabelName(n):
			d.errorf(field, "invalid label name %q", n)
			return false
		case seen[n]:
			d.errorf(field, "label %q given twice", n)
			return false
		case n == "le" || strings.HasPrefix(n, "__"):
			d.errorf(field, "cannot group by %q", n)
			return false
		}
		seen[n] = true
	}
	obj.GroupBy = names
	if obj.MaxGroups == 0 {
		obj.MaxGroups = DefaultMaxGroups
	}
	return true
}

// groupAnnotations reads slogate.dev/groupBy and slogate.dev/maxGroups from
// a document's metadata.annotations.
func (d *document) groupAnnotations(obj *Objective, ann map[string]string) bool {
	path := "metadata.annotations." + GroupByAnnotation
	v, ok := ann[GroupByAnnotation]
	if !ok {
		if _, max := ann[MaxGroupsAnnotation]; max {
			d.errorf("metadata.annotations."+MaxGroupsAnnotation, "needs %s", GroupByAnnotation)
			return false
		}
		return true
	}
	var names []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		d.errorf(path, "want label names separated by commas, e.g. route or route,tenant")
		return false
	}
	if m, set := ann[MaxGroupsAnnotation]; set {
		n, err := strconv.Atoi(strings.TrimSpace(m))
		if err != nil || n < 1 {
			d.errorf("metadata.annotations."+MaxGroupsAnnotation, "want a positive whole number, got %q", m)
			return false
		}
		obj.MaxGroups = n
	}
	return d.groupBy(obj, names, path)
}

// groupSourceProblem is the loader's check that a grouped objective is
// measured from Prometheus.
func groupSourceProblem(o Objective) string {
	if !o.IsGrouped() {
		return ""
	}
	if o.SLI.SourceType() != SourcePrometheus {
		return fmt.Sprintf("grouping (%s) is measured from Prometheus only, got %s", strings.Join(o.GroupBy, ", "), o.SLI.SourceType())
	}
	return ""
}

// withQueryGrouping copies a grouped objective's queries with GroupBy set,
// so every expression built from them keeps the grouping labels.
func (o Objective) withQueryGrouping() Objective {
	if !o.IsGrouped() {
		return o
	}
	set := func(q *Query) *Query {
		if q == nil {
			return nil
		}
		c := *q
		c.GroupBy = o.GroupBy
		return &c
	}
	setSLI := func(s SLI) SLI {
		s.Good, s.Bad, s.Total, s.Raw, s.Metric = set(s.Good), set(s.Bad), set(s.Total), set(s.Raw), set(s.Metric)
		return s
	}
	o.SLI = setSLI(o.SLI)
	if o.SliceSLI != nil {
		s := setSLI(*o.SliceSLI)
		o.SliceSLI = &s
	}
	if o.Threshold != nil {
		t := *o.Threshold
		t.Metric = set(t.Metric)
		o.Threshold = &t
	}
	return o
}

// GroupCounts is one value's measurement of a grouped SLI measured for all
// its values at once.
type GroupCounts struct {
	Group  Scope
	Counts Counts
}

// GroupKey identifies a value of the grouping labels.
func GroupKey(g Scope) string { return GroupName("", g) }
