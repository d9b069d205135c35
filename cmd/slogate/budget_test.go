package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// `slogate budget` end to end: the SLO files of testdata/budget/slos
// measured from a real Prometheus loaded with known samples, every figure
// compared with one worked out by hand below.
//
// The data. Samples every minute, on the minute grid, from budgetAt − 31
// days to budgetAt, and every query evaluated at budgetAt (--at): the edges
// of every range (30d, 28d, 3d, ..., 5m, and the calendar month's start at
// 23:00 UTC) fall on samples, so Prometheus 2.42's increase() answers
// v(end) − v(start) with no extrapolation, and rate() × window gives the
// same events. The figures are exact up to float rounding: 1e-9 relative.
//
//	checkout  http_requests_total: 10 req/s; 0.05 % errors until
//	          budgetAt − 2h, then 5 % (a burst).
//	checkout  http_request_duration_seconds (buckets 0.1, 0.3, 1): 10 req/s;
//	          99.5 % under 0.3 s until budgetAt − 1d, then 96 %.
//	payments  http_requests_total: 20 req/s, 0.02 % errors all along
//	          (a clean service).
//	payments  gateway_authorizations_total: 5/s; 0.3 % failed (code="500")
//	          until budgetAt − 6h, then 1 %.
//	search    http_requests_total: 5 req/s, 0.1 % errors, except 3 % in the
//	          hour from 2026-10-31T23:00Z to 2026-11-01T00:00Z: the first
//	          hour of November in Paris (CET, UTC+1), the last of October
//	          in UTC.
//	ghost     nothing at all.
var budgetAt = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func budgetData() string {
	start := budgetAt.Add(-31 * slo.Day)
	svc := func(s string) map[string]string { return map[string]string{"service": s} }
	var om testenv.OpenMetrics
	om.Counter("http_requests", testenv.Requests("http_requests", svc("checkout"), start, time.Minute,
		testenv.Phase{Until: budgetAt.Add(-2 * time.Hour), Rate: 10, ErrorRatio: 0.0005},
		testenv.Phase{Until: budgetAt, Rate: 10, ErrorRatio: 0.05})...)
	om.Counter("http_requests", testenv.Requests("http_requests", svc("payments"), start, time.Minute,
		testenv.Phase{Until: budgetAt, Rate: 20, ErrorRatio: 0.0002})...)
	om.Counter("http_requests", testenv.Requests("http_requests", svc("search"), start, time.Minute,
		testenv.Phase{Until: time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC), Rate: 5, ErrorRatio: 0.001},
		testenv.Phase{Until: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Rate: 5, ErrorRatio: 0.03},
		testenv.Phase{Until: budgetAt, Rate: 5, ErrorRatio: 0.001})...)
	om.Counter("gateway_authorizations", testenv.Requests("gateway_authorizations", svc("payments"), start, time.Minute,
		testenv.Phase{Until: budgetAt.Add(-6 * time.Hour), Rate: 5, ErrorRatio: 0.003},
		testenv.Phase{Until: budgetAt, Rate: 5, ErrorRatio: 0.01})...)
	om.Histogram("http_request_duration_seconds", testenv.HistogramSeries("http_request_duration_seconds",
		svc("checkout"), []float64{0.1, 0.3, 1}, start, time.Minute,
		testenv.LatencyPhase{Until: budgetAt.Add(-slo.Day), Rate: 10, Below: []float64{0.5, 0.995, 0.999}, Mean: 0.12},
		testenv.LatencyPhase{Until: budgetAt, Rate: 10, Below: []float64{0.4, 0.96, 0.99}, Mean: 0.2})...)
	return om.String()
}

const budgetSLOs = "testdata/budget/slos"

// statusJSON is one object of `slogate budget -o json`, written from the
// shape of GET /v1/slos/{name} in DESIGN.md and decoded strictly: a renamed
// or extra field fails the test.
type statusJSON struct {
	Name        string  `json:"name"`
	Service     string  `json:"service"`
	DisplayName string  `json:"displayName"`
	Target      float64 `json:"target"`
	Window      string  `json:"window"`
	Source      string  `json:"source"`
	SLI         struct {
		Good       *float64 `json:"good"`
		Total      *float64 `json:"total"`
		Ratio      *float64 `json:"ratio"`
		ErrorRatio *float64 `json:"errorRatio"`
	} `json:"sli"`
	ErrorBudget struct {
		Total     float64  `json:"total"`
		Consumed  *float64 `json:"consumed"`
		Remaining *float64 `json:"remaining"`
	} `json:"errorBudget"`
	BurnRates   map[string]*float64 `json:"burnRates"`
	Alerts      []alertJSON         `json:"alerts"`
	EvaluatedAt time.Time           `json:"evaluatedAt"`
	Range       struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	} `json:"range"`
	Errors []struct {
		Window string `json:"window"`
		Error  string `json:"error"`
		NoData bool   `json:"noData"`
	} `json:"errors"`
}

type alertJSON struct {
	Severity    string  `json:"severity"`
	LongWindow  string  `json:"longWindow"`
	ShortWindow string  `json:"shortWindow"`
	Factor      float64 `json:"factor"`
	Firing      bool    `json:"firing"`
	Unknown     bool    `json:"unknown"`
}

// decodeStatuses reads the JSON array of `budget -o json` by SLO name.
func decodeStatuses(t *testing.T, out string) map[string]statusJSON {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var list []statusJSON
	if err := dec.Decode(&list); err != nil {
		t.Fatalf("budget -o json: %v\n%s", err, out)
	}
	byName := map[string]statusJSON{}
	for _, s := range list {
		byName[s.Name] = s
	}
	return byName
}

// budgetWant is a status worked out by hand. A nil figure must be null.
type budgetWant struct {
	target, budgetTotal float64
	window              string
	rangeStart          time.Time
	good, total         *float64
	ratio, errorRatio   *float64
	consumed, remaining *float64
	burn                map[string]*float64
	alerts              []alertJSON
	// errors lists the windows that failed; noData says how.
	errors []string
	noData bool
}

func num(v float64) *float64 { return &v }

// burns keys the burn rates of 5m, 30m, 1h, 2h, 6h, 1d and 3d.
func burns(b5m, b30m, b1h, b2h, b6h, b1d, b3d *float64) map[string]*float64 {
	return map[string]*float64{"5m": b5m, "30m": b30m, "1h": b1h, "2h": b2h, "6h": b6h, "1d": b1d, "3d": b3d}
}

func sameBurns(b float64) map[string]*float64 {
	return burns(num(b), num(b), num(b), num(b), num(b), num(b), num(b))
}

var (
	allWindows = []string{"period", "5m", "30m", "1h", "2h", "6h", "1d", "3d"}
	nullBurns  = burns(nil, nil, nil, nil, nil, nil, nil)
)

// tiers are the four default tiers with their factors for a period and
// whether each fires (page 1h/5m, page 6h/30m, ticket 1d/2h, ticket 3d/6h).
func tiers(period time.Duration, firing ...bool) []alertJSON {
	days := period.Hours() / 24
	out := []alertJSON{
		{Severity: "page", LongWindow: "1h", ShortWindow: "5m", Factor: 0.02 * days * 24},
		{Severity: "page", LongWindow: "6h", ShortWindow: "30m", Factor: 0.05 * days * 4},
		{Severity: "ticket", LongWindow: "1d", ShortWindow: "2h", Factor: 0.1 * days},
		{Severity: "ticket", LongWindow: "3d", ShortWindow: "6h", Factor: 0.1 * days / 3},
	}
	for i, f := range firing {
		out[i].Firing = f
	}
	return out
}

func unknownTiers(period time.Duration) []alertJSON {
	out := tiers(period)
	for i := range out {
		out[i].Unknown = true
	}
	return out
}

// close1e9 is equality within 1e-9 relative.
func close1e9(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Abs(want)
}

func checkFigure(t *testing.T, field string, got, want *float64) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Errorf("%s = %v, want null", field, *got)
	case want != nil && got == nil:
		t.Errorf("%s = null, want %v", field, *want)
	case want != nil && !close1e9(*got, *want):
		t.Errorf("%s = %.15g, want %.15g (hand-worked, 1e-9 relative)", field, *got, *want)
	}
}

func checkStatus(t *testing.T, got statusJSON, want budgetWant) {
	t.Helper()
	if !close1e9(got.Target, want.target) {
		t.Errorf("target = %v, want %v", got.Target, want.target)
	}
	if got.Window != want.window {
		t.Errorf("window = %q, want %q", got.Window, want.window)
	}
	if got.Source != "prometheus" {
		t.Errorf("source = %q, want prometheus", got.Source)
	}
	if !got.EvaluatedAt.Equal(budgetAt) || !got.Range.End.Equal(budgetAt) {
		t.Errorf("evaluatedAt %s, range.end %s, want both %s", got.EvaluatedAt, got.Range.End, budgetAt)
	}
	if !got.Range.Start.Equal(want.rangeStart) {
		t.Errorf("range.start = %s, want %s", got.Range.Start.UTC().Format(time.RFC3339), want.rangeStart.UTC().Format(time.RFC3339))
	}
	checkFigure(t, "sli.good", got.SLI.Good, want.good)
	checkFigure(t, "sli.total", got.SLI.Total, want.total)
	checkFigure(t, "sli.ratio", got.SLI.Ratio, want.ratio)
	checkFigure(t, "sli.errorRatio", got.SLI.ErrorRatio, want.errorRatio)
	checkFigure(t, "errorBudget.total", &got.ErrorBudget.Total, &want.budgetTotal)
	checkFigure(t, "errorBudget.consumed", got.ErrorBudget.Consumed, want.consumed)
	checkFigure(t, "errorBudget.remaining", got.ErrorBudget.Remaining, want.remaining)
	if len(got.BurnRates) != len(want.burn) {
		t.Errorf("burnRates has %d windows, want %d: %v", len(got.BurnRates), len(want.burn), got.BurnRates)
	}
	for w, b := range want.burn {
		g, ok := got.BurnRates[w]
		if !ok {
			t.Errorf("burnRates[%q] missing", w)
			continue
		}
		checkFigure(t, "burnRates."+w, g, b)
	}
	if len(got.Alerts) != len(want.alerts) {
		t.Errorf("alerts = %+v, want %+v", got.Alerts, want.alerts)
	} else {
		for i, a := range want.alerts {
			g := got.Alerts[i]
			if g.Severity != a.Severity || g.LongWindow != a.LongWindow || g.ShortWindow != a.ShortWindow ||
				!close1e9(g.Factor, a.Factor) || g.Firing != a.Firing || g.Unknown != a.Unknown {
				t.Errorf("alerts[%d] = %+v, want %+v", i, g, a)
			}
		}
	}
	var windows []string
	for _, e := range got.Errors {
		windows = append(windows, e.Window)
		if e.NoData != want.noData {
			t.Errorf("errors[%s].noData = %v, want %v (%s)", e.Window, e.NoData, want.noData, e.Error)
		}
		if e.Error == "" {
			t.Errorf("errors[%s] has no message", e.Window)
		}
	}
	sort.Strings(windows)
	wantWindows := append([]string(nil), want.errors...)
	sort.Strings(wantWindows)
	if strings.Join(windows, ",") != strings.Join(wantWindows, ",") {
		t.Errorf("errors in windows %v, want %v", windows, wantWindows)
	}
}

// The hand-worked figures. Seconds: 30d = 2,592,000; 28d = 2,419,200;
// 3d = 259,200; 1d = 86,400; 6h = 21,600; 2h = 7,200.
var (
	// checkout-availability: target 0.999 (budget 0.001), rolling 30d,
	// factors 14.4, 6, 3, 1.
	//   30d total: 10/s × 2,592,000 = 25,920,000
	//   30d bad:   0.005/s × (2,592,000 − 7,200 = 2,584,800) = 12,924
	//            + 0.5/s × 7,200                            =  3,600 → 16,524
	//   good 25,903,476; error ratio 16,524 / 25,920,000 = 0.0006375;
	//   consumed 0.0006375 / 0.001 = 0.6375; remaining 0.3625.
	//   5m, 30m, 1h, 2h: all in the burst: 0.05 / 0.001 = 50.
	//   6h: bad 0.005 × 14,400 + 3,600 = 3,672 of 216,000 = 0.017 → 17.
	//   1d: bad 0.005 × 79,200 + 3,600 = 3,996 of 864,000 = 0.004625 → 4.625.
	//   3d: bad 0.005 × 252,000 + 3,600 = 4,860 of 2,592,000 = 0.001875 → 1.875.
	//   page 1h/5m 14.4: 50, 50 fires; page 6h/30m 6: 17, 50 fires;
	//   ticket 1d/2h 3: 4.625, 50 fires; ticket 3d/6h 1: 1.875, 17 fires.
	checkoutAvailability = budgetWant{
		target: 0.999, budgetTotal: 0.001, window: "30d", rangeStart: budgetAt.Add(-30 * slo.Day),
		good: num(25_903_476), total: num(25_920_000),
		ratio: num(0.9993625), errorRatio: num(0.0006375),
		consumed: num(0.6375), remaining: num(0.3625),
		burn:   burns(num(50), num(50), num(50), num(50), num(17), num(4.625), num(1.875)),
		alerts: tiers(30*slo.Day, true, true, true, true),
	}
	// checkout-latency: target 0.99 (budget 0.01), rolling 28d, so the
	// factors are 0.02 × 672h/1h = 13.44, 0.05 × 672h/6h = 5.6,
	// 0.1 × 28d/1d = 2.8 and 0.1 × 28d/3d = 0.9333….
	//   28d total: 10/s × 2,419,200 = 24,192,000
	//   28d good:  9.95/s × 2,332,800 (27d) = 23,211,360
	//            + 9.6/s × 86,400           =    829,440 → 24,040,800
	//   bad 151,200; error ratio 0.00625 (= (27 × 0.005 + 0.04) / 28);
	//   consumed 0.625; remaining 0.375.
	//   5m … 1d: all in the last day: 0.04 / 0.01 = 4.
	//   3d: (2 × 0.005 + 0.04) / 3 = 0.05 / 3 → 5/3.
	//   page 13.44: 4 no; page 5.6: 4 no; ticket 2.8: 4, 4 fires;
	//   ticket 0.9333: 5/3, 4 fires.
	checkoutLatency = budgetWant{
		target: 0.99, budgetTotal: 0.01, window: "28d", rangeStart: budgetAt.Add(-28 * slo.Day),
		good: num(24_040_800), total: num(24_192_000),
		ratio: num(0.99375), errorRatio: num(0.00625),
		consumed: num(0.625), remaining: num(0.375),
		burn:   burns(num(4), num(4), num(4), num(4), num(4), num(4), num(5.0/3)),
		alerts: tiers(28*slo.Day, false, false, true, true),
	}
	// payments-requests-availability (Sloth events, 99.9 %): 20 req/s,
	// 0.02 % errors.
	//   30d total: 20 × 2,592,000 = 51,840,000; bad 0.004/s × 2,592,000 =
	//   10,368; good 51,829,632; error ratio 0.0002; consumed 0.2;
	//   remaining 0.8; every burn rate 0.0002 / 0.001 = 0.2: nothing fires.
	paymentsRequests = budgetWant{
		target: 0.999, budgetTotal: 0.001, window: "30d", rangeStart: budgetAt.Add(-30 * slo.Day),
		good: num(51_829_632), total: num(51_840_000),
		ratio: num(0.9998), errorRatio: num(0.0002),
		consumed: num(0.2), remaining: num(0.8),
		burn:   sameBurns(0.2),
		alerts: tiers(30*slo.Day, false, false, false, false),
	}
	// payments-authorizations-success (Sloth raw, 99.5 %: budget 0.005),
	// page alert disabled, so only the ticket tiers are listed.
	//   30d: (714h × 0.003 + 6h × 0.01) / 720h = 2.202 / 720
	//        = 0.0030583…; consumed 2.202 / 720 / 0.005 = 0.61166…;
	//        good and total null (a raw SLI has no events).
	//   5m … 6h: 0.01 / 0.005 = 2.
	//   1d: (18 × 0.003 + 6 × 0.01) / 24 = 0.00475 → 0.95.
	//   3d: (66 × 0.003 + 6 × 0.01) / 72 = 0.258 / 72 → 0.71666….
	//   ticket 1d/2h 3: 0.95 no; ticket 3d/6h 1: 0.71666… no.
	paymentsAuthorizations = budgetWant{
		target: 0.995, budgetTotal: 0.005, window: "30d", rangeStart: budgetAt.Add(-30 * slo.Day),
		ratio: num(1 - 2.202/720), errorRatio: num(2.202 / 720),
		consumed: num(2.202 / 720 / 0.005), remaining: num(1 - 2.202/720/0.005),
		burn:   burns(num(2), num(2), num(2), num(2), num(2), num(0.95), num(0.258/72/0.005)),
		alerts: tiers(30*slo.Day, false, false, false, false)[2:],
	}
	// search-availability: calendar month in Europe/Paris, target 0.99
	// (budget 0.01). At 2026-11-01T12:00Z November began at local midnight,
	// 2026-11-01T00:00+01:00 = 2026-10-31T23:00Z: the range is 13h
	// (46,800 s), and November in Paris has no DST change, so the period
	// is 30d and the factors are 14.4, 6, 3, 1.
	//   13h total: 5 × 46,800 = 234,000; bad 5 × 3,600 × 0.03 = 540
	//            + 5 × 43,200 × 0.001 = 216 → 756; good 233,244;
	//   error ratio 756 / 234,000 = 0.0032307…; consumed 0.32307…
	//   (from UTC midnight it would be 216 / 216,000 = 0.001: the hour
	//   matters).
	//   5m … 6h (06:00Z–12:00Z): 0.001 / 0.01 = 0.1.
	//   1d: bad 540 + 5 × 82,800 × 0.001 = 954 of 432,000 → 0.2208….
	//   3d: bad 540 + 5 × 255,600 × 0.001 = 1,818 of 1,296,000 → 0.1402….
	//   nothing fires.
	searchAvailability = budgetWant{
		target: 0.99, budgetTotal: 0.01, window: "month (Europe/Paris)",
		rangeStart: time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC),
		good:       num(233_244), total: num(234_000),
		ratio: num(233_244.0 / 234_000), errorRatio: num(756.0 / 234_000),
		consumed: num(756.0 / 234_000 / 0.01), remaining: num(1 - 756.0/234_000/0.01),
		burn: burns(num(0.1), num(0.1), num(0.1), num(0.1), num(0.1),
			num(954.0/432_000/0.01), num(1_818.0/1_296_000/0.01)),
		alerts: tiers(30*slo.Day, false, false, false, false),
	}
	// ghost-availability: no series at all. Nothing is a figure: the
	// budget and every burn rate are null, every window is an error of
	// missing data, and no tier can be said to fire or not.
	ghostAvailability = budgetWant{
		target: 0.999, budgetTotal: 0.001, window: "30d", rangeStart: budgetAt.Add(-30 * slo.Day),
		burn: nullBurns, alerts: unknownTiers(30 * slo.Day),
		errors: allWindows, noData: true,
	}
)

func TestBudget(t *testing.T) {
	p := testenv.StartPrometheus(t, budgetData())
	at := budgetAt.Format(time.RFC3339)

	t.Run("figures", func(t *testing.T) {
		down := budgetWant(checkoutAvailability)
		down.good, down.total, down.ratio, down.errorRatio, down.consumed, down.remaining = nil, nil, nil, nil, nil, nil
		down.burn, down.alerts = nullBurns, unknownTiers(30*slo.Day)
		down.errors, down.noData = allWindows, false

		tests := map[string]struct {
			file     string
			slo      string
			down     bool
			wantCode int
			want     budgetWant
		}{
			"a rolling 30-day availability SLO over counters spends its budget on a recent burst and fires every tier": {
				file: "checkout.yaml", slo: "checkout-availability", want: checkoutAvailability,
			},
			"a 28-day latency SLO over histogram buckets fires its ticket tiers only, at factors scaled to 28 days": {
				file: "checkout.yaml", slo: "checkout-latency", want: checkoutLatency,
			},
			"a Sloth events SLO of a clean service fires no tier": {
				file: "payments.sloth.yaml", slo: "payments-requests-availability", want: paymentsRequests,
			},
			"a Sloth raw SLO reads its error ratio as it is and lists only the tiers it keeps": {
				file: "payments.sloth.yaml", slo: "payments-authorizations-success", want: paymentsAuthorizations,
			},
			"a calendar-month SLO in Europe/Paris starts its range at local midnight, 23:00 UTC": {
				file: "search.yaml", slo: "search-availability", want: searchAvailability,
			},
			"an SLO whose metric does not exist has no budget, lists its errors and exits 1": {
				file: "ghost.yaml", slo: "ghost-availability", want: ghostAvailability, wantCode: exitFailed,
			},
			"a Prometheus that is down leaves every figure null and exits 1": {
				file: "checkout.yaml", slo: "checkout-availability", down: true, want: down, wantCode: exitFailed,
			},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				url := p.URL
				if tc.down {
					url = testenv.DownURL(t)
				}
				r := runCLI(t, nil, "budget", "--prometheus", url, "--at", at, "-o", "json",
					filepath.Join(budgetSLOs, tc.file))
				if r.code != tc.wantCode {
					t.Fatalf("exit code %d, want %d (err %v)\nstderr:\n%s", r.code, tc.wantCode, r.err, r.stderr)
				}
				got, ok := decodeStatuses(t, r.stdout)[tc.slo]
				if !ok {
					t.Fatalf("no status for %s in:\n%s", tc.slo, r.stdout)
				}
				checkStatus(t, got, tc.want)
				if tc.down {
					for _, e := range got.Errors {
						if strings.Contains(e.Error, "no data") {
							t.Errorf("a server that is down is not missing data: %s", e.Error)
						}
					}
				}
			})
		}
	})

	t.Run("table", func(t *testing.T) {
		// Every SLO at once: the row of ghost-availability (no data) on top,
		// then budget left from the least: 36.25 % (checkout-availability),
		// 37.5 % (checkout-latency), 38.83 % (authorizations), 67.69 %
		// (search), 80 % (payments requests).
		r := runCLI(t, nil, "budget", "--prometheus", p.URL, "--at", at, "-o", "table", budgetSLOs)
		if r.code != exitFailed {
			t.Fatalf("exit code %d, want %d (ghost-availability has no data); err %v\n%s", r.code, exitFailed, r.err, r.stderr)
		}
		if want := "1 of 6 SLOs could not be fully measured\n"; r.stderr != want {
			t.Errorf("stderr = %q, want %q", r.stderr, want)
		}
		golden(t, "budget/table.golden", r.stdout)
		var order []string
		for _, line := range strings.Split(r.stdout, "\n")[3:] {
			f := strings.Fields(line)
			if len(f) == 0 {
				break // the notes follow the table
			}
			order = append(order, f[0])
		}
		want := "ghost-availability checkout-availability checkout-latency payments-authorizations-success search-availability payments-requests-availability"
		if got := strings.Join(order, " "); got != want {
			t.Errorf("rows in order %s, want %s", got, want)
		}
	})

	t.Run("config", func(t *testing.T) {
		// sources.prometheus.url from ${SLOGATE_TEST_PROMETHEUS}, the SLO
		// files from the config's slos list.
		r := runCLI(t, map[string]string{"SLOGATE_TEST_PROMETHEUS": p.URL},
			"budget", "--config", "testdata/budget/config.yaml", "--at", at, "-o", "json")
		if r.code != exitOK {
			t.Fatalf("exit code %d, want 0 (err %v)\n%s", r.code, r.err, r.stderr)
		}
		got := decodeStatuses(t, r.stdout)
		if len(got) != 2 {
			t.Errorf("%d statuses, want the 2 SLOs of checkout.yaml", len(got))
		}
		checkStatus(t, got["checkout-availability"], checkoutAvailability)
		checkStatus(t, got["checkout-latency"], checkoutLatency)
	})

	t.Run("source precedence", func(t *testing.T) {
		// checkout-availability names a DataSource whose url is written into
		// the file; the config takes ${SLOGATE_TEST_PROMETHEUS}. Whichever
		// place wins is the only one that can explain the outcome: a source
		// that is down where the winner must not be read.
		downURL := testenv.DownURL(t)
		tmpl := template.Must(template.ParseFiles("testdata/budget/datasource.yaml.tmpl"))
		dir := t.TempDir()
		dsFile := func(url string) string {
			var b bytes.Buffer
			if err := tmpl.Execute(&b, struct{ URL string }{url}); err != nil {
				t.Fatal(err)
			}
			f, err := os.CreateTemp(dir, "datasource-*.yaml")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(b.Bytes()); err != nil {
				t.Fatal(err)
			}
			return f.Name()
		}
		const (
			up   = "up"
			down = "down"
		)
		urls := map[string]string{up: p.URL, down: downURL}
		tests := map[string]struct {
			dataSource, config, flag string // up, down, or "" (not set)
			measured                 bool
		}{
			"a DataSource url alone is read":                         {dataSource: up, measured: true},
			"a DataSource url that is down alone fails the SLO":      {dataSource: down},
			"the flag beats a DataSource url that is down":           {dataSource: down, flag: up, measured: true},
			"the config beats a DataSource url that is down":         {dataSource: down, config: up, measured: true},
			"the config beats a DataSource url that works":           {dataSource: up, config: down},
			"the flag beats a config and a DataSource that are down": {dataSource: down, config: down, flag: up, measured: true},
			"the flag beats a config and a DataSource that work":     {dataSource: up, config: up, flag: down},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				args := []string{"budget", "--at", at, "-o", "json"}
				env := map[string]string{}
				if tc.config != "" {
					env["SLOGATE_TEST_PROMETHEUS"] = urls[tc.config]
					args = append(args, "--config", "testdata/budget/config.yaml")
				}
				if tc.flag != "" {
					args = append(args, "--prometheus", urls[tc.flag])
				}
				args = append(args, dsFile(urls[tc.dataSource]))
				r := runCLI(t, env, args...)
				got := decodeStatuses(t, r.stdout)
				if len(got) != 1 {
					t.Fatalf("%d statuses, want 1 (exit %d, err %v)\n%s", len(got), r.code, r.err, r.stderr)
				}
				st := got["checkout-availability"]
				if tc.measured {
					if r.code != exitOK {
						t.Fatalf("exit code %d, want 0: errors %+v", r.code, st.Errors)
					}
					checkStatus(t, st, checkoutAvailability)
					return
				}
				if r.code != exitFailed {
					t.Fatalf("exit code %d, want %d (the winning source is down)", r.code, exitFailed)
				}
				if st.ErrorBudget.Remaining != nil || len(st.Errors) != len(allWindows) {
					t.Errorf("remaining %v with %d errors, want null with %d", st.ErrorBudget.Remaining, len(st.Errors), len(allWindows))
				}
				for _, e := range st.Errors {
					if e.NoData {
						t.Errorf("errors[%s]: a source that is down is not missing data: %s", e.Window, e.Error)
					}
				}
			})
		}
	})
}

func TestBudgetUsage(t *testing.T) {
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown-key.yaml")
	if err := os.WriteFile(unknownKey, []byte("sources:\n  prometheus: {url: http://127.0.0.1:9090, colour: blue}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	slos := filepath.Join(budgetSLOs, "checkout.yaml")
	tests := map[string]struct {
		args       []string
		env        map[string]string
		wantCode   int
		wantStderr string // in the flag package's messages
		wantErr    string // in the error run returns
	}{
		"an unknown flag exits 2": {
			args: []string{"budget", "--colour", "blue", slos}, wantCode: exitUsage,
			wantStderr: "flag provided but not defined: -colour",
		},
		"an output other than table or json exits 2": {
			args: []string{"budget", "-o", "yaml", slos}, wantCode: exitUsage, wantErr: `-o "yaml"`,
		},
		"an --at that is not an RFC 3339 time exits 2": {
			args: []string{"budget", "--at", "2026-11-01", slos}, wantCode: exitUsage, wantErr: "RFC 3339",
		},
		"a --timeout that is not a duration exits 2": {
			args: []string{"budget", "--timeout", "soon", slos}, wantCode: exitUsage,
			wantStderr: `invalid value "soon" for flag -timeout`,
		},
		"no SLO files exits 2": {
			args: []string{"budget", "--prometheus", "http://127.0.0.1:9090"}, wantCode: exitUsage,
			wantErr: "no SLO files given",
		},
		"a Prometheus URL that is not http exits 2": {
			args: []string{"budget", "--prometheus", "ftp://127.0.0.1:9090", slos}, wantCode: exitUsage,
			wantErr: "scheme must be http or https",
		},
		"a config file that does not exist exits 2": {
			args: []string{"budget", "--config", filepath.Join(dir, "missing.yaml"), slos}, wantCode: exitUsage,
			wantErr: "missing.yaml",
		},
		"a config with an unknown key exits 2": {
			args: []string{"budget", "--config", unknownKey, slos}, wantCode: exitUsage,
			wantErr: "colour",
		},
		"a config naming a variable that is not set exits 2": {
			args: []string{"budget", "--config", "testdata/budget/config.yaml", slos}, wantCode: exitUsage,
			wantErr: "${SLOGATE_TEST_PROMETHEUS} is not set",
		},
		"-h prints the flags and exits 0": {
			args: []string{"budget", "-h"}, wantCode: exitOK, wantStderr: "-prometheus",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, tc.env, tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("exit code %d, want %d (err %v)\nstderr:\n%s", r.code, tc.wantCode, r.err, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) {
				t.Errorf("stderr does not say %q:\n%s", tc.wantStderr, r.stderr)
			}
			if tc.wantErr != "" && (r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr)) {
				t.Errorf("error %v does not say %q", r.err, tc.wantErr)
			}
			if r.stdout != "" {
				t.Errorf("stdout is not empty:\n%s", r.stdout)
			}
		})
	}
}
