package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sqlite"
)

// sqlExec runs statements on the database file as someone with write
// access to it, outside Gatehouse, would.
func sqlExec(t *testing.T, db string, stmts ...string) {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// sqlValue returns the one value query selects.
func sqlValue(t *testing.T, db, query string) string {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var v string
	if err := conn.QueryRow(query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// TestAuditTruncationCaught: deleting the tail of the chain and moving the
// stored head passes a plain audit verify (the chain is unkeyed), and the
// signed checkpoints exported earlier catch it, naming the last good one.
func TestAuditTruncationCaught(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	mustRun(t, db, "", "audit", "keygen", "-o", key)
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key %s: %v; want mode 0600", key, err)
	}
	if r := run(t, db, "audit", "keygen", "-o", key); r.code != exitUsage || !strings.Contains(r.stderr, "never overwritten") {
		t.Errorf("keygen over an existing key: exit %d %s", r.code, r.stderr)
	}
	first := mustRun(t, db, "", "audit", "checkpoint", "--audit-key", key)
	if !strings.Contains(first.stdout, "signed checkpoint at seq") {
		t.Errorf("audit checkpoint: %s", first.stdout)
	}
	if r := mustRun(t, db, "", "audit", "checkpoint", "--audit-key", key); !strings.Contains(r.stdout, "nothing new to sign") {
		t.Errorf("audit checkpoint again: %s", r.stdout)
	}
	// The seq of the first checkpoint's event: what the truncation keeps.
	goodSeq := sqlValue(t, db, `SELECT value FROM meta WHERE key = 'audit_head_seq'`)
	mustRun(t, db, "", "apikey", "create", "bot", "--subject", "agent:support-bot", "--scopes", "check")
	mustRun(t, db, "", "audit", "checkpoint", "--audit-key", key)
	export := mustRun(t, db, "", "audit", "checkpoints")
	if n := strings.Count(export.stdout, "\n"); n != 2 {
		t.Fatalf("audit checkpoints printed %d lines, want 2:\n%s", n, export.stdout)
	}
	cps := filepath.Join(dir, "checkpoints.jsonl")
	if err := os.WriteFile(cps, []byte(export.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	pub := key + ".pub"
	if r := mustRun(t, db, "", "audit", "verify", "--public-key", pub, "--checkpoints", cps); !strings.Contains(r.stdout, "checkpoints ok") {
		t.Errorf("audit verify with checkpoints: %s", r.stdout)
	}

	// Delete everything after the first checkpoint's event, and move the head.
	sqlExec(t, db,
		`DELETE FROM audit_events WHERE seq > `+goodSeq,
		`UPDATE meta SET value = (SELECT hash FROM audit_events WHERE seq = `+goodSeq+`) WHERE key = 'audit_head_hash'`,
		`UPDATE meta SET value = `+goodSeq+` WHERE key = 'audit_head_seq'`)
	if r := run(t, db, "audit", "verify"); r.code != 0 {
		t.Fatalf("plain audit verify after a consistent truncation: exit %d %s (the unkeyed chain cannot see it)", r.code, r.stderr)
	}
	// The chain's own checkpoints went with the tail; the exported ones did not.
	if r := mustRun(t, db, "", "audit", "verify", "--public-key", pub); !strings.Contains(r.stdout, "checkpoints ok") {
		t.Errorf("audit verify with the stored checkpoints: %s", r.stdout)
	}
	r := run(t, db, "audit", "verify", "--public-key", pub, "--checkpoints", cps)
	if r.code != exitUsage || !strings.Contains(r.stderr, "truncated") || !strings.Contains(r.stderr, "last good checkpoint at seq") {
		t.Errorf("audit verify --checkpoints after truncation: exit %d, stderr %q; want %d naming truncated and the last good checkpoint", r.code, r.stderr, exitUsage)
	}
	// A key that did not sign them.
	other := filepath.Join(dir, "other.key")
	mustRun(t, db, "", "audit", "keygen", "-o", other)
	if r := run(t, db, "audit", "verify", "--public-key", other+".pub", "--checkpoints", cps); r.code != exitUsage || !strings.Contains(r.stderr, "bad_signature") {
		t.Errorf("audit verify with another key: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(t, db, "audit", "verify", "--checkpoints", cps); r.code != exitUsage || !strings.Contains(r.stderr, "--public-key") {
		t.Errorf("audit verify --checkpoints without a key: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestAuditStateEditCaught: making a user superuser by editing
// policy_objects directly is named by audit verify.
func TestAuditStateEditCaught(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	if r := mustRun(t, db, "", "audit", "verify"); !strings.Contains(r.stdout, "policy ok") {
		t.Errorf("audit verify: %s", r.stdout)
	}
	sqlExec(t, db, `UPDATE policy_objects SET body = json_set(body, '$.superuser', json('true'))
		WHERE kind = 'user' AND id = 'carl@acme.example'`)
	r := run(t, db, "audit", "verify")
	if r.code != exitUsage || !strings.Contains(r.stderr, "user/carl@acme.example") {
		t.Errorf("audit verify after editing carl: exit %d, stderr %q; want %d naming user/carl@acme.example", r.code, r.stderr, exitUsage)
	}
}

// TestServeCheckpoints: serve with --audit-key signs the chain's head every
// interval and once more at shutdown, covering what happened meanwhile.
func TestServeCheckpoints(t *testing.T) {
	db := newDB(t)
	t.Setenv("GATEHOUSE_JWT_SECRET", serveSecret)
	key := filepath.Join(t.TempDir(), "audit.key")
	mustRun(t, db, "", "audit", "keygen", "-o", key)
	r := start(t, db, "serve", "--addr", "127.0.0.1:0", "--audit-key", key, "--audit-checkpoint-interval", "20ms")
	r.waitFor(t, "serving http://")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.stderr.String(), "reason=interval") {
		if time.Now().After(deadline) {
			t.Fatalf("no interval checkpoint within 10s:\n%s", r.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
	// A change, then a server whose interval never comes: its shutdown
	// checkpoint is the one that covers the change.
	mustRun(t, db, "", "user", "grant", "carl@acme.example", "acme-berlin,acme-milan")
	r = start(t, db, "serve", "--addr", "127.0.0.1:0", "--audit-key", key, "--audit-checkpoint-interval", "1h")
	r.waitFor(t, "serving http://")
	if err := r.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
	out := mustRun(t, db, "", "audit", "checkpoints").stdout
	if !strings.Contains(out, `"reason":"interval"`) || !strings.HasSuffix(strings.TrimSpace(out), `}`) ||
		!strings.Contains(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:], `"reason":"shutdown"`) {
		t.Errorf("checkpoints after serve: want interval ones and a last shutdown one:\n%s", out)
	}
	if r := mustRun(t, db, "", "audit", "verify", "--public-key", key+".pub"); !strings.Contains(r.stdout, "checkpoints ok") {
		t.Errorf("audit verify: %s", r.stdout)
	}
	if r := run(t, db, "serve", "--audit-key", filepath.Join(t.TempDir(), "none")); r.code != exitUsage || !strings.Contains(r.stderr, "--audit-key") {
		t.Errorf("serve with a missing key: exit %d %s", r.code, r.stderr)
	}
}

// appendOldDecisions appends n decision events a day old to db, as a
// server's decision log would have.
func appendOldDecisions(t *testing.T, db string, n int) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events := make([]gatehouse.AuditEvent, n)
	for i := range events {
		events[i] = gatehouse.AuditEvent{Time: time.Now().Add(-24 * time.Hour), Actor: "user:carl@acme.example", Action: "decision", Target: "user:carl@acme.example"}
	}
	if err := st.AppendAudit(t.Context(), events); err != nil {
		t.Fatal(err)
	}
}

// TestAuditPrune: pruning old decisions keeps audit verify green; with the
// key, a retention checkpoint marks the new beginning, so checkpoints
// exported before the prune still verify; a prune no checkpoint signs is
// refused by a verify with the key until one does.
func TestAuditPrune(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	pub := key + ".pub"
	mustRun(t, db, "", "audit", "keygen", "-o", key)
	mustRun(t, db, "", "audit", "checkpoint", "--audit-key", key)
	cps := filepath.Join(dir, "checkpoints.jsonl")
	if err := os.WriteFile(cps, []byte(mustRun(t, db, "", "audit", "checkpoints").stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	appendOldDecisions(t, db, 40)
	if r := mustRun(t, db, "", "audit", "prune", "--older-than", "1h", "--audit-key", key); !strings.Contains(r.stdout, "pruned 40 decision events") {
		t.Errorf("audit prune: %s", r.stdout)
	}
	if n := sqlValue(t, db, `SELECT count(*) FROM audit_events WHERE action = 'decision'`); n != "0" {
		t.Errorf("%s decisions left after the prune", n)
	}
	for _, args := range [][]string{
		{"audit", "verify"},
		{"audit", "verify", "--public-key", pub},
		{"audit", "verify", "--public-key", pub, "--checkpoints", cps},
	} {
		mustRun(t, db, "", args...)
	}
	if r := mustRun(t, db, "", "audit", "prune", "--older-than", "1h"); !strings.Contains(r.stdout, "pruned 0") {
		t.Errorf("audit prune again: %s", r.stdout)
	}

	// Pruned without the key: the new beginning is signed by no one.
	appendOldDecisions(t, db, 5)
	mustRun(t, db, "", "audit", "prune", "--older-than", "1h")
	mustRun(t, db, "", "audit", "verify")
	if r := run(t, db, "audit", "verify", "--public-key", pub); r.code != exitUsage || !strings.Contains(r.stderr, "unattested_prune") {
		t.Errorf("audit verify --public-key after an unsigned prune: exit %d, stderr %q; want unattested_prune", r.code, r.stderr)
	}
	mustRun(t, db, "", "audit", "checkpoint", "--audit-key", key)
	mustRun(t, db, "", "audit", "verify", "--public-key", pub, "--checkpoints", cps)
	if r := run(t, db, "audit", "prune"); r.code != exitUsage || !strings.Contains(r.stderr, "--older-than") {
		t.Errorf("audit prune without --older-than: exit %d %s", r.code, r.stderr)
	}
}

// TestServeRetention: serve --decision-log-retention prunes old decisions
// by itself and signs the new beginning with --audit-key.
func TestServeRetention(t *testing.T) {
	db := newDB(t)
	t.Setenv("GATEHOUSE_JWT_SECRET", serveSecret)
	key := filepath.Join(t.TempDir(), "audit.key")
	mustRun(t, db, "", "audit", "keygen", "-o", key)
	appendOldDecisions(t, db, 25)
	r := start(t, db, "serve", "--addr", "127.0.0.1:0", "--audit-key", key, "--decision-log-retention", "1h")
	r.waitFor(t, "serving http://")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.stderr.String(), "pruned old decisions") {
		if time.Now().After(deadline) {
			t.Fatalf("no prune within 10s:\n%s", r.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, db, "", "audit", "checkpoints").stdout; !strings.Contains(out, `"reason":"retention"`) {
		t.Errorf("no retention checkpoint:\n%s", out)
	}
	mustRun(t, db, "", "audit", "verify", "--public-key", key+".pub")
}
