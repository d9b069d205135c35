package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// update rewrites the golden files under testdata/ instead of comparing
// with them: go test ./cmd/slogate/ -update (or make golden).
var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// cliResult is what one call of run left behind.
type cliResult struct {
	code           int // the process' exit code: 0, or exitCode(err)
	err            error
	stdout, stderr string
}

// runCLI calls run as main does, with args, an environment of its own and
// buffers for the output, and returns the exit code main would exit with.
func runCLI(t testing.TB, env map[string]string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err := run(ctx, args, getenv, &stdout, &stderr)
	r := cliResult{code: exitOK, err: err, stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		r.code = exitCode(err)
	}
	return r
}

// golden compares got with testdata/name, or rewrites the file under
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatalf("update %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/slogate/ -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./cmd/slogate/ -update rewrites it; check the diff)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
