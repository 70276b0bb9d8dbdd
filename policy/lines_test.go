package policy

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/gatehouse/gatehouse"
	"github.com/google/go-cmp/cmp"
)

// Problems of JSON-lines documents are reported at their line: decoding
// problems with their column, problems of the whole document at their
// object's line.
func TestParseLinesProblems(t *testing.T) {
	const perm = `{"kind":"permission","name":"chat.view"}` + "\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"syntax error", perm + `{"kind":"user","email":"a@x.io",}` + "\n",
			[]string{`2:33: invalid character '}' looking for beginning of object key string`}},
		{"cut short", perm + `{"kind":"user"`,
			[]string{`2:15: unexpected end of JSON input`}},
		{"not an object", perm + "[1, 2]\n",
			[]string{`2:1: want an object with a "kind", got a list`}},
		{"no kind", perm + `{"name":"x"}` + "\n",
			[]string{`2:1: no "kind": want one of document, settings, permission, bundle, category, role, plan, tenant, user, agent, tool, action, resource`}},
		{"kind not a string", `{"kind":7}` + "\n",
			[]string{`1:9: kind: want a string, got number 7`}},
		{"unknown kind", perm + `{"kind":"usr","email":"a@x.io"}` + "\n",
			[]string{`2:9: unknown kind "usr" (did you mean "user"?)`}},
		{"duplicate kind", `{"kind":"user","kind":"role","email":"a@x.io"}` + "\n",
			[]string{`1:16: duplicate key "kind" (first at line 1)`}},
		{"duplicate key", perm + `{"kind":"user","email":"a@x.io","email":"b@x.io"}` + "\n",
			[]string{`2:33: users[0].email: duplicate key "email" (first at line 2)`}},
		{"unknown key", perm + `{"kind":"user","email":"a@x.io","rolez":[]}` + "\n",
			[]string{`2:33: users[0].rolez: unknown key "rolez" (did you mean "roles"?)`}},
		{"wrong type", perm + "\n\n" + `{"kind":"user","email":"a@x.io","superuser":"yes"}` + "\r\n",
			[]string{`4:45: users[0].superuser: want true or false, got "yes"`}},
		{"unknown reference at the object's line", perm + `{"kind":"user","email":"a@x.io"}` + "\n" +
			`{"kind":"user","email":"b@x.io","grants":[{"permission":"chat.veiw"}]}` + "\n",
			[]string{`3:0: users[1].grants[0].permission: unknown permission "chat.veiw"`}},
		{"duplicate object", perm + perm,
			[]string{`2:0: permissions[1].name: duplicate permission "chat.view" (first at line 1)`}},
		{"second settings", `{"kind":"settings"}` + "\n" + `{"kind":"settings"}` + "\n",
			[]string{`2:9: settings: a second settings object (first at line 1)`}},
		{"header not first", perm + `{"kind":"document","sections":["users"]}` + "\n",
			[]string{`2:1: the "document" line must be the first`}},
		{"unknown section", `{"kind":"document","sections":["users","rolez"]}` + "\n",
			[]string{`1:40: sections[1]: unknown section "rolez" (did you mean "roles"?)`}},
		{"not UTF-8", perm + "{\"kind\":\"permission\",\"name\":\"a\xffb\"}\n",
			[]string{`2:31: not valid UTF-8`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, problems(t, "p.jsonl", tt.src)); diff != "" {
				t.Errorf("Parse(p.jsonl, %q) problems (-want +got):\n%s", tt.src, diff)
			}
		})
	}
}

// A JSON-lines document holds the sections it has objects of and those its
// header lists; Merge keeps the others. It is recognized by its name or by
// its first key.
func TestParseLinesSections(t *testing.T) {
	src := `{"kind":"document","sections":["tenants"]}` + "\n" +
		`{"kind":"permission","name":"chat.view"}` + "\n" +
		`{"kind":"user","email":"A@X.io","grants":[{"permission":"chat.view"}]}` + "\n"
	for _, file := range []string{"p.jsonl", "p.ndjson", "policy"} {
		d, err := Parse(file, []byte(src))
		if err != nil {
			t.Fatalf("Parse(%s) = %v", file, err)
		}
		for _, kind := range gatehouse.Kinds {
			want := kind == gatehouse.KindTenant || kind == gatehouse.KindPermission || kind == gatehouse.KindUser
			if d.Has(kind) != want {
				t.Errorf("Parse(%s).Has(%s) = %v, want %v", file, kind, d.Has(kind), want)
			}
		}
		if u := d.Policy.User("a@x.io"); u == nil || len(u.Grants) != 1 {
			t.Errorf("Parse(%s) users = %+v, want a@x.io, normalized, with its grant", file, d.Policy.Users)
		}
	}
	stored := &gatehouse.Policy{Roles: []gatehouse.Role{{Name: "kept"}}, Tenants: []gatehouse.Tenant{{ID: "gone"}}}
	d, err := Parse("p.jsonl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	merged := Merge(stored, d)
	if len(merged.Roles) != 1 || len(merged.Tenants) != 0 {
		t.Errorf("Merge kept roles %v and tenants %v, want the stored role and no tenants", merged.Roles, merged.Tenants)
	}
	for _, head := range []string{`{"kind":"user"}`, " \n{ \"kind\" :", `{"users":[]}`, "kind: user", `{"tenants":[{"kind":1}]}`} {
		if got, want := IsLines("p", []byte(head)), strings.Contains(head, `"kind" :`) || strings.HasPrefix(head, `{"kind"`); got != want {
			t.Errorf("IsLines(%q) = %v, want %v", head, got, want)
		}
	}
}

// A JSON-lines document larger than the bound is refused.
func TestParseLinesMax(t *testing.T) {
	src := strings.Repeat(`{"kind":"permission","name":"p"}`+"\n", 10)
	if _, err := ParseLines("p.jsonl", strings.NewReader(src), int64(len(src)-1)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("ParseLines over the bound = %v, want document larger than", err)
	}
	if _, err := ParseLines("p.jsonl", strings.NewReader(src[:33]), int64(len(src))); err != nil {
		t.Errorf("ParseLines within the bound = %v", err)
	}
}

// Parsed documents hold each repeated string once, in every form.
func TestParseInterns(t *testing.T) {
	docs := map[string]string{
		"p.yaml":  "permissions: [{name: chat.view}]\nusers:\n  - {email: a@x.io, grants: [{permission: chat.view}]}\n  - {email: b@x.io, grants: [{permission: chat.view}]}\n",
		"p.json":  `{"permissions": [{"name": "chat.view"}], "users": [{"email": "a@x.io", "grants": [{"permission": "chat.view"}]}, {"email": "b@x.io", "grants": [{"permission": "chat.view"}]}]}`,
		"p.jsonl": `{"kind":"permission","name":"chat.view"}` + "\n" + `{"kind":"user","email":"a@x.io","grants":[{"permission":"chat.view"}]}` + "\n" + `{"kind":"user","email":"b@x.io","grants":[{"permission":"chat.view"}]}` + "\n",
	}
	for file, src := range docs {
		d, err := Parse(file, []byte(src))
		if err != nil {
			t.Fatalf("Parse(%s) = %v", file, err)
		}
		a, b := d.Policy.Users[0].Grants[0].Permission, d.Policy.Users[1].Grants[0].Permission
		if unsafe.StringData(a) != unsafe.StringData(b) || unsafe.StringData(a) != unsafe.StringData(d.Policy.Permissions[0].Name) {
			t.Errorf("Parse(%s): the permission name is held more than once", file)
		}
	}
}
