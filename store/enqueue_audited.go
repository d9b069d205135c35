package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slogate/slogate"
)

// AuditedEnqueuer enqueues outbox messages and writes audit entries in one
// transaction (part of Store): the alert tracker saves the states an
// evaluation changes (audit action alert.state) with the notifications of
// those changes, so a crash between the two can neither send a trigger a
// second time (its state lost) nor lose one.
type AuditedEnqueuer interface {
	// EnqueueWithAudit adds the messages (a duplicate key is ignored, as
	// Enqueue) and the entries, all or nothing.
	EnqueueWithAudit(ctx context.Context, entries []AuditEntry, outbox ...slogate.OutboxMessage) error
}

func prepareAudited(entries []AuditEntry, outbox []slogate.OutboxMessage, now time.Time) ([]AuditEntry, []slogate.OutboxMessage, error) {
	msgs, err := prepareOutbox(outbox, now)
	if err != nil {
		return nil, nil, err
	}
	es := make([]AuditEntry, len(entries))
	for i, e := range entries {
		if es[i], err = prepareAudit(e, now); err != nil {
			return nil, nil, fmt.Errorf("audit entry %d: %w", i, err)
		}
	}
	return es, msgs, nil
}

func (s *pgStore) EnqueueWithAudit(ctx context.Context, entries []AuditEntry, outbox ...slogate.OutboxMessage) error {
	es, msgs, err := prepareAudited(entries, outbox, time.Now())
	if err != nil {
		return fmt.Errorf("store: enqueue with audit: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := pgEnqueue(ctx, tx, msgs); err != nil {
			return err
		}
		for _, e := range es {
			if err := pgAudit(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: enqueue with audit: %w", err)
	}
	return nil
}

func (s *sqliteStore) EnqueueWithAudit(ctx context.Context, entries []AuditEntry, outbox ...slogate.OutboxMessage) error {
	es, msgs, err := prepareAudited(entries, outbox, time.Now())
	if err != nil {
		return fmt.Errorf("store: enqueue with audit: %w", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := sqliteEnqueue(ctx, tx, msgs); err != nil {
			return err
		}
		for _, e := range es {
			if err := sqliteAudit(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: enqueue with audit: %w", err)
	}
	return nil
}
