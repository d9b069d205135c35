package collectors

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slogate/slogate/slo"
)

type named string

func (n named) Counts(context.Context, slo.SLI, slo.Range, slo.Scope) (slo.Counts, error) {
	return slo.Counts{Good: float64(len(n)), Total: 10}, nil
}

func TestMuxPicksTheDataSourceThenTheType(t *testing.T) {
	m := NewMux()
	m.Handle(slo.SourcePrometheus, named("type"))
	m.HandleDataSource("thanos", named("datasource"))
	sli := func(t slo.SourceType, ds string) slo.SLI {
		return slo.SLI{Name: "s", Total: &slo.Query{Source: t, DataSource: ds}, Good: &slo.Query{Source: t, DataSource: ds}}
	}
	tests := map[string]struct {
		sli     slo.SLI
		want    named
		wantErr string
	}{
		"an SLI naming a registered DataSource goes to it":      {sli: sli(slo.SourcePrometheus, "thanos"), want: "datasource"},
		"an SLI naming an unknown DataSource falls to its type": {sli: sli(slo.SourcePrometheus, "other"), want: "type"},
		"an SLI of a type nobody serves says how to configure it": {
			sli: sli(slo.SourceTempo, ""), wantErr: "no tempo source is configured for SLI s (set sources.tempo in the config, the --tempo flag, or a DataSource url)",
		},
		"an SLI without queries is a bad query": {sli: slo.SLI{Name: "empty"}, wantErr: "has no query"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src, err := m.Source(tc.sli)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || src != tc.want {
				t.Fatalf("source %v, %v; want %v", src, err, tc.want)
			}
		})
	}
	if got := m.Types(); strings.Join(got, ",") != "datasource/thanos,prometheus" {
		t.Errorf("Types() = %v", got)
	}
}

func TestStatusError(t *testing.T) {
	tests := map[string]struct {
		status int
		want   error
		text   string
	}{
		"429 is unavailable: try later":           {status: 429, want: slo.ErrUnavailable},
		"503 is unavailable":                      {status: 503, want: slo.ErrUnavailable},
		"401 is unavailable: credentials refused": {status: 401, want: slo.ErrUnavailable, text: "credentials refused: "},
		"400 is a bad query":                      {status: 400, want: slo.ErrBadQuery},
		"404 is a bad query":                      {status: 404, want: slo.ErrBadQuery},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := StatusError("search on logs-*", tc.status, "reason")
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text+"reason") || !strings.HasPrefix(err.Error(), "search on logs-*: HTTP ") {
				t.Errorf("StatusError = %v", err)
			}
		})
	}
}

type bucketed struct{ named }

func (bucketed) Buckets(context.Context, slo.SLI, slo.Range, slo.Scope) ([]slo.Bucket, error) {
	return []slo.Bucket{{UpperBound: 1, Count: 3}}, nil
}

func TestMuxRoutesBuckets(t *testing.T) {
	m := NewMux()
	m.Handle(slo.SourcePrometheus, bucketed{"prom"})
	m.Handle(slo.SourceElasticsearch, named("es"))
	sli := func(t slo.SourceType) slo.SLI {
		return slo.SLI{Name: "s", Total: &slo.Query{Source: t}, Good: &slo.Query{Source: t}}
	}
	got, err := m.Buckets(context.Background(), sli(slo.SourcePrometheus), slo.Range{}, nil)
	if err != nil || len(got) != 1 || got[0].Count != 3 {
		t.Errorf("a source with buckets: %v, %v", got, err)
	}
	if _, err := m.Buckets(context.Background(), sli(slo.SourceElasticsearch), slo.Range{}, nil); !errors.Is(err, slo.ErrBadQuery) {
		t.Errorf("a source without buckets: err = %v, want a bad query", err)
	}
	if _, err := m.Buckets(context.Background(), sli(slo.SourceTempo), slo.Range{}, nil); !errors.Is(err, slo.ErrUnavailable) {
		t.Errorf("a type nobody serves: err = %v, want unavailable", err)
	}
}
