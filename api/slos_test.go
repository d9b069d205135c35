package api

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

func TestSLOsAreListedAndReadAtAnInstant(t *testing.T) {
	h := newHarness(t)
	l := decodeAs[SLOList](t, h.do(t, call{method: "GET", path: "/v1/slos", token: tokRead}), http.StatusOK)
	if len(l.Items) != 1 || l.Items[0].Name != "checkout-availability" {
		t.Fatalf("list %+v", l)
	}
	if !h.slos.lastAt().IsZero() {
		t.Fatal("without ?at= the latest figures are not asked for")
	}
	st := decodeAs[slo.Status](t, h.do(t, call{method: "GET", path: "/v1/slos/checkout-availability?at=2026-11-20T10:00:00%2B01:00", token: tokRead}), http.StatusOK)
	if st.ErrorBudget.Remaining == nil || *st.ErrorBudget.Remaining != 0.5 || st.BurnRates["3d"] != nil {
		t.Fatalf("status %+v", st)
	}
	if want := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC); !h.slos.lastAt().Equal(want) {
		t.Fatalf("asked at %v, want %v", h.slos.lastAt(), want)
	}
	problem(t, h.do(t, call{method: "GET", path: "/v1/slos/nothing", token: tokRead}), http.StatusNotFound)
	for _, path := range []string{"/v1/slos?at=now", "/v1/slos/checkout-availability?at=1700000000"} {
		p := problem(t, h.do(t, call{method: "GET", path: path, token: tokRead}), http.StatusBadRequest)
		if !p.names("at") {
			t.Fatalf("%s: problem %+v does not name at", path, p)
		}
	}
}

func TestNoSLOsIsAnEmptyList(t *testing.T) {
	h := newHarness(t)
	h.slos.statuses = nil
	r := h.do(t, call{method: "GET", path: "/v1/slos", token: tokRead})
	if r.status != http.StatusOK || string(r.body) != "{\"items\":[]}\n" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// The name of an SLO grouped by a label holds the label's value, slashes
// included: sent escaped, it reaches the handler whole.
func TestAGroupedSLOIsFoundByItsEscapedName(t *testing.T) {
	st := exampleStatus()
	st.Name = `api-routes{route="/checkout/pay"}`
	h := newHarness(t, func(d *Deps) { d.SLOs = &fakeSLOs{statuses: []slo.Status{st}} })
	r := h.do(t, call{method: "GET", path: "/v1/slos/" + url.PathEscape(st.Name), token: tokRead})
	got := decodeAs[slo.Status](t, r, http.StatusOK)
	if got.Name != st.Name {
		t.Fatalf("got %q, want %q", got.Name, st.Name)
	}
}

// A follower's figures are the leader's: the answer says so, with their
// age, and the UI says it too, louder when they are stale.
func TestTheOriginOfTheFiguresIsAnsweredAndShown(t *testing.T) {
	measured := time.Date(2026, 11, 21, 12, 14, 0, 0, time.UTC)
	withOrigin := func(o slo.Origin) *fakeSLOs {
		st := exampleStatus()
		st.Origin = &o
		return &fakeSLOs{statuses: []slo.Status{st}}
	}
	tests := map[string]struct {
		origin   slo.Origin
		banner   []string
		noBanner bool
	}{
		"a follower's fresh figures name the leader replica and their age": {
			origin: slo.Origin{From: slo.OriginLeader, Replica: "slogate-0/41", MeasuredAt: measured, AgeSeconds: 42, StaleAfterSeconds: 180},
			banner: []string{"leader replica slogate-0/41", "42s ago"}},
		"stale figures are said to be stale": {
			origin: slo.Origin{From: slo.OriginLeader, Replica: "slogate-0/41", MeasuredAt: measured, AgeSeconds: 400, Stale: true, StaleAfterSeconds: 180},
			banner: []string{"Stale figures", "400s ago", "do not take them as current"}},
		"a leader's own fresh figures need no banner": {
			origin:   slo.Origin{From: slo.OriginMeasured, Replica: "slogate-1/7", MeasuredAt: measured, AgeSeconds: 3, StaleAfterSeconds: 180},
			noBanner: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, func(d *Deps) { d.Tokens = nil; d.SLOs = withOrigin(tc.origin) })
			st := decodeAs[slo.Status](t, h.do(t, call{method: "GET", path: "/v1/slos/checkout-availability"}), http.StatusOK)
			if st.Origin == nil || *st.Origin != tc.origin {
				t.Fatalf("origin %+v, want %+v", st.Origin, tc.origin)
			}
			u := &uiClient{h: h}
			for _, path := range []string{"/", "/ui/slos/checkout-availability"} {
				resp := u.send(t, "GET", path, nil, nil)
				var b bytes.Buffer
				_, _ = b.ReadFrom(resp.Body)
				html := b.String()
				if tc.noBanner {
					if strings.Contains(html, `id="origin"`) {
						t.Errorf("%s: a banner on a leader's fresh figures", path)
					}
					continue
				}
				for _, want := range tc.banner {
					if !strings.Contains(html, want) {
						t.Errorf("%s: the page does not say %q", path, want)
					}
				}
			}
		})
	}
}
