package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
	"github.com/gatehouse/gatehouse/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) gatehouse.Store {
		return open(t, pgtest.NewSchema(t, dsn))
	})
}

// open opens a store at dsn that the caller closes.
func open(t *testing.T, dsn string, opts ...postgres.Option) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	return db
}

// openClosed opens a store at dsn, closing it when the test ends.
func openClosed(t *testing.T, dsn string, opts ...postgres.Option) *postgres.DB {
	t.Helper()
	db := open(t, dsn, opts...)
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return db
}

// newSchema returns the DSN of a fresh schema on the test server.
func newSchema(t *testing.T) string {
	t.Helper()
	return pgtest.NewSchema(t, pgtest.DSN(t))
}

// unique returns a name no other test uses, for application_name.
func unique(prefix string) string {
	b := make([]byte, 6)
	// crypto/rand.Read never fails.
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// schema describes the tables, migrations and meta rows of the schema dsn
// names, to show it untouched.
func schema(t *testing.T, dsn string) string {
	t.Helper()
	conn := pgtest.Connect(t, dsn)
	queries := []string{`SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns
		WHERE table_schema = current_schema() ORDER BY 1`}
	var tracked bool
	if err := conn.QueryRow(t.Context(), `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&tracked); err != nil {
		t.Fatal(err)
	}
	if tracked {
		queries = append(queries,
			`SELECT 'migration ' || version || ' ' || name FROM schema_migrations ORDER BY version`,
			`SELECT 'meta ' || key || ' = ' || value FROM meta ORDER BY key`)
	}
	var b strings.Builder
	for _, q := range queries {
		rows, err := conn.Query(t.Context(), q)
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
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func role(id string) gatehouse.Change {
	return gatehouse.Change{Kind: gatehouse.KindRole, ID: id, After: json.RawMessage(fmt.Sprintf(`{"name":%q}`, id))}
}

func decision(detail int) gatehouse.AuditEvent {
	return gatehouse.AuditEvent{Time: time.Now(), Actor: "system", Action: "decision",
		Detail: json.RawMessage(fmt.Sprintf(`{"n":%d}`, detail))}
}

func TestOpenNewSchema(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	db := open(t, dsn)
	cur, latest, err := db.SchemaVersion(t.Context())
	if err != nil || cur != latest || latest < 1 {
		t.Fatalf("SchemaVersion() = %d, %d, %v; want current = latest >= 1", cur, latest, err)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() again = %v", err)
	}
	if !strings.HasPrefix(db.Schema(), "gh_test_") {
		t.Errorf("Schema() = %q, want the test's schema", db.Schema())
	}
	if _, err := db.CommitPolicy(t.Context(), 0, []gatehouse.Change{role("r")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openClosed(t, dsn)
	if v, err := db.PolicyVersion(t.Context()); err != nil || v != 1 {
		t.Errorf("PolicyVersion() after reopening = %d, %v; want 1", v, err)
	}
}

func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			db, err := postgres.Open(t.Context(), dsn)
			if err == nil {
				_, err = db.PolicyVersion(t.Context())
				db.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Open() of a fresh schema by %d processes at once = %v", n, err)
		}
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	const password = "s3cret-pw"
	addr := closedPort(t)
	dsn := "postgres://gatehouse:" + password + "@" + addr + "/gatehouse?sslmode=disable"
	start := time.Now()
	_, err := postgres.Open(t.Context(), dsn, postgres.WithConnectTimeout(2*time.Second))
	if !errors.Is(err, gatehouse.ErrUnavailable) || !strings.Contains(err.Error(), addr) {
		t.Errorf("Open(nothing at %s) = %v, want ErrUnavailable naming %s", addr, err, addr)
	}
	if err != nil && strings.Contains(err.Error(), password) {
		t.Errorf("Open(nothing at %s) = %v, which shows the password", addr, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open(nothing at %s) took %v, want it to fail at once", addr, d)
	}
}

func TestOpenConnectTimeout(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	const timeout = 300 * time.Millisecond
	dsn := "postgres://gatehouse@" + ln.Addr().String() + "/gatehouse?sslmode=disable"
	start := time.Now()
	_, err = postgres.Open(t.Context(), dsn, postgres.WithConnectTimeout(timeout))
	elapsed := time.Since(start)
	if !errors.Is(err, gatehouse.ErrUnavailable) || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Open(silent server) = %v, want ErrUnavailable naming %s", err, ln.Addr())
	}
	if elapsed < timeout || elapsed > timeout+3*time.Second {
		t.Errorf("Open(silent server) gave up after %v, want about the connect timeout %v", elapsed, timeout)
	}
}

func TestOpenInvalid(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	tests := []struct {
		name string
		dsn  string
		opts []postgres.Option
	}{
		{"empty DSN", "", nil},
		{"bad port", "postgres://gatehouse:s3cret-pw@127.0.0.1:port/gatehouse", nil},
		{"bad parameter", "host=127.0.0.1 password=s3cret-pw connect_timeout=soon", nil},
		{"negative connect timeout", "postgres://" + addr + "/g", []postgres.Option{postgres.WithConnectTimeout(-time.Second)}},
		{"negative lock timeout", "postgres://" + addr + "/g", []postgres.Option{postgres.WithLockTimeout(-time.Second)}},
		{"zero watch poll", "postgres://" + addr + "/g", []postgres.Option{postgres.WithWatchPoll(0)}},
	}
	for _, tt := range tests {
		_, err := postgres.Open(t.Context(), tt.dsn, tt.opts...)
		if !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("Open(%s) = %v, want ErrInvalid", tt.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Open(%s) = %v, which shows the password", tt.name, err)
		}
	}
}

func TestOpenCanceled(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := postgres.Open(ctx, dsn); !errors.Is(err, context.Canceled) {
		t.Errorf("Open(canceled) = %v, want context.Canceled", err)
	}
}

func TestOpenMissingSchema(t *testing.T) {
	t.Parallel()
	missing := unique("gh_missing")
	dsn := pgtest.WithParam(pgtest.DSN(t), "search_path", missing)
	_, err := postgres.Open(t.Context(), dsn)
	if err == nil || !strings.Contains(err.Error(), "names no existing schema") || !strings.Contains(err.Error(), missing) {
		t.Errorf("Open(search_path %s) = %v, want an error naming the missing schema", missing, err)
	}
}

func TestOpenForeignSchema(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	pgtest.Exec(t, dsn, `CREATE TABLE invoices (id integer PRIMARY KEY)`)
	before := schema(t, dsn)
	_, err := postgres.Open(t.Context(), dsn)
	if !errors.Is(err, gatehouse.ErrCorrupt) || !strings.Contains(err.Error(), "not a Gatehouse schema") {
		t.Fatalf("Open(another application's schema) = %v, want ErrCorrupt", err)
	}
	if after := schema(t, dsn); after != before {
		t.Errorf("Open(another application's schema) changed it:\n%s", after)
	}
}

func TestSchemaTooNew(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	db := open(t, dsn)
	_, latest, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	pgtest.Exec(t, dsn, fmt.Sprintf(
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'future', '2030-01-01T00:00:00Z')`, latest+1),
		`ALTER TABLE meta ADD COLUMN future text`)
	before := schema(t, dsn)
	_, err = postgres.Open(t.Context(), dsn)
	if !errors.Is(err, gatehouse.ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprint(latest+1)) {
		t.Fatalf("Open(schema %d, binary knows %d) = %v, want ErrSchemaTooNew", latest+1, latest, err)
	}
	if after := schema(t, dsn); after != before {
		t.Errorf("Open(schema too new) changed the schema:\nbefore\n%s\nafter\n%s", before, after)
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestClock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 7, 28, 10, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	db := openClosed(t, newSchema(t), postgres.WithClock(fixedClock(now)))
	events := []gatehouse.AuditEvent{{Actor: "system", Action: "decision"}}
	if err := db.AppendAudit(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	want := now.Truncate(time.Microsecond).UTC()
	if !events[0].Time.Equal(want) {
		t.Errorf("event without a time got %v, want the clock's %v", events[0].Time, want)
	}
	stored, err := db.ListAudit(t.Context(), gatehouse.AuditFilter{})
	if err != nil || len(stored) != 1 || !stored[0].Time.Equal(want) {
		t.Errorf("ListAudit() = %+v, %v; want one event at %v", stored, err, want)
	}
}

func TestVerifyTampered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sql    []string
		seq    int64
		reason string
	}{
		{"edited actor", []string{`UPDATE audit_events SET actor = 'user:mallory' WHERE seq = 3`}, 3, audit.ReasonHashMismatch},
		{"edited time", []string{`UPDATE audit_events SET time = time + interval '1 microsecond' WHERE seq = 2`}, 2, audit.ReasonHashMismatch},
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
		{"head moved back", []string{`UPDATE meta SET value = '4' WHERE key = 'audit_head_seq'`}, 5, audit.ReasonHeadMismatch},
		{"head hash edited", []string{`UPDATE meta SET value = 'x' WHERE key = 'audit_head_hash'`}, 6, audit.ReasonHeadMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dsn := newSchema(t)
			db := openClosed(t, dsn)
			for i := range 6 {
				e := decision(i)
				if err := db.AppendAudit(t.Context(), []gatehouse.AuditEvent{e}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := audit.Verify(t.Context(), db); err != nil {
				t.Fatalf("Verify(untouched) = %v", err)
			}
			pgtest.Exec(t, dsn, tt.sql...)
			_, err := audit.Verify(t.Context(), db)
			var ce *audit.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, gatehouse.ErrCorrupt) {
				t.Fatalf("Verify(%s) = %v, want a *ChainError wrapping ErrCorrupt", tt.name, err)
			}
			if ce.Seq != tt.seq || ce.Reason != tt.reason {
				t.Errorf("Verify(%s) = %v, want seq %d %s", tt.name, err, tt.seq, tt.reason)
			}
		})
	}
}

func TestAppendBeyondRecordedHead(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	db := openClosed(t, dsn)
	if err := db.AppendAudit(t.Context(), []gatehouse.AuditEvent{decision(1), decision(2)}); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, dsn, `UPDATE meta SET value = '1' WHERE key = 'audit_head_seq'`)
	err := db.AppendAudit(t.Context(), []gatehouse.AuditEvent{decision(3)})
	if !errors.Is(err, gatehouse.ErrCorrupt) {
		t.Errorf("AppendAudit(head behind the log) = %v, want ErrCorrupt", err)
	}
	_, err = db.CommitPolicy(t.Context(), 0, []gatehouse.Change{role("r")}, []gatehouse.AuditEvent{decision(3)})
	if !errors.Is(err, gatehouse.ErrCorrupt) {
		t.Errorf("CommitPolicy(head behind the log) = %v, want ErrCorrupt", err)
	}
	if v, err := db.PolicyVersion(t.Context()); err != nil || v != 0 {
		t.Errorf("PolicyVersion() after the failed commit = %d, %v; want 0", v, err)
	}
}

func TestCorruptMeta(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	db := openClosed(t, dsn)
	pgtest.Exec(t, dsn, `UPDATE meta SET value = 'seven' WHERE key = 'policy_version'`, `DELETE FROM meta WHERE key = 'audit_head_hash'`)
	if _, err := db.PolicyVersion(t.Context()); !errors.Is(err, gatehouse.ErrCorrupt) {
		t.Errorf("PolicyVersion(not a number) = %v, want ErrCorrupt", err)
	}
	if _, err := db.AuditHead(t.Context()); !errors.Is(err, gatehouse.ErrCorrupt) {
		t.Errorf("AuditHead(hash missing) = %v, want ErrCorrupt", err)
	}
	if err := db.AppendAudit(t.Context(), []gatehouse.AuditEvent{decision(1)}); !errors.Is(err, gatehouse.ErrCorrupt) {
		t.Errorf("AppendAudit(hash missing) = %v, want ErrCorrupt", err)
	}
}
