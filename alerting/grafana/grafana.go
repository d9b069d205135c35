// Package grafana draws deploys and gate decisions on Grafana as
// annotations (HTTP API: /api/annotations, with a service account token).
//
// A deploy is a region: its start is created when the deploy is recorded,
// and its end is set when it finishes. Every deploy annotation carries the
// tag "deploy-id:<id>", so the finish finds its region by tags and needs no
// state of its own; a finish whose start never reached Grafana creates the
// whole region at once. A promote or halt decision is a point annotation.
package grafana

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
)

const (
	// DefaultTimeout bounds one call to Grafana.
	DefaultTimeout = 10 * time.Second

	annotationsPath = "/api/annotations"
	// lookupLimit bounds the annotations read back to find a deploy's
	// region: there is one per deploy id, a few if something went wrong.
	lookupLimit     = 10
	maxResponseBody = 1 << 20
)

// ErrToken marks a 401 or 403 from Grafana: the service account token is
// wrong, expired or lacks the annotations permissions.
var ErrToken = errors.New("grafana refused the service account token")

// Config configures a Notifier.
type Config struct {
	// URL is Grafana's root URL (https://grafana.example.com, or with its
	// sub-path when served under one). Required.
	URL string
	// Token is a service account token with annotations:write (and read).
	// Required; never logged.
	Token string
	// DashboardUID ties the annotations to one dashboard; without it they
	// are organisation annotations, shown where a dashboard queries them
	// by tags.
	DashboardUID string
	// Timeout bounds each call (default 10s).
	Timeout time.Duration
	// ExtraTags are added to every annotation.
	ExtraTags []string
}

// Notifier draws deploys and decisions on Grafana. It implements
// alerting.Notifier.
type Notifier struct {
	base         string
	token        string
	dashboardUID string
	extraTags    []string
	timeout      time.Duration
	client       *http.Client
	logger       *slog.Logger

	// deploys serialises the start and finish of one deploy in this
	// process: delivered at once, both would find no region and draw two.
	mu      sync.Mutex
	deploys map[string]*deployLock
}

type deployLock struct {
	sync.Mutex
	users int
}

// lockDeploy holds the deploy's lock until the returned func is called.
func (n *Notifier) lockDeploy(id string) func() {
	n.mu.Lock()
	if n.deploys == nil {
		n.deploys = map[string]*deployLock{}
	}
	l := n.deploys[id]
	if l == nil {
		l = &deployLock{}
		n.deploys[id] = l
	}
	l.users++
	n.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		n.mu.Lock()
		if l.users--; l.users == 0 {
			delete(n.deploys, id)
		}
		n.mu.Unlock()
	}
}

var _ alerting.Notifier = (*Notifier)(nil)

// New checks cfg, reporting every problem at once, and returns a Notifier.
// A nil logger discards.
func New(cfg Config, logger *slog.Logger) (*Notifier, error) {
	var errs []error
	base := ""
	if cfg.URL == "" {
		errs = append(errs, errors.New("grafana: url: required"))
	} else if u, err := alerting.PeerURL("grafana", cfg.URL); err != nil {
		errs = append(errs, err)
	} else {
		base = strings.TrimSuffix(u.String(), "/")
	}
	if strings.TrimSpace(cfg.Token) == "" {
		errs = append(errs, errors.New("grafana: token: required (a service account token)"))
	} else if strings.ContainsAny(cfg.Token, " \t\r\n") {
		errs = append(errs, errors.New("grafana: token: must not contain white space"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("grafana: timeout: must not be negative, got %s", cfg.Timeout))
	}
	for i, tag := range cfg.ExtraTags {
		if strings.TrimSpace(tag) == "" {
			errs = append(errs, fmt.Errorf("grafana: extraTags[%d]: must not be empty", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Notifier{
		base:         base,
		token:        cfg.Token,
		dashboardUID: cfg.DashboardUID,
		extraTags:    slices.Clone(cfg.ExtraTags),
		timeout:      cfg.Timeout,
		client:       &http.Client{Timeout: cfg.Timeout},
		logger:       logger.With("component", "notifier", "peer", alerting.PeerGrafana),
	}, nil
}

// String describes the notifier without its token.
func (n *Notifier) String() string {
	if n.dashboardUID != "" {
		return fmt.Sprintf("grafana(%s, dashboard %s)", n.base, n.dashboardUID)
	}
	return fmt.Sprintf("grafana(%s)", n.base)
}

// Peer returns alerting.PeerGrafana.
func (n *Notifier) Peer() string { return alerting.PeerGrafana }

// Key returns "deploy/<id>/start", "deploy/<id>/finish" or
// "decision/<service>/<env>/<deployId or version>/<decision>" (promote and
// halt only), "" for what Grafana does not take.
func (n *Notifier) Key(e alerting.Event) string {
	switch e.Kind {
	case alerting.KindDeployStarted:
		if e.Deploy != nil && e.Deploy.ID != "" {
			return "deploy/" + e.Deploy.ID + "/start"
		}
	case alerting.KindDeployFinished:
		if e.Deploy != nil && e.Deploy.ID != "" {
			return "deploy/" + e.Deploy.ID + "/finish"
		}
	case alerting.KindDecision:
		if a := e.Decision; a != nil && (a.Decision == slogate.Promote || a.Decision == slogate.Halt) {
			return fmt.Sprintf("decision/%s/%s/%s/%s", a.Service, a.Environment, e.DecisionSubject(), a.Decision)
		}
	}
	return ""
}

// Notify creates or closes the annotation of e. A 200 is delivered; 400,
// 404 and a refused token (401, 403) are final; 429, 5xx and failed or
// timed-out calls are to be retried.
func (n *Notifier) Notify(ctx context.Context, e alerting.Event) (retry bool, err error) {
	if n.Key(e) == "" {
		return false, fmt.Errorf("grafana: event %s is not a deploy or a promote/halt decision", e.Kind)
	}
	switch e.Kind {
	case alerting.KindDeployStarted:
		err = n.deployStarted(ctx, e)
	case alerting.KindDeployFinished:
		err = n.deployFinished(ctx, e)
	default:
		err = n.decision(ctx, e)
	}
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && alerting.Misconfigured(se.status) {
			return true, &alerting.ConfigError{Status: se.status, Err: fmt.Errorf("grafana: %s: %w", n.Key(e), err)}
		}
		return retryable(err), fmt.Errorf("grafana: %s: %w", n.Key(e), err)
	}
	return false, nil
}

// annotation is Grafana's annotation, as created and as found.
type annotation struct {
	ID           int64    `json:"id,omitempty"`
	DashboardUID string   `json:"dashboardUID,omitempty"`
	Time         int64    `json:"time"`
	TimeEnd      int64    `json:"timeEnd,omitempty"`
	Tags         []string `json:"tags"`
	Text         string   `json:"text"`
}

func (n *Notifier) deployStarted(ctx context.Context, e alerting.Event) error {
	d := e.Deploy
	defer n.lockDeploy(d.ID)()
	// A start sent again after its answer was lost finds its region.
	found, err := n.findDeploy(ctx, d.ID)
	if err != nil {
		return err
	}
	if found != nil {
		n.logger.Debug("deploy annotation exists", "deploy_id", d.ID, "annotation_id", found.ID)
		return nil
	}
	id, err := n.create(ctx, annotation{
		DashboardUID: n.dashboardUID, Time: ms(d.StartedAt), Tags: n.deployTags(d), Text: deployText(d),
	})
	if err != nil {
		return err
	}
	n.logger.Debug("deploy annotation added", "deploy_id", d.ID, "annotation_id", id)
	return n.settle(ctx, d.ID)
}

func (n *Notifier) deployFinished(ctx context.Context, e alerting.Event) error {
	d := e.Deploy
	end := e.At
	if d.FinishedAt != nil {
		end = *d.FinishedAt
	}
	defer n.lockDeploy(d.ID)()
	found, err := n.findDeploy(ctx, d.ID)
	if err != nil {
		return err
	}
	if found == nil {
		// The start never reached Grafana: draw the whole region.
		id, err := n.create(ctx, annotation{
			DashboardUID: n.dashboardUID, Time: ms(d.StartedAt), TimeEnd: ms(end),
			Tags: n.deployTags(d), Text: deployText(d),
		})
		if err != nil {
			return err
		}
		n.logger.Debug("deploy annotation added whole", "deploy_id", d.ID, "annotation_id", id)
		return n.settle(ctx, d.ID)
	}
	if found.TimeEnd == ms(end) {
		return nil
	}
	path := annotationsPath + "/" + strconv.FormatInt(found.ID, 10)
	return n.call(ctx, http.MethodPatch, path, nil, struct {
		TimeEnd int64 `json:"timeEnd"`
	}{ms(end)}, nil)
}

func (n *Notifier) decision(ctx context.Context, e alerting.Event) error {
	a := e.Decision
	at := a.EvaluatedAt
	if at.IsZero() {
		at = e.At
	}
	tags := []string{"slogate", a.Service, a.Environment}
	if a.Version != "" {
		tags = append(tags, a.Version)
	}
	tags = append(tags, string(a.Decision))
	tags = append(tags, n.extraTags...)
	_, err := n.create(ctx, annotation{
		DashboardUID: n.dashboardUID, Time: ms(at), Tags: tags, Text: decisionText(e),
	})
	return err
}

// settle leaves one annotation per deploy when two replicas drew one each
// at the same time: the oldest stays, with the latest end any of them had;
// the others are deleted.
func (n *Notifier) settle(ctx context.Context, id string) error {
	all, err := n.deployAnnotations(ctx, id)
	if err != nil || len(all) < 2 {
		return err
	}
	keep := all[0]
	end := keep.TimeEnd
	for _, a := range all[1:] {
		end = max(end, a.TimeEnd)
		if err := n.call(ctx, http.MethodDelete, annotationsPath+"/"+strconv.FormatInt(a.ID, 10), nil, nil, nil); err != nil {
			return err
		}
		n.logger.Info("removed a second annotation of a deploy", "deploy_id", id, "annotation_id", a.ID, "kept", keep.ID)
	}
	if end == keep.TimeEnd {
		return nil
	}
	return n.call(ctx, http.MethodPatch, annotationsPath+"/"+strconv.FormatInt(keep.ID, 10), nil, struct {
		TimeEnd int64 `json:"timeEnd"`
	}{end}, nil)
}

// findDeploy returns the annotation of a deploy (the oldest), or nil.
func (n *Notifier) findDeploy(ctx context.Context, id string) (*annotation, error) {
	all, err := n.deployAnnotations(ctx, id)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return &all[0], nil
}

// deployAnnotations returns the annotations of a deploy, oldest first.
func (n *Notifier) deployAnnotations(ctx context.Context, id string) ([]annotation, error) {
	q := url.Values{}
	q.Add("tags", "slogate")
	q.Add("tags", deployIDTag(id))
	q.Set("type", "annotation")
	q.Set("limit", strconv.Itoa(lookupLimit))
	if n.dashboardUID != "" {
		q.Set("dashboardUID", n.dashboardUID)
	}
	var list []annotation
	if err := n.call(ctx, http.MethodGet, annotationsPath, q, nil, &list); err != nil {
		return nil, err
	}
	// Grafana matches every tag given; check anyway.
	var out []annotation
	for _, a := range list {
		if slices.Contains(a.Tags, deployIDTag(id)) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b annotation) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (n *Notifier) create(ctx context.Context, a annotation) (int64, error) {
	var answer struct {
		Message string `json:"message"`
		ID      int64  `json:"id"`
	}
	err := n.call(ctx, http.MethodPost, annotationsPath, nil, a, &answer)
	return answer.ID, err
}

func deployIDTag(id string) string { return "deploy-id:" + id }

func (n *Notifier) deployTags(d *slogate.Deploy) []string {
	tags := []string{"slogate", d.Service, d.Environment}
	if d.Version != "" {
		tags = append(tags, d.Version)
	}
	tags = append(tags, "deploy", deployIDTag(d.ID))
	return append(tags, n.extraTags...)
}

// deployText: "Deploy checkout v2 to production (commit 3f9c2ab, https://ci.example.com/run/42)".
func deployText(d *slogate.Deploy) string {
	s := fmt.Sprintf("Deploy %s %s to %s", d.Service, d.Version, d.Environment)
	var extra []string
	if d.Commit != "" {
		extra = append(extra, "commit "+d.Commit)
	}
	if d.PipelineURL != "" {
		extra = append(extra, d.PipelineURL)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}

// decisionText: "slogate halted checkout v2 in production: <reason>".
func decisionText(e alerting.Event) string {
	a := e.Decision
	verb := "promoted"
	if a.Decision == slogate.Halt {
		verb = "halted"
	}
	subject := a.Service
	if a.Version != "" {
		subject += " " + a.Version
	}
	s := fmt.Sprintf("slogate %s %s in %s", verb, subject, a.Environment)
	if a.Reason != "" {
		s += ": " + a.Reason
	}
	if e.DecisionDeploy != nil && e.DecisionDeploy.PipelineURL != "" {
		s += " (" + e.DecisionDeploy.PipelineURL + ")"
	}
	return s
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// statusError is an answer of Grafana other than 2xx.
type statusError struct {
	method, path string
	status       int
	message      string
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.method, e.path, e.status)
	if e.message != "" {
		s += ": " + e.message
	}
	if e.status == http.StatusUnauthorized || e.status == http.StatusForbidden {
		s += " (check the service account token and that its role may read and write annotations)"
	}
	return s
}

// Is makes a 401 or 403 match ErrToken.
func (e *statusError) Is(target error) bool {
	return target == ErrToken && (e.status == http.StatusUnauthorized || e.status == http.StatusForbidden)
}

// transportError is a call that got no answer (refused, reset, timed out).
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.status == http.StatusTooManyRequests || se.status == http.StatusRequestTimeout || se.status >= 500
	}
	var te *transportError
	return errors.As(err, &te)
}

// call makes one request with its own deadline and decodes a 2xx answer
// into out.
func (n *Notifier) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	ctx, cancel := context.WithTimeoutCause(ctx, n.timeout,
		fmt.Errorf("grafana %s %s timed out after %s", method, path, n.timeout))
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encoding the request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	target := n.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return &transportError{fmt.Errorf("%s %s: %w", method, path, cause)}
		}
		return &transportError{fmt.Errorf("%s %s: %w", method, path, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return &transportError{fmt.Errorf("%s %s: reading the answer (HTTP %d): %w", method, path, resp.StatusCode, err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var msg struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &msg) != nil || msg.Message == "" {
			msg.Message = truncate(strings.TrimSpace(string(raw)), 200)
		}
		return &statusError{method: method, path: path, status: resp.StatusCode, message: msg.Message}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer (HTTP %d): %w", method, path, resp.StatusCode, err)
		}
	}
	return nil
}

func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}
