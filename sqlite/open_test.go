package sqlite_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sqlite"
)

// Open names what is wrong with a path it cannot use, each problem with its
// sentinel, so that a surface says "the directory does not exist" rather
// than "locked, try again".
func TestOpenProblems(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.db")
	exec(t, raw(t, foreign), `CREATE TABLE invoices (id INTEGER PRIMARY KEY)`)
	tests := []struct {
		name     string
		path     string
		problem  sqlite.OpenProblem
		sentinel error
	}{
		{"missing directory", filepath.Join(dir, "no", "such", "x.db"), sqlite.ProblemMissingDirectory, gatehouse.ErrUnavailable},
		{"directory", dir, sqlite.ProblemIsDirectory, gatehouse.ErrUnavailable},
		{"garbage", garbage, sqlite.ProblemNotDatabase, gatehouse.ErrCorrupt},
		{"another application's database", foreign, sqlite.ProblemNotDatabase, gatehouse.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sqlite.Open(t.Context(), tt.path)
			var oe *sqlite.OpenError
			if !errors.As(err, &oe) || oe.Problem != tt.problem || oe.Path != tt.path || !errors.Is(err, tt.sentinel) {
				t.Fatalf("Open(%s) = %v (%#v), want an *OpenError %s wrapping %v", tt.path, err, oe, tt.problem, tt.sentinel)
			}
		})
	}
}

// A directory this process may not enter or write is a permission problem.
// Root ignores file modes, so this runs only as another user.
func TestOpenPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file modes")
	}
	dir := filepath.Join(t.TempDir(), "closed")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	path := filepath.Join(dir, "g.db")
	_, err := sqlite.Open(t.Context(), path)
	var oe *sqlite.OpenError
	if !errors.As(err, &oe) || oe.Problem != sqlite.ProblemPermission || !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Fatalf("Open(%s in a read-only directory) = %v, want ProblemPermission", path, err)
	}
}

// A new database whose lock another process holds cannot be migrated: a
// lock problem, not a missing file.
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	other := raw(t, path)
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(t.Context(), "ROLLBACK")
	_, err = sqlite.Open(t.Context(), path, sqlite.WithBusyTimeout(50*time.Millisecond))
	var oe *sqlite.OpenError
	if !errors.As(err, &oe) || oe.Problem != sqlite.ProblemLocked || !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Fatalf("Open(while locked) = %v, want ProblemLocked", err)
	}
}
