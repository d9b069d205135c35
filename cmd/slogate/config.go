package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is slogate's configuration file (DESIGN.md, "Configuration").
// Unknown keys are errors; ${VAR} in any string is read from the
// environment, so secrets stay out of the file.
type Config struct {
	Listen string `yaml:"listen"`
	// ExternalURL is where people reach this slogate (links in alerts and
	// issues), e.g. https://slogate.example.com.
	ExternalURL string           `yaml:"externalURL"`
	SLOs        []string         `yaml:"slos"`
	Store       string           `yaml:"store"`
	Sources     SourcesConfig    `yaml:"sources"`
	Evaluation  EvaluationConfig `yaml:"evaluation"`
	Gate        GateConfig       `yaml:"gate"`
	Notify      NotifyConfig     `yaml:"notify"`
	Auth        AuthConfig       `yaml:"auth"`
	Webhooks    WebhooksConfig   `yaml:"webhooks"`
	Log         LogConfig        `yaml:"log"`
	Telemetry   TelemetryConfig  `yaml:"telemetry"`

	// embedded is true for DefaultConfig (no --config).
	embedded bool
}

// SourcesConfig says where telemetry lives. A source left out is off.
type SourcesConfig struct {
	Prometheus    *PrometheusSource    `yaml:"prometheus"`
	Elasticsearch *ElasticsearchSource `yaml:"elasticsearch"`
	Tempo         *TempoSource         `yaml:"tempo"`
}

// PrometheusSource is a Prometheus-compatible query API.
type PrometheusSource struct {
	URL                string            `yaml:"url"`
	Timeout            Duration          `yaml:"timeout"`
	BearerToken        string            `yaml:"bearerToken"`
	Username           string            `yaml:"username"`
	Password           string            `yaml:"password"`
	Headers            map[string]string `yaml:"headers"`
	CAFile             string            `yaml:"caFile"`
	InsecureSkipVerify bool              `yaml:"insecureSkipVerify"`
}

// ElasticsearchSource is an Elasticsearch cluster.
type ElasticsearchSource struct {
	Addresses          []string `yaml:"addresses"`
	APIKey             string   `yaml:"apiKey"`
	Username           string   `yaml:"username"`
	Password           string   `yaml:"password"`
	Timeout            Duration `yaml:"timeout"`
	CAFile             string   `yaml:"caFile"`
	InsecureSkipVerify bool     `yaml:"insecureSkipVerify"`
	// Flavor is elasticsearch (default) or opensearch.
	Flavor string `yaml:"flavor"`
}

// TempoSource is a Grafana Tempo query frontend.
type TempoSource struct {
	URL         string   `yaml:"url"`
	Timeout     Duration `yaml:"timeout"`
	BearerToken string   `yaml:"bearerToken"`
	OrgID       string   `yaml:"orgID"`
	Username    string   `yaml:"username"`
	Password    string   `yaml:"password"`
}

// EvaluationConfig is the scheduled evaluation of every SLO.
type EvaluationConfig struct {
	// Schedule is a robfig/cron spec (default "@every 1m").
	Schedule string `yaml:"schedule"`
	// Timeout bounds one measurement (default 30s).
	Timeout Duration `yaml:"timeout"`
	// Concurrency bounds the measurements in flight (default 16).
	Concurrency int `yaml:"concurrency"`
	// AgeDivisor sizes how long a run reuses a long window's figure from
	// an earlier run: W/ageDivisor for a window of length W (default 720:
	// the 30-day window is measured every hour, 3 days every 6 minutes);
	// -1 measures every window at every run.
	AgeDivisor int `yaml:"ageDivisor"`
}

// GateConfig tunes the gate.
type GateConfig struct {
	// CacheTTL is how long an answer is reused for identical asks
	// (default 10s; "off" turns the cache off).
	CacheTTL *Duration `yaml:"cacheTTL"`
	// Deadline bounds one answer (default 8s, below the 10s Argo
	// Rollouts and Flagger wait): at it, a still-running measurement is a
	// source fault and the client gets a 503 in time to retry.
	Deadline Duration `yaml:"deadline"`
	// AskRate and AskBurst limit each token's asks (GET/POST /v1/gate,
	// /v1/flagger): AskBurst at once, AskRate a second sustained (defaults
	// 10 and 20; askRate -1 turns the limit off). Over it: 429 with
	// Retry-After.
	AskRate  float64 `yaml:"askRate"`
	AskBurst int     `yaml:"askBurst"`
	// MaxConcurrentEvaluations bounds the uncached gate evaluations (those
	// that query the sources) in flight across every token (default 16,
	// the evaluation concurrency; -1 turns the limit off). An ask that
	// finds no slot within EvaluationWait (default 250ms) gets a 503 with
	// Retry-After, counted in slogate_gate_evaluations_rejected_total.
	// Cached answers and asks joining an identical evaluation take none.
	MaxConcurrentEvaluations int      `yaml:"maxConcurrentEvaluations"`
	EvaluationWait           Duration `yaml:"evaluationWait"`
}

// cacheTTL is the gate cache's lifetime: the config's, else 10s.
func (g GateConfig) cacheTTL() time.Duration {
	if g.CacheTTL == nil {
		return 10 * time.Second
	}
	return g.CacheTTL.Duration
}

// NotifyConfig lists the peers slogate notifies. A peer left out is off.
type NotifyConfig struct {
	Alertmanager *struct {
		URL     string   `yaml:"url"`
		Timeout Duration `yaml:"timeout"`
	} `yaml:"alertmanager"`
	// Outbox tunes the delivery of notifications.
	Outbox struct {
		// MaxAge gives up on a notification not delivered after this long
		// (default 24h).
		MaxAge Duration `yaml:"maxAge"`
		// Retain keeps delivered notifications this long (default 7 days).
		Retain Duration `yaml:"retain"`
	} `yaml:"outbox"`
	PagerDuty *struct {
		RoutingKey string   `yaml:"routingKey"`
		URL        string   `yaml:"url"`
		Timeout    Duration `yaml:"timeout"`
	} `yaml:"pagerduty"`
	Grafana *struct {
		URL          string   `yaml:"url"`
		Token        string   `yaml:"token"`
		DashboardUID string   `yaml:"dashboardUID"`
		Timeout      Duration `yaml:"timeout"`
	} `yaml:"grafana"`
	GitHub *struct {
		Repo    string   `yaml:"repo"`
		Token   string   `yaml:"token"`
		URL     string   `yaml:"url"`
		Labels  []string `yaml:"labels"`
		Timeout Duration `yaml:"timeout"`
	} `yaml:"github"`
	// Jira files feedback issues in Jira Cloud or Data Center.
	Jira *JiraConfig `yaml:"jira"`
}

// JiraConfig is notify.jira.
type JiraConfig struct {
	URL        string   `yaml:"url"`
	Flavor     string   `yaml:"flavor"` // cloud (default) or datacenter
	Project    string   `yaml:"project"`
	IssueType  string   `yaml:"issueType"`
	Email      string   `yaml:"email"` // Cloud: the API token's account
	Token      string   `yaml:"token"` // Cloud: API token; Data Center: personal access token
	Labels     []string `yaml:"labels"`
	Components []string `yaml:"components"`
	Timeout    Duration `yaml:"timeout"`
}

// AuthConfig holds the API's bearer tokens.
type AuthConfig struct {
	Tokens []TokenConfig `yaml:"tokens"`
}

// WebhooksConfig turns on the webhooks of senders that sign their
// deliveries instead of sending a token. A sender left out is off.
type WebhooksConfig struct {
	GitHub *GitHubWebhookConfig `yaml:"github"`
}

// GitHubWebhookConfig is GitHub's webhook (POST /v1/webhooks/github):
// deployment events become deploys.
type GitHubWebhookConfig struct {
	// Secret is the webhook's secret in GitHub, at least 16 characters
	// (use ${VAR}); deliveries are verified by their HMAC-SHA256 under it.
	Secret string `yaml:"secret"`
	// App turns on custom deployment protection rules (a GitHub App).
	App *GitHubAppConfig `yaml:"app"`
	// Services maps a repository ("owner/name") to the service its
	// deployments deploy. Default: the deployment payload's service, else
	// the repository's name.
	Services map[string]string `yaml:"services"`
}

// GitHubAppConfig is the GitHub App that answers protection rules.
type GitHubAppConfig struct {
	// ID is the App's id (its settings page, "App ID").
	ID int64 `yaml:"id"`
	// PrivateKey is the App's private key, PEM (use ${VAR}); or
	// PrivateKeyFile, a file holding it.
	PrivateKey     string `yaml:"privateKey"`
	PrivateKeyFile string `yaml:"privateKeyFile"`
	// APIURL is the REST API base; empty is https://api.github.com
	// (GitHub Enterprise Server: https://HOST/api/v3). Only URLs under it
	// are called.
	APIURL string `yaml:"apiURL"`
	// Deadline (2h): a rule still waiting this long is rejected.
	Deadline Duration `yaml:"deadline"`
	// Interval (1m): how often a waiting rule asks the gate again.
	Interval Duration `yaml:"interval"`
	// Timeout (10s) bounds each call to GitHub.
	Timeout Duration `yaml:"timeout"`
}

// gitHubWebhookSecret is the secret of GitHub's webhook, "" when it is off.
func (w WebhooksConfig) gitHubWebhookSecret() string {
	if w.GitHub == nil {
		return ""
	}
	return w.GitHub.Secret
}

// gitHubServices maps repositories to services (webhooks.github.services).
func (w WebhooksConfig) gitHubServices() map[string]string {
	if w.GitHub == nil {
		return nil
	}
	return w.GitHub.Services
}

// TokenConfig is one bearer token and its scopes.
type TokenConfig struct {
	Name   string   `yaml:"name"`
	Value  string   `yaml:"value"`
	Scopes []string `yaml:"scopes"`
}

// TelemetryConfig exports slogate's own traces over OTLP/HTTP.
type TelemetryConfig struct {
	// Endpoint is the OTLP/HTTP traces URL, e.g.
	// http://otel-collector:4318/v1/traces. Empty: not exported.
	Endpoint    string            `yaml:"endpoint"`
	Headers     map[string]string `yaml:"headers"`
	SampleRatio float64           `yaml:"sampleRatio"`
}

// LogConfig sets the log format and level.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // json (default) or text
	// Access says which requests get an access log line: errors, slow
	// and uncached answers always; probes and cached answers one in
	// sampleEvery (default 100) at info, the rest at debug; all: true logs
	// every request at info.
	Access struct {
		All         bool     `yaml:"all"`
		Slow        Duration `yaml:"slow"`
		SampleEvery int      `yaml:"sampleEvery"`
	} `yaml:"access"`
}

// Duration is a time.Duration written as in SLO files ("10s", "1m", "7d").
type Duration struct{ time.Duration }

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if s == "0" || s == "0s" || s == "off" {
		d.Duration = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q (e.g. 10s, 1m)", n.Line, s)
	}
	if v < 0 {
		return fmt.Errorf("line %d: negative duration %q", n.Line, s)
	}
	d.Duration = v
	return nil
}

// Defaults of `slogate serve` with no config at all.
const (
	defaultListen     = "127.0.0.1:8080"
	defaultSLOs       = "./slos"
	defaultStore      = "sqlite:./data/slogate.db"
	defaultPrometheus = "http://127.0.0.1:9090"
	defaultSchedule   = "@every 1m"
)

// DefaultConfig is the embedded default: SQLite under ./data, SLOs from
// ./slos, Prometheus on localhost.
func DefaultConfig() *Config {
	return &Config{
		embedded:   true,
		Listen:     defaultListen,
		SLOs:       []string{defaultSLOs},
		Store:      defaultStore,
		Evaluation: EvaluationConfig{Schedule: defaultSchedule},
	}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadConfig reads a config file strictly: ${VAR} expanded in every string
// value, unknown keys refused, every problem reported at once.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, data, getenv)
}

// ParseConfig is LoadConfig of bytes.
func ParseConfig(name string, data []byte, getenv func(string) string) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	var expand func(n *yaml.Node)
	expand = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
			n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
				key := envRef.FindStringSubmatch(ref)[1]
				v := getenv(key)
				if v == "" {
					errs = append(errs, fmt.Errorf("%s:%d: ${%s} is not set in the environment, or empty", name, n.Line, key))
				}
				return v
			})
			n.Style = yaml.DoubleQuotedStyle // an expanded value stays a string
		}
		for _, c := range n.Content {
			expand(c)
		}
	}
	expand(&doc)
	cfg := &Config{}
	if len(doc.Content) > 0 {
		// Re-encode the expanded tree and decode it strictly: yaml.v3 checks
		// unknown keys only when decoding from bytes.
		b, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				for _, e := range te.Errors {
					errs = append(errs, fmt.Errorf("%s: %s", name, e))
				}
			} else {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	errs = append(errs, cfg.validate(name)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

var validScopes = map[string]bool{"gate:read": true, "deploys:write": true, "overrides:write": true, "flagger": true, "admin": true}

func (c *Config) validate(name string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", name, field, fmt.Sprintf(format, args...)))
	}
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if len(c.SLOs) == 0 {
		c.SLOs = []string{defaultSLOs}
	}
	if c.Store == "" {
		c.Store = defaultStore
	} else if !strings.HasPrefix(c.Store, "sqlite:") && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		bad("store", "want sqlite:PATH or postgres://...")
	}
	if p := c.Sources.Prometheus; p != nil && p.URL == "" {
		bad("sources.prometheus.url", "required")
	}
	if e := c.Sources.Elasticsearch; e != nil && len(e.Addresses) == 0 {
		bad("sources.elasticsearch.addresses", "at least one address is required")
	}
	if t := c.Sources.Tempo; t != nil && t.URL == "" {
		bad("sources.tempo.url", "required")
	}
	if c.Evaluation.Schedule == "" {
		c.Evaluation.Schedule = defaultSchedule
	}
	seen := map[string]bool{}
	for i, t := range c.Auth.Tokens {
		field := fmt.Sprintf("auth.tokens[%d]", i)
		if t.Name == "" {
			bad(field+".name", "required")
		} else if seen[t.Name] {
			bad(field+".name", "duplicate token name %q", t.Name)
		}
		seen[t.Name] = true
		if len(t.Value) < 16 {
			bad(field+".value", "a token must be at least 16 characters (use ${VAR} to keep it out of the file)")
		}
		if len(t.Scopes) == 0 {
			bad(field+".scopes", "at least one scope is required (gate:read, deploys:write, overrides:write, flagger, admin)")
		}
		for _, s := range t.Scopes {
			if !validScopes[s] {
				bad(field+".scopes", "unknown scope %q (want gate:read, deploys:write, overrides:write, flagger or admin)", s)
			}
		}
	}
	if n := c.Gate.MaxConcurrentEvaluations; n < -1 {
		bad("gate.maxConcurrentEvaluations", "want a positive number, 0 for the default (16) or -1 for no limit, got %d", n)
	}
	if w := c.Gate.EvaluationWait.Duration; w < 0 {
		bad("gate.evaluationWait", "must not be negative, got %s", w)
	}
	if g := c.Webhooks.GitHub; g != nil && len(g.Secret) < 16 {
		bad("webhooks.github.secret", "a webhook secret must be at least 16 characters (use ${VAR} to keep it out of the file)")
	}
	errs = append(errs, c.Webhooks.validateApp(name)...)
	if c.Telemetry.SampleRatio < 0 || c.Telemetry.SampleRatio > 1 {
		bad("telemetry.sampleRatio", "want a share in [0,1], got %v", c.Telemetry.SampleRatio)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		bad("log.format", "want json or text, got %q", c.Log.Format)
	}
	return errs
}
