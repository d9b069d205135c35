// Package githubapp is slogate's GitHub App: it answers GitHub's custom
// deployment protection rules. A deployment_protection_rule webhook
// becomes a pending rule, kept durably in a queue (the store's outbox);
// the Rules runner asks the gate for the budget policy of the service
// and environment and answers through the rule's callback — approved,
// rejected, or, while the gate says wait, a status report (a comment
// without a state) until the configured deadline.
//
// The App authenticates with a JWT (RS256, signed with its private key)
// exchanged for an installation access token, cached until shortly
// before it expires. Only URLs under the configured API base are called:
// a callback URL elsewhere is refused.
package githubapp

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/slogate/slogate/alerting"
)

const (
	// DefaultURL is GitHub's REST API; GitHub Enterprise Server's is
	// https://<host>/api/v3.
	DefaultURL = "https://api.github.com"
	// DefaultTimeout bounds one call to GitHub.
	DefaultTimeout = 10 * time.Second
	// APIVersion is the REST API version asked for.
	APIVersion = "2022-11-28"

	userAgent       = "slogate"
	maxResponseBody = 1 << 20
	// jwtLifetime: GitHub takes at most 10 minutes; iat is set a minute
	// back for clock drift, as GitHub advises.
	jwtLifetime = 9 * time.Minute
	jwtBackdate = time.Minute
	// tokenMargin: an installation token is renewed this long before it
	// expires.
	tokenMargin = 5 * time.Minute
)

// App calls GitHub's API as a GitHub App.
type App struct {
	id      int64
	key     *rsa.PrivateKey
	base    *url.URL
	timeout time.Duration
	client  *http.Client
	now     func() time.Time

	mu     sync.Mutex
	tokens map[int64]installationToken
}

type installationToken struct {
	token   string
	expires time.Time
}

// AppConfig configures an App.
type AppConfig struct {
	// ID is the App's id. Required.
	ID int64
	// PrivateKey is the App's private key, PEM (PKCS#1 or PKCS#8). Required;
	// never logged.
	PrivateKey []byte
	// URL is the API base (default https://api.github.com).
	URL string
	// Timeout bounds each call (default 10s).
	Timeout time.Duration
	// Clock (time.Now) and Transport (http.DefaultTransport) are for tests.
	Clock     func() time.Time
	Transport http.RoundTripper
}

// NewApp checks cfg, reporting every problem at once.
func NewApp(cfg AppConfig) (*App, error) {
	var errs []error
	if cfg.ID <= 0 {
		errs = append(errs, fmt.Errorf("id: must be the App's positive id, got %d", cfg.ID))
	}
	var key *rsa.PrivateKey
	if len(bytes.TrimSpace(cfg.PrivateKey)) == 0 {
		errs = append(errs, errors.New("privateKey: required (the App's PEM private key)"))
	} else {
		k, err := jwt.ParseRSAPrivateKeyFromPEM(cfg.PrivateKey)
		if err != nil {
			// The parser's message never holds the key.
			errs = append(errs, fmt.Errorf("privateKey: not an RSA private key in PEM: %v", err))
		}
		key = k
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	base, err := alerting.PeerURL("githubapp", strings.TrimSuffix(cfg.URL, "/"))
	if err != nil {
		errs = append(errs, fmt.Errorf("apiURL: %w", err))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must not be negative, got %s", cfg.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	return &App{
		id: cfg.ID, key: key, base: base, timeout: cfg.Timeout, now: cfg.Clock, tokens: map[int64]installationToken{},
		client: &http.Client{
			Timeout:   cfg.Timeout,
			Transport: cfg.Transport,
			// Tokens go to the API base only.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				return fmt.Errorf("redirect to %s refused", req.URL.Host)
			},
		},
	}, nil
}

// String describes the App without its key.
func (a *App) String() string { return fmt.Sprintf("githubapp(%d, %s)", a.id, a.base) }

// JWT is the App's token: RS256, iss the App id, valid for 9 minutes.
func (a *App) JWT() (string, error) {
	now := a.now()
	claims := jwt.RegisteredClaims{
		Issuer:    strconv.FormatInt(a.id, 10),
		IssuedAt:  jwt.NewNumericDate(now.Add(-jwtBackdate)),
		ExpiresAt: jwt.NewNumericDate(now.Add(jwtLifetime)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("signing the App's JWT: %w", err)
	}
	return s, nil
}

// token is an installation access token, from the cache while it has
// more than five minutes left.
func (a *App) token(ctx context.Context, installation int64) (string, error) {
	a.mu.Lock()
	t, ok := a.tokens[installation]
	a.mu.Unlock()
	if ok && a.now().Add(tokenMargin).Before(t.expires) {
		return t.token, nil
	}
	j, err := a.JWT()
	if err != nil {
		return "", err
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	path := fmt.Sprintf("%s/app/installations/%d/access_tokens", a.base, installation)
	if err := a.do(ctx, http.MethodPost, path, j, nil, &out); err != nil {
		return "", fmt.Errorf("installation token: %w", err)
	}
	if out.Token == "" || out.ExpiresAt.IsZero() {
		return "", errors.New("installation token: the answer has no token or expires_at")
	}
	a.mu.Lock()
	a.tokens[installation] = installationToken{token: out.Token, expires: out.ExpiresAt}
	a.mu.Unlock()
	return out.Token, nil
}

// forget drops a cached token GitHub refused.
func (a *App) forget(installation int64) {
	a.mu.Lock()
	delete(a.tokens, installation)
	a.mu.Unlock()
}

// Review is the body of a protection rule's callback. Without State it is
// a status report.
type Review struct {
	EnvironmentName string `json:"environment_name"`
	State           string `json:"state,omitempty"`
	Comment         string `json:"comment"`
}

// States of a Review.
const (
	StateApproved = "approved"
	StateRejected = "rejected"
)

// MaxComment is the longest comment GitHub takes, in characters.
const MaxComment = 1024

// Callback is a protection rule's callback URL, checked.
type Callback struct {
	URL   string
	Owner string
	Repo  string
	RunID int64
}

var callbackPath = regexp.MustCompile(`^/repos/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/actions/runs/([0-9]+)/deployment_protection_rule$`)

// CheckCallback accepts a deployment_callback_url only when it is the
// protection-rule route under the API base: same scheme and host, the
// base's path, no credentials, query or fragment.
func (a *App) CheckCallback(raw string) (Callback, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Callback{}, errors.New("is not a URL")
	}
	if u.Scheme != a.base.Scheme || u.Host != a.base.Host {
		return Callback{}, fmt.Errorf("is not under the configured API base %s (host %q): refused", a.base, u.Host)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Callback{}, errors.New("must not hold credentials, a query or a fragment")
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), a.base.EscapedPath())
	m := callbackPath.FindStringSubmatch(rest)
	if !ok || m == nil || strings.Trim(m[1], ".") == "" || strings.Trim(m[2], ".") == "" {
		return Callback{}, fmt.Errorf("is not %s/repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule", a.base)
	}
	run, err := strconv.ParseInt(m[3], 10, 64)
	if err != nil || run <= 0 {
		return Callback{}, errors.New("has no valid run id")
	}
	return Callback{URL: a.base.String() + rest, Owner: m[1], Repo: m[2], RunID: run}, nil
}

// Review posts r to the callback with an installation token. A 401
// drops the cached token (the next try gets a new one).
func (a *App) Review(ctx context.Context, installation int64, callbackURL string, r Review) error {
	cb, err := a.CheckCallback(callbackURL)
	if err != nil {
		return &StatusError{Call: "callback", Message: "deployment_callback_url " + err.Error()}
	}
	tok, err := a.token(ctx, installation)
	if err != nil {
		return err
	}
	err = a.do(ctx, http.MethodPost, cb.URL, tok, r, nil)
	var se *StatusError
	if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
		a.forget(installation)
		se.retry = true
	}
	return err
}

// do makes one call with its own deadline; url is checked under the base
// by its callers.
func (a *App) do(ctx context.Context, method, url, bearer string, in, out any) error {
	name := method + " " + strings.TrimPrefix(url, a.base.String())
	ctx, cancel := context.WithTimeoutCause(ctx, a.timeout, fmt.Errorf("github %s timed out after %s", name, a.timeout))
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: encoding: %w", name, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", APIVersion)
	req.Header.Set("User-Agent", userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return &StatusError{Call: name, Message: err.Error(), retry: true}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return &StatusError{Call: name, Status: resp.StatusCode, Message: "reading the answer: " + err.Error(), retry: true}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return a.failure(name, resp, raw, bearer)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s: decoding the answer (HTTP %d): %w", name, resp.StatusCode, err)
		}
	}
	return nil
}

func (a *App) failure(name string, resp *http.Response, raw []byte, bearer string) error {
	var ans struct {
		Message string `json:"message"`
	}
	msg := string(raw)
	if json.Unmarshal(raw, &ans) == nil && ans.Message != "" {
		msg = ans.Message
	}
	msg = alerting.Excerpt(msg, bearer)
	e := &StatusError{Call: name, Status: resp.StatusCode, Message: msg}
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		e.retry = true
	case resp.StatusCode == http.StatusForbidden && (resp.Header.Get("X-RateLimit-Remaining") == "0" || strings.Contains(strings.ToLower(msg), "rate limit")):
		e.retry = true
	}
	if e.retry {
		if t, ok := alerting.RetryAfter(resp.Header, a.now()); ok {
			e.until = t
		} else if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil && resp.Header.Get("X-RateLimit-Remaining") == "0" {
			e.until = time.Unix(reset, 0)
		}
	}
	return e
}

// StatusError is a failed call: an answer other than 2xx, or no answer.
type StatusError struct {
	Call    string
	Status  int // 0: no answer
	Message string
	retry   bool
	until   time.Time
}

func (e *StatusError) Error() string {
	s := e.Call
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Retryable tells whether a later try may succeed (no answer, 5xx, 408,
// 429, a rate limit, a refused token); other 4xx are final.
func (e *StatusError) Retryable() bool { return e.retry }

// NotBefore is when GitHub may be called again after a rate limit (zero
// when it named no time).
func (e *StatusError) NotBefore() time.Time { return e.until }

// retryable reports whether err may pass on a later try.
func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.retry
	}
	return true
}
