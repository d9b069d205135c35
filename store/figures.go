package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// Figures are the statuses one scheduled evaluation of the leader measured,
// saved after each run so that the replicas that follow serve them (with
// their age) rather than nothing. The store keeps the latest per Name and
// does not read Statuses.
type Figures struct {
	// Name names the evaluation ("evaluation", the leadership's name).
	Name string
	// Replica is the id of the replica that measured them.
	Replica string
	// MeasuredAt is the run's instant (every status's evaluatedAt).
	MeasuredAt time.Time
	// SavedAt is set by the store.
	SavedAt time.Time
	// Statuses are the figures, encoded by the caller (JSON).
	Statuses []byte
}

// FiguresStore keeps the leader's latest figures (part of Store).
type FiguresStore interface {
	// SaveFigures keeps f as the latest figures of f.Name, unless figures
	// measured at or after f.MeasuredAt are stored already: a deposed
	// leader's late run never replaces a newer one (saved is then false).
	// SavedAt is now. Name, Replica, MeasuredAt and Statuses are required
	// (ErrInvalid).
	SaveFigures(ctx context.Context, f Figures) (saved bool, err error)
	// LatestFigures returns the latest figures of name when they were
	// measured after newerThan (zero: whenever); found is false when
	// there are none, or none newer, so a follower that has the latest
	// already reads no more than a row's absence.
	LatestFigures(ctx context.Context, name string, newerThan time.Time) (f Figures, found bool, err error)
}

func prepareFigures(f Figures, now time.Time) (Figures, error) {
	var errs []error
	if f.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if f.Replica == "" {
		errs = append(errs, errors.New("replica is required"))
	}
	if f.MeasuredAt.IsZero() {
		errs = append(errs, errors.New("measuredAt is required"))
	}
	if len(f.Statuses) == 0 {
		errs = append(errs, errors.New("statuses are required"))
	}
	if len(errs) > 0 {
		return Figures{}, fmt.Errorf("store: save figures: %w: %w", ErrInvalid, errors.Join(errs...))
	}
	f.MeasuredAt, f.SavedAt = UTC(f.MeasuredAt), UTC(now)
	return f, nil
}

const upsertFigures = `INSERT INTO leader_figures (name, replica, measured_at, saved_at, statuses) VALUES (%[1]s, %[2]s, %[3]s, %[4]s, %[5]s)
	ON CONFLICT (name) DO UPDATE SET replica = excluded.replica, measured_at = excluded.measured_at,
		saved_at = excluded.saved_at, statuses = excluded.statuses
	WHERE leader_figures.measured_at < excluded.measured_at`

func (s *pgStore) SaveFigures(ctx context.Context, f Figures) (bool, error) {
	f, err := prepareFigures(f, time.Now())
	if err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, fmt.Sprintf(upsertFigures, "$1", "$2", "$3", "$4", "$5"),
		f.Name, f.Replica, f.MeasuredAt, f.SavedAt, f.Statuses)
	if err != nil {
		return false, fmt.Errorf("store: save figures of %s: %w", f.Name, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *pgStore) LatestFigures(ctx context.Context, name string, newerThan time.Time) (Figures, bool, error) {
	f := Figures{Name: name}
	err := s.pool.QueryRow(ctx, `SELECT replica, measured_at, saved_at, statuses FROM leader_figures
		WHERE name = $1 AND measured_at > $2`, name, UTC(newerThan)).Scan(&f.Replica, &f.MeasuredAt, &f.SavedAt, &f.Statuses)
	if errors.Is(err, pgx.ErrNoRows) {
		return Figures{}, false, nil
	}
	if err != nil {
		return Figures{}, false, fmt.Errorf("store: latest figures of %s: %w", name, err)
	}
	f.MeasuredAt, f.SavedAt = UTC(f.MeasuredAt), UTC(f.SavedAt)
	return f, true, nil
}

func (s *sqliteStore) SaveFigures(ctx context.Context, f Figures) (bool, error) {
	f, err := prepareFigures(f, time.Now())
	if err != nil {
		return false, err
	}
	var saved bool
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, fmt.Sprintf(upsertFigures, "?", "?", "?", "?", "?"),
			f.Name, f.Replica, us(f.MeasuredAt), us(f.SavedAt), f.Statuses)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		saved = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: save figures of %s: %w", f.Name, err)
	}
	return saved, nil
}

func (s *sqliteStore) LatestFigures(ctx context.Context, name string, newerThan time.Time) (Figures, bool, error) {
	f := Figures{Name: name}
	var measured, saved int64
	newer := int64(math.MinInt64)
	if !newerThan.IsZero() {
		newer = us(UTC(newerThan))
	}
	err := s.r.QueryRowContext(ctx, `SELECT replica, measured_at, saved_at, statuses FROM leader_figures
		WHERE name = ? AND measured_at > ?`, name, newer).Scan(&f.Replica, &measured, &saved, &f.Statuses)
	if errors.Is(err, sql.ErrNoRows) {
		return Figures{}, false, nil
	}
	if err != nil {
		return Figures{}, false, fmt.Errorf("store: latest figures of %s: %w", name, err)
	}
	f.MeasuredAt, f.SavedAt = fromUS(measured), fromUS(saved)
	return f, true, nil
}
