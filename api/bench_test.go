package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/slogate/slogate/gate"
)

// BenchmarkGateCached measures a gate answer through the whole gin stack
// (request id, metrics, access log, errors, auth) with a gate that answers
// at once, as a cached answer does.
func BenchmarkGateCached(b *testing.B) {
	a := fixedAnswer()
	h := NewServer(Deps{
		Gate:  &fakeGate{answer: func(gate.Request) (gate.Answer, error) { return a, nil }},
		Store: newFakeStore(), SLOs: &fakeSLOs{}, Tokens: testTokens,
	})
	req := httptest.NewRequest(http.MethodGet, "/v1/gate?service=checkout&environment=production&version=v2", nil)
	req.Header.Set("Authorization", "Bearer "+tokRead)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkBareNetHTTPJSON is the floor: a bare net/http handler encoding
// the same answer.
func BenchmarkBareNetHTTPJSON(b *testing.B) {
	a := fixedAnswer()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(a); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(buf.Bytes())
	})
	req := httptest.NewRequest(http.MethodGet, "/v1/gate?service=checkout&environment=production&version=v2", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
