//go:build !unix

package store

import "os"

// tryLockFile: without flock, a SQLite store is always the leader within
// its process (SQLite serves one process; several replicas use PostgreSQL).
func tryLockFile(*os.File) (bool, error) { return true, nil }
