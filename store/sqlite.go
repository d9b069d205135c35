package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/slogate/slogate"
)

// SQLite durability: the journal is a write-ahead log (WAL) and
// synchronous=FULL, so every commit fsyncs the WAL before it returns. A
// commit that returned is therefore on disk: it survives kill -9 (which
// NORMAL would survive too, as the WAL is in the OS page cache) and also a
// power loss or kernel crash (which NORMAL would not). "?synchronous=normal"
// in the DSN chooses NORMAL.
//
// One writer connection serialises every write (BEGIN IMMEDIATE, so a
// transaction never has to upgrade its lock and fail with SQLITE_BUSY); a
// pool of query_only connections serves reads concurrently from the WAL
// snapshot. busy_timeout covers another process writing the same file.
const (
	sqliteBusyTimeoutMS = 10000
	sqliteReaders       = 4
)

type sqliteStore struct {
	w, r   *sql.DB
	path   string
	logger *slog.Logger

	// writes feeds the group-commit writer (see tx); nil before it runs.
	writes      chan writeRequest
	writerDone  chan struct{}
	stopWriting chan struct{}

	mu      sync.Mutex
	leaders map[string]*os.File
	closed  bool
}

func openSQLite(ctx context.Context, spec string, logger *slog.Logger) (Store, error) {
	spec = strings.TrimPrefix(spec, "//")
	p, rawQuery, _ := strings.Cut(spec, "?")
	if p == "" || p == ":memory:" || strings.HasPrefix(p, "file:") {
		return nil, fmt.Errorf("store: sqlite: want sqlite:PATH to a file, got %q: %w", p, ErrInvalid)
	}
	syncMode := "FULL"
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: options: %v: %w", err, ErrInvalid)
	}
	for k, v := range q {
		switch {
		case k == "synchronous" && len(v) == 1 && (strings.EqualFold(v[0], "full") || strings.EqualFold(v[0], "normal")):
			syncMode = strings.ToUpper(v[0])
		default:
			return nil, fmt.Errorf("store: sqlite: unknown option %s=%v (known: synchronous=full|normal): %w", k, v, ErrInvalid)
		}
	}
	if dir := filepath.Dir(p); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: sqlite: %w", err)
		}
	}

	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1", sqliteBusyTimeoutMS)
	s := &sqliteStore{path: p, logger: logger, leaders: map[string]*os.File{}}
	// Processes opening a new file at once can get SQLITE_BUSY without the
	// busy handler being consulted (switching to WAL, initialising the
	// WAL index): retry for as long as busy_timeout.
	deadline := time.Now().Add(sqliteBusyTimeoutMS * time.Millisecond)
	for {
		s.w, err = openSQLiteWriter(ctx, p, common+"&_journal_mode=WAL&_synchronous="+syncMode+"&_txlock=immediate")
		if err == nil {
			if err = s.migrate(ctx); err != nil {
				s.w.Close()
			}
		}
		if err == nil || !isSQLiteBusy(err) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("store: sqlite %s: %w", p, ctx.Err())
		case <-time.After(time.Duration(10+rand.IntN(40)) * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: sqlite %s: %w", p, err)
	}
	s.r, err = sql.Open("sqlite", p+"?"+common+"&_query_only=1")
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	s.r.SetMaxOpenConns(sqliteReaders)
	s.r.SetMaxIdleConns(sqliteReaders)
	if err := s.r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: sqlite %s: %w", p, err)
	}
	s.writes = make(chan writeRequest)
	s.writerDone = make(chan struct{})
	s.stopWriting = make(chan struct{})
	go s.writer()
	logger.Debug("sqlite store open", "path", p, "synchronous", syncMode)
	return s, nil
}

func openSQLiteWriter(ctx context.Context, p, params string) (*sql.DB, error) {
	w, err := sql.Open("sqlite", p+"?"+params)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, err
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	return w, nil
}

func isSQLiteBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func (s *sqliteStore) migrate(ctx context.Context) error {
	ms, err := migrations("sqlite")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		applied := map[int]bool{}
		rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			s.logger.Info("applied migration", "dialect", "sqlite", "migration", m.name)
		}
		return nil
	})
}

// tx runs fn in a write transaction (BEGIN IMMEDIATE on the one writer).
// writeRequest is one transaction's work for the group-commit writer.
type writeRequest struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

// maxGroup bounds how many writes share one commit.
const maxGroup = 128

var errStoreClosed = errors.New("store is closed")

// tx runs fn in a write transaction and returns once it is durably
// committed (or failed). Writes are group-committed: concurrent calls are
// gathered by one writer into one SQLite transaction, which pays for one
// WAL sync instead of one per call; when a write of the group fails, each
// runs again alone, so a failing fn undoes only its own work. Nothing is
// acknowledged before the commit that holds it. A fn may run twice: it
// must not keep state across runs but what it returns through its
// closure, set again on each run.
func (s *sqliteStore) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.writes == nil { // during Open: migrations
		return s.txNow(ctx, fn)
	}
	req := writeRequest{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopWriting:
		return errStoreClosed
	}
	// Once handed over, the outcome is awaited whatever ctx says: the
	// caller must not believe a write failed that was committed.
	return <-req.done
}

// txNow runs fn in a transaction of its own.
func (s *sqliteStore) txNow(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// writer commits the queued writes in groups until the store closes.
func (s *sqliteStore) writer() {
	defer close(s.writerDone)
	for {
		var batch []writeRequest
		select {
		case r := <-s.writes:
			batch = append(batch, r)
		case <-s.stopWriting:
			return
		}
	gather:
		for len(batch) < maxGroup {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		s.commitGroup(batch)
	}
}

func (s *sqliteStore) commitGroup(batch []writeRequest) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		r := live[0]
		r.done <- s.txNow(r.ctx, r.fn)
		return
	}
	// Optimistically, every write of the group in one transaction. Writes
	// rarely fail (a taken id, a conflict); when one does, the group is
	// rolled back and each write runs again on its own, so a failure
	// undoes only its own work.
	err := s.txNow(context.Background(), func(tx *sql.Tx) error {
		for _, r := range live {
			if err := r.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, r := range live {
			r.done <- nil
		}
		return
	}
	for _, r := range live {
		r.done <- s.txNow(r.ctx, r.fn)
	}
}

func isSQLiteConstraint(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code
}

func us(t time.Time) int64 { return t.UnixMicro() }

func fromUS(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullUS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromNullUS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromUS(v.Int64)
	return &t
}

func sqlitePH(int) string { return "?" }

type scanner interface{ Scan(dest ...any) error }

// collectSQLite scans every row and closes rows.
func collectSQLite[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const sqliteDeployCols = "id, service, environment, version, previous_version, commit_sha, pipeline_url, strategy, labels, started_at, finished_at, status, created_at, created_by, commits"

func scanSQLiteDeploy(sc scanner, extra ...any) (slogate.Deploy, error) {
	var d slogate.Deploy
	var labels, commits string
	var started, created int64
	var finished sql.NullInt64
	dest := append([]any{&d.ID, &d.Service, &d.Environment, &d.Version, &d.PreviousVersion, &d.Commit,
		&d.PipelineURL, &d.Strategy, &labels, &started, &finished, &d.Status, &created, &d.CreatedBy, &commits}, extra...)
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
	d.StartedAt, d.CreatedAt, d.FinishedAt = fromUS(started), fromUS(created), fromNullUS(finished)
	return d, nil
}

func (s *sqliteStore) CreateDeploy(ctx context.Context, d slogate.Deploy, idempotencyKey string, outbox ...slogate.OutboxMessage) (slogate.Deploy, bool, error) {
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
	err = s.tx(ctx, func(tx *sql.Tx) error {
		out, created = slogate.Deploy{}, false // this may run twice (see tx)
		res, err := tx.ExecContext(ctx, `INSERT INTO deploys (`+sqliteDeployCols+`, idempotency_key, request_hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING`,
			d.ID, d.Service, d.Environment, d.Version, d.PreviousVersion, d.Commit, d.PipelineURL, d.Strategy,
			encodeLabels(d.Labels), us(d.StartedAt), nullUS(d.FinishedAt), d.Status, us(d.CreatedAt), d.CreatedBy, encodeCommits(d.Commits),
			sql.NullString{String: idempotencyKey, Valid: idempotencyKey != ""}, hash)
		if isSQLiteConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("deploy %s already exists: %w", d.ID, ErrConflict)
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			// The idempotency key is taken.
			var h string
			existing, err := scanSQLiteDeploy(tx.QueryRowContext(ctx,
				"SELECT "+sqliteDeployCols+", request_hash FROM deploys WHERE idempotency_key = ?", idempotencyKey), &h)
			if err != nil {
				return err
			}
			if h != hash {
				return fmt.Errorf("deploy with idempotency key %q: %w", idempotencyKey, ErrIdempotencyConflict)
			}
			out = existing
			return nil
		}
		if err := sqliteAudit(ctx, tx, deployAudit(d)); err != nil {
			return err
		}
		if err := sqliteEnqueue(ctx, tx, msgs); err != nil {
			return err
		}
		out, created = d, true
		return nil
	})
	if err != nil {
		return slogate.Deploy{}, false, fmt.Errorf("store: create deploy: %w", err)
	}
	return out, created, nil
}

func (s *sqliteStore) GetDeploy(ctx context.Context, id string) (slogate.Deploy, error) {
	d, err := scanSQLiteDeploy(s.r.QueryRowContext(ctx, "SELECT "+sqliteDeployCols+" FROM deploys WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return slogate.Deploy{}, fmt.Errorf("store: deploy %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return slogate.Deploy{}, fmt.Errorf("store: deploy %s: %w", id, err)
	}
	return d, nil
}

func (s *sqliteStore) ListDeploys(ctx context.Context, f DeployFilter) ([]slogate.Deploy, string, error) {
	w, err := f.where(sqliteDialect)
	if err != nil {
		return nil, "", fmt.Errorf("store: list deploys: %w", err)
	}
	limit := pageLimit(f.Limit)
	q := "SELECT " + sqliteDeployCols + " FROM deploys" + w.String() + " ORDER BY started_at DESC, id DESC LIMIT " + w.arg(limit+1)
	rows, err := s.r.QueryContext(ctx, q, w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list deploys: %w", err)
	}
	out, err := collectSQLite(rows, func(sc scanner) (slogate.Deploy, error) { return scanSQLiteDeploy(sc) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list deploys: %w", err)
	}
	out, next := page(out, limit, func(x slogate.Deploy) string { return encodeCursor(x.StartedAt, x.ID) })
	return out, next, nil
}

func (s *sqliteStore) FinishDeploy(ctx context.Context, id, status string, finishedAt time.Time, outbox ...slogate.OutboxMessage) (slogate.Deploy, error) {
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
	var out slogate.Deploy
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE deploys SET status = ?, finished_at = ? WHERE id = ? AND status = ?",
			status, us(finishedAt), id, slogate.StatusRunning)
		if err != nil {
			return err
		}
		d, err := scanSQLiteDeploy(tx.QueryRowContext(ctx, "SELECT "+sqliteDeployCols+" FROM deploys WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if d.Status != status {
			return fmt.Errorf("already %s: %w", d.Status, ErrConflict)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			// Only the call that finished it tells the peers.
			if err := sqliteEnqueue(ctx, tx, msgs); err != nil {
				return err
			}
		}
		out = d
		return nil
	})
	if err != nil {
		return slogate.Deploy{}, fmt.Errorf("store: finish deploy %s: %w", id, err)
	}
	return out, nil
}

func (s *sqliteStore) LatestDeploy(ctx context.Context, service, env string, before time.Time) (slogate.Deploy, error) {
	d, err := scanSQLiteDeploy(s.r.QueryRowContext(ctx, "SELECT "+sqliteDeployCols+
		" FROM deploys WHERE service = ? AND environment = ? AND started_at < ? ORDER BY started_at DESC, id DESC LIMIT 1",
		service, env, us(UTC(before))))
	if errors.Is(err, sql.ErrNoRows) {
		return slogate.Deploy{}, fmt.Errorf("store: latest deploy of %s/%s: %w", service, env, ErrNotFound)
	}
	if err != nil {
		return slogate.Deploy{}, fmt.Errorf("store: latest deploy of %s/%s: %w", service, env, err)
	}
	return d, nil
}

const sqliteDecisionCols = "evaluation_id, service, environment, version, deploy_id, decision, reason, body, evaluated_at"

func scanSQLiteDecision(sc scanner) (slogate.DecisionRecord, error) {
	var d slogate.DecisionRecord
	var at int64
	if err := sc.Scan(&d.EvaluationID, &d.Service, &d.Environment, &d.Version, &d.DeployID, &d.Decision, &d.Reason, &d.Body, &at); err != nil {
		return slogate.DecisionRecord{}, err
	}
	if d.Body == nil {
		d.Body = []byte{}
	}
	d.EvaluatedAt = fromUS(at)
	return d, nil
}

func (s *sqliteStore) SaveDecision(ctx context.Context, d slogate.DecisionRecord, outbox ...slogate.OutboxMessage) (slogate.DecisionRecord, error) {
	now := time.Now()
	d, err := prepareDecision(d, now)
	if err != nil {
		return slogate.DecisionRecord{}, err
	}
	msgs, err := prepareOutbox(outbox, now)
	if err != nil {
		return slogate.DecisionRecord{}, err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		existing, err := scanSQLiteDecision(tx.QueryRowContext(ctx, "SELECT "+sqliteDecisionCols+" FROM decisions WHERE evaluation_id = ?", d.EvaluationID))
		switch {
		case err == nil && sameDecision(existing, d):
			return nil
		case err == nil:
			return fmt.Errorf("evaluation %s already stored with another body: %w", d.EvaluationID, ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO decisions ("+sqliteDecisionCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			d.EvaluationID, d.Service, d.Environment, d.Version, d.DeployID, d.Decision, d.Reason, d.Body, us(d.EvaluatedAt)); err != nil {
			return err
		}
		return sqliteEnqueue(ctx, tx, msgs)
	})
	if err != nil {
		return slogate.DecisionRecord{}, fmt.Errorf("store: save decision: %w", err)
	}
	return d, nil
}

func (s *sqliteStore) GetDecision(ctx context.Context, id string) (slogate.DecisionRecord, error) {
	d, err := scanSQLiteDecision(s.r.QueryRowContext(ctx, "SELECT "+sqliteDecisionCols+" FROM decisions WHERE evaluation_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return slogate.DecisionRecord{}, fmt.Errorf("store: decision %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return slogate.DecisionRecord{}, fmt.Errorf("store: decision %s: %w", id, err)
	}
	return d, nil
}

func (s *sqliteStore) ListDecisions(ctx context.Context, f DecisionFilter) ([]slogate.DecisionRecord, string, error) {
	w, err := f.where(sqliteDialect)
	if err != nil {
		return nil, "", fmt.Errorf("store: list decisions: %w", err)
	}
	limit := pageLimit(f.Limit)
	q := "SELECT " + sqliteDecisionCols + " FROM decisions" + w.String() + " ORDER BY evaluated_at DESC, evaluation_id DESC LIMIT " + w.arg(limit+1)
	rows, err := s.r.QueryContext(ctx, q, w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list decisions: %w", err)
	}
	out, err := collectSQLite(rows, func(sc scanner) (slogate.DecisionRecord, error) { return scanSQLiteDecision(sc) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list decisions: %w", err)
	}
	out, next := page(out, limit, func(x slogate.DecisionRecord) string { return encodeCursor(x.EvaluatedAt, x.EvaluationID) })
	return out, next, nil
}

const sqliteOverrideCols = "id, service, environment, reason, created_by, created_at, expires_at, revoked_at, revoked_by"

func scanSQLiteOverride(sc scanner) (Override, error) {
	var o Override
	var created, expires int64
	var revoked sql.NullInt64
	if err := sc.Scan(&o.ID, &o.Service, &o.Environment, &o.Reason, &o.CreatedBy, &created, &expires, &revoked, &o.RevokedBy); err != nil {
		return Override{}, err
	}
	o.CreatedAt, o.ExpiresAt, o.RevokedAt = fromUS(created), fromUS(expires), fromNullUS(revoked)
	return o, nil
}

func (s *sqliteStore) CreateOverride(ctx context.Context, o Override) (Override, error) {
	now := time.Now()
	o, err := prepareOverride(o, now)
	if err != nil {
		return Override{}, err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var one int
		switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM overrides WHERE id = ?", o.ID).Scan(&one); {
		case err == nil:
			return fmt.Errorf("override %s already exists: %w", o.ID, ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO overrides ("+sqliteOverrideCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			o.ID, o.Service, o.Environment, o.Reason, o.CreatedBy, us(o.CreatedAt), us(o.ExpiresAt), nullUS(nil), ""); err != nil {
			return err
		}
		return sqliteAudit(ctx, tx, AuditEntry{At: UTC(now), Actor: o.CreatedBy, Action: ActionOverrideCreated, Subject: o.ID, Detail: overrideDetail(o)})
	})
	if err != nil {
		return Override{}, fmt.Errorf("store: create override: %w", err)
	}
	return o, nil
}

func (s *sqliteStore) RevokeOverride(ctx context.Context, id, by string) (Override, error) {
	if strings.TrimSpace(by) == "" {
		return Override{}, fmt.Errorf("store: revoke override %s: who revokes is required: %w", id, ErrInvalid)
	}
	now := UTC(time.Now())
	var out Override
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE overrides SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL", us(now), by, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		o, err := scanSQLiteOverride(tx.QueryRowContext(ctx, "SELECT "+sqliteOverrideCols+" FROM overrides WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("already revoked by %s: %w", o.RevokedBy, ErrConflict)
		}
		out = o
		return sqliteAudit(ctx, tx, AuditEntry{At: now, Actor: by, Action: ActionOverrideRevoked, Subject: o.ID, Detail: overrideDetail(o)})
	})
	if err != nil {
		return Override{}, fmt.Errorf("store: revoke override %s: %w", id, err)
	}
	return out, nil
}

func (s *sqliteStore) ActiveOverride(ctx context.Context, service, env string, at time.Time) (Override, bool, error) {
	t := us(UTC(at))
	o, err := scanSQLiteOverride(s.r.QueryRowContext(ctx, "SELECT "+sqliteOverrideCols+` FROM overrides
		WHERE service = ? AND environment = ? AND created_at <= ? AND expires_at > ? AND (revoked_at IS NULL OR revoked_at > ?)
		ORDER BY created_at DESC, id DESC LIMIT 1`, service, env, t, t, t))
	if errors.Is(err, sql.ErrNoRows) {
		return Override{}, false, nil
	}
	if err != nil {
		return Override{}, false, fmt.Errorf("store: active override of %s/%s: %w", service, env, err)
	}
	return o, true, nil
}

func sqliteAudit(ctx context.Context, tx *sql.Tx, e AuditEntry) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
		us(e.At), e.Actor, e.Action, e.Subject, e.Detail)
	return err
}

func (s *sqliteStore) Audit(ctx context.Context, e AuditEntry) error {
	e, err := prepareAudit(e, time.Now())
	if err != nil {
		return err
	}
	if err := s.tx(ctx, func(tx *sql.Tx) error { return sqliteAudit(ctx, tx, e) }); err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

func (s *sqliteStore) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, string, error) {
	w, err := f.where(sqliteDialect)
	if err != nil {
		return nil, "", fmt.Errorf("store: list audit: %w", err)
	}
	limit := pageLimit(f.Limit)
	rows, err := s.r.QueryContext(ctx, "SELECT id, at, actor, action, subject, detail FROM audit_log"+w.String()+
		" ORDER BY id DESC LIMIT "+w.arg(limit+1), w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list audit: %w", err)
	}
	out, err := collectSQLite(rows, func(sc scanner) (AuditEntry, error) {
		var e AuditEntry
		var at int64
		err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Detail)
		e.At = fromUS(at)
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: list audit: %w", err)
	}
	out, next := page(out, limit, func(e AuditEntry) string { return encodeIDCursor(e.ID) })
	return out, next, nil
}

func sqliteEnqueue(ctx context.Context, tx *sql.Tx, msgs []slogate.OutboxMessage) error {
	for _, m := range msgs {
		if m.Supersedes && m.OrderKey != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET abandoned_at = ?, last_error = ?, next_attempt_at = ?
				WHERE peer = ? AND order_key = ? AND delivered_at IS NULL AND abandoned_at IS NULL
				AND created_at <= ? AND key <> ? AND (lease_until IS NULL OR lease_until <= ?)`,
				us(m.EnqueuedAt), supersededError, us(never), m.Peer, m.OrderKey, us(m.CreatedAt), m.Key, us(m.EnqueuedAt)); err != nil {
				return fmt.Errorf("outbox %s: supersede: %w", m.Key, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (key, peer, payload, attempts, next_attempt_at, created_at, order_key, enqueued_at)
			VALUES (?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			m.Key, m.Peer, m.Payload, us(m.NextAttemptAt), us(m.CreatedAt), m.OrderKey, us(m.EnqueuedAt)); err != nil {
			return fmt.Errorf("outbox %s: %w", m.Key, err)
		}
	}
	return nil
}

func (s *sqliteStore) Enqueue(ctx context.Context, outbox ...slogate.OutboxMessage) error {
	msgs, err := prepareOutbox(outbox, time.Now())
	if err != nil {
		return err
	}
	if err := s.tx(ctx, func(tx *sql.Tx) error { return sqliteEnqueue(ctx, tx, msgs) }); err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	return nil
}

const sqliteOutboxCols = "id, key, peer, payload, attempts, next_attempt_at, created_at, delivered_at, last_error, order_key, enqueued_at"

func scanSQLiteOutbox(sc scanner) (slogate.OutboxMessage, error) {
	var m slogate.OutboxMessage
	var next, created, enqueued int64
	var delivered sql.NullInt64
	if err := sc.Scan(&m.ID, &m.Key, &m.Peer, &m.Payload, &m.Attempts, &next, &created, &delivered, &m.LastError, &m.OrderKey, &enqueued); err != nil {
		return slogate.OutboxMessage{}, err
	}
	m.EnqueuedAt = fromUS(enqueued)
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	m.NextAttemptAt, m.CreatedAt, m.DeliveredAt = fromUS(next), fromUS(created), fromNullUS(delivered)
	return m, nil
}

func (s *sqliteStore) ClaimOutbox(ctx context.Context, peer string, limit int, lease time.Duration, now time.Time) ([]slogate.OutboxMessage, error) {
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("store: claim outbox: limit and lease must be positive: %w", ErrInvalid)
	}
	now = UTC(now)
	w := where{ph: sqlitePH}
	leaseUntil := w.arg(us(now.Add(lease)))
	w.add("delivered_at IS NULL")
	w.add("next_attempt_at <= ?", us(now))
	w.add("(lease_until IS NULL OR lease_until <= ?)", us(now))
	if peer != "" {
		w.add("peer = ?", peer)
	}
	w.add(fmt.Sprintf(outboxHeadSQL, "outbox"))
	q := "UPDATE outbox SET lease_until = " + leaseUntil + ", attempts = attempts + 1 WHERE id IN (SELECT id FROM outbox" +
		w.String() + " ORDER BY next_attempt_at, id LIMIT " + w.arg(limit) + ") RETURNING " + sqliteOutboxCols
	var out []slogate.OutboxMessage
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, q, w.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanSQLiteOutbox(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim outbox: %w", err)
	}
	sortOutbox(out)
	return out, nil
}

func sortOutbox(ms []slogate.OutboxMessage) {
	sort.Slice(ms, func(i, j int) bool {
		if !ms[i].NextAttemptAt.Equal(ms[j].NextAttemptAt) {
			return ms[i].NextAttemptAt.Before(ms[j].NextAttemptAt)
		}
		return ms[i].ID < ms[j].ID
	})
}

// outboxUpdate runs an update of one undelivered message; when it touches
// nothing, it tells an unknown id (ErrNotFound) from a delivered one.
func (s *sqliteStore) outboxUpdate(ctx context.Context, id int64, q string, args ...any) (delivered bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		delivered = false // this may run twice (see tx)
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, "SELECT 1 FROM outbox WHERE id = ?", id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("outbox message %d: %w", id, ErrNotFound)
		}
		delivered = err == nil
		return err
	})
	return delivered, err
}

func (s *sqliteStore) MarkDelivered(ctx context.Context, id int64) error {
	if _, err := s.outboxUpdate(ctx, id, "UPDATE outbox SET delivered_at = ?, lease_until = NULL WHERE id = ? AND delivered_at IS NULL",
		us(UTC(time.Now())), id); err != nil {
		return fmt.Errorf("store: mark delivered: %w", err)
	}
	return nil
}

func (s *sqliteStore) MarkFailed(ctx context.Context, id int64, errMsg string, next time.Time) error {
	delivered, err := s.outboxUpdate(ctx, id, "UPDATE outbox SET last_error = ?, next_attempt_at = ?, lease_until = NULL WHERE id = ? AND delivered_at IS NULL",
		errMsg, us(UTC(next)), id)
	if err == nil && delivered {
		err = fmt.Errorf("outbox message %d was delivered: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: mark failed: %w", err)
	}
	return nil
}

const outboxStatsSQL = `SELECT
	COALESCE(SUM(CASE WHEN delivered_at IS NULL AND abandoned_at IS NULL THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN delivered_at IS NULL AND abandoned_at IS NULL AND lease_until > %[1]s THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN delivered_at IS NULL AND abandoned_at IS NULL AND last_error <> '' THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN abandoned_at IS NOT NULL THEN 1 ELSE 0 END), 0),
	MIN(CASE WHEN delivered_at IS NULL AND abandoned_at IS NULL THEN created_at END)
	FROM outbox`

func (s *sqliteStore) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	var oldest sql.NullInt64
	if err := s.r.QueryRowContext(ctx, fmt.Sprintf(outboxStatsSQL, "?"), us(UTC(time.Now()))).Scan(
		&st.Pending, &st.Leased, &st.Retrying, &st.Delivered, &st.Abandoned, &oldest); err != nil {
		return OutboxStats{}, fmt.Errorf("store: outbox stats: %w", err)
	}
	st.OldestPending = fromNullUS(oldest)
	return st, nil
}

// never is the next attempt of an abandoned message: no claim reaches it.
var never = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

func (s *sqliteStore) Abandon(ctx context.Context, id int64, errMsg string) error {
	now := UTC(time.Now())
	delivered, err := s.outboxUpdate(ctx, id, "UPDATE outbox SET abandoned_at = COALESCE(abandoned_at, ?), last_error = ?, next_attempt_at = ?, lease_until = NULL WHERE id = ? AND delivered_at IS NULL",
		us(now), errMsg, us(never), id)
	if delivered {
		err = fmt.Errorf("outbox message %d was delivered: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: abandon: %w", err)
	}
	return nil
}

func (s *sqliteStore) PurgeOutbox(ctx context.Context, deliveredBefore time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM outbox WHERE delivered_at < ? OR abandoned_at < ?", us(UTC(deliveredBefore)), us(UTC(deliveredBefore)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge outbox: %w", err)
	}
	return n, nil
}

// TryLeader takes an exclusive flock on PATH.leader-NAME.lock: exclusive
// across Store instances and processes on this host, released by release,
// Close, or the death of the process.
func (s *sqliteStore) TryLeader(ctx context.Context, name string) (func(), bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return func() {}, false, errors.New("store: try leader: store is closed")
	}
	if f, ok := s.leaders[name]; ok {
		return s.releaseLeader(name, f), true, nil
	}
	f, err := os.OpenFile(s.path+".leader-"+url.PathEscape(name)+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return func() {}, false, fmt.Errorf("store: try leader %s: %w", name, err)
	}
	ok, err := tryLockFile(f)
	if err != nil || !ok {
		f.Close()
		if err != nil {
			return func() {}, false, fmt.Errorf("store: try leader %s: %w", name, err)
		}
		return func() {}, false, nil
	}
	s.leaders[name] = f
	return s.releaseLeader(name, f), true, nil
}

func (s *sqliteStore) releaseLeader(name string, f *os.File) func() {
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.leaders[name] == f {
			delete(s.leaders, name)
			f.Close() // closing the descriptor drops the flock
		}
	}
}

func (s *sqliteStore) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

func (s *sqliteStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.stopWriting != nil {
		close(s.stopWriting)
		<-s.writerDone
	}
	for name, f := range s.leaders {
		f.Close()
		delete(s.leaders, name)
	}
	s.mu.Unlock()
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}
