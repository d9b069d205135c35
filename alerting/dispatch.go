package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate"
)

// Outbox is the durable queue the Dispatcher delivers: the store
// (store.Store satisfies it), since both speak slogate.OutboxMessage.
type Outbox interface {
	// ClaimOutbox leases up to limit due messages of peer until now+lease
	// and counts the attempt; a leased message is claimed by no one else
	// until its lease ends.
	ClaimOutbox(ctx context.Context, peer string, limit int, lease time.Duration, now time.Time) ([]slogate.OutboxMessage, error)
	// MarkDelivered ends a message.
	MarkDelivered(ctx context.Context, id int64) error
	// MarkFailed releases the lease, records the error and the time of
	// the next attempt.
	MarkFailed(ctx context.Context, id int64, errMsg string, next time.Time) error
	// Enqueue adds messages (a duplicate key is ignored).
	Enqueue(ctx context.Context, msgs ...slogate.OutboxMessage) error
}

// Abandoner is implemented by an Outbox that can end a message without
// delivering it (a final failure, an expired message). Without it, the
// Dispatcher gives up on a message by MarkFailed with Never as the next
// attempt, which keeps it (undelivered, with its error) out of every claim.
type Abandoner interface {
	Abandon(ctx context.Context, id int64, errMsg string) error
}

// Never is the next attempt of a message given up on an Outbox that is not
// an Abandoner: a time no claim reaches.
var Never = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// NotBefore is implemented by a notifier's error that knows when the peer
// may be called again (a rate limit's reset, a Retry-After): the retry is
// not scheduled earlier, and the peer's other messages wait too.
type NotBefore interface {
	NotBefore() time.Time
}

// Outcomes of a delivery attempt, the outcome label of
// slogate_notifications_total.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetried   = "retried"
	OutcomeFailed    = "failed"
	OutcomeExpired   = "expired"
	// OutcomeConfigError: refused with a status that says the peer's
	// configuration is wrong (401, 403, 404), retried with back-off until
	// MaxAge. Alert on increase(slogate_notifications_total{outcome="config_error"}[15m]) > 0.
	OutcomeConfigError = "config_error"
)

// DispatcherConfig configures a Dispatcher. Outbox and at least one
// Notifier are required; every other field has a default.
type DispatcherConfig struct {
	Outbox    Outbox
	Notifiers []Notifier
	Logger    *slog.Logger
	// Registry, when set, receives the dispatcher's metrics.
	Registry prometheus.Registerer
	// BaseBackoff (1s) and MaxBackoff (5m) bound the delay before a retry:
	// a uniform draw in [0, min(MaxBackoff, BaseBackoff × 2^(attempts−1))]
	// ("full jitter").
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxAge (24h): a message not delivered this long after it was
	// enqueued is given up (logged at error, counted as expired).
	MaxAge time.Duration
	// Lease (1m) is how long a claimed message is reserved to this
	// dispatcher; a dispatcher that dies mid-delivery leaves it to the next
	// claim after the lease.
	Lease time.Duration
	// NotifyTimeout (30s) is the deadline of one Notify call. It must be
	// shorter than Lease, or a slow delivery could be claimed twice.
	NotifyTimeout time.Duration
	// Concurrency (4) is the number of deliveries in flight per peer.
	Concurrency int
	// Poll (1s) is how often due messages are looked for without a Wake.
	Poll time.Duration
	// Clock (time.Now) gives "now" for claims, back-off and expiry.
	Clock func() time.Time
}

// Dispatcher delivers the outbox to the notifiers, each peer on its own,
// with retries and back-off. One Dispatcher per process; several replicas
// share the outbox safely through its leases.
type Dispatcher struct {
	cfg       DispatcherConfig
	notifiers map[string]Notifier
	peers     []string
	logger    *slog.Logger
	wake      map[string]chan struct{}
	metrics   dispatchMetrics

	pauseMu sync.Mutex
	paused  map[string]time.Time // peer → no claims before

	randMu sync.Mutex
	rand   func() float64 // in [0,1); replaced by tests
}

type dispatchMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// bookkeepingTimeout bounds the outbox writes after a delivery; they run
// even when Run's context has ended, so a delivery that went through is
// recorded.
const bookkeepingTimeout = 10 * time.Second

// NewDispatcher checks cfg and fills its defaults.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	var errs []error
	if cfg.Outbox == nil {
		errs = append(errs, errors.New("outbox is required"))
	}
	if len(cfg.Notifiers) == 0 {
		errs = append(errs, errors.New("at least one notifier is required"))
	}
	def := func(d *time.Duration, v time.Duration, name string) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, *d))
		}
	}
	def(&cfg.BaseBackoff, time.Second, "base back-off")
	def(&cfg.MaxBackoff, 5*time.Minute, "max back-off")
	def(&cfg.MaxAge, 24*time.Hour, "max age")
	def(&cfg.Lease, time.Minute, "lease")
	def(&cfg.NotifyTimeout, 30*time.Second, "notify timeout")
	def(&cfg.Poll, time.Second, "poll")
	if cfg.MaxBackoff < cfg.BaseBackoff {
		errs = append(errs, fmt.Errorf("max back-off %s is shorter than the base back-off %s", cfg.MaxBackoff, cfg.BaseBackoff))
	}
	if cfg.NotifyTimeout >= cfg.Lease {
		errs = append(errs, fmt.Errorf("notify timeout %s must be shorter than the lease %s", cfg.NotifyTimeout, cfg.Lease))
	}
	switch {
	case cfg.Concurrency == 0:
		cfg.Concurrency = 4
	case cfg.Concurrency < 0:
		errs = append(errs, fmt.Errorf("concurrency must be positive, got %d", cfg.Concurrency))
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		cfg: cfg, notifiers: map[string]Notifier{}, wake: map[string]chan struct{}{}, paused: map[string]time.Time{},
		logger: cfg.Logger.With("component", "dispatcher"), rand: rand.Float64,
	}
	for i, n := range cfg.Notifiers {
		if n == nil {
			errs = append(errs, fmt.Errorf("notifier %d is nil", i))
			continue
		}
		p := n.Peer()
		if p == "" {
			errs = append(errs, fmt.Errorf("notifier %d has no peer name", i))
			continue
		}
		if _, dup := d.notifiers[p]; dup {
			errs = append(errs, fmt.Errorf("two notifiers for peer %s", p))
			continue
		}
		d.notifiers[p] = n
		d.peers = append(d.peers, p)
		d.wake[p] = make(chan struct{}, 1)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("alerting: dispatcher: %w", errors.Join(errs...))
	}
	d.metrics = dispatchMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_notifications_total",
			Help: "Notification delivery attempts by peer and outcome (delivered, retried, failed: given up after a final error, expired: older than the maximum age, config_error: refused with 401, 403 or 404, retried).",
		}, []string{"peer", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slogate_notification_duration_seconds",
			Help:    "Duration of one notification delivery attempt (the Notify call), by peer.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"peer"}),
	}
	for _, p := range d.peers {
		for _, o := range []string{OutcomeDelivered, OutcomeRetried, OutcomeFailed, OutcomeExpired, OutcomeConfigError} {
			d.metrics.total.WithLabelValues(p, o)
		}
		d.metrics.duration.WithLabelValues(p)
	}
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{d.metrics.total, d.metrics.duration} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("alerting: dispatcher metrics: %w", err)
			}
		}
	}
	return d, nil
}

// Messages encodes e for every notifier that takes it: one message per
// notifier whose Key(e) is not empty, keyed peer + "/" + that key.
// Producers store them in the transaction of the event (the store's
// CreateDeploy and SaveDecision take them); Send does it for events that
// have no transaction of their own.
func (d *Dispatcher) Messages(e Event) ([]slogate.OutboxMessage, error) {
	return Messages(e, d.cfg.Notifiers...)
}

// Messages is Dispatcher.Messages for a set of notifiers.
func Messages(e Event, notifiers ...Notifier) ([]slogate.OutboxMessage, error) {
	var out []slogate.OutboxMessage
	var payload []byte
	for _, n := range notifiers {
		k := n.Key(e)
		if k == "" {
			continue
		}
		if payload == nil {
			b, err := json.Marshal(e)
			if err != nil {
				return nil, fmt.Errorf("alerting: encode %s event: %w", e.Kind, err)
			}
			payload = b
		}
		m := slogate.OutboxMessage{Key: n.Peer() + "/" + k, Peer: n.Peer(), Payload: payload, CreatedAt: e.At}
		if ok := e.OrderKey(); ok != "" {
			m.OrderKey = n.Peer() + "/" + ok
			m.Supersedes = e.Alert != nil && !e.Alert.Firing && e.Alert.Transition
		}
		out = append(out, m)
	}
	return out, nil
}

// MessagesOf is Messages for several events, in their order.
func (d *Dispatcher) MessagesOf(events ...Event) ([]slogate.OutboxMessage, error) {
	var msgs []slogate.OutboxMessage
	for _, e := range events {
		m, err := d.Messages(e)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m...)
	}
	return msgs, nil
}

// Send enqueues the messages of events and wakes the delivery: for events
// with no transaction of their own (the Tracker's alerts).
func (d *Dispatcher) Send(ctx context.Context, events ...Event) error {
	msgs, err := d.MessagesOf(events...)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := d.cfg.Outbox.Enqueue(ctx, msgs...); err != nil {
		return fmt.Errorf("alerting: enqueue %d notifications: %w", len(msgs), err)
	}
	d.Wake()
	return nil
}

// Wake makes every peer look for due messages now rather than at the next
// poll (call it after an enqueue). It never blocks.
func (d *Dispatcher) Wake() {
	for _, c := range d.wake {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Run delivers until ctx ends, then waits for the deliveries in flight.
// A delivery cut short by ctx is released for the next claim.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range d.peers {
		wg.Go(func() { d.runPeer(ctx, p) })
	}
	wg.Wait()
}

func (d *Dispatcher) runPeer(ctx context.Context, peer string) {
	n := d.notifiers[peer]
	logger := d.logger.With("peer", peer)
	slots := make(chan struct{}, d.cfg.Concurrency)
	freed := make(chan struct{}, 1)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	timer := time.NewTimer(d.cfg.Poll)
	defer timer.Stop()
	claimFailures := 0
	for ctx.Err() == nil {
		free := d.cfg.Concurrency - len(slots)
		full := false
		if free > 0 && !d.isPaused(peer) {
			msgs, err := d.cfg.Outbox.ClaimOutbox(ctx, peer, free, d.cfg.Lease, d.cfg.Clock())
			switch {
			case err != nil && ctx.Err() == nil:
				// Logged once per outage, then again when it ends.
				if claimFailures == 0 {
					logger.Warn("claiming notifications failed", "error", err)
				}
				claimFailures++
			case err == nil && claimFailures > 0:
				logger.Info("claiming notifications works again", "failed_claims", claimFailures)
				claimFailures = 0
			}
			for _, m := range msgs {
				slots <- struct{}{}
				inflight.Go(func() {
					defer func() {
						<-slots
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					d.deliver(ctx, logger, n, m)
				})
			}
			// A full batch may mean more are due: claim again as soon as
			// a slot frees.
			full = len(msgs) == free
		} else {
			full = true
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d.cfg.Poll)
		var slotFreed <-chan struct{}
		if full {
			slotFreed = freed
		}
		select {
		case <-ctx.Done():
		case <-d.wake[peer]:
		case <-timer.C:
		case <-slotFreed:
		}
	}
}

// deliver makes one attempt at m and records its outcome.
func (d *Dispatcher) deliver(ctx context.Context, logger *slog.Logger, n Notifier, m slogate.OutboxMessage) {
	peer := n.Peer()
	logger = logger.With("key", m.Key, "id", m.ID, "attempt", m.Attempts)
	// The outbox writes outlive ctx: a delivery that went through must be
	// recorded even when Run is stopping.
	book := func() (context.Context, context.CancelFunc) {
		return context.WithTimeoutCause(context.WithoutCancel(ctx), bookkeepingTimeout,
			fmt.Errorf("outbox update for %s notification %d timed out after %s", peer, m.ID, bookkeepingTimeout))
	}
	now := d.cfg.Clock()
	enqueued := m.EnqueuedAt
	if enqueued.IsZero() {
		enqueued = m.CreatedAt
	}
	if age := now.Sub(enqueued); age > d.cfg.MaxAge {
		d.giveUp(book, logger, m, OutcomeExpired, fmt.Errorf("expired: not delivered %s after it was enqueued (max age %s)", age.Round(time.Second), d.cfg.MaxAge))
		return
	}
	var e Event
	if err := json.Unmarshal(m.Payload, &e); err != nil {
		d.giveUp(book, logger, m, OutcomeFailed, fmt.Errorf("undecodable payload: %w", err))
		return
	}

	nctx, cancel := context.WithTimeoutCause(ctx, d.cfg.NotifyTimeout,
		fmt.Errorf("%s notification timed out after %s", peer, d.cfg.NotifyTimeout))
	start := time.Now()
	retry, err := n.Notify(nctx, e)
	d.metrics.duration.WithLabelValues(peer).Observe(time.Since(start).Seconds())
	if err == nil && nctx.Err() != nil && ctx.Err() == nil {
		// A notifier that ignores its deadline does not get to succeed
		// late: the lease may be gone.
		err, retry = context.Cause(nctx), true
	}
	cancel()

	bctx, bcancel := book()
	defer bcancel()
	switch {
	case err == nil:
		if merr := d.cfg.Outbox.MarkDelivered(bctx, m.ID); merr != nil {
			// The lease runs out and the message goes again: at least
			// once, never lost.
			logger.Error("notification delivered but not marked so; it will be sent again", "error", merr)
		}
		d.metrics.total.WithLabelValues(peer, OutcomeDelivered).Inc()
	case ctx.Err() != nil:
		// Stopping: hand the message back for the next claim, now. Not
		// counted as an attempt outcome.
		if merr := d.cfg.Outbox.MarkFailed(bctx, m.ID, "dispatcher stopped during delivery", now); merr != nil {
			logger.Warn("could not release a notification on shutdown; it waits for its lease", "error", merr)
		}
	case !retry:
		d.giveUp(book, logger, m, OutcomeFailed, err)
	default:
		next := now.Add(d.backoff(m.Attempts))
		var nb NotBefore
		if errors.As(err, &nb) && nb.NotBefore().After(next) {
			next = nb.NotBefore()
			d.pause(peer, next)
		}
		if limit := enqueued.Add(d.cfg.MaxAge); next.After(limit) {
			d.giveUp(book, logger, m, OutcomeExpired, fmt.Errorf("expired: the next attempt would be after the max age %s: last error: %w", d.cfg.MaxAge, err))
			return
		}
		if merr := d.cfg.Outbox.MarkFailed(bctx, m.ID, err.Error(), next); merr != nil {
			logger.Error("could not schedule a notification's retry; it waits for its lease", "error", merr)
		}
		var ce *ConfigError
		if errors.As(err, &ce) {
			// Not dropped: retried until MaxAge, loud.
			logger.Error("notification refused: the peer's configuration (URL, token, routing key) looks wrong; will retry",
				"error", err, "status", ce.Status, "next_attempt", next)
			d.metrics.total.WithLabelValues(peer, OutcomeConfigError).Inc()
			return
		}
		logger.Warn("notification failed, will retry", "error", err, "next_attempt", next)
		d.metrics.total.WithLabelValues(peer, OutcomeRetried).Inc()
	}
}

// pause stops the claims of peer until t.
func (d *Dispatcher) pause(peer string, t time.Time) {
	d.pauseMu.Lock()
	defer d.pauseMu.Unlock()
	if t.After(d.paused[peer]) {
		d.paused[peer] = t
	}
}

func (d *Dispatcher) isPaused(peer string) bool {
	d.pauseMu.Lock()
	defer d.pauseMu.Unlock()
	return d.cfg.Clock().Before(d.paused[peer])
}

// giveUp ends m undelivered: through the Outbox's Abandon when it has one,
// else by a next attempt of Never.
func (d *Dispatcher) giveUp(book func() (context.Context, context.CancelFunc), logger *slog.Logger, m slogate.OutboxMessage, outcome string, cause error) {
	ctx, cancel := book()
	defer cancel()
	msg := "gave up: " + cause.Error()
	var err error
	if a, ok := d.cfg.Outbox.(Abandoner); ok {
		err = a.Abandon(ctx, m.ID, msg)
	} else {
		err = d.cfg.Outbox.MarkFailed(ctx, m.ID, msg, Never)
	}
	logger.Error("notification given up", "outcome", outcome, "error", cause, "created_at", m.CreatedAt)
	if err != nil {
		logger.Error("could not record a notification as given up; it waits for its lease", "error", err)
	}
	d.metrics.total.WithLabelValues(m.Peer, outcome).Inc()
}

// backoff is the delay before the attempt after the given one (1-based):
// full jitter over min(MaxBackoff, BaseBackoff × 2^(attempts−1)).
func (d *Dispatcher) backoff(attempts int) time.Duration {
	ceiling := d.cfg.MaxBackoff
	if attempts < 1 {
		attempts = 1
	}
	if attempts <= 62 {
		if c := d.cfg.BaseBackoff << (attempts - 1); c > 0 && c>>(attempts-1) == d.cfg.BaseBackoff && c < ceiling {
			ceiling = c
		}
	}
	d.randMu.Lock()
	r := d.rand()
	d.randMu.Unlock()
	return time.Duration(r * float64(ceiling))
}
