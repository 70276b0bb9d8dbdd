package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAPIKeyCommands(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	r := run(t, db, "apikey", "create", "support bot", "--subject", "agent:support-bot", "--scopes", "authzen,check", "--ttl", "720h", "--json")
	var out struct {
		Token string `json:"token"`
		Key   struct {
			ID     string   `json:"id"`
			Scopes []string `json:"scopes"`
		} `json:"key"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || !strings.HasPrefix(out.Token, "ghk_") || len(out.Key.Scopes) != 2 {
		t.Fatalf("create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, db, "apikey", "list"); r.code != 0 || !strings.Contains(r.stdout, out.Key.ID) || strings.Contains(r.stdout, out.Token) {
		t.Errorf("list: exit %d\n%s", r.code, r.stdout)
	}
	if r := run(t, db, "apikey", "revoke", out.Key.ID); r.code != 0 {
		t.Errorf("revoke: exit %d %s", r.code, r.stderr)
	}
	if r := run(t, db, "apikey", "list"); !strings.Contains(r.stdout, "revoked") {
		t.Errorf("list after revoking:\n%s", r.stdout)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no subject", []string{"apikey", "create", "x", "--scopes", "check"}, exitUsage},
		{"unknown scope", []string{"apikey", "create", "x", "--subject", "agent:support-bot", "--scopes", "all"}, exitUsage},
		{"unknown agent", []string{"apikey", "create", "x", "--subject", "agent:nobot", "--scopes", "check"}, exitUsage},
		{"revoke unknown", []string{"apikey", "revoke", "nosuchkey"}, exitUsage},
	} {
		if r := run(t, db, tc.args...); r.code != tc.code {
			t.Errorf("%s: exit %d, want %d: %s", tc.name, r.code, tc.code, r.stderr)
		}
	}
}

// Every command name is listed once; a second entry would never run.
func TestCommandNamesUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c.name] {
			t.Errorf("command %q is listed twice", c.name)
		}
		seen[c.name] = true
	}
}
