package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/alerting/alertmanager"
	"github.com/slogate/slogate/alerting/github"
	"github.com/slogate/slogate/alerting/grafana"
	"github.com/slogate/slogate/alerting/jira"
	"github.com/slogate/slogate/alerting/pagerduty"
	"github.com/slogate/slogate/slo"
)

// buildNotifiers makes a notifier per peer named in notify; a peer left
// out is off.
func buildNotifiers(n NotifyConfig, externalURL string, logger *slog.Logger) ([]alerting.Notifier, error) {
	var out []alerting.Notifier
	var errs []error
	if c := n.Alertmanager; c != nil {
		am, err := alertmanager.New(alertmanager.Config{URL: c.URL, Timeout: c.Timeout.Duration, ExternalURL: externalURL})
		if err != nil {
			errs = append(errs, fmt.Errorf("notify.alertmanager: %w", err))
		} else {
			out = append(out, am)
		}
	}
	if c := n.PagerDuty; c != nil {
		pd, err := pagerduty.New(pagerduty.Config{RoutingKey: c.RoutingKey, URL: c.URL, Timeout: c.Timeout.Duration}, logger)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify.pagerduty: %w", err))
		} else {
			out = append(out, pd)
		}
	}
	if c := n.Grafana; c != nil {
		g, err := grafana.New(grafana.Config{URL: c.URL, Token: c.Token, DashboardUID: c.DashboardUID, Timeout: c.Timeout.Duration}, logger)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify.grafana: %w", err))
		} else {
			out = append(out, g)
		}
	}
	if c := n.GitHub; c != nil {
		gh, err := github.New(github.Config{Repo: c.Repo, Token: c.Token, URL: c.URL, Labels: c.Labels, Timeout: c.Timeout.Duration}, logger)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify.github: %w", err))
		} else {
			out = append(out, gh)
		}
	}
	if c := n.Jira; c != nil {
		j, err := jira.New(jira.Config{URL: c.URL, Flavor: c.Flavor, Project: c.Project, IssueType: c.IssueType,
			Email: c.Email, Token: c.Token, Labels: c.Labels, Components: c.Components, Timeout: c.Timeout.Duration}, logger)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify.jira: %w", err))
		} else {
			out = append(out, j)
		}
	}
	return out, errors.Join(errs...)
}

// scheduleInterval is the time between two runs of a cron spec, for how
// long an Alertmanager alert holds without a re-send.
func scheduleInterval(spec string, now time.Time) (time.Duration, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return 0, fmt.Errorf("evaluation.schedule %q: %w", spec, err)
	}
	first := s.Next(now)
	return s.Next(first).Sub(first), nil
}

// objectiveLookup reads the SLOs in force.
func objectiveLookup(slos func() *slo.Set) func(string) (slo.Objective, bool) {
	return func(name string) (slo.Objective, bool) { return slos().Objective(name) }
}
