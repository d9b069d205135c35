package slo

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// describe writes the model of a set, one field a line, for golden files:
// what every format maps onto, so two forms of one SLO read the same.
func describe(set *Set, withPos bool) string {
	var b strings.Builder
	kv := func(indent, k string, m map[string]string) {
		if len(m) == 0 {
			return
		}
		keys := make([]string, 0, len(m))
		for key := range m {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		var parts []string
		for _, key := range keys {
			parts = append(parts, key+"="+m[key])
		}
		fmt.Fprintf(&b, "%s%s: %s\n", indent, k, strings.Join(parts, " "))
	}
	for _, o := range set.Objectives {
		fmt.Fprintf(&b, "objective %s\n", o.Name)
		if withPos {
			fmt.Fprintf(&b, "  format: %s at %s\n", o.Format, o.Pos)
		}
		fmt.Fprintf(&b, "  service: %s\n", o.Service)
		if o.DisplayName != "" {
			fmt.Fprintf(&b, "  displayName: %s\n", o.DisplayName)
		}
		if o.Description != "" {
			fmt.Fprintf(&b, "  description: %s\n", o.Description)
		}
		fmt.Fprintf(&b, "  target: %v\n  window: %s\n  budgeting: %s\n", o.Target, o.Window, o.Budgeting)
		kv("  ", "labels", o.Labels)
		describeGroup(&b, o)
		q := func(role string, q *Query) {
			if q == nil {
				return
			}
			fmt.Fprintf(&b, "  sli.%s: %s %q windowed=%v", role, q.Source, q.PromQL, q.Windowed)
			if q.AllowPartial {
				b.WriteString(" allowPartial")
			}
			if q.DataSource != "" {
				fmt.Fprintf(&b, " dataSource=%s", q.DataSource)
			}
			if q.Elasticsearch != nil {
				fmt.Fprintf(&b, " es=%+v", *q.Elasticsearch)
			}
			if q.Tempo != nil {
				fmt.Fprintf(&b, " traceql=%s", q.Tempo.TraceQL)
			}
			b.WriteString("\n")
		}
		q("good", o.SLI.Good)
		q("bad", o.SLI.Bad)
		q("total", o.SLI.Total)
		q("raw", o.SLI.Raw)
		if o.SLI.RawType != "" {
			fmt.Fprintf(&b, "  sli.rawType: %s\n", o.SLI.RawType)
		}
		describeThreshold(&b, o)
		a := o.Alerting
		if a.Name != "" {
			fmt.Fprintf(&b, "  alerting.name: %s\n", a.Name)
		}
		if a.PageDisabled || a.TicketDisabled {
			fmt.Fprintf(&b, "  alerting.disabled: page=%v ticket=%v\n", a.PageDisabled, a.TicketDisabled)
		}
		kv("  ", "alerting.labels", a.Labels)
		kv("  ", "alerting.annotations", a.Annotations)
		for _, sev := range []Severity{SeverityPage, SeverityTicket} {
			kv("  ", "alerting."+string(sev)+".labels", a.SeverityLabels[sev])
			kv("  ", "alerting."+string(sev)+".annotations", a.SeverityAnnotations[sev])
		}
		if len(a.Policies) > 0 {
			fmt.Fprintf(&b, "  alerting.policies: %s\n", strings.Join(a.Policies, " "))
		}
	}
	return b.String()
}

// Each file under testdata/formats is one form slogate reads, written from
// its spec; the model it loads to is in testdata/formats/NAME.golden.
func TestLoadReadsEveryFormIntoTheModel(t *testing.T) {
	files, _ := filepath.Glob("testdata/formats/*.yaml")
	if len(files) == 0 {
		t.Fatal("no format cases")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			set, err := Load(f)
			if err != nil {
				t.Fatalf("must load:\n%v", err)
			}
			if len(set.Objectives) == 0 {
				t.Fatal("no objective")
			}
			golden(t, "formats/"+name+".golden", []byte(describe(set, true)))
		})
	}
}

// Converting any form to OpenSLO and reading it back gives the same model.
func TestConvertingToOpenSLOAndBackGivesTheSameModel(t *testing.T) {
	files, _ := filepath.Glob("testdata/formats/*.yaml")
	cases := append([]string{"../examples/slos"}, files...)
	for _, f := range cases {
		t.Run(filepath.Base(f), func(t *testing.T) {
			set, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := ToOpenSLO(set)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse("converted.yaml", out)
			if err != nil {
				t.Fatalf("the conversion does not load:\n%v\n%s", err, out)
			}
			if want, got := describe(set, false), describe(back, false); want != got {
				t.Errorf("round trip differs:\n--- read\n%s\n--- converted and read back\n%s\n--- converted\n%s", want, got, out)
			}
		})
	}
}
