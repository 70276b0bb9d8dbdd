package engine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

// randomRoleChange replaces, in p, one role or one bundle (now and then
// both) with one of the same name giving other permissions and bundles, or
// adds one, and returns the upserted entries as DeriveRoles takes them.
func randomRoleChange(rng *rand.Rand, p *gatehouse.Policy) ([]gatehouse.Role, []gatehouse.Bundle) {
	perms := func() []string {
		var out []string
		for _, pm := range p.Permissions {
			if rng.IntN(4) == 0 {
				out = append(out, pm.Name)
			}
		}
		return out
	}
	var roles []gatehouse.Role
	var bundles []gatehouse.Bundle
	// Now and then a new bundle, and a new role.
	if rng.IntN(8) == 0 {
		b := gatehouse.Bundle{Name: fmt.Sprintf("bundle %d", len(p.Bundles)), Permissions: perms()}
		p.Bundles = append(p.Bundles, b)
		bundles = append(bundles, b)
	}
	if rng.IntN(3) > 0 {
		i := rng.IntN(len(p.Roles) + 1)
		name := fmt.Sprintf("role %d", i)
		if i < len(p.Roles) && rng.IntN(6) > 0 {
			name = p.Roles[i].Name
		}
		r := gatehouse.Role{Name: name, Permissions: perms()}
		for _, b := range p.Bundles {
			if rng.IntN(3) == 0 {
				r.Bundles = append(r.Bundles, b.Name)
			}
		}
		if at := slices.IndexFunc(p.Roles, func(x gatehouse.Role) bool { return x.Name == name }); at >= 0 {
			p.Roles[at] = r
		} else {
			p.Roles = append(p.Roles, r)
		}
		roles = append(roles, r)
	}
	if len(roles)+len(bundles) == 0 || rng.IntN(3) == 0 {
		i := rng.IntN(len(p.Bundles))
		if !slices.ContainsFunc(bundles, func(x gatehouse.Bundle) bool { return x.Name == p.Bundles[i].Name }) {
			b := gatehouse.Bundle{Name: p.Bundles[i].Name, Permissions: perms()}
			p.Bundles[i] = b
			bundles = append(bundles, b)
		}
	}
	return roles, bundles
}

// DeriveRoles decides, explains and reports as Compile does for the policy
// with the roles and bundles replaced, over a random history that mixes
// role and bundle changes with subject changes (WithSubjects) and derives
// now from the latest snapshot, now from an older one — with subjects
// holding their sources as entries, with every subject's merged into sets,
// and with no user's record placed (inLayouts).
func TestDeriveRolesMatchesCompile(t *testing.T) { inLayouts(t, testDeriveRolesMatchesCompile) }

func testDeriveRolesMatchesCompile(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 17))
	p := testPolicy()
	snap, err := engine.Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	history := []kept{{clonePolicy(t, p), snap}}
	reqs := randomRequests(rng, 400)
	derived := 0
	for step := range 200 {
		base := history[len(history)-1]
		if rng.IntN(5) == 0 {
			base = history[rng.IntN(len(history))]
		}
		next := clonePolicy(t, base.p)
		version := base.snap.Version() + 1
		var (
			got *engine.Snapshot
			ok  bool
		)
		if rng.IntN(3) == 0 {
			users, agents := randomSubjectChange(rng, next)
			got, ok, err = base.snap.WithSubjects(version, users, agents)
		} else {
			roles, bundles := randomRoleChange(rng, next)
			got, ok, err = base.snap.DeriveRoles(version, roles, bundles)
			if ok {
				derived++
			}
		}
		want, wantErr := engine.Compile(next, version)
		if !ok && err == nil {
			got, err = engine.Compile(next, version)
		}
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("step %d: derivation error %v, Compile error %v", step, err, wantErr)
		}
		if err != nil {
			continue
		}
		sameDecisions(t, step, next, want, got, reqs)
		history = append(history, kept{next, got})
	}
	if derived < 100 {
		t.Errorf("only %d role and bundle changes were derived", derived)
	}
}

// DeriveRoles refuses a name given twice or invalid, or an unknown
// permission or bundle, and leaves a new role to Compile when subjects
// hold merged sets, in each case leaving the snapshot it derives from
// deciding as before; a new role or bundle is derived otherwise, and a
// derived snapshot's Check allocates nothing.
func TestDeriveRolesDeclines(t *testing.T) {
	p := testPolicy()
	s, err := engine.Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	role := p.Roles[0].Name
	for _, tc := range []struct {
		name    string
		roles   []gatehouse.Role
		bundles []gatehouse.Bundle
	}{
		{name: "role twice", roles: []gatehouse.Role{{Name: role}, {Name: role}}},
		{name: "new role without a name", roles: []gatehouse.Role{{Name: ""}}},
		{name: "unknown permission", roles: []gatehouse.Role{{Name: role, Permissions: []string{"no.such"}}}},
		{name: "unknown bundle", roles: []gatehouse.Role{{Name: role, Bundles: []string{"no.such"}}}},
		{name: "bundle with an unknown permission", bundles: []gatehouse.Bundle{{Name: p.Bundles[0].Name, Permissions: []string{"no.such"}}}},
	} {
		if _, ok, err := s.DeriveRoles(2, tc.roles, tc.bundles); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("%s: DeriveRoles = %v, %v; want ErrInvalid", tc.name, ok, err)
		}
	}
	for _, tc := range []struct {
		name    string
		roles   []gatehouse.Role
		bundles []gatehouse.Bundle
	}{
		{name: "new role", roles: []gatehouse.Role{{Name: "Brand New", Permissions: []string{"chat.view"}}}},
		{name: "new bundle", bundles: []gatehouse.Bundle{{Name: "Brand New", Permissions: []string{"chat.view"}}}},
	} {
		if _, ok, err := s.DeriveRoles(2, tc.roles, tc.bundles); !ok || err != nil {
			t.Errorf("%s: DeriveRoles = %v, %v; want it derived", tc.name, ok, err)
		}
	}
	t.Run("merged", func(t *testing.T) {
		defer engine.SetMergeAbove(0)()
		merged, err := engine.Compile(testPolicy(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok, err := merged.DeriveRoles(2, []gatehouse.Role{{Name: "Brand New"}}, nil); ok || err != nil || got != nil {
			t.Errorf("new role with merged subjects: DeriveRoles = %v, %v, %v; want it left to Compile", got, ok, err)
		}
	})
	fresh, err := engine.Compile(testPolicy(), 1)
	if err != nil {
		t.Fatal(err)
	}
	sameDecisions(t, 0, testPolicy(), fresh, s, randomRequests(rand.New(rand.NewPCG(1, 2)), 300))

	// Store Support loses orders.refund: Check sees it, allocating nothing.
	i := slices.IndexFunc(p.Roles, func(r gatehouse.Role) bool { return r.Name == "Store Support" })
	changed := gatehouse.Role{Name: "Store Support", Permissions: []string{"access_ai_chat"}}
	d, ok, err := s.DeriveRoles(2, []gatehouse.Role{changed}, nil)
	if !ok || err != nil {
		t.Fatalf("DeriveRoles = %v, %v", ok, err)
	}
	p.Roles[i] = changed
	want, err := engine.Compile(p, 2)
	if err != nil {
		t.Fatal(err)
	}
	reqs := randomRequests(rand.New(rand.NewPCG(3, 4)), 300)
	sameDecisions(t, 0, p, want, d, reqs)
	for _, req := range reqs[:20] {
		if n := testing.AllocsPerRun(100, func() { d.Check(req) }); n != 0 {
			t.Errorf("Check(%s) on a derived snapshot allocates %v times, want 0", reqString(req), n)
		}
	}
}
