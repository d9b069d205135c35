package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/slogate/slogate/alerting/githubapp"
	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/internal/rulequeue"
	"github.com/slogate/slogate/store"
)

var repoName = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// validateApp checks webhooks.github.app and webhooks.github.services.
func (w WebhooksConfig) validateApp(name string) []error {
	g := w.GitHub
	if g == nil {
		return nil
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", name, field, fmt.Sprintf(format, args...)))
	}
	repos := make([]string, 0, len(g.Services))
	for r := range g.Services {
		repos = append(repos, r)
	}
	sort.Strings(repos)
	for _, r := range repos {
		if !repoName.MatchString(r) {
			bad("webhooks.github.services", "key %q: want owner/name", r)
		}
		if strings.TrimSpace(g.Services[r]) == "" {
			bad("webhooks.github.services."+r, "the service name is empty")
		}
	}
	a := g.App
	if a == nil {
		return errs
	}
	if a.ID <= 0 {
		bad("webhooks.github.app.id", "required: the App's id (a positive number)")
	}
	switch {
	case a.PrivateKey == "" && a.PrivateKeyFile == "":
		bad("webhooks.github.app.privateKey", "required: the App's PEM private key (use ${VAR}) or privateKeyFile")
	case a.PrivateKey != "" && a.PrivateKeyFile != "":
		bad("webhooks.github.app.privateKey", "give privateKey or privateKeyFile, not both")
	}
	if a.Deadline.Duration > githubapp.MaxDeadline {
		bad("webhooks.github.app.deadline", "at most 30 days (GitHub fails a waiting job then), got %s", a.Deadline.Duration)
	}
	if a.APIURL != "" {
		if _, err := url.Parse(a.APIURL); err != nil {
			bad("webhooks.github.app.apiURL", "not a URL")
		}
	}
	return errs
}

// buildProtectionRules makes the GitHub App's rules runner over the
// store, or nil when webhooks.github.app is not configured.
func buildProtectionRules(cfg *Config, st store.Store, g githubapp.Gate, logger *slog.Logger) (*githubapp.Rules, error) {
	gh := cfg.Webhooks.GitHub
	if gh == nil || gh.App == nil {
		return nil, nil
	}
	a := gh.App
	key := []byte(a.PrivateKey)
	if a.PrivateKeyFile != "" {
		b, err := os.ReadFile(a.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("webhooks.github.app.privateKeyFile: %w", err)
		}
		key = b
	}
	app, err := githubapp.NewApp(githubapp.AppConfig{ID: a.ID, PrivateKey: key, URL: a.APIURL, Timeout: a.Timeout.Duration})
	if err != nil {
		return nil, fmt.Errorf("webhooks.github.app: %w", err)
	}
	var link func(string) string
	if base := strings.TrimRight(cfg.ExternalURL, "/"); base != "" {
		link = func(id string) string { return base + "/v1/decisions/" + url.PathEscape(id) }
	}
	rules, err := githubapp.NewRules(githubapp.RulesConfig{
		App: app, Gate: g, Queue: rulequeue.Queue{Store: st}, Deadline: a.Deadline.Duration, Interval: a.Interval.Duration,
		DecisionURL: link, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks.github.app: %w", err)
	}
	logger.Info("GitHub protection rules on", "app", app.String(), "deadline", rules.Deadline())
	return rules, nil
}

// apiRules lets the API hand protection rules to the runner.
type apiRules struct{ r *githubapp.Rules }

var _ api.ProtectionRules = apiRules{}

func (a apiRules) CheckCallback(raw string) error { return a.r.CheckCallback(raw) }

func (a apiRules) Request(ctx context.Context, p api.ProtectionRule) error {
	owner, repo, _ := strings.Cut(p.Repository, "/")
	err := a.r.Request(ctx, githubapp.Pending{
		DeploymentID: p.DeploymentID, InstallationID: p.InstallationID, CallbackURL: p.CallbackURL,
		Owner: owner, Repo: repo, Environment: p.Environment, Service: p.Service, Version: p.Version,
		DeployID: p.DeployID, RequestedAt: p.RequestedAt,
	})
	var ce *githubapp.CallbackError
	if errors.As(err, &ce) {
		return errors.New(ce.Reason)
	}
	return err
}
