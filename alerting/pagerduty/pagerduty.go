// Package pagerduty pages the on-call engineer through PagerDuty's Events
// API v2 when a page-severity burn-rate alert of an SLO fires, and resolves
// the page when the alert resolves.
//
// One PagerDuty alert stands for one SLO's page tier: every trigger and
// resolve of it carries the dedup_key "slogate/<service>/<slo>/page", so a
// trigger sent twice (a retry after a timeout whose request did arrive)
// still opens a single incident, and the resolve closes it.
package pagerduty

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	pagerduty "github.com/PagerDuty/go-pagerduty"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/slo"
)

const (
	// DefaultURL is PagerDuty's Events API host; the client appends
	// /v2/enqueue.
	DefaultURL = "https://events.pagerduty.com"
	// DefaultSource is the payload's source when Config.Source is empty.
	DefaultSource = "slogate"
	// DefaultTimeout bounds one call to the Events API.
	DefaultTimeout = 10 * time.Second

	enqueuePath     = "/v2/enqueue"
	maxSummaryLen   = 1024
	maxDedupKeyLen  = 255
	maxResponseBody = 64 << 10
)

// Config configures a Notifier.
type Config struct {
	// RoutingKey is the integration key of an Events API v2 integration.
	// Required. It travels in the request body only and is never logged.
	RoutingKey string
	// URL overrides the Events API endpoint (default DefaultURL). Either
	// the host ("https://events.eu.pagerduty.com") or the full enqueue URL
	// ("https://events.eu.pagerduty.com/v2/enqueue").
	URL string
	// Source is the payload's source (default "slogate").
	Source string
	// Timeout bounds one call (default 10s).
	Timeout time.Duration
}

// Notifier sends page-severity alert transitions to PagerDuty. It
// implements alerting.Notifier.
type Notifier struct {
	client     *pagerduty.Client
	routingKey string
	endpoint   string
	source     string
	timeout    time.Duration
	logger     *slog.Logger
}

var _ alerting.Notifier = (*Notifier)(nil)

// New checks cfg, reporting every problem at once, and returns a Notifier.
// A nil logger discards.
func New(cfg Config, logger *slog.Logger) (*Notifier, error) {
	var errs []error
	if strings.TrimSpace(cfg.RoutingKey) == "" {
		errs = append(errs, errors.New("pagerduty: routingKey: required"))
	} else if strings.ContainsAny(cfg.RoutingKey, " \t\r\n") {
		errs = append(errs, errors.New("pagerduty: routingKey: must not contain white space"))
	}
	endpoint := DefaultURL
	if cfg.URL != "" {
		if u, err := alerting.PeerURL("pagerduty", cfg.URL); err != nil {
			errs = append(errs, err)
		} else {
			endpoint = strings.TrimSuffix(strings.TrimSuffix(u.String(), "/"), enqueuePath)
		}
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("pagerduty: timeout: must not be negative, got %s", cfg.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(endpoint))
	// The library's default client has no overall timeout; the context
	// bounds each call too, the client's timeout is a second guard.
	client.HTTPClient = &recordingClient{client: &http.Client{Timeout: cfg.Timeout}}
	return &Notifier{
		client:     client,
		routingKey: cfg.RoutingKey,
		endpoint:   endpoint,
		source:     cfg.Source,
		timeout:    cfg.Timeout,
		logger:     logger.With("component", "notifier", "peer", alerting.PeerPagerDuty),
	}, nil
}

// String describes the notifier without its routing key.
func (n *Notifier) String() string {
	return fmt.Sprintf("pagerduty(%s%s, source %q)", n.endpoint, enqueuePath, n.source)
}

// Peer returns alerting.PeerPagerDuty.
func (n *Notifier) Peer() string { return alerting.PeerPagerDuty }

// Key returns "alert/<slo>/page/<startsAt unix>/<trigger|resolve>" for a
// page-severity alert that fired or resolved, "" for anything else (ticket
// alerts, re-sends of a firing alert, other kinds).
func (n *Notifier) Key(e alerting.Event) string {
	a, ok := takes(e)
	if !ok {
		return ""
	}
	return fmt.Sprintf("alert/%s/page/%d/%s", a.SLO, startsAt(e).Unix(), action(a))
}

// takes reports whether e is a page transition.
func takes(e alerting.Event) (*alerting.Alert, bool) {
	a := e.Alert
	if e.Kind != alerting.KindAlert || a == nil || a.Severity != slo.SeverityPage || !a.Transition {
		return nil, false
	}
	return a, true
}

func action(a *alerting.Alert) string {
	if a.Firing {
		return "trigger"
	}
	return "resolve"
}

// startsAt is when the alert started firing; an alert without it is keyed
// by the event's instant.
func startsAt(e alerting.Event) time.Time {
	if e.Alert.StartsAt.IsZero() {
		return e.At
	}
	return e.Alert.StartsAt
}

// DedupKey is the PagerDuty dedup_key of an SLO's page alert:
// "slogate/<service>/<slo>/page", or, past PagerDuty's 255 characters,
// "slogate/sha256:<hex of service/slo>/page".
func DedupKey(service, sloName string) string {
	k := "slogate/" + service + "/" + sloName + "/page"
	if len(k) <= maxDedupKeyLen {
		return k
	}
	sum := sha256.Sum256([]byte(service + "/" + sloName))
	return "slogate/sha256:" + hex.EncodeToString(sum[:]) + "/page"
}

// Notify sends the trigger or resolve event of a page transition. A 202 is
// delivered; a 400 is final; a 408, 429, 5xx or a failed or timed-out call
// is to be retried; a 401, 403 or 404 is retried as an
// alerting.ConfigError.
func (n *Notifier) Notify(ctx context.Context, e alerting.Event) (retry bool, err error) {
	a, ok := takes(e)
	if !ok {
		return false, fmt.Errorf("pagerduty: event %s is not a page alert transition", describe(e))
	}
	ev := n.event(e, a)
	ctx, cancel := context.WithTimeoutCause(ctx, n.timeout,
		fmt.Errorf("pagerduty enqueue %s timed out after %s", ev.Action, n.timeout))
	defer cancel()
	rec := &record{}
	resp, err := n.client.ManageEventWithContext(withRecord(ctx, rec), ev)
	log := n.logger.With("dedup_key", ev.DedupKey, "event_action", ev.Action)
	switch {
	case err == nil:
		log.Debug("pagerduty accepted the event", "status", resp.Status, "message", resp.Message)
		return false, nil
	case rec.status == 0:
		if cause := context.Cause(ctx); cause != nil {
			return true, fmt.Errorf("pagerduty: %s %s: %w", ev.Action, ev.DedupKey, cause)
		}
		return true, fmt.Errorf("pagerduty: %s %s: %s", ev.Action, ev.DedupKey, n.redact(err.Error()))
	case rec.status >= 200 && rec.status < 300:
		// Accepted, but the answer did not decode: the event is queued.
		log.Warn("pagerduty accepted the event with an unreadable answer", "status", rec.status, "error", n.redact(err.Error()))
		return false, nil
	}
	msg := n.describeFailure(rec)
	switch {
	case rec.status == http.StatusBadRequest:
		// Final; the dispatcher logs it when it gives the message up.
		return false, fmt.Errorf("pagerduty: %s %s rejected: %s", ev.Action, ev.DedupKey, msg)
	case rec.status == http.StatusTooManyRequests, rec.status == http.StatusRequestTimeout, rec.status >= 500:
		return true, fmt.Errorf("pagerduty: %s %s: %s", ev.Action, ev.DedupKey, msg)
	case alerting.Misconfigured(rec.status):
		// A proxy or a wrong URL or key: retried, loudly, never dropped.
		return true, &alerting.ConfigError{Status: rec.status, Err: fmt.Errorf("pagerduty: %s %s: %s", ev.Action, ev.DedupKey, msg)}
	default:
		return false, fmt.Errorf("pagerduty: %s %s: %s", ev.Action, ev.DedupKey, msg)
	}
}

// describeFailure turns an Events API error answer into one line:
// "HTTP 400 invalid event: Event object is invalid: 'payload' is missing".
func (n *Notifier) describeFailure(rec *record) string {
	var body pagerduty.V2EventResponse
	msg := fmt.Sprintf("HTTP %d", rec.status)
	if json.Unmarshal(rec.body, &body) == nil && (body.Status != "" || body.Message != "") {
		if body.Status != "" {
			msg += " " + body.Status
		}
		if body.Message != "" {
			msg += ": " + body.Message
		}
		if len(body.Errors) > 0 {
			msg += ": " + strings.Join(body.Errors, "; ")
		}
	} else if text := strings.TrimSpace(string(rec.body)); text != "" {
		msg += ": " + truncate(text, 200)
	}
	return n.redact(msg)
}

// redact removes the routing key from text that came from elsewhere.
func (n *Notifier) redact(s string) string {
	return strings.ReplaceAll(s, n.routingKey, "[routing key]")
}

func (n *Notifier) event(e alerting.Event, a *alerting.Alert) *pagerduty.V2Event {
	ev := &pagerduty.V2Event{
		RoutingKey: n.routingKey,
		Action:     action(a),
		DedupKey:   DedupKey(a.Service, a.SLO),
	}
	if ev.Action == "resolve" {
		// PagerDuty reads only routing_key, event_action and dedup_key of
		// a resolve.
		return ev
	}
	ev.Client = "slogate"
	for _, l := range e.Links {
		ev.Links = append(ev.Links, link{Href: l.Href, Text: l.Text})
	}
	ev.Payload = &pagerduty.V2Payload{
		Summary:   truncate(summary(a), maxSummaryLen),
		Source:    n.source,
		Severity:  "critical",
		Timestamp: startsAt(e).UTC().Format(time.RFC3339),
		Component: a.Service,
		Class:     "slo-burn-rate",
		Details:   detailsOf(a),
	}
	return ev
}

type link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// details is the payload's custom_details: the figures behind the page.
type details struct {
	Service         string              `json:"service"`
	SLO             string              `json:"slo"`
	DisplayName     string              `json:"displayName,omitempty"`
	AlertName       string              `json:"alertName,omitempty"`
	Target          float64             `json:"target"`
	Window          string              `json:"window"`
	BudgetRemaining *float64            `json:"budgetRemaining"`
	BurnRates       map[string]*float64 `json:"burnRates"`
	Tiers           []slo.AlertState    `json:"tiers"`
	StartsAt        time.Time           `json:"startsAt"`
	Description     string              `json:"description,omitempty"`
	Labels          map[string]string   `json:"labels,omitempty"`
	Annotations     map[string]string   `json:"annotations,omitempty"`
}

func detailsOf(a *alerting.Alert) details {
	tiers := a.Tiers
	if tiers == nil {
		tiers = []slo.AlertState{}
	}
	burn := a.BurnRates
	if burn == nil {
		burn = map[string]*float64{}
	}
	return details{
		Service: a.Service, SLO: a.SLO, DisplayName: a.DisplayName, AlertName: a.Name,
		Target: a.Target, Window: a.Window,
		BudgetRemaining: a.BudgetRemaining, BurnRates: burn, Tiers: tiers,
		StartsAt: a.StartsAt.UTC(), Description: a.Description,
		Labels: a.Labels, Annotations: a.Annotations,
	}
}

// summary is the alert's own summary or one made of its figures:
// "checkout-availability (checkout) burns its error budget: 14.4x page tier firing, 41.0% of the budget left".
func summary(a *alerting.Alert) string {
	if a.Summary != "" {
		return a.Summary
	}
	name := a.SLO
	if a.DisplayName != "" {
		name = a.DisplayName
	}
	s := fmt.Sprintf("%s (%s) burns its error budget", name, a.Service)
	var firing []string
	for _, t := range a.Tiers {
		if t.Severity == slo.SeverityPage && t.Firing {
			firing = append(firing, fmt.Sprintf("%sx over %s/%s", formatFloat(t.Factor), t.LongWindow, t.ShortWindow))
		}
	}
	if len(firing) > 0 {
		s += ": " + strings.Join(firing, ", ")
	}
	if a.BudgetRemaining != nil {
		s += fmt.Sprintf("; %.1f%% of the budget left", *a.BudgetRemaining*100)
	}
	return s
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// truncate cuts s to at most max bytes on a rune boundary, marking the cut.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "…"
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func describe(e alerting.Event) string {
	if e.Alert == nil {
		return string(e.Kind)
	}
	return fmt.Sprintf("%s %s/%s severity %s transition %t", e.Kind, e.Alert.Service, e.Alert.SLO, e.Alert.Severity, e.Alert.Transition)
}

// record keeps the status and body of the Events API's answer: the
// library's error for a non-2xx answer drops the Events API's own error
// fields (status, message, errors), and its transport errors are not
// wrapped, so the notifier classifies from what it recorded.
type record struct {
	status int
	body   []byte
}

type recordKey struct{}

func withRecord(ctx context.Context, r *record) context.Context {
	return context.WithValue(ctx, recordKey{}, r)
}

// recordingClient is the library's HTTPClient: it records each answer in
// the record carried by the request's context and hands on a copy.
type recordingClient struct {
	client *http.Client
}

func (c *recordingClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.client.Do(req)
	if err != nil {
		return resp, err
	}
	rec, ok := req.Context().Value(recordKey{}).(*record)
	if !ok {
		return resp, nil
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	_ = resp.Body.Close()
	if readErr != nil {
		return nil, fmt.Errorf("reading the answer (HTTP %d): %w", resp.StatusCode, readErr)
	}
	rec.status, rec.body = resp.StatusCode, body
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
