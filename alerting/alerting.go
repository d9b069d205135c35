// Package alerting tells people and tools what slogate saw: burn-rate
// alerts to Alertmanager, pages to PagerDuty, deploy and decision
// annotations to Grafana, feedback issues to GitHub. Every notification is
// an Event written to the store's durable outbox in the transaction of
// what caused it, then delivered by the Dispatcher with retries, so a peer
// that is down loses nothing and a restart sends nothing twice.
//
// Each peer is a subpackage (alertmanager, pagerduty, grafana, github)
// implementing Notifier; this package imports none of them.
package alerting

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
)

// Peer names, as stored in the outbox.
const (
	PeerAlertmanager = "alertmanager"
	PeerPagerDuty    = "pagerduty"
	PeerGrafana      = "grafana"
	PeerGitHub       = "github"
)

// Kind is what happened.
type Kind string

const (
	// KindAlert: a burn-rate tier fires (again, while it fires: Transition
	// false) or changed state (Transition true: fired or resolved).
	KindAlert Kind = "alert"
	// KindDeployStarted and KindDeployFinished: a deploy was recorded or
	// finished.
	KindDeployStarted  Kind = "deploy.started"
	KindDeployFinished Kind = "deploy.finished"
	// KindDecision: the gate answered (promote, halt or wait).
	KindDecision Kind = "decision"
	// KindBudgetExhausted: an SLO spent its error budget for the period.
	KindBudgetExhausted Kind = "budget.exhausted"
)

// Event is one thing to tell the peers, serialised into the outbox.
type Event struct {
	Kind     Kind            `json:"kind"`
	At       time.Time       `json:"at"`
	Alert    *Alert          `json:"alert,omitempty"`
	Deploy   *slogate.Deploy `json:"deploy,omitempty"`
	Decision *gate.Answer    `json:"decision,omitempty"`
	// DecisionDeploy is the deploy a decision is about, when known (its
	// pipeline link, commit).
	DecisionDeploy *slogate.Deploy `json:"decisionDeploy,omitempty"`
	Budget         *Budget         `json:"budget,omitempty"`
	Links          []Link          `json:"links,omitempty"`
}

// Link is a URL a notification points to (the pipeline, a dashboard, the
// slogate answer).
type Link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Alert is the state of one burn-rate severity of an SLO.
type Alert struct {
	Service     string       `json:"service"`
	SLO         string       `json:"slo"`
	DisplayName string       `json:"displayName,omitempty"`
	Severity    slo.Severity `json:"severity"`
	// Name is the alert's name from the SLO file (Sloth's alerting.name),
	// empty when the file gives none.
	Name   string `json:"name,omitempty"`
	Firing bool   `json:"firing"`
	// Transition is true when the state changed at this evaluation (fired
	// or resolved); false for the re-sends of a firing alert.
	Transition bool `json:"transition"`
	// StartsAt is when it started firing; EndsAt, when firing, is how long
	// the alert holds without a re-send (Alertmanager: a few evaluation
	// intervals ahead) and, when resolved, the instant it resolved.
	StartsAt time.Time `json:"startsAt"`
	EndsAt   time.Time `json:"endsAt"`
	// The figures at this evaluation.
	Target          float64             `json:"target"`
	Window          string              `json:"window"`
	Tiers           []slo.AlertState    `json:"tiers"`
	BurnRates       map[string]*float64 `json:"burnRates"`
	BudgetRemaining *float64            `json:"budgetRemaining"`
	// Labels and Annotations from the SLO file (Sloth alerting block).
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Summary     string            `json:"summary"`
	Description string            `json:"description"`
}

// Budget is an SLO whose error budget ran out.
type Budget struct {
	Service   string  `json:"service"`
	SLO       string  `json:"slo"`
	Target    float64 `json:"target"`
	Window    string  `json:"window"`
	Remaining float64 `json:"remaining"`
	// Period names the budget period: the calendar period's start
	// (2026-11-01) or, for a rolling window, the month it ran out in
	// (rolling-2026-11). At most one issue per SLO per period.
	Period string `json:"period"`
	// Status is the SLO's full figures at the time.
	Status slo.Status `json:"status"`
}

// Notifier delivers events to one peer.
type Notifier interface {
	// Peer names the peer (PeerGrafana...).
	Peer() string
	// Key is the outbox key of e for this peer, or "" when the peer does
	// not take e. Events with one key are delivered once: the key is how a
	// notifier says "this one already went" (one annotation per deploy,
	// one issue per halted deploy).
	Key(e Event) string
	// Notify delivers e. retry tells whether a failure may succeed later
	// (a 5xx, a 429, a timeout) or is final (a 400).
	Notify(ctx context.Context, e Event) (retry bool, err error)
}

// DecisionSubject is what a decision is about: its deploy id, else the
// version, else (a decision about neither) the evaluation id. Notifiers
// key their one-per-deploy notifications on it.
func (e Event) DecisionSubject() string {
	a := e.Decision
	switch {
	case a == nil:
		return ""
	case a.DeployID != "":
		return a.DeployID
	case e.DecisionDeploy != nil && e.DecisionDeploy.ID != "":
		return e.DecisionDeploy.ID
	case a.Version != "":
		return a.Version
	default:
		return a.EvaluationID
	}
}

// PeerURL checks a peer's base URL from the config: http or https, a host,
// no credentials (they go in the token), no query or fragment. The error
// names the peer and the field, never the URL (it may hold a secret).
func PeerURL(peer, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: url: not a URL", peer)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%s: url: scheme must be http or https, got %q", peer, u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("%s: url: host missing", peer)
	case u.User != nil:
		return nil, fmt.Errorf("%s: url: must not hold credentials (use the token or key setting)", peer)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%s: url: must not have a query or fragment", peer)
	}
	return u, nil
}
