package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/slo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const routingKey = "R0UT1NGK3Y0000000000000000000042"

func fptr(f float64) *float64 { return &f }

var startedFiring = time.Date(2026, 11, 21, 12, 1, 0, 0, time.UTC)

// pageEvent is a page alert of checkout-availability: firing (a trigger)
// or resolved.
func pageEvent(firing bool) alerting.Event {
	return alerting.Event{
		Kind: alerting.KindAlert,
		At:   startedFiring.Add(2 * time.Minute),
		Alert: &alerting.Alert{
			Service:     "checkout",
			SLO:         "checkout-availability",
			DisplayName: "Checkout availability",
			Name:        "CheckoutHighErrorRate",
			Severity:    slo.SeverityPage,
			Firing:      firing,
			Transition:  true,
			StartsAt:    startedFiring,
			EndsAt:      startedFiring.Add(4 * time.Minute),
			Target:      0.999,
			Window:      "30d",
			Tiers: []slo.AlertState{
				{Severity: slo.SeverityPage, LongWindow: "1h", ShortWindow: "5m", Factor: 14.4, Firing: firing},
				{Severity: slo.SeverityPage, LongWindow: "6h", ShortWindow: "30m", Factor: 6, Firing: false},
			},
			BurnRates: map[string]*float64{
				"5m": fptr(21.5), "30m": fptr(17.25), "1h": fptr(15.5), "2h": fptr(9.75),
				"6h": fptr(4.5), "1d": fptr(1.25), "3d": nil,
			},
			BudgetRemaining: fptr(0.41),
			Labels:          map[string]string{"team": "payments"},
			Annotations:     map[string]string{"runbook": "https://runbooks.example.com/checkout"},
			Description:     "Checkout answers 5xx to more than 2% of requests.",
		},
		Links: []alerting.Link{
			{Href: "https://grafana.example.com/d/slo-checkout", Text: "SLO dashboard"},
			{Href: "https://slogate.example.com/v1/slos/checkout-availability", Text: "slogate"},
		},
	}
}

// fakePagerDuty is PagerDuty's Events API v2 (POST /v2/enqueue) with its
// documented answers. It keeps one alert per dedup_key, open or resolved.
type fakePagerDuty struct {
	t *testing.T

	mu sync.Mutex
	// fail answers the next requests with these statuses (429, 500...)
	// before answering normally.
	fail []int
	// delay holds every answer this long.
	delay    time.Duration
	bodies   [][]byte
	created  int
	resolved int
	open     map[string]bool
}

func newFake(t *testing.T) (*fakePagerDuty, *httptest.Server) {
	f := &fakePagerDuty{t: t, open: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakePagerDuty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	var status int
	if len(f.fail) > 0 {
		status, f.fail = f.fail[0], f.fail[1:]
	}
	delay := f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"status":"not found","message":"Not Found"}`)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		f.t.Errorf("the Events API takes no Authorization header, got %q", auth)
	}
	switch status {
	case http.StatusTooManyRequests:
		w.WriteHeader(status)
		return
	case http.StatusInternalServerError:
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"status":"error","message":"Internal Server Error"}`)
		return
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		// A proxy in front of PagerDuty, or a wrong URL.
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"status":"refused","message":"`+http.StatusText(status)+`"}`)
		return
	}
	var ev struct {
		RoutingKey string `json:"routing_key"`
		Action     string `json:"event_action"`
		DedupKey   string `json:"dedup_key"`
		Payload    *struct {
			Summary  string `json:"summary"`
			Source   string `json:"source"`
			Severity string `json:"severity"`
		} `json:"payload"`
	}
	var problems []string
	if err := json.Unmarshal(body, &ev); err != nil {
		problems = append(problems, "Event object is not valid JSON")
	}
	if len(ev.RoutingKey) != 32 {
		problems = append(problems, "'routing_key' is invalid")
	}
	if ev.Action == "trigger" && (ev.Payload == nil || ev.Payload.Summary == "" || ev.Payload.Source == "") {
		problems = append(problems, "'payload' is missing or incomplete")
	}
	if ev.Action != "trigger" && ev.DedupKey == "" {
		problems = append(problems, "'dedup_key' is required for "+ev.Action)
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status": "invalid event", "message": "Event object is invalid", "errors": problems,
		})
		return
	}
	f.mu.Lock()
	switch ev.Action {
	case "trigger":
		if !f.open[ev.DedupKey] {
			f.open[ev.DedupKey] = true
			f.created++
		}
	case "resolve":
		if f.open[ev.DedupKey] {
			f.open[ev.DedupKey] = false
			f.resolved++
		}
	}
	f.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey,
	})
}

func (f *fakePagerDuty) lastBody() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) == 0 {
		return nil
	}
	return f.bodies[len(f.bodies)-1]
}

// golden compares a request body with testdata/name, indented.
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

func newNotifier(t *testing.T, cfg Config, logs io.Writer) *Notifier {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	n, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNew(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"a routing key alone is enough": {cfg: Config{RoutingKey: routingKey}},
		"an empty config names every problem at once": {
			cfg:     Config{URL: "ftp://events.example.com", Timeout: -time.Second},
			wantErr: "pagerduty: routingKey: required\npagerduty: url: scheme must be http or https, got \"ftp\"\npagerduty: timeout: must not be negative, got -1s",
		},
		"a URL with credentials is refused": {
			cfg:     Config{RoutingKey: routingKey, URL: "https://user:secret@events.example.com"},
			wantErr: "pagerduty: url: must not hold credentials (use the token or key setting)",
		},
		"a URL without a host is refused": {
			cfg:     Config{RoutingKey: routingKey, URL: "https:///v2/enqueue"},
			wantErr: "pagerduty: url: host missing",
		},
		"a routing key with white space is refused without being echoed": {
			cfg:     Config{RoutingKey: "abc def"},
			wantErr: "pagerduty: routingKey: must not contain white space",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("New() error = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := map[string]struct {
		url  string
		want string
	}{
		"the default endpoint is PagerDuty's":   {want: `pagerduty(https://events.pagerduty.com/v2/enqueue, source "slogate")`},
		"a host override gets the enqueue path": {url: "https://events.eu.pagerduty.com/", want: `pagerduty(https://events.eu.pagerduty.com/v2/enqueue, source "slogate")`},
		"a full enqueue URL is taken as it is":  {url: "https://events.eu.pagerduty.com/v2/enqueue", want: `pagerduty(https://events.eu.pagerduty.com/v2/enqueue, source "slogate")`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			n := newNotifier(t, Config{RoutingKey: routingKey, URL: tt.url}, nil)
			if got := n.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if strings.Contains(n.String(), routingKey) {
				t.Errorf("String() shows the routing key")
			}
		})
	}
}

func TestKey(t *testing.T) {
	resend := pageEvent(true)
	resend.Alert.Transition = false
	ticket := pageEvent(true)
	ticket.Alert.Severity = slo.SeverityTicket
	noStart := pageEvent(true)
	noStart.Alert.StartsAt = time.Time{}
	tests := map[string]struct {
		e    alerting.Event
		want string
	}{
		"a page that fires is a trigger":                       {e: pageEvent(true), want: "alert/checkout-availability/page/1795262460/trigger"},
		"a page that resolves is a resolve":                    {e: pageEvent(false), want: "alert/checkout-availability/page/1795262460/resolve"},
		"a re-send of a firing page is not taken":              {e: resend},
		"a ticket alert is not taken":                          {e: ticket},
		"a deploy is not taken":                                {e: alerting.Event{Kind: alerting.KindDeployStarted, Deploy: &slogate.Deploy{ID: "dep_1"}}},
		"an alert event without its alert is not taken":        {e: alerting.Event{Kind: alerting.KindAlert}},
		"a page without a start is keyed by the event instant": {e: noStart, want: "alert/checkout-availability/page/1795262580/trigger"},
	}
	n := newNotifier(t, Config{RoutingKey: routingKey}, nil)
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := n.Key(tt.e); got != tt.want {
				t.Errorf("Key() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDedupKey(t *testing.T) {
	long := strings.Repeat("s", 300)
	tests := map[string]struct {
		service, slo string
		want         string
	}{
		"a short key names the service and the SLO": {service: "checkout", slo: "checkout-availability", want: "slogate/checkout/checkout-availability/page"},
		"a key past 255 characters is hashed":       {service: "checkout", slo: long, want: "slogate/sha256:"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := DedupKey(tt.service, tt.slo)
			if !strings.HasPrefix(got, tt.want) || len(got) > 255 {
				t.Errorf("DedupKey() = %q (%d chars), want prefix %q and at most 255 chars", got, len(got), tt.want)
			}
			if got != DedupKey(tt.service, tt.slo) {
				t.Errorf("DedupKey() is not stable")
			}
		})
	}
}

func TestNotify(t *testing.T) {
	tests := map[string]struct {
		e         alerting.Event
		fail      []int
		delay     time.Duration
		golden    string
		wantRetry bool
		wantErr   string
	}{
		"a page that fires triggers with its figures": {
			e: pageEvent(true), golden: "trigger.json",
		},
		"a page that resolves resolves by the dedup key": {
			e: pageEvent(false), golden: "resolve.json",
		},
		"a rate-limited event is retried": {
			e: pageEvent(true), fail: []int{429}, wantRetry: true,
			wantErr: "pagerduty: trigger slogate/checkout/checkout-availability/page: HTTP 429",
		},
		"a server error is retried": {
			e: pageEvent(true), fail: []int{500}, wantRetry: true,
			wantErr: "pagerduty: trigger slogate/checkout/checkout-availability/page: HTTP 500 error: Internal Server Error",
		},
		"an answer that does not come in time is retried": {
			e: pageEvent(true), delay: time.Second, wantRetry: true,
			wantErr: "pagerduty: trigger slogate/checkout/checkout-availability/page: pagerduty enqueue trigger timed out after 100ms",
		},
		"a re-send of a firing page is refused for good": {
			e:       func() alerting.Event { e := pageEvent(true); e.Alert.Transition = false; return e }(),
			wantErr: "pagerduty: event alert checkout/checkout-availability severity page transition false is not a page alert transition",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFake(t)
			fake.fail, fake.delay = tt.fail, tt.delay
			n := newNotifier(t, Config{RoutingKey: routingKey, URL: srv.URL, Timeout: 100 * time.Millisecond}, nil)
			retry, err := n.Notify(context.Background(), tt.e)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr || retry != tt.wantRetry {
				t.Errorf("Notify() = %t, %q; want %t, %q", retry, got, tt.wantRetry, tt.wantErr)
			}
			if strings.Contains(got, routingKey) {
				t.Errorf("the error shows the routing key")
			}
			if tt.golden != "" {
				golden(t, tt.golden, fake.lastBody())
			}
		})
	}
}

func TestNotifyRejected(t *testing.T) {
	fake, srv := newFake(t)
	var logs bytes.Buffer
	// A routing key PagerDuty does not know: the fake refuses it.
	key := "short-key"
	n := newNotifier(t, Config{RoutingKey: key, URL: srv.URL + "/v2/enqueue"}, &logs)
	retry, err := n.Notify(context.Background(), pageEvent(true))
	want := "pagerduty: trigger slogate/checkout/checkout-availability/page rejected: HTTP 400 invalid event: Event object is invalid: 'routing_key' is invalid"
	if retry || err == nil || err.Error() != want {
		t.Fatalf("Notify() = %t, %v; want false, %q", retry, err, want)
	}
	if strings.Contains(logs.String(), key) {
		t.Errorf("the log shows the routing key:\n%s", logs.String())
	}
	if fake.created != 0 {
		t.Errorf("a rejected event opened %d alerts", fake.created)
	}
}

func TestNotifyCallerDeadline(t *testing.T) {
	_, srv := newFake(t)
	n := newNotifier(t, Config{RoutingKey: routingKey, URL: srv.URL}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	retry, err := n.Notify(ctx, pageEvent(true))
	if !retry || !errors.Is(err, context.Canceled) {
		t.Errorf("Notify() with a cancelled context = %t, %v; want true and context.Canceled", retry, err)
	}
}

// TestPeerDownThenBack: PagerDuty answers 500 twice, then comes back; the
// outbox retries as told and a single alert opens, which the resolve
// closes.
func TestPeerDownThenBack(t *testing.T) {
	fake, srv := newFake(t)
	fake.fail = []int{500, 500}
	n := newNotifier(t, Config{RoutingKey: routingKey, URL: srv.URL}, nil)
	ctx := context.Background()
	var retries int
	for {
		retry, err := n.Notify(ctx, pageEvent(true))
		if err == nil {
			break
		}
		if !retry {
			t.Fatalf("Notify() while PagerDuty is down = final error %v, want a retry", err)
		}
		if retries++; retries > 5 {
			t.Fatalf("Notify() still failing after %d retries: %v", retries, err)
		}
	}
	// A duplicate trigger (the outbox re-sending after a lost answer)
	// lands on the same dedup_key.
	if _, err := n.Notify(ctx, pageEvent(true)); err != nil {
		t.Fatal(err)
	}
	if retry, err := n.Notify(ctx, pageEvent(false)); err != nil {
		t.Fatalf("resolve: %t, %v", retry, err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if retries != 2 || fake.created != 1 || fake.resolved != 1 || len(fake.bodies) != 5 {
		t.Errorf("retries %d, alerts opened %d, resolved %d, requests %d; want 2, 1, 1, 5",
			retries, fake.created, fake.resolved, len(fake.bodies))
	}
}

// TestMisconfigurationIsRetried: a proxy or a wrong URL answers 401, 403
// or 404; the page is retried as an alerting.ConfigError, not dropped.
func TestMisconfigurationIsRetried(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound} {
		t.Run(http.StatusText(status)+" is retried as a configuration error", func(t *testing.T) {
			fake, srv := newFake(t)
			fake.fail = []int{status}
			n := newNotifier(t, Config{RoutingKey: routingKey, URL: srv.URL}, nil)
			retry, err := n.Notify(context.Background(), pageEvent(true))
			var ce *alerting.ConfigError
			if !retry || !errors.As(err, &ce) || ce.Status != status {
				t.Fatalf("Notify() = %v, %v; want a retry with a ConfigError of %d", retry, err, status)
			}
			if _, err := n.Notify(context.Background(), pageEvent(true)); err != nil {
				t.Fatalf("the retry: %v", err)
			}
		})
	}
}
