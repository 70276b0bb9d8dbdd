package bench

import (
	"fmt"
	"sync"
	"testing"

	"github.com/casbin/casbin/v2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/engine/enginetest"
)

// sizes are the compared policies. "10k" is enginetest.DefaultConfig (10k
// users, 100 roles, 200 bundles, 1k permissions, 1k tenants) reduced to what
// Casbin can express; "1k" has a tenth of its users and tenants; "small" is
// a policy where Casbin's linear scan over its policy lines stays short.
// checked is how many requests TestAgreement decides with both engines.
func sizes() []struct {
	name    string
	cfg     enginetest.Config
	checked int
} {
	rbacOnly := func(c enginetest.Config) enginetest.Config {
		c.Agents, c.Superusers, c.Plans, c.Features, c.Visibility = 0, 0, 0, 0, false
		return c
	}
	small := enginetest.Config{
		Seed: 1, Users: 100, Roles: 10, Bundles: 20, Permissions: 100,
		Tenants: 20, StoresPerOrg: 4, BundlesPerRole: 3, PermsPerRole: 5, PermsPerBundle: 5,
		MaxAssignments: 2, Grants: 1, ScopedShare: 0.5,
	}
	oneK := enginetest.DefaultConfig()
	oneK.Users, oneK.Tenants = 1000, 100
	return []struct {
		name    string
		cfg     enginetest.Config
		checked int
	}{
		// Casbin takes tens of milliseconds per request at 1k users and
		// hundreds at 10k, so the larger sizes check fewer requests.
		{"small", rbacOnly(small), compareRequests},
		{"1k", rbacOnly(oneK), 100},
		{"10k", rbacOnly(enginetest.DefaultConfig()), 10},
	}
}

// compareRequests is the request mix of both engines: mixed outcomes, all
// with a known tenant or none.
const compareRequests = 1024

type engines struct {
	policy   *gatehouse.Policy
	snap     *engine.Snapshot
	casbin   *casbin.Enforcer
	requests []gatehouse.Request
	rules    int
}

var loaded sync.Map // size name → *engines

func load(tb testing.TB, name string, cfg enginetest.Config) *engines {
	tb.Helper()
	if e, ok := loaded.Load(name); ok {
		return e.(*engines)
	}
	p := enginetest.Generate(cfg)
	snap, err := engine.Compile(p, 1)
	if err != nil {
		tb.Fatalf("compile %s policy: %v", name, err)
	}
	ce, err := NewCasbin(p)
	if err != nil {
		tb.Fatalf("casbin %s policy: %v", name, err)
	}
	rules, _ := ce.GetPolicy()
	e := &engines{policy: p, snap: snap, casbin: ce, requests: enginetest.Requests(p, 7, compareRequests), rules: len(rules)}
	loaded.Store(name, e)
	return e
}

// TestAgreement: Casbin and Gatehouse decide every request alike.
func TestAgreement(t *testing.T) {
	for _, size := range sizes() {
		if size.name != "small" && testing.Short() {
			continue
		}
		t.Run(size.name, func(t *testing.T) {
			e := load(t, size.name, size.cfg)
			allowed := 0
			for i := range size.checked {
				req := &e.requests[i]
				d := e.snap.Check(req)
				ok, err := e.casbin.Enforce(req.Subject.ID, req.Tenant, req.Permission)
				if err != nil {
					t.Fatalf("Casbin Enforce(%s, %q, %q) = %v", req.Subject.ID, req.Tenant, req.Permission, err)
				}
				if d.Allowed != ok {
					t.Errorf("request (%s, %q, %q): Gatehouse %v (%s), Casbin %v", req.Subject.ID, req.Tenant, req.Permission, d.Allowed, d.Reason, ok)
				}
				if ok {
					allowed++
				}
			}
			if size.checked >= 100 && (allowed == 0 || allowed == size.checked) {
				t.Errorf("%d of %d requests allowed; the mix must hold both outcomes", allowed, size.checked)
			}
		})
	}
}

func BenchmarkGatehouseCheck(b *testing.B) {
	for _, size := range sizes() {
		b.Run("size="+size.name, func(b *testing.B) {
			e := load(b, size.name, size.cfg)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e.snap.Check(&e.requests[i])
				if i++; i == len(e.requests) {
					i = 0
				}
			}
		})
	}
}

func BenchmarkCasbinEnforce(b *testing.B) {
	for _, size := range sizes() {
		b.Run("size="+size.name, func(b *testing.B) {
			e := load(b, size.name, size.cfg)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req := &e.requests[i]
				if _, err := e.casbin.Enforce(req.Subject.ID, req.Tenant, req.Permission); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(e.requests) {
					i = 0
				}
			}
			b.ReportMetric(float64(e.rules), "policy-lines")
		})
	}
}

// Example of the mapping, for the documentation.
func ExampleNewCasbin() {
	p := &gatehouse.Policy{
		Permissions: []gatehouse.Permission{{Name: "orders.refund"}},
		Roles:       []gatehouse.Role{{Name: "support", Permissions: []string{"orders.refund"}}},
		Tenants:     []gatehouse.Tenant{{ID: "acme"}, {ID: "acme-berlin", Parent: "acme"}},
		Users: []gatehouse.UserEntry{{
			Email: "sara@acme.example",
			Roles: []gatehouse.Assignment{{Role: "support", Tenant: "acme"}},
		}},
	}
	e, err := NewCasbin(p)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, tenant := range []string{"acme", "acme-berlin", ""} {
		ok, _ := e.Enforce("sara@acme.example", tenant, "orders.refund")
		fmt.Printf("%q: %v\n", tenant, ok)
	}
	// Output:
	// "acme": true
	// "acme-berlin": true
	// "": false
}
