package grafana

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/gate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const token = "glsa_S3cr3tS3rv1ceAcc0untT0ken_0123abcd"

var (
	started  = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	finished = time.Date(2026, 11, 21, 12, 20, 0, 0, time.UTC)
)

func deploy() *slogate.Deploy {
	return &slogate.Deploy{
		ID: "dep_01", Service: "checkout", Environment: "production", Version: "v2",
		PreviousVersion: "v1", Commit: "3f9c2ab", PipelineURL: "https://ci.example.com/checkout/runs/42",
		Strategy: "canary", Status: "running", StartedAt: started,
	}
}

func deployStarted() alerting.Event {
	return alerting.Event{Kind: alerting.KindDeployStarted, At: started, Deploy: deploy()}
}

func deployFinished() alerting.Event {
	d := deploy()
	d.Status = "succeeded"
	end := finished
	d.FinishedAt = &end
	return alerting.Event{Kind: alerting.KindDeployFinished, At: finished, Deploy: d}
}

func decision(dec slogate.Decision, reason string) alerting.Event {
	return alerting.Event{
		Kind: alerting.KindDecision, At: started.Add(15 * time.Minute),
		Decision: &gate.Answer{
			Decision: dec, Reason: reason, EvaluationID: "ev_7", Service: "checkout",
			Environment: "production", Version: "v2", DeployID: "dep_01",
			EvaluatedAt: started.Add(15 * time.Minute),
		},
		DecisionDeploy: deploy(),
	}
}

type request struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// fakeGrafana is Grafana's annotation API, stored in memory.
type fakeGrafana struct {
	mu          sync.Mutex
	fail        []int // answer the next requests with these statuses
	nextID      int64
	annotations []annotation
	created     int
	requests    []request
}

func newFake(t *testing.T) (*fakeGrafana, *httptest.Server) {
	f := &fakeGrafana{nextID: 1}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/annotations", f.add)
	mux.HandleFunc("PATCH /api/annotations/{id}", f.patch)
	mux.HandleFunc("GET /api/annotations", f.find)
	mux.HandleFunc("DELETE /api/annotations/{id}", f.remove)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.requests = append(f.requests, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		var status int
		if len(f.fail) > 0 {
			status, f.fail = f.fail[0], f.fail[1:]
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case status != 0:
			answer(w, status, map[string]string{"message": http.StatusText(status)})
		case r.Header.Get("Authorization") != "Bearer "+token:
			answer(w, http.StatusUnauthorized, map[string]string{"message": "invalid API key"})
		default:
			mux.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

func answer(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeGrafana) add(w http.ResponseWriter, r *http.Request) {
	var a annotation
	if err := json.NewDecoder(r.Body).Decode(&a); err != nil || a.Time == 0 {
		answer(w, http.StatusBadRequest, map[string]string{"message": "bad request data"})
		return
	}
	if a.TimeEnd == 0 {
		a.TimeEnd = a.Time
	}
	f.mu.Lock()
	a.ID = f.nextID
	f.nextID++
	f.annotations = append(f.annotations, a)
	f.created++
	f.mu.Unlock()
	answer(w, http.StatusOK, map[string]any{"message": "Annotation added", "id": a.ID})
}

func (f *fakeGrafana) patch(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var p struct {
		TimeEnd int64 `json:"timeEnd"`
	}
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		answer(w, http.StatusBadRequest, map[string]string{"message": "bad request data"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.annotations {
		if f.annotations[i].ID == id {
			f.annotations[i].TimeEnd = p.TimeEnd
			answer(w, http.StatusOK, map[string]string{"message": "Annotation patched"})
			return
		}
	}
	answer(w, http.StatusNotFound, map[string]string{"message": "Could not find annotation to update"})
}

// remove is DELETE /api/annotations/{id}.
func (f *fakeGrafana) remove(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.annotations {
		if f.annotations[i].ID == id {
			f.annotations = slices.Delete(f.annotations, i, i+1)
			answer(w, http.StatusOK, map[string]string{"message": "Annotation deleted"})
			return
		}
	}
	answer(w, http.StatusNotFound, map[string]string{"message": "Annotation not found"})
}

func (f *fakeGrafana) find(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil {
		limit = 100
	}
	type found struct {
		ID           int64          `json:"id"`
		AlertID      int64          `json:"alertId"`
		DashboardID  int64          `json:"dashboardId"`
		DashboardUID string         `json:"dashboardUID"`
		PanelID      int64          `json:"panelId"`
		UserID       int64          `json:"userId"`
		Time         int64          `json:"time"`
		TimeEnd      int64          `json:"timeEnd"`
		Text         string         `json:"text"`
		Tags         []string       `json:"tags"`
		Data         map[string]any `json:"data"`
	}
	list := []found{}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Newest first, as Grafana orders them.
	for i := len(f.annotations) - 1; i >= 0 && len(list) < limit; i-- {
		a := f.annotations[i]
		if uid := q.Get("dashboardUID"); uid != "" && a.DashboardUID != uid {
			continue
		}
		all := true
		for _, tag := range q["tags"] {
			all = all && slices.Contains(a.Tags, tag)
		}
		if all {
			list = append(list, found{ID: a.ID, DashboardUID: a.DashboardUID, UserID: 1, Time: a.Time,
				TimeEnd: a.TimeEnd, Text: a.Text, Tags: a.Tags, Data: map[string]any{}})
		}
	}
	answer(w, http.StatusOK, list)
}

func (f *fakeGrafana) snapshot() ([]request, []annotation, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests), slices.Clone(f.annotations), f.created
}

func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("request body is not JSON: %v: %s", err, body)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("request body differs from %s:\ngot:\n%s\nwant:\n%s", path, buf.Bytes(), want)
	}
}

func newNotifier(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	n, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNew(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
		want    string
	}{
		"a URL and a token are enough": {
			cfg: Config{URL: "https://grafana.example.com/", Token: token}, want: "grafana(https://grafana.example.com)",
		},
		"a dashboard is named by String": {
			cfg:  Config{URL: "https://example.com/grafana", Token: token, DashboardUID: "slo-checkout"},
			want: "grafana(https://example.com/grafana, dashboard slo-checkout)",
		},
		"an empty config names every problem at once": {
			cfg:     Config{Timeout: -1, ExtraTags: []string{"ok", " "}},
			wantErr: "grafana: url: required\ngrafana: token: required (a service account token)\ngrafana: timeout: must not be negative, got -1ns\ngrafana: extraTags[1]: must not be empty",
		},
		"a URL with credentials is refused": {
			cfg:     Config{URL: "https://admin:admin@grafana.example.com", Token: token},
			wantErr: "grafana: url: must not hold credentials (use the token or key setting)",
		},
		"a URL that is not HTTP is refused": {
			cfg:     Config{URL: "grafana.example.com:3000", Token: token},
			wantErr: `grafana: url: scheme must be http or https, got "grafana.example.com"`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			n, err := New(tt.cfg, nil)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Fatalf("New() error = %q, want %q", got, tt.wantErr)
			}
			if err == nil && n.String() != tt.want {
				t.Errorf("String() = %q, want %q", n.String(), tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	byVersion := decision(slogate.Halt, "")
	byVersion.Decision.DeployID, byVersion.DecisionDeploy = "", nil
	tests := map[string]struct {
		e    alerting.Event
		want string
	}{
		"a deploy start is keyed by its id":           {e: deployStarted(), want: "deploy/dep_01/start"},
		"a deploy finish is keyed by its id":          {e: deployFinished(), want: "deploy/dep_01/finish"},
		"a promote is keyed by its deploy":            {e: decision(slogate.Promote, ""), want: "decision/checkout/production/dep_01/promote"},
		"a halt without a deploy is keyed by version": {e: byVersion, want: "decision/checkout/production/v2/halt"},
		"a wait draws nothing":                        {e: decision(slogate.Wait, "")},
		"an alert is not Grafana's":                   {e: alerting.Event{Kind: alerting.KindAlert, Alert: &alerting.Alert{}}},
		"a deploy without an id is not taken":         {e: alerting.Event{Kind: alerting.KindDeployStarted, Deploy: &slogate.Deploy{}}},
	}
	n := newNotifier(t, Config{URL: "http://grafana.invalid", Token: token})
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := n.Key(tt.e); got != tt.want {
				t.Errorf("Key() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNotify(t *testing.T) {
	type call struct{ method, path, query, golden string }
	tests := map[string]struct {
		before []alerting.Event // delivered first
		e      alerting.Event
		cfg    Config
		calls  []call // the requests e made
		want   []annotation
	}{
		"a deploy start opens a region tagged with its id": {
			e: deployStarted(),
			calls: []call{
				{"GET", "/api/annotations", "limit=10&tags=slogate&tags=deploy-id%3Adep_01&type=annotation", ""},
				{"POST", "/api/annotations", "", "deploy-started.json"},
				// settle: no second annotation of the deploy to remove.
				{"GET", "/api/annotations", "limit=10&tags=slogate&tags=deploy-id%3Adep_01&type=annotation", ""},
			},
			want: []annotation{{ID: 1, Time: 1795262400000, TimeEnd: 1795262400000,
				Tags: []string{"slogate", "checkout", "production", "v2", "deploy", "deploy-id:dep_01"},
				Text: "Deploy checkout v2 to production (commit 3f9c2ab, https://ci.example.com/checkout/runs/42)"}},
		},
		"a deploy start on a dashboard names it": {
			e:   deployStarted(),
			cfg: Config{DashboardUID: "slo-checkout", ExtraTags: []string{"team:payments"}},
			calls: []call{
				{"GET", "/api/annotations", "dashboardUID=slo-checkout&limit=10&tags=slogate&tags=deploy-id%3Adep_01&type=annotation", ""},
				{"POST", "/api/annotations", "", "deploy-started-dashboard.json"},
				{"GET", "/api/annotations", "dashboardUID=slo-checkout&limit=10&tags=slogate&tags=deploy-id%3Adep_01&type=annotation", ""},
			},
			want: []annotation{{ID: 1, DashboardUID: "slo-checkout", Time: 1795262400000, TimeEnd: 1795262400000,
				Tags: []string{"slogate", "checkout", "production", "v2", "deploy", "deploy-id:dep_01", "team:payments"},
				Text: "Deploy checkout v2 to production (commit 3f9c2ab, https://ci.example.com/checkout/runs/42)"}},
		},
		"a deploy start sent again finds its region and adds none": {
			before: []alerting.Event{deployStarted()},
			e:      deployStarted(),
			calls:  []call{{"GET", "/api/annotations", "limit=10&tags=slogate&tags=deploy-id%3Adep_01&type=annotation", ""}},
			want: []annotation{{ID: 1, Time: 1795262400000, TimeEnd: 1795262400000,
				Tags: []string{"slogate", "checkout", "production", "v2", "deploy", "deploy-id:dep_01"},
				Text: "Deploy checkout v2 to production (commit 3f9c2ab, https://ci.example.com/checkout/runs/42)"}},
		},
		"a deploy finish closes the region found by its tags": {
			before: []alerting.Event{deployStarted()},
			e:      deployFinished(),
			calls: []call{
				{"GET", "/api/annotations", "limit=10&tags=slogate&tags=deploy-id%3Adep_01&type=annotation", ""},
				{"PATCH", "/api/annotations/1", "", "deploy-finished-patch.json"},
			},
			want: []annotation{{ID: 1, Time: 1795262400000, TimeEnd: 1795263600000,
				Tags: []string{"slogate", "checkout", "production", "v2", "deploy", "deploy-id:dep_01"},
				Text: "Deploy checkout v2 to production (commit 3f9c2ab, https://ci.example.com/checkout/runs/42)"}},
		},
		"a deploy finish without its start draws the whole region": {
			e: deployFinished(),
			calls: []call{
				{"GET", "/api/annotations", "limit=10&tags=slogate&tags=deploy-id%3Adep_01&type=annotation", ""},
				{"POST", "/api/annotations", "", "deploy-finished-create.json"},
				{"GET", "/api/annotations", "limit=10&tags=slogate&tags=deploy-id%3Adep_01&type=annotation", ""},
			},
			want: []annotation{{ID: 1, Time: 1795262400000, TimeEnd: 1795263600000,
				Tags: []string{"slogate", "checkout", "production", "v2", "deploy", "deploy-id:dep_01"},
				Text: "Deploy checkout v2 to production (commit 3f9c2ab, https://ci.example.com/checkout/runs/42)"}},
		},
		"a halt is a point annotation with the reason": {
			e:     decision(slogate.Halt, "checkout-availability: version v2 burns budget at 6.3x since 12:01 (max 2x)"),
			calls: []call{{"POST", "/api/annotations", "", "decision-halt.json"}},
			want: []annotation{{ID: 1, Time: 1795263300000, TimeEnd: 1795263300000,
				Tags: []string{"slogate", "checkout", "production", "v2", "halt"},
				Text: "slogate halted checkout v2 in production: checkout-availability: version v2 burns budget at 6.3x since 12:01 (max 2x) (https://ci.example.com/checkout/runs/42)"}},
		},
		"a promote is a point annotation": {
			e:     decision(slogate.Promote, "every check passed"),
			calls: []call{{"POST", "/api/annotations", "", "decision-promote.json"}},
			want: []annotation{{ID: 1, Time: 1795263300000, TimeEnd: 1795263300000,
				Tags: []string{"slogate", "checkout", "production", "v2", "promote"},
				Text: "slogate promoted checkout v2 in production: every check passed (https://ci.example.com/checkout/runs/42)"}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFake(t)
			cfg := tt.cfg
			cfg.URL, cfg.Token = srv.URL, token
			n := newNotifier(t, cfg)
			ctx := context.Background()
			for _, e := range tt.before {
				if _, err := n.Notify(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			skip := len(fake.requests)
			if retry, err := n.Notify(ctx, tt.e); err != nil {
				t.Fatalf("Notify() = %t, %v", retry, err)
			}
			reqs, stored, _ := fake.snapshot()
			reqs = reqs[skip:]
			if len(reqs) != len(tt.calls) {
				t.Fatalf("Grafana saw %d requests, want %d: %+v", len(reqs), len(tt.calls), reqs)
			}
			for i, c := range tt.calls {
				r := reqs[i]
				if r.Method != c.method || r.Path != c.path || r.Query != c.query {
					t.Errorf("request %d = %s %s?%s, want %s %s?%s", i, r.Method, r.Path, r.Query, c.method, c.path, c.query)
				}
				for h, want := range map[string]string{
					"Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json",
				} {
					if got := r.Header.Get(h); got != want {
						t.Errorf("request %d header %s = %q, want %q", i, h, got, want)
					}
				}
				if c.golden != "" {
					golden(t, c.golden, r.Body)
				}
			}
			if fmt.Sprint(stored) != fmt.Sprint(tt.want) {
				t.Errorf("Grafana holds\n%+v\nwant\n%+v", stored, tt.want)
			}
		})
	}
}

func TestNotifyFailures(t *testing.T) {
	tests := map[string]struct {
		e         alerting.Event
		token     string
		fail      []int
		timeout   time.Duration
		wantRetry bool
		wantErr   string
		wantToken bool
		// wantConfig: an alerting.ConfigError (retried, counted apart).
		wantConfig bool
	}{
		"a server error is retried": {
			e: decision(slogate.Halt, "x"), fail: []int{502}, wantRetry: true,
			wantErr: "grafana: decision/checkout/production/dep_01/halt: POST /api/annotations: HTTP 502: Bad Gateway",
		},
		"a rate limit is retried": {
			e: deployStarted(), fail: []int{429}, wantRetry: true,
			wantErr: "grafana: deploy/dep_01/start: GET /api/annotations: HTTP 429: Too Many Requests",
		},
		"a bad request is final": {
			e: decision(slogate.Halt, "x"), fail: []int{400},
			wantErr: "grafana: decision/checkout/production/dep_01/halt: POST /api/annotations: HTTP 400: Bad Request",
		},
		"a wrong token is retried as a configuration error and says so": {
			e: deployStarted(), token: "glsa_wrong", wantToken: true, wantRetry: true, wantConfig: true,
			wantErr: "grafana: deploy/dep_01/start: GET /api/annotations: HTTP 401: invalid API key (check the service account token and that its role may read and write annotations)",
		},
		"a token without permission is retried as a configuration error and says so": {
			e: deployFinished(), fail: []int{403}, wantToken: true, wantRetry: true, wantConfig: true,
			wantErr: "grafana: deploy/dep_01/finish: GET /api/annotations: HTTP 403: Forbidden (check the service account token and that its role may read and write annotations)",
		},
		"a Grafana that does not answer is retried": {
			e: decision(slogate.Promote, "ok"), timeout: time.Nanosecond, wantRetry: true,
			wantErr: "grafana: decision/checkout/production/dep_01/promote: POST /api/annotations: grafana POST /api/annotations timed out after 1ns",
		},
		"a wait is refused for good": {
			e:       decision(slogate.Wait, "x"),
			wantErr: "grafana: event decision is not a deploy or a promote/halt decision",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFake(t)
			fake.fail = tt.fail
			tok := token
			if tt.token != "" {
				tok = tt.token
			}
			n := newNotifier(t, Config{URL: srv.URL, Token: tok, Timeout: tt.timeout})
			retry, err := n.Notify(context.Background(), tt.e)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if retry != tt.wantRetry || got != tt.wantErr {
				t.Errorf("Notify() = %t, %q; want %t, %q", retry, got, tt.wantRetry, tt.wantErr)
			}
			var ce *alerting.ConfigError
			if errors.As(err, &ce) != tt.wantConfig {
				t.Errorf("configuration error = %t, want %t", errors.As(err, &ce), tt.wantConfig)
			}
			if errors.Is(err, ErrToken) != tt.wantToken {
				t.Errorf("errors.Is(err, ErrToken) = %t, want %t", errors.Is(err, ErrToken), tt.wantToken)
			}
			if strings.Contains(got, tok) {
				t.Errorf("the error shows the token")
			}
		})
	}
}

// TestPeerDownThenBack: Grafana fails while a deploy starts and finishes,
// then comes back; the retries leave one region, closed.
func TestPeerDownThenBack(t *testing.T) {
	fake, srv := newFake(t)
	n := newNotifier(t, Config{URL: srv.URL, Token: token})
	ctx := context.Background()
	deliver := func(e alerting.Event, down []int) int {
		t.Helper()
		fake.mu.Lock()
		fake.fail = down
		fake.mu.Unlock()
		retries := 0
		for {
			retry, err := n.Notify(ctx, e)
			if err == nil {
				return retries
			}
			if !retry {
				t.Fatalf("Notify(%s) while Grafana is down = final error %v, want a retry", e.Kind, err)
			}
			if retries++; retries > 5 {
				t.Fatalf("Notify(%s) still failing after %d retries: %v", e.Kind, retries, err)
			}
		}
	}
	// The lookup passes and the creation fails; then the lookup fails.
	if r := deliver(deployStarted(), []int{0, 500, 500}); r != 2 {
		t.Errorf("start retried %d times, want 2", r)
	}
	// The finish: the lookup fails, then the patch.
	if r := deliver(deployFinished(), []int{503, 0, 500}); r != 2 {
		t.Errorf("finish retried %d times, want 2", r)
	}
	// The outbox, unsure whether the finish went, sends it once more.
	deliver(deployFinished(), nil)
	_, stored, created := fake.snapshot()
	if created != 1 || len(stored) != 1 || stored[0].Time != started.UnixMilli() || stored[0].TimeEnd != finished.UnixMilli() {
		t.Errorf("Grafana created %d annotations and holds %+v; want one region from %d to %d",
			created, stored, started.UnixMilli(), finished.UnixMilli())
	}
}

// A deploy's start and finish delivered at the same moment (a peer back
// from an outage, a short deploy) must draw one region, not two.
func TestStartAndFinishDeliveredTogetherDrawOneRegion(t *testing.T) {
	for round := range 20 {
		fake, srv := newFake(t)
		n := newNotifier(t, Config{URL: srv.URL, Token: token})
		var wg sync.WaitGroup
		for _, e := range []alerting.Event{deployStarted(), deployFinished()} {
			wg.Go(func() {
				if _, err := n.Notify(context.Background(), e); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		_, stored, _ := fake.snapshot()
		if len(stored) != 1 || stored[0].TimeEnd != 1795263600000 {
			t.Fatalf("round %d: annotations %+v, want one closed region", round, stored)
		}
	}
}

// Two replicas that each drew the deploy (no lock spans processes) leave
// one region: the oldest, with the latest end.
func TestTwoReplicasDrawingOneDeployLeaveOneRegion(t *testing.T) {
	fake, srv := newFake(t)
	a := newNotifier(t, Config{URL: srv.URL, Token: token})
	b := newNotifier(t, Config{URL: srv.URL, Token: token})
	// Replica a's start and replica b's whole region, both created before
	// either looked again: as if their lookups had crossed.
	d := deployStarted().Deploy
	ctx := context.Background()
	if _, err := a.create(ctx, annotation{Time: ms(d.StartedAt), Tags: a.deployTags(d), Text: deployText(d)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.create(ctx, annotation{Time: ms(d.StartedAt), TimeEnd: 1795263600000, Tags: b.deployTags(d), Text: deployText(d)}); err != nil {
		t.Fatal(err)
	}
	if err := a.settle(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	_, stored, _ := fake.snapshot()
	if len(stored) != 1 || stored[0].ID != 1 || stored[0].TimeEnd != 1795263600000 {
		t.Fatalf("annotations %+v, want the first, closed at the second's end", stored)
	}
}
