package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/golden"
)

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "golden", name), got)
}

func mustParse(t *testing.T, name, src string) *Document {
	t.Helper()
	d, err := Parse(name, []byte(src))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return d
}

// Every mistake in testdata/invalid/many.yaml is reported at once, at its line.
func TestParseReportsEveryProblem(t *testing.T) {
	path := filepath.Join("testdata", "invalid", "many.yaml")
	_, err := ParseFile(path)
	var perr *Error
	if !errors.As(err, &perr) || !errors.Is(err, gatehouse.ErrInvalid) {
		t.Fatalf("ParseFile(%s) = %v, want *Error wrapping ErrInvalid", path, err)
	}
	var b strings.Builder
	for _, p := range perr.Problems {
		if p.Line == 0 {
			t.Errorf("problem without a line: %s", p)
		}
		b.WriteString(p.String() + "\n")
	}
	checkGolden(t, "many.problems", b.String())
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // fragment of the first problem
		line      int
	}{
		{"syntax", "roles: [a, b\n", "did not find expected", 1},
		{"tabs", "roles:\n\t- a\n", "cannot start any token", 2},
		{"duplicate key", "roles: []\nroles: []\n", "duplicate key", 2},
		{"wrong type", "permissions: {name: x}\n", "want a list", 1},
		{"wrong scalar", "users: [{email: a@b.c, superuser: maybe}]\n", "want true or false", 1},
		{"unknown key typo", "permisions: []\n", `did you mean "permissions"`, 1},
		{"json unknown key", "{\n  \"roles\": [],\n  \"rolez\": []\n}\n", "unknown key", 3},
		{"json trailing comma", "{\n\"roles\": [],}\n", "invalid character", 2},
		{"duplicate field", "users: [{email: a@b.c, email: b@c.d}]\n", "duplicate key", 1},
		{"not utf8", "roles: [\xff]\n", "UTF-8", 0},
		{"scalar document", "hello\n", "want a mapping", 1},
		{"deep nesting", "users: [{email: a@b.c, attributes: {a: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}}]\n", "too deeply nested", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.src))
			var perr *Error
			if !errors.As(err, &perr) || len(perr.Problems) == 0 {
				t.Fatalf("Parse(%q) = %v, want problems", tt.src, err)
			}
			p := perr.Problems[0]
			if !strings.Contains(p.Message, tt.want) || (tt.line != 0 && p.Line != tt.line) || p.File != "p.yaml" {
				t.Errorf("Parse(%q) first problem = %s, want line %d mentioning %q", tt.src, p, tt.line, tt.want)
			}
		})
	}
}

func TestParseNormalizes(t *testing.T) {
	d := mustParse(t, "p.yaml", `
tenants: [{id: " org "}]
users:
  - {email: " Ann@Example.COM ", tenants: [" org "]}
  - {email: bob@example.com, tenants: []}
  - {email: cy@example.com}
`)
	u := d.Policy.Users
	if u[0].Email != "ann@example.com" || u[0].Tenants[0] != "org" || d.Policy.Tenants[0].ID != "org" {
		t.Errorf("not normalized: %+v %+v", u[0], d.Policy.Tenants[0])
	}
	if u[1].Tenants == nil || len(u[1].Tenants) != 0 {
		t.Errorf("tenants: [] decoded as %#v, want empty non-nil", u[1].Tenants)
	}
	if u[2].Tenants != nil {
		t.Errorf("absent tenants decoded as %#v, want nil (default tenants)", u[2].Tenants)
	}
}

// A partial document may refer to objects of sections it omits; they are
// checked after Merge against the stored policy.
func TestPartialDocumentAndMerge(t *testing.T) {
	stored := mustParse(t, "stored.yaml", `
permissions: [{name: p1}, {name: p2}]
roles: [{name: r, permissions: [p1]}]
tenants: [{id: t}]
users: [{email: a@x.io, roles: [{role: r}]}]
`).Policy
	partial := mustParse(t, "users.yaml", `users: [{email: b@x.io, roles: [{role: r, tenant: t}]}]`)
	merged := Merge(stored, partial)
	if problems := Validate(merged); len(problems) > 0 {
		t.Fatalf("merged policy invalid: %v", problems)
	}
	if len(merged.Users) != 1 || merged.Users[0].Email != "b@x.io" || len(merged.Roles) != 1 || len(merged.Permissions) != 2 {
		t.Errorf("Merge kept the wrong sections: %+v", merged)
	}
	// An empty but present section deletes.
	emptied := Merge(stored, mustParse(t, "e.yaml", "users: []\n"))
	if len(emptied.Users) != 0 || len(emptied.Roles) != 1 {
		t.Errorf("users: [] should delete users only, got %+v", emptied)
	}
	// A reference that the stored policy cannot satisfy is located in the file.
	bad := mustParse(t, "bad.yaml", "\nusers: [{email: c@x.io, roles: [{role: nope}]}]\n")
	err := bad.Locate(Validate(Merge(stored, bad)))
	if len(err.Problems) != 1 || err.Problems[0].Line != 2 || err.Problems[0].File != "bad.yaml" {
		t.Errorf("Locate = %v, want one problem at bad.yaml:2", err)
	}
}

// Parse → Marshal → Parse gives the same policy, in YAML and JSON.
func TestMarshalRoundTrip(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "examples", "ai-assistant", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, "policy.yaml", string(src)).Policy
	odd := mustParse(t, "odd.yaml", `
users:
  - email: odd@example.com
    tenants: []
    attributes: {level: 3, ratio: 0.5, active: true, tags: ["yes", "no", "null", "1e3"], nested: {k: ~}, "key with: colon": "x # y"}
`).Policy
	p.Users = append(p.Users, odd.Users...)
	for _, format := range []string{"yaml", "json"} {
		out, err := Marshal(p, format)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("export."+format, out)
		if err != nil {
			t.Fatalf("%s export does not parse: %v\n%s", format, err, out)
		}
		changes, err := Diff(p, back.Policy)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != 0 {
			t.Errorf("%s round trip changed the policy:\n%s", format, FormatDiff(changes))
		}
		again, err := Marshal(back.Policy, format)
		if err != nil || string(again) != string(out) {
			t.Errorf("%s export is not stable", format)
		}
		if back.Policy.User("odd@example.com").Tenants == nil {
			t.Errorf("%s round trip turned tenants: [] into default tenants", format)
		}
	}
	if _, err := Marshal(p, "toml"); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Marshal(toml) = %v, want ErrInvalid", err)
	}
}

func TestDiffAndFormat(t *testing.T) {
	before := mustParse(t, "a.yaml", `
permissions: [{name: p1}, {name: p2}]
roles: [{name: r, permissions: [p1]}, {name: old}]
plans: [{name: free}, {name: pro}]
users: [{email: a@x.io, tenants: []}]
`).Policy
	after := mustParse(t, "b.yaml", `
permissions: [{name: p1}, {name: p2}, {name: p3, title: Three}]
roles: [{name: r, permissions: [p1, p3]}]
plans: [{name: pro}, {name: free}]
users: [{email: a@x.io}]
`).Policy
	changes, err := Diff(before, after)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "diff.txt", FormatDiff(changes))
	if again, _ := Diff(after, after); len(again) != 0 {
		t.Errorf("Diff(p, p) = %v, want none", again)
	}
	if FormatDiff(nil) != "no changes\n" {
		t.Errorf("FormatDiff(nil) = %q", FormatDiff(nil))
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"../examples/ai-assistant/policy.yaml", "testdata/invalid/many.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"users":[{"email":"a@b.c","tenants":[]}]}`))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte(`{"kind":"permission","name":"p"}` + "\n" + `{"kind":"user","email":"a@b.c","grants":[{"permission":"p"}]}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("fuzz.yaml", data)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) || len(perr.Problems) == 0 || !errors.Is(err, gatehouse.ErrInvalid) {
				t.Fatalf("Parse error %#v is not an *Error with problems wrapping ErrInvalid", err)
			}
			return
		}
		// A complete policy must export and parse back unchanged. A partial
		// one is valid only against the sections it holds, and its export
		// holds the same sections, so it decodes back unchanged.
		complete := len(Validate(d.Policy)) == 0
		for _, format := range []string{"yaml", "json"} {
			out, err := Marshal(d.Policy, format)
			if err != nil {
				t.Fatalf("Marshal(parsed policy, %s) = %v", format, err)
			}
			back := &gatehouse.Policy{}
			if complete {
				doc, err := Parse("again."+format, out)
				if err != nil {
					t.Fatalf("Parse(Marshal(valid policy, %s)) = %v\nexport:\n%s", format, err, out)
				}
				back = doc.Policy
			} else if _, problems := decodeDocument("again."+format, out, back); len(problems) > 0 {
				t.Fatalf("export (%s) does not decode: %v\nexport:\n%s", format, problems, out)
			}
			if changes, err := Diff(d.Policy, back); err != nil || len(changes) != 0 {
				t.Fatalf("%s round trip changed the policy (%v):\n%s\nexport:\n%s", format, err, FormatDiff(changes), out)
			}
		}
	})
}
