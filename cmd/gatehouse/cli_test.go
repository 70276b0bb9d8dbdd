package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/golden"
	"github.com/gatehouse/gatehouse/sqlite"
)

// Help, as a person reads it: the command list, a command's flags
// (GNU-style, the --lang default resolved), and a group's subcommands.
func TestHelpGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"help", []string{"help"}, 0},
		{"help_check", []string{"help", "check"}, 0},
		{"help_user_grant", []string{"help", "user", "grant"}, 0},
		{"help_user_set_tenants", []string{"user", "set-tenants", "--help"}, 0},
		{"help_user", []string{"help", "user"}, 0},
		{"user_without_subcommand", []string{"user"}, 2},
		{"user_unknown_subcommand", []string{"user", "frob"}, 2},
		{"help_unknown", []string{"help", "frob"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Help opens no store: the path only shows as --db's default.
			r := run(t, "gatehouse.db", tt.args...)
			if r.code != tt.code {
				t.Errorf("gatehouse %s: exit %d, want %d", strings.Join(tt.args, " "), r.code, tt.code)
			}
			golden.Check(t, filepath.Join("testdata", tt.name+".golden"), r.stdout+r.stderr)
		})
	}
}

// Errors print once, on one line: the localized message, then the code;
// the internal cause only with --verbose.
func TestErrorGolden(t *testing.T) {
	db := newDB(t)
	dir := t.TempDir()
	garbage := garbageDB(t, dir)
	tests := []struct {
		name string
		db   string
		args []string
		code int
	}{
		{"error_last_superuser", db, []string{"user", "demote", "admin@example.com"}, 2},
		{"error_last_superuser_verbose", db, []string{"--verbose", "user", "demote", "admin@example.com"}, 2},
		{"error_last_superuser_de", db, []string{"user", "demote", "admin@example.com", "--lang", "de"}, 2},
		{"error_not_found", db, []string{"action", "execute", "no-such-action", "--as", "user:olga@acme.example"}, 2},
		{"error_not_found_verbose", db, []string{"action", "execute", "no-such-action", "--as", "user:olga@acme.example", "--verbose"}, 2},
		{"error_unknown_tenant", db, []string{"user", "grant", "carl@acme.example", "atlantis"}, 2},
		{"error_missing_dir_write", "", []string{"--db", "no/such/dir/x.db", "apply", "-f", examplePolicy}, 2},
		{"error_missing_dir_read", "", []string{"--db", "no/such/dir/x.db", "check", "--subject", "user:a@b.c", "--permission", "chat.view"}, 2},
		{"error_not_a_database", garbage, []string{"user", "list"}, 2},
		{"error_is_directory", dir, []string{"apply", "-f", examplePolicy}, 2},
		{"error_unknown_flag", db, []string{"check", "--frob"}, 2},
		// Usage errors are localized too and end with the code usage.
		{"error_unknown_flag_de", db, []string{"check", "--frob", "--lang", "de"}, 2},
		{"error_subject_required", db, []string{"check", "--tool", "analyze_loan"}, 2},
		{"error_subject_required_fr", db, []string{"check", "--tool", "analyze_loan", "--lang", "fr"}, 2},
		{"error_bad_args", db, []string{"check", "--subject", "user:carl@acme.example", "--tool", "analyze_loan", "--args", "[1]"}, 2},
		{"error_bad_args_de", db, []string{"check", "--subject", "user:carl@acme.example", "--tool", "analyze_loan", "--args", "[1]", "--lang", "de"}, 2},
		{"error_unknown_format_zh", db, []string{"export", "--format", "toml", "--lang", "zh"}, 2},
		{"error_flag_needs_value_fr", db, []string{"check", "--lang", "fr", "--tool"}, 2},
		{"error_bad_json_it", db, []string{"check", "--subject", "user:carl@acme.example", "--tool", "analyze_loan", "--context", "{oops", "--lang", "it"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.db, tt.args...)
			if r.code != tt.code {
				t.Errorf("gatehouse %s: exit %d, want %d", strings.Join(tt.args, " "), r.code, tt.code)
			}
			out := strings.ReplaceAll(r.stdout+r.stderr, dir, "$DIR")
			golden.Check(t, filepath.Join("testdata", tt.name+".golden"), out)
		})
	}
	if _, err := os.Stat("no"); err == nil {
		t.Error(`a failed command created the directory "no"`)
	}

	// A step the action's state does not allow names the state, not the
	// store and operation.
	r := run(t, db, "action", "authorize", "--json", "--subject", "agent:support-bot", "--on-behalf-of", "user:olga@acme.example",
		"--tenant", "acme-berlin", "--tool", "process_refund", "--args", `{"amount":"20.00","currency":"EUR"}`)
	var a struct {
		ActionID string `json:"action_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || a.ActionID == "" {
		t.Fatalf("action authorize: %v %q %q", err, r.stdout, r.stderr)
	}
	for _, name := range []string{"error_illegal_transition", "error_illegal_transition_verbose"} {
		args := []string{"action", "execute", a.ActionID, "--as", "agent:support-bot"}
		if strings.HasSuffix(name, "verbose") {
			args = append(args, "--verbose")
		}
		r := run(t, db, args...)
		if r.code != 2 {
			t.Errorf("gatehouse %s: exit %d, want 2", strings.Join(args, " "), r.code)
		}
		golden.Check(t, filepath.Join("testdata", name+".golden"), strings.NewReplacer(a.ActionID, "$ID", filepath.Dir(db), "$DIR").Replace(r.stderr))
	}
}

// Global flags go before or after the command's name, a command's own
// flags anywhere after it (and its boolean ones before it too).
func TestGlobalFlagsAnywhere(t *testing.T) {
	db := newDB(t)
	check := []string{"--subject", "user:carl@acme.example", "--tool", "analyze_loan", "--tenant", "acme-berlin"}
	for _, args := range [][]string{
		append([]string{"--db", db, "--lang", "de", "check"}, check...),
		append(append([]string{"check"}, check...), "--db", db, "--lang=de"),
		append([]string{"--db=" + db, "check", "--lang", "de"}, check...),
		append([]string{"--lang", "de", "--db", db, "--json", "check"}, check...),
	} {
		r := run(t, filepath.Join(t.TempDir(), "other.db"), args...)
		if r.code != 3 || !strings.Contains(r.stdout, "permission_missing") || !strings.Contains(r.stdout, "hat die Berechtigung") {
			t.Errorf("gatehouse %s: exit %d, %q %q; want a German denial", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	r := run(t, db, "--tenant", "acme", "check", "--subject", "user:sara@acme.example", "--tool", "analyze_loan")
	if r.code != 0 {
		t.Errorf("a command flag before the command: exit %d, %s", r.code, r.stderr)
	}
	r = run(t, db, "--frob", "check")
	if r.code != 2 || !strings.Contains(r.stderr, "--frob") {
		t.Errorf("an unknown flag before the command: exit %d, %q", r.code, r.stderr)
	}
}

// LANG=C, C.UTF-8 and POSIX are English; --lang shows the resolved
// language as its default.
func TestLangFromEnvironment(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"LANG": "C.UTF-8"}, `(default "en")`},
		{map[string]string{"LANG": "POSIX"}, `(default "en")`},
		{map[string]string{"LANG": "C"}, `(default "en")`},
		{map[string]string{"LANG": "fr_FR.UTF-8"}, `(default "fr")`},
		{map[string]string{"LANG": "fr_FR.UTF-8", "LC_ALL": "de_DE.UTF-8"}, `(default "de")`},
		{map[string]string{"LANG": "C", "GATEHOUSE_LANG": "it"}, `(default "it")`},
	} {
		var stdout, stderr bytes.Buffer
		m := NewMain(func(k string) string { return tt.env[k] }, strings.NewReader(""), &stdout, &stderr)
		if err := m.ParseFlags([]string{"help", "check"}); err != errHelp {
			t.Fatalf("help check: %v", err)
		}
		var lang string
		for _, line := range strings.Split(stdout.String(), "\n") {
			if strings.Contains(line, "--lang") {
				lang = line
			}
		}
		if !strings.Contains(lang, tt.want) {
			t.Errorf("env %v: --lang help %q, want %s", tt.env, lang, tt.want)
		}
	}
}

// user set-tenants is the exact set; user grant adds and user revoke
// removes, each keeping the others.
func TestUserTenantCommands(t *testing.T) {
	db := newDB(t)
	tenants := func() string {
		t.Helper()
		r := run(t, db, "user", "show", "carl@acme.example")
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(line, "tenants") {
				return strings.TrimSpace(strings.TrimPrefix(line, "tenants"))
			}
		}
		t.Fatalf("user show: no tenants line in %q", r.stdout)
		return ""
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"user", "set-tenants", "carl@acme.example", "acme-berlin"}, "acme-berlin"},
		{[]string{"user", "grant", "carl@acme.example", "acme-milan,acme"}, "acme, acme-berlin, acme-milan"},
		{[]string{"user", "revoke", "carl@acme.example", "acme"}, "acme-berlin, acme-milan"},
		{[]string{"user", "set-tenants", "carl@acme.example", "--none"}, ""},
		{[]string{"user", "set-tenants", "carl@acme.example", "--default"}, "general (default tenants)"},
	}
	for _, s := range steps {
		if r := run(t, db, s.args...); r.code != 0 {
			t.Fatalf("gatehouse %s: exit %d %s", strings.Join(s.args, " "), r.code, r.stderr)
		}
		if got := tenants(); got != s.want {
			t.Errorf("after gatehouse %s: tenants %q, want %q", strings.Join(s.args, " "), got, s.want)
		}
	}
	for _, args := range [][]string{
		{"user", "grant", "carl@acme.example"},
		{"user", "grant", "carl@acme.example", "--none"},
		{"user", "revoke", "carl@acme.example", ","},
	} {
		if r := run(t, db, args...); r.code != 2 {
			t.Errorf("gatehouse %s: exit %d, want 2", strings.Join(args, " "), r.code)
		}
	}
}

func TestVersion(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "github.com/gatehouse/gatehouse", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	v := readVersion(info, true)
	want := "gatehouse v1.2.3 revision abc123+dirty (2026-12-01T10:00:00Z) go1.26.1 " + v.Platform
	if got := v.String(); got != want {
		t.Errorf("version = %q, want %q", got, want)
	}
	if got := readVersion(nil, false).String(); !strings.Contains(got, "(unknown) revision unknown") {
		t.Errorf("version without build info = %q", got)
	}
	for _, args := range [][]string{{"version"}, {"--version"}, {"--db", "x.db", "--version"}} {
		r := run(t, "", args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "gatehouse ") || !strings.Contains(r.stdout, " go1.") {
			t.Errorf("gatehouse %s: exit %d, %q %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if r := run(t, "", "version", "--json"); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("%q", "go")) {
		t.Errorf("version --json: exit %d, %q", r.code, r.stdout)
	}
}

// audit list: newest first by default, --oldest to reverse, filters,
// decisions with allowed, reason and tool, and a note on stderr when the
// limit cut the list, naming the next page.
func TestAuditListNewestFirst(t *testing.T) {
	db := newDB(t)
	st, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	decision := func(subject, tool, reason string, allowed bool, d time.Duration) gatehouse.AuditEvent {
		detail := fmt.Sprintf(`{"endpoint":"http","subject":%q,"tool":%q,"tenant":"acme-berlin","allowed":%t,"reason":%q,"version":1,"latency_us":12}`,
			subject, tool, allowed, reason)
		return gatehouse.AuditEvent{Time: at.Add(d), Actor: "pep:api_key", Action: "decision", Target: subject, Detail: json.RawMessage(detail)}
	}
	if err := st.AppendAudit(t.Context(), []gatehouse.AuditEvent{
		decision("user:sara@acme.example", "analyze_loan", "granted", true, 0),
		decision("user:carl@acme.example", "analyze_loan", "permission_missing", false, time.Minute),
		decision("agent:support-bot", "process_refund", "confirmation_required", false, 2*time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	head, err := st.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	last := head.Seq

	r := run(t, db, "audit", "list", "--action", "decision")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("audit list --action decision: exit %d %q", r.code, r.stderr)
	}
	// Sequence numbers depend on the example policy's size.
	golden.Check(t, filepath.Join("testdata", "audit_list_decisions.golden"),
		regexp.MustCompile(`(?m)^\d+ `).ReplaceAllString(r.stdout, "#  "))

	seqsOf := func(r runResult) []int64 {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var out []int64
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
			seq, err := strconv.ParseInt(strings.Fields(line)[0], 10, 64)
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			out = append(out, seq)
		}
		return out
	}
	want := func(name string, got []int64, want ...int64) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: seqs %v, want %v", name, got, want)
		}
	}
	r = run(t, db, "audit", "list", "--limit", "2")
	want("--limit 2", seqsOf(r), last, last-1)
	if note := fmt.Sprintf("--before %d", last-1); !strings.Contains(r.stderr, "showing 2 of more") || !strings.Contains(r.stderr, note) {
		t.Errorf("--limit 2: stderr %q, want a note naming %s", r.stderr, note)
	}
	want("--before SEQ", seqsOf(run(t, db, "audit", "list", "--limit", "2", "--before", strconv.FormatInt(last-1, 10))), last-2, last-3)
	r = run(t, db, "audit", "list", "--oldest", "--limit", "2")
	want("--oldest", seqsOf(r), 1, 2)
	if !strings.Contains(r.stderr, "--after 2") {
		t.Errorf("--oldest --limit 2: stderr %q, want a note naming --after 2", r.stderr)
	}
	want("--actor", seqsOf(run(t, db, "audit", "list", "--actor", "pep:api_key", "--oldest")), last-2, last-1, last)
	want("--target", seqsOf(run(t, db, "audit", "list", "--target", "agent:")), last)
	want("--kind decision", seqsOf(run(t, db, "audit", "list", "--kind", "decision")), last, last-1, last-2)
	if got := seqsOf(run(t, db, "audit", "list", "--kind", "change", "--oldest")); len(got) == 0 || got[len(got)-1] != last-3 {
		t.Errorf("--kind change: seqs %v, want the policy's events up to %d", got, last-3)
	}
	want("--reason", seqsOf(run(t, db, "audit", "list", "--reason", "permission_missing")), last-1)
	if r := run(t, db, "audit", "list", "--kind", "decisions"); r.code != 2 || !strings.Contains(r.stderr, "--kind") {
		t.Errorf("--kind decisions: exit %d %q, want a usage error", r.code, r.stderr)
	}
	want("--since TIME", seqsOf(run(t, db, "audit", "list", "--action", "decision", "--since", "2026-12-01T09:01:00Z")), last, last-1)
	want("--before TIME", seqsOf(run(t, db, "audit", "list", "--action", "decision", "--before", "2026-12-01T09:01:00Z")), last-2)
	want("--before DATE", seqsOf(run(t, db, "audit", "list", "--action", "decision", "--before", "2026-12-01")))
	// The policy was applied just now, the decisions in the past.
	want("--since DURATION", seqsOf(run(t, db, "audit", "list", "--since", "1h", "--action", "user.promote")))
	if got := seqsOf(run(t, db, "audit", "list", "--since", "1h", "--oldest", "--limit", "1")); len(got) != 1 || got[0] != 1 {
		t.Errorf("--since 1h: seqs %v, want the policy's first event", got)
	}
	if r := run(t, db, "audit", "list", "--since", "yesterday"); r.code != 2 || !strings.Contains(r.stderr, "RFC 3339") {
		t.Errorf("--since yesterday: exit %d %q, want a usage error", r.code, r.stderr)
	}
	if r := run(t, db, "audit", "list"); r.stderr != "" {
		t.Errorf("audit list under the limit: stderr %q, want no note", r.stderr)
	}
}
