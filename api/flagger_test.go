package api

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/slogate/slogate"
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
		for _, d := range []slogate.Decision{slogate.Promote, slogate.Halt, slogate.Wait} {
			goes := d == slogate.Promote
			switch hook {
			case "rollback":
				goes = d == slogate.Halt
			case "rollout":
				// A refusal of rollout counts a failed check: only a halt
				// may use up Flagger's threshold.
				goes = d != slogate.Halt
			}
			want := http.StatusForbidden
			if goes {
				want = http.StatusOK
			}
			t.Run(fmt.Sprintf("%s answers %d to %s", hook, want, d), func(t *testing.T) {
				h := newHarness(t)
				h.gate.answer = decided(d, "checkout-availability: burns 6.3x\n(max 2x)")
				r := h.do(t, call{method: "POST", path: "/v1/flagger/" + hook, token: tokFlag,
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
			gate.Request{Service: "checkout", Environment: "production", Version: "v2", Checks: []string{"budget"}}},
		"without metadata the canary's name and namespace are used": {"rollback.json",
			gate.Request{Service: "checkout", Environment: "production", Checks: []string{"budget"}}},
		"metadata Flagger users add for other tools is ignored": {"pre-rollout.json",
			gate.Request{Service: "checkout", Environment: "staging", Version: "v2", Checks: []string{"budget"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			r := h.do(t, call{method: "POST", path: "/v1/flagger/confirm-rollout", token: tokFlag, body: flaggerPayloadFile(t, tc.file)})
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if got := h.gate.lastAsked(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("asked %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBadFlaggerCallsAreRefused(t *testing.T) {
	h := newHarness(t)
	t.Run("an unknown hook is a 404", func(t *testing.T) {
		problem(t, h.do(t, call{method: "POST", path: "/v1/flagger/confirm-everything", token: tokFlag,
			body: flaggerPayloadFile(t, "rollback.json")}), http.StatusNotFound)
	})
	t.Run("a payload without a name is a 400 naming name", func(t *testing.T) {
		p := problem(t, h.do(t, call{method: "POST", path: "/v1/flagger/rollout", token: tokFlag,
			body: `{"namespace":"production","phase":"Progressing"}`}), http.StatusBadRequest)
		if !p.names("name") {
			t.Fatalf("problem %+v", p)
		}
	})
	t.Run("a field Flagger may add later is accepted", func(t *testing.T) {
		r := h.do(t, call{method: "POST", path: "/v1/flagger/rollout", token: tokFlag,
			body: `{"name":"checkout","namespace":"production","phase":"Progressing","canaryWeight":10}`})
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("a gate fault is a 500, so rollback does not roll back", func(t *testing.T) {
		h := newHarness(t)
		h.gate.answer = failing(fmt.Errorf("source down"))
		problem(t, h.do(t, call{method: "POST", path: "/v1/flagger/rollback", token: tokFlag,
			body: flaggerPayloadFile(t, "rollback.json")}), http.StatusInternalServerError)
	})
	t.Run("a source fault is a 503, so rollback does not roll back a good canary", func(t *testing.T) {
		h := newHarness(t)
		h.gate.answer = failing(&gate.SourceFaultError{Answer: gate.Answer{Decision: slogate.Fault, Reason: "prometheus: connection refused"}})
		for _, hook := range []string{"rollback", "rollout", "confirm-promotion", "confirm-rollout"} {
			p := problem(t, h.do(t, call{method: "POST", path: "/v1/flagger/" + hook, token: tokFlag,
				body: flaggerPayloadFile(t, "confirm-promotion.json")}), http.StatusServiceUnavailable)
			if !strings.Contains(p.Detail, "connection refused") {
				t.Fatalf("%s: detail %q", hook, p.Detail)
			}
		}
	})
}

func TestFlaggerHooksAskForTheChecksOfTheirMoment(t *testing.T) {
	tests := map[string]struct {
		checks  []string
		records bool
	}{
		"confirm-rollout":          {checks: []string{gate.KindBudget}},
		"pre-rollout":              {checks: []string{gate.KindBudget}, records: true},
		"rollout":                  {checks: []string{gate.KindVerification, gate.KindCanary}, records: true},
		"confirm-traffic-increase": {checks: []string{gate.KindVerification, gate.KindCanary}, records: true},
		"confirm-promotion":        {checks: []string{gate.KindVerification, gate.KindCanary}, records: true},
		"rollback":                 {checks: []string{gate.KindVerification, gate.KindCanary}, records: true},
	}
	for hook, tc := range tests {
		t.Run(hook+" asks for "+strings.Join(tc.checks, " and "), func(t *testing.T) {
			h := newHarness(t)
			r := h.do(t, call{method: "POST", path: "/v1/flagger/" + hook, token: tokFlag,
				body: flaggerPayloadFile(t, "confirm-promotion.json")})
			if r.status >= 500 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			got := h.gate.lastAsked()
			if !reflect.DeepEqual(got.Checks, tc.checks) {
				t.Fatalf("asked for %v, want %v", got.Checks, tc.checks)
			}
			if recorded := got.DeployID != ""; recorded != tc.records {
				t.Fatalf("deploy recorded: %v, want %v (asked %+v)", recorded, tc.records, got)
			}
		})
	}
}

func TestAFlaggerRolloutIsRecordedOnceAndFinishedByPostRollout(t *testing.T) {
	h := newHarness(t)
	payload := `{"name":"checkout","namespace":"production","phase":"Progressing","checksum":"6d5c8f","metadata":{"version":"v2"}}`
	var ids []string
	for _, hook := range []string{"pre-rollout", "rollout", "rollout", "confirm-promotion"} {
		r := h.do(t, call{method: "POST", path: "/v1/flagger/" + hook, token: tokFlag, body: payload})
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", hook, r.status, r.body)
		}
		ids = append(ids, h.gate.lastAsked().DeployID)
	}
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("the hooks asked about deploys %v, want one deploy", ids)
		}
	}
	deploys := decodeAs[DeployList](t, h.do(t, call{method: "GET", path: "/v1/deploys?service=checkout", token: tokRead}), http.StatusOK)
	if len(deploys.Items) != 1 || deploys.Items[0].Version != "v2" || deploys.Items[0].Strategy != "canary" || deploys.Items[0].CreatedBy != "flagger" {
		t.Fatalf("deploys %+v, want one canary deploy of v2 by flagger", deploys.Items)
	}
	tests := map[string]struct {
		phase  string
		status int
		want   string
	}{
		"a phase other than Succeeded or Failed is a 400 naming phase": {phase: "Progressing", status: http.StatusBadRequest},
		"Failed finishes the deploy as rolled back":                    {phase: "Failed", status: http.StatusOK, want: "rolledBack"},
		"Succeeded after Failed is a conflict":                         {phase: "Succeeded", status: http.StatusConflict},
	}
	for _, name := range []string{"a phase other than Succeeded or Failed is a 400 naming phase", "Failed finishes the deploy as rolled back", "Succeeded after Failed is a conflict"} {
		tc := tests[name]
		t.Run(name, func(t *testing.T) {
			body := strings.Replace(payload, "Progressing", tc.phase, 1)
			r := h.do(t, call{method: "POST", path: "/v1/flagger/post-rollout", token: tokFlag, body: body})
			if r.status != tc.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, tc.status)
			}
			if tc.want == "" {
				return
			}
			d := decodeAs[Deploy](t, h.do(t, call{method: "GET", path: "/v1/deploys/" + ids[0], token: tokRead}), http.StatusOK)
			if d.Status != tc.want || d.FinishedAt == nil {
				t.Fatalf("deploy %+v, want status %s", d, tc.want)
			}
		})
	}
}
