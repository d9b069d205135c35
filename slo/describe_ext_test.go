package slo

import (
	"fmt"
	"strings"
	"time"
)

func describeGroup(b *strings.Builder, o Objective) {
	if len(o.GroupBy) > 0 {
		fmt.Fprintf(b, "  groupBy: %s (maxGroups %d)\n", strings.Join(o.GroupBy, ","), o.MaxGroups)
		if e, err := o.SLI.ErrorRatioExpr(5*time.Minute, nil); err == nil {
			fmt.Fprintf(b, "  errorRatio5m: %s\n", e)
		}
		if g, err := o.ForGroup(Scope{o.GroupBy[0]: "/a"}).SLI.ErrorRatioExpr(5*time.Minute, nil); err == nil {
			fmt.Fprintf(b, "  one value: %s\n", g)
		}
	}
}

func describeThreshold(b *strings.Builder, o Objective) {
	if o.CompositeWeight != 0 {
		fmt.Fprintf(b, "  compositeWeight: %v\n", o.CompositeWeight)
	}
	if t := o.Threshold; t != nil {
		fmt.Fprintf(b, "  threshold: %s on %s %q windowed=%v\n", t, t.Metric.Source, t.Metric.PromQL, t.Metric.Windowed)
	}
	if s := o.TimeSlice; s.Window != 0 {
		fmt.Fprintf(b, "  timeSlice: %s", FormatDuration(s.Window))
		if s.Op != "" {
			fmt.Fprintf(b, " good when ratio %s %v", s.Op, s.Target)
		}
		b.WriteString("\n")
	}
	if s := o.SliceSLI; s != nil {
		for _, q := range s.Queries() {
			fmt.Fprintf(b, "  sliceSLI: %s %q\n", q.Source, q.PromQL)
		}
	}
}
