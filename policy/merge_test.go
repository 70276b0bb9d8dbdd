package policy_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/policy"
)

// A section a partial document holds replaces the stored one: references
// to what the stored section has, and the document's does not, say so.
func TestExplainReplaced(t *testing.T) {
	stored, err := policy.Parse("stored.yaml", []byte(`
tenants: [{id: acme}, {id: acme-berlin, parent: acme}]
roles: [{name: viewer}]
users: [{email: ann@example.com, tenants: [acme], roles: [{role: viewer}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	current := policy.Merge(nil, stored)

	// Parse sees the unknown parent: only the document's own sections.
	_, err = policy.Parse("one.yaml", []byte("tenants: [{id: acme-berlin, parent: acme}, {id: x, parent: nowhere}]\n"))
	var perr *policy.Error
	if !errors.As(err, &perr) || len(perr.Problems) != 2 {
		t.Fatalf("Parse(one tenant) = %v, want two problems", err)
	}
	policy.ExplainReplaced(current, nil, perr.Problems)
	if msg := perr.Problems[0].Message; !strings.Contains(msg, `unknown tenant "acme"; the document's tenants: section replaces the stored one, which has "acme"`) {
		t.Errorf("problem about acme = %q, want the replaced section explained", msg)
	}
	if msg := perr.Problems[1].Message; msg != `unknown tenant "nowhere"` {
		t.Errorf("problem about a tenant never stored = %q, want it unchanged", msg)
	}

	// After Merge: the stored users name a tenant the document dropped.
	doc, err := policy.Parse("tenants.yaml", []byte("tenants: [{id: acme-berlin}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	problems := policy.Validate(policy.Merge(current, doc))
	policy.ExplainReplaced(current, doc, problems)
	if len(problems) != 1 || !strings.Contains(problems[0].Message, "tenants: section replaces the stored one") {
		t.Errorf("Validate(Merge) problems = %+v, want the user's tenant explained", problems)
	}
	// A problem about a kind whose section the document omits (roles, for
	// tenants.yaml) is not explained by it.
	roles, err := policy.Parse("roles.yaml", []byte("roles: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	problems = policy.Validate(policy.Merge(current, roles))
	policy.ExplainReplaced(current, doc, problems)
	for _, p := range problems {
		if strings.Contains(p.Message, "replaces") {
			t.Errorf("problem %q blames a roles: section tenants.yaml does not hold", p.Message)
		}
	}
}

// MergeTaking merges as Merge does, but holds the document's sections
// themselves and copies only the stored ones it takes.
func TestMergeTaking(t *testing.T) {
	stored, err := policy.Parse("stored.yaml", []byte(`
permissions: [{name: chat.view}]
roles: [{name: viewer, permissions: [chat.view]}]
tenants: [{id: acme}]
users: [{email: ann@example.com, tenants: [acme], roles: [{role: viewer}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	current := policy.Merge(nil, stored)
	doc, err := policy.Parse("users.yaml", []byte("users: [{email: bob@example.com, tenants: [acme], roles: [{role: viewer}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := policy.Merge(current, doc).Objects()
	if err != nil {
		t.Fatal(err)
	}
	took := policy.MergeTaking(current, doc)
	got, err := took.Objects()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MergeTaking = %+v, Merge = %+v", got, want)
	}
	if &took.Users[0] != &doc.Policy.Users[0] {
		t.Error("MergeTaking copied the document's users")
	}
	took.Roles[0].Permissions[0] = "changed"
	if current.Roles[0].Permissions[0] != "chat.view" {
		t.Error("changing the merged roles changed the stored ones: MergeTaking must copy what it takes from current")
	}
}
