package sqlite_test

import (
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// chattr sets or clears the immutable attribute of paths that exist, which
// even root cannot write through: the file-system refusal SQLite reports
// as SQLITE_READONLY or an I/O error. It skips t where the file system or
// the user cannot set it.
func chattr(t *testing.T, flag string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if out, err := osexec.Command("chattr", flag, p).CombinedOutput(); err != nil {
			t.Skipf("chattr %s %s: %v %s (needs a file system with the immutable attribute and CAP_LINUX_IMMUTABLE)", flag, p, err, out)
		}
	}
}

// TestImmutableFile: a database SQLite itself cannot write (here: immutable,
// which the store's own permission check does not see) refuses writes with
// ErrUnavailable, not an internal error, and heals by itself once the file
// is writable again, while reads go on.
func TestImmutableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	// Not the -shm: SQLite maps it into memory, and a write to a mapped page
	// of an immutable file faults.
	files := []string{path, path + "-wal"}
	db := openClosed(t, path)
	if err := writeBoth(t, db, 0, "before"); err != nil {
		t.Fatal(err)
	}
	chattr(t, "+i", files...)
	t.Cleanup(func() { chattr(t, "-i", files...) })
	for _, id := range []string{"lost1", "lost2"} {
		if _, err := db.CommitPolicy(t.Context(), 1, role(id), nil); !errors.Is(err, gatehouse.ErrUnavailable) {
			t.Errorf("CommitPolicy(%s) on an immutable file = %v, want ErrUnavailable", id, err)
		}
	}
	if err := db.CheckWritable(t.Context()); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("CheckWritable(immutable) = %v, want ErrUnavailable", err)
	}
	if _, v, err := db.LoadPolicy(t.Context()); err != nil || v != 1 {
		t.Errorf("LoadPolicy(immutable) = version %d, %v; want 1, nil", v, err)
	}
	chattr(t, "-i", files...)
	if err := writeBoth(t, db, 1, "after"); err != nil {
		t.Errorf("write after chattr -i = %v, want nil", err)
	}
}

// TestOpenImmutable: a store opened on a file SQLite can only read answers
// reads; its first write once the file is writable succeeds, though the
// connection SQLite opened stays read-only.
func TestOpenImmutable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db := open(t, path)
	if err := writeBoth(t, db, 0, "before"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	chattr(t, "+i", path)
	t.Cleanup(func() { chattr(t, "-i", path) })
	db = openClosed(t, path)
	if _, v, err := db.LoadPolicy(t.Context()); err != nil || v != 1 {
		t.Errorf("LoadPolicy(immutable) = version %d, %v; want 1, nil", v, err)
	}
	chattr(t, "-i", path)
	if err := writeBoth(t, db, 1, "after"); err != nil {
		t.Errorf("first write once writable = %v, want nil", err)
	}
}
