// Package testenv starts the real peers slogate is tested against
// (Prometheus, Alertmanager, PostgreSQL) on 127.0.0.1 with free ports, and
// stops them by the PID it started. Under CI=true a peer that cannot be
// started fails the test; elsewhere it skips with the install line.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CI reports whether the tests run under CI (CI=true), where a missing peer
// is a failure, never a skip.
func CI() bool { return os.Getenv("CI") == "true" }

// Unavailable ends the test because a peer is missing: a failure under CI,
// a skip elsewhere.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("%s (CI=true: a test that needs a real server never skips; run `make deps` as root)", msg)
	}
	t.Skipf("%s (run `make deps` as root to install it)", msg)
}

// Binary finds an executable on PATH or in the extra directories, or ends
// the test through Unavailable naming the Debian package that provides it.
func Binary(t testing.TB, name, debPackage string, dirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		matches, _ := filepath.Glob(filepath.Join(d, name))
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.Mode()&0o111 != 0 {
				return m
			}
		}
	}
	Unavailable(t, "%s not found: apt-get install -y --no-install-recommends %s", name, debPackage)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a peer started by a test.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Output is what the process printed so far (stdout and stderr).
func (p *Process) Output() string { return p.out.String() }

// Start runs a peer and registers its stop (SIGTERM to its PID, SIGKILL
// after 10 s) with t.Cleanup. The process' output is logged when the test
// fails.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: name, Cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Output())
		}
	})
	return p
}

// Stop ends the process by its PID: SIGTERM, then SIGKILL after 10 s.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process at once (SIGKILL), as a crash would.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitHTTP polls url until it answers 200, the process exits, or the
// timeout passes; the last two fail the test.
func WaitHTTP(t testing.TB, p *Process, url string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p != nil && p.Exited() {
			t.Fatalf("%s exited before %s was ready:\n%s", p.Name, url, p.Output())
		}
		select {
		case <-ctx.Done():
			out := ""
			if p != nil {
				out = p.Output()
			}
			t.Fatalf("%s not ready after %s:\n%s", url, timeout, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
