package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// TestAgainstTheSQLiteStore runs the deploy, override and decision routes
// against the real embedded store.
func TestAgainstTheSQLiteStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := &fakeGate{}
	now := time.Now().UTC()
	srv := httptest.NewServer(NewServer(Deps{
		Gate: g, Store: st, SLOs: &fakeSLOs{statuses: []slo.Status{exampleStatus()}}, Tokens: testTokens,
		Logger: slog.New(slog.DiscardHandler), Clock: func() time.Time { return now },
	}))
	t.Cleanup(srv.Close)
	h := &harness{url: srv.URL, gate: g}

	if r := h.do(t, call{method: "GET", path: "/readyz"}); r.status != http.StatusOK {
		t.Fatalf("readyz %d %s", r.status, r.body)
	}

	key := map[string]string{"Idempotency-Key": "run-1"}
	body := `{"service":"checkout","environment":"production","version":"v2","labels":{"team":"payments"}}`
	first := decodeAs[Deploy](t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: body, header: key}), http.StatusCreated)
	replay := h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: body, header: key})
	if again := decodeAs[Deploy](t, replay, http.StatusOK); again.ID != first.ID || replay.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay %+v %v", again, replay.header)
	}
	problem(t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI,
		body: `{"service":"checkout","environment":"production","version":"v3"}`, header: key}), http.StatusUnprocessableEntity)

	for i := range 3 {
		b := fmt.Sprintf(`{"service":"checkout","environment":"production","version":"v%d","startedAt":%q}`,
			10+i, now.Add(time.Duration(i-10)*time.Minute).Format(time.RFC3339))
		decodeAs[Deploy](t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: b}), http.StatusCreated)
	}
	var seen []string
	path := "/v1/deploys?service=checkout&limit=3"
	for path != "" {
		l := decodeAs[DeployList](t, h.do(t, call{method: "GET", path: path, token: tokRead}), http.StatusOK)
		for _, d := range l.Items {
			seen = append(seen, d.Version)
		}
		path = ""
		if l.NextCursor != "" {
			path = "/v1/deploys?service=checkout&limit=3&cursor=" + l.NextCursor
		}
	}
	if fmt.Sprint(seen) != "[v2 v12 v11 v10]" {
		t.Fatalf("deploys newest first: %v", seen)
	}
	p := problem(t, h.do(t, call{method: "GET", path: "/v1/deploys?cursor=garbage", token: tokRead}), http.StatusBadRequest)
	if !p.names("cursor") {
		t.Fatalf("problem %+v", p)
	}

	fin := decodeAs[Deploy](t, h.do(t, call{method: "PATCH", path: "/v1/deploys/" + first.ID, token: tokCI, body: `{"status":"failed"}`}), http.StatusOK)
	if fin.Status != "failed" || fin.FinishedAt == nil {
		t.Fatalf("finished %+v", fin)
	}
	problem(t, h.do(t, call{method: "PATCH", path: "/v1/deploys/" + first.ID, token: tokCI, body: `{"status":"succeeded"}`}), http.StatusConflict)
	problem(t, h.do(t, call{method: "GET", path: "/v1/deploys/dep_nothing", token: tokRead}), http.StatusNotFound)

	o := decodeAs[Override](t, h.do(t, call{method: "POST", path: "/v1/overrides", token: tokOncall,
		body: fmt.Sprintf(`{"service":"checkout","environment":"production","reason":"INC-7","expiresAt":%q}`, now.Add(time.Hour).Format(time.RFC3339))}), http.StatusCreated)
	if o.CreatedBy != "oncall" {
		t.Fatalf("override %+v", o)
	}
	if active, ok, err := st.ActiveOverride(ctx, "checkout", "production", now.Add(time.Minute)); err != nil || !ok || active.ID != o.ID {
		t.Fatalf("active override %+v %v %v", active, ok, err)
	}
	decodeAs[Override](t, h.do(t, call{method: "DELETE", path: "/v1/overrides/" + o.ID, token: tokOncall}), http.StatusOK)
	problem(t, h.do(t, call{method: "DELETE", path: "/v1/overrides/" + o.ID, token: tokOncall}), http.StatusConflict)
	problem(t, h.do(t, call{method: "DELETE", path: "/v1/overrides/ovr_nothing", token: tokOncall}), http.StatusNotFound)

	stored := []byte(`{"decision":"halt","reason":"a > b","evaluationId":"ev_sqlite"}`)
	if _, err := st.SaveDecision(ctx, slogate.DecisionRecord{EvaluationID: "ev_sqlite", Service: "checkout", Environment: "production",
		Decision: slogate.Halt, Reason: "a > b", Body: stored, EvaluatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if r := h.do(t, call{method: "GET", path: "/v1/decisions/ev_sqlite", token: tokRead}); !bytes.Equal(r.body, stored) {
		t.Fatalf("decision %d %s, want %s", r.status, r.body, stored)
	}
	problem(t, h.do(t, call{method: "GET", path: "/v1/decisions/ev_nothing", token: tokRead}), http.StatusNotFound)

	entries, _, err := st.ListAudit(ctx, store.AuditFilter{Actor: "ci"})
	if err != nil || len(entries) == 0 {
		t.Fatalf("audit of ci: %v %v", entries, err)
	}
}
