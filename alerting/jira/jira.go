// Package jira files feedback issues in Jira — Jira Cloud (REST v3, the
// description in Atlassian Document Format, Basic auth with an email and
// an API token) or Jira Data Center (REST v2, a plain-text description, a
// personal access token) — when the gate halts a deploy and when an SLO
// spends its error budget for a period.
//
// Every issue carries a fingerprint label, "slogate-fp-<hash of the
// fingerprint>", and an event label, "slogate-ev-<hash of the issue's
// text>". Before filing, the notifier searches with JQL for an open issue
// with the fingerprint label: one that also has this event's label (or a
// comment with its marker) was filed by an earlier try whose answer was
// lost, and nothing is sent; else it comments on it instead of filing a
// second issue.
package jira

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
)

// PeerJira is the outbox peer name.
const PeerJira = "jira"

// Flavors.
const (
	Cloud      = "cloud"
	DataCenter = "datacenter"
)

const (
	// DefaultTimeout bounds one call to Jira.
	DefaultTimeout  = 10 * time.Second
	defaultWait     = time.Minute
	maxResponseBody = 4 << 20
	userAgent       = "slogate"
)

var projectKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,254}$`)

// Config configures a Notifier.
type Config struct {
	// URL is the site, e.g. https://example.atlassian.net or
	// https://jira.example.com. Required.
	URL string
	// Flavor is "cloud" (default) or "datacenter" ("server" and "dc" too).
	Flavor string
	// Project is the project key (OPS). Required.
	Project string
	// IssueType is the issue type's name (default Bug).
	IssueType string
	// Email and Token: Cloud's Basic auth (an Atlassian account email and
	// an API token). Data Center: Token is a personal access token.
	Email string
	Token string
	// Labels and Components are put on every issue (labels default to
	// ["slogate"]).
	Labels     []string
	Components []string
	Timeout    time.Duration
}

// Notifier files issues in Jira. It implements alerting.Notifier.
type Notifier struct {
	base       *url.URL
	cloud      bool
	project    string
	issueType  string
	auth       string // the Authorization header value; never logged
	secret     string
	labels     []string
	components []string
	timeout    time.Duration
	client     *http.Client
	logger     *slog.Logger
	now        func() time.Time
}

var _ alerting.Notifier = (*Notifier)(nil)

// New checks cfg, reporting every problem at once.
func New(cfg Config, logger *slog.Logger) (*Notifier, error) {
	var errs []error
	base, err := alerting.PeerURL("jira", strings.TrimSuffix(cfg.URL, "/"))
	if cfg.URL == "" {
		errs = append(errs, errors.New("jira: url: required (https://example.atlassian.net)"))
	} else if err != nil {
		errs = append(errs, err)
	}
	cloud := true
	switch strings.ToLower(cfg.Flavor) {
	case "", Cloud:
	case DataCenter, "server", "dc":
		cloud = false
	default:
		errs = append(errs, fmt.Errorf("jira: flavor: want cloud or datacenter, got %q", cfg.Flavor))
	}
	if !projectKey.MatchString(cfg.Project) {
		errs = append(errs, fmt.Errorf("jira: project: want a project key such as OPS, got %q", cfg.Project))
	}
	if cfg.IssueType == "" {
		cfg.IssueType = "Bug"
	}
	if strings.TrimSpace(cfg.Token) == "" || strings.ContainsAny(cfg.Token, " \t\r\n") {
		errs = append(errs, errors.New("jira: token: required, without white space"))
	}
	if cloud && !strings.Contains(cfg.Email, "@") {
		errs = append(errs, errors.New("jira: email: required on Jira Cloud (the API token's account)"))
	}
	if cfg.Labels == nil {
		cfg.Labels = []string{"slogate"}
	}
	for i, l := range cfg.Labels {
		if l == "" || strings.ContainsAny(l, " \t\r\n") {
			errs = append(errs, fmt.Errorf("jira: labels[%d]: a label has no white space, got %q", i, l))
		}
	}
	for i, c := range cfg.Components {
		if strings.TrimSpace(c) == "" {
			errs = append(errs, fmt.Errorf("jira: components[%d]: empty", i))
		}
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("jira: timeout: must not be negative, got %s", cfg.Timeout))
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
	auth := "Bearer " + cfg.Token
	if cloud {
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Email+":"+cfg.Token))
	}
	return &Notifier{
		base: base, cloud: cloud, project: cfg.Project, issueType: cfg.IssueType, auth: auth, secret: cfg.Token,
		labels: slices.Clone(cfg.Labels), components: slices.Clone(cfg.Components), timeout: cfg.Timeout,
		client: &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != base.Host {
				return fmt.Errorf("redirect to another host (%s) refused", req.URL.Host)
			}
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return nil
		}},
		logger: logger.With("component", "notifier", "peer", PeerJira),
		now:    time.Now,
	}, nil
}

// String describes the notifier without its credentials.
func (n *Notifier) String() string {
	flavor := "cloud"
	if !n.cloud {
		flavor = "datacenter"
	}
	return fmt.Sprintf("jira(%s, %s, project %s)", n.base, flavor, n.project)
}

// Peer returns "jira".
func (n *Notifier) Peer() string { return PeerJira }

// Key is the issue's fingerprint, "halt/<service>/<env>/<subject>" or
// "budget/<slo>/<period>"; "" for other events.
func (n *Notifier) Key(e alerting.Event) string {
	switch e.Kind {
	case alerting.KindDecision:
		if a := e.Decision; a != nil && a.Decision == slogate.Halt {
			return fmt.Sprintf("halt/%s/%s/%s", a.Service, a.Environment, e.DecisionSubject())
		}
	case alerting.KindBudgetExhausted:
		if b := e.Budget; b != nil && b.SLO != "" {
			return fmt.Sprintf("budget/%s/%s", b.SLO, b.Period)
		}
	}
	return ""
}

// FingerprintLabel is the label that marks the issue of a fingerprint.
func FingerprintLabel(fp string) string { return "slogate-fp-" + short(fp) }

// eventLabel marks the issue (or comment) of one rendering of an event.
func eventLabel(summary string, doc document) string {
	return "slogate-ev-" + short(summary+"\x00"+doc.text())
}

func short(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// Notify files the issue of e, or comments on the open issue with its
// fingerprint. 5xx, 429 (not before Retry-After) and failed calls are to
// be retried; other 4xx are final.
func (n *Notifier) Notify(ctx context.Context, e alerting.Event) (retry bool, err error) {
	fp := n.Key(e)
	if fp == "" {
		return false, fmt.Errorf("jira: event %s is not a halt or an exhausted budget", e.Kind)
	}
	summary, doc := render(e)
	if err := n.deliver(ctx, fp, summary, doc); err != nil {
		return retryable(err), fmt.Errorf("jira: %s: %w", fp, err)
	}
	return false, nil
}

func (n *Notifier) api() string {
	if n.cloud {
		return "/rest/api/3"
	}
	return "/rest/api/2"
}

func (n *Notifier) body(doc document) any {
	if n.cloud {
		return doc.adf()
	}
	return doc.text()
}

func (n *Notifier) deliver(ctx context.Context, fp, summary string, doc document) error {
	fpLabel, evLabel := FingerprintLabel(fp), eventLabel(summary, doc)
	found, err := n.find(ctx, fpLabel)
	if err != nil {
		return err
	}
	if found != nil {
		if slices.Contains(found.Fields.Labels, evLabel) || found.commented(evLabel) {
			n.logger.Debug("issue already filed", "fingerprint", fp, "issue", found.Key)
			return nil
		}
		c := doc
		c.blocks = append(slices.Clone(c.blocks), block{text: "slogate-event: " + evLabel})
		if err := n.call(ctx, http.MethodPost, n.api()+"/issue/"+url.PathEscape(found.Key)+"/comment", map[string]any{"body": n.body(c)}, nil); err != nil {
			return err
		}
		n.logger.Info("commented on the open issue", "fingerprint", fp, "issue", found.Key)
		return nil
	}
	fields := map[string]any{
		"project":     map[string]string{"key": n.project},
		"issuetype":   map[string]string{"name": n.issueType},
		"summary":     summary,
		"description": n.body(doc),
		"labels":      append(slices.Clone(n.labels), fpLabel, evLabel),
	}
	if len(n.components) > 0 {
		cs := make([]map[string]string, len(n.components))
		for i, c := range n.components {
			cs[i] = map[string]string{"name": c}
		}
		fields["components"] = cs
	}
	var created struct {
		Key string `json:"key"`
	}
	if err := n.call(ctx, http.MethodPost, n.api()+"/issue", map[string]any{"fields": fields}, &created); err != nil {
		return err
	}
	n.logger.Info("filed an issue", "fingerprint", fp, "issue", created.Key)
	return nil
}

type foundIssue struct {
	Key    string `json:"key"`
	Fields struct {
		Labels  []string `json:"labels"`
		Comment struct {
			Comments []struct {
				Body json.RawMessage `json:"body"`
			} `json:"comments"`
		} `json:"comment"`
	} `json:"fields"`
}

func (f *foundIssue) commented(evLabel string) bool {
	for _, c := range f.Fields.Comment.Comments {
		if bytes.Contains(c.Body, []byte(evLabel)) {
			return true
		}
	}
	return false
}

// find is the oldest open issue of the project with the fingerprint
// label, or nil. Cloud: GET /rest/api/3/search/jql; Data Center: GET
// /rest/api/2/search.
func (n *Notifier) find(ctx context.Context, fpLabel string) (*foundIssue, error) {
	jql := fmt.Sprintf(`project = %q AND labels = %q AND statusCategory != Done ORDER BY created ASC`, n.project, fpLabel)
	q := url.Values{}
	q.Set("jql", jql)
	q.Set("fields", "labels,comment")
	q.Set("maxResults", "1")
	path := n.api() + "/search"
	if n.cloud {
		path += "/jql"
	}
	var out struct {
		Issues []foundIssue `json:"issues"`
	}
	if err := n.call(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	if len(out.Issues) == 0 {
		return nil, nil
	}
	return &out.Issues[0], nil
}

// call makes one request with its own deadline.
func (n *Notifier) call(ctx context.Context, method, pathQuery string, in, out any) error {
	name := method + " " + strings.SplitN(pathQuery, "?", 2)[0]
	ctx, cancel := context.WithTimeoutCause(ctx, n.timeout, fmt.Errorf("jira %s timed out after %s", name, n.timeout))
	defer cancel()
	var body io.Reader
	if in != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(in); err != nil {
			return fmt.Errorf("%s: encoding: %w", name, err)
		}
		body = &buf
	}
	req, err := http.NewRequestWithContext(ctx, method, n.base.String()+pathQuery, body)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	req.Header.Set("Authorization", n.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return &Error{Call: name, Message: err.Error(), retry: true}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return &Error{Call: name, Status: resp.StatusCode, Message: "reading the answer: " + err.Error(), retry: true}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return n.failure(name, resp, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s: decoding the answer (HTTP %d): %w", name, resp.StatusCode, err)
		}
	}
	return nil
}

// failure reads Jira's error answer ({"errorMessages":[],"errors":{}}).
func (n *Notifier) failure(name string, resp *http.Response, raw []byte) error {
	var ans struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	}
	var parts []string
	if json.Unmarshal(raw, &ans) == nil {
		parts = append(parts, ans.ErrorMessages...)
		keys := make([]string, 0, len(ans.Errors))
		for k := range ans.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			parts = append(parts, k+": "+ans.Errors[k])
		}
	} else if s := strings.TrimSpace(string(raw)); s != "" {
		parts = append(parts, alerting.Excerpt(s, n.secret))
	}
	msg := strings.ReplaceAll(strings.Join(parts, "; "), n.secret, "[token]")
	e := &Error{Call: name, Status: resp.StatusCode, Message: msg}
	code := resp.StatusCode
	e.retry = code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
	if e.retry {
		if t, ok := alerting.RetryAfter(resp.Header, n.now()); ok {
			e.until = t
		} else if code == http.StatusTooManyRequests {
			e.until = n.now().Add(defaultWait)
		}
	}
	return e
}

// Error is a failed call to Jira.
type Error struct {
	Call    string
	Status  int // 0: no answer
	Message string
	retry   bool
	until   time.Time
}

func (e *Error) Error() string {
	s := e.Call
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	switch e.Status {
	case http.StatusUnauthorized:
		s += " (check the email and token)"
	case http.StatusForbidden, http.StatusNotFound:
		s += " (check the project and that the account may create issues in it)"
	}
	return s
}

// NotBefore is when Jira may be called again (Retry-After); zero when it
// named no time. The dispatcher holds the peer's messages until then.
func (e *Error) NotBefore() time.Time { return e.until }

func retryable(err error) bool {
	var je *Error
	if errors.As(err, &je) {
		return je.retry
	}
	return false
}
