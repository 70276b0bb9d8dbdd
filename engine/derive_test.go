package engine_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/engine/enginetest"
)

// randomSubjectChange changes one user or agent of p at random, within what
// WithSubjects derives (the subject's ids stay), and returns the changed
// entries. Now and then it names a role that does not exist.
func randomSubjectChange(rng *rand.Rand, p *gatehouse.Policy) ([]gatehouse.UserEntry, []gatehouse.Agent) {
	pick := func(n int) int { return rng.IntN(n) }
	tenants := func() []string {
		switch pick(4) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		var out []string
		for range 1 + pick(3) {
			out = append(out, p.Tenants[pick(len(p.Tenants))].ID)
		}
		return out
	}
	var conds []string
	for _, u := range p.Users {
		for _, g := range u.Grants {
			conds = append(conds, g.Condition)
		}
	}
	scope := func() string {
		if pick(2) == 0 {
			return ""
		}
		return p.Tenants[pick(len(p.Tenants))].ID
	}
	cond := func() string {
		if pick(3) > 0 {
			return ""
		}
		return conds[pick(len(conds))]
	}
	roles := func() []gatehouse.Assignment {
		var out []gatehouse.Assignment
		for range pick(4) {
			name := p.Roles[pick(len(p.Roles))].Name
			if pick(40) == 0 {
				name = "no such role"
			}
			out = append(out, gatehouse.Assignment{Role: name, Tenant: scope(), Condition: cond()})
		}
		return out
	}
	grants := func() []gatehouse.Grant {
		var out []gatehouse.Grant
		for range pick(3) {
			out = append(out, gatehouse.Grant{Permission: p.Permissions[pick(len(p.Permissions))].Name, Tenant: scope(), Condition: cond()})
		}
		return out
	}
	if pick(4) == 0 {
		a := &p.Agents[pick(len(p.Agents))]
		a.Tenants, a.Roles, a.Grants = tenants(), roles(), grants()
		if pick(3) == 0 {
			a.Attributes = map[string]any{"n": float64(pick(10))}
		}
		return nil, []gatehouse.Agent{*a}
	}
	var changed []gatehouse.UserEntry
	for range 1 + pick(2) {
		u := &p.Users[pick(len(p.Users))]
		switch pick(5) {
		case 0:
			u.Tenants = tenants()
		case 1:
			u.Roles = roles()
		case 2:
			u.Grants = grants()
		case 3:
			u.Superuser = pick(4) == 0
			u.Plan = []string{"", "free", "pro", "enterprise"}[pick(4)]
		default:
			u.Tenants, u.Roles, u.Grants = tenants(), roles(), grants()
			if pick(2) == 0 {
				u.Attributes = map[string]any{"tier": []string{"gold", "tin"}[pick(2)]}
			}
		}
		changed = append(changed, *u)
	}
	return changed, nil
}

// TestWithSubjectsMatchesCompile: a snapshot derived by a random sequence
// of subject changes, from the newest snapshot or now and then from an
// older one, decides every sampled request, and reports every subject's
// effective permissions, as a Compile of the same policy does.
// It runs twice: with the default layout, and with every subject's
// sources merged into permission sets.
func TestWithSubjectsMatchesCompile(t *testing.T) {
	t.Run("default", testWithSubjectsMatchesCompile)
	t.Run("merged", func(t *testing.T) {
		defer engine.SetMergeAbove(0)()
		testWithSubjectsMatchesCompile(t)
	})
}

func testWithSubjectsMatchesCompile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 19))
	p := testPolicy()
	snap, err := engine.Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	type kept struct {
		p    *gatehouse.Policy
		snap *engine.Snapshot
	}
	history := []kept{{clonePolicy(t, p), snap}}
	reqs := randomRequests(rng, 400)
	derived := 0
	for step := range 300 {
		base := history[len(history)-1]
		if rng.IntN(5) == 0 {
			base = history[rng.IntN(len(history))]
		}
		next := clonePolicy(t, base.p)
		users, agents := randomSubjectChange(rng, next)
		version := base.snap.Version() + 1
		want, wantErr := engine.Compile(next, version)
		got, ok, err := base.snap.WithSubjects(version, users, agents)
		if !ok && err == nil {
			got, err = engine.Compile(next, version)
		} else if ok {
			derived++
		}
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("step %d: WithSubjects error %v, Compile error %v", step, err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, gatehouse.ErrInvalid) {
				t.Fatalf("step %d: WithSubjects error %v does not wrap ErrInvalid", step, err)
			}
			continue
		}
		sameDecisions(t, step, next, want, got, reqs)
		history = append(history, kept{next, got})
	}
	if derived < 200 {
		t.Errorf("only %d of 300 changes were derived", derived)
	}
}

// sameDecisions fails the test where got decides or reports differently
// from want.
func sameDecisions(t *testing.T, step int, p *gatehouse.Policy, want, got *engine.Snapshot, reqs []*gatehouse.Request) {
	t.Helper()
	if got.Version() != want.Version() {
		t.Fatalf("step %d: version %d, want %d", step, got.Version(), want.Version())
	}
	for _, req := range reqs {
		if g, w := got.Check(req), want.Check(req); g != w {
			t.Fatalf("step %d: Check(%s) = %+v, Compile gives %+v", step, reqString(req), g, w)
		}
		if g, w := got.Explain(req), want.Explain(req); !reflect.DeepEqual(g, w) {
			t.Fatalf("step %d: Explain(%s) = %+v, Compile gives %+v", step, reqString(req), g, w)
		}
	}
	var subjects []gatehouse.SubjectRef
	for _, u := range p.Users {
		subjects = append(subjects, user(u.Email))
	}
	for _, a := range p.Agents {
		subjects = append(subjects, agent(a.ID))
	}
	for _, sub := range subjects {
		for _, tn := range append([]string{""}, tenantIDs(p)...) {
			g, gerr := got.Effective(sub, tn)
			w, werr := want.Effective(sub, tn)
			if !reflect.DeepEqual(g, w) || !reflect.DeepEqual(gerr, werr) {
				t.Fatalf("step %d: Effective(%s, %q) = %+v, %v; Compile gives %+v, %v", step, sub, tn, g, gerr, w, werr)
			}
		}
		if g, w := got.VisibleTenants(sub.ID), want.VisibleTenants(sub.ID); sub.Type == gatehouse.SubjectUser && !slices.Equal(g, w) {
			t.Fatalf("step %d: VisibleTenants(%s) = %v, Compile gives %v", step, sub.ID, g, w)
		}
	}
}

func tenantIDs(p *gatehouse.Policy) []string {
	var out []string
	for _, tn := range p.Tenants {
		out = append(out, tn.ID)
	}
	return out
}

func clonePolicy(t *testing.T, p *gatehouse.Policy) *gatehouse.Policy {
	t.Helper()
	c, err := p.Clone()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWithSubjectsDeclines: changes a derivation does not make are left to
// Compile, and the snapshot derived from stays as it was.
func TestWithSubjectsDeclines(t *testing.T) {
	s := compileTest(t)
	p := testPolicy()
	sara := p.Users[1]
	cases := map[string]func() ([]gatehouse.UserEntry, []gatehouse.Agent){
		"new user": func() ([]gatehouse.UserEntry, []gatehouse.Agent) {
			return []gatehouse.UserEntry{{Email: "new@example.com"}}, nil
		},
		"new agent": func() ([]gatehouse.UserEntry, []gatehouse.Agent) { return nil, []gatehouse.Agent{{ID: "new-bot"}} },
		"new alias": func() ([]gatehouse.UserEntry, []gatehouse.Agent) {
			u := sara
			u.Aliases = []string{"s1"}
			return []gatehouse.UserEntry{u}, nil
		},
		"new condition": func() ([]gatehouse.UserEntry, []gatehouse.Agent) {
			u := sara
			u.Grants = []gatehouse.Grant{{Permission: "chat.view", Condition: "true"}}
			return []gatehouse.UserEntry{u}, nil
		},
	}
	req := &gatehouse.Request{Subject: user("sara@acme.example"), Permission: "chat.view"}
	before := s.Check(req)
	for name, change := range cases {
		users, agents := change()
		if got, ok, err := s.WithSubjects(2, users, agents); ok || err != nil || got != nil {
			t.Errorf("%s: WithSubjects = %v, %v, %v; want nil, false, nil", name, got, ok, err)
		}
	}
	if after := s.Check(req); after != before {
		t.Errorf("Check changed after declined derivations: %+v, was %+v", after, before)
	}
}

// TestWithSubjectsConcurrent: derivations from one snapshot at once (run
// with -race) each decide as a Compile of their own change.
func TestWithSubjectsConcurrent(t *testing.T) {
	base := compileTest(t)
	reqs := randomRequests(rand.New(rand.NewPCG(3, 4)), 200)
	type result struct {
		p    *gatehouse.Policy
		snap *engine.Snapshot
	}
	results := make([]result, 8)
	var wg sync.WaitGroup
	for i := range results {
		p := testPolicy()
		users, agents := randomSubjectChange(rand.New(rand.NewPCG(uint64(i), 1)), p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if snap, ok, err := base.WithSubjects(2, users, agents); ok && err == nil {
				results[i] = result{p, snap}
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.snap == nil {
			continue
		}
		want, err := engine.Compile(r.p, 2)
		if err != nil {
			t.Fatal(err)
		}
		sameDecisions(t, i, r.p, want, r.snap, reqs)
	}
}

// TestMergedSubjectsDecideAlike: a subject's sources read one by one and
// merged into permission sets decide, explain and report alike, on the
// fixture and on a generated policy whose users hold many grants.
func TestMergedSubjectsDecideAlike(t *testing.T) {
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Tenants, cfg.Permissions, cfg.Grants = 40, 40, 200, 20
	for name, p := range map[string]*gatehouse.Policy{"fixture": testPolicy(), "generated": enginetest.Generate(cfg)} {
		t.Run(name, func(t *testing.T) {
			want, err := engine.Compile(p, 1)
			if err != nil {
				t.Fatal(err)
			}
			restore := engine.SetMergeAbove(0)
			got, err := engine.Compile(p, 1)
			restore()
			if err != nil {
				t.Fatal(err)
			}
			reqs := randomRequests(rand.New(rand.NewPCG(3, 9)), 400)
			for _, r := range enginetest.Requests(p, 5, 2000) {
				reqs = append(reqs, &r)
			}
			sameDecisions(t, 0, p, want, got, reqs)
		})
	}
}
