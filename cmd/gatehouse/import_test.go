package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// user import reads CSV or JSON lines, reports every bad record at its
// line with a suggestion and changes nothing, and otherwise applies all
// users in one change audited per user.
func TestUserImport(t *testing.T) {
	db := newDB(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bad := write("bad.csv", "email,roles,tenants\n"+
		"new1@x.io,Agent Supervisor;Store Support,acme;general\n"+
		"carl@acme.example,Customer Servce Agent,acme\n"+
		"not-an-email,,\n"+
		"new2@x.io,,acmee\n"+
		"NEW1@x.io,,\n")
	r := run(t, db, "user", "import", bad)
	for _, want := range []string{
		bad + `:3: unknown role "Customer Servce Agent" (did you mean "Customer Service Agent"?)`,
		bad + `:4: email "not-an-email"`,
		bad + `:5: unknown tenant "acmee" (did you mean "acme"?)`,
		bad + `:6: user "new1@x.io" listed twice (first at line 2)`,
	} {
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("import of a bad file: exit %d, stderr %q, want exit 2 and %q", r.code, r.stderr, want)
		}
	}
	if r := run(t, db, "user", "show", "new1@x.io"); strings.Contains(r.stdout, "Agent Supervisor") {
		t.Errorf("a refused import changed new1: %s", r.stdout)
	}

	good := write("good.csv", "email,tenants,roles\nnew1@x.io,acme;general,Agent Supervisor;Store Support\ncarl@acme.example,acme,Customer Service Agent\n")
	if r := run(t, db, "user", "import", "--dry-run", good); r.code != 0 || !strings.Contains(r.stdout, "dry run: 2 change(s)") {
		t.Fatalf("dry run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, db, "user", "import", good); r.code != 0 || !strings.Contains(r.stdout, "applied 2 change(s)") {
		t.Fatalf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, db, "user", "show", "new1@x.io"); !strings.Contains(r.stdout, "Store Support") || !strings.Contains(r.stdout, "general") {
		t.Errorf("new1 after import: %s", r.stdout)
	}
	if r := run(t, db, "audit", "list", "--action", "user.import"); strings.Count(r.stdout, "user.import") != 2 {
		t.Errorf("audit of the import: %s, want one user.import event per user", r.stdout)
	}

	lines := `{"email": "j@x.io", "roles": ["Store Support"]}` + "\n\n" + `{"email": "k@x.io", "tenants": ["general"], "plan": "pro"}` + "\n"
	if r := runIn(t, db, lines, "user", "import", "-"); r.code != 2 || !strings.Contains(r.stderr, `stdin:3: json: unknown field "plan"`) {
		t.Errorf("JSON lines with an unknown field: exit %d, stderr %q", r.code, r.stderr)
	}
	lines = strings.Replace(lines, `, "plan": "pro"`, "", 1)
	if r := runIn(t, db, lines, "user", "import", "-"); r.code != 0 || !strings.Contains(r.stdout, "applied 2 change(s)") {
		t.Errorf("JSON lines: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, db, "audit", "verify"); r.code != 0 {
		t.Errorf("audit verify after imports: exit %d %s", r.code, r.stderr)
	}
	if r := run(t, db, "user", "import", write("header.csv", "mail,roles\nx@y.io,\n")); r.code != 2 || !strings.Contains(r.stderr, `unknown column "mail" (did you mean "email"?)`) {
		t.Errorf("a bad header: exit %d, stderr %q", r.code, r.stderr)
	}
}
