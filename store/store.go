// Package store persists the gate service's deploys, decisions, overrides,
// audit log and notification outbox, in SQLite (one process, the embedded
// default) or PostgreSQL (several replicas), behind one interface. Both
// implementations pass the same conformance suite (store/storetest).
//
// Times are stored in UTC with microsecond precision: every time a Store
// returns is UTC, truncated to the microsecond, and reads back identical.
// Times given to queries (Since, before, at, now) are truncated the same
// way, so comparisons are made at microsecond precision.
package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/slogate/slogate"
)

// Outcomes callers branch on.
var (
	// ErrNotFound: no record with that id (or nothing matches).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change contradicts what is stored (a deploy already
	// finished with another status, an id already taken, an override
	// already revoked).
	ErrConflict = errors.New("conflict")
	// ErrIdempotencyConflict: an idempotency key was reused with a different
	// request body.
	ErrIdempotencyConflict = errors.New("idempotency key reused with a different body")
	// ErrInvalid: the input is missing a required field or is malformed (a
	// bad cursor, an unknown status).
	ErrInvalid = errors.New("invalid input")
)

// Audit actions written by the store itself.
const (
	ActionDeployCreated   = "deploy.created"
	ActionOverrideCreated = "override.created"
	ActionOverrideRevoked = "override.revoked"
)

// DeployFilter selects deploys, newest (by StartedAt) first.
type DeployFilter struct {
	Service     string    // optional
	Environment string    // optional
	Since       time.Time // optional: StartedAt >= Since
	Before      time.Time // optional: StartedAt <= Before
	Limit       int       // default 50, at most 1000
	Cursor      string    // from the previous page; empty for the first
}

// DecisionFilter selects decisions, newest (by EvaluatedAt) first.
type DecisionFilter struct {
	Service     string
	Environment string
	DeployID    string
	Since       time.Time
	Limit       int
	Cursor      string
}

// Override is a break-glass lifting of the error-budget policy for a
// service in an environment, from CreatedAt until ExpiresAt or RevokedAt.
type Override struct {
	ID          string // "ovr_" + random; generated when empty
	Service     string
	Environment string
	Reason      string
	CreatedBy   string
	CreatedAt   time.Time // defaults to now
	ExpiresAt   time.Time // required, after CreatedAt
	RevokedAt   *time.Time
	RevokedBy   string
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID      int64 // assigned by the store, increasing
	At      time.Time
	Actor   string
	Action  string
	Subject string
	Detail  string // free text, JSON by convention
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	Actor   string
	Action  string
	Subject string
	Since   time.Time
	Limit   int
	Cursor  string
}

// OutboxStats summarises the outbox at the time of the call.
type OutboxStats struct {
	Pending       int64      // not delivered (leased and retrying ones included)
	Leased        int64      // claimed and within their lease
	Retrying      int64      // not delivered, with at least one failed attempt
	Delivered     int64      // delivered
	Abandoned     int64      // given up on (Abandon): never delivered, never claimed again
	OldestPending *time.Time // CreatedAt of the oldest undelivered message
}

// Store is the persistence of the gate service.
type Store interface {
	// CreateDeploy stores d and, in the same transaction, its audit entry
	// (ActionDeployCreated by d.CreatedBy) and the outbox
	// messages (a message whose key is already enqueued is ignored). With a
	// non-empty idempotencyKey a second call with the same key stores
	// nothing and returns the first deploy with created=false, or
	// ErrIdempotencyConflict when the body differs. The body is every field
	// but ID, CreatedAt and CreatedBy, as given (a zero StartedAt, which
	// defaults to CreatedAt, compares equal to another zero StartedAt). A
	// zero CreatedAt is now; a given one is kept.
	CreateDeploy(ctx context.Context, d slogate.Deploy, idempotencyKey string, outbox ...slogate.OutboxMessage) (stored slogate.Deploy, created bool, err error)
	GetDeploy(ctx context.Context, id string) (slogate.Deploy, error)
	// ListDeploys returns one page, newest first, and the cursor of the
	// next page ("" after the last).
	ListDeploys(ctx context.Context, f DeployFilter) ([]slogate.Deploy, string, error)
	// FinishDeploy records the final status and, in the same transaction,
	// the outbox messages. Finishing again with the same status returns
	// the deploy as it is and enqueues nothing; with another, ErrConflict.
	FinishDeploy(ctx context.Context, id, status string, finishedAt time.Time, outbox ...slogate.OutboxMessage) (slogate.Deploy, error)
	// LatestDeploy is the newest deploy of service in env started strictly
	// before the given time, or ErrNotFound.
	LatestDeploy(ctx context.Context, service, env string, before time.Time) (slogate.Deploy, error)

	// SaveDecision stores d and the outbox messages in one transaction.
	// Saving the same evaluation id again with the same body is a no-op;
	// with another body, ErrConflict.
	SaveDecision(ctx context.Context, d slogate.DecisionRecord, outbox ...slogate.OutboxMessage) (slogate.DecisionRecord, error)
	GetDecision(ctx context.Context, evaluationID string) (slogate.DecisionRecord, error)
	ListDecisions(ctx context.Context, f DecisionFilter) ([]slogate.DecisionRecord, string, error)

	// CreateOverride stores o and its audit entry in one transaction.
	CreateOverride(ctx context.Context, o Override) (Override, error)
	// RevokeOverride ends an override now and audits it in the same
	// transaction: ErrNotFound, or ErrConflict when already revoked.
	RevokeOverride(ctx context.Context, id, by string) (Override, error)
	// ActiveOverride is the newest override of service in env in force at
	// the given time.
	ActiveOverride(ctx context.Context, service, env string, at time.Time) (Override, bool, error)

	Audit(ctx context.Context, e AuditEntry) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, string, error)

	// ClaimOutbox leases up to limit due messages of peer ("" for every
	// peer) until now+lease, oldest due first, and counts the attempt. A
	// leased message is claimed by no one else until its lease ends, also
	// by another replica.
	ClaimOutbox(ctx context.Context, peer string, limit int, lease time.Duration, now time.Time) ([]slogate.OutboxMessage, error)
	// MarkDelivered ends a message (ErrNotFound if unknown; again is a no-op).
	MarkDelivered(ctx context.Context, id int64) error
	// MarkFailed releases the lease, records the error and when to try
	// next (ErrNotFound; ErrConflict if it was delivered).
	MarkFailed(ctx context.Context, id int64, errMsg string, next time.Time) error
	OutboxStats(ctx context.Context) (OutboxStats, error)
	// Abandon gives up on an undelivered message: it keeps its error, is
	// never claimed again and no longer counts as pending (ErrNotFound;
	// ErrConflict if it was delivered).
	Abandon(ctx context.Context, id int64, errMsg string) error
	// Enqueue adds outbox messages on their own, for events that are not
	// a deploy or a decision (a duplicate key is ignored).
	Enqueue(ctx context.Context, outbox ...slogate.OutboxMessage) error
	// PurgeOutbox deletes the messages delivered, or abandoned, before the
	// given time.
	PurgeOutbox(ctx context.Context, deliveredBefore time.Time) (int64, error)

	// TryLeader takes the named leadership if no other instance holds it.
	// It is re-entrant: an instance that holds it gets ok again, after a
	// check that its hold is still alive (on PostgreSQL the lock belongs to
	// a dedicated session and passes to another replica when that session
	// dies), so a scheduler calls it before each leader-only run. release
	// gives it up; Close releases everything.
	TryLeader(ctx context.Context, name string) (release func(), ok bool, err error)

	// The leader's latest figures, for the followers (internal/figures).
	FiguresStore
	// Outbox messages and audit entries in one transaction
	// (enqueue_audited.go).
	AuditedEnqueuer

	Ping(ctx context.Context) error
	Close() error
}

// Open opens the store a DSN names and applies pending migrations:
// "sqlite:PATH" (the directory is created; "sqlite:PATH?synchronous=normal"
// trades durability on power loss for speed) or "postgres://..." /
// "postgresql://..." (pgxpool settings such as pool_max_conns are accepted).
func Open(ctx context.Context, dsn string, logger *slog.Logger) (Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "store")
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), logger)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn, logger)
	default:
		return nil, fmt.Errorf("store: unknown DSN scheme (want sqlite: or postgres://): %w", ErrInvalid)
	}
}

// NewID returns prefix + "_" + 26 random base32 characters (128 bits).
func NewID(prefix string) string {
	return prefix + "_" + strings.ToLower(rand.Text())
}

// UTC is the form in which the store keeps a time: UTC, truncated to the
// microsecond, without a monotonic reading.
func UTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := UTC(*t)
	return &u
}
