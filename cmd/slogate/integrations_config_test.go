package main

import (
	"strings"
	"testing"
)

func TestIntegrationsConfig(t *testing.T) {
	env := func(k string) string {
		return map[string]string{"S": "github-webhook-secret-0123456789", "K": "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n", "T": "jira-token-0123"}[k]
	}
	for name, tc := range map[string]struct {
		yaml string
		want []string // fields the error names; none: valid
	}{
		"the issue's example config is accepted": {`
webhooks:
  github:
    secret: "${S}"
    app: {id: 123456, privateKey: "${K}", apiURL: "", deadline: 2h}
    services: {"owner/repo": checkout}
notify:
  jira: {url: https://example.atlassian.net, flavor: cloud, project: OPS, issueType: Bug, email: "sre@example.com", token: "${T}", labels: [slogate]}
`, nil},
		"an App without id or key names both": {`
webhooks: {github: {secret: "${S}", app: {deadline: 2h}}}
`, []string{"webhooks.github.app.id", "webhooks.github.app.privateKey"}},
		"a deadline beyond GitHub's 30 days is refused": {`
webhooks: {github: {secret: "${S}", app: {id: 1, privateKeyFile: /k.pem, deadline: 800h}}}
`, []string{"webhooks.github.app.deadline"}},
		"a services key that is not owner/name is refused": {`
webhooks: {github: {secret: "${S}", services: {"checkout": checkout}}}
`, []string{"webhooks.github.services"}},
		"an unknown key under notify.jira is refused": {`
notify: {jira: {url: https://x.atlassian.net, project: OPS, password: x}}
`, []string{"password"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := ParseConfig("slogate.yaml", []byte(tc.yaml), env)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("ParseConfig: %v", err)
				}
				if _, err := buildNotifiers(cfg.Notify, "", nil); err != nil {
					t.Fatalf("buildNotifiers: %v", err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("ParseConfig = %v, want it to name %s", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), "BEGIN RSA") {
				t.Error("the error holds the private key")
			}
		})
	}
}
