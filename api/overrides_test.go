package api

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestOverridesAreCreatedByTheTokenAndRevoked(t *testing.T) {
	h := newHarness(t)
	r := h.do(t, call{method: "POST", path: "/v1/overrides", token: tokOncall,
		body: `{"service":"checkout","environment":"production","reason":"INC-42: the SLI counts a dead region","expiresAt":"2026-11-21T16:15:00Z"}`})
	o := decodeAs[Override](t, r, http.StatusCreated)
	if o.ID == "" || o.CreatedBy != "oncall" || o.Reason != "INC-42: the SLI counts a dead region" ||
		!o.ExpiresAt.Equal(fixedTime.Add(4*time.Hour)) || !o.CreatedAt.Equal(fixedTime) || o.RevokedAt != nil {
		t.Fatalf("override %+v", o)
	}
	if r.header.Get("Location") != "/v1/overrides/"+o.ID {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
	if got := h.gate.invalidations(); !slices.Equal(got, []string{"checkout/production"}) {
		t.Fatalf("invalidations %v", got)
	}

	revoked := decodeAs[Override](t, h.do(t, call{method: "DELETE", path: "/v1/overrides/" + o.ID, token: tokAdmin}), http.StatusOK)
	if revoked.RevokedAt == nil || revoked.RevokedBy != "root" {
		t.Fatalf("revoked %+v", revoked)
	}
	if n := len(h.gate.invalidations()); n != 2 {
		t.Fatalf("%d invalidations, want 2", n)
	}
	problem(t, h.do(t, call{method: "DELETE", path: "/v1/overrides/" + o.ID, token: tokOncall}), http.StatusConflict)
	problem(t, h.do(t, call{method: "DELETE", path: "/v1/overrides/ovr_404", token: tokOncall}), http.StatusNotFound)
}

func TestBadOverridesAreRefusedNamingTheField(t *testing.T) {
	tests := map[string]struct{ body, field string }{
		"an override without a reason is refused": {
			`{"service":"checkout","environment":"production","expiresAt":"2026-11-21T13:00:00Z"}`, "reason"},
		"an override without expiresAt is refused": {
			`{"service":"checkout","environment":"production","reason":"r"}`, "expiresAt"},
		"an override expiring in the past is refused": {
			`{"service":"checkout","environment":"production","reason":"r","expiresAt":"2026-11-21T12:00:00Z"}`, "expiresAt"},
		"an override expiring now is refused": {
			`{"service":"checkout","environment":"production","reason":"r","expiresAt":"2026-11-21T12:15:00Z"}`, "expiresAt"},
		"an override expiring in more than 7 days is refused": {
			`{"service":"checkout","environment":"production","reason":"r","expiresAt":"2026-11-28T12:15:01Z"}`, "expiresAt"},
		"an expiresAt that is not RFC 3339 is refused": {
			`{"service":"checkout","environment":"production","reason":"r","expiresAt":"tomorrow"}`, "expiresAt"},
		"an override without a service is refused": {
			`{"environment":"production","reason":"r","expiresAt":"2026-11-21T13:00:00Z"}`, "service"},
		"an override may not name its creator": {
			`{"service":"checkout","environment":"production","reason":"r","expiresAt":"2026-11-21T13:00:00Z","createdBy":"ceo"}`, "createdBy"},
	}
	h := newHarness(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := problem(t, h.do(t, call{method: "POST", path: "/v1/overrides", token: tokOncall, body: tc.body}), http.StatusBadRequest)
			if !p.names(tc.field) {
				t.Fatalf("problem %+v does not name %s", p, tc.field)
			}
		})
	}
	t.Run("every problem of a request is reported at once", func(t *testing.T) {
		p := problem(t, h.do(t, call{method: "POST", path: "/v1/overrides", token: tokOncall, body: `{}`}), http.StatusBadRequest)
		for _, f := range []string{"service", "environment", "reason", "expiresAt"} {
			if !p.names(f) {
				t.Errorf("problem %+v does not name %s", p, f)
			}
		}
	})
	if len(h.store.overrides) != 0 {
		t.Fatal("a bad override was stored")
	}
}
