package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/engine/enginetest"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
	"github.com/gatehouse/gatehouse/sqlite"
)

// subjectOp is one of the single-subject operations that take
// updateSubject's path, drawn at random from p's ids (some unknown).
func subjectOp(r *rand.Rand, p *gatehouse.Policy) (string, func(ctx context.Context, s *Service) (Result, error)) {
	email := p.Users[r.IntN(len(p.Users))].Email
	if r.IntN(12) == 0 {
		email = fmt.Sprintf("new%03d@example.com", r.IntN(100))
	}
	subject := gatehouse.User(email)
	if r.IntN(5) == 0 {
		subject = gatehouse.AgentRef(p.Agents[r.IntN(len(p.Agents))].ID)
		if r.IntN(4) == 0 {
			subject = gatehouse.AgentRef(fmt.Sprintf("new-agent-%02d", r.IntN(10)))
		}
	}
	tenant := func() string {
		if r.IntN(12) == 0 {
			return "no-such-tenant"
		}
		return p.Tenants[r.IntN(len(p.Tenants))].ID
	}
	role := p.Roles[r.IntN(len(p.Roles))].Name
	if r.IntN(12) == 0 {
		role = "no such role"
	}
	perm := p.Permissions[r.IntN(len(p.Permissions))].Name
	scope := []string{"", tenant()}[r.IntN(2)]
	switch r.IntN(11) {
	case 0:
		ts := []string{tenant(), tenant()}
		return "set tenants", func(ctx context.Context, s *Service) (Result, error) { return s.SetUserTenants(ctx, "t", email, ts) }
	case 1:
		return "reset tenants", func(ctx context.Context, s *Service) (Result, error) { return s.ResetUserTenants(ctx, "t", email) }
	case 2:
		return "promote", func(ctx context.Context, s *Service) (Result, error) { return s.Promote(ctx, "t", email) }
	case 3:
		return "demote", func(ctx context.Context, s *Service) (Result, error) { return s.Demote(ctx, "t", email) }
	case 4:
		plan := []string{"", p.Plans[r.IntN(len(p.Plans))].Name, "no-such-plan"}[r.IntN(3)]
		return "set plan", func(ctx context.Context, s *Service) (Result, error) { return s.SetUserPlan(ctx, "t", email, plan) }
	case 5:
		return "unbind", func(ctx context.Context, s *Service) (Result, error) { return s.Unbind(ctx, "t", subject, role, scope) }
	case 6:
		return "grant", func(ctx context.Context, s *Service) (Result, error) {
			return s.AddGrant(ctx, "t", subject, gatehouse.Grant{Permission: perm, Tenant: scope})
		}
	case 7:
		return "revoke", func(ctx context.Context, s *Service) (Result, error) {
			return s.RemoveGrant(ctx, "t", subject, perm, scope)
		}
	case 8:
		// PUT of the whole entry: tenants, roles and a grant at once.
		kind := gatehouse.KindUser
		if subject.Type == gatehouse.SubjectAgent {
			kind = gatehouse.KindAgent
		}
		body := fmt.Sprintf(`{"tenants":[%q],"roles":[{"role":%q,"tenant":%q}],"grants":[{"permission":%q}]}`, tenant(), role, scope, perm)
		if kind == gatehouse.KindUser && r.IntN(4) == 0 {
			// Aliases, some another user's: Update's path.
			body = fmt.Sprintf(`{"aliases":["alias-%d"],"tenants":[%q]}`, r.IntN(8), tenant())
		}
		return "put", func(ctx context.Context, s *Service) (Result, error) {
			res, _, err := s.PutObject(ctx, "t", kind, subject.ID, []byte(body))
			return res, err
		}
	case 9:
		kind := gatehouse.KindUser
		if subject.Type == gatehouse.SubjectAgent {
			kind = gatehouse.KindAgent
		}
		return "delete", func(ctx context.Context, s *Service) (Result, error) {
			return s.DeleteObject(ctx, "t", kind, subject.ID)
		}
	}
	return "bind", func(ctx context.Context, s *Service) (Result, error) {
		return s.Bind(ctx, "t", subject, gatehouse.Assignment{Role: role, Tenant: scope})
	}
}

func openSQLite(t *testing.T, path string) *Service {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := Open(ctx, store, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Single-subject operations through updateSubject (kept policy, derived
// snapshot) give what the whole-policy path gives on a twin store, over
// random sequences: the same results and errors, the same stored policy,
// a kept policy equal to the stored one, and a snapshot that decides as one
// compiled from a fresh load. A change now and then on the twin of
// another kind (a tenant) makes the next one start from a full compile.
func TestSubjectPathEqualsWholePolicy(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		testSubjectPathEqualsWholePolicy(t, openSQLite(t, filepath.Join(dir, "fast.db")), openSQLite(t, filepath.Join(dir, "whole.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.DSN(t)
		testSubjectPathEqualsWholePolicy(t, openPostgres(t, pgtest.NewSchema(t, dsn)), openPostgres(t, pgtest.NewSchema(t, dsn)))
	})
}

func testSubjectPathEqualsWholePolicy(t *testing.T, fast, whole *Service) {
	ctx := context.Background()
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Agents, cfg.Tenants, cfg.Roles, cfg.Bundles, cfg.Permissions = 80, 4, 40, 8, 10, 30
	for _, s := range []*Service{fast, whole} {
		// Kept policies are changed in place: each its own copy.
		if _, err := s.Update(ctx, "test", "policy.apply", func(p *gatehouse.Policy) error { *p = *enginetest.Generate(cfg); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// whole takes every operation through Update, the path that clones,
	// diffs and compiles the whole policy.
	whole.current.valid = false
	var committed, refused, derived int
	for step := range 120 {
		stored, _, err := fast.load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if step%30 == 29 {
			for _, s := range []*Service{fast, whole} {
				if _, err := s.CreateTenant(ctx, "t", gatehouse.Tenant{ID: fmt.Sprintf("extra-%d", step)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		name, op := subjectOp(rand.New(rand.NewPCG(uint64(step), 3)), stored)
		kept := fast.current.kept
		got, gotErr := op(ctx, fast)
		whole.mu.Lock()
		whole.current = nil // the next change loads the store: not known valid
		whole.mu.Unlock()
		want, wantErr := op(ctx, whole)
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("step %d (%s): error %v, whole-policy path %v", step, name, gotErr, wantErr)
		}
		if gotErr != nil {
			refused++
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d (%s): result %+v, whole-policy path %+v", step, name, got, want)
		}
		if len(got.Changes) > 0 {
			committed++
			// updateSubject's own path changes the kept policy in place.
			if fast.current.kept == kept {
				derived++
			}
		}
		assertTwins(t, fmt.Sprintf("step %d (%s)", step, name), fast, whole, stored, uint64(step))
	}
	t.Logf("%d changes committed (%d by updateSubject's own path), %d refused", committed, derived, refused)
	if committed < 50 || refused < 5 || derived < committed/2 {
		t.Errorf("%d changes committed and %d refused; the sequence should hold many of both", committed, refused)
	}
	for _, s := range []*Service{fast, whole} {
		if rep, err := s.VerifyAudit(ctx); err != nil {
			t.Errorf("VerifyAudit = %+v, %v", rep, err)
		}
	}
}

// Two instances on one store changing the same user at once: every change
// lands, none is merged over another (each binding added is stored, each
// commit's before is the stored object), and both end deciding alike. On
// SQLite, and on PostgreSQL when pgtest.EnvDSN names a server.
func TestSubjectConcurrentInstances(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "g.db")
		testConcurrentInstances(t, func() *Service { return openSQLite(t, path) })
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.NewSchema(t, pgtest.DSN(t))
		testConcurrentInstances(t, func() *Service { return openPostgres(t, dsn) })
	})
}

func openPostgres(t *testing.T, dsn string) *Service {
	t.Helper()
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := Open(context.Background(), store, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testConcurrentInstances(t *testing.T, open func() *Service) {
	ctx := context.Background()
	a := open()
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Agents, cfg.Tenants, cfg.Roles, cfg.Bundles, cfg.Permissions = 20, 1, 10, 12, 10, 30
	gen := enginetest.Generate(cfg)
	if _, err := a.Update(ctx, "test", "policy.apply", func(p *gatehouse.Policy) error { *p = *gen; return nil }); err != nil {
		t.Fatal(err)
	}
	b := open()
	email := gen.Users[3].Email
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(gen.Roles))
	for i, s := range []*Service{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(gen.Roles); j += 2 {
				sub := gatehouse.User(email)
				if _, err := s.Bind(ctx, "t", sub, gatehouse.Assignment{Role: gen.Roles[j].Name, Tenant: gen.Tenants[0].ID}); err != nil {
					errs <- err
				}
				// Both also set the same user's tenants, to one list or the other.
				if _, err := s.SetUserTenants(ctx, "t", email, []string{gen.Tenants[i].ID}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, gatehouse.ErrConflict) {
			t.Errorf("concurrent change: %v", err)
		}
	}
	stored, v, err := a.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u := stored.User(email)
	for _, r := range gen.Roles {
		if !containsAssignment(u.Roles, gatehouse.Assignment{Role: r.Name, Tenant: gen.Tenants[0].ID}) {
			t.Errorf("binding of role %q was lost: stored roles %v", r.Name, u.Roles)
		}
	}
	if rep, err := a.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
	for _, s := range []*Service{a, b} {
		if _, err := s.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if s.Snapshot().Version() != v {
			t.Errorf("instance at version %d, store at %d", s.Snapshot().Version(), v)
		}
	}
	snap, err := engine.Compile(stored, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range enginetest.Requests(stored, 1, 200) {
		want := snap.Check(&req)
		for _, s := range []*Service{a, b} {
			if got := s.Snapshot().Check(&req); got != want {
				t.Fatalf("Check(%+v) = %+v, fresh compile %+v", req, got, want)
			}
		}
	}
}

// assertTwins checks, after a step of a twin-store test, that fast's store,
// whole's store and fast's kept policy hold one policy, and that fast
// decides requests about it, and about before (the policy before the
// step: a subject it removed is unknown to both), as a fresh compile.
func assertTwins(t *testing.T, step string, fast, whole *Service, before *gatehouse.Policy, seed uint64) {
	t.Helper()
	ctx := context.Background()
	fresh, v, err := fast.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	twin, _, err := whole.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	freshObjs, _ := fresh.Objects()
	twinObjs, _ := twin.Objects()
	keptObjs, _ := fast.current.policy().Objects()
	if !reflect.DeepEqual(freshObjs, twinObjs) || !reflect.DeepEqual(keptObjs, freshObjs) || fast.current.v != v {
		t.Fatalf("%s: stored, twin and kept policies differ", step)
	}
	snap, err := engine.Compile(fresh, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range append(enginetest.Requests(fresh, seed, 64), enginetest.Requests(before, seed, 32)...) {
		if got, want := fast.Snapshot().Check(&req), snap.Check(&req); got != want {
			t.Fatalf("%s: Check(%+v) = %+v, fresh compile %+v", step, req, got, want)
		}
	}
}

func containsAssignment(as []gatehouse.Assignment, a gatehouse.Assignment) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// Two instances on one store changing the same role at once: additions
// made by reading the role and writing it back are all kept (a lost race
// runs the function again on the newer policy), and of two whole
// replacements one wins entire, never a mix — on both stores.
func TestRoleConcurrentInstances(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "g.db")
		testRoleConcurrentInstances(t, func() *Service { return openSQLite(t, path) })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.NewSchema(t, pgtest.DSN(t))
		testRoleConcurrentInstances(t, func() *Service { return openPostgres(t, dsn) })
	})
}

func testRoleConcurrentInstances(t *testing.T, open func() *Service) {
	ctx := context.Background()
	a := open()
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Agents, cfg.Tenants, cfg.Roles, cfg.Bundles, cfg.Permissions = 20, 1, 10, 4, 4, 30
	gen := enginetest.Generate(cfg)
	if _, err := a.Update(ctx, "test", "policy.apply", func(p *gatehouse.Policy) error { *p = *enginetest.Generate(cfg); return nil }); err != nil {
		t.Fatal(err)
	}
	b := open()
	role := gen.Roles[0].Name
	// Permissions the role does not hold yet, half for each instance.
	var add []string
	for _, p := range gen.Permissions {
		if !slices.Contains(gen.Roles[0].Permissions, p.Name) && len(add) < 12 {
			add = append(add, p.Name)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(add))
	for i, s := range []*Service{a, b} {
		wg.Go(func() {
			for j := i; j < len(add); j += 2 {
				_, err := s.Update(ctx, "t", "role.put", func(p *gatehouse.Policy) error {
					at := slices.IndexFunc(p.Roles, func(r gatehouse.Role) bool { return r.Name == role })
					p.Roles[at].Permissions = append(p.Roles[at].Permissions, add[j])
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent role change: %v", err)
	}
	stored, _, err := a.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := stored.Roles[slices.IndexFunc(stored.Roles, func(r gatehouse.Role) bool { return r.Name == role })].Permissions
	for _, p := range add {
		if !slices.Contains(got, p) {
			t.Errorf("permission %q added to role %q was lost: %v", p, role, got)
		}
	}

	// Whole replacements: each instance puts its own body, several times.
	bodies := [2]string{
		fmt.Sprintf(`{"name": %q, "permissions": [%q, %q]}`, role, add[0], add[1]),
		fmt.Sprintf(`{"name": %q, "permissions": [%q]}`, role, add[2]),
	}
	for i, s := range []*Service{a, b} {
		wg.Go(func() {
			for range 4 {
				if _, _, err := s.PutObject(ctx, "t", gatehouse.KindRole, role, []byte(bodies[i])); err != nil {
					t.Errorf("PutObject: %v", err)
				}
			}
		})
	}
	wg.Wait()
	stored, v, err := a.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got = stored.Roles[slices.IndexFunc(stored.Roles, func(r gatehouse.Role) bool { return r.Name == role })].Permissions
	if !slices.Equal(got, []string{add[0], add[1]}) && !slices.Equal(got, []string{add[2]}) {
		t.Errorf("role %q holds %v: a mix of two replacements", role, got)
	}
	if rep, err := a.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
	snap, err := engine.Compile(stored, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Service{a, b} {
		if _, err := s.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		for _, req := range enginetest.Requests(stored, 1, 200) {
			if got, want := s.Snapshot().Check(&req), snap.Check(&req); got != want {
				t.Fatalf("Check(%+v) = %+v, fresh compile %+v", req, got, want)
			}
		}
	}
}
