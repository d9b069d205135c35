// Package dorametrics exports the four DORA keys of every service and
// environment on /metrics, computed (gate/dora) from the store's deploys
// and the burns a dora.History finds. cmd only wires it.
package dorametrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate/dora"
	"github.com/slogate/slogate/store"
)

// Deploys lists recorded deploys. store.Store satisfies it.
type Deploys interface {
	ListDeploys(ctx context.Context, f store.DeployFilter) ([]slogate.Deploy, string, error)
}

// Burns finds the page-level burns of a service. *dora.History satisfies
// it; give it one that reads the alert record only, so that a scrape
// queries no source.
type Burns interface {
	Burns(ctx context.Context, service string, spans []dora.Span, at time.Time) ([]dora.Burn, dora.Stats, error)
}

var _ prometheus.Collector = (*Collector)(nil)

// New exports the keys of deploys and burns, computed at most every ttl.
func New(deploys Deploys, burns Burns, ttl time.Duration, logger *slog.Logger) *Collector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{store: deploys, history: burns, logger: logger, ttl: ttl}
}

// Collector exports the DORA keys of every service and environment over
// the last 30 days as gauges (a prometheus.Collector). A scrape never
// queries a source when its burns come from the alert record only, and
// figures are kept for ttl.
type Collector struct {
	store   Deploys
	history Burns
	logger  *slog.Logger
	ttl     time.Duration

	mu      sync.Mutex
	at      time.Time
	metrics []prometheus.Metric
}

var (
	doraLabels   = []string{"service", "environment"}
	doraDeploys  = prometheus.NewDesc("slogate_dora_deployments", "Deploys finished succeeded in the last 30 days.", doraLabels, nil)
	doraPerDay   = prometheus.NewDesc("slogate_dora_deployments_per_day", "Deploys finished succeeded per day over the last 30 days.", doraLabels, nil)
	doraDays     = prometheus.NewDesc("slogate_dora_deploy_days", "Days with a succeeded deploy in the last 30 days.", doraLabels, nil)
	doraLead     = prometheus.NewDesc("slogate_dora_lead_time_seconds", "Lead time for changes (finish minus earliest commit) of the succeeded deploys of the last 30 days.", append(doraLabels, "quantile"), nil)
	doraFailures = prometheus.NewDesc("slogate_dora_change_failures", "Change failures among the deploys finished in the last 30 days.", doraLabels, nil)
	doraCFR      = prometheus.NewDesc("slogate_dora_change_failure_ratio", "Change failures divided by deploys finished in the last 30 days.", doraLabels, nil)
	doraRestore  = prometheus.NewDesc("slogate_dora_time_to_restore_seconds", "Median time to restore of the change failures of the last 30 days.", doraLabels, nil)
)

// Describe sends the gauges' descriptions.
func (m *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{doraDeploys, doraPerDay, doraDays, doraLead, doraFailures, doraCFR, doraRestore} {
		ch <- d
	}
}

// Collect sends the gauges, computed again when older than the ttl; when
// they cannot be, the last figures stay.
func (m *Collector) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now := time.Now(); now.Sub(m.at) > m.ttl {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		metrics, err := m.compute(ctx, now)
		cancel()
		if err != nil {
			m.logger.Warn("DORA gauges not computed; the last figures stay", "err", err)
		} else {
			m.at, m.metrics = now, metrics
		}
	}
	for _, x := range m.metrics {
		ch <- x
	}
}

func (m *Collector) compute(ctx context.Context, now time.Time) ([]prometheus.Metric, error) {
	opts := dora.Options{End: now, Window: dora.DefaultWindow, Attribution: dora.DefaultAttribution}
	var deploys []slogate.Deploy
	f := store.DeployFilter{Since: now.Add(-opts.Window - 7*24*time.Hour), Before: now, Limit: 1000}
	for {
		page, next, err := m.store.ListDeploys(ctx, f)
		if err != nil {
			return nil, err
		}
		deploys = append(deploys, page...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	var out []prometheus.Metric
	burnsOf := map[string][]dora.Burn{}
	for _, h := range dora.Histories(deploys, now) {
		svc, env := h[0].Service, h[0].Environment
		if _, ok := burnsOf[svc]; !ok {
			bs, _, err := m.history.Burns(ctx, svc, []dora.Span{{Start: now.Add(-opts.Window), End: now}}, now)
			if err != nil {
				return nil, err
			}
			burnsOf[svc] = bs
		}
		r := dora.Compute(h, burnsOf[svc], opts)
		gauge := func(d *prometheus.Desc, v float64, extra ...string) {
			out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{svc, env}, extra...)...))
		}
		gauge(doraDeploys, float64(r.Deployments.Count))
		gauge(doraPerDay, r.Deployments.PerDay)
		gauge(doraDays, float64(r.Deployments.DeployDays))
		gauge(doraFailures, float64(r.ChangeFailureRate.Failures))
		if v := r.LeadTime.Median; v != nil {
			gauge(doraLead, *v, "0.5")
		}
		if v := r.LeadTime.P90; v != nil {
			gauge(doraLead, *v, "0.9")
		}
		if v := r.ChangeFailureRate.Ratio; v != nil {
			gauge(doraCFR, *v)
		}
		if v := r.TimeToRestore.Median; v != nil {
			gauge(doraRestore, *v)
		}
	}
	return out, nil
}
