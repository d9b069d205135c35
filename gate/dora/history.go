package dora

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slogate/slogate/slo"
)

// Counter measures an SLI over a range, narrowed to a scope.
// *gate.Measurer satisfies it (its limit on queries in flight and its
// deadline apply).
type Counter interface {
	Counts(ctx context.Context, sli slo.SLI, r slo.Range, scope slo.Scope) (slo.Counts, error)
}

// RecordedBurn is a page-level burn of an SLO as slogate's alert tracker
// recorded it (End zero: still firing).
type RecordedBurn struct {
	SLO        string
	Start, End time.Time
}

// Record reads the page-level burns slogate's alert tracker recorded.
type Record interface {
	// PageBurns returns the recorded page-level burns that had not ended
	// by from and had begun by to, and since: the instant from which the
	// record holds (zero: nothing recorded). Before since, burns are
	// measured.
	PageBurns(ctx context.Context, from, to time.Time) (burns []RecordedBurn, since time.Time, err error)
}

// Defaults of HistoryConfig.
const (
	DefaultStep         = 5 * time.Minute
	DefaultMaxQueries   = 2000
	DefaultMaxExtension = 24 * time.Hour
)

// HistoryConfig configures a History. Objectives is required.
type HistoryConfig struct {
	// Objectives are the SLOs of a service in force.
	Objectives func(service string) []slo.Objective
	// Record is the alert tracker's record; nil: nothing recorded.
	Record Record
	// Counter measures past instants before the record; nil: nothing is
	// measured, only the record is read.
	Counter Counter
	// Step is the spacing of the instants measured (default 5m, the
	// shortest page window). A search that would pass MaxQueries measures
	// at a multiple of it.
	Step time.Duration
	// MaxQueries bounds the queries to the source of one search (default
	// 2000).
	MaxQueries int
	// MaxExtension bounds how far past the spans asked a burn found in
	// them is followed to its end (default 24h).
	MaxExtension time.Duration
}

// History finds the page-level burns of services' SLOs and measures what
// deploys cost. It is safe for concurrent use.
type History struct{ cfg HistoryConfig }

// NewHistory checks cfg.
func NewHistory(cfg HistoryConfig) (*History, error) {
	if cfg.Objectives == nil {
		return nil, errors.New("dora: objectives are required")
	}
	if cfg.Step <= 0 {
		cfg.Step = DefaultStep
	}
	if cfg.MaxQueries <= 0 {
		cfg.MaxQueries = DefaultMaxQueries
	}
	if cfg.MaxExtension <= 0 {
		cfg.MaxExtension = DefaultMaxExtension
	}
	return &History{cfg: cfg}, nil
}

// Stats says where the burns came from and what finding them cost.
type Stats struct {
	// RecordedSince is where the alert tracker's record begins; before
	// it, burns are measured. Null: nothing is recorded.
	RecordedSince *time.Time `json:"recordedSince"`
	// Recorded and Measured count the burns from each.
	Recorded int `json:"recorded"`
	Measured int `json:"measured"`
	// Queries is the number of queries sent to the sources, at most
	// QueryLimit per search.
	Queries    int `json:"queries"`
	QueryLimit int `json:"queryLimit"`
	// Step is the spacing, in seconds, of the instants measured (0: none
	// measured).
	Step float64 `json:"step"`
	// Unmeasured counts instants whose page condition could not be
	// measured (no data, a source fault): read as not burning.
	Unmeasured int `json:"unmeasured"`
	// Truncated: the query limit cut a search, so a burn may be missing or
	// its end unknown.
	Truncated bool     `json:"truncated"`
	Errors    []string `json:"errors,omitempty"`
}

// Add sums the figures of two searches.
func (s Stats) Add(o Stats) Stats {
	if s.RecordedSince == nil {
		s.RecordedSince = o.RecordedSince
	}
	s.Recorded += o.Recorded
	s.Measured += o.Measured
	s.Queries += o.Queries
	s.QueryLimit = max(s.QueryLimit, o.QueryLimit)
	s.Step = max(s.Step, o.Step)
	s.Unmeasured += o.Unmeasured
	s.Truncated = s.Truncated || o.Truncated
	s.Errors = append(s.Errors, o.Errors...)
	return s
}

const maxErrors = 5

// Burns finds the page-level burns of service's SLOs that begin within
// the spans (or were going at their start), followed to their end, as
// known at at: from the alert tracker's record, and by measuring the page
// tiers' condition at past instants where the record does not reach.
func (h *History) Burns(ctx context.Context, service string, spans []Span, at time.Time) ([]Burn, Stats, error) {
	st := Stats{QueryLimit: h.cfg.MaxQueries}
	objs := h.cfg.Objectives(service)
	spans = clip(spans, time.Time{}, at)
	if len(objs) == 0 || len(spans) == 0 {
		return nil, st, nil
	}
	from, to := spans[0].Start, spans[0].End
	for _, s := range spans {
		if s.End.After(to) {
			to = s.End
		}
	}
	var out []Burn
	measureBefore := at
	if h.cfg.Record != nil {
		rec, since, err := h.cfg.Record.PageBurns(ctx, from, at)
		if err != nil {
			return nil, st, fmt.Errorf("dora: recorded burns: %w", err)
		}
		if !since.IsZero() {
			since = since.UTC()
			st.RecordedSince, measureBefore = &since, since
		}
		for _, r := range rec {
			o, ok := find(objs, r.SLO)
			if !ok || r.Start.After(to) {
				continue
			}
			out = append(out, Burn{Service: service, SLO: r.SLO, Environments: environments(o), Start: r.Start.UTC(), End: r.End.UTC()})
			st.Recorded++
		}
	}
	if h.cfg.Counter != nil {
		if todo := clip(spans, time.Time{}, measureBefore); len(todo) > 0 {
			m := &measure{h: h, at: at, limit: int64(h.cfg.MaxQueries)}
			for _, o := range objs {
				bs := m.burns(ctx, o, todo)
				out = append(out, bs...)
				st.Measured += len(bs)
			}
			st.Queries, st.Unmeasured, st.Truncated = int(m.queries.Load()), int(m.unmeasured.Load()), m.truncated.Load()
			st.Step = m.step.Seconds()
			st.Errors = m.errs
			if err := ctx.Err(); err != nil {
				return nil, st, fmt.Errorf("dora: measuring past burns: %w", context.Cause(ctx))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Start.Before(out[j].Start) || out[i].Start.Equal(out[j].Start) && out[i].SLO < out[j].SLO
	})
	return out, st, nil
}

// clip cuts spans to [from, to] (a zero from: no lower bound), drops the
// empty ones and sorts them by start.
func clip(spans []Span, from, to time.Time) []Span {
	out := make([]Span, 0, len(spans))
	for _, s := range spans {
		if !from.IsZero() && s.Start.Before(from) {
			s.Start = from
		}
		if s.End.After(to) {
			s.End = to
		}
		if s.End.Before(s.Start) {
			continue
		}
		out = append(out, Span{Start: s.Start.UTC(), End: s.End.UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

func find(objs []slo.Objective, name string) (slo.Objective, bool) {
	for _, o := range objs {
		if o.Name == name {
			return o, true
		}
	}
	return slo.Objective{}, false
}

// EnvironmentLabel is the SLO label that names the environment an SLO
// measures; without it, its burns count in every environment.
const EnvironmentLabel = "environment"

func environments(o slo.Objective) []string {
	if e := o.Labels[EnvironmentLabel]; e != "" {
		return []string{e}
	}
	return nil
}

// pageTiers are an objective's page tiers and the windows they read.
func pageTiers(o slo.Objective) ([]slo.Tier, []time.Duration) {
	var tiers []slo.Tier
	var windows []time.Duration
	for _, t := range o.Tiers() {
		if t.Severity != slo.SeverityPage {
			continue
		}
		tiers = append(tiers, t)
		for _, w := range []time.Duration{t.LongWindow, t.ShortWindow} {
			if !slices.Contains(windows, w) {
				windows = append(windows, w)
			}
		}
	}
	return tiers, windows
}

// measure is one search's measuring of past instants, under one query
// limit.
type measure struct {
	h          *History
	at         time.Time
	limit      int64
	queries    atomic.Int64
	unmeasured atomic.Int64
	truncated  atomic.Bool
	step       time.Duration

	mu   sync.Mutex
	errs []string
}

func (m *measure) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.errs) < maxErrors {
		m.errs = append(m.errs, err.Error())
	}
}

// take reserves n queries, or reports that the limit is reached.
func (m *measure) take(n int) bool {
	if m.queries.Add(int64(n)) > m.limit {
		m.queries.Add(int64(-n))
		m.truncated.Store(true)
		return false
	}
	return true
}

// state of an instant: firing, not firing, or unknown (read as not).
type state int8

const (
	unknown state = iota
	calm
	firing
)

// firingAt measures whether any page tier of o fires at t.
func (m *measure) firingAt(ctx context.Context, o slo.Objective, tiers []slo.Tier, windows []time.Duration, t time.Time) state {
	burn := make(map[time.Duration]*float64, len(windows))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, w := range windows {
		wg.Go(func() {
			c, err := m.h.cfg.Counter.Counts(ctx, o.SLI, slo.Range{Start: t.Add(-w), End: t}, nil)
			var b *float64
			if err == nil {
				var er float64
				if er, err = c.ErrorRatio(); err == nil {
					v := slo.BurnRate(er, o.Target)
					b = &v
				}
			}
			if err != nil && !errors.Is(err, slo.ErrNoData) {
				m.fail(fmt.Errorf("%s over %s at %s: %w", o.Name, slo.FormatDuration(w), t.Format(time.RFC3339), err))
			}
			mu.Lock()
			burn[w] = b
			mu.Unlock()
		})
	}
	wg.Wait()
	period := o.Window.Period(t)
	known := true
	for _, tier := range tiers {
		long, short := burn[tier.LongWindow], burn[tier.ShortWindow]
		if long == nil || short == nil {
			known = false
			continue
		}
		if tier.Firing(period, *long, *short) {
			return firing
		}
	}
	if !known {
		m.unmeasured.Add(1)
		return unknown
	}
	return calm
}

// burns measures o's page condition on a grid of instants over the spans
// (from the grid instant at or before each span's start, so that a burn
// going at a deploy's start is seen as begun before it), then follows each
// burn still going at the last instant to its end.
func (m *measure) burns(ctx context.Context, o slo.Objective, spans []Span) []Burn {
	tiers, windows := pageTiers(o)
	if len(tiers) == 0 {
		return nil
	}
	perInstant := len(windows)
	step := m.h.cfg.Step
	grid := func(step time.Duration) []time.Time {
		var out []time.Time
		seen := map[int64]bool{}
		for _, s := range spans {
			for t := s.Start.Truncate(step); !t.After(s.End); t = t.Add(step) {
				if !seen[t.UnixNano()] {
					seen[t.UnixNano()] = true
					out = append(out, t)
				}
			}
		}
		slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
		return out
	}
	instants := grid(step)
	// Leave a quarter of what remains to follow burns to their end.
	budget := (m.limit - m.queries.Load()) * 3 / 4
	for int64(len(instants)*perInstant) > budget && step < 7*24*time.Hour {
		step *= 2
		instants = grid(step)
	}
	m.step = max(m.step, step)
	states := make([]state, len(instants))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, t := range instants {
		if ctx.Err() != nil || !m.take(perInstant) {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			states[i] = m.firingAt(ctx, o, tiers, windows, t)
		})
	}
	wg.Wait()

	var out []Burn
	env := environments(o)
	for i := 0; i < len(instants); i++ {
		if states[i] != firing {
			continue
		}
		b := Burn{Service: o.Service, SLO: o.Name, Environments: env, Start: instants[i]}
		j := i
		for j+1 < len(instants) && states[j+1] == firing && instants[j+1].Sub(instants[j]) == step {
			j++
		}
		switch {
		case j+1 < len(instants) && instants[j+1].Sub(instants[j]) == step:
			b.End = instants[j+1] // the first instant seen calm
		default:
			b.End = m.follow(ctx, o, tiers, windows, instants[j], step)
		}
		out = append(out, b)
		i = j
	}
	return out
}

// follow measures instants after last, one step apart, until the page
// condition is calm (its end), at is passed (still going: zero), the
// extension is spent or the query limit reached (end unknown: zero,
// truncated).
func (m *measure) follow(ctx context.Context, o slo.Objective, tiers []slo.Tier, windows []time.Duration, last time.Time, step time.Duration) time.Time {
	stop := last.Add(m.h.cfg.MaxExtension)
	for t := last.Add(step); !t.After(m.at); t = t.Add(step) {
		if t.After(stop) {
			m.truncated.Store(true)
			return time.Time{}
		}
		if ctx.Err() != nil || !m.take(len(windows)) {
			return time.Time{}
		}
		if m.firingAt(ctx, o, tiers, windows, t) != firing {
			return t
		}
	}
	return time.Time{}
}
