package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/slogate/slogate/slo"
)

// Board keeps every objective's latest figures: it measures them all on a
// schedule (robfig/cron), never two runs at once, each run under a
// deadline, and exports them as Prometheus gauges. A failed source is an
// error of its objectives only.
type Board struct {
	m       *Measurer
	slos    func() *slo.Set
	clock   func() time.Time
	timeout time.Duration
	logger  *slog.Logger
	// OnRun, when set, is called after each run with its statuses (alerts
	// and notifications hang here).
	onRun func(ctx context.Context, statuses []slo.Status)
	// leader, when set, is asked before each run; a run is skipped where
	// it says no (several replicas: one evaluates).
	leader func(ctx context.Context) bool
	// onLeader, when set, is called when this replica becomes the leader.
	onLeader                   func(ctx context.Context)
	leaderTimeout, leaderCheck time.Duration
	wasLeader                  bool  // at the previous run (Run is serialised)
	notReadyErr                error // why an objective has no figures here
	// shared, when set, shares the figures between replicas (shared.go).
	shared   SharedFigures
	replica  string
	interval time.Duration

	mu       sync.RWMutex
	statuses map[string]slo.Status
	lastRun  time.Time
	// from, measuredAt and measuredBy describe the statuses served
	// (slo.Origin): this replica's run, or the leader's read from shared;
	// checkedAt is the last read of shared.
	from                  string
	measuredAt, checkedAt time.Time
	measuredBy            string
	refreshing            sync.Mutex
	running               sync.Mutex
	cache                 *windowCache

	metrics *boardMetrics
}

// BoardConfig configures a Board.
type BoardConfig struct {
	Measurer *Measurer
	SLOs     func() *slo.Set
	// Timeout bounds one run (default 50s).
	Timeout  time.Duration
	Clock    func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
	OnRun    func(ctx context.Context, statuses []slo.Status)
	Leader   func(ctx context.Context) bool
	// OnLeader, when set, is called at the first run this replica leads
	// after not leading (and at its first run): reload what other leaders
	// saved.
	OnLeader func(ctx context.Context)
	// LeaderTimeout bounds one leader check (default 5s); LeaderCheck is
	// how often a run in progress checks it still leads (default 5s): a
	// lost leadership cancels the run, which then publishes nothing.
	LeaderTimeout, LeaderCheck time.Duration
	// AgeDivisor sizes how long a run may reuse a window's figure from an
	// earlier run: W/AgeDivisor for a window of length W (default
	// DefaultAgeDivisor); negative measures every window at every run.
	AgeDivisor int
	// Shared, when set, shares the figures between replicas: the leader
	// saves each run's statuses in it, and a replica that follows serves
	// the latest saved ones (Origin "leader", with their age), reading it
	// at its own scheduled runs and, for requests, at most every 5s (or
	// interval). A follower never exports them as its own gauges. Without
	// Shared a follower serves no figures (ErrFollower).
	Shared SharedFigures
	// Replica is this replica's id, saved with its figures.
	Replica string
	// Interval is the schedule's interval (default DefaultInterval):
	// figures older than StaleAfterIntervals of it are stale.
	Interval time.Duration
}

type boardMetrics struct {
	sli, remaining, burn, firing *prometheus.GaugeVec
	duration                     prometheus.Histogram
	sourceErrors                 *prometheus.CounterVec
	runs                         *prometheus.CounterVec
	saves                        *prometheus.CounterVec
	leading                      prometheus.Gauge
}

// NewBoard returns a Board; call Run once or Start for the schedule.
func NewBoard(cfg BoardConfig) (*Board, error) {
	if cfg.Measurer == nil || cfg.SLOs == nil {
		return nil, fmt.Errorf("gate: board needs a measurer and SLOs")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 50 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaderTimeout <= 0 {
		cfg.LeaderTimeout = DefaultLeaderTimeout
	}
	if cfg.LeaderCheck <= 0 {
		cfg.LeaderCheck = DefaultLeaderCheck
	}
	if cfg.AgeDivisor == 0 {
		cfg.AgeDivisor = DefaultAgeDivisor
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	b := &Board{
		cache:    newWindowCache(cfg.AgeDivisor),
		onLeader: cfg.OnLeader, leaderTimeout: cfg.LeaderTimeout, leaderCheck: cfg.LeaderCheck, notReadyErr: ErrNotReady,
		m: cfg.Measurer, slos: cfg.SLOs, clock: cfg.Clock, timeout: cfg.Timeout,
		logger: cfg.Logger.With("component", "evaluation"), onRun: cfg.OnRun, leader: cfg.Leader,
		statuses: map[string]slo.Status{},
		shared:   cfg.Shared, replica: cfg.Replica, interval: cfg.Interval, from: slo.OriginMeasured,
	}
	labels := []string{"service", "slo"}
	b.metrics = &boardMetrics{
		sli: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slogate_slo_sli", Help: "SLI (good ratio) over the SLO window at the last evaluation.",
		}, labels),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slogate_slo_error_budget_remaining", Help: "Fraction of the error budget left (negative when overspent).",
		}, labels),
		burn: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slogate_slo_burn_rate", Help: "Burn rate over a window at the last evaluation.",
		}, append(labels, "window")),
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slogate_slo_alert_firing", Help: "1 when a burn-rate tier of the severity fires.",
		}, append(labels, "severity")),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "slogate_evaluation_duration_seconds", Help: "Duration of a scheduled evaluation of every SLO.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_evaluation_source_errors_total", Help: "Measurements that failed, by source type (no data excluded).",
		}, []string{"source"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_evaluation_runs_total", Help: "Scheduled evaluations, by outcome (ok, skipped_overlap, skipped_follower, lost_leadership: cancelled mid-run).",
		}, []string{"outcome"}),
		saves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_evaluation_figures_saved_total", Help: "Saves of the leader's figures for the followers, by outcome (ok, failed).",
		}, []string{"outcome"}),
		leading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slogate_evaluation_leader", Help: "1 when this replica led its latest scheduled evaluation (only the leader exports slogate_slo_*), 0 when it follows.",
		}),
	}
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{b.metrics.sli, b.metrics.remaining, b.metrics.burn, b.metrics.firing,
			b.metrics.duration, b.metrics.sourceErrors, b.metrics.runs, b.metrics.saves, b.metrics.leading} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("gate: board metrics: %w", err)
			}
		}
	}
	return b, nil
}

// Start runs the board on a robfig/cron schedule ("@every 1m", "*/5 * * * *")
// until ctx ends, after one run at once. It returns when the schedule is
// set up; Stop waits for a run in progress.
func (b *Board) Start(ctx context.Context, spec string) (stop func(), err error) {
	c := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	if _, err := c.AddFunc(spec, func() { b.Run(ctx) }); err != nil {
		return nil, fmt.Errorf("evaluation.schedule %q: %w", spec, err)
	}
	go b.Run(ctx)
	c.Start()
	return func() { <-c.Stop().Done(); b.running.Lock(); b.running.Unlock() }, nil
}

// Run measures every objective once. A run that would overlap one in
// progress is skipped.
func (b *Board) Run(ctx context.Context) {
	if !b.running.TryLock() {
		b.metrics.runs.WithLabelValues("skipped_overlap").Inc()
		return
	}
	defer b.running.Unlock()
	if ctx.Err() != nil {
		return
	}
	if b.leader != nil {
		if !b.isLeader(ctx) {
			b.follow(ctx)
			b.metrics.runs.WithLabelValues("skipped_follower").Inc()
			return
		}
		b.lead(ctx)
	}
	b.metrics.leading.Set(1)
	ctx, cancel := context.WithTimeoutCause(ctx, b.timeout, fmt.Errorf("scheduled evaluation timed out after %s", b.timeout))
	defer cancel()
	ctx, lose := context.WithCancelCause(ctx)
	defer lose(nil)
	if b.leader != nil {
		go b.watchLeader(ctx, lose)
	}
	start := time.Now()
	at := b.clock().UTC()
	set := b.slos()
	statuses := b.measureAllScheduled(ctx, set.Objectives, at)
	elapsed := time.Since(start)
	if errors.Is(context.Cause(ctx), ErrLostLeadership) {
		// Another replica leads now: this run's figures and alerts are
		// not this replica's to publish.
		b.logger.WarnContext(ctx, "evaluation cancelled: leadership lost", "duration", elapsed.Round(time.Millisecond).String())
		b.metrics.runs.WithLabelValues("lost_leadership").Inc()
		b.follow(context.WithoutCancel(ctx))
		return
	}
	b.metrics.duration.Observe(elapsed.Seconds())
	b.metrics.runs.WithLabelValues("ok").Inc()

	fresh := make(map[string]slo.Status, len(statuses))
	failed := 0
	for _, st := range statuses {
		fresh[st.Name] = st
		b.export(st)
		for _, e := range st.Errors {
			if !e.NoData {
				b.metrics.sourceErrors.WithLabelValues(string(st.Source)).Inc()
			}
		}
		if len(st.Errors) > 0 {
			failed++
		}
	}
	b.mu.Lock()
	// Objectives removed from the files since the last run leave the board
	// and /metrics.
	for name, old := range b.statuses {
		if _, ok := fresh[name]; !ok {
			b.unexport(old)
		}
	}
	b.statuses, b.lastRun, b.notReadyErr = fresh, at, ErrNotReady
	b.from, b.measuredAt, b.measuredBy = slo.OriginMeasured, at, b.replica
	b.mu.Unlock()
	b.logger.InfoContext(ctx, "evaluated SLOs", "slos", len(statuses), "with_errors", failed, "duration", elapsed.Round(time.Millisecond).String())
	b.save(ctx, statuses, at) // for the followers (shared.go)
	if b.onRun != nil {
		b.onRun(ctx, statuses)
	}
}

func (b *Board) export(st slo.Status) {
	l := prometheus.Labels{"service": st.Service, "slo": st.Name}
	set := func(g *prometheus.GaugeVec, labels prometheus.Labels, v *float64) {
		if v == nil {
			g.Delete(labels)
			return
		}
		g.With(labels).Set(*v)
	}
	set(b.metrics.sli, l, st.SLI.Ratio)
	set(b.metrics.remaining, l, st.ErrorBudget.Remaining)
	for w, v := range st.BurnRates {
		set(b.metrics.burn, prometheus.Labels{"service": st.Service, "slo": st.Name, "window": w}, v)
	}
	firing := map[slo.Severity]float64{}
	for _, a := range st.Alerts {
		if _, ok := firing[a.Severity]; !ok {
			firing[a.Severity] = 0
		}
		if a.Firing {
			firing[a.Severity] = 1
		}
	}
	for sev, v := range firing {
		b.metrics.firing.With(prometheus.Labels{"service": st.Service, "slo": st.Name, "severity": string(sev)}).Set(v)
	}
}

func (b *Board) unexport(st slo.Status) {
	l := prometheus.Labels{"service": st.Service, "slo": st.Name}
	for _, g := range []*prometheus.GaugeVec{b.metrics.sli, b.metrics.remaining, b.metrics.burn, b.metrics.firing} {
		g.DeletePartialMatch(l)
	}
}

// Statuses returns the latest figures of every objective of the files,
// sorted by name; with a non-zero at it measures them at that instant
// instead. A request never measures the live figures: an objective no run
// has measured yet (before the first run, or added since the last) is
// NotReady.
func (b *Board) Statuses(ctx context.Context, at time.Time) []slo.Status {
	objs := b.slos().Objectives
	if !at.IsZero() {
		return b.m.Statuses(ctx, objs, at)
	}
	b.refreshIfDue(ctx) // a follower (shared.go)
	out := make([]slo.Status, 0, len(objs))
	inFiles := make(map[string]bool, len(objs))
	for _, o := range objs {
		inFiles[o.Name] = true
	}
	covered := map[string]bool{} // objectives of the files with figures (a grouped one: any value)
	b.mu.RLock()
	why, origin := b.notReadyErr, b.origin()
	for _, st := range b.statuses {
		if !inFiles[slo.BaseName(st.Name)] {
			continue // the leader's files have an SLO this replica's do not
		}
		st.Origin = origin
		out = append(out, st)
		covered[slo.BaseName(st.Name)] = true
	}
	b.mu.RUnlock()
	for _, o := range objs {
		if !covered[o.Name] {
			out = append(out, notReady(o, why))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status returns one objective's figures: the latest (NotReady before a
// run has measured it), or measured at an instant.
func (b *Board) Status(ctx context.Context, name string, at time.Time) (slo.Status, bool) {
	o, ok := b.slos().Objective(name)
	if !ok {
		return slo.Status{}, false
	}
	if !at.IsZero() {
		if o.IsGrouped() { // one value of a grouped objective (group.go)
			for _, st := range b.m.Statuses(ctx, []slo.Objective{o}, at) {
				if st.Name == name {
					return st, true
				}
			}
			return slo.Status{}, false
		}
		return b.m.Status(ctx, o, at), true
	}
	b.refreshIfDue(ctx) // a follower (shared.go)
	b.mu.RLock()
	st, ok := b.statuses[name]
	why, origin := b.notReadyErr, b.origin()
	b.mu.RUnlock()
	if !ok {
		return notReady(o, why), true
	}
	st.Origin = origin
	return st, true
}

// LastRun is the instant of the latest run (zero before the first).
func (b *Board) LastRun() time.Time {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.lastRun
}
