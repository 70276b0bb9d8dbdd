package sqlite_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sqlite"
)

// role is a change creating role id.
func role(id string) []gatehouse.Change {
	return []gatehouse.Change{{Kind: gatehouse.KindRole, ID: id, After: json.RawMessage(fmt.Sprintf(`{"name":%q}`, id))}}
}

// writeBoth commits a change and appends a decision, returning the first
// error, so both write paths are checked against the fault.
func writeBoth(t *testing.T, db *sqlite.DB, base int64, id string) error {
	t.Helper()
	if _, err := db.CommitPolicy(t.Context(), base, role(id), nil); err != nil {
		return err
	}
	return db.AppendAudit(t.Context(), []gatehouse.AuditEvent{{Time: time.Now(), Actor: "system", Action: "decision"}})
}

// TestFileFaults: a fault of the database file under an open store refuses
// writes with ErrUnavailable (never acknowledging a write into a file no one
// reads), never recreates the file, and heals by itself where the fault can
// be undone in place.
func TestFileFaults(t *testing.T) {
	tests := []struct {
		name string
		// fault breaks the file at path; undo, if not nil, repairs it in
		// place, after which writes must succeed again without a reopen.
		fault, undo func(t *testing.T, path string)
		// gone: the fault leaves no file at the path, and none may appear.
		gone bool
	}{
		{
			name: "deleted with wal and shm",
			gone: true,
			fault: func(t *testing.T, path string) {
				for _, p := range []string{path, path + "-wal", path + "-shm"} {
					if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
						t.Fatal(err)
					}
				}
			},
		},
		{
			name: "moved away",
			gone: true,
			fault: func(t *testing.T, path string) {
				if err := os.Rename(path, path+".moved"); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "replaced by a copy",
			fault: func(t *testing.T, path string) {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(path, path+".old"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:  "made read-only",
			fault: func(t *testing.T, path string) { chmod(t, path, 0o444) },
			undo:  func(t *testing.T, path string) { chmod(t, path, 0o644) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gatehouse.db")
			db := openClosed(t, path)
			if err := writeBoth(t, db, 0, "before"); err != nil {
				t.Fatalf("write before the fault = %v", err)
			}
			tt.fault(t, path)
			if err := db.CheckWritable(t.Context()); !errors.Is(err, gatehouse.ErrUnavailable) {
				t.Errorf("CheckWritable() after the fault = %v, want ErrUnavailable", err)
			}
			if _, err := db.CommitPolicy(t.Context(), 1, role("lost"), nil); !errors.Is(err, gatehouse.ErrUnavailable) {
				t.Errorf("CommitPolicy() after the fault = %v, want ErrUnavailable", err)
			}
			err := db.AppendAudit(t.Context(), []gatehouse.AuditEvent{{Time: time.Now(), Actor: "system", Action: "decision"}})
			if !errors.Is(err, gatehouse.ErrUnavailable) {
				t.Errorf("AppendAudit() after the fault = %v, want ErrUnavailable", err)
			}
			if fi, err := os.Stat(path); tt.gone && err == nil {
				t.Errorf("the store recreated %s (%d bytes)", path, fi.Size())
			}
			if tt.undo == nil {
				return
			}
			tt.undo(t, path)
			if err := db.CheckWritable(t.Context()); err != nil {
				t.Errorf("CheckWritable() after the repair = %v, want nil", err)
			}
			if err := writeBoth(t, db, 1, "after"); err != nil {
				t.Errorf("write after the repair = %v, want nil", err)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestOpenReadOnly: a read-only file at the latest schema opens and is
// read; writes are ErrUnavailable until the file is writable again, then
// succeed without a reopen.
func TestOpenReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db := open(t, path)
	if err := writeBoth(t, db, 0, "r"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	chmod(t, path, 0o444)
	db = openClosed(t, path)
	if _, v, err := db.LoadPolicy(t.Context()); err != nil || v != 1 {
		t.Errorf("LoadPolicy(read-only) = version %d, %v; want 1, nil", v, err)
	}
	if err := writeBoth(t, db, 1, "s"); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("write to a read-only file = %v, want ErrUnavailable", err)
	}
	chmod(t, path, 0o644)
	if err := writeBoth(t, db, 1, "s"); err != nil {
		t.Errorf("write after chmod 0644 = %v, want nil", err)
	}
}

// TestCorruptRestored: a database file damaged in place fails requests; once
// its contents are restored in place, the next request succeeds without a
// reopen.
func TestCorruptRestored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db := openClosed(t, path)
	if err := writeBoth(t, db, 0, "r"); err != nil {
		t.Fatal(err)
	}
	// Move everything into the main file, so it alone is the database.
	if _, err := raw(t, path).ExecContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	overwrite(t, path, make([]byte, len(good)))
	_, _, lerr := db.LoadPolicy(t.Context())
	werr := writeBoth(t, db, 1, "s")
	if lerr == nil && werr == nil {
		t.Errorf("LoadPolicy() and a write on a zeroed file both succeeded")
	}
	overwrite(t, path, good)
	if _, v, err := db.LoadPolicy(t.Context()); err != nil || v != 1 {
		t.Errorf("LoadPolicy() after the restore = version %d, %v; want 1, nil", v, err)
	}
	if err := writeBoth(t, db, 1, "s"); err != nil {
		t.Errorf("write after the restore = %v, want nil", err)
	}
}

// overwrite writes b over path in place, keeping the file (its inode).
func overwrite(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
