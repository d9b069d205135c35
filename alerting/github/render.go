package github

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
)

// render returns the title and markdown body of the issue of e, the body
// ending with the fingerprint marker. It is deterministic: the same event
// renders the same bytes.
func render(e alerting.Event, fp string) (title, body string) {
	var b strings.Builder
	switch e.Kind {
	case alerting.KindDecision:
		title = renderHalt(&b, e)
	default:
		title = renderBudget(&b, e)
	}
	renderLinks(&b, e.Links)
	b.WriteString("\n" + Marker(fp) + "\n")
	return title, b.String()
}

func renderHalt(b *strings.Builder, e alerting.Event) string {
	a := e.Decision
	subject := a.Service
	if a.Version != "" {
		subject += " " + a.Version
	}
	title := fmt.Sprintf("slogate halted %s in %s", subject, a.Environment)
	fmt.Fprintf(b, "slogate halted **%s** in **%s**.\n\n", md(subject), md(a.Environment))
	if a.Reason != "" {
		fmt.Fprintf(b, "**Reason:** %s\n\n", md(a.Reason))
	}
	if len(a.Checks) > 0 {
		b.WriteString("| check | SLO | verdict | figures | reason |\n|---|---|---|---|---|\n")
		for _, c := range a.Checks {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n",
				cell(c.Kind), cell(c.SLO), cell(verdict(c)), cell(figures(c)), cell(c.Reason))
		}
		b.WriteString("\n")
	}
	if d := e.DecisionDeploy; d != nil {
		line := "Deploy"
		if d.ID != "" {
			line += " `" + d.ID + "`"
		}
		var parts []string
		if d.PreviousVersion != "" && d.Version != "" {
			parts = append(parts, md(d.PreviousVersion)+" → "+md(d.Version))
		}
		if d.Strategy != "" {
			parts = append(parts, md(d.Strategy))
		}
		if d.Commit != "" {
			parts = append(parts, "commit "+md(d.Commit))
		}
		if !d.StartedAt.IsZero() {
			parts = append(parts, "started "+d.StartedAt.UTC().Format(time.RFC3339))
		}
		if len(parts) > 0 {
			line += ": " + strings.Join(parts, ", ")
		}
		b.WriteString("- " + line + "\n")
		if d.PipelineURL != "" {
			fmt.Fprintf(b, "- Pipeline: %s\n", d.PipelineURL)
		}
	}
	fmt.Fprintf(b, "- Evaluation `%s` at %s", a.EvaluationID, a.EvaluatedAt.UTC().Format(time.RFC3339))
	if a.Policy != "" {
		fmt.Fprintf(b, ", policy `%s`", a.Policy)
	}
	b.WriteString("\n")
	return title
}

func renderBudget(b *strings.Builder, e alerting.Event) string {
	bu := e.Budget
	st := bu.Status
	title := fmt.Sprintf("Error budget of %s (%s) is spent", bu.SLO, bu.Service)
	name := bu.SLO
	if st.DisplayName != "" {
		name = st.DisplayName
	}
	fmt.Fprintf(b, "The SLO **%s** of **%s** has spent its error budget", md(name), md(bu.Service))
	if bu.Period != "" {
		fmt.Fprintf(b, " for the period `%s`", bu.Period)
	}
	b.WriteString(".\n\n| figure | value |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(b, "| %s | %s |\n", k, cell(v)) }
	row("target", pct(bu.Target))
	row("window", bu.Window)
	row("budget remaining", pct(bu.Remaining))
	if st.ErrorBudget.Consumed != nil {
		row("budget consumed", pct(*st.ErrorBudget.Consumed))
	}
	if st.SLI.Ratio != nil {
		v := pct(*st.SLI.Ratio)
		if st.SLI.Good != nil && st.SLI.Total != nil {
			v += fmt.Sprintf(" (%s good of %s)", num(*st.SLI.Good), num(*st.SLI.Total))
		}
		row("SLI", v)
	}
	if !st.Range.Start.IsZero() {
		row("measured", st.Range.Start.UTC().Format(time.RFC3339)+" – "+st.Range.End.UTC().Format(time.RFC3339))
	}
	if !st.EvaluatedAt.IsZero() {
		row("evaluated at", st.EvaluatedAt.UTC().Format(time.RFC3339))
	}
	if len(st.BurnRates) > 0 {
		b.WriteString("\n| window | burn rate |\n|---|---|\n")
		for _, w := range windows(st.BurnRates) {
			v := "not measured"
			if r := st.BurnRates[w]; r != nil {
				v = num(*r) + "x"
			}
			fmt.Fprintf(b, "| %s | %s |\n", w, v)
		}
	}
	var firing []string
	for _, a := range st.Alerts {
		if a.Firing {
			firing = append(firing, fmt.Sprintf("%s (%sx over %s and %s)", a.Severity, num(a.Factor), a.LongWindow, a.ShortWindow))
		}
	}
	if len(firing) > 0 {
		fmt.Fprintf(b, "\nFiring: %s.\n", strings.Join(firing, ", "))
	}
	for _, me := range st.Errors {
		fmt.Fprintf(b, "\nNot measured (%s): %s\n", me.Window, md(me.Error))
	}
	b.WriteString("\n")
	return title
}

func renderLinks(b *strings.Builder, links []alerting.Link) {
	for _, l := range links {
		text := l.Text
		if text == "" {
			text = l.Href
		}
		fmt.Fprintf(b, "- [%s](%s)\n", md(text), l.Href)
	}
}

func verdict(c gate.Check) string {
	v := string(c.Verdict)
	if c.NoData {
		v += " (no data)"
	}
	if c.Override != nil {
		v += " (overridden)"
	}
	return v
}

// figures: "SLI 99.37% (9937 good of 10000), target 99.9%, burn rate 6.3x (max 2x), budget remaining 41%".
func figures(c gate.Check) string {
	var f []string
	if c.SLI != nil {
		s := "SLI " + pct(*c.SLI)
		if c.Good != nil && c.Total != nil {
			s += fmt.Sprintf(" (%s good of %s)", num(*c.Good), num(*c.Total))
		}
		f = append(f, s)
	}
	if c.Target != 0 {
		f = append(f, "target "+pct(c.Target))
	}
	if c.BurnRate != nil {
		s := "burn rate " + num(*c.BurnRate) + "x"
		if c.MaxBurnRate != nil {
			s += " (max " + num(*c.MaxBurnRate) + "x)"
		}
		f = append(f, s)
	}
	if c.BudgetRemaining != nil {
		f = append(f, "budget remaining "+pct(*c.BudgetRemaining))
	}
	for _, s := range []*gate.Sample{c.Baseline, c.Canary} {
		if s != nil {
			f = append(f, fmt.Sprintf("%s error ratio %s (%s of %s)", s.Version, pct(s.ErrorRatio), num(s.Total-s.Good), num(s.Total)))
		}
	}
	if c.Window != nil {
		f = append(f, "since "+c.Window.Start.UTC().Format(time.RFC3339))
	}
	if len(f) == 0 {
		return "—"
	}
	return strings.Join(f, ", ")
}

// windows orders burn-rate windows by duration, unparsable ones last.
func windows(m map[string]*float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	dur := func(s string) time.Duration {
		d, err := slo.ParseDuration(s)
		if err != nil {
			return 1<<63 - 1
		}
		return d
	}
	slices.SortFunc(keys, func(a, b string) int {
		if da, db := dur(a), dur(b); da != db {
			if da < db {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return keys
}

// pct: 0.9937 → "99.37%", to four decimals.
func pct(f float64) string { return num(f*100) + "%" }

// num prints f with at most four decimals, without float noise.
func num(f float64) string {
	return strconv.FormatFloat(math.Round(f*1e4)/1e4, 'f', -1, 64)
}

// cell makes s safe in a markdown table cell.
func cell(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return strings.ReplaceAll(md(s), "|", `\|`)
}

// md keeps text from closing the fingerprint comment or opening HTML.
func md(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(s)
}
