package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The seed 004 flow through the CLI: a refund in acme-berlin waits for the
// customer's confirmation, the agent reports it executed, and a proposed
// lower limit is replayed against it.
func TestActionCommands(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	refund := func(amount string, extra ...string) []string {
		return append([]string{"action", "authorize", "--json", "--subject", "agent:support-bot",
			"--on-behalf-of", "user:olga@acme.example", "--tenant", "acme-berlin", "--tool", "process_refund",
			"--args", `{"amount":"` + amount + `","currency":"EUR"}`}, extra...)
	}
	r := run(t, db, refund("20.00", "--key", "conv-9")...)
	var res struct {
		Allowed  bool   `json:"allowed"`
		Reason   string `json:"reason"`
		ActionID string `json:"action_id"`
		Status   string `json:"status"`
		Replayed bool   `json:"replayed"`
		Message  string `json:"message"`
		Limit    *struct {
			Limit, Max, Requested string
		} `json:"limit"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 {
		t.Fatalf("authorize: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if !res.Allowed || res.Reason != "confirmation_required" || res.Status != "pending" || res.ActionID == "" {
		t.Errorf("authorize = %+v, want pending confirmation", res)
	}
	id := res.ActionID
	r = run(t, db, refund("20.00", "--key", "conv-9")...)
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !res.Replayed || res.ActionID != id {
		t.Errorf("authorize again with the key = %+v, %v; want the first result replayed", res, err)
	}
	r = run(t, db, refund("60.00")...)
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != exitDenied ||
		res.Reason != "limit_exceeded" || res.Limit == nil || res.Limit.Max != "50.00" || !strings.Contains(res.Message, "60.00 EUR") {
		t.Errorf("authorize over the limit: exit %d, %+v", r.code, res)
	}

	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"action", "execute", id, "--as", "agent:support-bot"}, exitUsage, "illegal_transition"},
		{[]string{"action", "confirm", id, "--as", "user:carl@acme.example"}, exitUsage, "not_approver"},
		{[]string{"action", "confirm", id}, exitUsage, "--as is required"},
		{[]string{"action", "confirm", id, "--as", "user:olga@acme.example"}, 0, "confirmed"},
		{[]string{"action", "fail", id, "--as", "agent:support-bot"}, exitUsage, "--error is required"},
		{[]string{"action", "execute", id, "--as", "agent:support-bot"}, 0, "executed"},
		{[]string{"action", "show", id}, 0, "20.00 EUR"},
		{[]string{"action", "show", "nope"}, exitUsage, "not_found"},
		{[]string{"action", "list", "--status", "executed"}, 0, id},
		{[]string{"action", "list", "--status", "approved"}, exitUsage, "unknown status"},
		{[]string{"action", "list", "--since", "yesterday"}, exitUsage, "--since"},
		{[]string{"action", "policy", "--tenant", "acme-milan"}, 0, "false (tenant:acme-milan)"},
		{[]string{"action", "policy", "--tenant", "nowhere"}, exitUsage, "not_found"},
		{[]string{"action", "policy", "set", "apply_discount", "--tenant", "acme-milan", "--confirmation", "false",
			"--limits", `{"max_percentage":"10"}`}, 0, "false (tenant:acme-milan)  max_percentage 10% (tenant:acme-milan)"},
		{[]string{"action", "policy", "set", "apply_discount", "--tenant", "acme-milan", "--inherit"}, 0, "true (default)             max_percentage 15% (tenant:acme)"},
		{[]string{"action", "policy", "set", "apply_discount", "--tenant", "acme-milan", "--limits", `{"max_percentage":"101"}`}, exitUsage, "larger than 100"},
		{[]string{"action", "policy", "set", "apply_discount", "--tenant", "acme-milan", "--enabled", "maybe"}, exitUsage, "wants true or false"},
		{[]string{"action", "policy", "set", "apply_discount", "--tenant", "acme-milan"}, exitUsage, "Give at least one of --enabled"},
		{[]string{"action", "policy", "set", "launch_rocket", "--tenant", "acme-milan", "--enabled", "true"}, exitUsage, "not_found"},
		{[]string{"action", "policy", "unset", "x", "--tenant", "acme-milan"}, exitUsage, "get | set ACTION"},
		{[]string{"action", "authorize", "--tool", "process_refund"}, exitUsage, "--subject and --tool are required"},
		{[]string{"action", "simulate", "--subject", "agent:support-bot", "--on-behalf-of", "user:olga@acme.example",
			"--tenant", "acme-milan", "--tool", "update_address"}, exitDenied, "action_disabled"},
	}
	for _, s := range steps {
		r := run(t, db, s.args...)
		if r.code != s.code || !strings.Contains(r.stdout+r.stderr, s.want) {
			t.Errorf("gatehouse %s: exit %d, want %d and %q\n%s%s", strings.Join(s.args, " "), r.code, s.code, s.want, r.stdout, r.stderr)
		}
	}
	r = run(t, db, "action", "list", "--json")
	if lines := strings.Count(r.stdout, "\n"); r.code != 0 || lines != 1 {
		t.Errorf("action list --json: exit %d, %d lines, want 1 record\n%s", r.code, lines, r.stdout)
	}

	src, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	stricter := filepath.Join(t.TempDir(), "stricter.yaml")
	if err := os.WriteFile(stricter, []byte(strings.Replace(string(src), `max_amount: "50.00"`, `max_amount: "10.00"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, db, "action", "simulate", "--replay", stricter, "--days", "1", "--json")
	var rep struct {
		Actions         int            `json:"actions"`
		AllowedToDenied int            `json:"allowed_to_denied"`
		ByReason        map[string]int `json:"by_reason"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Actions != 1 || rep.AllowedToDenied != 1 || rep.ByReason["limit_exceeded"] != 1 {
		t.Errorf("simulate --replay: exit %d, %+v, %v\n%s", r.code, rep, err, r.stderr)
	}
	if r := run(t, db, "audit", "verify"); r.code != 0 {
		t.Errorf("audit verify after actions: %s%s", r.stdout, r.stderr)
	}
}

// action limits lists one line per effective limit with its source, and
// sets or removes one: the others become the tenant's own.
func TestActionLimitsCommand(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	limits := func(args ...string) []string { return append([]string{"action", "limits"}, args...) }
	steps := []struct {
		args []string
		code int
		want string
	}{
		{limits("--tenant", "acme-milan"), 0, "process_refund max_count 50 - 24h tenant:acme"},
		{limits("set", "process_refund", "time_window", "5", "--window", "1h", "--tenant", "acme-milan"), 0,
			"process_refund max_count 5 - 1h tenant:acme-milan"},
		// The inherited limits came along, now with the new window.
		{limits("--tenant", "acme-milan"), 0, "process_refund max_total_amount 1000 EUR 1h tenant:acme-milan"},
		{limits("remove", "process_refund", "max_amount", "--tenant", "acme-milan"), 0, "max_total_amount"},
		{limits("remove", "process_refund", "max_amount", "--tenant", "acme-milan"), exitUsage, "not_found"},
		{limits("set", "process_refund", "max_amount", "10.001", "--tenant", "acme-milan"), exitUsage, "more than 2 decimals"},
		{limits("set", "process_refund", "max_amount", "--tenant", "acme-milan", "--", "-3"), exitUsage, "is negative"},
		{limits("set", "apply_discount", "max_percentage", "101", "--tenant", "acme-milan"), exitUsage, "larger than 100"},
		{limits("set", "apply_discount", "max_amount", "10", "--tenant", "acme-milan"), exitUsage, "currency is required"},
		{limits("set", "apply_discount", "max_count", "0", "--tenant", "acme-milan"), exitUsage, "positive whole number"},
		{limits("set", "apply_discount", "max_count", "3", "--tenant", "acme-milan"), exitUsage, "needs a window"},
		{limits("set", "apply_discount", "max_speed", "3", "--tenant", "acme-milan"), exitUsage, "want one of"},
		{limits("set", "launch_rocket", "max_count", "3", "--window", "1h", "--tenant", "acme-milan"), exitUsage, "not_found"},
		{limits("set", "process_refund", "max_count", "3"), exitUsage, "--tenant is required"},
		{limits("drop", "x", "--tenant", "acme-milan"), exitUsage, "get | set ACTION LIMIT VALUE"},
	}
	// Lines compare with their columns one space apart.
	squeeze := func(out string) string {
		var lines []string
		for line := range strings.Lines(out) {
			lines = append(lines, strings.Join(strings.Fields(line), " "))
		}
		return strings.Join(lines, "\n")
	}
	for _, s := range steps {
		r := run(t, db, s.args...)
		if r.code != s.code || !strings.Contains(squeeze(r.stdout+r.stderr), s.want) {
			t.Errorf("gatehouse %s: exit %d, want %d and %q\n%s%s", strings.Join(s.args, " "), r.code, s.code, s.want, r.stdout, r.stderr)
		}
	}
	r := run(t, db, "action", "limits", "--tenant", "acme-milan", "--json")
	var lines []limitLine
	if err := json.Unmarshal([]byte(r.stdout), &lines); err != nil || len(lines) != 3 {
		t.Fatalf("action limits --json: %v, %+v", err, lines)
	}
	want := limitLine{Action: "process_refund", Limit: "max_count", Value: "5", Window: "1h", Source: "tenant:acme-milan"}
	if lines[1] != want {
		t.Errorf("action limits --json line 2 = %+v, want %+v", lines[1], want)
	}
	if r := run(t, db, "audit", "verify"); r.code != 0 {
		t.Errorf("audit verify after limit changes: %s%s", r.stdout, r.stderr)
	}
}

// A proposal holding only tenants: is overlaid on the stored policy section
// by section, as apply treats it: the stored users, roles and action types
// stay, and the replay shows what the tenants' new limits deny. A tenants
// section that lists one tenant replaces all of them, and the problem says
// so.
func TestActionReplayTenantsOnly(t *testing.T) {
	db := newDB(t)
	if r := run(t, db, "action", "authorize", "--subject", "agent:support-bot", "--on-behalf-of", "user:olga@acme.example",
		"--tenant", "acme-berlin", "--tool", "process_refund", "--args", `{"amount":"20.00","currency":"EUR"}`); r.code != 0 {
		t.Fatalf("action authorize: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	src, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	tenants := string(src[strings.Index(string(src), "\ntenants:\n")+1:])
	tenants = tenants[:strings.Index(tenants, "\n\n")+1]
	dir := t.TempDir()
	write := func(name, doc string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tighter := strings.Replace(tenants, `max_amount: "50.00"`, `max_amount: "10.00"`, 1)
	if tighter == tenants {
		t.Fatal(`the example's acme-berlin refund limit is no longer max_amount: "50.00"`)
	}
	r := run(t, db, "action", "simulate", "--json", "--replay", write("tenants.yaml", tighter))
	if r.code != 0 {
		t.Fatalf("replay of a tenants-only proposal: exit %d %s", r.code, r.stderr)
	}
	var rep struct {
		Actions         int            `json:"actions"`
		AllowedToDenied int            `json:"allowed_to_denied"`
		ByReason        map[string]int `json:"by_reason"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("replay --json: %v\n%s", err, r.stdout)
	}
	if rep.Actions != 1 || rep.AllowedToDenied != 1 || rep.ByReason["limit_exceeded"] != 1 {
		t.Errorf("replay of a 10 EUR limit over a 20 EUR refund = %+v, want 1 allowed → denied by limit_exceeded\n%s", rep, r.stdout)
	}

	one := write("one.yaml", "tenants:\n  - {id: acme-berlin, parent: acme}\n")
	for _, args := range [][]string{{"action", "simulate", "--replay", one}, {"apply", "--dry-run", "-f", one}} {
		r := run(t, db, args...)
		if r.code != 2 || !strings.Contains(r.stderr, `unknown tenant "acme"; the document's tenants: section replaces the stored one`) {
			t.Errorf("gatehouse %s: exit %d, stderr %q; want the replaced section explained", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}
