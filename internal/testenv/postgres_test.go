package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestStartPostgres(t *testing.T) {
	var dsn string
	t.Run("a server starts and serves an empty database of its own", func(t *testing.T) {
		dsn = StartPostgres(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		// Any supported PostgreSQL will do (Debian 12 has 15, Ubuntu 24.04
		// 16, Debian 13 17): the store needs MinPostgresVersion.
		var num int
		if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
			t.Fatal(err)
		}
		if num/10000 < MinPostgresVersion {
			t.Errorf("server_version_num = %d, want PostgreSQL %d or later", num, MinPostgresVersion)
		}
		var fsync string
		if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
			t.Errorf("fsync = %q (%v), want off", fsync, err)
		}
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables); err != nil || tables != 0 {
			t.Errorf("public tables = %d (%v), want an empty database", tables, err)
		}

		other := PostgresDatabase(t, dsn)
		if other == dsn {
			t.Fatalf("PostgresDatabase returned the same DSN %s", dsn)
		}
		conn2, err := pgx.Connect(ctx, other)
		if err != nil {
			t.Fatalf("connect to the second database: %v", err)
		}
		defer conn2.Close(ctx)
		if _, err := conn2.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables); err != nil || tables != 0 {
			t.Errorf("a table in the second database shows in the first: %d (%v)", tables, err)
		}
	})
	if dsn == "" {
		return
	}
	t.Run("the server is stopped when its test ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			conn.Close(ctx)
			t.Fatalf("the server of a finished test still accepts connections at %s", dsn)
		}
	})
}

func TestStartPostgresTwoServersAtOnce(t *testing.T) {
	t.Run("two tests get two servers", func(t *testing.T) {
		dsns := make(chan string, 2)
		for _, name := range []string{"first server", "second server"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				dsns <- StartPostgres(t)
			})
		}
		t.Cleanup(func() {
			close(dsns)
			var got []string
			for d := range dsns {
				got = append(got, d)
			}
			if len(got) == 2 && got[0] == got[1] {
				t.Errorf("two servers share the DSN %s", got[0])
			}
		})
	})
}
