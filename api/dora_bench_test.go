package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate/dora"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// countingSource answers every measurement at once with a clean SLI and
// counts the measurements: the queries a real source would get.
type countingSource struct{ n atomic.Int64 }

func (c *countingSource) Counts(context.Context, slo.SLI, slo.Range, slo.Scope) (slo.Counts, error) {
	c.n.Add(1)
	return slo.Counts{Good: 9999, Total: 10000}, nil
}

// benchRecord is an alert record that began before the window and holds no
// burn: every past instant is covered, nothing is measured.
type benchRecord struct{ since time.Time }

func (r benchRecord) PageBurns(context.Context, time.Time, time.Time) ([]dora.RecordedBurn, time.Time, error) {
	return nil, r.since, nil
}

const benchDeploys = 10_000

// BenchmarkDORA10000Deploys measures GET /v1/dora over 10,000 deploys of
// one service in the 30-day window, on the real embedded store, against
// listing the same deploys through GET /v1/deploys (every page of 1,000)
// in the same run:
//   - list: the baseline, ten pages of GET /v1/deploys;
//   - dora-recorded: the alert record covers the window (no source query);
//   - dora-measured: no record, so past burns are measured under the query
//     limit (queries/op is what the source gets).
//
// The source answers at once, so the times are slogate's own; against a
// real source the measured variant also waits for its queries.
func BenchmarkDORA10000Deploys(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+b.TempDir()+"/bench.db?synchronous=normal", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	every := 30 * 24 * time.Hour / benchDeploys
	for i := range benchDeploys {
		start := now.Add(-time.Duration(i+1) * every)
		d := slogate.Deploy{Service: "shop", Environment: "production", Version: fmt.Sprintf("v%d", i), StartedAt: start,
			Commit: fmt.Sprintf("%040d", i), Commits: []slogate.Commit{{SHA: fmt.Sprintf("%040d", i), Time: start.Add(-time.Hour)}}}
		got, _, err := st.CreateDeploy(ctx, d, "")
		if err != nil {
			b.Fatal(err)
		}
		status := slogate.StatusSucceeded
		switch i % 20 {
		case 3:
			status = slogate.StatusFailed
		case 7:
			status = slogate.StatusRolledBack
		}
		if _, err := st.FinishDeploy(ctx, got.ID, status, start.Add(2*time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	objs := []slo.Objective{{Name: "shop-availability", Service: "shop", Target: 0.999, Window: slo.Rolling(30 * 24 * time.Hour),
		SLI: slo.SLI{Good: &slo.Query{Source: slo.SourcePrometheus, PromQL: "ok_total"}, Total: &slo.Query{Source: slo.SourcePrometheus, PromQL: "all_total"}}}}
	objectives := func(string) []slo.Objective { return objs }
	server := func(record dora.Record, src dora.Counter) http.Handler {
		h, err := dora.NewHistory(dora.HistoryConfig{Objectives: objectives, Record: record, Counter: src})
		if err != nil {
			b.Fatal(err)
		}
		return NewServer(Deps{Gate: &fakeGate{}, Store: st, SLOs: &fakeSLOs{}, Tokens: testTokens, Delivery: h,
			Clock: func() time.Time { return now }})
	}
	get := func(b *testing.B, h http.Handler, path string, out any) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+tokRead)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
		}
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			b.Fatal(err)
		}
	}
	list := func(b *testing.B, h http.Handler) {
		n, cursor := 0, ""
		for {
			// The cursor and the count: the client's decoding is not
			// slogate's cost.
			var l struct {
				Items      []struct{} `json:"items"`
				NextCursor string     `json:"nextCursor"`
			}
			get(b, h, "/v1/deploys?service=shop&limit=1000&cursor="+cursor, &l)
			n += len(l.Items)
			if cursor = l.NextCursor; cursor == "" {
				break
			}
		}
		if n != benchDeploys {
			b.Fatalf("listed %d deploys, want %d", n, benchDeploys)
		}
	}
	// A first listing warms the store's cache (and lets the writes of
	// the setup settle) for every variant alike.
	list(b, server(nil, nil))
	perOp := map[string]time.Duration{}
	b.Run("list", func(b *testing.B) {
		h := server(nil, nil)
		for b.Loop() {
			list(b, h)
		}
		perOp["list"] = b.Elapsed() / time.Duration(b.N)
	})
	for _, v := range []struct {
		name   string
		record dora.Record
	}{
		{"dora-recorded", benchRecord{since: now.Add(-60 * 24 * time.Hour)}},
		{"dora-measured", nil},
	} {
		b.Run(v.name, func(b *testing.B) {
			src := &countingSource{}
			h := server(v.record, src)
			var last DORA
			for b.Loop() {
				get(b, h, "/v1/dora?service=shop&environment=production&window=30d", &last)
			}
			if last.ChangeFailureRate.Deployments != benchDeploys || last.Sources.Queries > last.Sources.QueryLimit {
				b.Fatalf("dora over %d deploys, %d queries (limit %d)", last.ChangeFailureRate.Deployments, last.Sources.Queries, last.Sources.QueryLimit)
			}
			b.ReportMetric(float64(src.n.Load())/float64(b.N), "queries/op")
			if list := perOp["list"]; list > 0 {
				b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(list), "x-list")
			}
		})
	}
}
