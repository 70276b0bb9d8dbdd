package memstore_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/sqlite"
	"github.com/gatehouse/gatehouse/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) gatehouse.Store { return memstore.New() })
}

// The store's dumps carry the schema version of the databases, so that an
// archive of it restores into SQLite or PostgreSQL: a new migration must
// come with what it adds here.
func TestSchemaVersionIsTheDatabases(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, latest, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if latest != memstore.SchemaVersion {
		t.Errorf("memstore.SchemaVersion = %d, the SQLite schema is at %d", memstore.SchemaVersion, latest)
	}
}

func TestClosedIsUnavailable(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := s.CheckWritable(t.Context()); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("CheckWritable(closed) = %v, want ErrUnavailable", err)
	}
	if _, _, err := s.LoadPolicy(t.Context()); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("LoadPolicy(closed) = %v, want ErrUnavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}
