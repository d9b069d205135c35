package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func runLoadgen(t *testing.T, args ...string) Result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("loadgen %q: %v\n%s", args, err, stderr.String())
	}
	if strings.Count(stdout.String(), "\n") != 1 {
		t.Fatalf("want one line, got %q", stdout.String())
	}
	var r Result
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%v: %q", err, stdout.String())
	}
	return r
}

func TestSendsExactlyNRequestsWithUniqueBodiesAndHeaders(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		defer mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer x" ||
			string(b) != `{"version":"v`+strings.TrimPrefix(key, "k-")+`"}` || seen[key] {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		seen[key] = true
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	body := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(body, []byte(`{"version":"v{{n}}"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runLoadgen(t, "-url", srv.URL, "-method", "POST", "-body", body, "-unique",
		"-header", "Authorization: Bearer x", "-header", "Idempotency-Key: k-{{n}}", "-c", "8", "-n", "500")
	if r.Requests != 500 || r.Errors != 0 || r.Non2xx != 0 || len(seen) != 500 {
		t.Fatalf("got %+v and %d distinct keys, want 500 requests, all 2xx and distinct", r, len(seen))
	}
	if !seen["k-1"] || !seen["k-500"] {
		t.Errorf("request numbers must run from 1 to 500")
	}
	if !(r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) || r.Max <= 0 || r.RPS <= 0 || r.Seconds <= 0 {
		t.Errorf("figures out of order: %+v", r)
	}
}

func TestStopsAfterTheDurationAndCountsFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	began := time.Now()
	r := runLoadgen(t, "-url", srv.URL, "-c", "2", "-d", "300ms")
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("a 300ms run took %s", took)
	}
	if r.Requests == 0 || r.Non2xx != r.Requests || r.FirstNon2xx != "503 Service Unavailable" {
		t.Errorf("got %+v, want every answer counted as non-2xx", r)
	}

	srv.Close()
	r = runLoadgen(t, "-url", srv.URL, "-n", "3")
	if r.Errors != 3 || r.Requests != 0 || r.FirstError == "" {
		t.Errorf("against a closed server: %+v, want 3 errors", r)
	}
}

func TestRefusesBadCommandLines(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"a host that is not loopback":  {[]string{"-url", "http://example.com/", "-n", "1"}, "loopback"},
		"neither -n nor -d":            {[]string{"-url", "http://127.0.0.1:1/"}, "give -n"},
		"a duration over the hard cap": {[]string{"-url", "http://127.0.0.1:1/", "-d", "2m"}, "at most 1m0s"},
		"no concurrency":               {[]string{"-url", "http://127.0.0.1:1/", "-n", "1", "-c", "0"}, "-c: must be at least 1"},
		"a header without a colon":     {[]string{"-url", "http://127.0.0.1:1/", "-n", "1", "-header", "nope"}, "Name: value"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := run(context.Background(), tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
