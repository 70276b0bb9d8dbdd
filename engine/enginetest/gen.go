// Package enginetest generates large, deterministic synthetic policies and
// request mixes for benchmarks of package engine and for comparisons with
// other authorization engines. It is test support: nothing in Gatehouse
// imports it outside tests and benchmarks.
package enginetest

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/gatehouse/gatehouse"
)

// Config sizes a generated policy.
type Config struct {
	// Seed makes generation deterministic.
	Seed uint64
	// Users and Agents are the subjects; the first Superusers users are
	// superusers.
	Users, Agents, Superusers   int
	Roles, Bundles, Permissions int
	// Tenants is the total number of tenants: organizations, each followed
	// by StoresPerOrg stores (the last organization may have fewer).
	Tenants, StoresPerOrg int
	// BundlesPerRole and PermsPerRole are exact; bundles hold PermsPerBundle
	// permissions on average (half to one and a half times as many).
	BundlesPerRole, PermsPerRole, PermsPerBundle int
	// Each subject has 1..MaxAssignments role assignments and Grants direct
	// grants; ScopedShare of them are scoped to the subject's organization
	// or one of its stores, the rest are global.
	MaxAssignments, Grants int
	ScopedShare            float64
	// Plans tiers share Features features; FeatureShare of the permissions
	// need one. Plans 0 means no plans and no features.
	Plans, Features int
	FeatureShare    float64
	// Visibility gives most users their organization and its stores as an
	// exact tenant list; the rest see the first organization's tenants (the
	// default tenants). Without it every subject sees every tenant through
	// default_tenants, which is what an engine without visibility models.
	Visibility bool
}

// DefaultConfig is the benchmark size: 10k users, 100 roles, 200 bundles,
// 1k permissions and 1k tenants (50 organizations of 1 + 19 stores).
func DefaultConfig() Config {
	return Config{
		Seed:  1,
		Users: 10_000, Agents: 10, Superusers: 5,
		Roles: 100, Bundles: 200, Permissions: 1000,
		Tenants: 1000, StoresPerOrg: 19,
		BundlesPerRole: 5, PermsPerRole: 10, PermsPerBundle: 10,
		MaxAssignments: 3, Grants: 2, ScopedShare: 0.5,
		Plans: 4, Features: 20, FeatureShare: 0.1,
		Visibility: true,
	}
}

// PermissionName names generated permission i.
func PermissionName(i int) string { return fmt.Sprintf("perm.%04d", i) }

// BundleName names generated bundle i.
func BundleName(i int) string { return fmt.Sprintf("bundle %03d", i) }

// RoleName names generated role i.
func RoleName(i int) string { return fmt.Sprintf("role %03d", i) }

// UserEmail is generated user i's email.
func UserEmail(i int) string { return fmt.Sprintf("user%06d@example.com", i) }

// AgentID is generated agent i's id.
func AgentID(i int) string { return fmt.Sprintf("agent-%03d", i) }

// PlanName names generated plan i (0 is the lowest).
func PlanName(i int) string { return fmt.Sprintf("plan-%d", i) }

// FeatureName names generated feature i.
func FeatureName(i int) string { return fmt.Sprintf("feature-%02d", i) }

// OrgID is generated organization i's tenant id.
func OrgID(i int) string { return fmt.Sprintf("org-%03d", i) }

// StoreID is the tenant id of store i of organization org.
func StoreID(org, i int) string { return fmt.Sprintf("org-%03d-store-%02d", org, i) }

// Generate builds a policy from cfg. The same cfg always yields the same
// policy. Users of one organization share their tenant lists.
func Generate(cfg Config) *gatehouse.Policy {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	p := &gatehouse.Policy{}

	for i := range cfg.Plans {
		p.Plans = append(p.Plans, gatehouse.Plan{Name: PlanName(i)})
	}
	if cfg.Plans > 0 {
		// The lowest plan has no features; the rest are spread over the others.
		for f := range cfg.Features {
			pl := 0
			if cfg.Plans > 1 {
				pl = 1 + f%(cfg.Plans-1)
			}
			p.Plans[pl].Features = append(p.Plans[pl].Features, FeatureName(f))
		}
	}
	for i := range cfg.Permissions {
		pm := gatehouse.Permission{Name: PermissionName(i)}
		if cfg.Plans > 0 && cfg.Features > 0 && rng.Float64() < cfg.FeatureShare {
			pm.Feature = FeatureName(rng.IntN(cfg.Features))
		}
		p.Permissions = append(p.Permissions, pm)
	}
	randomPerms := func(n int) []string {
		out := make([]string, n)
		for k := range out {
			out[k] = PermissionName(rng.IntN(cfg.Permissions))
		}
		return out
	}
	for i := range cfg.Bundles {
		n := max(1, cfg.PermsPerBundle/2+rng.IntN(cfg.PermsPerBundle+1))
		p.Bundles = append(p.Bundles, gatehouse.Bundle{Name: BundleName(i), Permissions: randomPerms(n)})
	}
	for i := range cfg.Roles {
		r := gatehouse.Role{Name: RoleName(i), Permissions: randomPerms(cfg.PermsPerRole)}
		for range min(cfg.BundlesPerRole, cfg.Bundles) {
			r.Bundles = append(r.Bundles, BundleName(rng.IntN(cfg.Bundles)))
		}
		p.Roles = append(p.Roles, r)
	}

	// orgs[i] lists organization i and its stores.
	var orgs [][]string
	for len(p.Tenants) < cfg.Tenants {
		o := len(orgs)
		org := gatehouse.Tenant{ID: OrgID(o)}
		if cfg.Plans > 0 {
			org.Plan = PlanName(rng.IntN(cfg.Plans))
		}
		p.Tenants = append(p.Tenants, org)
		ids := []string{org.ID}
		for s := 0; s < cfg.StoresPerOrg && len(p.Tenants) < cfg.Tenants; s++ {
			st := gatehouse.Tenant{ID: StoreID(o, s), Parent: org.ID}
			if cfg.Plans > 0 && rng.IntN(10) == 0 {
				st.Plan = PlanName(rng.IntN(cfg.Plans))
			}
			p.Tenants = append(p.Tenants, st)
			ids = append(ids, st.ID)
		}
		orgs = append(orgs, ids)
	}
	if cfg.Visibility && len(orgs) > 0 {
		p.Settings.DefaultTenants = orgs[0]
	} else {
		for _, t := range p.Tenants {
			p.Settings.DefaultTenants = append(p.Settings.DefaultTenants, t.ID)
		}
	}

	// scope returns "" (global) or the home organization or one of its stores.
	scope := func(home int) string {
		if len(orgs) == 0 || rng.Float64() >= cfg.ScopedShare {
			return ""
		}
		ids := orgs[home]
		if rng.IntN(5) < 3 {
			return ids[0]
		}
		return ids[rng.IntN(len(ids))]
	}
	subject := func() (tenants []string, roles []gatehouse.Assignment, grants []gatehouse.Grant) {
		home := 0
		if len(orgs) > 0 {
			home = rng.IntN(len(orgs))
		}
		if cfg.Visibility && len(orgs) > 0 && rng.IntN(10) != 0 {
			tenants = orgs[home]
		}
		if cfg.Roles > 0 {
			for range 1 + rng.IntN(max(1, cfg.MaxAssignments)) {
				roles = append(roles, gatehouse.Assignment{Role: RoleName(rng.IntN(cfg.Roles)), Tenant: scope(home)})
			}
		}
		if cfg.Permissions > 0 {
			for range cfg.Grants {
				grants = append(grants, gatehouse.Grant{Permission: PermissionName(rng.IntN(cfg.Permissions)), Tenant: scope(home)})
			}
		}
		return tenants, roles, grants
	}
	p.Users = make([]gatehouse.UserEntry, 0, cfg.Users)
	for i := range cfg.Users {
		u := gatehouse.UserEntry{Email: UserEmail(i), Superuser: i < cfg.Superusers}
		u.Tenants, u.Roles, u.Grants = subject()
		if cfg.Plans > 0 && rng.IntN(5) == 0 {
			u.Plan = PlanName(rng.IntN(cfg.Plans))
		}
		p.Users = append(p.Users, u)
	}
	for i := range cfg.Agents {
		a := gatehouse.Agent{ID: AgentID(i)}
		a.Tenants, a.Roles, a.Grants = subject()
		p.Agents = append(p.Agents, a)
	}
	return p
}

// Requests draws n user requests from p, deterministically from seed: the
// tenant is mostly one the user may see (else any tenant, or none) and the
// permission half the time one of the user's roles gives, else any. The mix
// holds both allowed and denied requests; classify them with the engine.
func Requests(p *gatehouse.Policy, seed uint64, n int) []gatehouse.Request {
	if len(p.Users) == 0 || len(p.Permissions) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x6a09e667f3bcc909))
	rolePerms := make(map[string][]string, len(p.Roles))
	bundlePerms := make(map[string][]string, len(p.Bundles))
	for _, b := range p.Bundles {
		bundlePerms[b.Name] = b.Permissions
	}
	for _, r := range p.Roles {
		perms := slices.Clone(r.Permissions)
		for _, b := range r.Bundles {
			perms = append(perms, bundlePerms[b]...)
		}
		rolePerms[r.Name] = perms
	}
	out := make([]gatehouse.Request, n)
	for i := range out {
		u := &p.Users[rng.IntN(len(p.Users))]
		req := gatehouse.Request{Subject: gatehouse.User(u.Email)}
		visible := u.Tenants
		if visible == nil {
			visible = p.Settings.DefaultTenants
		}
		switch k := rng.IntN(20); {
		case k < 17 && len(visible) > 0:
			req.Tenant = visible[rng.IntN(len(visible))]
		case k < 19 && len(p.Tenants) > 0:
			req.Tenant = p.Tenants[rng.IntN(len(p.Tenants))].ID
		}
		req.Permission = p.Permissions[rng.IntN(len(p.Permissions))].Name
		if len(u.Roles) > 0 && rng.IntN(2) == 0 {
			if perms := rolePerms[u.Roles[rng.IntN(len(u.Roles))].Role]; len(perms) > 0 {
				req.Permission = perms[rng.IntN(len(perms))]
			}
		}
		out[i] = req
	}
	return out
}
