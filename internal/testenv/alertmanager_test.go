package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestStartAlertmanager(t *testing.T) {
	got := make(chan map[string]any, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg map[string]any
		if err := json.NewDecoder(r.Body).Decode(&msg); err == nil {
			got <- msg
		}
	}))
	defer receiver.Close()
	am := StartAlertmanager(t, receiver.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tests := map[string]func(t *testing.T){
		"clustering is off, so no gossip port is opened": func(t *testing.T) {
			var status struct {
				Cluster struct {
					Status string `json:"status"`
				} `json:"cluster"`
			}
			get(ctx, t, am.URL+"/api/v2/status", &status)
			if status.Cluster.Status != "disabled" {
				t.Errorf("cluster status %q, want disabled", status.Cluster.Status)
			}
		},
		"a posted alert reaches the webhook receiver at once": func(t *testing.T) {
			body := `[{"labels":{"alertname":"TestenvCheck"},"endsAt":"` + time.Now().Add(time.Minute).UTC().Format(time.RFC3339) + `"}]`
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, am.URL+"/api/v2/alerts", bytes.NewBufferString(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
			}
			select {
			case msg := <-got:
				if msg["status"] != "firing" {
					t.Errorf("webhook status %v, want firing", msg["status"])
				}
			case <-ctx.Done():
				t.Fatal("the webhook received nothing")
			}
		},
	}
	for name, test := range tests {
		t.Run(name, test)
	}
}

func get(ctx context.Context, t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
