// Package alertmanager delivers slogate's burn-rate alerts to a Prometheus
// Alertmanager through its API v2 (POST /api/v2/alerts), the way Prometheus
// itself does: a firing alert is re-sent at every evaluation with an endsAt
// a few intervals ahead, and resolved by sending the same labels with an
// endsAt in the past.
//
// Labels of an alert (its identity at Alertmanager):
//
//	alertname     the SLO file's alert name (Sloth's alerting.name), else DefaultAlertName
//	service, slo  the SLO
//	severity      page or ticket (an SLO label "severity" overrides it, as in Sloth)
//	slo_severity  page or ticket, always: page and ticket stay two alerts
//	...           Config.Labels, then the SLO's labels and alerting labels
//
// Annotations: summary, description, burn_rates, budget_remaining,
// slogate_url (when Config.ExternalURL is set), the first event link as
// link, and the SLO file's annotations (runbook_url...).
package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/slo"
)

// DefaultAlertName is the alertname of an SLO whose file names no alert.
const DefaultAlertName = "SLOBurnRate"

// Config configures a Notifier. URL is required.
type Config struct {
	// URL is Alertmanager's base URL (http://127.0.0.1:9093). Credentials
	// in it are moved to basic auth and never logged.
	URL string
	// Timeout of one POST (10s). The Dispatcher's deadline applies too.
	Timeout time.Duration
	// Username and Password (basic auth) or BearerToken, optional.
	Username    string
	Password    string
	BearerToken string
	// Labels are added to every alert (e.g. {"source": "slogate"}).
	Labels map[string]string
	// ExternalURL is slogate's public base URL: alerts link to
	// ExternalURL/v1/slos/<slo> (generatorURL).
	ExternalURL string
	// Client is the HTTP client (a default one when nil).
	Client *http.Client
}

// Notifier posts alerts to an Alertmanager.
type Notifier struct {
	endpoint string // URL of /api/v2/alerts, without credentials
	cfg      Config
	client   *http.Client
}

// New checks cfg and returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	var errs []error
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		errs = append(errs, errors.New("url is required"))
	case err != nil:
		// url.Parse's error quotes the URL, which may hold a password.
		errs = append(errs, errors.New("url is not a valid URL"))
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		errs = append(errs, fmt.Errorf("url must be http(s)://host[:port][/path], got scheme %q", u.Scheme))
	}
	if u != nil && u.User != nil {
		if cfg.Username != "" || cfg.BearerToken != "" {
			errs = append(errs, errors.New("credentials are given both in the url and in username/bearerToken"))
		}
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
		u.User = nil
	}
	if cfg.BearerToken != "" && (cfg.Username != "" || cfg.Password != "") {
		errs = append(errs, errors.New("give either username/password or bearerToken, not both"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must be positive, got %s", cfg.Timeout))
	}
	for k := range cfg.Labels {
		if !slo.ValidLabelName(k) {
			errs = append(errs, fmt.Errorf("label name %q is not a valid Prometheus label name", k))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("alertmanager: %w", errors.Join(errs...))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v2/alerts"
	u.RawQuery, u.Fragment = "", ""
	cfg.ExternalURL = strings.TrimSuffix(cfg.ExternalURL, "/")
	return &Notifier{endpoint: u.String(), cfg: cfg, client: cfg.Client}, nil
}

// Peer is alerting.PeerAlertmanager.
func (n *Notifier) Peer() string { return alerting.PeerAlertmanager }

// Key is "alert/<slo>/<severity>/<at unix>/<firing|resolved>" for every
// alert event, re-sends included (each evaluation's re-send keeps the alert
// alive, so it must not be de-duplicated away); "" for other kinds.
func (n *Notifier) Key(e alerting.Event) string {
	if e.Kind != alerting.KindAlert || e.Alert == nil {
		return ""
	}
	state := "resolved"
	if e.Alert.Firing {
		state = "firing"
	}
	return fmt.Sprintf("alert/%s/%s/%d/%s", e.Alert.SLO, e.Alert.Severity, e.At.Unix(), state)
}

// PostableAlert is one alert of POST /api/v2/alerts.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Alert turns an alert event into Alertmanager's form.
func (n *Notifier) Alert(e alerting.Event) (PostableAlert, error) {
	a := e.Alert
	if e.Kind != alerting.KindAlert || a == nil {
		return PostableAlert{}, fmt.Errorf("alertmanager: a %s event is not an alert", e.Kind)
	}
	if a.SLO == "" || a.Severity == "" {
		return PostableAlert{}, errors.New("alertmanager: alert without an SLO or a severity")
	}
	name := a.Name
	if name == "" {
		name = DefaultAlertName
	}
	labels := map[string]string{"severity": string(a.Severity)}
	maps.Copy(labels, n.cfg.Labels)
	for k, v := range a.Labels {
		if slo.ValidLabelName(k) {
			labels[k] = v
		}
	}
	labels["alertname"], labels["service"], labels["slo"] = name, a.Service, a.SLO
	labels["slo_severity"] = string(a.Severity)
	for k, v := range labels {
		if v == "" {
			delete(labels, k) // Alertmanager refuses empty label values
		}
	}

	ann := map[string]string{}
	maps.Copy(ann, a.Annotations)
	ann["summary"], ann["description"] = a.Summary, a.Description
	ann["burn_rates"] = burnRates(a.BurnRates)
	if a.BudgetRemaining != nil {
		ann["budget_remaining"] = strconv.FormatFloat(*a.BudgetRemaining, 'f', 4, 64)
	}
	gen := ""
	if n.cfg.ExternalURL != "" {
		gen = n.cfg.ExternalURL + "/v1/slos/" + url.PathEscape(a.SLO)
		ann["slogate_url"] = gen
	}
	if len(e.Links) > 0 {
		ann["link"] = e.Links[0].Href
		if gen == "" {
			gen = e.Links[0].Href
		}
	}
	for k, v := range ann {
		if v == "" {
			delete(ann, k)
		}
	}
	return PostableAlert{Labels: labels, Annotations: ann, StartsAt: a.StartsAt.UTC(), EndsAt: a.EndsAt.UTC(), GeneratorURL: gen}, nil
}

// burnRates is "5m=1.20 30m=0.80 ..." in window order, unknown ones as "?".
func burnRates(m map[string]*float64) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		return cmpDuration(a, b)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := "?"
		if m[k] != nil {
			v = strconv.FormatFloat(*m[k], 'f', 2, 64)
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

func cmpDuration(a, b string) int {
	da, ea := parseShort(a)
	db, eb := parseShort(b)
	if ea != nil || eb != nil || da == db {
		return strings.Compare(a, b)
	}
	if da < db {
		return -1
	}
	return 1
}

// parseShort reads the burn-rate window keys ("5m", "1h", "1d", "3d").
func parseShort(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}

// Notify posts the alert. 2xx: delivered. 400 and other 4xx but 401, 403,
// 404, 408 and 429: final (Alertmanager refused the alert). 408, 429, 5xx,
// timeouts and connection errors: retry. 401, 403, 404 (a proxy, a wrong
// URL or credentials): retry as an alerting.ConfigError.
func (n *Notifier) Notify(ctx context.Context, e alerting.Event) (retry bool, err error) {
	pa, err := n.Alert(e)
	if err != nil {
		return false, err
	}
	if e.Alert.Firing && !pa.EndsAt.IsZero() && pa.EndsAt.Before(time.Now()) {
		// A re-send delivered after its own end (the peer was down): a
		// newer re-send or the resolution supersedes it, and posting it
		// would resolve a firing alert at Alertmanager.
		return false, nil
	}
	body, err := json.Marshal([]PostableAlert{pa})
	if err != nil {
		return false, fmt.Errorf("alertmanager: encode alert: %w", err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, n.cfg.Timeout,
		fmt.Errorf("alertmanager: POST /api/v2/alerts timed out after %s", n.cfg.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("alertmanager: request: %w", redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "slogate")
	switch {
	case n.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+n.cfg.BearerToken)
	case n.cfg.Username != "" || n.cfg.Password != "":
		req.SetBasicAuth(n.cfg.Username, n.cfg.Password)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
			return true, c
		}
		return true, fmt.Errorf("alertmanager: POST /api/v2/alerts: %w", redact(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return false, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return true, fmt.Errorf("alertmanager: POST /api/v2/alerts: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	case alerting.Misconfigured(code):
		return true, &alerting.ConfigError{Status: code, Err: fmt.Errorf("alertmanager: POST /api/v2/alerts: %s: %s", resp.Status, strings.TrimSpace(string(msg)))}
	default:
		return false, fmt.Errorf("alertmanager: POST /api/v2/alerts refused: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
}

// redact drops the URL from an *url.Error (it is ours and known; it might
// carry credentials in other configurations) and keeps the cause.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}
