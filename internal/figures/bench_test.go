package figures

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

// BenchmarkPackStatuses10000: what the leader saves for the followers
// after a run of 10,000 SLOs: packed-bytes (gzip of the JSON, status by
// status) against json-bytes (the plain array in one buffer, the
// baseline), and the allocations of packing.
func BenchmarkPackStatuses10000(b *testing.B) {
	f := func(v float64) *float64 { return &v }
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	sts := make([]slo.Status, 10000)
	for i := range sts {
		r := float64(i%997) / 997
		sts[i] = slo.Status{
			Name: fmt.Sprintf("svc%d-availability-%d", i%10, i), Service: fmt.Sprintf("svc%d", i%10), Target: 0.999, Window: "30d", Source: slo.SourcePrometheus,
			SLI:         slo.SLIFigures{Good: f(1e6 * (1 - r/1000)), Total: f(1e6), Ratio: f(1 - r/1000), ErrorRatio: f(r / 1000)},
			ErrorBudget: slo.BudgetFigures{Total: 0.001, Consumed: f(r), Remaining: f(1 - r)},
			BurnRates:   map[string]*float64{"5m": f(r * 3), "30m": f(r * 2.9), "1h": f(r * 2.1), "2h": f(r * 1.7), "6h": f(r * 1.3), "1d": f(r * 1.1), "3d": f(r)},
			Alerts: []slo.AlertState{{Severity: slo.SeverityPage, LongWindow: "1h", ShortWindow: "5m", Factor: 14.4},
				{Severity: slo.SeverityPage, LongWindow: "6h", ShortWindow: "30m", Factor: 6},
				{Severity: slo.SeverityTicket, LongWindow: "1d", ShortWindow: "2h", Factor: 3},
				{Severity: slo.SeverityTicket, LongWindow: "3d", ShortWindow: "6h", Factor: 1}},
			EvaluatedAt: at, Range: slo.RangeJSON{Start: at.Add(-30 * 24 * time.Hour), End: at},
			AgeSeconds: map[string]float64{"period": float64(i % 3600)},
		}
	}
	plain, err := json.Marshal(sts)
	if err != nil {
		b.Fatal(err)
	}
	var packed []byte
	b.ReportAllocs()
	for b.Loop() {
		if packed, err = Pack(sts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(packed)), "packed-bytes")
	b.ReportMetric(float64(len(plain)), "json-bytes")
}
