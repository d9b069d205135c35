package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/store"
)

// BenchmarkCreateDeploy measures Store.CreateDeploy (with an idempotency
// key, as the API calls it) against a baseline in the same run on the same
// database: a bare autocommit INSERT of the same row through database/sql
// (SQLite, one connection with the store's pragmas) or pgxpool
// (PostgreSQL). Both report deploys/s.
func BenchmarkCreateDeploy(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		dsn := sqliteDSN(b)
		s := openBench(b, dsn)
		path := strings.TrimPrefix(dsn, "sqlite:")
		db, err := sql.Open("sqlite", path+"?_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL")
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		b.Cleanup(func() { db.Close() })
		insert := func(ctx context.Context, id string, now time.Time) error {
			_, err := db.ExecContext(ctx, `INSERT INTO deploys (id, service, environment, version, labels, started_at, status, created_at)
				VALUES (?, 'checkout', 'production', 'v2', '{"team":"payments"}', ?, 'running', ?)`, id, now.UnixMicro(), now.UnixMicro())
			return err
		}
		runBench(b, s, insert)
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := testenv.StartPostgres(b)
		s := openBench(b, dsn)
		pool, err := pgxpool.New(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		insert := func(ctx context.Context, id string, now time.Time) error {
			_, err := pool.Exec(ctx, `INSERT INTO deploys (id, service, environment, version, labels, started_at, status, created_at)
				VALUES ($1, 'checkout', 'production', 'v2', '{"team":"payments"}', $2, 'running', $2)`, id, now)
			return err
		}
		runBench(b, s, insert)
	})
}

func openBench(b *testing.B, dsn string) store.Store {
	s, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

var benchSeq atomic.Int64

func runBench(b *testing.B, s store.Store, insert func(ctx context.Context, id string, now time.Time) error) {
	ctx := context.Background()
	create := func() error {
		n := benchSeq.Add(1)
		_, _, err := s.CreateDeploy(ctx, slogate.Deploy{Service: "checkout", Environment: "production", Version: "v2",
			Labels: map[string]string{"team": "payments"}}, fmt.Sprintf("bench-%d", n))
		return err
	}
	bare := func() error {
		return insert(ctx, fmt.Sprintf("dep_bench_%d", benchSeq.Add(1)), time.Now())
	}
	for _, c := range []struct {
		name string
		op   func() error
	}{{"store", create}, {"baseline-insert", bare}} {
		b.Run(c.name+"/serial", func(b *testing.B) {
			for b.Loop() {
				if err := c.op(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deploys/s")
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.op(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deploys/s")
		})
	}
}
