// Package slo is slogate's domain: the SLO model, loading OpenSLO v1, Sloth
// prometheus/v1 and slogate GatePolicy files into it, validation, and the
// error-budget and burn-rate arithmetic. It does no I/O beyond reading SLO
// files and imports nothing else of slogate.
package slo

import (
	"fmt"
	"sort"
	"time"
)

// Position is where something was declared: a file and a 1-based line.
type Position struct {
	File string
	Line int
}

func (p Position) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// SourceType names the kind of telemetry backend an SLI query is sent to.
type SourceType string

const (
	SourcePrometheus    SourceType = "prometheus"
	SourceElasticsearch SourceType = "elasticsearch"
	SourceTempo         SourceType = "tempo"
)

// Objective is one service level objective: a target for an SLI over a
// time window.
type Objective struct {
	Name        string
	DisplayName string
	Service     string
	Description string
	// Target is the fraction of good events wanted, in (0,1).
	Target float64
	Window Window
	// Budgeting is the budgeting method: Occurrences, Timeslices or
	// RatioTimeslices (threshold.go).
	Budgeting string
	SLI       SLI
	// Threshold, TimeSlice and SliceSLI describe a threshold or
	// time-slice objective (threshold.go); SLI is then compiled from them.
	Threshold *Threshold
	TimeSlice TimeSlice
	SliceSLI  *SLI
	// GroupBy lists the labels the objective is evaluated per value of
	// (group.go); MaxGroups bounds the values.
	GroupBy   []string
	MaxGroups int
	// Group is the value of the grouping labels of one value's objective
	// (ForGroup); nil for any other.
	Group Scope
	// CompositeWeight is the OpenSLO compositeWeight of a composite part
	// (0 when not given).
	CompositeWeight float64
	Alerting        Alerting
	Labels          map[string]string
	// Format is the file format the objective came from: "openslo" or "sloth".
	Format string
	Pos    Position
}

// ErrorBudget is the fraction of events allowed to be bad: 1 − target.
func (o Objective) ErrorBudget() float64 { return 1 - o.Target }

// Tiers returns the multi-window multi-burn-rate alert tiers in force for
// the objective (the default table less the disabled severities).
func (o Objective) Tiers() []Tier {
	var out []Tier
	for _, t := range DefaultTiers {
		if t.Severity == SeverityPage && o.Alerting.PageDisabled {
			continue
		}
		if t.Severity == SeverityTicket && o.Alerting.TicketDisabled {
			continue
		}
		out = append(out, t)
	}
	return out
}

// Alerting holds the per-objective alerting settings (Sloth's alerting
// block; OpenSLO alert policies map onto it).
type Alerting struct {
	Name           string
	Labels         map[string]string
	Annotations    map[string]string
	PageDisabled   bool
	TicketDisabled bool
	// SeverityLabels and SeverityAnnotations are added to one severity's
	// alert only (Sloth's page_alert / ticket_alert labels and annotations).
	SeverityLabels      map[Severity]map[string]string
	SeverityAnnotations map[Severity]map[string]string
	// Policies names the OpenSLO AlertPolicies attached to the objective.
	Policies []string
}

// RawType tells what a raw ratio query measures.
type RawType string

const (
	RawSuccess RawType = "success" // the query returns the good ratio
	RawFailure RawType = "failure" // the query returns the error ratio
)

// SLI is a ratio of events. Either Total with exactly one of Good or Bad
// (event counts), or Raw with RawType (a ratio measured directly).
type SLI struct {
	Name    string
	Good    *Query
	Bad     *Query
	Total   *Query
	Raw     *Query
	RawType RawType
	// Metric is an OpenSLO thresholdMetric: a number per time slice
	// (threshold.go).
	Metric *Query
	Pos    Position
}

// IsRaw reports whether the SLI is a directly measured ratio.
func (s SLI) IsRaw() bool { return s.Raw != nil }

// Queries returns the SLI's queries, in a fixed order (good, bad, total, raw, metric),
// skipping absent ones.
func (s SLI) Queries() []*Query {
	var out []*Query
	for _, q := range []*Query{s.Good, s.Bad, s.Total, s.Raw, s.Metric} {
		if q != nil {
			out = append(out, q)
		}
	}
	return out
}

// SourceType returns the type of the backend the SLI is measured from.
func (s SLI) SourceType() SourceType {
	if qs := s.Queries(); len(qs) > 0 {
		return qs[0].Source
	}
	return ""
}

// Query is one metric query of an SLI, for one backend.
type Query struct {
	Source SourceType
	// DataSource names an OpenSLO DataSource; empty means the default one.
	DataSource string
	// PromQL is set for Prometheus. When Windowed is false it is an
	// expression over counters, which the collector turns into increases
	// over the measured range; when Windowed is true it contains
	// {{.window}} and is rendered with the range before it is run.
	PromQL   string
	Windowed bool
	// AllowPartial accepts a partial answer from a Prometheus-compatible
	// backend (200 with warnings, e.g. a Thanos store or a Mimir ingester
	// that was down) as a measurement: partialResponse: allow in the
	// metric source spec or in its DataSource's connectionDetails. By
	// default such an answer is slo.ErrUnavailable, never a figure.
	AllowPartial bool
	// Fixed narrows every measurement to one value of a grouped
	// objective (group.go); GroupBy keeps the grouping labels through the
	// query's aggregations.
	Fixed   Scope
	GroupBy []string
	// Elasticsearch is set for Elasticsearch.
	Elasticsearch *ElasticsearchQuery
	// Tempo is set for traces.
	Tempo *TempoQuery
	Pos   Position
}

// ElasticsearchQuery selects documents (log lines, events) in an index.
type ElasticsearchQuery struct {
	// Index is an index name or pattern, e.g. "logs-checkout-*".
	Index string
	// TimestampField is the date field the range applies to (default
	// "@timestamp").
	TimestampField string
	// Query is an Elasticsearch query DSL clause as JSON, e.g.
	// {"term":{"service.name":"checkout"}}; empty matches every document.
	Query string
}

// TempoQuery selects spans with a TraceQL spanset filter.
type TempoQuery struct {
	// TraceQL is a spanset filter, e.g.
	// {resource.service.name="checkout" && status=error}.
	TraceQL string
}

// Service is an OpenSLO Service.
type Service struct {
	Name        string
	DisplayName string
	Description string
	Pos         Position
}

// DataSource is an OpenSLO DataSource: a named backend with connection
// details. slogate reads its type, its URL and, for Prometheus-compatible
// backends, partialResponse.
type DataSource struct {
	Name string
	Type SourceType
	URL  string
	// AllowPartial is connectionDetails.partialResponse: allow, the
	// default of the queries that name the DataSource (Query.AllowPartial).
	AllowPartial bool
	// Flavor is "opensearch" for a DataSource of type OpenSearch (measured
	// by the Elasticsearch collector, which then checks for OpenSearch).
	Flavor string
	Pos    Position
}

// AlertPolicy is an OpenSLO AlertPolicy with its conditions resolved.
type AlertPolicy struct {
	Name       string
	Conditions []AlertCondition
	Targets    []string
	Pos        Position
}

// AlertCondition is an OpenSLO burn-rate AlertCondition.
type AlertCondition struct {
	Name           string
	Severity       string
	Op             string
	Threshold      float64
	LookbackWindow time.Duration
	AlertAfter     time.Duration
	Pos            Position
}

// AlertNotificationTarget is an OpenSLO AlertNotificationTarget.
type AlertNotificationTarget struct {
	Name        string
	Target      string
	Description string
	Pos         Position
}

// Set is everything loaded from a tree of SLO files.
type Set struct {
	Objectives  []Objective
	Policies    []GatePolicy
	Services    map[string]Service
	DataSources map[string]DataSource
	AlertPolicy map[string]AlertPolicy
	Targets     map[string]AlertNotificationTarget
	// Files is the number of files read.
	Files int
}

// Objective returns the objective with the given name.
func (s *Set) Objective(name string) (Objective, bool) {
	for _, o := range s.Objectives {
		if o.Name == name {
			return o, true
		}
	}
	// One value of a grouped objective (group.go).
	if base := BaseName(name); base != name {
		for _, o := range s.Objectives {
			if o.Name == base && o.IsGrouped() {
				return o, true
			}
		}
	}
	return Objective{}, false
}

// ByService returns the objectives of one service, in load order.
func (s *Set) ByService(service string) []Objective {
	var out []Objective
	for _, o := range s.Objectives {
		if o.Service == service {
			out = append(out, o)
		}
	}
	return out
}

// ServiceNames returns every service that has an objective, sorted.
func (s *Set) ServiceNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range s.Objectives {
		if !seen[o.Service] {
			seen[o.Service] = true
			out = append(out, o.Service)
		}
	}
	sort.Strings(out)
	return out
}

// Policy returns the gate policy for a service in an environment: the
// policy of that service listing env, else its policy listing no
// environment, else DefaultPolicy.
func (s *Set) Policy(service, env string) GatePolicy {
	var catchAll *GatePolicy
	for i, p := range s.Policies {
		if p.Service != service {
			continue
		}
		if len(p.Environments) == 0 {
			catchAll = &s.Policies[i]
		}
		for _, e := range p.Environments {
			if e == env {
				return p
			}
		}
	}
	if catchAll != nil {
		return *catchAll
	}
	return DefaultPolicy(service)
}
