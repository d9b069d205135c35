package dora

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/slo"
)

// Impact is what one deploy cost: per SLO of its service, the error
// budget spent while it was the latest change and the burn rate in the
// hour before it against the hour after; and whether it counts as a
// change failure, and why.
type Impact struct {
	ChangeFailure Verdict     `json:"changeFailure"`
	SLOs          []SLOImpact `json:"slos"`
	// Sources says where the burns came from and what it cost.
	Sources Stats `json:"sources"`
}

// Verdict says whether a deploy counts as a change failure.
type Verdict struct {
	Counts bool `json:"counts"`
	// Kind is KindFailed, KindRolledBack or KindBurn when it counts.
	Kind       string     `json:"kind,omitempty"`
	SLO        string     `json:"slo,omitempty"`
	Start      *time.Time `json:"start,omitempty"`
	RestoredAt *time.Time `json:"restoredAt,omitempty"`
	Reason     string     `json:"reason"`
}

// SLOImpact is a deploy's cost to one SLO. A figure that could not be
// measured is null and Errors says why.
type SLOImpact struct {
	SLO string `json:"slo"`
	// Span is from the deploy's start until the next deploy, at most
	// the attribution limit after its finish (until the instant asked
	// while it runs).
	Span Span `json:"span"`
	// BudgetSpent is the error budget spent over Span as a share of the
	// budget of the SLO period ending at Span's end: bad events ÷
	// ((1 − target) × events of the period); for a raw SLI, the burn rate
	// over Span × its share of the period.
	BudgetSpent *float64 `json:"budgetSpent"`
	// BurnRateBefore is over the hour before the deploy started,
	// BurnRateAfter over the hour after it finished (after it started
	// while it runs), cut at the instant asked.
	Before         Span     `json:"before"`
	After          Span     `json:"after"`
	BurnRateBefore *float64 `json:"burnRateBefore"`
	BurnRateAfter  *float64 `json:"burnRateAfter"`
	Errors         []string `json:"errors,omitempty"`
}

// ImpactWindow is the length of the before and after burn-rate windows.
const ImpactWindow = time.Hour

// Impact measures what deploy i of history (one service and
// environment's deploys known at at, as Histories orders them) cost.
// Measurement failures are figures left null with their reason, never an
// error; the error is a failure to read the alert record.
func (h *History) Impact(ctx context.Context, history []slogate.Deploy, i int, attribution time.Duration, at time.Time) (Impact, error) {
	if attribution <= 0 {
		attribution = DefaultAttribution
	}
	d := history[i]
	span := AttributionSpan(history, i, attribution, at)
	burns, stats, err := h.Burns(ctx, d.Service, []Span{span}, at)
	if err != nil {
		return Impact{}, err
	}
	out := Impact{Sources: stats, SLOs: []SLOImpact{}}
	out.ChangeFailure = verdict(history, i, burns, attribution, at, span)
	if h.cfg.Counter == nil {
		return out, nil
	}
	after := d.StartedAt
	if d.Finished(at) {
		after = finishedAt(d)
	}
	for _, o := range h.cfg.Objectives(d.Service) {
		env := environments(o)
		if len(env) > 0 && env[0] != d.Environment {
			continue
		}
		out.SLOs = append(out.SLOs, h.sloImpact(ctx, o, span,
			Span{Start: d.StartedAt.Add(-ImpactWindow), End: d.StartedAt},
			Span{Start: after, End: minTime(after.Add(ImpactWindow), at)}))
		out.Sources.Queries += 4
	}
	return out, nil
}

func verdict(history []slogate.Deploy, i int, burns []Burn, attribution time.Duration, at time.Time, span Span) Verdict {
	d := history[i]
	if !d.Finished(at) {
		return Verdict{Reason: "the deploy has not finished: not counted yet"}
	}
	f, ok := Classify(history, d.ID, burns, attribution, at)
	if !ok {
		return Verdict{Reason: fmt.Sprintf("the deploy finished %s and no page-level burn of %s's SLOs began from its start to %s",
			d.Status, d.Service, span.End.Format(time.RFC3339))}
	}
	start := f.Start
	return Verdict{Counts: true, Kind: f.Kind, SLO: f.SLO, Start: &start, RestoredAt: f.RestoredAt, Reason: f.Reason}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (h *History) sloImpact(ctx context.Context, o slo.Objective, span, before, after Span) SLOImpact {
	im := SLOImpact{SLO: o.Name, Span: span, Before: before, After: after}
	type result struct {
		c   slo.Counts
		err error
	}
	period := o.Window.Range(span.End)
	ranges := map[string]slo.Range{
		"span":   {Start: span.Start, End: span.End},
		"period": period,
		"before": {Start: before.Start, End: before.End},
		"after":  {Start: after.Start, End: after.End},
	}
	results := map[string]result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for key, r := range ranges {
		wg.Go(func() {
			var res result
			if r.End.After(r.Start) {
				res.c, res.err = h.cfg.Counter.Counts(ctx, o.SLI, r, nil)
			} else {
				res.err = errors.New("the window has not begun")
			}
			mu.Lock()
			results[key] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	fail := func(what string, err error) { im.Errors = append(im.Errors, what+": "+err.Error()) }
	rate := func(key string) *float64 {
		res := results[key]
		if res.err != nil {
			fail(key, res.err)
			return nil
		}
		er, err := res.c.ErrorRatio()
		if err != nil {
			fail(key, err)
			return nil
		}
		v := slo.BurnRate(er, o.Target)
		return &v
	}
	im.BurnRateBefore, im.BurnRateAfter = rate("before"), rate("after")
	sp, pe := results["span"], results["period"]
	switch {
	case sp.err != nil:
		fail("span", sp.err)
	case !sp.c.Raw && pe.err == nil && pe.c.Total > 0:
		bad := sp.c.Total - sp.c.Good
		v := max(0, bad) / ((1 - o.Target) * pe.c.Total)
		im.BudgetSpent = &v
	default:
		// A raw SLI, or the period not measured: the burn rate over the
		// span times its share of the period.
		if b := rate("span"); b != nil {
			v := *b * float64(span.End.Sub(span.Start)) / float64(period.Duration())
			im.BudgetSpent = &v
		}
	}
	return im
}
