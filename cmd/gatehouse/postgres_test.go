package main

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/postgres/pgtest"
)

// The CLI runs the same against PostgreSQL: --db postgres://… selects it.
func TestCLIOnPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.NewSchema(t, pgtest.DSN(t))
	if r := run(t, db, "apply", "-f", examplePolicy); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, db, "apply", "-f", examplePolicy); r.code != 0 || !strings.Contains(r.stdout, "policy unchanged") {
		t.Fatalf("second apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, db, "check", "--subject", "user:sara@acme.example", "--tool", "analyze_loan", "--tenant", "acme"); r.code != 0 {
		t.Errorf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, db, "user", "demote", "admin@example.com"); r.code != 2 || !strings.Contains(r.stderr, "last superuser") {
		t.Errorf("demote last superuser: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, db, "audit", "verify"); r.code != 0 {
		t.Errorf("audit verify: exit %d\n%s", r.code, r.stderr)
	}
}

// A server that is down is a clear error, exit 2, and the password never
// shows.
func TestPostgresDownAtStart(t *testing.T) {
	t.Parallel()
	r := run(t, "postgres://gate:s3cret-pw@127.0.0.1:1/gatehouse?connect_timeout=2&sslmode=disable", "user", "list")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "s3cret-pw") || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("stderr %q: want the server named and the password hidden", r.stderr)
	}
}

func TestUnknownDBScheme(t *testing.T) {
	t.Parallel()
	r := run(t, "mysql://u:pw@localhost/x", "user", "list")
	if r.code != 2 || strings.Contains(r.stderr, "pw@") {
		t.Errorf("exit %d stderr %q: want 2 and a redacted URL", r.code, r.stderr)
	}
}

// On PostgreSQL too, checkpoints sign and verify, and a user made superuser
// by editing policy_objects directly is named by audit verify.
func TestAuditTamperOnPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.NewSchema(t, pgtest.DSN(t))
	mustRun(t, db, "", "apply", "-f", examplePolicy)
	key := t.TempDir() + "/audit.key"
	mustRun(t, db, "", "audit", "keygen", "-o", key)
	mustRun(t, db, "", "audit", "checkpoint", "--audit-key", key)
	mustRun(t, db, "", "audit", "verify", "--public-key", key+".pub")

	pgtest.Exec(t, db, `UPDATE policy_objects SET body = (body::jsonb || '{"superuser": true}')::text
		WHERE kind = 'user' AND id = 'carl@acme.example'`)
	if r := run(t, db, "audit", "verify"); r.code != exitUsage || !strings.Contains(r.stderr, "user/carl@acme.example") {
		t.Errorf("audit verify after editing carl: exit %d, stderr %q", r.code, r.stderr)
	}
}
