package service_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

const tenantAdminPolicy = `
settings: {default_tenants: [general], admin_permission: manage}
permissions: [{name: chat.view}, {name: chat.write}, {name: manage}]
roles:
  - {name: user, permissions: [chat.view, chat.write]}
  - {name: admin, permissions: [manage]}
tenants:
  - {id: general}
  - {id: org}
  - {id: store-a, parent: org}
  - {id: store-b, parent: org}
users:
  - {email: root@example.com, superuser: true}
  - {email: ann@example.com, roles: [{role: user}]}
  - {email: tad@example.com, tenants: [org, store-a, store-b], roles: [{role: admin, tenant: org}]}
`

// A tenant admin's change is authorized inside the update that commits it:
// the rule of service/authorize.go, table-driven, and decided on the
// stored policy even when this instance's snapshot is behind.
func TestTenantAdminChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(tenantAdminPolicy)
	tad := gatehouse.NewContext(context.Background(), gatehouse.Caller{Subject: gatehouse.User("tad@example.com"), Credential: gatehouse.CredentialToken})
	ann := gatehouse.NewContext(context.Background(), gatehouse.Caller{Subject: gatehouse.User("ann@example.com"), Credential: gatehouse.CredentialToken})
	put := func(ctx context.Context, kind gatehouse.Kind, id, body string) error {
		_, _, err := f.svc.PutObject(ctx, "test", kind, id, []byte(body))
		return err
	}
	tests := []struct {
		name  string
		ctx   context.Context
		do    func(ctx context.Context) error
		allow bool
	}{
		{"create a store under its organization", tad, func(ctx context.Context) error {
			return put(ctx, gatehouse.KindTenant, "store-c", `{"id": "store-c", "parent": "org"}`)
		}, true},
		{"create a tenant elsewhere", tad, func(ctx context.Context) error {
			return put(ctx, gatehouse.KindTenant, "x", `{"id": "x", "parent": "general"}`)
		}, false},
		{"set a plan", tad, func(ctx context.Context) error {
			return put(ctx, gatehouse.KindTenant, "store-a", `{"id": "store-a", "parent": "org", "plan": "pro"}`)
		}, false},
		{"move out of its tenants", tad, func(ctx context.Context) error {
			return put(ctx, gatehouse.KindTenant, "store-a", `{"id": "store-a", "parent": "general"}`)
		}, false},
		{"bind in its tenant", tad, func(ctx context.Context) error {
			_, err := f.svc.Bind(ctx, "test", gatehouse.User("ann@example.com"), gatehouse.Assignment{Role: "user", Tenant: "store-a"})
			return err
		}, true},
		{"bind globally", tad, func(ctx context.Context) error {
			_, err := f.svc.Bind(ctx, "test", gatehouse.User("ann@example.com"), gatehouse.Assignment{Role: "admin"})
			return err
		}, false},
		{"make someone a superuser", tad, func(ctx context.Context) error {
			_, err := f.svc.Promote(ctx, "test", "ann@example.com")
			return err
		}, false},
		{"change a role", tad, func(ctx context.Context) error {
			return put(ctx, gatehouse.KindRole, "user", `{"name": "user", "permissions": ["chat.view", "manage"]}`)
		}, false},
		{"delete the top of its reach", tad, func(ctx context.Context) error {
			_, err := f.svc.DeleteObject(ctx, "test", gatehouse.KindTenant, "org")
			return err
		}, false},
		{"a user administers nothing", ann, func(ctx context.Context) error {
			return put(ctx, gatehouse.KindTenant, "store-d", `{"id": "store-d", "parent": "org"}`)
		}, false},
		{"the operator (no caller)", context.Background(), func(ctx context.Context) error {
			return put(ctx, gatehouse.KindTenant, "y", `{"id": "y", "parent": "general"}`)
		}, true},
	}
	for _, tt := range tests {
		err := tt.do(tt.ctx)
		if tt.allow && err != nil {
			t.Errorf("%s: %v, want allowed", tt.name, err)
		}
		if !tt.allow && !errors.Is(err, gatehouse.ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", tt.name, err)
		}
	}

	// A second instance revokes tad's admin role; this instance has not
	// reloaded, yet tad's next change is decided on the stored policy.
	_, other := f.open(service.Config{})
	if _, err := other.Unbind(context.Background(), "test", gatehouse.User("tad@example.com"), "admin", "org"); err != nil {
		t.Fatal(err)
	}
	if err := put(tad, gatehouse.KindTenant, "store-e", `{"id": "store-e", "parent": "org"}`); !errors.Is(err, gatehouse.ErrForbidden) {
		t.Errorf("change by a revoked tenant admin through a stale instance = %v, want ErrForbidden", err)
	}
}
