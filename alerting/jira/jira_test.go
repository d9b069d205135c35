package jira

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	email = "sre@example.com"
	token = "ATATT3xFfGF0S3cr3tT0ken000000000"
)

var now = time.Date(2026, 11, 21, 12, 15, 0, 0, time.UTC)

func fptr(f float64) *float64 { return &f }

func haltEvent() alerting.Event {
	return alerting.Event{
		Kind: alerting.KindDecision, At: now,
		Decision: &gate.Answer{
			Decision: slogate.Halt, Reason: "checkout-availability: the error budget is spent (-12% left)",
			EvaluationID: "ev_7", Service: "checkout", Environment: "production", Version: "v2",
			DeployID: "dep_01", Policy: "checkout-production", EvaluatedAt: now,
			Checks: []gate.Check{{Kind: gate.KindBudget, SLO: "checkout-availability", Verdict: gate.Fail,
				Reason: "-12% of the budget left", Target: 0.999, BudgetRemaining: fptr(-0.12)}},
		},
		DecisionDeploy: &slogate.Deploy{ID: "dep_01", Service: "checkout", Environment: "production", Version: "v2",
			PreviousVersion: "v1", Commit: "3f9c2ab", PipelineURL: "https://ci.example.com/checkout/runs/42", StartedAt: now.Add(-14 * time.Minute)},
		Links: []alerting.Link{{Href: "https://slogate.example.com/v1/decisions/ev_7", Text: "the gate's answer"}},
	}
}

func budgetEvent() alerting.Event {
	return alerting.Event{
		Kind: alerting.KindBudgetExhausted, At: now,
		Budget: &alerting.Budget{
			Service: "checkout", SLO: "checkout-availability", Target: 0.999, Window: "30d", Remaining: -0.12, Period: "rolling-2026-11",
			Status: slo.Status{Name: "checkout-availability", Service: "checkout", Target: 0.999, Window: "30d",
				SLI:         slo.SLIFigures{Ratio: fptr(0.99888)},
				Alerts:      []slo.AlertState{{Severity: slo.SeverityTicket, LongWindow: "1d", ShortWindow: "2h", Factor: 1, Firing: true}},
				EvaluatedAt: now},
		},
	}
}

// fakeJira is Jira's issue and search API for one project, in memory,
// for Cloud (REST v3: ADF descriptions, Basic auth, /search/jql) or Data
// Center (REST v2: string descriptions, Bearer PAT, /search).
type fakeJira struct {
	cloud bool

	mu       sync.Mutex
	fail     []failure // answered first, in order; a zero one lets the request through
	issues   []*fakeIssue
	created  int
	bodies   [][]byte // create request bodies
	comments map[string][]json.RawMessage
	problems []string
}

type failure struct {
	status int
	header map[string]string
	body   string
	// after: Jira does the work, then the answer is this failure (an
	// answer lost on the way back).
	after bool
}

type fakeIssue struct {
	Key    string
	Labels []string
	Done   bool
}

var labelClause = regexp.MustCompile(`labels = "([^"]+)"`)

func newFake(t *testing.T, cloud bool) (*fakeJira, *httptest.Server) {
	f := &fakeJira{cloud: cloud, comments: map[string][]json.RawMessage{}}
	api := "/rest/api/2"
	search := api + "/search"
	want := "Bearer " + token
	if cloud {
		api = "/rest/api/3"
		search = api + "/search/jql"
		want = "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+token))
	}
	var handle func(w http.ResponseWriter, r *http.Request, pop bool)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.fail) > 0 && f.fail[0].after {
			fl := f.fail[0]
			f.fail = f.fail[1:]
			handle(httptest.NewRecorder(), r, false)
			w.WriteHeader(fl.status)
			io.WriteString(w, fl.body)
			return
		}
		handle(w, r, true)
	}))
	handle = func(w http.ResponseWriter, r *http.Request, pop bool) {
		if r.Header.Get("Authorization") != want {
			f.problems = append(f.problems, "bad Authorization on "+r.URL.Path)
			answer(w, http.StatusUnauthorized, map[string]any{"errorMessages": []string{"You are not authenticated."}})
			return
		}
		if pop && len(f.fail) > 0 {
			fl := f.fail[0]
			f.fail = f.fail[1:]
			if fl.status != 0 {
				for k, v := range fl.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(fl.status)
				io.WriteString(w, fl.body)
				return
			}
		}
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method == http.MethodGet && r.URL.Path == search:
			m := labelClause.FindStringSubmatch(r.URL.Query().Get("jql"))
			if m == nil || !strings.Contains(r.URL.Query().Get("jql"), "statusCategory != Done") {
				answer(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"bad JQL " + r.URL.Query().Get("jql")}})
				return
			}
			issues := []any{}
			for _, is := range f.issues {
				if !is.Done && slices.Contains(is.Labels, m[1]) {
					cs := []any{}
					for _, c := range f.comments[is.Key] {
						cs = append(cs, map[string]any{"body": c})
					}
					issues = append(issues, map[string]any{"id": "1000", "key": is.Key,
						"fields": map[string]any{"labels": is.Labels, "comment": map[string]any{"comments": cs, "total": len(cs)}}})
				}
			}
			if cloud {
				answer(w, http.StatusOK, map[string]any{"issues": issues, "isLast": true})
			} else {
				answer(w, http.StatusOK, map[string]any{"startAt": 0, "maxResults": 1, "total": len(issues), "issues": issues})
			}
		case r.Method == http.MethodPost && r.URL.Path == api+"/issue":
			var in struct {
				Fields struct {
					Project     struct{ Key string }
					IssueType   struct{ Name string } `json:"issuetype"`
					Summary     string
					Description json.RawMessage
					Labels      []string
				}
			}
			if err := json.Unmarshal(body, &in); err != nil || in.Fields.Project.Key != "OPS" || in.Fields.IssueType.Name == "" || in.Fields.Summary == "" {
				answer(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{}, "errors": map[string]string{"project": "valid project is required"}})
				return
			}
			var doc struct {
				Type    string
				Version int
			}
			isADF := json.Unmarshal(in.Fields.Description, &doc) == nil && doc.Type == "doc" && doc.Version == 1
			if isADF != cloud {
				answer(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{}, "errors": map[string]string{"description": "Operation value must be a string (or an Atlassian Document on v3)"}})
				return
			}
			f.created++
			f.bodies = append(f.bodies, body)
			key := fmt.Sprintf("OPS-%d", len(f.issues)+1)
			f.issues = append(f.issues, &fakeIssue{Key: key, Labels: in.Fields.Labels})
			answer(w, http.StatusCreated, map[string]any{"id": "10001", "key": key, "self": "https://jira.example.com" + api + "/issue/10001"})
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, api+"/issue/") && strings.HasSuffix(r.URL.Path, "/comment"):
			key := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, api+"/issue/"), "/comment")
			var in struct{ Body json.RawMessage }
			if err := json.Unmarshal(body, &in); err != nil || len(in.Body) == 0 {
				answer(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"Comment body can not be empty!"}})
				return
			}
			f.comments[key] = append(f.comments[key], in.Body)
			answer(w, http.StatusCreated, map[string]any{"id": "20001"})
		default:
			answer(w, http.StatusNotFound, map[string]any{"errorMessages": []string{"no route " + r.Method + " " + r.URL.Path}})
		}
	}
	t.Cleanup(srv.Close)
	return f, srv
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(v, "", "  ")
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update after checking):\n%s", path, got)
	}
}

func newNotifier(t *testing.T, url string, cloud bool) *Notifier {
	t.Helper()
	cfg := Config{URL: url, Project: "OPS", IssueType: "Bug", Token: token, Labels: []string{"slogate"}, Components: []string{"checkout"}}
	if cloud {
		cfg.Flavor, cfg.Email = Cloud, email
	} else {
		cfg.Flavor = DataCenter
	}
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNew(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  Config
		want []string
	}{
		"a config without url, project or token names each": {Config{}, []string{"url", "project", "token", "email"}},
		"an unknown flavor is refused":                      {Config{URL: "https://x.atlassian.net", Project: "OPS", Token: "t", Email: "a@b", Flavor: "onprem"}, []string{"flavor"}},
		"Data Center needs no email":                        {Config{URL: "https://jira.example.com", Project: "OPS", Token: "t", Flavor: "datacenter"}, nil},
		"a label with a space is refused":                   {Config{URL: "https://x.atlassian.net", Project: "OPS", Token: "t", Email: "a@b", Labels: []string{"slo gate"}}, []string{"labels[0]"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cfg, nil)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("New() = %v", err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("New() = %v, want it to name %s", err, w)
				}
			}
		})
	}
}

func TestNotify(t *testing.T) {
	for name, tc := range map[string]struct {
		cloud  bool
		event  alerting.Event
		golden string
	}{
		"a halt on Jira Cloud files an issue with an ADF description":        {true, haltEvent(), "cloud-halt-create.json"},
		"an exhausted budget on Data Center files an issue with a text body": {false, budgetEvent(), "datacenter-budget-create.json"},
	} {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFake(t, tc.cloud)
			n := newNotifier(t, srv.URL, tc.cloud)
			if _, err := n.Notify(context.Background(), tc.event); err != nil {
				t.Fatal(err)
			}
			// Sent again (the outbox unsure it went): nothing more.
			if _, err := n.Notify(context.Background(), tc.event); err != nil {
				t.Fatal(err)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if fake.created != 1 || len(fake.comments) != 0 || len(fake.problems) != 0 {
				t.Fatalf("created %d, comments %v, problems %v; want one issue", fake.created, fake.comments, fake.problems)
			}
			golden(t, tc.golden, fake.bodies[0])
		})
	}
}

func TestNotifyCommentsOnTheOpenIssue(t *testing.T) {
	for _, cloud := range []bool{true, false} {
		t.Run(fmt.Sprintf("cloud=%v: an open issue with the fingerprint gets a comment, once", cloud), func(t *testing.T) {
			fake, srv := newFake(t, cloud)
			n := newNotifier(t, srv.URL, cloud)
			fp := n.Key(haltEvent())
			fake.issues = []*fakeIssue{{Key: "OPS-9", Labels: []string{"slogate", FingerprintLabel(fp)}}, {Key: "OPS-3", Labels: []string{FingerprintLabel(fp)}, Done: true}}
			for range 2 {
				if _, err := n.Notify(context.Background(), haltEvent()); err != nil {
					t.Fatal(err)
				}
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if fake.created != 0 || len(fake.comments["OPS-9"]) != 1 || len(fake.comments["OPS-3"]) != 0 {
				t.Fatalf("created %d, comments %v; want one comment on OPS-9", fake.created, fake.comments)
			}
		})
	}
}

func TestNotifyFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		fail      failure
		retry     bool
		notBefore time.Duration
	}{
		"a 429 with Retry-After is retried, not before it": {failure{status: 429, header: map[string]string{"Retry-After": "30"}}, true, 30 * time.Second},
		"a 503 is retried": {failure{status: 503, body: "<html>down</html>"}, true, 0},
		"a 400 is final":   {failure{status: 400, body: `{"errorMessages":[],"errors":{"issuetype":"The issue type selected is invalid."}}`}, false, 0},
		"a 401 is final":   {failure{status: 401, body: `{"errorMessages":["You are not authenticated."]}`}, false, 0},
	} {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFake(t, true)
			fake.fail = []failure{tc.fail}
			n := newNotifier(t, srv.URL, true)
			n.now = func() time.Time { return now }
			retry, err := n.Notify(context.Background(), haltEvent())
			if err == nil || retry != tc.retry {
				t.Fatalf("Notify() = %v, %v; want an error, retry %v", retry, err, tc.retry)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatal("the error holds the token")
			}
			var nb alerting.NotBefore
			if tc.notBefore > 0 {
				if !errorsAs(err, &nb) || !nb.NotBefore().Equal(now.Add(tc.notBefore)) {
					t.Fatalf("Notify() error %v: want NotBefore %s", err, now.Add(tc.notBefore))
				}
			}
		})
	}
}

func errorsAs(err error, nb *alerting.NotBefore) bool {
	var je *Error
	for e := err; e != nil; {
		if x, ok := e.(*Error); ok {
			je = x
			break
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	if je == nil {
		return false
	}
	*nb = je
	return true
}

// TestPeerDownThenBack: Jira answers 503 while a halt is filed — the
// creation's answer is lost after Jira stored it — then recovers; the
// retries file the issue exactly once and comment nothing.
func TestPeerDownThenBack(t *testing.T) {
	for _, cloud := range []bool{true, false} {
		t.Run(fmt.Sprintf("cloud=%v", cloud), func(t *testing.T) {
			fake, srv := newFake(t, cloud)
			// The search fails; then the creation is stored but its answer
			// is lost (a 503 after it); then the search fails again.
			fake.fail = []failure{{status: 503, body: "Service Unavailable"}, {}, {status: 503, after: true}, {status: 503}}
			n := newNotifier(t, srv.URL, cloud)
			retries := 0
			for {
				retry, err := n.Notify(context.Background(), haltEvent())
				if err == nil {
					break
				}
				if !retry {
					t.Fatalf("Notify() while Jira is down = final %v", err)
				}
				if retries++; retries > 5 {
					t.Fatalf("still failing after %d retries: %v", retries, err)
				}
			}
			// Sent again by the outbox, unsure: nothing more is filed.
			if _, err := n.Notify(context.Background(), haltEvent()); err != nil {
				t.Fatal(err)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if retries != 3 || fake.created != 1 || len(fake.comments) != 0 {
				t.Fatalf("retries %d, created %d, comments %v; want 3, 1, none", retries, fake.created, fake.comments)
			}
		})
	}
}

// TestThroughTheDispatcher: the outbox's dispatcher retries a 503 and
// the issue is filed exactly once.
func TestThroughTheDispatcher(t *testing.T) {
	fake, srv := newFake(t, true)
	fake.fail = []failure{{status: 503}, {status: 503}}
	n := newNotifier(t, srv.URL, true)
	ob := &memOutbox{}
	d, err := alerting.NewDispatcher(alerting.DispatcherConfig{Outbox: ob, Notifiers: []alerting.Notifier{n},
		BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), haltEvent(), haltEvent()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for !ob.allDelivered() {
		if time.Now().After(deadline) {
			t.Fatal("not delivered within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.created != 1 {
		t.Fatalf("created %d issues, want 1", fake.created)
	}
}

// memOutbox is an in-memory alerting.Outbox.
type memOutbox struct {
	mu   sync.Mutex
	msgs []*memMsg
}

type memMsg struct {
	slogate.OutboxMessage
	next, leased time.Time
	done         bool
}

func (o *memOutbox) Enqueue(_ context.Context, msgs ...slogate.OutboxMessage) error {
	o.mu.Lock()
	defer o.mu.Unlock()
outer:
	for _, m := range msgs {
		for _, x := range o.msgs {
			if x.Key == m.Key {
				continue outer
			}
		}
		m.ID, m.CreatedAt = int64(len(o.msgs)+1), time.Now()
		o.msgs = append(o.msgs, &memMsg{OutboxMessage: m})
	}
	return nil
}

func (o *memOutbox) ClaimOutbox(_ context.Context, peer string, limit int, lease time.Duration, at time.Time) ([]slogate.OutboxMessage, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []slogate.OutboxMessage
	for _, m := range o.msgs {
		if len(out) < limit && !m.done && m.Peer == peer && !m.next.After(at) && !m.leased.After(at) {
			m.Attempts++
			m.leased = at.Add(lease)
			out = append(out, m.OutboxMessage)
		}
	}
	return out, nil
}

func (o *memOutbox) MarkDelivered(_ context.Context, id int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs[id-1].done = true
	return nil
}

func (o *memOutbox) MarkFailed(_ context.Context, id int64, _ string, next time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs[id-1].next, o.msgs[id-1].leased = next, time.Time{}
	return nil
}

func (o *memOutbox) allDelivered() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range o.msgs {
		if !m.done {
			return false
		}
	}
	return len(o.msgs) > 0
}
