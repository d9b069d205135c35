// Package collectors turns SLIs into event counts from the telemetry teams
// already run. Each backend is a subpackage (prometheus, elasticsearch,
// traces); Mux sends each SLI to the one its metric source names.
package collectors

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/slogate/slogate/slo"
)

// Source measures an SLI's good and total events over a range, narrowed to
// a scope. Errors wrap slo.ErrNoData, ErrUnavailable, ErrBadQuery or
// ErrTimeout.
type Source interface {
	Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error)
}

// Mux picks a source per SLI: the one registered for the SLI's OpenSLO
// DataSource name, else the one registered for its source type.
type Mux struct {
	byType map[slo.SourceType]Source
	byName map[string]Source
}

// NewMux returns an empty multiplexer.
func NewMux() *Mux {
	return &Mux{byType: map[slo.SourceType]Source{}, byName: map[string]Source{}}
}

// Handle registers the source for every SLI of a type.
func (m *Mux) Handle(t slo.SourceType, s Source) { m.byType[t] = s }

// HandleDataSource registers the source for SLIs naming an OpenSLO
// DataSource; it takes precedence over Handle's.
func (m *Mux) HandleDataSource(name string, s Source) { m.byName[name] = s }

// Types lists the source types and data sources that have a source, for
// logs and readiness.
func (m *Mux) Types() []string {
	var out []string
	for t := range m.byType {
		out = append(out, string(t))
	}
	for n := range m.byName {
		out = append(out, "datasource/"+n)
	}
	sort.Strings(out)
	return out
}

// Source returns the source an SLI is measured from.
func (m *Mux) Source(sli slo.SLI) (Source, error) {
	qs := sli.Queries()
	if len(qs) == 0 {
		return nil, fmt.Errorf("SLI %s has no query: %w", sli.Name, slo.ErrBadQuery)
	}
	if name := qs[0].DataSource; name != "" {
		if s, ok := m.byName[name]; ok {
			return s, nil
		}
	}
	if s, ok := m.byType[qs[0].Source]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("no %s source is configured for SLI %s (set sources.%s in the config, the --%s flag, or a DataSource url): %w",
		qs[0].Source, sli.Name, flagName(qs[0].Source), flagName(qs[0].Source), slo.ErrUnavailable)
}

func flagName(t slo.SourceType) string { return strings.ToLower(string(t)) }

// Counts measures sli with the source it names.
func (m *Mux) Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error) {
	s, err := m.Source(sli)
	if err != nil {
		return slo.Counts{}, err
	}
	return s.Counts(ctx, sli, r, scope)
}

// BucketSource measures a histogram SLI's per-bucket request counts
// (collectors/prometheus' Client does).
type BucketSource interface {
	Buckets(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) ([]slo.Bucket, error)
}

// Buckets measures sli's latency distribution with the source it names.
// A source that has no buckets (Elasticsearch, Tempo) is slo.ErrBadQuery.
func (m *Mux) Buckets(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) ([]slo.Bucket, error) {
	s, err := m.Source(sli)
	if err != nil {
		return nil, err
	}
	bs, ok := s.(BucketSource)
	if !ok {
		return nil, fmt.Errorf("the source of SLI %s measures no histogram buckets: %w", sli.Name, slo.ErrBadQuery)
	}
	return bs.Buckets(ctx, sli, r, scope)
}

// StatusError classifies a source's non-2xx answer to call, quoting the
// source's reason: 429 and 5xx are slo.ErrUnavailable (it may work later),
// 401 and 403 too (the credentials need fixing, not the SLI), any other
// 4xx is slo.ErrBadQuery.
func StatusError(call string, status int, reason string) error {
	var sentinel error
	switch {
	case status == http.StatusTooManyRequests || status >= 500:
		sentinel = slo.ErrUnavailable
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		sentinel = slo.ErrUnavailable
		reason = "credentials refused: " + reason
	case status >= 400:
		sentinel = slo.ErrBadQuery
	default:
		sentinel = slo.ErrUnavailable
	}
	return fmt.Errorf("%s: HTTP %d: %s: %w", call, status, reason, sentinel)
}
