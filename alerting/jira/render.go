package jira

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/gate"
)

// document is an issue's description, rendered as Atlassian Document
// Format (Cloud) or plain text (Data Center) from the same blocks.
type document struct{ blocks []block }

// block is a paragraph (text), a bullet list (items) or a link.
type block struct {
	text  string
	items []string
	href  string
}

func (d document) text() string {
	var b strings.Builder
	for i, bl := range d.blocks {
		if i > 0 {
			b.WriteString("\n")
		}
		switch {
		case bl.href != "":
			fmt.Fprintf(&b, "[%s|%s]\n", bl.text, bl.href)
		case bl.items != nil:
			for _, it := range bl.items {
				b.WriteString("* " + it + "\n")
			}
		default:
			b.WriteString(bl.text + "\n")
		}
	}
	return b.String()
}

type node = map[string]any

func textNode(s string) node { return node{"type": "text", "text": s} }

func paragraph(content ...node) node { return node{"type": "paragraph", "content": content} }

// adf is the description as an Atlassian Document Format doc.
func (d document) adf() node {
	content := []node{}
	for _, bl := range d.blocks {
		switch {
		case bl.href != "":
			content = append(content, paragraph(node{"type": "text", "text": bl.text,
				"marks": []node{{"type": "link", "attrs": node{"href": bl.href}}}}))
		case bl.items != nil:
			items := make([]node, len(bl.items))
			for i, it := range bl.items {
				items[i] = node{"type": "listItem", "content": []node{paragraph(textNode(it))}}
			}
			content = append(content, node{"type": "bulletList", "content": items})
		default:
			content = append(content, paragraph(textNode(bl.text)))
		}
	}
	return node{"type": "doc", "version": 1, "content": content}
}

// render is the summary and description of e's issue; the same event
// renders the same bytes.
func render(e alerting.Event) (string, document) {
	var d document
	var summary string
	if e.Kind == alerting.KindDecision {
		summary = renderHalt(&d, e)
	} else {
		summary = renderBudget(&d, e)
	}
	for _, l := range e.Links {
		text := l.Text
		if text == "" {
			text = l.Href
		}
		d.blocks = append(d.blocks, block{text: text, href: l.Href})
	}
	return summary, d
}

func renderHalt(d *document, e alerting.Event) string {
	a := e.Decision
	subject := a.Service
	if a.Version != "" {
		subject += " " + a.Version
	}
	summary := fmt.Sprintf("slogate halted %s in %s", subject, a.Environment)
	d.blocks = append(d.blocks, block{text: summary + "."})
	if a.Reason != "" {
		d.blocks = append(d.blocks, block{text: "Reason: " + a.Reason})
	}
	var checks []string
	for _, c := range a.Checks {
		v := string(c.Verdict)
		if c.NoData {
			v += " (no data)"
		}
		line := fmt.Sprintf("%s %s: %s", c.Kind, c.SLO, v)
		if f := figures(c); f != "" {
			line += " — " + f
		}
		if c.Reason != "" {
			line += " — " + c.Reason
		}
		checks = append(checks, line)
	}
	if len(checks) > 0 {
		d.blocks = append(d.blocks, block{items: checks})
	}
	var facts []string
	if dep := e.DecisionDeploy; dep != nil {
		line := "Deploy " + dep.ID
		if dep.PreviousVersion != "" && dep.Version != "" {
			line += ": " + dep.PreviousVersion + " → " + dep.Version
		}
		if dep.Commit != "" {
			line += ", commit " + dep.Commit
		}
		if !dep.StartedAt.IsZero() {
			line += ", started " + dep.StartedAt.UTC().Format(time.RFC3339)
		}
		facts = append(facts, line)
		if dep.PipelineURL != "" {
			facts = append(facts, "Pipeline: "+dep.PipelineURL)
		}
	}
	ev := fmt.Sprintf("Evaluation %s at %s", a.EvaluationID, a.EvaluatedAt.UTC().Format(time.RFC3339))
	if a.Policy != "" {
		ev += ", policy " + a.Policy
	}
	d.blocks = append(d.blocks, block{items: append(facts, ev)})
	return summary
}

func renderBudget(d *document, e alerting.Event) string {
	bu := e.Budget
	st := bu.Status
	summary := fmt.Sprintf("Error budget of %s (%s) is spent", bu.SLO, bu.Service)
	name := bu.SLO
	if st.DisplayName != "" {
		name = st.DisplayName
	}
	head := fmt.Sprintf("The SLO %s of %s has spent its error budget", name, bu.Service)
	if bu.Period != "" {
		head += " for the period " + bu.Period
	}
	d.blocks = append(d.blocks, block{text: head + "."})
	figs := []string{"target " + pct(bu.Target), "window " + bu.Window, "budget remaining " + pct(bu.Remaining)}
	if st.SLI.Ratio != nil {
		figs = append(figs, "SLI "+pct(*st.SLI.Ratio))
	}
	if !st.EvaluatedAt.IsZero() {
		figs = append(figs, "evaluated at "+st.EvaluatedAt.UTC().Format(time.RFC3339))
	}
	for _, a := range st.Alerts {
		if a.Firing {
			figs = append(figs, fmt.Sprintf("firing: %s (%sx over %s and %s)", a.Severity, num(a.Factor), a.LongWindow, a.ShortWindow))
		}
	}
	d.blocks = append(d.blocks, block{items: figs})
	return summary
}

func figures(c gate.Check) string {
	var f []string
	if c.SLI != nil {
		f = append(f, "SLI "+pct(*c.SLI))
	}
	if c.Target != 0 {
		f = append(f, "target "+pct(c.Target))
	}
	if c.BurnRate != nil {
		f = append(f, "burn rate "+num(*c.BurnRate)+"x")
	}
	if c.BudgetRemaining != nil {
		f = append(f, "budget remaining "+pct(*c.BudgetRemaining))
	}
	return strings.Join(f, ", ")
}

func pct(f float64) string { return num(f*100) + "%" }

func num(f float64) string { return strconv.FormatFloat(math.Round(f*1e4)/1e4, 'f', -1, 64) }
