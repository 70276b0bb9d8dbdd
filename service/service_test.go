package service_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

const basePolicy = `
settings: {default_tenants: [general]}
permissions: [{name: chat.view}, {name: chat.write}]
roles: [{name: user, permissions: [chat.view, chat.write]}]
tenants:
  - {id: general}
  - {id: org}
  - {id: store-a, parent: org}
  - {id: store-b, parent: org}
users:
  - {email: root@example.com, superuser: true}
  - {email: ann@example.com, roles: [{role: user}]}
`

// fixture is a service over a store in memory; open starts another
// instance over the same store, as a second server process would.
type fixture struct {
	t     *testing.T
	store *memstore.Store
	svc   *service.Service
}

func newFixture(t *testing.T, cfg service.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, store: memstore.New()}
	t.Cleanup(func() { f.store.Close() })
	_, f.svc = f.open(cfg)
	return f
}

func (f *fixture) open(cfg service.Config) (*memstore.Store, *service.Service) {
	f.t.Helper()
	svc, err := service.Open(context.Background(), f.store, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.store, svc
}

func (f *fixture) apply(src string) service.Result {
	f.t.Helper()
	doc, err := policy.Parse("test.yaml", []byte(src))
	if err != nil {
		f.t.Fatalf("parse: %v", err)
	}
	res, err := f.svc.Apply(context.Background(), "test", doc, false)
	if err != nil {
		f.t.Fatalf("apply: %v", err)
	}
	return res
}

func (f *fixture) version() int64 {
	f.t.Helper()
	v, err := f.store.PolicyVersion(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func TestBootstrapSuperuser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{BootstrapSuperuser: " Admin@Example.com "})
	ctx := context.Background()
	v, err := f.svc.User(ctx, "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Superuser || !v.Known {
		t.Fatalf("bootstrapped user = %+v, want a known superuser", v)
	}
	events, err := f.svc.ListAudit(ctx, gatehouse.AuditFilter{Action: "user.bootstrap"})
	if err != nil || len(events) != 1 || events[0].Actor != "system" {
		t.Fatalf("bootstrap audit = %+v, %v; want one event by system", events, err)
	}
	// Reopening a store that has a superuser bootstraps nobody else.
	_, svc2 := f.open(service.Config{BootstrapSuperuser: "other@example.com"})
	if v, _ := svc2.User(ctx, "other@example.com"); v.Superuser {
		t.Error("second bootstrap promoted other@example.com although a superuser exists")
	}
}

func TestBootstrapRejectsBadEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	if _, err := service.Open(ctx, store, service.Config{BootstrapSuperuser: "  "}); err != nil {
		t.Fatalf("blank bootstrap email should mean none, got %v", err)
	}
	if _, err := service.Open(ctx, store, service.Config{BootstrapSuperuser: "no-at-sign"}); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Fatalf("Open(bootstrap no-at-sign) = %v, want ErrInvalid", err)
	}
}

func TestLastSuperuserGuard(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(basePolicy)
	ctx := context.Background()
	before := f.version()
	if _, err := f.svc.Demote(ctx, "test", "ROOT@example.com"); !errors.Is(err, gatehouse.ErrLastSuperuser) {
		t.Fatalf("Demote(last superuser) = %v, want ErrLastSuperuser", err)
	}
	if f.version() != before {
		t.Fatal("refused demote changed the store")
	}
	// An apply that drops every superuser is refused the same way.
	doc, err := policy.Parse("x.yaml", []byte("users: [{email: ann@example.com}]"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Apply(ctx, "test", doc, false); !errors.Is(err, gatehouse.ErrLastSuperuser) {
		t.Fatalf("Apply(no superusers) = %v, want ErrLastSuperuser", err)
	}
	if _, err := f.svc.Promote(ctx, "test", "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Demote(ctx, "test", "root@example.com"); err != nil {
		t.Fatalf("Demote with another superuser left = %v", err)
	}
	if got := f.svc.Snapshot().IsSuperuser("root@example.com"); got {
		t.Error("root is still a superuser after demote")
	}
	// Demoting a non-superuser and promoting a superuser change nothing.
	v := f.version()
	if res, err := f.svc.Demote(ctx, "test", "root@example.com"); err != nil || len(res.Changes) != 0 {
		t.Fatalf("Demote(non-superuser) = %+v, %v; want no change", res, err)
	}
	if res, err := f.svc.Promote(ctx, "test", "ann@example.com"); err != nil || len(res.Changes) != 0 {
		t.Fatalf("Promote(superuser) = %+v, %v; want no change", res, err)
	}
	if f.version() != v {
		t.Error("no-op promote/demote bumped the version")
	}
}

func TestSetUserTenants(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(basePolicy)
	ctx := context.Background()
	tests := []struct {
		name    string
		email   string
		tenants []string
		wantErr error
		want    []string
	}{
		{"exact set", "Ann@Example.com", []string{"store-b", "store-a", "store-a"}, nil, []string{"store-a", "store-b"}},
		{"new user entry", "new@example.com", []string{"org"}, nil, []string{"org"}},
		{"none", "ann@example.com", nil, nil, []string{}},
		{"unknown tenant", "ann@example.com", []string{"org", "atlantis"}, gatehouse.ErrNotFound, nil},
		{"empty email", "  ", []string{"org"}, gatehouse.ErrInvalid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.version()
			_, err := f.svc.SetUserTenants(ctx, "admin", tt.email, tt.tenants)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("SetUserTenants(%q, %v) = %v, want %v", tt.email, tt.tenants, err, tt.wantErr)
				}
				if tt.wantErr == gatehouse.ErrNotFound && !strings.Contains(err.Error(), "atlantis") {
					t.Errorf("error %q does not name the unknown tenant", err)
				}
				if f.version() != before {
					t.Error("failed SetUserTenants changed the store")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v, err := f.svc.User(ctx, tt.email)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(v.VisibleTenants, tt.want) || v.DefaultTenants {
				t.Errorf("visible = %v (default %v), want %v", v.VisibleTenants, v.DefaultTenants, tt.want)
			}
		})
	}
	if _, err := f.svc.ResetUserTenants(ctx, "admin", "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.svc.User(ctx, "ann@example.com"); !v.DefaultTenants || !slices.Equal(v.VisibleTenants, []string{"general"}) {
		t.Errorf("after reset: %+v, want default tenants [general]", v)
	}
	// The audit trail records each change with actor, before and after.
	events, err := f.svc.ListAudit(ctx, gatehouse.AuditFilter{Action: "user.set_tenants", TargetPrefix: "user/ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("set_tenants events for ann = %d, want 3", len(events))
	}
	for _, e := range events {
		if e.Actor != "admin" || e.Before == nil || e.After == nil {
			t.Errorf("event %d = actor %q before %s after %s; want admin with before and after", e.Seq, e.Actor, e.Before, e.After)
		}
	}
}

func TestTenantCreateMove(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(basePolicy)
	ctx := context.Background()
	if _, err := f.svc.CreateTenant(ctx, "admin", gatehouse.Tenant{ID: "store-c", Parent: "org"}); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		run  func() error
		want error
	}{
		{"duplicate", func() error {
			_, err := f.svc.CreateTenant(ctx, "admin", gatehouse.Tenant{ID: "org"})
			return err
		}, gatehouse.ErrInvalid},
		{"unknown parent", func() error {
			_, err := f.svc.CreateTenant(ctx, "admin", gatehouse.Tenant{ID: "x", Parent: "nope"})
			return err
		}, gatehouse.ErrNotFound},
		{"empty id", func() error {
			_, err := f.svc.CreateTenant(ctx, "admin", gatehouse.Tenant{})
			return err
		}, gatehouse.ErrInvalid},
		{"cycle", func() error {
			_, err := f.svc.MoveTenant(ctx, "admin", "org", "store-a")
			return err
		}, gatehouse.ErrInvalid},
		{"self parent", func() error {
			_, err := f.svc.MoveTenant(ctx, "admin", "org", "org")
			return err
		}, gatehouse.ErrInvalid},
		{"move unknown", func() error {
			_, err := f.svc.MoveTenant(ctx, "admin", "nope", "org")
			return err
		}, gatehouse.ErrNotFound},
	}
	for _, tt := range bad {
		before := f.version()
		if err := tt.run(); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if f.version() != before {
			t.Errorf("%s: failed operation changed the store", tt.name)
		}
	}
	if _, err := f.svc.MoveTenant(ctx, "admin", "store-c", ""); err != nil {
		t.Fatal(err)
	}
	tenants, err := f.svc.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(tenants, func(t gatehouse.Tenant) bool { return t.ID == "store-c" })
	if i < 0 || tenants[i].Parent != "" {
		t.Fatalf("store-c after move to root = %+v", tenants)
	}
}

// A document that fails validation or compilation changes nothing.
func TestApplyRejectsBadPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(basePolicy)
	before := f.version()
	ctx := context.Background()
	doc, err := policy.Parse("x.yaml", []byte(`users: [{email: ann@example.com, grants: [{permission: chat.view, condition: "context.x +"}]}, {email: root@example.com, superuser: true}]`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Apply(ctx, "test", doc, false); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Fatalf("Apply(bad CEL) = %v, want ErrInvalid", err)
	}
	if f.version() != before {
		t.Fatal("rejected apply changed the store")
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	doc, err := policy.Parse("x.yaml", []byte(basePolicy))
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Apply(context.Background(), "test", doc, true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || len(res.Changes) == 0 || f.version() != 0 {
		t.Fatalf("dry run = %+v at store version %d; want changes reported and version 0", res, f.version())
	}
}

// Two services on one database (two CLI processes, say) promote different
// users at once: both land, and the audit chain stays one chain.
func TestConcurrentWritersOnOneDatabase(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(basePolicy)
	_, other := f.open(service.Config{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 10 {
		for j, svc := range []*service.Service{f.svc, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				email := "u" + string(rune('a'+i)) + string(rune('0'+j)) + "@example.com"
				if _, err := svc.SetUserTenants(ctx, "admin", email, []string{"org"}); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	users, err := f.svc.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 22 {
		t.Errorf("users = %d, want 22", len(users))
	}
	if _, err := f.svc.VerifyAudit(ctx); err != nil {
		t.Errorf("audit chain: %v", err)
	}
	if _, err := other.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := other.Snapshot().Version(), f.version(); got != want {
		t.Errorf("reloaded snapshot version %d, want %d", got, want)
	}
}

// With the store gone, decisions keep coming from the last snapshot and
// writes fail without a partial change.
func TestStoreDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(basePolicy)
	ctx := context.Background()
	f.store.Close()
	if _, err := f.svc.Promote(ctx, "test", "ann@example.com"); err == nil {
		t.Fatal("Promote with the store closed succeeded")
	}
	d := decide(t, f.svc, &gatehouse.Request{Subject: gatehouse.User("ann@example.com"), Permission: "chat.view"})
	if !d.Allowed {
		t.Errorf("Check with the store closed = %+v, want allowed from the last snapshot", d)
	}
}

// Two services over one store bind roles to the same user at once: each
// starts from the policy it keeps, which the other's commits make stale;
// the store's version check makes every change conflict and be recomputed
// on what the other committed, so none is lost and none is merged wrongly.
func TestConcurrentWritersOnOneUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(basePolicy)
	_, other := f.open(service.Config{})
	ctx := context.Background()
	ann := gatehouse.SubjectRef{Type: gatehouse.SubjectUser, ID: "ann@example.com"}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	want := []gatehouse.Assignment{{Role: "user"}}
	for i := range 10 {
		for j, svc := range []*service.Service{f.svc, other} {
			tenant := []string{"org", "store-a", "store-b", "general"}[(i+j)%4]
			a := gatehouse.Assignment{Role: "user", Tenant: tenant, Condition: fmt.Sprintf("%d == %d", i, j)}
			want = append(want, a)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := svc.Bind(ctx, "admin", ann, a); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, svc := range []*service.Service{f.svc, other} {
		if _, err := svc.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		u, err := svc.User(ctx, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !sameAssignments(u.Roles, want) {
			t.Errorf("ann's roles = %v, want the 21 bound", u.Roles)
		}
	}
	// Each next change starts from what the other committed: the second
	// binding of the same role is no change.
	for _, svc := range []*service.Service{f.svc, other} {
		if _, err := svc.Bind(ctx, "admin", ann, gatehouse.Assignment{Role: "user", Tenant: "org"}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := f.version(), int64(22); got != want {
		t.Errorf("version %d, want %d (one apply, 20 bindings, one more binding)", got, want)
	}
	if _, err := f.svc.VerifyAudit(ctx); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}

func sameAssignments(a, b []gatehouse.Assignment) bool {
	key := func(x gatehouse.Assignment) string { return x.Role + "\x00" + x.Tenant + "\x00" + x.Condition }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i] = key(a[i])
	}
	for i := range b {
		kb[i] = key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// GrantUserTenants adds and RevokeUserTenants removes, starting from the
// default tenants for a user without a list of its own; SetUserTenants is
// the exact set.
func TestGrantRevokeUserTenants(t *testing.T) {
	f := newFixture(t, service.Config{})
	f.apply(basePolicy)
	ctx := context.Background()
	grant := func(email string, ts ...string) (service.Result, error) {
		return f.svc.GrantUserTenants(ctx, "admin", email, ts)
	}
	revoke := func(email string, ts ...string) (service.Result, error) {
		return f.svc.RevokeUserTenants(ctx, "admin", email, ts)
	}
	steps := []struct {
		name    string
		run     func() (service.Result, error)
		wantErr error
		changed bool
		want    []string
	}{
		{"grant keeps the defaults", func() (service.Result, error) { return grant("ann@example.com", "store-a") }, nil, true, []string{"general", "store-a"}},
		{"grant adds", func() (service.Result, error) { return grant("ann@example.com", "store-b", "org") }, nil, true, []string{"general", "org", "store-a", "store-b"}},
		{"grant again changes nothing", func() (service.Result, error) { return grant("ann@example.com", "org") }, nil, false, []string{"general", "org", "store-a", "store-b"}},
		{"revoke removes", func() (service.Result, error) { return revoke("ann@example.com", "general", "org") }, nil, true, []string{"store-a", "store-b"}},
		{"revoke unseen changes nothing", func() (service.Result, error) { return revoke("ann@example.com", "org") }, nil, false, []string{"store-a", "store-b"}},
		{"revoke all", func() (service.Result, error) { return revoke("ann@example.com", "store-a", "store-b") }, nil, true, []string{}},
		{"unknown tenant", func() (service.Result, error) { return grant("ann@example.com", "atlantis") }, gatehouse.ErrNotFound, false, []string{}},
		{"no tenant", func() (service.Result, error) { return grant("ann@example.com") }, gatehouse.ErrInvalid, false, []string{}},
	}
	for _, s := range steps {
		before := f.version()
		_, err := s.run()
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
		if changed := f.version() != before; changed != s.changed {
			t.Errorf("%s: changed the policy = %v, want %v", s.name, changed, s.changed)
		}
		v, err := f.svc.User(ctx, "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.VisibleTenants, s.want) || v.DefaultTenants {
			t.Errorf("%s: visible = %v (default %v), want %v", s.name, v.VisibleTenants, v.DefaultTenants, s.want)
		}
	}
	// A user the policy does not list gets an entry only when a grant
	// changes what it sees.
	if _, err := grant("new@example.com", "general"); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.svc.User(ctx, "new@example.com"); v.Known {
		t.Errorf("granting a default tenant to a new user created its entry: %+v", v)
	}
}
