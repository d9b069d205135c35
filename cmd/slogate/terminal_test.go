package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
)

func f64(v float64) *float64 { return &v }

// answerForPrinting has what broke the table before: a reason over
// several lines, the same source error on two checks, a long query.
func answerForPrinting() gate.Answer {
	at := time.Date(2026, 11, 21, 12, 15, 0, 0, time.UTC)
	down := "prometheus checkout-requests-ok: good query: sum(increase(http_requests_total{service=\"checkout\"}[30d])): source unavailable: Post \"http://127.0.0.1:9090/api/v1/query\": dial tcp 127.0.0.1:9090: connect: connection refused"
	return gate.Answer{
		Decision: slogate.Halt, Reason: "checkout-availability: version v2 burns budget at 6.3x since 12:01 (max 2x)",
		EvaluationID: "ev_print", Service: "checkout", Environment: "production", Version: "v2", DeployID: "dep_v2",
		Policy: "checkout-production", EvaluatedAt: at,
		Checks: []gate.Check{
			{Kind: "budget", SLO: "checkout-availability", Verdict: gate.Pass, Reason: "41.0% of the budget left (policy needs 0%)\nno page-level burn-rate alert fires",
				SLI: f64(0.9993), Target: 0.999, BudgetRemaining: f64(0.41), Total: f64(1e6)},
			{Kind: "verification", SLO: "checkout-availability", Verdict: gate.Fail, Reason: "version v2 burns budget at 6.3x since 12:01 (max 2x)",
				SLI: f64(0.9937), Target: 0.999, BurnRate: f64(6.3), Total: f64(10000),
				Query: `sum(increase(http_requests_total{code!~"5..",service="checkout",version="v2"}[14m])) / sum(increase(http_requests_total{service="checkout",version="v2"}[14m]))`},
			{Kind: "budget", SLO: "checkout-latency", Verdict: gate.Verdict("error"), Reason: down, SourceError: true},
			{Kind: "verification", SLO: "checkout-latency", Verdict: gate.Verdict("error"), Reason: strings.Replace(down, "[30d]", "[14m]", 1), SourceError: true},
		},
	}
}

func TestPrintAnswer(t *testing.T) {
	var out bytes.Buffer
	printAnswer(&out, answerForPrinting(), palette{}, 100)
	golden(t, "check/answer.golden", out.String())
	lines := strings.Split(out.String(), "\n")
	t.Run("one line per check", func(t *testing.T) {
		rows := 0
		for _, l := range lines[4:] {
			if l == "" {
				break
			}
			rows++
		}
		if rows != 4 {
			t.Fatalf("%d rows for 4 checks:\n%s", rows, out.String())
		}
	})
	t.Run("the same source error is said once", func(t *testing.T) {
		if n := strings.Count(out.String(), "connection refused"); n != 1 {
			t.Fatalf("said %d times:\n%s", n, out.String())
		}
	})
	t.Run("no line of the notes is wider than the width", func(t *testing.T) {
		for _, l := range lines {
			if notesLine := strings.HasPrefix(l, "[") || strings.HasPrefix(l, "    "); notesLine && len(l) > 100 {
				t.Errorf("%d bytes: %q", len(l), l)
			}
		}
	})
	t.Run("no colour unless asked", func(t *testing.T) {
		if strings.Contains(out.String(), "\x1b[") {
			t.Fatal("escape codes without a terminal")
		}
	})
}

func TestPaletteOnlyOnTerminals(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := map[string]struct {
		w      any
		getenv func(string) string
	}{
		"a buffer is not a terminal": {&bytes.Buffer{}, env()},
		"NO_COLOR turns colour off":  {&bytes.Buffer{}, env("NO_COLOR", "1")},
		"a dumb terminal gets none":  {&bytes.Buffer{}, env("TERM", "dumb")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if p := paletteFor(tc.w.(*bytes.Buffer), tc.getenv); p.on {
				t.Fatal("colour on")
			}
		})
	}
	t.Run("colours keep a column aligned", func(t *testing.T) {
		p := palette{on: true}
		if len(p.verdict("pass"))-len("pass") != len(p.paint(ansiPlain, "VERDICT"))-len("VERDICT") {
			t.Fatal("a painted verdict and the painted header differ in overhead")
		}
	})
}

func TestPrintWaiting(t *testing.T) {
	a := answerForPrinting()
	a.Decision = slogate.Wait
	a.Checks = []gate.Check{
		{Kind: "budget", SLO: "checkout-availability", Verdict: gate.Pass, Reason: "41% left"},
		{Kind: "verification", SLO: "checkout-availability", Verdict: gate.Pending, Reason: "version v2 deployed at 12:01: 4m0s of 10m0s elapsed"},
	}
	var out bytes.Buffer
	printWaiting(&out, a, 90*time.Second, 30*time.Second, time.Date(2026, 11, 21, 12, 30, 0, 0, time.UTC), palette{})
	got := out.String()
	for _, want := range []string{"+1m30s wait:", "budget checkout-availability pass", "verification checkout-availability wait",
		"waiting for: version v2 deployed at 12:01: 4m0s of 10m0s elapsed", "next ask in 30s, until 12:30:00"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in %q", want, got)
		}
	}
	if strings.Count(got, "\n") != 1 {
		t.Errorf("not one line: %q", got)
	}
}
