package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"

	"github.com/slogate/slogate/collectors"
	"github.com/slogate/slogate/collectors/elasticsearch"
	"github.com/slogate/slogate/collectors/prometheus"
	"github.com/slogate/slogate/collectors/traces"
	"github.com/slogate/slogate/slo"
)

// sourceFlags are the --prometheus, --elasticsearch and --tempo flags,
// which take precedence over the config file.
type sourceFlags struct {
	prometheus, elasticsearch, tempo string
	// fallbackPrometheus serves Prometheus SLIs that nothing else serves
	// (the embedded default when there is no config); it does not hide
	// DataSources.
	fallbackPrometheus string
}

// buildSources wires the collectors, highest precedence first: a flag,
// the config's sources, an OpenSLO DataSource's url. A source named nowhere
// is off; its SLIs fail with a message saying how to configure it.
func buildSources(cfg *Config, flags sourceFlags, set *slo.Set, logger *slog.Logger) (*collectors.Mux, error) {
	mux := collectors.NewMux()
	if flags.prometheus != "" {
		p := PrometheusSource{URL: flags.prometheus}
		if cfg.Sources.Prometheus != nil {
			p = *cfg.Sources.Prometheus
			p.URL = flags.prometheus
		}
		cfg.Sources.Prometheus = &p
	}
	if flags.elasticsearch != "" {
		e := ElasticsearchSource{}
		if cfg.Sources.Elasticsearch != nil {
			e = *cfg.Sources.Elasticsearch
		}
		e.Addresses = []string{flags.elasticsearch}
		cfg.Sources.Elasticsearch = &e
	}
	if flags.tempo != "" {
		t := TempoSource{}
		if cfg.Sources.Tempo != nil {
			t = *cfg.Sources.Tempo
		}
		t.URL = flags.tempo
		cfg.Sources.Tempo = &t
	}
	if p := cfg.Sources.Prometheus; p != nil {
		c, err := newPrometheus(*p, logger)
		if err != nil {
			return nil, err
		}
		mux.Handle(slo.SourcePrometheus, c)
	}
	if e := cfg.Sources.Elasticsearch; e != nil {
		c, err := newElasticsearch(*e, logger)
		if err != nil {
			return nil, err
		}
		mux.Handle(slo.SourceElasticsearch, c)
	}
	if t := cfg.Sources.Tempo; t != nil {
		c, err := newTempo(*t, logger)
		if err != nil {
			return nil, err
		}
		mux.Handle(slo.SourceTempo, c)
	}
	// OpenSLO DataSources with a url serve the SLIs that name them, unless
	// a flag or the config set that kind of source.
	names := make([]string, 0, len(set.DataSources))
	for n := range set.DataSources {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ds := set.DataSources[n]
		if ds.URL == "" {
			continue
		}
		var (
			src collectors.Source
			err error
		)
		switch ds.Type {
		case slo.SourcePrometheus:
			if cfg.Sources.Prometheus != nil {
				continue
			}
			src, err = newPrometheus(PrometheusSource{URL: ds.URL}, logger)
		case slo.SourceElasticsearch:
			if cfg.Sources.Elasticsearch != nil {
				continue
			}
			src, err = newElasticsearch(ElasticsearchSource{Addresses: []string{ds.URL}, Flavor: ds.Flavor}, logger)
		case slo.SourceTempo:
			if cfg.Sources.Tempo != nil {
				continue
			}
			src, err = newTempo(TempoSource{URL: ds.URL}, logger)
		}
		if err != nil {
			return nil, fmt.Errorf("DataSource %s (%s): %w", n, ds.Pos, err)
		}
		if src != nil {
			mux.HandleDataSource(n, src)
		}
	}
	if flags.fallbackPrometheus != "" && cfg.Sources.Prometheus == nil {
		c, err := newPrometheus(PrometheusSource{URL: flags.fallbackPrometheus}, logger)
		if err != nil {
			return nil, err
		}
		mux.Handle(slo.SourcePrometheus, c)
	}
	return mux, nil
}

func newPrometheus(p PrometheusSource, logger *slog.Logger) (collectors.Source, error) {
	c, err := prometheus.New(prometheus.Config{
		URL: p.URL, Timeout: p.Timeout.Duration, BearerToken: p.BearerToken,
		Username: p.Username, Password: p.Password, Headers: p.Headers,
		TLS: prometheus.TLSConfig{CAFile: p.CAFile, InsecureSkipVerify: p.InsecureSkipVerify},
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("sources.prometheus: %w", err)
	}
	return c, nil
}

func newElasticsearch(e ElasticsearchSource, logger *slog.Logger) (collectors.Source, error) {
	cfg := elasticsearch.Config{
		Addresses: e.Addresses, APIKey: e.APIKey, Username: e.Username, Password: e.Password,
		Timeout: e.Timeout.Duration, InsecureSkipVerify: e.InsecureSkipVerify, Flavor: e.Flavor,
	}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sources.elasticsearch.caFile: %w", err)
		}
		cfg.CACert = pem
	}
	c, err := elasticsearch.New(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("sources.elasticsearch: %w", err)
	}
	return c, nil
}

func newTempo(t TempoSource, logger *slog.Logger) (collectors.Source, error) {
	c, err := traces.New(traces.Config{
		URL: t.URL, Timeout: t.Timeout.Duration, BearerToken: t.BearerToken,
		OrgID: t.OrgID, Username: t.Username, Password: t.Password,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("sources.tempo: %w", err)
	}
	return c, nil
}
