package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/engine/enginetest"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/policy"
)

// referencePlan is the write path without the kept policy: load every
// stored object, clone through JSON, diff and validate everything.
func referencePlan(ctx context.Context, s *Service, fn func(*gatehouse.Policy) error) ([]gatehouse.Change, error) {
	before, _, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	after, err := before.Clone()
	if err != nil {
		return nil, err
	}
	if err := fn(after); err != nil {
		return nil, err
	}
	policy.Normalize(after)
	changes, err := policy.Diff(before, after)
	if err != nil {
		return nil, err
	}
	if problems := policy.Validate(after); len(problems) > 0 {
		return nil, &policy.Error{Problems: problems}
	}
	if len(before.Superusers()) > 0 && len(after.Superusers()) == 0 {
		return nil, gatehouse.ErrLastSuperuser
	}
	return changes, nil
}

// randomChange returns a change of one or a few objects of p, drawn from
// r: the single-object operations of the admin API, some of them invalid
// (unknown references, colliding aliases), and removals and reorders that
// take the diff's slow path.
func randomChange(r *rand.Rand, p *gatehouse.Policy) (string, func(*gatehouse.Policy) error) {
	// Objects are picked by id, as the admin API does: the kept policy
	// may hold them in another order than a fresh load.
	email := p.Users[r.IntN(len(p.Users))].Email
	if r.IntN(8) == 0 {
		email = fmt.Sprintf("new%03d@example.com", r.IntN(1000))
	}
	user := func(q *gatehouse.Policy) *gatehouse.UserEntry { return ensureUser(q, email) }
	tenant := func() string {
		if r.IntN(10) == 0 {
			return "no-such-tenant"
		}
		return p.Tenants[r.IntN(len(p.Tenants))].ID
	}
	role := func() string {
		if r.IntN(10) == 0 {
			return "no such role"
		}
		return p.Roles[r.IntN(len(p.Roles))].Name
	}
	switch r.IntN(10) {
	case 0:
		ts := []string{tenant(), tenant()}
		return "set tenants", func(q *gatehouse.Policy) error { user(q).Tenants = ts; return nil }
	case 1:
		return "reset tenants", func(q *gatehouse.Policy) error { user(q).Tenants = nil; return nil }
	case 2:
		a := gatehouse.Assignment{Role: role(), Tenant: []string{"", tenant()}[r.IntN(2)]}
		return "bind", func(q *gatehouse.Policy) error { u := user(q); u.Roles = append(u.Roles, a); return nil }
	case 3:
		return "unbind", func(q *gatehouse.Policy) error {
			u := user(q)
			if len(u.Roles) > 0 {
				u.Roles = slices.Delete(u.Roles, 0, 1)
			}
			return nil
		}
	case 4:
		g := gatehouse.Grant{Permission: p.Permissions[r.IntN(len(p.Permissions))].Name, Tenant: tenant()}
		return "grant", func(q *gatehouse.Policy) error { u := user(q); u.Grants = append(u.Grants, g); return nil }
	case 5:
		other := p.Users[r.IntN(len(p.Users))].Email
		alias := []string{fmt.Sprintf("alias-%d", r.IntN(20)), other}[r.IntN(2)]
		return "alias", func(q *gatehouse.Policy) error { u := user(q); u.Aliases = append(u.Aliases, alias); return nil }
	case 6:
		su := r.IntN(2) == 0
		return "superuser", func(q *gatehouse.Policy) error { user(q).Superuser = su; return nil }
	case 7:
		return "remove user", func(q *gatehouse.Policy) error {
			q.Users = slices.DeleteFunc(q.Users, func(u gatehouse.UserEntry) bool { return u.Email == email })
			return nil
		}
	case 8:
		id, parent := fmt.Sprintf("t-%d", r.IntN(50)), tenant()
		return "tenant", func(q *gatehouse.Policy) error {
			if t := q.Tenant(id); t != nil {
				t.Parent = parent
				return nil
			}
			q.Tenants = append(q.Tenants, gatehouse.Tenant{ID: id, Parent: parent})
			return nil
		}
	}
	i, j := r.IntN(len(p.Users)), r.IntN(len(p.Users))
	return "swap users", func(q *gatehouse.Policy) error { q.Users[i], q.Users[j] = q.Users[j], q.Users[i]; return nil }
}

// The write path that starts from the kept policy makes the same changes,
// refuses the same ones, keeps the policy the store holds and decides as a
// snapshot compiled from a fresh load, over random change sequences.
func TestKeptPolicyEqualsFreshLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	s, err := Open(ctx, store, Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Tenants, cfg.Roles, cfg.Bundles, cfg.Permissions = 60, 40, 8, 10, 30
	gen := enginetest.Generate(cfg)
	if _, err := s.Update(ctx, "test", "policy.apply", func(p *gatehouse.Policy) error { *p = *gen; return nil }); err != nil {
		t.Fatal(err)
	}
	var committed, refused int
	for step := range 120 {
		stored, _, err := s.load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		name, fn := randomChange(rand.New(rand.NewPCG(uint64(step), 7)), stored)
		// fn draws from its own generator: each path gets the same draws.
		replay := func() func(*gatehouse.Policy) error {
			_, f := randomChange(rand.New(rand.NewPCG(uint64(step), 7)), stored)
			return f
		}
		want, wantErr := referencePlan(ctx, s, replay())
		s.mu.Lock()
		pl, gotErr := s.plan(ctx, fn)
		s.mu.Unlock()
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && !errors.Is(gotErr, gatehouse.ErrLastSuperuser) != !errors.Is(wantErr, gatehouse.ErrLastSuperuser) {
			t.Fatalf("step %d (%s): plan error %v, fresh load %v", step, name, gotErr, wantErr)
		}
		if gotErr != nil {
			var got, want *policy.Error
			if errors.As(gotErr, &got) && errors.As(wantErr, &want) && !reflect.DeepEqual(got.Problems, want.Problems) {
				t.Fatalf("step %d (%s): problems %v, fresh load %v", step, name, got.Problems, want.Problems)
			}
			refused++
			continue
		}
		if !reflect.DeepEqual(pl.changes, want) {
			t.Fatalf("step %d (%s): changes\n%+v\nfresh load\n%+v", step, name, pl.changes, want)
		}
		if _, err := s.Update(ctx, "test", name, replay()); err != nil {
			t.Fatalf("step %d (%s): %v", step, name, err)
		}
		committed++
		fresh, v, err := s.load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.current.v != v || !s.current.valid {
			t.Fatalf("step %d: kept version %d (validated %v), stored %d: the change did not keep its policy", step, s.current.v, s.current.valid, v)
		}
		keptObjs, err := s.current.policy().Objects()
		if err != nil {
			t.Fatal(err)
		}
		freshObjs, err := fresh.Objects()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(keptObjs, freshObjs) {
			t.Fatalf("step %d (%s): the kept policy differs from the stored one", step, name)
		}
		snap, err := engine.Compile(fresh, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, req := range enginetest.Requests(fresh, uint64(step), 32) {
			if got, want := s.Snapshot().Check(&req), snap.Check(&req); got.Allowed != want.Allowed || got.Reason != want.Reason {
				t.Fatalf("step %d (%s): Check(%+v) = %v %s, fresh compile %v %s", step, name, req, got.Allowed, got.Reason, want.Allowed, want.Reason)
			}
		}
	}
	t.Logf("%d changes committed, %d refused", committed, refused)
	if committed < 50 || refused < 10 {
		t.Errorf("%d changes committed and %d refused; the sequence should hold many of both", committed, refused)
	}
}

// clonePolicy shares no memory with its source: every slice, map and
// pointer of a policy with every field set is a copy, so a change may
// mutate the clone while the kept policy stays as stored. A field added
// to the policy types without a deep copy fails here.
func TestClonePolicySharesNoMemory(t *testing.T) {
	t.Parallel()
	p := enginetest.Generate(enginetest.Config{Seed: 1, Users: 3, Agents: 2, Superusers: 1, Roles: 2, Bundles: 2,
		Permissions: 4, Tenants: 4, StoresPerOrg: 1, BundlesPerRole: 1, PermsPerRole: 1, PermsPerBundle: 1,
		MaxAssignments: 2, Grants: 1, Plans: 2, Features: 2, Visibility: true})
	attrs := func() map[string]any {
		return map[string]any{"region": "eu", "tags": []any{"a", map[string]any{"b": 1.0}}}
	}
	yes, count := true, int64(3)
	p.Settings.DefaultTenants = []string{p.Tenants[0].ID}
	p.Tenants[0].Attributes = attrs()
	p.Tenants[1].Actions = map[string]gatehouse.ActionSetting{"refund": {Enabled: &yes, Limits: &gatehouse.ActionLimits{MaxCount: &count}}}
	p.Users[0].Aliases, p.Users[0].Attributes = []string{"alias"}, attrs()
	p.Users[1].Aliases = []string{"alias-1"} // copied field by field: no attributes
	p.Agents[0].Attributes = attrs()
	p.Resources = []gatehouse.ResourceEntry{{Type: "doc", ID: "d1", Attributes: attrs()}}
	p.Actions = []gatehouse.ActionType{{Name: "refund", Labels: map[string]string{"en": "Refund"},
		Default: gatehouse.ActionPolicy{Limits: &gatehouse.ActionLimits{MaxCount: &count}}}}
	c, err := clonePolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := p.Objects()
	got, _ := c.Objects()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("clone encodes differently from its source")
	}
	var shared []string
	var walk func(path string, a, b reflect.Value)
	walk = func(path string, a, b reflect.Value) {
		switch a.Kind() {
		case reflect.Map, reflect.Slice:
			if a.Len() > 0 && b.Len() > 0 && a.UnsafePointer() == b.UnsafePointer() {
				shared = append(shared, path)
				return
			}
		case reflect.Pointer:
			if !a.IsNil() && a.Pointer() == b.Pointer() {
				shared = append(shared, path)
				return
			}
		}
		switch a.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !a.IsNil() && !b.IsNil() {
				walk(path, a.Elem(), b.Elem())
			}
		case reflect.Struct:
			for i := range a.NumField() {
				walk(path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		case reflect.Slice:
			for i := range min(a.Len(), b.Len()) {
				walk(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i))
			}
		case reflect.Map:
			for _, k := range a.MapKeys() {
				if bv := b.MapIndex(k); bv.IsValid() {
					walk(fmt.Sprintf("%s[%v]", path, k), a.MapIndex(k), bv)
				}
			}
		}
	}
	walk("policy", reflect.ValueOf(p).Elem(), reflect.ValueOf(c).Elem())
	if len(shared) > 0 {
		t.Errorf("clone shares memory with its source at %v", shared)
	}
}
