package store_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/store"
	"github.com/slogate/slogate/store/storetest"
)

func sqliteDSN(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "data", "slogate.db")
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, storetest.PerTest(func(t *testing.T) string { return sqliteDSN(t) }))
}

func TestPostgres(t *testing.T) {
	server := testenv.StartPostgres(t)
	storetest.Run(t, storetest.PerTest(func(t *testing.T) string { return testenv.PostgresDatabase(t, server) }))
}

// Replicas starting at once against an empty database must apply the
// migrations once between them and all come up.
func TestMigrationsUnderConcurrentStarts(t *testing.T) {
	backends := map[string]func(t *testing.T) string{
		"sqlite replicas starting at once all come up on one schema": func(t *testing.T) string { return sqliteDSN(t) },
		"postgres replicas starting at once all come up on one schema": func(t *testing.T) string {
			return testenv.StartPostgres(t)
		},
	}
	for name, newDSN := range backends {
		t.Run(name, func(t *testing.T) {
			dsn := newDSN(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			const n = 4
			stores := make([]store.Store, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { stores[i], errs[i] = store.Open(ctx, dsn, nil) })
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("replica %d: %v", i, errs[i])
				}
				defer stores[i].Close()
			}
			d, _, err := stores[0].CreateDeploy(ctx, slogate.Deploy{Service: "s", Environment: "e", Version: "v"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stores[n-1].GetDeploy(ctx, d.ID); err != nil {
				t.Errorf("another replica does not see the deploy: %v", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	tests := map[string]struct {
		dsn  string
		want error
	}{
		"an unknown scheme is refused":            {dsn: "mysql://localhost/db", want: store.ErrInvalid},
		"an in-memory sqlite database is refused": {dsn: "sqlite::memory:", want: store.ErrInvalid},
		"an unknown sqlite option is refused":     {dsn: "sqlite:" + filepath.Join(t.TempDir(), "x.db") + "?cache=shared", want: store.ErrInvalid},
		"a malformed postgres dsn is refused":     {dsn: "postgres://a:b@host:notaport/db", want: store.ErrInvalid},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := store.Open(context.Background(), tc.dsn, nil)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open(%q) = %v, want %v", tc.dsn, err, tc.want)
			}
			if strings.Contains(fmt.Sprint(err), ":b@") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	t.Run("a sqlite path in a missing directory is created, in WAL mode with synchronous FULL", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "a", "b", "slogate.db")
		s, err := store.Open(context.Background(), "sqlite:"+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p + "-wal"); err != nil {
			t.Errorf("no write-ahead log next to the database: %v", err)
		}
	})
}

const durabilityChildEnv = "SLOGATE_STORE_DURABILITY_CHILD"

// TestSQLiteKeepsAcknowledgedWritesOnKill starts a child process (this test
// binary again) that records deploys from several goroutines and prints the
// id of each one CreateDeploy acknowledged; the parent kills it with SIGKILL
// in the middle of the stream, reopens the database and looks for every
// acknowledged id.
func TestSQLiteKeepsAcknowledgedWritesOnKill(t *testing.T) {
	if path := os.Getenv(durabilityChildEnv); path != "" {
		durabilityChild(path)
		return
	}
	dsn := sqliteDSN(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteKeepsAcknowledgedWritesOnKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), durabilityChildEnv+"="+dsn)
	p := testenv.Start(t, "durability child", cmd)

	acked := func() []string {
		var ids []string
		sc := bufio.NewScanner(strings.NewReader(p.Output()))
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
				ids = append(ids, id)
			}
		}
		return ids
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(acked()) < 300 {
		if p.Exited() {
			t.Fatalf("the child exited before it was killed:\n%s", p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child acknowledged %d deploys in 2 minutes", len(acked()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	ids := acked()
	t.Logf("the child acknowledged %d deploys before SIGKILL", len(ids))

	ctx := context.Background()
	s, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	for _, id := range ids {
		if _, err := s.GetDeploy(ctx, id); err != nil {
			t.Errorf("acknowledged deploy %s lost: %v", id, err)
		}
	}
	db, err := sql.Open("sqlite", strings.TrimPrefix(dsn, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
}

func durabilityChild(dsn string) {
	ctx := context.Background()
	s, err := store.Open(ctx, dsn, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				d, _, err := s.CreateDeploy(ctx, slogate.Deploy{Service: "s", Environment: "e", Version: fmt.Sprintf("w%d-%d", w, i)},
					fmt.Sprintf("w%d-%d", w, i), slogate.OutboxMessage{Key: fmt.Sprintf("w%d-%d", w, i), Peer: "grafana"})
				if err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(3)
				}
				mu.Lock()
				out.WriteString("ACK " + d.ID + "\n")
				out.Flush() // acknowledged: the parent may count on it from now on
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// On PostgreSQL leadership is a session advisory lock: when the holder's
// session dies, another replica takes over, and the old holder learns it on
// its next TryLeader.
func TestPostgresLeadershipPassesWhenTheHolderSessionDies(t *testing.T) {
	dsn := testenv.StartPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func() store.Store {
		s, err := store.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	if _, ok, err := a.TryLeader(ctx, "evaluation"); err != nil || !ok {
		t.Fatalf("a: %v %v", ok, err)
	}
	if _, ok, err := b.TryLeader(ctx, "evaluation"); err != nil || ok {
		t.Fatalf("b while a holds the lock: leads %v, err %v; want not the leader and no error", ok, err)
	}
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted) k`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d sessions holding an advisory lock (%v), want 1", killed, err)
	}
	var ok bool
	for range 100 { // the server ends the session asynchronously
		if _, ok, err = b.TryLeader(ctx, "evaluation"); err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !ok {
		t.Fatal("b did not take over after a's session died")
	}
	if _, ok, err := a.TryLeader(ctx, "evaluation"); err != nil || ok {
		t.Errorf("a after losing its session: ok=%v err=%v, want not the leader", ok, err)
	}
}

// Concurrent writes share SQLite commits (group commit); a write that fails
// must undo only itself, and every acknowledged write must be there.
func TestSQLiteGroupCommitIsolatesFailures(t *testing.T) {
	dsn := sqliteDSN(t)
	s, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	taken := slogate.Deploy{ID: "dep_taken", Service: "s", Environment: "e", Version: "v0"}
	if _, _, err := s.CreateDeploy(ctx, taken, ""); err != nil {
		t.Fatal(err)
	}
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := slogate.Deploy{Service: "s", Environment: "e", Version: fmt.Sprintf("v%d", i+1)}
			if i%3 == 0 {
				d.ID = "dep_taken" // refused: the id exists
			}
			_, _, errs[i] = s.CreateDeploy(ctx, d, "", slogate.OutboxMessage{Key: fmt.Sprintf("k%d", i), Peer: "grafana"})
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case i%3 == 0 && !errors.Is(err, store.ErrConflict):
			t.Errorf("write %d with a taken id: %v, want ErrConflict", i, err)
		case i%3 != 0 && err != nil:
			t.Errorf("write %d: %v", i, err)
		case err == nil:
			ok++
		}
	}
	all, _, err := s.ListDeploys(ctx, store.DeployFilter{Service: "s", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != ok+1 {
		t.Errorf("%d deploys stored, want the %d acknowledged ones and the first", len(all), ok)
	}
	msgs, err := s.ClaimOutbox(ctx, "grafana", 1000, time.Minute, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != ok {
		t.Errorf("%d outbox messages, want %d: a refused write's messages must be undone with it", len(msgs), ok)
	}
}

// Close gives the leadership up at once: the next instance to ask gets it,
// with no wait for the server to end the closed session (it does so
// asynchronously after the socket closes, so a bare close lost this race
// about one time in ten).
func TestPostgresCloseGivesLeadershipUpAtOnce(t *testing.T) {
	dsn := testenv.StartPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	open := func() store.Store {
		s, err := store.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	b := open()
	for i := range 40 {
		a := open()
		if _, ok, err := a.TryLeader(ctx, "evaluation"); err != nil || !ok {
			t.Fatalf("round %d: a: %v %v", i, ok, err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		release, ok, err := b.TryLeader(ctx, "evaluation")
		if err != nil || !ok {
			t.Fatalf("round %d: b right after a closed: leads %v, err %v; want the leader", i, ok, err)
		}
		release()
	}
}
