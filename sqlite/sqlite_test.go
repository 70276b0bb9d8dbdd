package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/sqlite"
	"github.com/gatehouse/gatehouse/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) gatehouse.Store {
		return open(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	})
}

// open opens a store at path that the caller closes.
func open(t *testing.T, path string, opts ...sqlite.Option) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	return db
}

// openClosed opens a store at path, closing it when the test ends.
func openClosed(t *testing.T, path string, opts ...sqlite.Option) *sqlite.DB {
	t.Helper()
	db := open(t, path, opts...)
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return db
}

// raw opens path as another process would: its own connection pool.
func raw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.ExecContext(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// schema returns the database's schema and migrations, to show it untouched.
func schema(t *testing.T, path string) string {
	t.Helper()
	db := raw(t, path)
	var b strings.Builder
	for _, q := range []string{
		`SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_schema ORDER BY name`,
		`SELECT 'migration ' || version || ' ' || name FROM schema_migrations ORDER BY version`,
	} {
		rows, err := db.QueryContext(t.Context(), q)
		if err != nil && strings.Contains(err.Error(), "no such table: schema_migrations") {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		rows.Close()
	}
	db.Close()
	return b.String()
}

func TestOpenNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	db := open(t, path)
	cur, latest, err := db.SchemaVersion(t.Context())
	if err != nil || cur != latest || latest < 1 {
		t.Fatalf("SchemaVersion() = %d, %d, %v; want current = latest >= 1", cur, latest, err)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() again = %v", err)
	}
	if _, err := db.CommitPolicy(t.Context(), 0, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "r", After: json.RawMessage(`{"name":"r"}`)}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := raw(t, path).QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	db = openClosed(t, path)
	if v, err := db.PolicyVersion(t.Context()); err != nil || v != 1 {
		t.Errorf("PolicyVersion() after reopening = %d, %v; want 1", v, err)
	}
}

func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b?c#d%20e ü")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "g?.db")
	db := open(t, path)
	if _, err := db.CommitPolicy(t.Context(), 0, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "r", After: json.RawMessage(`{"name":"r"}`)}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != "g?.db" {
		t.Fatalf("directory holds %v, %v; want only g?.db", entries, err)
	}
	if v, err := openClosed(t, path).PolicyVersion(t.Context()); err != nil || v != 1 {
		t.Errorf("PolicyVersion() after reopening = %d, %v; want 1", v, err)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	path := filepath.Join(dir, "g.db")
	_, err := sqlite.Open(t.Context(), path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open(%s) = %v, want a not-exist error naming the path", path, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(%s) created its directory: %v", path, err)
	}
}

func TestOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	if _, err := sqlite.Open(t.Context(), dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open(a directory) = %v, want an error naming it", err)
	}
}

func TestOpenGarbage(t *testing.T) {
	tests := map[string][]byte{
		"text":      bytes.Repeat([]byte("this is not a database, just some words\n"), 200),
		"short":     []byte("garbage"),
		"bad pages": append([]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0xff}, 8192)...),
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "garbage.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := sqlite.Open(t.Context(), path)
			if !errors.Is(err, gatehouse.ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open(%s) = %v, want ErrCorrupt naming the path", name, err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
				t.Errorf("Open(%s) changed the file", name)
			}
		})
	}
}

func TestOpenForeignDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	exec(t, raw(t, path), `CREATE TABLE invoices (id INTEGER PRIMARY KEY)`)
	before := schema(t, path)
	_, err := sqlite.Open(t.Context(), path)
	if !errors.Is(err, gatehouse.ErrCorrupt) || !strings.Contains(err.Error(), "not a Gatehouse database") {
		t.Fatalf("Open(another application's database) = %v, want ErrCorrupt", err)
	}
	if after := schema(t, path); after != before {
		t.Errorf("Open(another application's database) changed its schema:\n%s", after)
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	db := open(t, path)
	_, latest, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	exec(t, raw(t, path), fmt.Sprintf(
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'future', '2030-01-01T00:00:00Z')`, latest+1))
	before := schema(t, path)
	_, err = sqlite.Open(t.Context(), path)
	if !errors.Is(err, gatehouse.ErrSchemaTooNew) {
		t.Fatalf("Open(schema %d, binary knows %d) = %v, want ErrSchemaTooNew", latest+1, latest, err)
	}
	if after := schema(t, path); after != before {
		t.Errorf("Open(schema too new) changed the database:\nbefore\n%s\nafter\n%s", before, after)
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	const timeout = 100 * time.Millisecond
	db := openClosed(t, path, sqlite.WithBusyTimeout(timeout))
	if _, err := db.CommitPolicy(t.Context(), 0, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "r", After: json.RawMessage(`{"name":"r"}`)}}, nil); err != nil {
		t.Fatal(err)
	}

	// Another process takes the write lock and holds it.
	other := raw(t, path)
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = db.CommitPolicy(t.Context(), 1, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "s", After: json.RawMessage(`{"name":"s"}`)}},
		[]gatehouse.AuditEvent{{Time: time.Now(), Actor: "system", Action: "policy.apply"}})
	elapsed := time.Since(start)
	if !errors.Is(err, gatehouse.ErrUnavailable) || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("CommitPolicy(while locked) = %v, want ErrUnavailable", err)
	}
	if elapsed < timeout || elapsed > timeout+3*time.Second {
		t.Errorf("CommitPolicy(while locked) gave up after %v, want about the busy timeout %v", elapsed, timeout)
	}
	err = db.AppendAudit(t.Context(), []gatehouse.AuditEvent{{Time: time.Now(), Actor: "system", Action: "decision"}})
	if !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("AppendAudit(while locked) = %v, want ErrUnavailable", err)
	}
	// A database at the latest schema opens without writing, so a second
	// store opens while the lock is held, and its writes wait as ours do.
	second, err := sqlite.Open(t.Context(), path, sqlite.WithBusyTimeout(timeout))
	if err != nil {
		t.Fatalf("Open(while locked) = %v, want nil", err)
	}
	if err := second.CheckWritable(t.Context()); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("CheckWritable(while locked) = %v, want ErrUnavailable", err)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	// Readers do not wait for the writer.
	objs, v, err := db.LoadPolicy(t.Context())
	if err != nil || v != 1 || len(objs) != 1 {
		t.Errorf("LoadPolicy(while locked) = %d objects, version %d, %v; want 1, 1, nil", len(objs), v, err)
	}

	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	objs, v, err = db.LoadPolicy(t.Context())
	if err != nil || v != 1 || len(objs) != 1 {
		t.Errorf("LoadPolicy() after the lock = %d objects, version %d, %v; want 1, 1, nil", len(objs), v, err)
	}
	if head, err := db.AuditHead(t.Context()); err != nil || head.Seq != 0 {
		t.Errorf("AuditHead() after the lock = %+v, %v; want empty", head, err)
	}
	if _, err := db.CommitPolicy(t.Context(), 1, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "s", After: json.RawMessage(`{"name":"s"}`)}}, nil); err != nil {
		t.Errorf("CommitPolicy() after the lock = %v", err)
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestClock(t *testing.T) {
	now := time.Date(2026, 7, 28, 10, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	db := openClosed(t, filepath.Join(t.TempDir(), "g.db"), sqlite.WithClock(fixedClock(now)))
	events := []gatehouse.AuditEvent{{Actor: "system", Action: "decision"}}
	if err := db.AppendAudit(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	if want := now.Truncate(time.Microsecond).UTC(); !events[0].Time.Equal(want) {
		t.Errorf("event without a time got %v, want the clock's %v", events[0].Time, want)
	}
}

func TestOpenOptions(t *testing.T) {
	if _, err := sqlite.Open(t.Context(), ""); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Open(\"\") = %v, want ErrInvalid", err)
	}
	path := filepath.Join(t.TempDir(), "g.db")
	if _, err := sqlite.Open(t.Context(), path, sqlite.WithBusyTimeout(-time.Second)); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Open(busy timeout -1s) = %v, want ErrInvalid", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := sqlite.Open(ctx, path); !errors.Is(err, context.Canceled) {
		t.Errorf("Open(canceled) = %v, want context.Canceled", err)
	}
}

func TestVerifyTampered(t *testing.T) {
	tests := []struct {
		name   string
		sql    []string
		seq    int64
		reason string
	}{
		{"edited actor", []string{`UPDATE audit_events SET actor = 'user:mallory' WHERE seq = 3`}, 3, audit.ReasonHashMismatch},
		{"edited time", []string{`UPDATE audit_events SET time = time + 1 WHERE seq = 2`}, 2, audit.ReasonHashMismatch},
		{"edited detail", []string{`UPDATE audit_events SET detail = '{"amount":1}' WHERE seq = 4`}, 4, audit.ReasonHashMismatch},
		{"edited hash", []string{`UPDATE audit_events SET hash = 'x' WHERE seq = 5`}, 5, audit.ReasonHashMismatch},
		{"deleted", []string{`DELETE FROM audit_events WHERE seq = 3`}, 3, audit.ReasonSeqGap},
		{"deleted first", []string{`DELETE FROM audit_events WHERE seq = 1`}, 1, audit.ReasonSeqGap},
		{"deleted and renumbered", []string{
			`DELETE FROM audit_events WHERE seq = 3`,
			`UPDATE audit_events SET seq = seq - 1 WHERE seq > 3`,
		}, 3, audit.ReasonHashMismatch},
		{"reordered", []string{
			`UPDATE audit_events SET seq = 100 WHERE seq = 2`,
			`UPDATE audit_events SET seq = 2 WHERE seq = 3`,
			`UPDATE audit_events SET seq = 3 WHERE seq = 100`,
		}, 2, audit.ReasonHashMismatch},
		{"tail truncated", []string{`DELETE FROM audit_events WHERE seq >= 5`}, 5, audit.ReasonHeadMismatch},
		{"head moved back", []string{`UPDATE meta SET value = 4 WHERE key = 'audit_head_seq'`}, 5, audit.ReasonHeadMismatch},
		{"head hash edited", []string{`UPDATE meta SET value = 'x' WHERE key = 'audit_head_hash'`}, 6, audit.ReasonHeadMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "g.db")
			db := openClosed(t, path)
			for i := range 6 {
				e := gatehouse.AuditEvent{Time: time.Now(), Actor: "system", Action: "decision",
					Detail: json.RawMessage(fmt.Sprintf(`{"amount": %d}`, i))}
				if err := db.AppendAudit(t.Context(), []gatehouse.AuditEvent{e}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := audit.Verify(t.Context(), db); err != nil {
				t.Fatalf("Verify(untouched) = %v", err)
			}
			exec(t, raw(t, path), tt.sql...)
			_, err := audit.Verify(t.Context(), db)
			var ce *audit.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, gatehouse.ErrCorrupt) {
				t.Fatalf("Verify(%s) = %v, want a *ChainError wrapping ErrCorrupt", tt.name, err)
			}
			if ce.Seq != tt.seq || ce.Reason != tt.reason || !strings.Contains(err.Error(), fmt.Sprintf("seq %d:", tt.seq)) {
				t.Errorf("Verify(%s) = %v, want seq %d %s", tt.name, err, tt.seq, tt.reason)
			}
		})
	}
}

func TestAppendBeyondRecordedHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	db := openClosed(t, path)
	events := []gatehouse.AuditEvent{{Time: time.Now(), Actor: "system", Action: "a"}, {Time: time.Now(), Actor: "system", Action: "b"}}
	if err := db.AppendAudit(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	exec(t, raw(t, path), `UPDATE meta SET value = 1 WHERE key = 'audit_head_seq'`)
	err := db.AppendAudit(t.Context(), []gatehouse.AuditEvent{{Time: time.Now(), Actor: "system", Action: "c"}})
	if !errors.Is(err, gatehouse.ErrCorrupt) {
		t.Errorf("AppendAudit(head behind the log) = %v, want ErrCorrupt", err)
	}
}
