package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate"
)

const goodDeploy = `{"service":"checkout","environment":"production","version":"v2","previousVersion":"v1",
	"commit":"9f2c1e","pipelineUrl":"https://ci.example.com/p/1","strategy":"canary",
	"startedAt":"2026-11-21T12:01:00Z","labels":{"team":"payments"}}`

func TestCreatingADeployStoresItAndInvalidatesTheGate(t *testing.T) {
	h := newHarness(t)
	r := h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: goodDeploy})
	d := decodeAs[Deploy](t, r, http.StatusCreated)
	want := Deploy{
		ID: "dep_001", Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1",
		Commit: "9f2c1e", PipelineURL: "https://ci.example.com/p/1", Strategy: "canary",
		Labels:    map[string]string{"team": "payments"},
		StartedAt: time.Date(2026, 11, 21, 12, 1, 0, 0, time.UTC), Status: "running", CreatedAt: fixedTime,
		CreatedBy: "ci",
	}
	if fmt.Sprint(d) != fmt.Sprint(want) {
		t.Fatalf("deploy\n got %+v\nwant %+v", d, want)
	}
	if loc := r.header.Get("Location"); loc != "/v1/deploys/dep_001" {
		t.Fatalf("Location %q", loc)
	}
	if got := h.gate.invalidations(); !slices.Equal(got, []string{"checkout/production"}) {
		t.Fatalf("invalidated %v", got)
	}
	audit := h.store.auditLog()
	if len(audit) != 1 || audit[0].Actor != "ci" || audit[0].Action != "deploy.created" || audit[0].Subject != "dep_001" {
		t.Fatalf("audit %+v", audit)
	}
	got := decodeAs[Deploy](t, h.do(t, call{method: "GET", path: "/v1/deploys/dep_001", token: tokRead}), http.StatusOK)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read back %+v", got)
	}
	problem(t, h.do(t, call{method: "GET", path: "/v1/deploys/dep_999", token: tokRead}), http.StatusNotFound)
}

func TestTheSameIdempotencyKeyStoresADeployOnce(t *testing.T) {
	h := newHarness(t)
	key := map[string]string{"Idempotency-Key": "pipeline-1234-deploy"}
	first := h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: goodDeploy, header: key})
	d1 := decodeAs[Deploy](t, first, http.StatusCreated)
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the first answer says it is replayed")
	}
	again := h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: goodDeploy, header: key})
	d2 := decodeAs[Deploy](t, again, http.StatusOK)
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("headers %v: want Idempotent-Replayed: true", again.header)
	}
	if d1.ID != d2.ID || string(first.body) != string(again.body) {
		t.Fatalf("replay answered another deploy:\n%s\n%s", first.body, again.body)
	}
	if n := len(h.gate.invalidations()); n != 1 {
		t.Fatalf("%d invalidations, want 1", n)
	}
	other := strings.Replace(goodDeploy, `"v2"`, `"v3"`, 1)
	p := problem(t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: other, header: key}), http.StatusUnprocessableEntity)
	if !p.names("Idempotency-Key") {
		t.Fatalf("problem %+v does not name the header", p)
	}
	// Without a key, the same body is a second deploy.
	d3 := decodeAs[Deploy](t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: goodDeploy}), http.StatusCreated)
	if d3.ID == d1.ID {
		t.Fatal("a request without a key was deduplicated")
	}
}

func TestBadDeployRequestsAreRefusedNamingTheField(t *testing.T) {
	tests := map[string]struct {
		body   string
		header map[string]string
		status int
		field  string
	}{
		"a deploy without a service is a 400 naming service": {
			body: `{"environment":"production","version":"v2"}`, status: 400, field: "service"},
		"a deploy without a version is a 400 naming version": {
			body: `{"service":"checkout","environment":"production"}`, status: 400, field: "version"},
		"a blank environment is a 400 naming environment": {
			body: `{"service":"checkout","environment":"  ","version":"v2"}`, status: 400, field: "environment"},
		"an unknown strategy is a 400 naming strategy": {
			body: `{"service":"checkout","environment":"production","version":"v2","strategy":"yolo"}`, status: 400, field: "strategy"},
		"a startedAt that is not RFC 3339 is a 400 naming startedAt": {
			body: `{"service":"checkout","environment":"production","version":"v2","startedAt":"21/11/2026"}`, status: 400, field: "startedAt"},
		"a startedAt in the future is a 400 naming startedAt": {
			body: `{"service":"checkout","environment":"production","version":"v2","startedAt":"2027-01-01T00:00:00Z"}`, status: 400, field: "startedAt"},
		"a relative pipelineUrl is a 400 naming pipelineUrl": {
			body: `{"service":"checkout","environment":"production","version":"v2","pipelineUrl":"/p/1"}`, status: 400, field: "pipelineUrl"},
		"an unknown field is a 400 naming it": {
			body: `{"service":"checkout","environment":"production","version":"v2","team":"payments"}`, status: 400, field: "team"},
		"a number for a string is a 400 naming the field": {
			body: `{"service":"checkout","environment":"production","version":2}`, status: 400, field: "version"},
		"a label that is not a string is a 400 naming labels": {
			body: `{"service":"checkout","environment":"production","version":"v2","labels":{"a":1}}`, status: 400, field: "labels"},
		"malformed JSON is a 400 naming the body": {
			body: `{"service":"checkout",`, status: 400, field: "body"},
		"two JSON objects are a 400 naming the body": {
			body: `{"service":"checkout","environment":"production","version":"v2"} {}`, status: 400, field: "body"},
		"a text body is a 415": {
			body: `service=checkout`, header: map[string]string{"Content-Type": "text/plain"}, status: 415, field: "Content-Type"},
		"a body without a content type is a 415": {
			body: `{}`, header: map[string]string{"Content-Type": ""}, status: 415, field: "Content-Type"},
		"a body over the limit is a 413": {
			body: `{"service":"` + strings.Repeat("a", 2048) + `","environment":"production","version":"v2"}`, status: 413},
		"an idempotency key over 255 bytes is a 400 naming it": {
			body: `{"service":"checkout","environment":"production","version":"v2"}`, header: map[string]string{"Idempotency-Key": strings.Repeat("k", 300)},
			status: 400, field: "Idempotency-Key"},
	}
	h := newHarness(t, func(d *Deps) { d.MaxBodyBytes = 1024 })
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := problem(t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: tc.body, header: tc.header}), tc.status)
			if tc.field != "" && !p.names(tc.field) {
				t.Fatalf("problem %+v does not name %s", p, tc.field)
			}
		})
	}
	if n := len(h.store.deploys); n != 0 {
		t.Fatalf("%d deploys stored from bad requests", n)
	}
}

func TestDeployListsArePagedNewestFirst(t *testing.T) {
	h := newHarness(t)
	for i := range 5 {
		env := "production"
		if i%2 == 1 {
			env = "staging"
		}
		body := fmt.Sprintf(`{"service":"checkout","environment":%q,"version":"v%d"}`, env, i)
		decodeAs[Deploy](t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: body}), http.StatusCreated)
	}
	var versions []string
	path := "/v1/deploys?service=checkout&limit=2"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("the pages do not end")
		}
		l := decodeAs[DeployList](t, h.do(t, call{method: "GET", path: path, token: tokRead}), http.StatusOK)
		for _, d := range l.Items {
			versions = append(versions, d.Version)
		}
		if l.NextCursor == "" {
			break
		}
		if len(l.Items) != 2 {
			t.Fatalf("a middle page has %d items", len(l.Items))
		}
		path = "/v1/deploys?service=checkout&limit=2&cursor=" + l.NextCursor
	}
	if want := []string{"v4", "v3", "v2", "v1", "v0"}; !slices.Equal(versions, want) {
		t.Fatalf("versions %v, want %v", versions, want)
	}
	l := decodeAs[DeployList](t, h.do(t, call{method: "GET", path: "/v1/deploys?environment=staging", token: tokRead}), http.StatusOK)
	if len(l.Items) != 2 || l.Items[0].Version != "v3" {
		t.Fatalf("staging deploys %+v", l.Items)
	}
	empty := h.do(t, call{method: "GET", path: "/v1/deploys?service=nothing", token: tokRead})
	if string(empty.body) != `{"items":[],"nextCursor":""}`+"\n" {
		t.Fatalf("an empty list is %s", empty.body)
	}

	for name, tc := range map[string]struct{ query, field string }{
		"a limit of zero is a 400 naming limit":         {"limit=0", "limit"},
		"a limit over 1000 is a 400 naming limit":       {"limit=1001", "limit"},
		"a limit that is a word is a 400 naming limit":  {"limit=ten", "limit"},
		"a since that is not a time is a 400 naming it": {"since=yesterday", "since"},
		"a cursor of no list is a 400 naming cursor":    {"cursor=%2A%2A", "cursor"},
	} {
		t.Run(name, func(t *testing.T) {
			p := problem(t, h.do(t, call{method: "GET", path: "/v1/deploys?" + tc.query, token: tokRead}), http.StatusBadRequest)
			if !p.names(tc.field) {
				t.Fatalf("problem %+v does not name %s", p, tc.field)
			}
		})
	}
}

func TestFinishingADeploy(t *testing.T) {
	h := newHarness(t)
	decodeAs[Deploy](t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: goodDeploy}), http.StatusCreated)

	t.Run("without finishedAt it finishes now and invalidates the gate", func(t *testing.T) {
		d := decodeAs[Deploy](t, h.do(t, call{method: "PATCH", path: "/v1/deploys/dep_001", token: tokCI, body: `{"status":"succeeded"}`}), http.StatusOK)
		if d.Status != slogate.StatusSucceeded || d.FinishedAt == nil || !d.FinishedAt.Equal(fixedTime) {
			t.Fatalf("deploy %+v", d)
		}
		if got := h.gate.invalidations(); len(got) != 2 || got[1] != "checkout/production" {
			t.Fatalf("invalidations %v", got)
		}
	})
	t.Run("finishing again with the same status answers the deploy", func(t *testing.T) {
		decodeAs[Deploy](t, h.do(t, call{method: "PATCH", path: "/v1/deploys/dep_001", token: tokCI, body: `{"status":"succeeded"}`}), http.StatusOK)
	})
	t.Run("finishing again with another status is a 409", func(t *testing.T) {
		problem(t, h.do(t, call{method: "PATCH", path: "/v1/deploys/dep_001", token: tokCI, body: `{"status":"rolledBack"}`}), http.StatusConflict)
	})
	t.Run("an unknown deploy is a 404", func(t *testing.T) {
		problem(t, h.do(t, call{method: "PATCH", path: "/v1/deploys/dep_404", token: tokCI, body: `{"status":"failed"}`}), http.StatusNotFound)
	})
	for name, tc := range map[string]struct{ body, field string }{
		"a missing status is a 400 naming status":                 {`{}`, "status"},
		"running is not a final status":                           {`{"status":"running"}`, "status"},
		"a finishedAt that is not a time is a 400 naming it":      {`{"status":"failed","finishedAt":"noon"}`, "finishedAt"},
		"a finishedAt in the future is a 400 naming it":           {`{"status":"failed","finishedAt":"2030-01-01T00:00:00Z"}`, "finishedAt"},
		"an unknown field in a finish request is a 400 naming it": {`{"status":"failed","reason":"x"}`, "reason"},
	} {
		t.Run(name, func(t *testing.T) {
			p := problem(t, h.do(t, call{method: "PATCH", path: "/v1/deploys/dep_001", token: tokCI, body: tc.body}), http.StatusBadRequest)
			if !p.names(tc.field) {
				t.Fatalf("problem %+v does not name %s", p, tc.field)
			}
		})
	}
}

// TestCreateDeployWithAChosenID: a sender that cannot read the answer
// (Argo CD notifications) names the deploy, then finishes it by that id.
func TestCreateDeployWithAChosenID(t *testing.T) {
	h := newHarness(t)
	const chosen = `{"id":"dep_argocd_argocd_checkout_9f2c1e4","service":"checkout","environment":"production","version":"9f2c1e4"}`
	const other = `{"id":"dep_argocd_argocd_cart_1","service":"cart","environment":"production","version":"1"}`
	steps := []struct {
		name   string
		c      call
		status int
		field  string
	}{
		{"a chosen id is stored as given", call{method: "POST", path: "/v1/deploys", token: tokCI, body: chosen, header: map[string]string{"Idempotency-Key": "k1"}}, http.StatusCreated, ""},
		{"the same key and body again replay the deploy", call{method: "POST", path: "/v1/deploys", token: tokCI, body: chosen, header: map[string]string{"Idempotency-Key": "k1"}}, http.StatusOK, ""},
		{"another key for the same id is a conflict", call{method: "POST", path: "/v1/deploys", token: tokCI, body: chosen, header: map[string]string{"Idempotency-Key": "k2"}}, http.StatusConflict, ""},
		{"a chosen id without a key is created once", call{method: "POST", path: "/v1/deploys", token: tokCI, body: other}, http.StatusCreated, ""},
		{"and the same body again replays it (the id is its key)", call{method: "POST", path: "/v1/deploys", token: tokCI, body: other}, http.StatusOK, ""},
		{"the id again with another body is refused", call{method: "POST", path: "/v1/deploys", token: tokCI, body: strings.Replace(other, `"version":"1"`, `"version":"2"`, 1)}, http.StatusUnprocessableEntity, ""},
		{"the deploy is finished by its chosen id", call{method: "PATCH", path: "/v1/deploys/dep_argocd_argocd_checkout_9f2c1e4", token: tokCI, body: `{"status":"failed"}`}, http.StatusOK, ""},
		{"an id without the dep_ prefix is refused", call{method: "POST", path: "/v1/deploys", token: tokCI, body: `{"id":"argo-1","service":"a","environment":"b","version":"c"}`}, http.StatusBadRequest, "id"},
		{"GitHub's prefix is refused", call{method: "POST", path: "/v1/deploys", token: tokCI, body: `{"id":"dep_gh_1","service":"a","environment":"b","version":"c"}`}, http.StatusBadRequest, "id"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := h.do(t, st.c)
			if r.status != st.status {
				t.Fatalf("%s %s: %d %s, want %d", st.c.method, st.c.path, r.status, r.body, st.status)
			}
			if st.field != "" && !strings.Contains(string(r.body), `"field":"`+st.field+`"`) {
				t.Fatalf("problem %s does not name the field %s", r.body, st.field)
			}
			if st.status == http.StatusCreated && !strings.HasPrefix(r.header.Get("Location"), "/v1/deploys/dep_argocd_argocd_") {
				t.Fatalf("Location %q", r.header.Get("Location"))
			}
		})
	}
}
