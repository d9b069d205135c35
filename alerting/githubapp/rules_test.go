package githubapp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
)

var testKey = func() []byte {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}()

// fakeAPI answers the token exchange and records the callbacks; review
// answers each callback (204 by default).
type fakeAPI struct {
	mu      sync.Mutex
	reviews []Review
	review  func(r Review) int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/access_tokens") {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token":"ghs_x","expires_at":%q}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		return
	}
	var rv Review
	json.NewDecoder(r.Body).Decode(&rv)
	f.mu.Lock()
	f.reviews = append(f.reviews, rv)
	status := http.StatusNoContent
	if f.review != nil {
		status = f.review(rv)
	}
	f.mu.Unlock()
	w.WriteHeader(status)
	if status >= 400 {
		fmt.Fprint(w, `{"message":"Validation Failed"}`)
	}
}

type stubGate struct {
	answer gate.Answer
	err    error
}

func (g stubGate) Evaluate(context.Context, gate.Request) (gate.Answer, error) {
	return g.answer, g.err
}

// memQueue records what the runner did with each item.
type memQueue struct {
	mu                    sync.Mutex
	done, abandoned, next int
	note                  string
}

func (q *memQueue) Enqueue(context.Context, string, []byte) error { return nil }
func (q *memQueue) Claim(context.Context, int, time.Duration, time.Time) ([]Item, error) {
	return nil, nil
}
func (q *memQueue) Reschedule(_ context.Context, _ int64, note string, _ time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.next++
	q.note = note
	return nil
}
func (q *memQueue) Done(context.Context, int64) error {
	q.mu.Lock()
	q.done++
	q.mu.Unlock()
	return nil
}
func (q *memQueue) Abandon(_ context.Context, _ int64, why string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.abandoned++
	q.note = why
	return nil
}

func TestRuleAttempts(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	long := strings.Repeat("ä budget reason ", 200)
	for name, tc := range map[string]struct {
		gate                  stubGate
		attempt               int
		deadline              time.Time
		review                func(Review) int
		wantState             string // of the last review ("" a report, "-" none)
		done, abandoned, next int
	}{
		"a promote is approved": {gate: stubGate{answer: gate.Answer{Decision: slogate.Promote, Reason: "ok", EvaluationID: "ev_1"}}, attempt: 1, wantState: StateApproved, done: 1},
		"a halt is rejected":    {gate: stubGate{answer: gate.Answer{Decision: slogate.Halt, Reason: "spent", EvaluationID: "ev_1"}}, attempt: 1, wantState: StateRejected, done: 1},
		"a source fault is never approved: it waits and reports":    {gate: stubGate{err: &gate.SourceFaultError{Answer: gate.Answer{Decision: slogate.Halt}}}, attempt: 1, wantState: "", next: 1},
		"a wait on the third ask reports nothing (not 1, 2, 4…)":    {gate: stubGate{answer: gate.Answer{Decision: slogate.Wait, Reason: "too early"}}, attempt: 3, wantState: "-", next: 1},
		"a wait at the deadline is rejected":                        {gate: stubGate{answer: gate.Answer{Decision: slogate.Wait, Reason: "too early"}}, attempt: 5, deadline: now, wantState: StateRejected, done: 1},
		"an unknown service is rejected with what to configure":     {gate: stubGate{err: fmt.Errorf("x: %w", gate.ErrUnknownService)}, attempt: 1, wantState: StateRejected, done: 1},
		"a 422 on the answer is final: reported, not retried":       {gate: stubGate{answer: gate.Answer{Decision: slogate.Promote}}, attempt: 1, review: func(Review) int { return 422 }, wantState: StateApproved, abandoned: 1},
		"a 502 on the answer is retried":                            {gate: stubGate{answer: gate.Answer{Decision: slogate.Promote}}, attempt: 1, review: func(Review) int { return 502 }, wantState: StateApproved, next: 1},
		"a refused status report keeps the rule waiting":            {gate: stubGate{answer: gate.Answer{Decision: slogate.Wait}}, attempt: 2, review: func(Review) int { return 422 }, wantState: "", next: 1},
		"a long reason is cut so that the comment fits 1,024 chars": {gate: stubGate{answer: gate.Answer{Decision: slogate.Halt, Reason: long, EvaluationID: "ev_1"}}, attempt: 1, wantState: StateRejected, done: 1},
	} {
		t.Run(name, func(t *testing.T) {
			api := &fakeAPI{review: tc.review}
			srv := httptest.NewServer(api)
			defer srv.Close()
			app, err := NewApp(AppConfig{ID: 1, PrivateKey: testKey, URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			q := &memQueue{}
			r, err := NewRules(RulesConfig{App: app, Gate: tc.gate, Queue: q, Clock: func() time.Time { return now },
				DecisionURL: func(id string) string { return "https://slogate.example.com/v1/decisions/" + id }})
			if err != nil {
				t.Fatal(err)
			}
			deadline := tc.deadline
			if deadline.IsZero() {
				deadline = now.Add(time.Hour)
			}
			p := Pending{DeploymentID: 1, RunID: 2, InstallationID: 3, Environment: "production", Service: "checkout",
				CallbackURL: srv.URL + "/repos/acme/checkout/actions/runs/2/deployment_protection_rule", RequestedAt: now.Add(-time.Hour), Deadline: deadline}
			b, _ := json.Marshal(p)
			r.process(context.Background(), Item{ID: 1, Payload: b, Attempts: tc.attempt})
			api.mu.Lock()
			defer api.mu.Unlock()
			if q.done != tc.done || q.abandoned != tc.abandoned || q.next != tc.next {
				t.Fatalf("done %d, abandoned %d, rescheduled %d; want %d, %d, %d (%s)", q.done, q.abandoned, q.next, tc.done, tc.abandoned, tc.next, q.note)
			}
			if tc.wantState == "-" {
				if len(api.reviews) != 0 {
					t.Fatalf("reviews %+v, want none", api.reviews)
				}
				return
			}
			if len(api.reviews) != 1 {
				t.Fatalf("reviews %+v, want one", api.reviews)
			}
			rv := api.reviews[0]
			if rv.State != tc.wantState || rv.EnvironmentName != "production" || len([]rune(rv.Comment)) > MaxComment {
				t.Fatalf("review %q %q (%d characters)", rv.State, rv.Comment, len([]rune(rv.Comment)))
			}
		})
	}
}

func TestStatusReportsStayWithinGitHubsLimit(t *testing.T) {
	n := 0
	for a := 1; a <= 100000; a++ {
		if report(a) {
			n++
		}
	}
	if n != MaxReports {
		t.Fatalf("%d reports over 100,000 asks, want %d", n, MaxReports)
	}
}

func TestCheckCallback(t *testing.T) {
	app, err := NewApp(AppConfig{ID: 1, PrivateKey: testKey, URL: "https://ghe.example.com/api/v3"})
	if err != nil {
		t.Fatal(err)
	}
	for raw, ok := range map[string]bool{
		"https://ghe.example.com/api/v3/repos/acme/shop/actions/runs/42/deployment_protection_rule":      true,
		"https://evil.example.com/api/v3/repos/acme/shop/actions/runs/42/deployment_protection_rule":     false,
		"http://ghe.example.com/api/v3/repos/acme/shop/actions/runs/42/deployment_protection_rule":       false,
		"https://ghe.example.com/repos/acme/shop/actions/runs/42/deployment_protection_rule":             false,
		"https://ghe.example.com/api/v3/repos/acme/shop/actions/runs/42/deployment_protection_rule?x=1":  false,
		"https://u:p@ghe.example.com/api/v3/repos/acme/shop/actions/runs/42/deployment_protection_rule":  false,
		"https://ghe.example.com/api/v3/repos/acme/shop/issues/42":                                       false,
		"https://ghe.example.com/api/v3/repos/acme/../../app/actions/runs/42/deployment_protection_rule": false,
		"https://ghe.example.com/api/v3/repos/../../actions/runs/42/deployment_protection_rule":          false,
	} {
		_, err := app.CheckCallback(raw)
		if (err == nil) != ok {
			t.Errorf("CheckCallback(%s) = %v, want ok %v", raw, err, ok)
		}
	}
}

func TestNewAppNamesEveryProblemWithoutTheKey(t *testing.T) {
	_, err := NewApp(AppConfig{ID: 0, PrivateKey: []byte("-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n"), URL: "ftp://x"})
	for _, want := range []string{"id", "privateKey", "apiURL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewApp() = %v, want it to name %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "not a key") {
		t.Error("the error holds the key's text")
	}
}
