package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// testWebhookSecret is the secret of the test's GitHub webhook.
const testWebhookSecret = "gh-webhook-secret-0123456789abcdef"

const (
	ghDeployID  = "dep_gh_1234567890"
	ghCommit    = "9f2c1e4b7a6d5c3b2a1f0e9d8c7b6a5f4e3d2c1b"
	ghRunURL    = "https://github.com/acme/checkout/actions/runs/11223344556"
	ghDeploysOf = "https://github.com/acme/checkout/deployments"
)

// signGitHub is the X-Hub-Signature-256 GitHub sends with body.
func signGitHub(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ghPayload is a sample payload of api/testdata/github, with each of
// replace's old/new pairs replaced once.
func ghPayload(t testing.TB, name string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "github", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s.json has no %q", name, replace[i])
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	return s
}

// withState is the sample deployment status with another state.
func withState(t testing.TB, state string) string {
	return ghPayload(t, "deployment_status", `"state": "success"`, `"state": "`+state+`"`)
}

func newGitHubHarness(t testing.TB, mods ...func(*Deps)) *harness {
	return newHarness(t, append([]func(*Deps){func(d *Deps) { d.GitHubWebhookSecret = testWebhookSecret }}, mods...)...)
}

// github delivers body as GitHub does: signed, with the event's headers
// and no bearer token. header overrides (an empty value removes).
func (h *harness) github(t testing.TB, event, body string, header ...string) reply {
	t.Helper()
	hdr := map[string]string{
		"X-GitHub-Event":      event,
		"X-GitHub-Delivery":   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"X-Hub-Signature-256": signGitHub(testWebhookSecret, body),
		"User-Agent":          "GitHub-Hookshot/044aadd",
	}
	for i := 0; i+1 < len(header); i += 2 {
		hdr[header[i]] = header[i+1]
	}
	return h.do(t, call{method: http.MethodPost, path: "/v1/webhooks/github", body: body, header: hdr})
}

func TestGitHubSignatureIsCheckedAsGitHubDocumentsIt(t *testing.T) {
	// The example of GitHub's "Validating webhook deliveries".
	const secret, body = "It's a Secret to Everybody", "Hello, World!"
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := signGitHub(secret, body); got != want {
		t.Fatalf("the test's signer gives %s, want %s", got, want)
	}
	if err := verifyGitHubSignature([]byte(secret), []byte(body), want); err != nil {
		t.Fatalf("GitHub's example does not verify: %v", err)
	}
	if err := verifyGitHubSignature([]byte(secret), []byte(body+"\n"), want); err == nil {
		t.Fatal("the signature of another body verifies")
	}
}

func TestGitHubDeploymentIsRecorded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		want    Deploy
	}{{
		name:    "a deployment with service and version in its payload is recorded under its GitHub id",
		payload: "deployment",
		want: Deploy{
			ID: ghDeployID, Service: "checkout", Environment: "production", Version: "v2.4.0",
			Commit: ghCommit, PipelineURL: ghDeploysOf,
			Labels:    map[string]string{"github.deployment": "1234567890", "github.repository": "acme/checkout"},
			StartedAt: time.Date(2026, 11, 21, 12, 1, 0, 0, time.UTC), Status: slogate.StatusRunning,
			CreatedAt: fixedTime, CreatedBy: "github",
		},
	}, {
		name:    "a deployment without a payload object takes the repository's name and the commit as service and version",
		payload: "deployment_repo_only",
		want: Deploy{
			ID: "dep_gh_145988746", Service: "Hello-World", Environment: "staging",
			Version: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", Commit: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
			PipelineURL: "https://github.com/Codertocat/Hello-World/deployments",
			Labels:      map[string]string{"github.deployment": "145988746", "github.repository": "Codertocat/Hello-World"},
			StartedAt:   time.Date(2026, 11, 21, 12, 5, 30, 0, time.UTC), Status: slogate.StatusRunning,
			CreatedAt: fixedTime, CreatedBy: "github",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newGitHubHarness(t)
			r := h.github(t, "deployment", ghPayload(t, tc.payload))
			got := decodeAs[Deploy](t, r, http.StatusCreated)
			if !deployEqual(got, tc.want) {
				t.Fatalf("answered %+v\nwant       %+v", got, tc.want)
			}
			if loc := r.header.Get("Location"); loc != "/v1/deploys/"+tc.want.ID {
				t.Fatalf("Location %q", loc)
			}
			stored, err := h.store.GetDeploy(context.Background(), tc.want.ID)
			if err != nil || !deployEqual(deployOut(stored), tc.want) {
				t.Fatalf("stored %+v (%v)", stored, err)
			}
			if inv := h.gate.invalidations(); !slices.Equal(inv, []string{tc.want.Service + "/" + tc.want.Environment}) {
				t.Fatalf("gate cache invalidated for %v", inv)
			}
			if a := h.store.auditLog(); len(a) != 1 || a[0].Actor != "github" || a[0].Subject != tc.want.ID {
				t.Fatalf("audit log %+v, want the deploy created by github", a)
			}
			// Readable through the API like any deploy.
			read := decodeAs[Deploy](t, h.do(t, call{method: "GET", path: "/v1/deploys/" + tc.want.ID, token: tokRead}), http.StatusOK)
			if !deployEqual(read, tc.want) {
				t.Fatalf("GET answered %+v", read)
			}
		})
	}
}

func deployEqual(a, b Deploy) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestGitHubRedeliveryStoresTheDeployOnce(t *testing.T) {
	h := newGitHubHarness(t)
	body := ghPayload(t, "deployment")
	first := decodeAs[Deploy](t, h.github(t, "deployment", body), http.StatusCreated)
	again := h.github(t, "deployment", body, "X-GitHub-Delivery", "a-redelivery")
	if d := decodeAs[Deploy](t, again, http.StatusOK); d.ID != first.ID || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("redelivery answered %+v %v", d, again.header)
	}
	if n := len(h.store.all()); n != 1 {
		t.Fatalf("%d deploys stored, want 1", n)
	}
	if inv := h.gate.invalidations(); len(inv) != 1 {
		t.Fatalf("gate cache invalidated %v, want once", inv)
	}
}

func TestGitHubDeploymentStatusFinishesTheDeploy(t *testing.T) {
	for _, tc := range []struct {
		name, state, want string
	}{
		{"a success status finishes the deploy as succeeded", "success", slogate.StatusSucceeded},
		{"a failure status finishes the deploy as failed", "failure", slogate.StatusFailed},
		{"an error status finishes the deploy as failed", "error", slogate.StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newGitHubHarness(t)
			decodeAs[Deploy](t, h.github(t, "deployment", ghPayload(t, "deployment")), http.StatusCreated)
			r := h.github(t, "deployment_status", withState(t, tc.state))
			d := decodeAs[Deploy](t, r, http.StatusOK)
			finished := time.Date(2026, 11, 21, 12, 9, 0, 0, time.UTC)
			if d.ID != ghDeployID || d.Status != tc.want || d.FinishedAt == nil || !d.FinishedAt.Equal(finished) {
				t.Fatalf("answered %+v, want %s finished %s at %v", d, ghDeployID, tc.want, finished)
			}
			if d.PipelineURL != ghDeploysOf {
				t.Fatalf("pipelineUrl %q changed; the deploy was recorded with %q", d.PipelineURL, ghDeploysOf)
			}
			if stored, _ := h.store.GetDeploy(context.Background(), ghDeployID); stored.Status != tc.want {
				t.Fatalf("stored status %q", stored.Status)
			}
			if inv := h.gate.invalidations(); len(inv) != 2 || inv[1] != "checkout/production" {
				t.Fatalf("gate cache invalidated %v, want on the deploy and on its finish", inv)
			}
			a := h.store.auditLog()
			if last := a[len(a)-1]; last.Action != "deploy.finished" || last.Actor != "github" || last.Subject != ghDeployID {
				t.Fatalf("audit %+v", last)
			}
			// A redelivered status answers the same and changes nothing.
			if again := decodeAs[Deploy](t, h.github(t, "deployment_status", withState(t, tc.state)), http.StatusOK); again.Status != tc.want {
				t.Fatalf("redelivered status answered %+v", again)
			}
		})
	}
}

func TestGitHubStatusOfAnUnknownDeploymentCreatesAndFinishesIt(t *testing.T) {
	h := newGitHubHarness(t)
	d := decodeAs[Deploy](t, h.github(t, "deployment_status", withState(t, "failure")), http.StatusOK)
	if d.ID != ghDeployID || d.Status != slogate.StatusFailed || d.Service != "checkout" || d.Version != "v2.4.0" ||
		d.PipelineURL != ghRunURL || d.CreatedBy != "github" || d.Labels["github.deployment"] != "1234567890" {
		t.Fatalf("answered %+v: want the deploy from the status's deployment, failed, linked to the run", d)
	}
	// The deployment event, late, finds it recorded.
	late := h.github(t, "deployment", ghPayload(t, "deployment"))
	if got := decodeAs[Deploy](t, late, http.StatusOK); got.ID != ghDeployID || got.Status != slogate.StatusFailed ||
		late.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("late deployment answered %+v %v", got, late.header)
	}
	if n := len(h.store.all()); n != 1 {
		t.Fatalf("%d deploys stored, want 1", n)
	}
}

func TestGitHubStatusesThatDoNotFinishChangeNothing(t *testing.T) {
	for _, tc := range []struct {
		name, state string
		status      int
	}{
		{"an inactive status is acknowledged and ignored", "inactive", http.StatusOK},
		{"an in-progress status is accepted and ignored", "in_progress", http.StatusAccepted},
		{"a queued status is accepted and ignored", "queued", http.StatusAccepted},
		{"a pending status is accepted and ignored", "pending", http.StatusAccepted},
		{"a state GitHub may add later is accepted and ignored", "waiting", http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newGitHubHarness(t)
			decodeAs[Deploy](t, h.github(t, "deployment", ghPayload(t, "deployment")), http.StatusCreated)
			got := decodeAs[WebhookIgnored](t, h.github(t, "deployment_status", withState(t, tc.state)), tc.status)
			if got != (WebhookIgnored{Ignored: "deployment_status", State: tc.state}) {
				t.Fatalf("answered %+v", got)
			}
			if d, _ := h.store.GetDeploy(context.Background(), ghDeployID); d.Status != slogate.StatusRunning {
				t.Fatalf("deploy %s, want still running", d.Status)
			}
		})
	}
}

func TestGitHubStatusContradictingTheFinishIsAConflict(t *testing.T) {
	h := newGitHubHarness(t)
	decodeAs[Deploy](t, h.github(t, "deployment_status", withState(t, "success")), http.StatusOK)
	p := problem(t, h.github(t, "deployment_status", withState(t, "failure")), http.StatusConflict)
	if !p.names("deployment_status.state") {
		t.Fatalf("problem %+v does not name deployment_status.state", p)
	}
}

func TestGitHubWebhookRefusesDeliveriesNotSignedWithTheSecret(t *testing.T) {
	body := ghPayload(t, "deployment")
	other := ghPayload(t, "deployment_repo_only")
	for _, tc := range []struct {
		name, signature string
	}{
		{"a delivery without a signature is refused", ""},
		{"a delivery with a signature of zeros is refused", "sha256=" + strings.Repeat("0", 64)},
		{"a delivery with the signature of another body is refused", signGitHub(testWebhookSecret, other)},
		{"a delivery signed with another secret is refused", signGitHub("another-secret-0123456789", body)},
		{"a delivery with the SHA-1 signature header format is refused", "sha1=" + strings.Repeat("a", 40)},
		{"a delivery with a signature that is not hex is refused", "sha256=" + strings.Repeat("z", 64)},
		{"a delivery with a truncated signature is refused", signGitHub(testWebhookSecret, body)[:40]},
		{"a delivery with the bare hex digest is refused", strings.TrimPrefix(signGitHub(testWebhookSecret, body), "sha256=")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newGitHubHarness(t)
			// An empty signature removes the header.
			r := h.github(t, "deployment", body, "X-Hub-Signature-256", tc.signature)
			p := problem(t, r, http.StatusUnauthorized)
			if !p.names("X-Hub-Signature-256") || r.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("problem %+v (WWW-Authenticate %q): want X-Hub-Signature-256 named", p, r.header.Get("WWW-Authenticate"))
			}
			if n := len(h.store.all()); n != 0 {
				t.Fatalf("%d deploys stored from an unsigned delivery", n)
			}
		})
	}
}

func TestGitHubWebhookIsOffWithoutASecret(t *testing.T) {
	h := newHarness(t)
	body := ghPayload(t, "deployment")
	for _, sig := range []string{signGitHub("", body), signGitHub(testWebhookSecret, body)} {
		p := problem(t, h.github(t, "deployment", body, "X-Hub-Signature-256", sig), http.StatusNotFound)
		if !p.names("webhooks.github.secret") {
			t.Fatalf("problem %+v does not say the webhook is off", p)
		}
	}
	if n := len(h.store.all()); n != 0 {
		t.Fatalf("%d deploys stored", n)
	}
}

func TestGitHubPingAndOtherEvents(t *testing.T) {
	for _, tc := range []struct {
		name, event, payload string
		status               int
		want                 string
	}{
		{"a ping is answered ok", "ping", "ping", http.StatusOK, `{"ok":true}`},
		{"a push event is accepted and ignored", "push", "ping", http.StatusAccepted, `{"ignored":"push"}`},
		{"a workflow run event is accepted and ignored", "workflow_run", "deployment", http.StatusAccepted, `{"ignored":"workflow_run"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newGitHubHarness(t)
			r := h.github(t, tc.event, ghPayload(t, tc.payload))
			if r.status != tc.status || strings.TrimSpace(string(r.body)) != tc.want {
				t.Fatalf("answered %d %s, want %d %s", r.status, r.body, tc.status, tc.want)
			}
			if n := len(h.store.all()); n != 0 {
				t.Fatalf("%d deploys stored", n)
			}
		})
	}
}

func TestGitHubWebhookNamesTheFaultOfABadDelivery(t *testing.T) {
	for _, tc := range []struct {
		name   string
		event  string
		body   string
		header []string
		status int
		field  string
	}{
		{name: "a delivery without an event header is refused", event: "", body: `{}`,
			status: http.StatusBadRequest, field: "X-GitHub-Event"},
		{name: "a form-encoded delivery is refused (the webhook must send JSON)", event: "ping", body: "payload=%7B%7D",
			header: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: http.StatusUnsupportedMediaType, field: "Content-Type"},
		{name: "malformed JSON is refused", event: "deployment", body: `{"deployment":`,
			status: http.StatusBadRequest, field: "body"},
		{name: "a deployment event without its deployment is refused", event: "deployment", body: `{"repository":{"name":"checkout"}}`,
			status: http.StatusBadRequest, field: "deployment"},
		{name: "a deployment without a repository is refused", event: "deployment", body: `{"deployment":{"id":1,"environment":"production","sha":"abc","created_at":"2026-11-21T12:00:00Z"}}`,
			status: http.StatusBadRequest, field: "repository"},
		{name: "a deployment id that is a string is refused", event: "deployment", body: ghPayload(t, "deployment", `"id": 1234567890`, `"id": "1234567890"`),
			status: http.StatusBadRequest, field: "deployment.id"},
		{name: "a deployment without an environment is refused", event: "deployment", body: ghPayload(t, "deployment", `"environment": "production"`, `"environment": ""`),
			status: http.StatusBadRequest, field: "deployment.environment"},
		{name: "a deployment without a creation time is refused", event: "deployment", body: ghPayload(t, "deployment", `"created_at": "2026-11-21T12:01:00Z"`, `"created_at": ""`),
			status: http.StatusBadRequest, field: "deployment.created_at"},
		{name: "a deployment created in the future is refused", event: "deployment", body: ghPayload(t, "deployment", `"created_at": "2026-11-21T12:01:00Z"`, `"created_at": "2026-11-22T12:01:00Z"`),
			status: http.StatusBadRequest, field: "deployment.created_at"},
		{name: "a service in the payload with control characters is refused", event: "deployment", body: ghPayload(t, "deployment", `"service": "checkout"`, `"service": "check\nout"`),
			status: http.StatusBadRequest, field: "deployment.payload.service"},
		{name: "a deployment status without its status is refused", event: "deployment_status", body: ghPayload(t, "deployment"),
			status: http.StatusBadRequest, field: "deployment_status"},
		{name: "a deployment status without a state is refused", event: "deployment_status", body: withState(t, ""),
			status: http.StatusBadRequest, field: "deployment_status.state"},
		{name: "a deployment status with a malformed time is refused", event: "deployment_status", body: ghPayload(t, "deployment_status", `"created_at": "2026-11-21T12:09:00Z"`, `"created_at": "yesterday"`),
			status: http.StatusBadRequest, field: "deployment_status.created_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newGitHubHarness(t)
			p := problem(t, h.github(t, tc.event, tc.body, tc.header...), tc.status)
			if !p.names(tc.field) {
				t.Fatalf("problem %+v does not name %s", p, tc.field)
			}
			if n := len(h.store.all()); n != 0 {
				t.Fatalf("%d deploys stored", n)
			}
		})
	}
}

func TestGitHubWebhookRefusesAnOversizedBody(t *testing.T) {
	h := newGitHubHarness(t, func(d *Deps) { d.MaxBodyBytes = 1024 })
	body := ghPayload(t, "deployment") // about 2.5 KB
	p := problem(t, h.github(t, "deployment", body), http.StatusRequestEntityTooLarge)
	if !p.names("body") {
		t.Fatalf("problem %+v does not name the body", p)
	}
	if n := len(h.store.all()); n != 0 {
		t.Fatalf("%d deploys stored", n)
	}
}

func TestGitHubWebhookSecretNeverInTheLogs(t *testing.T) {
	h := newGitHubHarness(t)
	var answers []string
	for _, r := range []reply{
		h.github(t, "ping", ghPayload(t, "ping")),
		h.github(t, "deployment", ghPayload(t, "deployment")),
		h.github(t, "deployment", ghPayload(t, "deployment"), "X-Hub-Signature-256", "sha256=00"),
		h.github(t, "deployment", ghPayload(t, "deployment"), "X-Hub-Signature-256", ""),
		h.github(t, "deployment_status", withState(t, "error")),
		h.github(t, "deployment", `{`),
	} {
		answers = append(answers, string(r.body))
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "GitHub webhook") {
		t.Fatalf("the deliveries are not logged:\n%s", logs)
	}
	if strings.Contains(logs, testWebhookSecret) || strings.Contains(strings.Join(answers, "\n"), testWebhookSecret) {
		t.Fatal("the webhook secret appears in the logs or an answer")
	}
}

// TestGitHubWebhookAgainstTheSQLiteStore checks the GitHub ids and the
// idempotency keys with the real embedded store: a status before its
// deployment, the late deployment, a redelivery.
func TestGitHubWebhookAgainstTheSQLiteStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := &fakeGate{}
	srv := httptest.NewServer(NewServer(Deps{
		Gate: g, Store: st, SLOs: &fakeSLOs{statuses: []slo.Status{exampleStatus()}}, Tokens: testTokens,
		Logger: slog.New(slog.DiscardHandler), Clock: func() time.Time { return fixedTime },
		GitHubWebhookSecret: testWebhookSecret,
	}))
	t.Cleanup(srv.Close)
	h := &harness{url: srv.URL, gate: g}

	d := decodeAs[Deploy](t, h.github(t, "deployment_status", withState(t, "success")), http.StatusOK)
	if d.ID != ghDeployID || d.Status != slogate.StatusSucceeded || d.PipelineURL != ghRunURL {
		t.Fatalf("status first: %+v", d)
	}
	for range 2 {
		late := h.github(t, "deployment", ghPayload(t, "deployment"))
		if got := decodeAs[Deploy](t, late, http.StatusOK); got.ID != ghDeployID || got.Status != slogate.StatusSucceeded {
			t.Fatalf("late deployment: %+v", got)
		}
	}
	other := decodeAs[Deploy](t, h.github(t, "deployment", ghPayload(t, "deployment_repo_only")), http.StatusCreated)
	if other.ID != "dep_gh_145988746" {
		t.Fatalf("second deployment stored as %s", other.ID)
	}
	list, _, err := st.ListDeploys(ctx, store.DeployFilter{})
	if err != nil || len(list) != 2 {
		t.Fatalf("%d deploys stored (%v), want 2", len(list), err)
	}
	got, err := st.GetDeploy(ctx, ghDeployID)
	if err != nil || got.CreatedBy != "github" || got.Labels["github.repository"] != "acme/checkout" || got.Commit != ghCommit {
		t.Fatalf("stored %+v (%v)", got, err)
	}
}
