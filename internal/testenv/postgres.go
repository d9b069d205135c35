package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL for tests.
//
// Design: initdb runs once per machine and PostgreSQL version (about 2 s on
// two cores), into a template cluster cached under os.TempDir() (built in a
// temporary directory and renamed into place, so test binaries running at
// once never see half of it). Each StartPostgres copies the template (about
// 0.5 s), starts its own server on a free port with t.Cleanup stopping it by
// PID, and creates a database; PostgresDatabase adds more databases on the
// same server (tens of milliseconds each). A server per test, not per test
// binary, keeps every server's life inside a test's cleanups, with no
// TestMain needed and nothing left running when a test binary is killed
// between tests.
//
// PostgreSQL refuses to run as root: as root, the cluster belongs to the
// postgres user and initdb and postgres run with its credentials (set on
// the process itself rather than through runuser, so the PID the test
// holds is the postmaster's and a signal to it reaches the server).

const pgSuperuser = "postgres"

// MinPostgresVersion is the oldest PostgreSQL major version the store is
// tested to need (FOR UPDATE SKIP LOCKED, data-modifying CTEs, advisory
// locks; 13 is the oldest major version still supported upstream).
const MinPostgresVersion = 13

var (
	pgTemplateMu   sync.Mutex
	pgTemplateDirs = map[string]string{} // initdb path → template cluster
	pgDBCounter    atomic.Int64
)

// pgRunAs is the account the server runs as: nil for the current user, or
// the postgres user's credential when running as root.
func pgRunAs(t testing.TB) (*syscall.Credential, int, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, os.Geteuid(), os.Getegid()
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		Unavailable(t, "running as root and there is no postgres user to run PostgreSQL as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid
}

func pgCommand(cred *syscall.Credential, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd
}

// pgTemplate returns the template cluster for initdb, making it if needed.
func pgTemplate(t testing.TB, initdb string, cred *syscall.Credential, uid, gid int) string {
	t.Helper()
	pgTemplateMu.Lock()
	defer pgTemplateMu.Unlock()
	if dir, ok := pgTemplateDirs[initdb]; ok {
		return dir
	}
	version, err := exec.Command(initdb, "--version").Output()
	if err != nil {
		Unavailable(t, "%s --version: %v", initdb, err)
	}
	sum := sha256.Sum256([]byte(initdb + "\x00" + string(version)))
	final := filepath.Join(os.TempDir(), fmt.Sprintf("slogate-pg-template-%d-%s", os.Geteuid(), hex.EncodeToString(sum[:6])))
	if _, err := os.Stat(filepath.Join(final, "ready")); err == nil {
		pgTemplateDirs[initdb] = final
		return final
	}

	tmp, err := os.MkdirTemp(os.TempDir(), "slogate-pg-template-build-")
	if err != nil {
		t.Fatalf("postgres template: %v", err)
	}
	defer os.RemoveAll(tmp) // gone after the rename; left-overs of a failure otherwise
	if err := chownTree(tmp, uid, gid); err != nil {
		t.Fatalf("postgres template: %v", err)
	}
	cmd := pgCommand(cred, tmp, initdb, "-D", filepath.Join(tmp, "data"), "-U", pgSuperuser, "--auth=trust",
		"--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		Unavailable(t, "initdb: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, "ready"), []byte(version), 0o644); err != nil {
		t.Fatalf("postgres template: %v", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another test binary put its template there first: use that one.
		if _, statErr := os.Stat(filepath.Join(final, "ready")); statErr != nil {
			t.Fatalf("postgres template: %v", err)
		}
	}
	pgTemplateDirs[initdb] = final
	return final
}

func chownTree(dir string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// StartPostgres starts a private PostgreSQL server (the Debian postgresql
// package's, found in /usr/lib/postgresql/*/bin) on 127.0.0.1 and a free
// port, with fsync off, for the life of t, and returns the DSN of an empty
// database on it. Under CI=true a server that cannot be started fails the
// test; elsewhere it skips.
func StartPostgres(t testing.TB) string {
	t.Helper()
	dirs := []string{"/usr/lib/postgresql/*/bin"}
	initdb := Binary(t, "initdb", "postgresql", dirs...)
	postgres := filepath.Join(filepath.Dir(initdb), "postgres")
	if _, err := os.Stat(postgres); err != nil {
		postgres = Binary(t, "postgres", "postgresql", dirs...)
	}
	cred, uid, gid := pgRunAs(t)
	template := pgTemplate(t, initdb, cred, uid, gid)

	// Not t.TempDir(): its parents are private to root, and the server may
	// run as postgres. The socket path must stay under 107 bytes, too.
	dir, err := os.MkdirTemp("", "slogate-pg-")
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // registered first, so it runs after the server stopped
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	if out, err := exec.Command("cp", "-a", filepath.Join(template, "data"), data).CombinedOutput(); err != nil {
		t.Fatalf("postgres: copy the template cluster: %v\n%s", err, out)
	}
	if err := os.Mkdir(sock, 0o700); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if err := chownTree(dir, uid, gid); err != nil {
		t.Fatalf("postgres: %v", err)
	}

	// The port was free a moment ago; if someone took it meanwhile the
	// server exits at once and we try another.
	var lastOut string
	for attempt := 0; attempt < 3; attempt++ {
		port := FreePort(t)
		cmd := pgCommand(cred, dir, postgres, "-D", data,
			"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-c", "unix_socket_directories="+sock,
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=200", "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning")
		p := Start(t, "postgres", cmd)
		// Runs before Start's own cleanup: a fast shutdown (SIGINT), which
		// does not wait for clients to disconnect as SIGTERM's does.
		t.Cleanup(func() { stopPostgres(p) })
		base := fmt.Sprintf("postgres://%s@127.0.0.1:%d/", pgSuperuser, port)
		if err := waitPostgres(p, base+"postgres?sslmode=disable", 30*time.Second); err != nil {
			lastOut = p.Output()
			if p.Exited() && strings.Contains(lastOut, "could not bind") {
				continue
			}
			Unavailable(t, "postgres did not start: %v\n%s", err, lastOut)
		}
		return PostgresDatabase(t, base+"postgres?sslmode=disable")
	}
	Unavailable(t, "postgres could not bind a free port in 3 attempts:\n%s", lastOut)
	return ""
}

func stopPostgres(p *Process) {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGINT)
	deadline := time.Now().Add(10 * time.Second)
	for !p.Exited() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

func waitPostgres(p *Process, dsn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, dsn)
		if err == nil {
			err = conn.Ping(cctx)
			conn.Close(cctx)
		}
		ccancel()
		if err == nil {
			return nil
		}
		if p.Exited() {
			return errors.New("the server exited")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections after %s: %w", timeout, err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// PostgresDatabase creates another empty database on the server of dsn (a
// DSN StartPostgres returned) and returns its DSN.
func PostgresDatabase(t testing.TB, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("postgres database: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("postgres database: %v", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), pgDBCounter.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("postgres database: %v", err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
}
