package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/slogate/slogate/store"
)

// SQLite opens a store on a fresh SQLite file under t's temporary
// directory, closed when t ends: the store of a use case's tests.
func SQLite(t testing.TB) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "slogate.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
