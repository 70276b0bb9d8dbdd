package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/postgres/pgtest"
)

// mustRun runs a command line that must succeed.
func mustRun(t *testing.T, db, stdin string, args ...string) runResult {
	t.Helper()
	r := runIn(t, db, stdin, args...)
	if r.code != 0 {
		t.Fatalf("gatehouse %s (db %s): exit %d\n%s%s", strings.Join(args, " "), db, r.code, r.stdout, r.stderr)
	}
	return r
}

// sourceDB is the example policy with one more change, so the audit trail
// holds an apply and a promotion.
func sourceDB(t *testing.T) string {
	t.Helper()
	db := newDB(t)
	mustRun(t, db, "", "user", "promote", "sara@acme.example")
	return db
}

// decisions are the answers of db to a fixed set of checks.
func decisions(t *testing.T, db string) string {
	t.Helper()
	checks := [][]string{
		{"--subject", "user:sara@acme.example", "--tool", "analyze_loan", "--tenant", "acme"},
		{"--subject", "user:carl@acme.example", "--tool", "analyze_loan", "--tenant", "acme-berlin"},
		{"--subject", "user:gina@globex.example", "--tool", "detect_fraud", "--tenant", "globex"},
		{"--subject", "user:sara@acme.example", "--tool", "analyze_loan", "--tenant", "globex"},
		{"--subject", "agent:support-bot", "--on-behalf-of", "user:olga@acme.example", "--tool", "process_refund", "--tenant", "acme-berlin"},
	}
	var out strings.Builder
	for _, c := range checks {
		r := run(t, db, append([]string{"check", "--json"}, c...)...)
		var d struct {
			Allowed bool   `json:"allowed"`
			Reason  string `json:"reason"`
			Version int64  `json:"version"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("check %v: %v\n%s%s", c, err, r.stdout, r.stderr)
		}
		fmt.Fprintf(&out, "%v: exit %d allowed %t reason %s version %d\n", c, r.code, d.Allowed, d.Reason, d.Version)
	}
	return out.String()
}

// withoutCreatedAt returns archive with its header's created_at removed,
// so archives written at different times compare.
func withoutCreatedAt(t *testing.T, archive string) string {
	t.Helper()
	header, rest, _ := strings.Cut(archive, "\n")
	var h map[string]any
	if err := json.Unmarshal([]byte(header), &h); err != nil {
		t.Fatalf("archive header: %v\n%s", err, header)
	}
	delete(h, "created_at")
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n" + rest
}

// The restored store answers as the original, holds the same policy and a
// verifying audit trail, and backs up to the same archive.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	src := sourceDB(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.jsonl")
	if r := mustRun(t, src, "", "backup", "-o", file); !strings.Contains(r.stderr, "backed up") {
		t.Errorf("backup -o: stderr %q, want what it wrote", r.stderr)
	}
	archive, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, src, "", "backup"); withoutCreatedAt(t, r.stdout) != withoutCreatedAt(t, string(archive)) {
		t.Errorf("backup to stdout differs from backup -o")
	}
	for _, tt := range []struct{ name, stdin, file string }{
		{"from a file", "", file},
		{"from stdin", string(archive), "-"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "restored.db")
			r := mustRun(t, dst, tt.stdin, "restore", "-f", tt.file)
			if !strings.Contains(r.stdout, "audit chain ok") {
				t.Errorf("restore: stdout %q, want the verified chain", r.stdout)
			}
			if got, want := decisions(t, dst), decisions(t, src); got != want {
				t.Errorf("restored decisions:\n%s\nwant\n%s", got, want)
			}
			if got, want := mustRun(t, dst, "", "export").stdout, mustRun(t, src, "", "export").stdout; got != want {
				t.Errorf("restored export differs from the original's")
			}
			mustRun(t, dst, "", "audit", "verify")
			if got := mustRun(t, dst, "", "backup").stdout; withoutCreatedAt(t, got) != withoutCreatedAt(t, string(archive)) {
				t.Errorf("backup of the restored store differs from the archive restored")
			}
		})
	}
}

// Moving from the embedded default to PostgreSQL and back is one pipe each
// way, and every store along the way backs up to the same archive.
func TestBackupRestoreAcrossStores(t *testing.T) {
	t.Parallel()
	pg := pgtest.NewSchema(t, pgtest.DSN(t))
	src := sourceDB(t)
	archive := mustRun(t, src, "", "backup").stdout
	mustRun(t, pg, archive, "restore", "-f", "-")
	if got, want := decisions(t, pg), decisions(t, src); got != want {
		t.Errorf("decisions on PostgreSQL:\n%s\nwant\n%s", got, want)
	}
	mustRun(t, pg, "", "audit", "verify")
	fromPG := mustRun(t, pg, "", "backup").stdout
	if withoutCreatedAt(t, fromPG) != withoutCreatedAt(t, archive) {
		t.Errorf("backup of PostgreSQL differs from the SQLite backup restored into it")
	}
	back := filepath.Join(t.TempDir(), "back.db")
	mustRun(t, back, fromPG, "restore", "-f", "-")
	mustRun(t, back, "", "audit", "verify")
	if got := mustRun(t, back, "", "backup").stdout; withoutCreatedAt(t, got) != withoutCreatedAt(t, archive) {
		t.Errorf("backup after SQLite → PostgreSQL → SQLite differs from the first")
	}
}

// A refused restore exits 2 with the stable code and leaves the destination
// as it was.
func TestRestoreRefused(t *testing.T) {
	t.Parallel()
	src := sourceDB(t)
	archive := mustRun(t, src, "", "backup").stdout
	lines := strings.SplitAfter(archive, "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	// The third event: lines are the header, the objects, then the events.
	edited := 0
	for i, l := range lines {
		if strings.HasPrefix(l, `{"event":`) {
			edited = i + 3
			break
		}
	}
	tampered := append([]string(nil), lines...)
	tampered[edited-1] = strings.Replace(tampered[edited-1], `"actor":"cli:tester"`, `"actor":"cli:mallory"`, 1)
	if tampered[edited-1] == lines[edited-1] {
		t.Fatalf("archive line %d has no actor cli:tester: %s", edited, lines[edited-1])
	}
	newerFormat := append([]string(nil), lines...)
	newerFormat[0] = strings.Replace(newerFormat[0], `"format_version":1`, `"format_version":2`, 1)

	tests := []struct {
		name    string
		dst     string // empty: a fresh store
		archive string
		code    string
		names   string // what stderr must name besides the code
	}{
		{"not empty", newDB(t), archive, "not_empty", ""},
		{"tampered event", "", strings.Join(tampered, ""), "corrupt", fmt.Sprintf("archive line %d: chain", edited)},
		{"truncated", "", strings.Join(lines[:len(lines)-1], ""), "corrupt", fmt.Sprintf("archive line %d: truncated", len(lines))},
		{"trailing line", "", archive + lines[len(lines)-1], "corrupt", fmt.Sprintf("archive line %d: trailing", len(lines)+1)},
		{"newer format", "", strings.Join(newerFormat, ""), "invalid", "archive line 1: format_version"},
		{"not an archive", "", "roles: []\n", "invalid", "archive line 1: not_archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := tt.dst
			if dst == "" {
				dst = filepath.Join(t.TempDir(), "restored.db")
			}
			before := mustRun(t, dst, "", "backup").stdout
			r := runIn(t, dst, tt.archive, "restore", "-f", "-")
			if r.code != 2 || !strings.Contains(r.stderr, "("+tt.code+")") || !strings.Contains(r.stderr, tt.names) {
				t.Errorf("restore: exit %d, stderr %q; want 2, (%s) and %q", r.code, r.stderr, tt.code, tt.names)
			}
			if after := mustRun(t, dst, "", "backup").stdout; withoutCreatedAt(t, after) != withoutCreatedAt(t, before) {
				t.Errorf("the refused restore changed the destination")
			}
		})
	}
	if r := run(t, src, "restore"); r.code != 2 || !strings.Contains(r.stderr, "-f FILE is required") {
		t.Errorf("restore without -f: exit %d, stderr %q; want usage", r.code, r.stderr)
	}
}
