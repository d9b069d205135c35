package api

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestGateAsksAreLimitedPerToken(t *testing.T) {
	var mu sync.Mutex
	clock := fixedTime
	h := newHarness(t, func(d *Deps) {
		d.AskRate, d.AskBurst = 1, 3
		d.Clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	})
	ask := func(tok string) reply {
		return h.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production", token: tok})
	}
	for i := range 3 {
		if r := ask(tokRead); r.status != http.StatusOK {
			t.Fatalf("ask %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	r := ask(tokRead)
	p := problem(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") != "1" || p.Type != typeRateLimited {
		t.Errorf("over the burst: Retry-After %q, problem %+v", r.header.Get("Retry-After"), p)
	}
	if r := ask(tokAdmin); r.status != http.StatusOK {
		t.Errorf("another token was limited by the first one's asks: %d", r.status)
	}
	mu.Lock()
	clock = clock.Add(time.Second)
	mu.Unlock()
	if r := ask(tokRead); r.status != http.StatusOK {
		t.Errorf("after a second's refill: %d %s", r.status, r.body)
	}
	if r := ask(tokRead); r.status != http.StatusTooManyRequests {
		t.Errorf("a second ask after one second's refill: %d, want 429", r.status)
	}
}

func TestGateAsksAreNotLimitedWhenTheLimitIsOff(t *testing.T) {
	h := newHarness(t, func(d *Deps) { d.AskRate = -1 })
	for i := range 3 * DefaultAskBurst {
		if r := h.do(t, call{method: "GET", path: "/v1/gate?service=checkout&environment=production", token: tokRead}); r.status != http.StatusOK {
			t.Fatalf("ask %d: %d", i, r.status)
		}
	}
}

func TestAnIdempotencyKeyBelongsToTheTokenThatSentIt(t *testing.T) {
	// Keys were shared across tokens: another token's deploy with the same
	// key was answered as a replay of the first (or a 422).
	h := newHarness(t)
	key := map[string]string{"Idempotency-Key": "pipeline-1234-deploy"}
	first := decodeAs[Deploy](t, h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: goodDeploy, header: key}), http.StatusCreated)
	other := h.do(t, call{method: "POST", path: "/v1/deploys", token: tokAdmin, body: goodDeploy, header: key})
	second := decodeAs[Deploy](t, other, http.StatusCreated)
	if first.ID == second.ID || other.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("another token's deploy with the same key replayed %s", first.ID)
	}
	again := h.do(t, call{method: "POST", path: "/v1/deploys", token: tokCI, body: goodDeploy, header: key})
	if d := decodeAs[Deploy](t, again, http.StatusOK); d.ID != first.ID {
		t.Fatalf("the first token's retry answered %s, want %s", d.ID, first.ID)
	}
}
