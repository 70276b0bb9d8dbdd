package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/golden"
	"github.com/google/go-cmp/cmp"
)

const examplePolicy = "../../examples/ai-assistant/policy.yaml"

type runResult struct {
	code           int
	stdout, stderr string
}

// run executes one command line in-process against db.
func run(t *testing.T, db string, args ...string) runResult {
	t.Helper()
	return runIn(t, db, "", args...)
}

// runIn executes one command line in-process against db with stdin.
func runIn(t *testing.T, db, stdin string, args ...string) runResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"GATEHOUSE_DB": db, "USER": "tester", "LANG": "C"}
	m := NewMain(func(k string) string { return env[k] }, strings.NewReader(stdin), &stdout, &stderr)
	err := m.ParseFlags(args)
	if err == nil {
		err = m.Run(context.Background())
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	code := m.report(err)
	return runResult{code, stdout.String(), stderr.String()}
}

func newDB(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "gatehouse.db")
	if r := run(t, db, "apply", "-f", examplePolicy); r.code != 0 {
		t.Fatalf("apply example: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return db
}

func TestCheckExitCodesAndReasons(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	tests := []struct {
		args   []string
		code   int
		reason string
	}{
		{[]string{"--subject", "user:sara@acme.example", "--tool", "analyze_loan", "--tenant", "acme"}, 0, "granted"},
		{[]string{"--subject", "user:carl@acme.example", "--tool", "analyze_loan", "--tenant", "acme-berlin"}, 3, "permission_missing"},
		{[]string{"--subject", "user:gina@globex.example", "--tool", "detect_fraud", "--tenant", "globex"}, 3, "plan_required"},
		{[]string{"--subject", "user:gus@example.org", "--permission", "chat.view"}, 3, "permission_missing"},
		{[]string{"--subject", "user:admin@example.com", "--permission", "chat.view"}, 0, "superuser"},
		{[]string{"--subject", "user:nobody@example.com", "--permission", "chat.view"}, 3, "unknown_subject"},
		{[]string{"--subject", "user:sara@acme.example", "--tool", "analyze_loan", "--tenant", "globex"}, 3, "tenant_not_visible"},
		{[]string{"--subject", "user:carl@acme.example", "--tool", "generate_report", "--tenant", "acme-berlin", "--context", `{"report_kind":"weekly"}`}, 3, "condition_failed"},
		{[]string{"--subject", "agent:support-bot", "--on-behalf-of", "user:olga@acme.example", "--tool", "lookup_order", "--tenant", "acme-berlin"}, 0, "granted"},
		// Agent actions are decided with their policy, limits and
		// confirmation, read-only, as every surface decides them.
		{[]string{"--subject", "agent:support-bot", "--on-behalf-of", "user:olga@acme.example", "--tool", "process_refund", "--tenant", "acme-berlin", "--args", `{"amount":"20.00","currency":"EUR"}`}, 3, "confirmation_required"},
		{[]string{"--subject", "agent:support-bot", "--on-behalf-of", "user:olga@acme.example", "--tool", "process_refund", "--tenant", "acme-berlin", "--args", `{"amount":"5000.00","currency":"EUR"}`}, 3, "limit_exceeded"},
		{[]string{"--subject", "agent:support-bot", "--on-behalf-of", "user:olga@acme.example", "--tool", "process_refund", "--tenant", "acme-berlin"}, 3, "invalid_request"},
		{[]string{"--subject", "agent:support-bot", "--on-behalf-of", "user:olga@acme.example", "--tool", "update_address", "--tenant", "acme-berlin"}, 3, "action_disabled"},
		{[]string{"--subject", "agent:support-bot", "--on-behalf-of", "user:olga@acme.example", "--tool", "cancel_order", "--tenant", "acme-milan"}, 0, "granted"},
	}
	for _, tt := range tests {
		args := append([]string{"check", "--json"}, tt.args...)
		r := run(t, db, args...)
		if r.code != tt.code {
			t.Errorf("gatehouse %s: exit %d, want %d\n%s", strings.Join(args, " "), r.code, tt.code, r.stderr)
			continue
		}
		var out struct {
			Allowed bool   `json:"allowed"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Errorf("gatehouse %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, r.stdout)
			continue
		}
		if out.Reason != tt.reason || out.Allowed != (tt.code == 0) || out.Message == "" {
			t.Errorf("gatehouse %s = %+v, want reason %s", strings.Join(args, " "), out, tt.reason)
		}
	}
}

func TestUsageAndInputErrorsExit2(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("roles: [{name: r, bundles: [missing]}]\nbundles: []\nbogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := garbageDB(t, dir)
	tests := []struct {
		name   string
		db     string
		args   []string
		stderr string // a fragment the error must name
	}{
		{"no command", db, []string{"frobnicate"}, "Unknown command"},
		{"check without subject", db, []string{"check", "--permission", "x"}, "--subject"},
		{"check with both", db, []string{"check", "--subject", "user:a@b.c", "--permission", "x", "--tool", "y"}, "exactly one"},
		{"bad subject", db, []string{"check", "--subject", "robot:x", "--permission", "x"}, "unknown type"},
		{"empty email", db, []string{"check", "--subject", "user:", "--permission", "x"}, "empty email"},
		{"bad context", db, []string{"check", "--subject", "user:a@b.c", "--permission", "x", "--context", "[1"}, "--context"},
		{"missing file", db, []string{"apply", "-f", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"invalid policy: unknown reference", db, []string{"apply", "-f", broken}, "broken.yaml:1:29: roles[0].bundles[0]: unknown bundle \"missing\""},
		{"invalid policy: unknown key", db, []string{"apply", "-f", broken}, "broken.yaml:3:1: bogus: unknown key"},
		{"unknown tenant grant", db, []string{"user", "grant", "carl@acme.example", "acme,atlantis"}, "atlantis"},
		{"last superuser", db, []string{"user", "demote", "admin@example.com"}, "last superuser"},
		{"corrupt database", garbage, []string{"user", "list"}, "garbage.db"},
		{"missing database dir", filepath.Join(dir, "no", "such", "dir.db"), []string{"user", "list"}, "dir.db"},
		{"tenant cycle", db, []string{"tenant", "move", "acme", "--parent", "acme-berlin"}, "cycle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := run(t, db, "export")
			r := run(t, tt.db, tt.args...)
			if r.code != 2 {
				t.Fatalf("gatehouse %s: exit %d, want 2\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tt.stderr)
			}
			if after := run(t, db, "export"); after.stdout != before.stdout {
				t.Error("a failed command changed the store")
			}
		})
	}
}

func TestApplyIdempotentAndExportRoundTrip(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	if r := run(t, db, "apply", "-f", examplePolicy); r.code != 0 || !strings.Contains(r.stdout, "policy unchanged") {
		t.Fatalf("second apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	exported := filepath.Join(t.TempDir(), "export.yaml")
	if r := run(t, db, "export", "-o", exported); r.code != 0 {
		t.Fatalf("export: exit %d %s", r.code, r.stderr)
	}
	if r := run(t, db, "apply", "-f", exported); r.code != 0 || !strings.Contains(r.stdout, "policy unchanged") {
		t.Fatalf("apply(export): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, db, "audit", "verify"); r.code != 0 || !strings.Contains(r.stdout, "audit chain ok") {
		t.Fatalf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// The JSON-lines export applies back without a change: from a .jsonl file,
// from stdin with --format jsonl, and recognized by its first key; into an
// empty store it reproduces the policy. A bad line is reported at its line.
func TestExportApplyJSONLines(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	dir := t.TempDir()
	exported := filepath.Join(dir, "export.jsonl")
	if r := run(t, db, "export", "--format", "jsonl", "-o", exported); r.code != 0 {
		t.Fatalf("export: exit %d %s", r.code, r.stderr)
	}
	data, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, db, "export", "--format", "jsonl"); r.stdout != string(data) {
		t.Errorf("export to stdout differs from export -o")
	}
	plain := filepath.Join(dir, "export.txt")
	if err := os.WriteFile(plain, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"apply", "-f", exported}, {"apply", "-f", plain}} {
		if r := run(t, db, args...); r.code != 0 || !strings.Contains(r.stdout, "policy unchanged") {
			t.Errorf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := runIn(t, db, string(data), "apply", "-f", "-", "--format", "jsonl"); r.code != 0 || !strings.Contains(r.stdout, "policy unchanged") {
		t.Errorf("apply from stdin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	fresh := filepath.Join(dir, "fresh.db")
	if r := run(t, fresh, "apply", "-f", exported); r.code != 0 {
		t.Fatalf("apply into a fresh store: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got, want := run(t, fresh, "export").stdout, run(t, db, "export").stdout; got != want {
		t.Errorf("the fresh store exports differently:\n%s", cmp.Diff(want, got))
	}
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"kind":"tenant","id":"x"}`+"\n"+`{"kind":"tenant","id":"y","parent":"nope"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, db, "apply", "-f", bad); r.code == 0 || !strings.Contains(r.stderr, "bad.jsonl:2: tenants[1].parent: unknown tenant") {
		t.Errorf("a bad line: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, db, "apply", "-f", exported, "--format", "toml"); r.code != 2 {
		t.Errorf("apply --format toml: exit %d, want 2", r.code)
	}
}

// Golden outputs for what a person reads.
func TestGoldenOutputs(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	tests := []struct {
		name string
		args []string
	}{
		{"check_explain_granted", []string{"check", "--subject", "user:sara@acme.example", "--tool", "analyze_loan", "--tenant", "acme-berlin", "--explain"}},
		{"check_explain_plan", []string{"check", "--subject", "user:gina@globex.example", "--tool", "detect_fraud", "--tenant", "globex", "--explain"}},
		{"check_de", []string{"check", "--subject", "user:carl@acme.example", "--tool", "analyze_loan", "--tenant", "acme-berlin", "--lang", "de"}},
		{"check_zh", []string{"check", "--subject", "user:gina@globex.example", "--tool", "detect_fraud", "--tenant", "globex", "--lang", "zh"}},
		{"effective", []string{"effective", "--subject", "user:carl@acme.example", "--tenant", "acme-berlin"}},
		{"user_show_unknown", []string{"user", "show", "Nobody@Example.com"}},
		{"tenant_list", []string{"tenant", "list"}},
		{"user_set_tenants", []string{"user", "set-tenants", "carl@acme.example", "acme-milan,acme-berlin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, db, tt.args...)
			got := r.stdout + r.stderr
			golden.Check(t, filepath.Join("testdata", tt.name+".golden"), got)
		})
	}
}

func TestAuditListAfterChanges(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	if r := run(t, db, "user", "promote", "sara@acme.example", "--actor", "cli:alice"); r.code != 0 {
		t.Fatalf("promote: %d %s", r.code, r.stderr)
	}
	r := run(t, db, "audit", "list", "--action", "user.promote", "--json")
	if r.code != 0 {
		t.Fatalf("audit list: %d %s", r.code, r.stderr)
	}
	var e struct {
		Actor  string          `json:"actor"`
		Target string          `json:"target"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil {
		t.Fatalf("audit list --json: %v\n%s", err, r.stdout)
	}
	if e.Actor != "cli:alice" || e.Target != "user/sara@acme.example" || !strings.Contains(string(e.After), `"superuser":true`) {
		t.Errorf("promote event = %+v", e)
	}
}

// Store and input failures exit 2, unexpected ones 1, denials 3.
func TestExitStatusByErrorCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errHelp, 0},
		{errDenied, 3},
		{usageErrorf("bad flag"), 2},
		{fmt.Errorf("open: %w", gatehouse.ErrUnavailable), 2},
		{fmt.Errorf("open: %w", gatehouse.ErrCorrupt), 2},
		{fmt.Errorf("open: %w", gatehouse.ErrSchemaTooNew), 2},
		{gatehouse.Invalidf("policy"), 2},
		{gatehouse.NotFoundf("tenant"), 2},
		{gatehouse.ErrLastSuperuser, 2},
		{gatehouse.ErrConflict, 2},
		{errors.New("boom"), 1},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		m := NewMain(func(string) string { return "" }, strings.NewReader(""), &bytes.Buffer{}, &stderr)
		if got := m.report(tt.err); got != tt.want {
			t.Errorf("report(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// Read-only commands never create a store: on a missing SQLite file they
// say so and exit 2, and the file still does not exist.
func TestReadOnlyCommandsOnMissingDatabase(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "missing.db")
	for _, args := range [][]string{
		{"check", "--subject", "user:sara@acme.example", "--permission", "chat.view"},
		{"effective", "--subject", "user:sara@acme.example"},
		{"export"},
		{"audit", "verify"},
		{"audit", "list"},
		{"user", "list"},
		{"user", "show", "sara@acme.example"},
		{"tenant", "list"},
		{"apikey", "list"},
		{"action", "list"},
	} {
		r := run(t, db, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "does not exist") {
			t.Errorf("gatehouse %s on a missing database: exit %d, %q", strings.Join(args, " "), r.code, r.stderr)
		}
		if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("gatehouse %s created %s", strings.Join(args, " "), db)
		}
	}
}

// A check naming a tenant, tool or permission the policy lacks is a usage
// error with the closest name; an unknown subject is still a denial.
func TestCheckUnknownNames(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	for _, tt := range []struct {
		args    []string
		code    int
		suggest string
	}{
		{[]string{"--subject", "user:sara@acme.example", "--tool", "analyze_loan", "--tenant", "acme-berlinn"}, 2, `"acme-berlin"`},
		{[]string{"--subject", "user:sara@acme.example", "--tool", "analyze_lon", "--tenant", "acme"}, 2, `"analyze_loan"`},
		{[]string{"--subject", "user:sara@acme.example", "--permission", "chat.veiw"}, 2, `"chat.view"`},
		{[]string{"--subject", "user:nobody@acme.example", "--permission", "chat.view"}, 3, ""},
	} {
		args := append([]string{"check"}, tt.args...)
		r := run(t, db, args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.suggest) {
			t.Errorf("gatehouse %s: exit %d, stderr %q; want exit %d suggesting %s", strings.Join(args, " "), r.code, r.stderr, tt.code, tt.suggest)
		}
	}
	if r := run(t, db, "effective", "--subject", "user:sara@acme.example", "--tenant", "acmee"); r.code != 2 || !strings.Contains(r.stderr, `"acme"`) {
		t.Errorf("effective --tenant acmee: exit %d, %q", r.code, r.stderr)
	}
}

// garbageDB writes a file in dir that is not a database and returns its path.
func garbageDB(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
