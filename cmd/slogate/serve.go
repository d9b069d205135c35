package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/alerting/githubapp"
	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/internal/alertlog"
	"github.com/slogate/slogate/internal/decisions"
	"github.com/slogate/slogate/internal/deploys"
	"github.com/slogate/slogate/internal/figures"
	"github.com/slogate/slogate/internal/outbox"
	"github.com/slogate/slogate/internal/telemetry"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// serveFlags override the config file.
type serveFlags struct {
	config   string
	listen   string
	slos     stringList
	store    string
	sources  sourceFlags
	cacheTTL time.Duration
}

func runServe(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "serve", "serve [--config FILE] [--listen ADDR] [--slos PATH]... [--store DSN] [--prometheus URL] [--elasticsearch URL] [--tempo URL]")
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "config file (default: the embedded defaults)")
	fs.StringVar(&f.listen, "listen", "", "listen address (default "+defaultListen+")")
	fs.Var(&f.slos, "slos", "SLO file or directory (repeatable; default "+defaultSLOs+")")
	fs.StringVar(&f.store, "store", "", "store: sqlite:PATH or postgres://... (default "+defaultStore+")")
	fs.StringVar(&f.sources.prometheus, "prometheus", "", "Prometheus-compatible API URL")
	fs.StringVar(&f.sources.elasticsearch, "elasticsearch", "", "Elasticsearch URL")
	fs.StringVar(&f.sources.tempo, "tempo", "", "Tempo URL")
	fs.DurationVar(&f.cacheTTL, "cache-ttl", -1, "reuse a gate answer for identical asks this long (default 10s; 0 turns it off)")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageError("serve takes no arguments (got %q): SLO paths go in --slos or the config", rest)
	}

	cfg := DefaultConfig()
	embedded := f.config == ""
	if !embedded {
		var err error
		if cfg, err = LoadConfig(f.config, env.getenv); err != nil {
			return usageError("%v", err)
		}
	}
	if f.listen != "" {
		cfg.Listen = f.listen
	}
	if len(f.slos) > 0 {
		cfg.SLOs = f.slos
	}
	if f.store != "" {
		cfg.Store = f.store
	}
	if f.cacheTTL >= 0 {
		cfg.Gate.CacheTTL = &Duration{f.cacheTTL}
	}
	logger := newLogger(env, cfg.Log)
	shutdownTracing, err := telemetry.Setup(ctx, telemetry.Config{
		Endpoint: cfg.Telemetry.Endpoint, Headers: cfg.Telemetry.Headers, SampleRatio: cfg.Telemetry.SampleRatio, Version: version,
	})
	if err != nil {
		return usageError("%v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := shutdownTracing(ctx); err != nil {
			logger.Warn("flushing traces", "err", err)
		}
	}()
	if cfg.Telemetry.Endpoint != "" {
		logger.Info("exporting traces over OTLP/HTTP", "sample_ratio", cfg.Telemetry.SampleRatio)
	}
	if embedded {
		logger.Info("no --config: running on the embedded defaults", "listen", cfg.Listen, "slos", cfg.SLOs,
			"store", cfg.Store, "prometheus", defaultPrometheus)
	}
	s, err := newServer(ctx, cfg, f.sources, logger)
	if err != nil {
		return err
	}
	defer s.close()
	return s.run(ctx)
}

func newLogger(env *environment, lc LogConfig) *slog.Logger {
	level := slog.LevelInfo
	switch lc.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(env.stderr, opts)
	if lc.Format == "text" {
		h = slog.NewTextHandler(env.stderr, opts)
	}
	return slog.New(telemetry.LogHandler{Handler: h})
}

// server is a running slogate: the store, the sources, the gate, the
// scheduled evaluation and the HTTP API.
type server struct {
	cfg      *Config
	logger   *slog.Logger
	store    store.Store
	slos     atomic.Pointer[slo.Set]
	measurer *gate.Measurer
	engine   *gate.Engine
	board    *gate.Board
	registry *prometheus.Registry
	handler  http.Handler
	// dispatcher delivers notifications; nil when no peer is configured.
	dispatcher *alerting.Dispatcher
	// rules answers GitHub protection rules; nil when no App is configured.
	rules *githubapp.Rules
}

func newServer(ctx context.Context, cfg *Config, sources sourceFlags, logger *slog.Logger) (*server, error) {
	s := &server{cfg: cfg, logger: logger, registry: prometheus.NewRegistry()}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	set, err := slo.Load(cfg.SLOs...)
	if err != nil {
		logger.Error("SLO files are invalid", "slos", cfg.SLOs, "problems", len(slo.Problems(err)))
		return nil, &exitError{code: exitFailed, err: fmt.Errorf("SLO files %v are invalid:\n%w", cfg.SLOs, err)}
	}
	if len(set.Objectives) == 0 {
		return nil, &exitError{code: exitFailed, err: fmt.Errorf("no SLO found in %v", cfg.SLOs)}
	}
	s.slos.Store(set)
	logger.Info("SLOs loaded", "files", set.Files, "slos", len(set.Objectives), "services", len(set.ServiceNames()), "gate_policies", len(set.Policies))

	if len(cfg.Auth.Tokens) == 0 {
		if err := requireLoopback(cfg.Listen); err != nil {
			return nil, usageError("%v", err)
		}
		logger.Warn("no auth.tokens configured: the API is open to anyone on this machine (listening on loopback only)")
	}

	if cfg.embedded {
		// The embedded default: Prometheus on localhost, unless a
		// DataSource or a flag says otherwise.
		sources.fallbackPrometheus = defaultPrometheus
	}
	mux, err := buildSources(cfg, sources, set, logger)
	if err != nil {
		return nil, usageError("%v", err)
	}
	logger.Info("sources", "configured", mux.Types())
	s.measurer, err = gate.NewMeasurer(mux, gate.MeasurerConfig{Concurrency: cfg.Evaluation.Concurrency, Timeout: cfg.Evaluation.Timeout.Duration})
	if err != nil {
		return nil, err
	}

	st, err := store.Open(ctx, cfg.Store, logger)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.store = st

	notifiers, err := buildNotifiers(cfg.Notify, cfg.ExternalURL, logger)
	if err != nil {
		st.Close()
		return nil, usageError("%v", err)
	}
	var apiStore api.Store = st
	var onRun func(context.Context, []slo.Status)
	var onLeader func(context.Context)
	var notifier deploys.Notifier
	if len(notifiers) > 0 {
		if s.dispatcher, onRun, onLeader, err = s.notifications(st, notifiers); err != nil {
			st.Close()
			return nil, err
		}
		notifier = s.dispatcher
		if apiStore, err = deploys.New(deploys.Config{Store: st, Notifier: s.dispatcher}); err != nil {
			st.Close()
			return nil, err
		}
	}
	recorder, err := decisions.New(decisions.Config{Store: st, Notifier: notifier, Logger: logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	s.engine, err = gate.New(gate.Config{
		Measurer:  s.measurer,
		SLOs:      s.slos.Load,
		Deploys:   deploys.Lookup{Store: st},
		Overrides: decisions.Overrides{Store: st},
		Recorder:  recorder,
		CacheTTL:  cfg.Gate.cacheTTL(),
		Deadline:  cfg.Gate.Deadline.Duration,
		Registry:  s.registry,
		// The global limit on uncached evaluations (gate/limit.go).
		MaxConcurrentEvaluations: cfg.Gate.MaxConcurrentEvaluations,
		EvaluationWait:           cfg.Gate.EvaluationWait.Duration,
		Logger:                   logger,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	interval, err := scheduleInterval(cfg.Evaluation.Schedule, time.Now())
	if err != nil {
		st.Close()
		return nil, usageError("%v", err)
	}
	s.board, err = gate.NewBoard(gate.BoardConfig{
		Measurer: s.measurer, SLOs: s.slos.Load, Logger: logger, Registry: s.registry, OnRun: onRun,
		AgeDivisor: cfg.Evaluation.AgeDivisor, OnLeader: onLeader,
		// The leader saves its figures; the followers serve them
		// (docs/replicas.md).
		Shared: figures.Store{Store: st}, Replica: figures.ReplicaID(), Interval: interval,
		Leader: func(ctx context.Context) bool {
			_, ok, err := st.TryLeader(ctx, figures.Leadership)
			if err != nil {
				logger.Warn("leader election failed: skipping this evaluation", "err", err)
			}
			return ok
		},
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	delivery, commits, err := s.doraDeps(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	if s.rules, err = buildProtectionRules(cfg, st, s.engine, logger); err != nil {
		st.Close()
		return nil, usageError("%v", err)
	}
	var rules api.ProtectionRules
	if s.rules != nil {
		rules = apiRules{s.rules}
	}
	tokens := make([]api.Token, len(cfg.Auth.Tokens))
	for i, t := range cfg.Auth.Tokens {
		tokens[i] = api.Token{Name: t.Name, Value: t.Value, Scopes: t.Scopes}
	}
	s.handler = api.NewServer(api.Deps{
		Gate: s.engine, Store: apiStore, SLOs: s.board, Tokens: tokens, Logger: logger, Metrics: s.registry,
		GitHubWebhookSecret: cfg.Webhooks.gitHubWebhookSecret(),
		Delivery:            delivery, Commits: commits,
		GitHubRules: rules, GitHubServices: cfg.Webhooks.gitHubServices(),
		Objectives: s.slos.Load,
		AskRate:    cfg.Gate.AskRate, AskBurst: cfg.Gate.AskBurst,
		AccessLog: api.AccessLog{All: cfg.Log.Access.All, Slow: cfg.Log.Access.Slow.Duration, SampleEvery: cfg.Log.Access.SampleEvery},
		Ready: func(ctx context.Context) error {
			if s.slos.Load() == nil {
				return errors.New("SLOs not loaded")
			}
			return nil
		},
	})
	return s, nil
}

// notifications sets up the delivery of notifications: the dispatcher
// over the store's outbox, and the tracker that turns each scheduled
// evaluation into alert, page and budget events.
func (s *server) notifications(st store.Store, notifiers []alerting.Notifier) (*alerting.Dispatcher, func(context.Context, []slo.Status), func(context.Context), error) {
	names := make([]string, len(notifiers))
	for i, n := range notifiers {
		names[i] = n.Peer()
	}
	d, err := alerting.NewDispatcher(alerting.DispatcherConfig{
		Outbox: st, Notifiers: notifiers, Logger: s.logger, Registry: s.registry,
		MaxAge: s.cfg.Notify.Outbox.MaxAge.Duration,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	interval, err := scheduleInterval(s.cfg.Evaluation.Schedule, time.Now())
	if err != nil {
		return nil, nil, nil, usageError("%v", err)
	}
	var links func(slo.Status) []alerting.Link
	if base := strings.TrimRight(s.cfg.ExternalURL, "/"); base != "" {
		links = func(st slo.Status) []alerting.Link {
			return []alerting.Link{{Href: base + "/v1/slos/" + url.PathEscape(st.Name), Text: "slogate: " + st.Name}}
		}
	}
	tracker, err := alerting.NewTracker(alerting.TrackerConfig{
		// States are loaded from the audit log, and saved there with the
		// notifications of their changes in one transaction.
		State: alertlog.States{Store: st}, Commit: alertlog.Commit(st, d),
		Interval: interval, Objectives: objectiveLookup(s.slos.Load), Links: links, Logger: s.logger,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	s.logger.Info("notifications on", "peers", names)
	onRun := func(ctx context.Context, statuses []slo.Status) {
		if len(statuses) == 0 {
			return
		}
		tracker.Observe(ctx, statuses, statuses[0].EvaluatedAt)
	}
	// A replica that becomes the leader takes over the alert states the
	// previous leader saved.
	onLeader := func(context.Context) { tracker.Reload() }
	return d, onRun, onLeader, nil
}

// requireLoopback refuses an open API on anything but loopback.
func requireLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen %q: %v", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("listen %q: with no auth.tokens the API is open, so slogate listens on loopback only (127.0.0.1:PORT); configure auth.tokens to listen on %s", listen, host)
}

// reload reads the SLO files again; invalid files keep the SLOs in force.
func (s *server) reload() {
	set, err := slo.Load(s.cfg.SLOs...)
	if err != nil {
		s.logger.Error("SLO reload refused: the files are invalid; the SLOs in force stay", "problems", len(slo.Problems(err)), "err", err)
		return
	}
	s.slos.Store(set)
	s.logger.Info("SLOs reloaded", "files", set.Files, "slos", len(set.Objectives))
}

// run serves until ctx ends, then drains: in-flight requests finish (up to
// 30 s), the scheduled evaluation stops.
func (s *server) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           telemetry.Middleware(s.handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopBoard, err := s.board.Start(runCtx, s.cfg.Evaluation.Schedule)
	if err != nil {
		return usageError("%v", err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				s.reload()
			case <-runCtx.Done():
				return
			}
		}
	}()
	var background sync.WaitGroup
	if s.dispatcher != nil {
		background.Go(func() { s.dispatcher.Run(runCtx) })
		background.Go(func() { outbox.Purge(runCtx, s.store, s.cfg.Notify.Outbox.Retain.Duration, time.Hour, s.logger) })
	}
	if s.rules != nil {
		background.Go(func() { s.rules.Run(runCtx) })
	}
	defer background.Wait()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger.Info("slogate is serving", "address", ln.Addr().String(), "schedule", s.cfg.Evaluation.Schedule, "version", version)
	select {
	case err := <-errc:
		cancel()
		stopBoard()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.logger.Info("shutting down: finishing in-flight requests")
	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer done()
	err = srv.Shutdown(shutdownCtx)
	cancel()
	stopBoard()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	s.logger.Info("stopped")
	return nil
}

func (s *server) close() {
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.logger.Warn("closing the store", "err", err)
		}
	}
}
