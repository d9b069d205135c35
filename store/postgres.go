package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slogate/slogate"
)

// PostgreSQL: a pgxpool for every query; migrations under a
// transaction-scoped advisory lock, so replicas starting at once apply them
// once; the outbox claimed with FOR UPDATE SKIP LOCKED and a lease column;
// leadership held as a session advisory lock on a dedicated connection.
type pgStore struct {
	pool     *pgxpool.Pool
	connCfg  *pgx.ConnConfig
	logger   *slog.Logger
	mu       sync.Mutex
	leaders  map[string]*pgx.Conn
	closed   bool
	closeCtx func() (context.Context, context.CancelFunc)
}

// migrationLockKey is the advisory lock every replica takes before it looks
// at schema_migrations.
var migrationLockKey = advisoryKey("slogate.migrate")

func advisoryKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

func openPostgres(ctx context.Context, dsn string, logger *slog.Logger) (Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("store: postgres: %v: %w", err, ErrInvalid)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	s := &pgStore{
		pool: pool, connCfg: cfg.ConnConfig, logger: logger, leaders: map[string]*pgx.Conn{},
		closeCtx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 5*time.Second)
		},
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *pgStore) migrate(ctx context.Context) error {
	ms, err := migrations("postgres")
	if err != nil {
		return fmt.Errorf("store: postgres migrations: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return err
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		applied := map[int]bool{}
		for _, v := range versions {
			applied[int(v)] = true
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			s.logger.Info("applied migration", "dialect", "postgres", "migration", m.name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: postgres migrations: %w", err)
	}
	return nil
}

// pgQuerier is what a pool and a transaction have in common.
type pgQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgPH(n int) string { return "$" + strconv.Itoa(n) }

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func utcOrNil(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

const pgDeployCols = "id, service, environment, version, previous_version, commit_sha, pipeline_url, strategy, labels::text, started_at, finished_at, status, created_at, created_by, commits::text"

func scanPGDeploy(sc pgx.Row, extra ...any) (slogate.Deploy, error) {
	var d slogate.Deploy
	var labels, commits string
	dest := append([]any{&d.ID, &d.Service, &d.Environment, &d.Version, &d.PreviousVersion, &d.Commit,
		&d.PipelineURL, &d.Strategy, &labels, &d.StartedAt, &d.FinishedAt, &d.Status, &d.CreatedAt, &d.CreatedBy, &commits}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return slogate.Deploy{}, err
	}
	var err error
	if d.Labels, err = decodeLabels([]byte(labels)); err != nil {
		return slogate.Deploy{}, err
	}
	if d.Commits, err = decodeCommits([]byte(commits)); err != nil {
		return slogate.Deploy{}, err
	}
	d.StartedAt, d.CreatedAt, d.FinishedAt = d.StartedAt.UTC(), d.CreatedAt.UTC(), utcOrNil(d.FinishedAt)
	return d, nil
}

func (s *pgStore) CreateDeploy(ctx context.Context, d slogate.Deploy, idempotencyKey string, outbox ...slogate.OutboxMessage) (slogate.Deploy, bool, error) {
	now := time.Now()
	d, hash, err := prepareDeploy(d, now)
	if err != nil {
		return slogate.Deploy{}, false, err
	}
	msgs, err := prepareOutbox(outbox, now)
	if err != nil {
		return slogate.Deploy{}, false, err
	}
	var out slogate.Deploy
	created := false
	var key *string
	if idempotencyKey != "" {
		key = &idempotencyKey
	}
	audit := deployAudit(d)
	// One statement stores the deploy and, only if it was stored, its
	// audit entry: atomic without a transaction's extra round trips. The
	// outer INSERT's row count says whether the deploy went in.
	insert := func(q pgQuerier) error {
		out, created = slogate.Deploy{}, false
		tag, err := q.Exec(ctx, `WITH ins AS (
			INSERT INTO deploys (id, service, environment, version, previous_version, commit_sha,
				pipeline_url, strategy, labels, started_at, finished_at, status, created_at, created_by, idempotency_key, request_hash, commits)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, $11, $12, $13, $14, $15, $16, $21::text::jsonb)
			ON CONFLICT (idempotency_key) DO NOTHING
			RETURNING id)
			INSERT INTO audit_log (at, actor, action, subject, detail)
			SELECT $17, $18, $19, id, $20 FROM ins`,
			d.ID, d.Service, d.Environment, d.Version, d.PreviousVersion, d.Commit, d.PipelineURL, d.Strategy,
			encodeLabels(d.Labels), d.StartedAt, d.FinishedAt, d.Status, d.CreatedAt, d.CreatedBy, key, hash,
			audit.At, audit.Actor, audit.Action, audit.Detail, encodeCommits(d.Commits))
		if isUniqueViolation(err) {
			return fmt.Errorf("deploy %s already exists: %w", d.ID, ErrConflict)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			// The key is taken (by a transaction that committed first).
			var h string
			existing, err := scanPGDeploy(q.QueryRow(ctx, "SELECT "+pgDeployCols+", request_hash FROM deploys WHERE idempotency_key = $1", idempotencyKey), &h)
			if err != nil {
				return err
			}
			if h != hash {
				return fmt.Errorf("deploy with idempotency key %q: %w", idempotencyKey, ErrIdempotencyConflict)
			}
			out = existing
			return nil
		}
		out, created = d, true
		return nil
	}
	if len(msgs) == 0 {
		err = insert(s.pool)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := insert(tx); err != nil || !created {
				return err
			}
			return pgEnqueue(ctx, tx, msgs)
		})
	}
	if err != nil {
		return slogate.Deploy{}, false, fmt.Errorf("store: create deploy: %w", err)
	}
	return out, created, nil
}

func (s *pgStore) GetDeploy(ctx context.Context, id string) (slogate.Deploy, error) {
	d, err := scanPGDeploy(s.pool.QueryRow(ctx, "SELECT "+pgDeployCols+" FROM deploys WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return slogate.Deploy{}, fmt.Errorf("store: deploy %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return slogate.Deploy{}, fmt.Errorf("store: deploy %s: %w", id, err)
	}
	return d, nil
}

func (s *pgStore) ListDeploys(ctx context.Context, f DeployFilter) ([]slogate.Deploy, string, error) {
	w, err := f.where(pgDialect)
	if err != nil {
		return nil, "", fmt.Errorf("store: list deploys: %w", err)
	}
	limit := pageLimit(f.Limit)
	rows, err := s.pool.Query(ctx, "SELECT "+pgDeployCols+" FROM deploys"+w.String()+
		" ORDER BY started_at DESC, id DESC LIMIT "+w.arg(limit+1), w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list deploys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (slogate.Deploy, error) { return scanPGDeploy(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list deploys: %w", err)
	}
	out, next := page(out, limit, func(x slogate.Deploy) string { return encodeCursor(x.StartedAt, x.ID) })
	return out, next, nil
}

func (s *pgStore) FinishDeploy(ctx context.Context, id, status string, finishedAt time.Time, outbox ...slogate.OutboxMessage) (slogate.Deploy, error) {
	if !validFinalStatus(status) {
		return slogate.Deploy{}, fmt.Errorf("store: finish deploy %s: unknown final status %q: %w", id, status, ErrInvalid)
	}
	finishedAt = UTC(finishedAt)
	if finishedAt.IsZero() {
		finishedAt = UTC(time.Now())
	}
	msgs, err := prepareOutbox(outbox, finishedAt)
	if err != nil {
		return slogate.Deploy{}, err
	}
	var d slogate.Deploy
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		d, err = scanPGDeploy(tx.QueryRow(ctx, "UPDATE deploys SET status = $2, finished_at = $3 WHERE id = $1 AND status = $4 RETURNING "+pgDeployCols,
			id, status, finishedAt, slogate.StatusRunning))
		if err == nil {
			// Only the call that finished it tells the peers.
			return pgEnqueue(ctx, tx, msgs)
		}
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		d, err = s.GetDeploy(ctx, id)
		if err != nil {
			return slogate.Deploy{}, err
		}
		if d.Status != status {
			return slogate.Deploy{}, fmt.Errorf("store: finish deploy %s: already %s: %w", id, d.Status, ErrConflict)
		}
		return d, nil
	}
	if err != nil {
		return slogate.Deploy{}, fmt.Errorf("store: finish deploy %s: %w", id, err)
	}
	return d, nil
}

func (s *pgStore) LatestDeploy(ctx context.Context, service, env string, before time.Time) (slogate.Deploy, error) {
	d, err := scanPGDeploy(s.pool.QueryRow(ctx, "SELECT "+pgDeployCols+
		" FROM deploys WHERE service = $1 AND environment = $2 AND started_at < $3 ORDER BY started_at DESC, id DESC LIMIT 1",
		service, env, UTC(before)))
	if errors.Is(err, pgx.ErrNoRows) {
		return slogate.Deploy{}, fmt.Errorf("store: latest deploy of %s/%s: %w", service, env, ErrNotFound)
	}
	if err != nil {
		return slogate.Deploy{}, fmt.Errorf("store: latest deploy of %s/%s: %w", service, env, err)
	}
	return d, nil
}

const pgDecisionCols = "evaluation_id, service, environment, version, deploy_id, decision, reason, body, evaluated_at"

func scanPGDecision(sc pgx.Row) (slogate.DecisionRecord, error) {
	var d slogate.DecisionRecord
	if err := sc.Scan(&d.EvaluationID, &d.Service, &d.Environment, &d.Version, &d.DeployID, &d.Decision, &d.Reason, &d.Body, &d.EvaluatedAt); err != nil {
		return slogate.DecisionRecord{}, err
	}
	if d.Body == nil {
		d.Body = []byte{}
	}
	d.EvaluatedAt = d.EvaluatedAt.UTC()
	return d, nil
}

func (s *pgStore) SaveDecision(ctx context.Context, d slogate.DecisionRecord, outbox ...slogate.OutboxMessage) (slogate.DecisionRecord, error) {
	now := time.Now()
	d, err := prepareDecision(d, now)
	if err != nil {
		return slogate.DecisionRecord{}, err
	}
	msgs, err := prepareOutbox(outbox, now)
	if err != nil {
		return slogate.DecisionRecord{}, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO decisions ("+pgDecisionCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (evaluation_id) DO NOTHING",
			d.EvaluationID, d.Service, d.Environment, d.Version, d.DeployID, d.Decision, d.Reason, d.Body, d.EvaluatedAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			existing, err := scanPGDecision(tx.QueryRow(ctx, "SELECT "+pgDecisionCols+" FROM decisions WHERE evaluation_id = $1", d.EvaluationID))
			if err != nil {
				return err
			}
			if !sameDecision(existing, d) {
				return fmt.Errorf("evaluation %s already stored with another body: %w", d.EvaluationID, ErrConflict)
			}
			return nil
		}
		return pgEnqueue(ctx, tx, msgs)
	})
	if err != nil {
		return slogate.DecisionRecord{}, fmt.Errorf("store: save decision: %w", err)
	}
	return d, nil
}

func (s *pgStore) GetDecision(ctx context.Context, id string) (slogate.DecisionRecord, error) {
	d, err := scanPGDecision(s.pool.QueryRow(ctx, "SELECT "+pgDecisionCols+" FROM decisions WHERE evaluation_id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return slogate.DecisionRecord{}, fmt.Errorf("store: decision %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return slogate.DecisionRecord{}, fmt.Errorf("store: decision %s: %w", id, err)
	}
	return d, nil
}

func (s *pgStore) ListDecisions(ctx context.Context, f DecisionFilter) ([]slogate.DecisionRecord, string, error) {
	w, err := f.where(pgDialect)
	if err != nil {
		return nil, "", fmt.Errorf("store: list decisions: %w", err)
	}
	limit := pageLimit(f.Limit)
	rows, err := s.pool.Query(ctx, "SELECT "+pgDecisionCols+" FROM decisions"+w.String()+
		" ORDER BY evaluated_at DESC, evaluation_id DESC LIMIT "+w.arg(limit+1), w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list decisions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (slogate.DecisionRecord, error) { return scanPGDecision(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list decisions: %w", err)
	}
	out, next := page(out, limit, func(x slogate.DecisionRecord) string { return encodeCursor(x.EvaluatedAt, x.EvaluationID) })
	return out, next, nil
}

const pgOverrideCols = "id, service, environment, reason, created_by, created_at, expires_at, revoked_at, revoked_by"

func scanPGOverride(sc pgx.Row) (Override, error) {
	var o Override
	if err := sc.Scan(&o.ID, &o.Service, &o.Environment, &o.Reason, &o.CreatedBy, &o.CreatedAt, &o.ExpiresAt, &o.RevokedAt, &o.RevokedBy); err != nil {
		return Override{}, err
	}
	o.CreatedAt, o.ExpiresAt, o.RevokedAt = o.CreatedAt.UTC(), o.ExpiresAt.UTC(), utcOrNil(o.RevokedAt)
	return o, nil
}

func (s *pgStore) CreateOverride(ctx context.Context, o Override) (Override, error) {
	now := time.Now()
	o, err := prepareOverride(o, now)
	if err != nil {
		return Override{}, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO overrides ("+pgOverrideCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, '')",
			o.ID, o.Service, o.Environment, o.Reason, o.CreatedBy, o.CreatedAt, o.ExpiresAt)
		if isUniqueViolation(err) {
			return fmt.Errorf("override %s already exists: %w", o.ID, ErrConflict)
		}
		if err != nil {
			return err
		}
		return pgAudit(ctx, tx, AuditEntry{At: UTC(now), Actor: o.CreatedBy, Action: ActionOverrideCreated, Subject: o.ID, Detail: overrideDetail(o)})
	})
	if err != nil {
		return Override{}, fmt.Errorf("store: create override: %w", err)
	}
	return o, nil
}

func (s *pgStore) RevokeOverride(ctx context.Context, id, by string) (Override, error) {
	if strings.TrimSpace(by) == "" {
		return Override{}, fmt.Errorf("store: revoke override %s: who revokes is required: %w", id, ErrInvalid)
	}
	now := UTC(time.Now())
	var out Override
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		o, err := scanPGOverride(tx.QueryRow(ctx, "UPDATE overrides SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND revoked_at IS NULL RETURNING "+pgOverrideCols,
			id, now, by))
		if errors.Is(err, pgx.ErrNoRows) {
			o, err = scanPGOverride(tx.QueryRow(ctx, "SELECT "+pgOverrideCols+" FROM overrides WHERE id = $1", id))
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("already revoked by %s: %w", o.RevokedBy, ErrConflict)
		}
		if err != nil {
			return err
		}
		out = o
		return pgAudit(ctx, tx, AuditEntry{At: now, Actor: by, Action: ActionOverrideRevoked, Subject: o.ID, Detail: overrideDetail(o)})
	})
	if err != nil {
		return Override{}, fmt.Errorf("store: revoke override %s: %w", id, err)
	}
	return out, nil
}

func (s *pgStore) ActiveOverride(ctx context.Context, service, env string, at time.Time) (Override, bool, error) {
	o, err := scanPGOverride(s.pool.QueryRow(ctx, "SELECT "+pgOverrideCols+` FROM overrides
		WHERE service = $1 AND environment = $2 AND created_at <= $3 AND expires_at > $3 AND (revoked_at IS NULL OR revoked_at > $3)
		ORDER BY created_at DESC, id DESC LIMIT 1`, service, env, UTC(at)))
	if errors.Is(err, pgx.ErrNoRows) {
		return Override{}, false, nil
	}
	if err != nil {
		return Override{}, false, fmt.Errorf("store: active override of %s/%s: %w", service, env, err)
	}
	return o, true, nil
}

func pgAudit(ctx context.Context, tx pgx.Tx, e AuditEntry) error {
	_, err := tx.Exec(ctx, "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
		e.At, e.Actor, e.Action, e.Subject, e.Detail)
	return err
}

func (s *pgStore) Audit(ctx context.Context, e AuditEntry) error {
	e, err := prepareAudit(e, time.Now())
	if err != nil {
		return err
	}
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return pgAudit(ctx, tx, e) }); err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

func (s *pgStore) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, string, error) {
	w, err := f.where(pgDialect)
	if err != nil {
		return nil, "", fmt.Errorf("store: list audit: %w", err)
	}
	limit := pageLimit(f.Limit)
	rows, err := s.pool.Query(ctx, "SELECT id, at, actor, action, subject, detail FROM audit_log"+w.String()+
		" ORDER BY id DESC LIMIT "+w.arg(limit+1), w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Subject, &e.Detail)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: list audit: %w", err)
	}
	out, next := page(out, limit, func(e AuditEntry) string { return encodeIDCursor(e.ID) })
	return out, next, nil
}

func pgEnqueue(ctx context.Context, tx pgx.Tx, msgs []slogate.OutboxMessage) error {
	for _, m := range msgs {
		if m.Supersedes && m.OrderKey != "" {
			if _, err := tx.Exec(ctx, `UPDATE outbox SET abandoned_at = $5, last_error = $6, next_attempt_at = $7
				WHERE peer = $1 AND order_key = $2 AND delivered_at IS NULL AND abandoned_at IS NULL
				AND created_at <= $3 AND key <> $4 AND (lease_until IS NULL OR lease_until <= $5)`,
				m.Peer, m.OrderKey, m.CreatedAt, m.Key, m.EnqueuedAt, supersededError, never); err != nil {
				return fmt.Errorf("outbox %s: supersede: %w", m.Key, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (key, peer, payload, attempts, next_attempt_at, created_at, order_key, enqueued_at)
			VALUES ($1, $2, $3, 0, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING`,
			m.Key, m.Peer, m.Payload, m.NextAttemptAt, m.CreatedAt, m.OrderKey, m.EnqueuedAt); err != nil {
			return fmt.Errorf("outbox %s: %w", m.Key, err)
		}
	}
	return nil
}

func (s *pgStore) Enqueue(ctx context.Context, outbox ...slogate.OutboxMessage) error {
	msgs, err := prepareOutbox(outbox, time.Now())
	if err != nil {
		return err
	}
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return pgEnqueue(ctx, tx, msgs) }); err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	return nil
}

const pgOutboxCols = "id, key, peer, payload, attempts, next_attempt_at, created_at, delivered_at, last_error, order_key, enqueued_at"

func scanPGOutbox(sc pgx.Row) (slogate.OutboxMessage, error) {
	var m slogate.OutboxMessage
	var attempts int32
	if err := sc.Scan(&m.ID, &m.Key, &m.Peer, &m.Payload, &attempts, &m.NextAttemptAt, &m.CreatedAt, &m.DeliveredAt, &m.LastError, &m.OrderKey, &m.EnqueuedAt); err != nil {
		return slogate.OutboxMessage{}, err
	}
	m.EnqueuedAt = m.EnqueuedAt.UTC()
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	m.Attempts = int(attempts)
	m.NextAttemptAt, m.CreatedAt, m.DeliveredAt = m.NextAttemptAt.UTC(), m.CreatedAt.UTC(), utcOrNil(m.DeliveredAt)
	return m, nil
}

// ClaimOutbox locks due rows with FOR UPDATE SKIP LOCKED, so a replica
// claiming at the same moment skips them instead of waiting, and sets their
// lease in the same statement, so once it commits no one else sees them as
// due until the lease ends.
func (s *pgStore) ClaimOutbox(ctx context.Context, peer string, limit int, lease time.Duration, now time.Time) ([]slogate.OutboxMessage, error) {
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("store: claim outbox: limit and lease must be positive: %w", ErrInvalid)
	}
	now = UTC(now)
	w := where{ph: pgPH}
	w.add("delivered_at IS NULL")
	w.add("next_attempt_at <= ?", now)
	w.add("(lease_until IS NULL OR lease_until <= ?)", now)
	if peer != "" {
		w.add("peer = ?", peer)
	}
	w.add(fmt.Sprintf(outboxHeadSQL, "outbox"))
	q := "WITH due AS (SELECT id FROM outbox" + w.String() + " ORDER BY next_attempt_at, id LIMIT " + w.arg(limit) +
		" FOR UPDATE SKIP LOCKED) UPDATE outbox o SET lease_until = " + w.arg(now.Add(lease)) +
		", attempts = o.attempts + 1 FROM due WHERE o.id = due.id RETURNING " +
		"o.id, o.key, o.peer, o.payload, o.attempts, o.next_attempt_at, o.created_at, o.delivered_at, o.last_error, o.order_key, o.enqueued_at"
	rows, err := s.pool.Query(ctx, q, w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: claim outbox: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (slogate.OutboxMessage, error) { return scanPGOutbox(r) })
	if err != nil {
		return nil, fmt.Errorf("store: claim outbox: %w", err)
	}
	sortOutbox(out)
	return out, nil
}

// outboxUpdate runs an update of one undelivered message; when it touches
// nothing, it tells an unknown id (ErrNotFound) from a delivered one.
func (s *pgStore) outboxUpdate(ctx context.Context, id int64, q string, args ...any) (delivered bool, err error) {
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil || tag.RowsAffected() > 0 {
		return false, err
	}
	var one int32
	err = s.pool.QueryRow(ctx, "SELECT 1 FROM outbox WHERE id = $1", id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("outbox message %d: %w", id, ErrNotFound)
	}
	return err == nil, err
}

func (s *pgStore) MarkDelivered(ctx context.Context, id int64) error {
	if _, err := s.outboxUpdate(ctx, id, "UPDATE outbox SET delivered_at = $2, lease_until = NULL WHERE id = $1 AND delivered_at IS NULL",
		id, UTC(time.Now())); err != nil {
		return fmt.Errorf("store: mark delivered: %w", err)
	}
	return nil
}

func (s *pgStore) MarkFailed(ctx context.Context, id int64, errMsg string, next time.Time) error {
	delivered, err := s.outboxUpdate(ctx, id, "UPDATE outbox SET last_error = $2, next_attempt_at = $3, lease_until = NULL WHERE id = $1 AND delivered_at IS NULL",
		id, errMsg, UTC(next))
	if err == nil && delivered {
		err = fmt.Errorf("outbox message %d was delivered: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: mark failed: %w", err)
	}
	return nil
}

func (s *pgStore) Abandon(ctx context.Context, id int64, errMsg string) error {
	delivered, err := s.outboxUpdate(ctx, id, "UPDATE outbox SET abandoned_at = COALESCE(abandoned_at, $4), last_error = $2, next_attempt_at = $3, lease_until = NULL WHERE id = $1 AND delivered_at IS NULL",
		id, errMsg, never, UTC(time.Now()))
	if err == nil && delivered {
		err = fmt.Errorf("outbox message %d was delivered: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: abandon: %w", err)
	}
	return nil
}

func (s *pgStore) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	if err := s.pool.QueryRow(ctx, fmt.Sprintf(outboxStatsSQL, "$1"), UTC(time.Now())).Scan(
		&st.Pending, &st.Leased, &st.Retrying, &st.Delivered, &st.Abandoned, &st.OldestPending); err != nil {
		return OutboxStats{}, fmt.Errorf("store: outbox stats: %w", err)
	}
	st.OldestPending = utcOrNil(st.OldestPending)
	return st, nil
}

func (s *pgStore) PurgeOutbox(ctx context.Context, deliveredBefore time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM outbox WHERE delivered_at < $1 OR abandoned_at < $1", UTC(deliveredBefore))
	if err != nil {
		return 0, fmt.Errorf("store: purge outbox: %w", err)
	}
	return tag.RowsAffected(), nil
}

// TryLeader takes pg_try_advisory_lock on a connection of its own (not
// from the pool, so the session, and the lock with it, lives exactly as
// long as the leadership). When that session dies, PostgreSQL drops the
// lock and another replica's TryLeader gets it; this instance learns it on
// its next TryLeader, whose ping of the session fails.
func (s *pgStore) TryLeader(ctx context.Context, name string) (func(), bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return func() {}, false, errors.New("store: try leader: store is closed")
	}
	key := advisoryKey("slogate.leader:" + name)
	if conn, ok := s.leaders[name]; ok {
		if err := conn.Ping(ctx); err == nil {
			return s.releaseLeader(name, key, conn), true, nil
		}
		s.logger.Warn("leader session lost", "leader", name)
		delete(s.leaders, name)
		cctx, cancel := s.closeCtx()
		_ = conn.Close(cctx)
		cancel()
	}
	conn, err := pgx.ConnectConfig(ctx, s.connCfg.Copy())
	if err != nil {
		return func() {}, false, fmt.Errorf("store: try leader %s: %w", name, err)
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || !got {
		cctx, cancel := s.closeCtx()
		_ = conn.Close(cctx)
		cancel()
		if err != nil {
			return func() {}, false, fmt.Errorf("store: try leader %s: %w", name, err)
		}
		return func() {}, false, nil
	}
	s.leaders[name] = conn
	return s.releaseLeader(name, key, conn), true, nil
}

func (s *pgStore) releaseLeader(name string, key int64, conn *pgx.Conn) func() {
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.leaders[name] != conn {
			return
		}
		delete(s.leaders, name)
		ctx, cancel := s.closeCtx()
		defer cancel()
		_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key)
		_ = conn.Close(ctx) // ending the session drops the lock in any case
	}
}

func (s *pgStore) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

func (s *pgStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for name, conn := range s.leaders {
		ctx, cancel := s.closeCtx()
		// Unlock first: the server ends a closed session, and drops its
		// locks, only some time after the socket closes, so another
		// replica asking at once would not get the lock yet.
		_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", advisoryKey("slogate.leader:"+name))
		_ = conn.Close(ctx)
		cancel()
		delete(s.leaders, name)
	}
	s.mu.Unlock()
	s.pool.Close()
	return nil
}
