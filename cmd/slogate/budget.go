package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
)

func runBudget(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "budget", "budget [--prometheus URL] [--elasticsearch URL] [--tempo URL] [--config FILE] [--at TIME] [-o table|json] PATH...")
	var flags sourceFlags
	fs.StringVar(&flags.prometheus, "prometheus", "", "Prometheus-compatible API URL (overrides the config and DataSources)")
	fs.StringVar(&flags.elasticsearch, "elasticsearch", "", "Elasticsearch URL (overrides the config and DataSources)")
	fs.StringVar(&flags.tempo, "tempo", "", "Tempo URL (overrides the config and DataSources)")
	configPath := fs.String("config", "", "slogate config file: its sources are used")
	atFlag := fs.String("at", "", "evaluate at this instant (RFC 3339) instead of now")
	output := fs.String("o", "table", "output: table or json (the objects of GET /v1/slos/{name}, as an array)")
	timeout := fs.Duration("timeout", 30*time.Second, "deadline of each measurement")
	concurrency := fs.Int("concurrency", 16, "measurements in flight at once")
	verbose := fs.Bool("v", false, "log each source's warnings and errors to standard error")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return usageError("-o %q: want table or json", *output)
	}
	at := time.Now().UTC()
	if *atFlag != "" {
		if at, err = time.Parse(time.RFC3339, *atFlag); err != nil {
			return usageError("--at %q: want an RFC 3339 time such as 2026-11-21T12:00:00Z", *atFlag)
		}
	}
	cfg := &Config{}
	if *configPath != "" {
		if cfg, err = LoadConfig(*configPath, env.getenv); err != nil {
			return usageError("%v", err)
		}
		if len(paths) == 0 {
			paths = cfg.SLOs
		}
	}
	set, err := loadSLOs(paths)
	if err != nil {
		return invalidSLOs(env, err)
	}
	level := slog.LevelError + 1
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))
	if *configPath == "" {
		// Like `slogate serve` with no config: Prometheus on localhost.
		flags.fallbackPrometheus = defaultPrometheus
	}
	mux, err := buildSources(cfg, flags, set, logger)
	if err != nil {
		return usageError("%v", err)
	}
	m, err := gate.NewMeasurer(mux, gate.MeasurerConfig{Concurrency: *concurrency, Timeout: *timeout})
	if err != nil {
		return err
	}
	statuses := m.Statuses(ctx, set.Objectives, at)
	if err := ctx.Err(); err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("interrupted")}
	}
	failed := 0
	for _, st := range statuses {
		if len(st.Errors) > 0 {
			failed++
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(statuses); err != nil {
			return err
		}
	} else {
		printBudgetTable(env.stdout, statuses, at, paletteFor(env.stdout, env.getenv), termWidth(env.getenv))
	}
	if failed > 0 {
		if *output == "table" {
			fmt.Fprintf(env.stderr, "%d of %d SLOs could not be fully measured\n", failed, len(statuses))
		}
		return &exitError{code: exitFailed}
	}
	return nil
}

// printBudgetTable prints the statuses worst budget first, unmeasured ones
// on top as error rows, one line each: what went wrong is a note below the
// table, a failed source said once for all the SLOs it fails.
func printBudgetTable(w io.Writer, statuses []slo.Status, at time.Time, pal palette, width int) {
	var n notes
	sorted := append([]slo.Status(nil), statuses...)
	rank := func(s slo.Status) float64 {
		if !s.Measured() {
			return math.Inf(-1)
		}
		return *s.ErrorBudget.Remaining
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		ri, rj := rank(sorted[i]), rank(sorted[j])
		if ri != rj {
			return ri < rj
		}
		return sorted[i].Name < sorted[j].Name
	})
	fmt.Fprintf(w, "SLO budgets at %s\n\n", at.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "SLO\tSERVICE\tTARGET\tWINDOW\t%s\tBUDGET LEFT\t\tBURN 5m\t1h\t6h\t1d\t3d\tALERTS\n", pal.paint(ansiPlain, "SLI"))
	for _, s := range sorted {
		burn := func(k string) string {
			if b := s.BurnRates[k]; b != nil {
				return fmt.Sprintf("%.2fx", *b)
			}
			return "?"
		}
		if !s.Measured() {
			// Every cell filled, the error in the last one: a row with
			// fewer cells would end tabwriter's column block and misalign
			// the header with the rows below it.
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t-\t-\t%s\t%s\t%s\t%s\t%s\t%s\n",
				s.Name, s.Service, pct(s.Target), s.Window, pal.verdict("ERROR"),
				burn("5m"), burn("1h"), burn("6h"), burn("1d"), burn("3d"), errorNote(&n, s))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			s.Name, s.Service, pct(s.Target), s.Window, pal.paint(ansiPlain, pct(*s.SLI.Ratio)),
			bar(*s.ErrorBudget.Remaining), fmt.Sprintf("%.1f%%", *s.ErrorBudget.Remaining*100),
			burn("5m"), burn("1h"), burn("6h"), burn("1d"), burn("3d"), alertsCell(s, pal))
	}
	tw.Flush()
	n.print(w, width)
}

// errorNote is an error row's last cell: what failed, with the mark of
// its note. A source that failed is one note for every SLO it failed
// ("Prometheus at URL: connection refused"); no data is a note per SLO,
// with its query.
func errorNote(n *notes, s slo.Status) string {
	for _, e := range s.Errors {
		if !e.NoData {
			return "source error " + n.add(api.PlainSourceError(s.Source, e.Error))
		}
	}
	if len(s.Errors) > 0 {
		return "no data " + n.add(s.Name+": "+firstError(s))
	}
	return "not measured"
}

// firstError is the error of the SLO window's measurement, on one line.
func firstError(s slo.Status) string {
	msg := "not measured"
	for i, e := range s.Errors {
		if e.Window == "period" || i == len(s.Errors)-1 {
			msg = e.Error
			if e.Window != "period" {
				msg = e.Window + ": " + msg
			}
			break
		}
	}
	return strings.ReplaceAll(msg, "\n", "; ")
}

// pct writes a ratio as a percentage with the digits a target needs.
func pct(v float64) string {
	s := fmt.Sprintf("%.4f", v*100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

// bar draws the budget left on 20 cells: # left, . spent; overspent is all
// dots with a '!' in front.
func bar(remaining float64) string {
	const cells = 20
	if remaining <= 0 {
		return "!" + strings.Repeat(".", cells)
	}
	n := int(math.Round(math.Min(remaining, 1) * cells))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", cells-n) + "]"
}

func alertsCell(s slo.Status, pal palette) string {
	var out []string
	unknown := false
	for _, a := range s.Alerts {
		switch {
		case a.Firing:
			out = append(out, fmt.Sprintf("%s %s/%s>%.3gx %s", strings.ToUpper(string(a.Severity)), a.LongWindow, a.ShortWindow, a.Factor, pal.verdict("FIRING")))
		case a.Unknown:
			unknown = true
		}
	}
	if len(out) == 0 {
		if unknown {
			return "unknown (a window was not measured)"
		}
		return "-"
	}
	return strings.Join(out, ", ")
}
