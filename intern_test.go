package gatehouse_test

import (
	"testing"
	"unsafe"

	"github.com/gatehouse/gatehouse"
)

// A policy loaded from objects holds each repeated id once.
func TestPolicyFromObjectsInterns(t *testing.T) {
	src := &gatehouse.Policy{Users: []gatehouse.UserEntry{
		{Email: "a@x.io", Tenants: []string{"acme"}, Grants: []gatehouse.Grant{{Permission: "chat.view", Tenant: "acme"}}},
		{Email: "b@x.io", Tenants: []string{"acme"}, Grants: []gatehouse.Grant{{Permission: "chat.view"}}},
	}}
	objs, err := src.Objects()
	if err != nil {
		t.Fatal(err)
	}
	p, err := gatehouse.PolicyFromObjects(objs)
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.Users[0], p.Users[1]
	for _, pair := range [][2]string{
		{a.Tenants[0], b.Tenants[0]}, {a.Grants[0].Tenant, b.Tenants[0]}, {a.Grants[0].Permission, b.Grants[0].Permission},
	} {
		if pair[0] != pair[1] || unsafe.StringData(pair[0]) != unsafe.StringData(pair[1]) {
			t.Errorf("%q and %q are two copies, want one", pair[0], pair[1])
		}
	}
}
