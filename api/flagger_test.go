package api

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slogate/slogate/gate"
)

func flaggerPayloadFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "flagger", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFlaggerHooksGoOnlyOnPromoteAndRollBackOnlyOnHalt(t *testing.T) {
	hooks := []string{"confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase", "confirm-promotion", "rollback"}
	for _, hook := range hooks {
		for _, d := range []gate.Decision{gate.Promote, gate.Halt, gate.Wait} {
			goes := d == gate.Promote
			if hook == "rollback" {
				goes = d == gate.Halt
			}
			want := http.StatusForbidden
			if goes {
				want = http.StatusOK
			}
			t.Run(fmt.Sprintf("%s answers %d to %s", hook, want, d), func(t *testing.T) {
				h := newHarness(t)
				h.gate.answer = decided(d, "checkout-availability: burns 6.3x\n(max 2x)")
				r := h.do(t, call{method: "POST", path: "/v1/flagger/" + hook, token: tokRead,
					body: flaggerPayloadFile(t, "confirm-promotion.json")})
				if r.status != want {
					t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
				}
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Fatalf("Content-Type %q", ct)
				}
				body := string(r.body)
				if !strings.Contains(body, "checkout-availability: burns 6.3x (max 2x)") || !strings.Contains(body, string(d)) {
					t.Fatalf("body %q does not give the reason on one line", body)
				}
				if r.header.Get("X-Slogate-Decision") != string(d) {
					t.Fatalf("X-Slogate-Decision %q", r.header.Get("X-Slogate-Decision"))
				}
			})
		}
	}
}

func TestFlaggerPayloadsNameTheServiceByMetadataOrCanary(t *testing.T) {
	tests := map[string]struct {
		file string
		want gate.Request
	}{
		"metadata names service, environment and version": {"confirm-promotion.json",
			gate.Request{Service: "checkout", Environment: "production", Version: "v2"}},
		"without metadata the canary's name and namespace are used": {"rollback.json",
			gate.Request{Service: "checkout", Environment: "production"}},
		"metadata Flagger users add for other tools is ignored": {"pre-rollout.json",
			gate.Request{Service: "checkout", Environment: "staging", Version: "v2"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			r := h.do(t, call{method: "POST", path: "/v1/flagger/confirm-rollout", token: tokRead, body: flaggerPayloadFile(t, tc.file)})
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if got := h.gate.lastAsked(); got != tc.want {
				t.Fatalf("asked %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBadFlaggerCallsAreRefused(t *testing.T) {
	h := newHarness(t)
	t.Run("an unknown hook is a 404", func(t *testing.T) {
		problem(t, h.do(t, call{method: "POST", path: "/v1/flagger/post-rollout", token: tokRead,
			body: flaggerPayloadFile(t, "rollback.json")}), http.StatusNotFound)
	})
	t.Run("a payload without a name is a 400 naming name", func(t *testing.T) {
		p := problem(t, h.do(t, call{method: "POST", path: "/v1/flagger/rollout", token: tokRead,
			body: `{"namespace":"production","phase":"Progressing"}`}), http.StatusBadRequest)
		if !p.names("name") {
			t.Fatalf("problem %+v", p)
		}
	})
	t.Run("a field Flagger may add later is accepted", func(t *testing.T) {
		r := h.do(t, call{method: "POST", path: "/v1/flagger/rollout", token: tokRead,
			body: `{"name":"checkout","namespace":"production","phase":"Progressing","canaryWeight":10}`})
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("a gate fault is a 500, so rollback does not roll back", func(t *testing.T) {
		h := newHarness(t)
		h.gate.answer = failing(fmt.Errorf("source down"))
		problem(t, h.do(t, call{method: "POST", path: "/v1/flagger/rollback", token: tokRead,
			body: flaggerPayloadFile(t, "rollback.json")}), http.StatusInternalServerError)
	})
}
