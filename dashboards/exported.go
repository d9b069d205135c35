package dashboards

import (
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/slo"
)

// Objectives measured from Elasticsearch or Tempo have no recording rules
// (Prometheus cannot query those sources), but slogate exports their
// figures at every scheduled evaluation on its own /metrics. Their
// dashboard rows read those series, which Prometheus has once it scrapes
// slogate:
//
//	slogate_slo_error_budget_remaining{service, slo}
//	slogate_slo_burn_rate{service, slo, window}
//	slogate_slo_sli{service, slo}
//
// The figures are as fresh as the evaluation schedule.
const (
	ExportedBudgetRemaining = "slogate_slo_error_budget_remaining"
	ExportedBurnRate        = "slogate_slo_burn_rate"
	ExportedSLI             = "slogate_slo_sli"
)

// exported selects one of slogate's exported series of an objective.
func exported(o slo.Objective, metric string) *parser.VectorSelector {
	return &parser.VectorSelector{
		Name: metric,
		LabelMatchers: []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, metric),
			labels.MustNewMatcher(labels.MatchEqual, "service", o.Service),
			labels.MustNewMatcher(labels.MatchEqual, "slo", o.Name),
		},
	}
}

// exportedPanels lays out the row of an objective not measured from
// Prometheus, from slogate's exported series.
func exportedPanels(o slo.Objective, id, y *int) ([]any, error) {
	title := o.Name
	if o.DisplayName != "" {
		title = o.DisplayName
	}
	next := func() int { *id++; return *id - 1 }
	note := fmt.Sprintf("Measured by slogate from %s at each scheduled evaluation and exported on its /metrics: Prometheus must scrape slogate.", o.SLI.SourceType())
	row := obj{
		"type":      "row",
		"id":        next(),
		"title":     fmt.Sprintf("%s — %s over %s (%s, via slogate)", title, percent(o.Target), o.Window, o.SLI.SourceType()),
		"collapsed": false,
		"gridPos":   obj{"h": 1, "w": 24, "x": 0, "y": *y},
		"panels":    []any{},
	}
	*y++
	var errs []error
	remaining, err := target("A", "{{slo}}", exported(o, ExportedBudgetRemaining))
	errs = append(errs, err)
	stat := obj{
		"type": "stat", "id": next(), "title": "Error budget remaining",
		"description": "Fraction of the error budget left over the SLO window. Negative: overspent. " + note,
		"datasource":  datasource,
		"gridPos":     obj{"h": 8, "w": 6, "x": 0, "y": *y},
		"targets":     []any{remaining},
		"fieldConfig": obj{
			"defaults": obj{
				"unit": "percentunit", "decimals": 1, "color": obj{"mode": "thresholds"},
				"thresholds": obj{"mode": "absolute", "steps": []any{
					obj{"color": "red", "value": nil}, obj{"color": "orange", "value": 0}, obj{"color": "green", "value": 0.25},
				}},
			},
			"overrides": []any{},
		},
		"options": obj{
			"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode":     "background", "graphMode": "area", "justifyMode": "auto", "orientation": "auto", "textMode": "auto",
		},
	}
	burnTarget, err := target("A", "{{window}}", exported(o, ExportedBurnRate))
	errs = append(errs, err)
	burn := timeseries(next(), "Burn rate per window", "Error ratio over each window divided by the error budget. "+note,
		obj{"h": 8, "w": 9, "x": 6, "y": *y}, []any{burnTarget}, obj{
			"unit": "short", "min": 0, "color": obj{"mode": "palette-classic"},
			"thresholds": obj{"mode": "absolute", "steps": []any{obj{"color": "green", "value": nil}, obj{"color": "red", "value": 1}}},
			"custom":     timeseriesCustom(),
		})
	sliTarget, err := target("A", "SLI over "+o.Window.String(), exported(o, ExportedSLI))
	errs = append(errs, err)
	goal, err := target("B", "target", number(o.Target))
	errs = append(errs, err)
	sli := timeseries(next(), "SLI vs target", fmt.Sprintf("Fraction of good events; the target is %s. %s", percent(o.Target), note),
		obj{"h": 8, "w": 9, "x": 15, "y": *y}, []any{sliTarget, goal}, obj{
			"unit": "percentunit", "decimals": 3, "max": 1, "color": obj{"mode": "palette-classic"},
			"thresholds": obj{"mode": "absolute", "steps": []any{obj{"color": "red", "value": nil}, obj{"color": "green", "value": o.Target}}},
			"custom":     timeseriesCustom(),
		})
	*y += 8
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return []any{row, stat, burn, sli}, nil
}
