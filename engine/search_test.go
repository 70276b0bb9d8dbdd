package engine_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

// recordsPolicy has users known by aliases and an application resource
// type, record, whose stored attributes conditions read.
func recordsPolicy() *gatehouse.Policy {
	notArchived := `!("status" in resource.properties) || resource.properties.status != "archived"`
	return &gatehouse.Policy{
		Permissions: []gatehouse.Permission{{Name: "read"}, {Name: "write"}},
		Roles: []gatehouse.Role{
			{Name: "reader", Permissions: []string{"read"}},
			{Name: "writer", Permissions: []string{"write"}},
		},
		Tenants: []gatehouse.Tenant{{ID: "acme"}, {ID: "acme-berlin", Parent: "acme"}, {ID: "globex"}},
		Users: []gatehouse.UserEntry{
			{
				Email: "alice@example.com", Aliases: []string{"alice", "idp|1"}, Tenants: []string{"acme"},
				Roles: []gatehouse.Assignment{{Role: "reader"}, {Role: "writer", Condition: notArchived}},
			},
			{Email: "bob@example.com", Tenants: []string{"globex"}, Roles: []gatehouse.Assignment{{Role: "reader"}}},
		},
		Agents: []gatehouse.Agent{{ID: "bot"}},
		Tools:  []gatehouse.Tool{{Name: "read", Permission: "read"}, {Name: "summarize", Permission: "read"}},
		Resources: []gatehouse.ResourceEntry{
			{Type: "record", ID: "r2", Tenant: "acme", Attributes: map[string]any{"status": "archived"}},
			{Type: "record", ID: "r1", Tenant: "acme", Attributes: map[string]any{"status": "active"}},
			{Type: "record", ID: "g1", Tenant: "globex"},
			{Type: "record", ID: "r3", Tenant: "acme-berlin"},
			{Type: "doc", ID: "d1"},
		},
	}
}

func TestAliasesAndResources(t *testing.T) {
	snap, err := engine.Compile(recordsPolicy(), testVersion)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(id string, props map[string]any) gatehouse.Resource {
		return gatehouse.Resource{Type: "record", ID: id, Properties: props}
	}
	tests := []struct {
		name string
		req  gatehouse.Request
		want gatehouse.Reason
	}{
		{"alias names the user", gatehouse.Request{Subject: gatehouse.User("alice"), Permission: "read"}, granted},
		{"second alias", gatehouse.Request{Subject: gatehouse.User("idp|1"), Permission: "read"}, granted},
		{"aliases are exact", gatehouse.Request{Subject: gatehouse.User("ALICE"), Permission: "read"}, unknownSub},
		{"email still works", gatehouse.Request{Subject: gatehouse.User("Alice@Example.com"), Permission: "read"}, granted},
		{"stored attributes decide", gatehouse.Request{Subject: gatehouse.User("alice"), Permission: "write", Resource: rec("r2", nil)}, condFailed},
		{"request properties win for resources", gatehouse.Request{Subject: gatehouse.User("alice"), Permission: "write",
			Resource: rec("r2", map[string]any{"status": "active"})}, granted},
		{"an undeclared id of a declared type is unknown", gatehouse.Request{Subject: gatehouse.User("alice"), Permission: "write",
			Resource: rec("r9", map[string]any{"status": "active"})}, gatehouse.ReasonUnknownResource},
		{"an undeclared type is the application's", gatehouse.Request{Subject: gatehouse.User("alice"), Permission: "write",
			Resource: gatehouse.Resource{Type: "memo", ID: "m1", Properties: map[string]any{"status": "archived"}}}, condFailed},
		{"resource tenant applies", gatehouse.Request{Subject: gatehouse.User("bob@example.com"), Permission: "read", Resource: rec("r1", nil)}, notVisible},
		{"resource in a visible tenant", gatehouse.Request{Subject: gatehouse.User("bob@example.com"), Permission: "read", Resource: rec("g1", nil)}, granted},
		{"a request naming another tenant is invalid", gatehouse.Request{Subject: gatehouse.User("bob@example.com"), Permission: "read",
			Tenant: "globex", Resource: rec("r1", nil)}, invalid},
		{"a request may name the resource's ancestor", gatehouse.Request{Subject: gatehouse.User("alice"), Permission: "read",
			Tenant: "acme", Resource: rec("r3", nil)}, notVisible},
		{"the resource's own tenant", gatehouse.Request{Subject: gatehouse.User("alice"), Permission: "read",
			Tenant: "acme", Resource: rec("r1", nil)}, granted},
		{"same id, other type has no tenant", gatehouse.Request{Subject: gatehouse.User("bob@example.com"), Permission: "read",
			Resource: gatehouse.Resource{Type: "memo", ID: "r1"}}, granted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := snap.Check(&tc.req); d.Reason != tc.want {
				t.Errorf("Check(%s) = %s, want %s", reqString(&tc.req), d.Reason, tc.want)
			}
		})
	}
}

func TestSearchListings(t *testing.T) {
	snap, err := engine.Compile(recordsPolicy(), testVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		got  []string
		want []string
	}{
		{"users", snap.SubjectIDs(gatehouse.SubjectUser), []string{"alice@example.com", "bob@example.com"}},
		{"agents", snap.SubjectIDs(gatehouse.SubjectAgent), []string{"bot"}},
		{"unknown subject type", snap.SubjectIDs("spaceship"), nil},
		{"records", snap.ResourceIDs("record"), []string{"g1", "r1", "r2", "r3"}},
		{"docs", snap.ResourceIDs("doc"), []string{"d1"}},
		{"tenants", snap.ResourceIDs(gatehouse.ResourceTypeTenant), []string{"acme", "acme-berlin", "globex"}},
		{"tools", snap.ResourceIDs(gatehouse.ResourceTypeTool), []string{"read", "summarize"}},
		{"unknown resource type", snap.ResourceIDs("spaceship"), nil},
		{"actions", snap.ActionNames(), []string{"read", "summarize", "write"}},
		{"user id is the first alias", []string{snap.UserID("ALICE@example.com"), snap.UserID("idp|1")}, []string{"alice", "alice"}},
		{"user id without alias is the email", []string{snap.UserID("bob@example.com")}, []string{"bob@example.com"}},
		{"unknown user id unchanged", []string{snap.UserID("zed")}, []string{"zed"}},
	} {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	for _, tc := range []struct {
		tenant, root string
		want         bool
	}{
		{"acme-berlin", "acme", true}, {"acme", "acme", true}, {"acme", "acme-berlin", false},
		{"globex", "acme", false}, {"nowhere", "acme", false}, {"acme", "nowhere", false},
	} {
		if got := snap.TenantWithin(tc.tenant, tc.root); got != tc.want {
			t.Errorf("TenantWithin(%q, %q) = %v, want %v", tc.tenant, tc.root, got, tc.want)
		}
	}
	var nilSnap *engine.Snapshot
	if nilSnap.SubjectIDs(gatehouse.SubjectUser) != nil || nilSnap.ResourceIDs("record") != nil || nilSnap.ActionNames() != nil || nilSnap.UserID("a") != "a" || nilSnap.TenantWithin("a", "a") {
		t.Error("a nil snapshot lists something")
	}
}
