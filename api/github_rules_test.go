package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// fakeRules accepts callbacks under https://api.github.com and records
// the rules it is given.
type fakeRules struct {
	mu    sync.Mutex
	rules []ProtectionRule
	fail  error
}

func (f *fakeRules) CheckCallback(raw string) error {
	if !strings.HasPrefix(raw, "https://api.github.com/repos/") {
		return errors.New("is not under the configured API base https://api.github.com: refused")
	}
	return nil
}

func (f *fakeRules) Request(_ context.Context, r ProtectionRule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.rules = append(f.rules, r)
	return nil
}

func TestGitHubProtectionRuleWebhook(t *testing.T) {
	for name, tc := range map[string]struct {
		body     func(t *testing.T) string
		rulesOff bool
		services map[string]string
		status   int
		field    string
		service  string
	}{
		"a requested rule records the deploy and is handed over": {
			body: func(t *testing.T) string { return ghPayload(t, "deployment_protection_rule") }, status: http.StatusAccepted, service: "checkout"},
		"services map the repository to its service": {
			body:     func(t *testing.T) string { return ghPayload(t, "deployment_protection_rule") },
			services: map[string]string{"acme/checkout": "payments"}, status: http.StatusAccepted, service: "payments"},
		"a callback URL on another host is refused before anything is recorded": {
			body: func(t *testing.T) string {
				return ghPayload(t, "deployment_protection_rule", "https://api.github.com/repos/acme/checkout/actions", "https://evil.example.com/repos/acme/checkout/actions")
			}, status: http.StatusUnprocessableEntity, field: "deployment_callback_url"},
		"a rule without its installation names the field": {
			body: func(t *testing.T) string {
				return ghPayload(t, "deployment_protection_rule", `"installation": {"id": 42424242,`, `"installation": {"id": 0,`)
			},
			status: http.StatusBadRequest, field: "installation.id"},
		"another action changes nothing": {
			body: func(t *testing.T) string {
				return ghPayload(t, "deployment_protection_rule", `"action": "requested"`, `"action": "completed"`)
			}, status: http.StatusAccepted},
		"without a configured App the event is 404": {
			body: func(t *testing.T) string { return ghPayload(t, "deployment_protection_rule") }, rulesOff: true, status: http.StatusNotFound, field: "webhooks.github.app"},
	} {
		t.Run(name, func(t *testing.T) {
			rules := &fakeRules{}
			h := newGitHubHarness(t, func(d *Deps) {
				if !tc.rulesOff {
					d.GitHubRules = rules
				}
				d.GitHubServices = tc.services
			})
			r := h.github(t, "deployment_protection_rule", tc.body(t))
			if r.status != tc.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, tc.status)
			}
			if tc.field != "" && !strings.Contains(string(r.body), `"field":"`+tc.field+`"`) {
				t.Fatalf("problem %s does not name %s", r.body, tc.field)
			}
			rules.mu.Lock()
			defer rules.mu.Unlock()
			if tc.service == "" {
				if len(rules.rules) != 0 || len(h.store.deploys) != 0 {
					t.Fatalf("rules %+v, deploys %+v; want nothing recorded", rules.rules, h.store.deploys)
				}
				return
			}
			if len(rules.rules) != 1 {
				t.Fatalf("rules %+v", rules.rules)
			}
			p := rules.rules[0]
			if p.DeploymentID != 1234567890 || p.InstallationID != 42424242 || p.Environment != "production" || p.Service != tc.service ||
				p.DeployID != "dep_gh_1234567890" || p.Repository != "acme/checkout" {
				t.Fatalf("rule %+v", p)
			}
			if d, err := h.store.GetDeploy(context.Background(), "dep_gh_1234567890"); err != nil || d.Service != tc.service {
				t.Fatalf("deploy %+v %v", d, err)
			}
		})
	}
}
