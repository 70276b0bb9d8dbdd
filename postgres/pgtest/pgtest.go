// Package pgtest gives tests a PostgreSQL server: the DSN in
// GATEHOUSE_TEST_POSTGRES, which scripts/test sets after starting a
// throwaway server, and a fresh schema per test, so tests may run in
// parallel on one server.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable holding the test server's DSN.
const EnvDSN = "GATEHOUSE_TEST_POSTGRES"

// DSN returns the test server's DSN. When EnvDSN is unset it skips t,
// saying how to run the PostgreSQL tests, or, where CI=true, fails it: CI
// must not pass by skipping them.
func DSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn
	}
	const msg = EnvDSN + " is not set: run ./scripts/test, which starts a throwaway PostgreSQL server " +
		"and sets it, or set it to the postgres:// DSN of a server where tests may create schemas"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the PostgreSQL tests must run)")
	}
	t.Skip(msg)
	return ""
}

// NewSchema creates a schema with a unique name on the server at dsn, drops
// it with everything in it when the test ends, and returns dsn with its
// search_path set to the schema.
func NewSchema(t testing.TB, dsn string) string {
	t.Helper()
	b := make([]byte, 8)
	// crypto/rand.Read never fails.
	_, _ = rand.Read(b)
	schema := "gh_test_" + hex.EncodeToString(b)
	Exec(t, dsn, "CREATE SCHEMA "+schema)
	t.Cleanup(func() {
		// t.Context is done by now; the drop still has to happen.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithParam(dsn, "search_path", schema)
}

// WithParam returns dsn, a postgres:// URL or key=value pairs, with the
// connection parameter key set to value (a server setting such as
// search_path or application_name is sent when connecting).
func WithParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// Connecting reports the malformed URL.
			return dsn
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value)
	return dsn + " " + key + "='" + quoted + "'"
}

// Connect opens a connection to dsn that is closed when the test ends: an
// administrator's session beside the store under test.
func Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs statements on a connection of its own to dsn, failing t on the
// first error.
func Exec(t testing.TB, dsn string, stmts ...string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}
