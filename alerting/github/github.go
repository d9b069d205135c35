// Package github files feedback issues on GitHub (or GitHub Enterprise)
// through the REST API: one issue when the gate halts a deploy, one when an
// SLO spends its error budget for a period.
//
// Every issue body ends with a fingerprint marker,
// "<!-- slogate-fingerprint: halt/checkout/production/dep_01 -->". Before
// filing, the notifier reads the repository's open issues with its label
// (not the search API, which is rate-limited harder and lags) and, when one
// carries the fingerprint, comments on it instead; an issue whose body is
// exactly the one it would file is taken as already delivered, so a retry
// after a lost answer files nothing twice.
package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
)

const (
	// DefaultURL is GitHub's REST API. GitHub Enterprise Server's is
	// https://<host>/api/v3.
	DefaultURL = "https://api.github.com"
	// DefaultTimeout bounds one call to GitHub.
	DefaultTimeout = 10 * time.Second
	// APIVersion is the REST API version asked for.
	APIVersion = "2022-11-28"

	userAgent       = "slogate"
	perPage         = 100
	maxPages        = 50
	maxResponseBody = 16 << 20
	// secondaryWait is how long to hold off after a secondary rate limit
	// that names no time ("wait for at least one minute").
	secondaryWait = time.Minute
)

// DefaultLabels label the issues slogate files, and select the open
// issues it reads back.
var DefaultLabels = []string{"slogate"}

var repoPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// Config configures a Notifier.
type Config struct {
	// Repo is "owner/name". Required.
	Repo string
	// Token is a token that may read and write the repository's issues.
	// Required; never logged.
	Token string
	// URL is the API base (default https://api.github.com; GitHub
	// Enterprise Server: https://ghe.example.com/api/v3).
	URL string
	// Labels are put on every issue (default ["slogate"]); the first one
	// selects the open issues searched for a fingerprint.
	Labels []string
	// Timeout bounds each call (default 10s).
	Timeout time.Duration
}

// Notifier files issues on GitHub. It implements alerting.Notifier.
type Notifier struct {
	base    *url.URL
	owner   string
	repo    string
	token   string
	labels  []string
	timeout time.Duration
	client  *http.Client
	logger  *slog.Logger
	now     func() time.Time
}

var _ alerting.Notifier = (*Notifier)(nil)

// New checks cfg, reporting every problem at once, and returns a Notifier.
// A nil logger discards.
func New(cfg Config, logger *slog.Logger) (*Notifier, error) {
	var errs []error
	if cfg.Repo == "" {
		errs = append(errs, errors.New("github: repo: required (owner/name)"))
	} else if !repoPattern.MatchString(cfg.Repo) {
		errs = append(errs, fmt.Errorf("github: repo: must be owner/name, got %q", cfg.Repo))
	}
	if strings.TrimSpace(cfg.Token) == "" {
		errs = append(errs, errors.New("github: token: required"))
	} else if strings.ContainsAny(cfg.Token, " \t\r\n") {
		errs = append(errs, errors.New("github: token: must not contain white space"))
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	base, err := alerting.PeerURL("github", strings.TrimSuffix(cfg.URL, "/"))
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.Labels == nil {
		cfg.Labels = DefaultLabels
	}
	if len(cfg.Labels) == 0 {
		errs = append(errs, errors.New("github: labels: at least one is needed to find slogate's issues"))
	}
	for i, l := range cfg.Labels {
		if strings.TrimSpace(l) == "" || strings.Contains(l, ",") {
			errs = append(errs, fmt.Errorf("github: labels[%d]: must be a non-empty name without commas, got %q", i, l))
		}
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("github: timeout: must not be negative, got %s", cfg.Timeout))
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
	owner, repo, _ := strings.Cut(cfg.Repo, "/")
	return &Notifier{
		base:    base,
		owner:   owner,
		repo:    repo,
		token:   cfg.Token,
		labels:  slices.Clone(cfg.Labels),
		timeout: cfg.Timeout,
		client: &http.Client{
			Timeout: cfg.Timeout,
			// The token goes to the configured host only.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if req.URL.Host != base.Host {
					return fmt.Errorf("redirect to another host (%s) refused", req.URL.Host)
				}
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				return nil
			},
		},
		logger: logger.With("component", "notifier", "peer", alerting.PeerGitHub),
		now:    time.Now,
	}, nil
}

// String describes the notifier without its token.
func (n *Notifier) String() string {
	return fmt.Sprintf("github(%s, repo %s/%s, labels %s)", n.base, n.owner, n.repo, strings.Join(n.labels, ","))
}

// Peer returns alerting.PeerGitHub.
func (n *Notifier) Peer() string { return alerting.PeerGitHub }

// Key returns the fingerprint of the issue e files,
// "halt/<service>/<env>/<deployId or version>" or "budget/<slo>/<period>",
// or "" when GitHub does not take e.
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

// Marker is the line that fingerprints an issue body.
func Marker(fingerprint string) string {
	return "<!-- slogate-fingerprint: " + fingerprint + " -->"
}

// Notify files the issue of e, or comments on the open issue that carries
// its fingerprint. A 201 is delivered; 401, 403 (not a rate limit), 404,
// 410 and 422 are final; 5xx, rate limits and failed or timed-out calls are
// to be retried — for a rate limit, not before RetryAfter(err).
func (n *Notifier) Notify(ctx context.Context, e alerting.Event) (retry bool, err error) {
	fp := n.Key(e)
	if fp == "" {
		return false, fmt.Errorf("github: event %s is not a halt or an exhausted budget", e.Kind)
	}
	title, body := render(e, fp)
	if err := n.deliver(ctx, fp, title, body); err != nil {
		return retryable(err), fmt.Errorf("github: %s: %w", fp, err)
	}
	return false, nil
}

func (n *Notifier) deliver(ctx context.Context, fp, title, body string) error {
	found, err := n.findIssue(ctx, Marker(fp))
	if err != nil {
		return err
	}
	if found != nil {
		if found.Body == body {
			// Filed by an earlier try whose answer was lost.
			n.logger.Debug("issue already filed", "fingerprint", fp, "issue", found.Number)
			return nil
		}
		var c struct {
			HTMLURL string `json:"html_url"`
		}
		path := fmt.Sprintf("%s/issues/%d/comments", n.repoPath(), found.Number)
		comment := strings.TrimSuffix(body, "\n"+Marker(fp)+"\n")
		if err := n.call(ctx, http.MethodPost, path, map[string]string{"body": comment}, &c); err != nil {
			return err
		}
		n.logger.Info("commented on the open issue", "fingerprint", fp, "issue", found.Number, "url", c.HTMLURL)
		return nil
	}
	var created issue
	in := struct {
		Title  string   `json:"title"`
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
	}{title, body, n.labels}
	if err := n.call(ctx, http.MethodPost, n.repoPath()+"/issues", in, &created); err != nil {
		return err
	}
	n.logger.Info("filed an issue", "fingerprint", fp, "issue", created.Number, "url", created.HTMLURL)
	return nil
}

type issue struct {
	Number      int             `json:"number"`
	HTMLURL     string          `json:"html_url"`
	Body        string          `json:"body"`
	PullRequest json.RawMessage `json:"pull_request,omitempty"`
}

func (n *Notifier) repoPath() string {
	return "/repos/" + url.PathEscape(n.owner) + "/" + url.PathEscape(n.repo)
}

// findIssue returns the oldest open issue (not pull request) with the
// first label whose body holds marker, or nil.
func (n *Notifier) findIssue(ctx context.Context, marker string) (*issue, error) {
	q := url.Values{}
	q.Set("labels", n.labels[0])
	q.Set("state", "open")
	q.Set("per_page", strconv.Itoa(perPage))
	next := n.repoPath() + "/issues?" + q.Encode()
	var found *issue
	for page := 0; next != ""; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("listing open issues: more than %d pages", maxPages)
		}
		var list []issue
		link, err := n.get(ctx, next, &list)
		if err != nil {
			return nil, err
		}
		for i := range list {
			is := &list[i]
			if len(is.PullRequest) > 0 || !strings.Contains(is.Body, marker) {
				continue
			}
			if found == nil || is.Number < found.Number {
				found = is
			}
		}
		if next, err = n.nextPage(link); err != nil {
			return nil, err
		}
	}
	return found, nil
}

var nextLink = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// nextPage is the path and query of the Link header's rel="next", "" when
// there is none. A link to another host is refused: the token goes to the
// configured API only.
func (n *Notifier) nextPage(link string) (string, error) {
	m := nextLink.FindStringSubmatch(link)
	if m == nil {
		return "", nil
	}
	u, err := url.Parse(m[1])
	if err != nil {
		return "", fmt.Errorf("listing open issues: bad next link: %w", err)
	}
	if u.Host != n.base.Host || u.Scheme != n.base.Scheme {
		return "", fmt.Errorf("listing open issues: next page on another host (%s) refused", u.Host)
	}
	p := strings.TrimPrefix(u.EscapedPath(), n.base.EscapedPath())
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p, nil
}

func (n *Notifier) get(ctx context.Context, pathQuery string, out any) (link string, err error) {
	resp, err := n.do(ctx, http.MethodGet, pathQuery, nil, out)
	if resp != nil {
		link = resp.Header.Get("Link")
	}
	return link, err
}

func (n *Notifier) call(ctx context.Context, method, path string, in, out any) error {
	_, err := n.do(ctx, method, path, in, out)
	return err
}

// do makes one request with its own deadline, decodes a 2xx answer into
// out and turns the others into errors.
func (n *Notifier) do(ctx context.Context, method, pathQuery string, in, out any) (*http.Response, error) {
	name := method + " " + strings.SplitN(pathQuery, "?", 2)[0]
	ctx, cancel := context.WithTimeoutCause(ctx, n.timeout,
		fmt.Errorf("github %s timed out after %s", name, n.timeout))
	defer cancel()
	var body io.Reader
	if in != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // markdown keeps its & < > as written
		if err := enc.Encode(in); err != nil {
			return nil, fmt.Errorf("%s: encoding the request: %w", name, err)
		}
		body = &buf
	}
	req, err := http.NewRequestWithContext(ctx, method, n.base.String()+pathQuery, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", APIVersion)
	req.Header.Set("User-Agent", userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return nil, &transportError{fmt.Errorf("%s: %w", name, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return resp, &transportError{fmt.Errorf("%s: reading the answer (HTTP %d): %w", name, resp.StatusCode, err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, n.failure(name, resp, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp, fmt.Errorf("%s: decoding the answer (HTTP %d): %w", name, resp.StatusCode, err)
		}
	}
	return resp, nil
}

// failure turns a non-2xx answer into a *RateLimitError or a *StatusError.
func (n *Notifier) failure(name string, resp *http.Response, raw []byte) error {
	var ans struct {
		Message string `json:"message"`
		Errors  []struct {
			Resource string `json:"resource"`
			Field    string `json:"field"`
			Code     string `json:"code"`
			Message  string `json:"message"`
		} `json:"errors"`
	}
	msg := ""
	if json.Unmarshal(raw, &ans) == nil {
		msg = ans.Message
		for _, e := range ans.Errors {
			switch {
			case e.Message != "":
				msg += "; " + e.Message
			case e.Field != "":
				msg += fmt.Sprintf("; %s.%s: %s", e.Resource, e.Field, e.Code)
			}
		}
	} else {
		msg = alerting.Excerpt(string(raw), n.token)
	}
	msg = strings.ReplaceAll(msg, n.token, "[token]")
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
		if until, why, ok := n.rateLimit(resp, msg); ok {
			return &RateLimitError{Call: name, Status: resp.StatusCode, Until: until, Why: why, Message: msg}
		}
	}
	return &StatusError{Call: name, Status: resp.StatusCode, Message: msg}
}

// rateLimit tells, by GitHub's rules, whether an answer is a rate limit
// and until when to hold off: retry-after seconds if given; else, with
// x-ratelimit-remaining 0, until x-ratelimit-reset; else, for a 429 or a
// message naming a secondary rate limit, one minute.
func (n *Notifier) rateLimit(resp *http.Response, msg string) (time.Time, string, bool) {
	now := n.now()
	if t, ok := alerting.RetryAfter(resp.Header, now); ok {
		return t, "retry-after", true
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return time.Unix(reset, 0), "x-ratelimit-reset", true
		}
		return now.Add(secondaryWait), "x-ratelimit-remaining 0", true
	}
	if resp.StatusCode == http.StatusTooManyRequests || strings.Contains(strings.ToLower(msg), "rate limit") {
		return now.Add(secondaryWait), "secondary rate limit", true
	}
	return time.Time{}, "", false
}

// StatusError is an answer of GitHub other than 2xx and not a rate limit.
type StatusError struct {
	Call    string
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.Call, e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	switch e.Status {
	case http.StatusUnauthorized:
		s += " (check the token)"
	case http.StatusForbidden, http.StatusNotFound:
		s += " (check the repository and that the token may read and write its issues)"
	}
	return s
}

// RateLimitError is a rate-limited call: nothing should be sent to GitHub
// before Until.
type RateLimitError struct {
	Call    string
	Status  int
	Until   time.Time
	Why     string // the header or rule that set Until
	Message string
}

func (e *RateLimitError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d: rate limited, retry after %s (%s)", e.Call, e.Status, e.Until.UTC().Format(time.RFC3339), e.Why)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// NotBefore is the earliest instant GitHub may be called again; a
// dispatcher can find it through an interface of its own
// (interface{ NotBefore() time.Time }) without importing this package.
func (e *RateLimitError) NotBefore() time.Time { return e.Until }

// RetryAfter returns the earliest instant GitHub may be called again
// after err, when err is (or wraps) a rate limit.
func RetryAfter(err error) (time.Time, bool) {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.Until, true
	}
	return time.Time{}, false
}

type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status >= 500 || se.Status == http.StatusRequestTimeout
	}
	var te *transportError
	return errors.As(err, &te)
}
