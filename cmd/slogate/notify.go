package main

import (
	"context"
	"encoding/json"
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
	"github.com/slogate/slogate/internal/deploys"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
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

// outboxAdapter lets the dispatcher deliver the store's outbox.
type outboxAdapter struct{ s store.Store }

func (o outboxAdapter) ClaimOutbox(ctx context.Context, peer string, limit int, lease time.Duration, now time.Time) ([]alerting.Message, error) {
	ms, err := o.s.ClaimOutbox(ctx, peer, limit, lease, now)
	if err != nil {
		return nil, err
	}
	out := make([]alerting.Message, len(ms))
	for i, m := range ms {
		out[i] = alerting.Message{ID: m.ID, Key: m.Key, Peer: m.Peer, Payload: m.Payload, Attempts: m.Attempts, CreatedAt: m.CreatedAt,
			OrderKey: m.OrderKey, EnqueuedAt: m.EnqueuedAt}
	}
	return out, nil
}

func (o outboxAdapter) MarkDelivered(ctx context.Context, id int64) error {
	return o.s.MarkDelivered(ctx, id)
}

func (o outboxAdapter) MarkFailed(ctx context.Context, id int64, msg string, next time.Time) error {
	return o.s.MarkFailed(ctx, id, msg, next)
}

// Abandon lets the dispatcher give up on a message for good.
func (o outboxAdapter) Abandon(ctx context.Context, id int64, errMsg string) error {
	return o.s.Abandon(ctx, id, errMsg)
}

var _ alerting.Abandoner = outboxAdapter{}

func (o outboxAdapter) Enqueue(ctx context.Context, msgs ...alerting.Message) error {
	return o.s.Enqueue(ctx, deploys.OutboxMessages(msgs)...)
}

// alertStates keeps the tracker's alert states in the audit log (action
// alert.state, subject <slo>/<severity>), so a restart neither re-fires
// nor forgets to resolve.
type alertStates struct{ s store.Store }

const actionAlertState = "alert.state"

func (a alertStates) Load(ctx context.Context) (map[string]alerting.State, error) {
	out, seen, cursor := map[string]alerting.State{}, map[string]bool{}, ""
	for {
		es, next, err := a.s.ListAudit(ctx, store.AuditFilter{Action: actionAlertState, Limit: 1000, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, e := range es { // newest first
			if seen[e.Subject] {
				continue
			}
			seen[e.Subject] = true
			var s alerting.State
			if err := json.Unmarshal([]byte(e.Detail), &s); err != nil {
				return nil, fmt.Errorf("alert state %s: %w", e.Subject, err)
			}
			out[e.Subject] = s
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

func (a alertStates) Save(ctx context.Context, key string, s alerting.State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return a.s.Audit(ctx, store.AuditEntry{Actor: "slogate", Action: actionAlertState, Subject: key, Detail: string(b)})
}

// objectiveLookup reads the SLOs in force.
func objectiveLookup(slos func() *slo.Set) func(string) (slo.Objective, bool) {
	return func(name string) (slo.Objective, bool) { return slos().Objective(name) }
}
