package alertmanager_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/alerting/alertmanager"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

func ptr(v float64) *float64 { return &v }

// alertEvent is an alert of SLO name as the Tracker makes it.
func alertEvent(name string, firing, transition bool, at, startsAt, endsAt time.Time) alerting.Event {
	return alerting.Event{Kind: alerting.KindAlert, At: at, Alert: &alerting.Alert{
		Service: "checkout", SLO: name, Severity: slo.SeverityPage,
		Firing: firing, Transition: transition, StartsAt: startsAt, EndsAt: endsAt,
		Target: 0.999, Window: "30d",
		Tiers:           []slo.AlertState{{Severity: slo.SeverityPage, LongWindow: "1h", ShortWindow: "5m", Factor: 14.4, Firing: firing}},
		BurnRates:       map[string]*float64{"5m": ptr(20), "1h": ptr(15.5), "1d": nil},
		BudgetRemaining: ptr(0.41),
		Labels:          map[string]string{"team": "payments"},
		Annotations:     map[string]string{"runbook_url": "https://runbooks.example/checkout"},
		Summary:         "checkout-availability burns its error budget at 15.50× over 1h",
		Description:     "SLO checkout-availability ...",
	}}
}

// webhook is Alertmanager's webhook receiver: it keeps every notification.
type webhook struct {
	mu   sync.Mutex
	msgs []webhookMessage
}

type webhookMessage struct {
	Status string `json:"status"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var m webhookMessage
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.msgs = append(w.msgs, m)
	w.mu.Unlock()
}

// waitFor waits until a notification of status about SLO sloName arrived.
func (w *webhook) waitFor(t *testing.T, status, sloName string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for _, m := range w.msgs {
			for _, a := range m.Alerts {
				if m.Status == status && a.Status == status && a.Labels["slo"] == sloName {
					w.mu.Unlock()
					return
				}
			}
		}
		w.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Fatalf("no %s notification for %s within %s; got %+v", status, sloName, timeout, w.msgs)
}

type gettableAlert struct {
	Labels    map[string]string       `json:"labels"`
	EndsAt    time.Time               `json:"endsAt"`
	Status    struct{ State string }  `json:"status"`
	Receivers []struct{ Name string } `json:"receivers"`
}

// active returns the alerts of SLO sloName Alertmanager holds as active.
func active(t *testing.T, amURL, sloName string) []gettableAlert {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q := url.Values{"filter": {`slo="` + sloName + `"`}, "active": {"true"}, "silenced": {"false"}, "inhibited": {"false"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, amURL+"/api/v2/alerts?"+q.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []gettableAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	var act []gettableAlert
	for _, a := range out {
		if a.Status.State == "active" {
			act = append(act, a)
		}
	}
	return act
}

// TestAgainstRealAlertmanager fires, re-sends and resolves one alert
// through a real Alertmanager; the steps run in order.
func TestAgainstRealAlertmanager(t *testing.T) {
	hook := &webhook{}
	receiver := httptest.NewServer(hook)
	defer receiver.Close()
	am := testenv.StartAlertmanager(t, receiver.URL)
	n, err := alertmanager.New(alertmanager.Config{URL: am.URL, Timeout: 5 * time.Second,
		Labels: map[string]string{"source": "slogate"}, ExternalURL: "https://slogate.example/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const name = "checkout-availability"
	start := time.Now().UTC()
	firstEnd := start.Add(2 * time.Second)
	notify := func(t *testing.T, e alerting.Event) {
		t.Helper()
		if retry, err := n.Notify(ctx, e); err != nil {
			t.Fatalf("Notify: retry=%v, %v", retry, err)
		}
	}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a firing alert is active with our labels and reaches the receiver as firing", func(t *testing.T) {
			notify(t, alertEvent(name, true, true, start, start, firstEnd))
			got := active(t, am.URL, name)
			if len(got) != 1 {
				t.Fatalf("active alerts: %+v, want one", got)
			}
			want := map[string]string{"alertname": "SLOBurnRate", "service": "checkout", "slo": name,
				"severity": "page", "slo_severity": "page", "team": "payments", "source": "slogate"}
			for k, v := range want {
				if got[0].Labels[k] != v {
					t.Errorf("label %s = %q, want %q (labels %v)", k, got[0].Labels[k], v, got[0].Labels)
				}
			}
			if len(got[0].Receivers) != 1 || got[0].Receivers[0].Name != "test" {
				t.Errorf("receivers %+v, want the webhook", got[0].Receivers)
			}
			hook.waitFor(t, "firing", name, 10*time.Second)
		}},
		{"a re-send moves the alert's endsAt past its first one, and it stays active", func(t *testing.T) {
			at := time.Now().UTC()
			newEnd := at.Add(30 * time.Second)
			notify(t, alertEvent(name, true, false, at, start, newEnd))
			// Alertmanager answers the re-send's endsAt at once: that it holds
			// the later end is what keeps the alert active past firstEnd
			// (no waiting for the clock to pass it).
			got := active(t, am.URL, name)
			if len(got) != 1 {
				t.Fatalf("after the re-send, active alerts: %+v, want one", got)
			}
			if !got[0].EndsAt.After(firstEnd) || got[0].EndsAt.Sub(newEnd).Abs() > time.Second {
				t.Fatalf("endsAt %s after the re-send, want %s (past the first endsAt %s)", got[0].EndsAt, newEnd, firstEnd)
			}
		}},
		{"a resolution (endsAt now) reaches the receiver as resolved", func(t *testing.T) {
			at := time.Now().UTC()
			notify(t, alertEvent(name, false, true, at, start, at))
			hook.waitFor(t, "resolved", name, 10*time.Second+testenv.AlertmanagerGroupInterval)
			if got := active(t, am.URL, name); len(got) != 0 {
				t.Errorf("after the resolution, active alerts: %+v, want none", got)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			return
		}
	}
}

func TestNotifyOutcomes(t *testing.T) {
	now := time.Now().UTC()
	firing := alertEvent("checkout-availability", true, true, now, now, now.Add(4*time.Minute))
	tests := map[string]struct {
		handler   http.HandlerFunc
		event     alerting.Event
		wantErr   bool
		wantRetry bool
		// wantConfig: an alerting.ConfigError.
		wantConfig bool
	}{
		"a 200 is a delivery": {
			handler: func(w http.ResponseWriter, r *http.Request) {},
			event:   firing,
		},
		"a 400 is final": {
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"code":400,"message":"start time must be before end time"}`, http.StatusBadRequest)
			},
			event: firing, wantErr: true,
		},
		"a 503 is retried": {
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
			},
			event: firing, wantErr: true, wantRetry: true,
		},
		"a 429 is retried": {
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "slow down", http.StatusTooManyRequests) },
			event:   firing, wantErr: true, wantRetry: true,
		},
		"a proxy's 401 is retried as a configuration error": {
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "who are you", http.StatusUnauthorized) },
			event:   firing, wantErr: true, wantRetry: true, wantConfig: true,
		},
		"a 403 is retried as a configuration error": {
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) },
			event:   firing, wantErr: true, wantRetry: true, wantConfig: true,
		},
		"a 404 (a wrong path prefix) is retried as a configuration error": {
			handler: http.NotFound,
			event:   firing, wantErr: true, wantRetry: true, wantConfig: true,
		},
		"a peer slower than the timeout is retried": {
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(time.Second):
				}
			},
			event: firing, wantErr: true, wantRetry: true,
		},
		"a re-send already past its endsAt is dropped without a request": {
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "must not be called", http.StatusBadRequest)
			},
			event: alertEvent("checkout-availability", true, false, now.Add(-time.Hour), now.Add(-2*time.Hour), now.Add(-time.Minute)),
		},
		"an event that is not an alert is final": {
			handler: func(w http.ResponseWriter, r *http.Request) {},
			event:   alerting.Event{Kind: alerting.KindDeployStarted, At: now},
			wantErr: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			n, err := alertmanager.New(alertmanager.Config{URL: srv.URL, Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			retry, err := n.Notify(context.Background(), tc.event)
			if (err != nil) != tc.wantErr || retry != tc.wantRetry {
				t.Errorf("Notify = (retry %v, %v), want retry %v, error %v", retry, err, tc.wantRetry, tc.wantErr)
			}
			var ce *alerting.ConfigError
			if errors.As(err, &ce) != tc.wantConfig {
				t.Errorf("Notify error %v: configuration error %v, want %v", err, errors.As(err, &ce), tc.wantConfig)
			}
		})
	}
}

func TestNotifyRequest(t *testing.T) {
	var got struct {
		path, auth, contentType string
		body                    []map[string]any
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.path, got.auth, got.contentType = r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &got.body); err != nil {
			t.Errorf("body %s: %v", b, err)
		}
	}))
	defer srv.Close()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	e := alertEvent("checkout-availability", true, true, now, now, now.Add(999999*time.Hour))
	e.Alert.Name = "CheckoutAvailabilityBurn"
	e.Links = []alerting.Link{{Href: "https://ci.example/run/1", Text: "pipeline"}}

	tests := map[string]struct {
		cfg      alertmanager.Config
		wantAuth string
	}{
		"a bearer token is sent as Authorization: Bearer": {
			cfg: alertmanager.Config{URL: srv.URL + "/am/", BearerToken: "s3cret"}, wantAuth: "Bearer s3cret",
		},
		"credentials in the URL become basic auth": {
			cfg: alertmanager.Config{URL: strings.Replace(srv.URL, "http://", "http://u:p@", 1) + "/am"}, wantAuth: "Basic dTpw",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n, err := alertmanager.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.Notify(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			if got.path != "/am/api/v2/alerts" || got.auth != tc.wantAuth || got.contentType != "application/json" {
				t.Errorf("path %q, auth %q, content type %q", got.path, got.auth, got.contentType)
			}
			if len(got.body) != 1 {
				t.Fatalf("body: %v, want an array of one alert", got.body)
			}
			a := got.body[0]
			labels, _ := a["labels"].(map[string]any)
			ann, _ := a["annotations"].(map[string]any)
			if labels["alertname"] != "CheckoutAvailabilityBurn" || labels["team"] != "payments" {
				t.Errorf("labels %v", labels)
			}
			for k, v := range map[string]string{
				"burn_rates": "5m=20.00 1h=15.50 1d=?", "budget_remaining": "0.4100",
				"runbook_url": "https://runbooks.example/checkout", "link": "https://ci.example/run/1",
				"summary": e.Alert.Summary,
			} {
				if ann[k] != v {
					t.Errorf("annotation %s = %v, want %q", k, ann[k], v)
				}
			}
			if a["startsAt"] != "2026-11-21T12:00:00Z" || a["generatorURL"] != "https://ci.example/run/1" {
				t.Errorf("startsAt %v, generatorURL %v", a["startsAt"], a["generatorURL"])
			}
		})
	}
}

func TestErrorsCarryNoSecret(t *testing.T) {
	// Nothing listens there: the connection is refused.
	down := testenv.FreePort(t)
	n, err := alertmanager.New(alertmanager.Config{URL: "http://admin:hunter2@127.0.0.1:" + itoa(down), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	retry, err := n.Notify(context.Background(), alertEvent("x", true, true, now, now, now.Add(time.Minute)))
	if err == nil || !retry {
		t.Fatalf("Notify to a closed port = (%v, %v), want a retry", retry, err)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "admin") {
		t.Errorf("the error shows the credentials: %v", err)
	}
}

func TestNew(t *testing.T) {
	tests := map[string]struct {
		cfg     alertmanager.Config
		wantErr string
	}{
		"a URL is required":                    {cfg: alertmanager.Config{}, wantErr: "url is required"},
		"a URL without a host is refused":      {cfg: alertmanager.Config{URL: "http://"}, wantErr: "url must be"},
		"basic auth and a token are exclusive": {cfg: alertmanager.Config{URL: "http://am", Username: "u", BearerToken: "t"}, wantErr: "not both"},
		"a bad extra label name is refused":    {cfg: alertmanager.Config{URL: "http://am", Labels: map[string]string{"1x": "y"}}, wantErr: `label name "1x"`},
		"a bad URL's error does not quote it":  {cfg: alertmanager.Config{URL: "http://u:pass word@%zz"}, wantErr: "not a valid URL"},
		"a plain URL is accepted":              {cfg: alertmanager.Config{URL: "http://127.0.0.1:9093"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := alertmanager.New(tc.cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("New: %v, want an error with %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "pass word"):
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestKey(t *testing.T) {
	n, err := alertmanager.New(alertmanager.Config{URL: "http://127.0.0.1:9093"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1790000000, 0)
	tests := map[string]struct {
		e    alerting.Event
		want string
	}{
		"a firing transition has a firing key":        {e: alertEvent("a", true, true, at, at, at), want: "alert/a/page/1790000000/firing"},
		"a re-send has its own key, as alive as ever": {e: alertEvent("a", true, false, at.Add(time.Minute), at, at), want: "alert/a/page/1790000060/firing"},
		"a resolution has a resolved key":             {e: alertEvent("a", false, true, at, at, at), want: "alert/a/page/1790000000/resolved"},
		"a deploy is not Alertmanager's":              {e: alerting.Event{Kind: alerting.KindDeployStarted, At: at}, want: ""},
		"an exhausted budget is not Alertmanager's":   {e: alerting.Event{Kind: alerting.KindBudgetExhausted, At: at}, want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := n.Key(tc.e); got != tc.want {
				t.Errorf("Key = %q, want %q", got, tc.want)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
