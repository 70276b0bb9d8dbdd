package engine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
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
// It runs in every layout (inLayouts).
func TestWithSubjectsMatchesCompile(t *testing.T) { inLayouts(t, testWithSubjectsMatchesCompile) }

// inLayouts runs test with the default layout of subjects, with every
// subject's sources merged into permission sets, and with no user's record
// placed by the hash of its email.
func inLayouts(t *testing.T, test func(t *testing.T)) {
	t.Run("default", test)
	t.Run("merged", func(t *testing.T) {
		defer engine.SetMergeAbove(0)()
		test(t)
	})
	t.Run("unplaced", func(t *testing.T) {
		defer engine.SetPlaceUsers(false)()
		test(t)
	})
}

// kept is a policy and the snapshot derived or compiled for it.
type kept struct {
	p    *gatehouse.Policy
	snap *engine.Snapshot
}

func testWithSubjectsMatchesCompile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 19))
	p := testPolicy()
	snap, err := engine.Compile(p, 1)
	if err != nil {
		t.Fatal(err)
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

// TestDeriveDeclines: changes a derivation does not make are left to
// Compile, DerivableDelta says so beforehand, and the snapshot derived
// from stays as it was.
func TestDeriveDeclines(t *testing.T) {
	s, err := engine.Compile(aliasPolicy(), 1)
	if err != nil {
		t.Fatal(err)
	}
	sara := testPolicy().Users[1]
	gone, ok, err := s.Derive(2, engine.SubjectDelta{RemoveUsers: []string{"olga@acme.example"}, RemoveAgents: []string{"team-bot"}})
	if !ok || err != nil {
		t.Fatalf("Derive removing olga and team-bot = %v, %v", ok, err)
	}
	newCondition := sara
	newCondition.Grants = []gatehouse.Grant{{Permission: "chat.view", Condition: "true"}}
	cases := []struct {
		name string
		from *engine.Snapshot
		d    engine.SubjectDelta
	}{
		{"new condition", s, engine.SubjectDelta{Users: []gatehouse.UserEntry{newCondition}}},
		{"removal of an unknown user", s, engine.SubjectDelta{RemoveUsers: []string{"ghost@example.com"}}},
		{"removal of an unknown agent", s, engine.SubjectDelta{RemoveAgents: []string{"ghost-bot"}}},
		{"removal of a removed user", gone, engine.SubjectDelta{RemoveUsers: []string{"Olga@acme.example"}}},
		{"removal of a removed agent", gone, engine.SubjectDelta{RemoveAgents: []string{"team-bot"}}},
		{"removal by alias", s, engine.SubjectDelta{RemoveUsers: []string{"ursula.u"}}},
	}
	req := &gatehouse.Request{Subject: user("sara@acme.example"), Permission: "chat.view"}
	before := s.Check(req)
	for _, tc := range cases {
		if tc.from.DerivableDelta(tc.d) {
			t.Errorf("%s: DerivableDelta = true, want false", tc.name)
		}
		if got, ok, err := tc.from.Derive(3, tc.d); ok || err != nil || got != nil {
			t.Errorf("%s: Derive = %v, %v, %v; want nil, false, nil", tc.name, got, ok, err)
		}
	}
	if after := s.Check(req); after != before {
		t.Errorf("Check changed after declined derivations: %+v, was %+v", after, before)
	}
	for name, d := range map[string]engine.SubjectDelta{
		"new user":  {Users: []gatehouse.UserEntry{{Email: "new@example.com", Aliases: []string{"n1"}}}},
		"new agent": {Agents: []gatehouse.Agent{{ID: "new-bot"}}},
		"new alias": {Users: []gatehouse.UserEntry{func() gatehouse.UserEntry { u := sara; u.Aliases = []string{"s1"}; return u }()}},
		"removal":   {RemoveUsers: []string{"SARA@acme.example"}},
	} {
		if !s.DerivableDelta(d) {
			t.Errorf("%s: DerivableDelta = false, want true", name)
		}
	}
}

// TestDeriveInvalid: a delta that refers to what the policy does not
// declare, or names a subject twice, is an error wrapping ErrInvalid, as
// Compile's would be.
func TestDeriveInvalid(t *testing.T) {
	s, err := engine.Compile(aliasPolicy(), 1)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]engine.SubjectDelta{
		"unknown role":           {Users: []gatehouse.UserEntry{{Email: "new@example.com", Roles: []gatehouse.Assignment{{Role: "no such role"}}}}},
		"unknown plan":           {Users: []gatehouse.UserEntry{{Email: "new@example.com", Plan: "platinum"}}},
		"unknown tenant":         {Users: []gatehouse.UserEntry{{Email: "new@example.com", Tenants: []string{"nowhere"}}}},
		"unknown scope":          {Agents: []gatehouse.Agent{{ID: "new-bot", Grants: []gatehouse.Grant{{Permission: "chat.view", Tenant: "nowhere"}}}}},
		"unknown permission":     {Agents: []gatehouse.Agent{{ID: "support-bot", Grants: []gatehouse.Grant{{Permission: "no.such"}}}}},
		"empty email":            {Users: []gatehouse.UserEntry{{Email: " "}}},
		"empty agent id":         {Agents: []gatehouse.Agent{{ID: ""}}},
		"changed and removed":    {Users: []gatehouse.UserEntry{{Email: "sara@acme.example"}}, RemoveUsers: []string{"Sara@acme.example"}},
		"removed twice":          {RemoveAgents: []string{"team-bot", "team-bot"}},
		"alias of another user":  {Users: []gatehouse.UserEntry{{Email: "new@example.com", Aliases: []string{"ursula.u"}}}},
		"alias is another email": {Users: []gatehouse.UserEntry{{Email: "new@example.com", Aliases: []string{"Sara@ACME.example"}}}},
		"email is another alias": {Users: []gatehouse.UserEntry{{Email: "U1@example.com"}}},
		"alias claimed twice":    {Users: []gatehouse.UserEntry{{Email: "a@example.com", Aliases: []string{"x"}}, {Email: "b@example.com", Aliases: []string{"x"}}}},
		"blank alias":            {Users: []gatehouse.UserEntry{{Email: "a@example.com", Aliases: []string{" x"}}}},
	}
	for name, d := range cases {
		got, ok, err := s.Derive(2, d)
		if !errors.Is(err, gatehouse.ErrInvalid) || ok || got != nil {
			t.Errorf("%s: Derive = %v, %v, %v; want an error wrapping ErrInvalid", name, got, ok, err)
		}
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

// TestPlacedUsersDecideAlike: users' records placed by the hash of their
// emails and laid out one after another decide, explain and report alike,
// on the fixture, on a policy with aliases, and on generated policies whose
// users have few sources, many (merged) or a spread of them, some users'
// records then longer than a place.
func TestPlacedUsersDecideAlike(t *testing.T) {
	short, many, mixed := enginetest.DefaultConfig(), enginetest.DefaultConfig(), enginetest.DefaultConfig()
	short.Users, short.Tenants, short.Grants = 300, 20, 0
	many.Users, many.Tenants, many.Permissions, many.Grants = 150, 20, 200, 24
	mixed.Users, mixed.Tenants, mixed.MaxAssignments, mixed.Grants = 500, 25, 11, 0
	policies := map[string]*gatehouse.Policy{
		"fixture": testPolicy(), "aliases": aliasPolicy(),
		"short": enginetest.Generate(short), "many": enginetest.Generate(many), "mixed": enginetest.Generate(mixed),
	}
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			want, err := engine.Compile(p, 1)
			if err != nil {
				t.Fatal(err)
			}
			restore := engine.SetPlaceUsers(false)
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

// aliasPolicy is testPolicy with aliases: ursula is also "ursula.u" and
// "U1@example.com".
func aliasPolicy() *gatehouse.Policy {
	p := testPolicy()
	p.Users[4].Aliases = []string{"ursula.u", "U1@example.com"}
	return p
}

// deriveUniverse are the ids random deltas and requests draw from: the
// fixture's users and agents, users and agents the deltas create, and
// aliases, some of them shaped like emails in other cases.
type deriveUniverse struct {
	emails, aliases, agents []string
}

func newDeriveUniverse() *deriveUniverse {
	u := &deriveUniverse{}
	p := testPolicy()
	for _, e := range p.Users {
		u.emails = append(u.emails, e.Email)
	}
	for i := range 8 {
		u.emails = append(u.emails, fmt.Sprintf("new%d@example.com", i))
	}
	u.aliases = []string{"a0", "a1", "a2", "a3", "a4", "ursula.u", "U1@example.com", "New1@Example.com", "NEW2@example.com", "Sara@Acme.example", "carl@acme.example"}
	for _, a := range p.Agents {
		u.agents = append(u.agents, a.ID)
	}
	u.agents = append(u.agents, "new-bot-0", "new-bot-1", "new-bot-2")
	return u
}

// cased returns id with its first letter upper-cased half of the time.
func cased(rng *rand.Rand, id string) string {
	if rng.IntN(2) == 0 {
		return id
	}
	return strings.ToUpper(id[:1]) + id[1:]
}

// randomDelta changes p's users and agents at random, one to three
// changes: edits as randomSubjectChange makes them, alias changes,
// creations (of new subjects and of removed ones again) and removals. It
// returns the delta that makes the same change.
func randomDelta(rng *rand.Rand, p *gatehouse.Policy, u *deriveUniverse) engine.SubjectDelta {
	var d engine.SubjectDelta
	named := map[string]bool{}
	upsertUser := func(e gatehouse.UserEntry) {
		key := gatehouse.NormalizeEmail(e.Email)
		if i := slices.IndexFunc(p.Users, func(x gatehouse.UserEntry) bool { return gatehouse.NormalizeEmail(x.Email) == key }); i >= 0 {
			p.Users[i] = e
		} else {
			p.Users = append(p.Users, e)
		}
		d.Users = append(d.Users, e)
		named["user:"+key] = true
	}
	aliases := func() []string {
		var out []string
		for range rng.IntN(3) {
			out = append(out, u.aliases[rng.IntN(len(u.aliases))])
		}
		return out
	}
	for range 1 + rng.IntN(3) {
		switch op := rng.IntN(10); {
		case op < 3 && len(p.Agents) > 0 && slices.ContainsFunc(p.Users, func(x gatehouse.UserEntry) bool { return len(x.Grants) > 0 }):
			// An edit of a user or agent that keeps its ids.
			// What it changes is in p, so not removed.
			users, agents := randomSubjectChange(rng, p)
			for _, e := range users {
				named["user:"+gatehouse.NormalizeEmail(e.Email)] = true
				d.Users = append(d.Users, e)
			}
			for _, a := range agents {
				named["agent:"+a.ID] = true
				d.Agents = append(d.Agents, a)
			}
		case op < 5 && len(p.Users) > 0:
			// New aliases for a user.
			e := p.Users[rng.IntN(len(p.Users))]
			e.Aliases = aliases()
			upsertUser(e)
		case op < 7:
			// A user created, or created again.
			email := cased(rng, u.emails[rng.IntN(len(u.emails))])
			if removedIn(d.RemoveUsers, email) {
				continue
			}
			e := gatehouse.UserEntry{Email: email, Aliases: aliases(), Superuser: rng.IntN(8) == 0}
			if len(p.Roles) > 0 && rng.IntN(3) > 0 {
				e.Roles = []gatehouse.Assignment{{Role: p.Roles[rng.IntN(len(p.Roles))].Name}}
			}
			if rng.IntN(2) == 0 {
				e.Tenants = []string{p.Tenants[rng.IntN(len(p.Tenants))].ID}
			}
			upsertUser(e)
		case op < 8 && len(p.Users) > 1:
			// A user removed.
			e := p.Users[rng.IntN(len(p.Users))]
			key := gatehouse.NormalizeEmail(e.Email)
			if named["user:"+key] {
				continue
			}
			named["user:"+key] = true
			p.Users = slices.DeleteFunc(p.Users, func(x gatehouse.UserEntry) bool { return gatehouse.NormalizeEmail(x.Email) == key })
			d.RemoveUsers = append(d.RemoveUsers, cased(rng, key))
		case op < 9:
			// An agent created, or created again.
			id := u.agents[rng.IntN(len(u.agents))]
			if slices.Contains(d.RemoveAgents, id) {
				continue
			}
			named["agent:"+id] = true
			a := gatehouse.Agent{ID: id, Tenants: []string{p.Tenants[rng.IntN(len(p.Tenants))].ID}}
			if len(p.Roles) > 0 {
				a.Roles = []gatehouse.Assignment{{Role: p.Roles[rng.IntN(len(p.Roles))].Name}}
			}
			if i := slices.IndexFunc(p.Agents, func(x gatehouse.Agent) bool { return x.ID == id }); i >= 0 {
				p.Agents[i] = a
			} else {
				p.Agents = append(p.Agents, a)
			}
			d.Agents = append(d.Agents, a)
		case len(p.Agents) > 0:
			// An agent removed.
			id := p.Agents[rng.IntN(len(p.Agents))].ID
			if named["agent:"+id] {
				continue
			}
			named["agent:"+id] = true
			p.Agents = slices.DeleteFunc(p.Agents, func(x gatehouse.Agent) bool { return x.ID == id })
			d.RemoveAgents = append(d.RemoveAgents, id)
		}
	}
	return d
}

// removedIn reports whether removals name email.
func removedIn(removals []string, email string) bool {
	return slices.ContainsFunc(removals, func(r string) bool { return gatehouse.NormalizeEmail(r) == gatehouse.NormalizeEmail(email) })
}

// universeRequests draws requests about every id of u.
func universeRequests(rng *rand.Rand, u *deriveUniverse, n int) []*gatehouse.Request {
	p := testPolicy()
	var subjects []gatehouse.SubjectRef
	for _, e := range u.emails {
		subjects = append(subjects, user(e), user(strings.ToUpper(e)))
	}
	for _, a := range u.aliases {
		subjects = append(subjects, user(a))
	}
	for _, a := range u.agents {
		subjects = append(subjects, agent(a))
	}
	var perms []string
	for _, pm := range p.Permissions {
		perms = append(perms, pm.Name)
	}
	tenants := []string{""}
	for _, tn := range p.Tenants {
		tenants = append(tenants, tn.ID)
	}
	out := make([]*gatehouse.Request, n)
	for i := range out {
		r := &gatehouse.Request{
			Subject:    subjects[rng.IntN(len(subjects))],
			Permission: perms[rng.IntN(len(perms))],
			Tenant:     tenants[rng.IntN(len(tenants))],
			Context:    map[string]any{"report_kind": "daily", "amount": 3},
		}
		if rng.IntN(3) == 0 {
			r.Subject = agent(u.agents[rng.IntN(len(u.agents))])
			r.OnBehalfOf = subjects[rng.IntN(len(subjects))]
		}
		out[i] = r
	}
	return out
}

// sameListings fails the test where got answers a question about an id of
// u differently from want.
func sameListings(t *testing.T, step int, want, got *engine.Snapshot, u *deriveUniverse) {
	t.Helper()
	for _, typ := range []gatehouse.SubjectType{gatehouse.SubjectUser, gatehouse.SubjectAgent} {
		if g, w := got.SubjectIDs(typ), want.SubjectIDs(typ); !slices.Equal(g, w) {
			t.Fatalf("step %d: SubjectIDs(%s) = %v, Compile gives %v", step, typ, g, w)
		}
	}
	var refs []gatehouse.SubjectRef
	for _, id := range append(slices.Clone(u.emails), u.aliases...) {
		refs = append(refs, user(id), user(strings.ToUpper(id)))
		if g, w := got.UserID(id), want.UserID(id); g != w {
			t.Fatalf("step %d: UserID(%q) = %q, Compile gives %q", step, id, g, w)
		}
		if g, w := got.VisibleTenants(id), want.VisibleTenants(id); !slices.Equal(g, w) {
			t.Fatalf("step %d: VisibleTenants(%q) = %v, Compile gives %v", step, id, g, w)
		}
		if g, w := got.IsSuperuser(id), want.IsSuperuser(id); g != w {
			t.Fatalf("step %d: IsSuperuser(%q) = %v, Compile gives %v", step, id, g, w)
		}
	}
	for _, id := range u.agents {
		refs = append(refs, agent(id))
		if g, w := got.AgentTenants(id), want.AgentTenants(id); !slices.Equal(g, w) {
			t.Fatalf("step %d: AgentTenants(%q) = %v, Compile gives %v", step, id, g, w)
		}
	}
	for _, ref := range refs {
		for _, tn := range []string{"", "acme-berlin", "globex"} {
			g, gerr := got.Effective(ref, tn)
			w, werr := want.Effective(ref, tn)
			if !reflect.DeepEqual(g, w) || !reflect.DeepEqual(gerr, werr) {
				t.Fatalf("step %d: Effective(%s, %q) = %+v, %v; Compile gives %+v, %v", step, ref, tn, g, gerr, w, werr)
			}
		}
	}
}

// TestDeriveMatchesCompile: a snapshot derived by a random sequence of
// deltas — edits, alias changes and moves, users and agents created,
// removed and created again — from the newest snapshot or now and then
// from an older one, decides, explains and lists as a Compile of the same
// policy does; a delta Compile refuses, Derive refuses too. It runs twice:
// with the default layout, and with every subject's sources merged into
// permission sets.
func TestDeriveMatchesCompile(t *testing.T) { inLayouts(t, testDeriveMatchesCompile) }

func testDeriveMatchesCompile(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 19))
	u := newDeriveUniverse()
	p := aliasPolicy()
	snap, err := engine.Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	history := []kept{{clonePolicy(t, p), snap}}
	reqs := append(randomRequests(rng, 200), universeRequests(rng, u, 300)...)
	derived, refused := 0, 0
	kinds := map[string]int{}
	for step := range 400 {
		base := history[len(history)-1]
		if rng.IntN(5) == 0 {
			base = history[rng.IntN(len(history))]
		}
		next := clonePolicy(t, base.p)
		d := randomDelta(rng, next, u)
		countDelta(kinds, base.p, d)
		version := base.snap.Version() + 1
		want, wantErr := engine.Compile(next, version)
		derivable := base.snap.DerivableDelta(d)
		got, ok, err := base.snap.Derive(version, d)
		if derivable != (ok || err != nil) {
			t.Fatalf("step %d: DerivableDelta = %v, Derive = %v, %v", step, derivable, ok, err)
		}
		if !ok && err == nil {
			got, err = engine.Compile(next, version)
		} else if ok {
			derived++
		}
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("step %d: Derive(%+v) error %v, Compile error %v", step, d, err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, gatehouse.ErrInvalid) {
				t.Fatalf("step %d: Derive error %v does not wrap ErrInvalid", step, err)
			}
			refused++
			continue
		}
		sameDecisions(t, step, next, want, got, reqs)
		sameListings(t, step, want, got, u)
		history = append(history, kept{next, got})
	}
	if derived < 250 || refused == 0 {
		t.Errorf("%d of 400 deltas derived, %d refused; want at least 250 and some", derived, refused)
	}
	for _, k := range []string{"user created", "user created again", "user removed", "aliases changed", "agent created", "agent removed"} {
		if kinds[k] < 10 {
			t.Errorf("only %d deltas with %s: %v", kinds[k], k, kinds)
		}
	}
}

// countDelta counts the kinds of change d makes to p in kinds.
func countDelta(kinds map[string]int, p *gatehouse.Policy, d engine.SubjectDelta) {
	original := testPolicy()
	for _, e := range d.Users {
		i := slices.IndexFunc(p.Users, func(x gatehouse.UserEntry) bool {
			return gatehouse.NormalizeEmail(x.Email) == gatehouse.NormalizeEmail(e.Email)
		})
		switch {
		case i < 0 && slices.ContainsFunc(original.Users, func(x gatehouse.UserEntry) bool { return x.Email == gatehouse.NormalizeEmail(e.Email) }):
			kinds["user created again"]++
		case i < 0:
			kinds["user created"]++
		case !slices.Equal(p.Users[i].Aliases, e.Aliases):
			kinds["aliases changed"]++
		}
	}
	for _, a := range d.Agents {
		if !slices.ContainsFunc(p.Agents, func(x gatehouse.Agent) bool { return x.ID == a.ID }) {
			kinds["agent created"]++
		}
	}
	kinds["user removed"] += len(d.RemoveUsers)
	kinds["agent removed"] += len(d.RemoveAgents)
}

// TestDeriveConcurrent: chains of random deltas derived from one snapshot
// at once (run with -race) each end where a Compile of their own policy
// does, and the snapshot they started from still decides as before.
func TestDeriveConcurrent(t *testing.T) {
	u := newDeriveUniverse()
	p := aliasPolicy()
	base, err := engine.Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	reqs := universeRequests(rand.New(rand.NewPCG(3, 4)), u, 300)
	before := make([]gatehouse.Decision, len(reqs))
	for i, r := range reqs {
		before[i] = base.Check(r)
	}
	type result struct {
		p    *gatehouse.Policy
		snap *engine.Snapshot
		err  error
	}
	results := make([]result, 6)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 2))
			cur, snap := aliasPolicy(), base
			for range 30 {
				next, err := cur.Clone()
				if err != nil {
					results[i].err = err
					return
				}
				d := randomDelta(rng, next, u)
				derived, ok, err := snap.Derive(snap.Version()+1, d)
				if err != nil || !ok {
					continue
				}
				cur, snap = next, derived
			}
			results[i] = result{p: cur, snap: snap}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		want, err := engine.Compile(r.p, r.snap.Version())
		if err != nil {
			t.Fatal(err)
		}
		sameDecisions(t, i, r.p, want, r.snap, reqs)
		sameListings(t, i, want, r.snap, u)
	}
	for i, r := range reqs {
		if d := base.Check(r); d != before[i] {
			t.Errorf("Check(%s) on the base = %+v after derivations, was %+v", reqString(r), d, before[i])
		}
	}
}

// TestDerivedCheckAllocs: Check does not allocate on a derived snapshot
// either, for users found through the overlay (added, renamed, by alias,
// in another case) and for removed ones.
func TestDerivedCheckAllocs(t *testing.T) {
	s, err := engine.Compile(aliasPolicy(), 1)
	if err != nil {
		t.Fatal(err)
	}
	s, ok, err := s.Derive(2, engine.SubjectDelta{
		Users: []gatehouse.UserEntry{
			{Email: "New@Example.com", Aliases: []string{"n1", "U1@example.com"}, Roles: []gatehouse.Assignment{{Role: "Chat User"}}},
			{Email: "ursula@example.org", Aliases: []string{"ursula.u"}, Roles: []gatehouse.Assignment{{Role: "Chat User"}}},
		},
		Agents:      []gatehouse.Agent{{ID: "new-bot", Roles: []gatehouse.Assignment{{Role: "Chat User"}}}},
		RemoveUsers: []string{"olga@acme.example"},
	})
	if !ok || err != nil {
		t.Fatalf("Derive = %v, %v", ok, err)
	}
	cases := []struct {
		req  *gatehouse.Request
		want gatehouse.Reason
	}{
		{&gatehouse.Request{Subject: user("sara@acme.example"), Permission: "chat.view"}, granted},
		{&gatehouse.Request{Subject: user("new@example.com"), Permission: "chat.view"}, granted},
		{&gatehouse.Request{Subject: user("NEW@example.com"), Permission: "chat.view"}, granted},
		{&gatehouse.Request{Subject: user("U1@example.com"), Permission: "chat.view"}, granted},
		{&gatehouse.Request{Subject: user("ursula.u"), Permission: "chat.view"}, granted},
		{&gatehouse.Request{Subject: user("Olga@acme.example"), Permission: "chat.view"}, unknownSub},
		{&gatehouse.Request{Subject: user("ghost@example.com"), Permission: "chat.view"}, unknownSub},
		{&gatehouse.Request{Subject: agent("new-bot"), OnBehalfOf: user("n1"), Permission: "chat.view"}, granted},
	}
	for _, tc := range cases {
		if d := s.Check(tc.req); d.Reason != tc.want {
			t.Errorf("Check(%s) = %s, want %s", reqString(tc.req), d.Reason, tc.want)
		}
		if n := testing.AllocsPerRun(100, func() { s.Check(tc.req) }); n != 0 {
			t.Errorf("Check(%s) allocates %v times, want 0", reqString(tc.req), n)
		}
	}
}

// applyDelta changes p as d says.
func applyDelta(p *gatehouse.Policy, d engine.SubjectDelta) {
	for _, e := range d.RemoveUsers {
		p.Users = slices.DeleteFunc(p.Users, func(x gatehouse.UserEntry) bool {
			return gatehouse.NormalizeEmail(x.Email) == gatehouse.NormalizeEmail(e)
		})
	}
	for _, id := range d.RemoveAgents {
		p.Agents = slices.DeleteFunc(p.Agents, func(x gatehouse.Agent) bool { return x.ID == id })
	}
	for _, e := range d.Users {
		if i := slices.IndexFunc(p.Users, func(x gatehouse.UserEntry) bool {
			return gatehouse.NormalizeEmail(x.Email) == gatehouse.NormalizeEmail(e.Email)
		}); i >= 0 {
			p.Users[i] = e
		} else {
			p.Users = append(p.Users, e)
		}
	}
	for _, a := range d.Agents {
		if i := slices.IndexFunc(p.Agents, func(x gatehouse.Agent) bool { return x.ID == a.ID }); i >= 0 {
			p.Agents[i] = a
		} else {
			p.Agents = append(p.Agents, a)
		}
	}
}

// TestDeriveAliasMoves: aliases move from a removed user to a new one, to
// the removed user created again, between two users at once, and go; each
// step derives and decides as Compile does.
func TestDeriveAliasMoves(t *testing.T) {
	chat := []gatehouse.Assignment{{Role: "Chat User"}}
	steps := []struct {
		d engine.SubjectDelta
		// names maps ids to the user they must name, "" for none.
		names map[string]string
	}{
		{engine.SubjectDelta{
			RemoveUsers: []string{"ursula@example.org"},
			Users:       []gatehouse.UserEntry{{Email: "n@example.com", Aliases: []string{"ursula.u"}, Roles: chat}},
		}, map[string]string{"ursula.u": "n@example.com", "U1@example.com": "", "ursula@example.org": ""}},
		{engine.SubjectDelta{
			Users: []gatehouse.UserEntry{{Email: "Ursula@example.org", Aliases: []string{"U1@example.com"}}},
		}, map[string]string{"ursula.u": "n@example.com", "U1@example.com": "ursula@example.org", "ursula@example.org": "ursula@example.org"}},
		{engine.SubjectDelta{
			Users: []gatehouse.UserEntry{{Email: "n@example.com", Aliases: []string{"n1"}, Roles: chat}, {Email: "sara@acme.example", Aliases: []string{"ursula.u", "s1"}}},
		}, map[string]string{"ursula.u": "sara@acme.example", "n1": "n@example.com", "s1": "sara@acme.example"}},
		{engine.SubjectDelta{
			Users: []gatehouse.UserEntry{{Email: "n@example.com", Aliases: []string{"s1"}, Roles: chat}, {Email: "sara@acme.example", Aliases: []string{"n1", "ursula.u"}}},
		}, map[string]string{"ursula.u": "sara@acme.example", "n1": "sara@acme.example", "s1": "n@example.com"}},
		{engine.SubjectDelta{RemoveUsers: []string{"N@example.com"}, Users: []gatehouse.UserEntry{{Email: "sara@acme.example"}}},
			map[string]string{"ursula.u": "", "n1": "", "s1": "", "n@example.com": "", "sara@acme.example": "sara@acme.example"}},
		{engine.SubjectDelta{Users: []gatehouse.UserEntry{{Email: "n@example.com", Aliases: []string{"ursula.u"}}}},
			map[string]string{"ursula.u": "n@example.com", "n@example.com": "n@example.com"}},
	}
	p := aliasPolicy()
	snap, err := engine.Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	u := newDeriveUniverse()
	u.emails = append(u.emails, "n@example.com")
	u.aliases = append(u.aliases, "n1", "s1")
	reqs := universeRequests(rand.New(rand.NewPCG(5, 6)), u, 300)
	for i, st := range steps {
		applyDelta(p, st.d)
		next, ok, err := snap.Derive(snap.Version()+1, st.d)
		if !ok || err != nil {
			t.Fatalf("step %d: Derive = %v, %v", i, ok, err)
		}
		want, err := engine.Compile(p, next.Version())
		if err != nil {
			t.Fatalf("step %d: Compile: %v", i, err)
		}
		for id, email := range st.names {
			got := next.Check(&gatehouse.Request{Subject: user(id), Permission: "chat.view"})
			if (got.Reason == unknownSub) != (email == "") {
				t.Errorf("step %d: Check(%s) = %s; want it to name %q", i, id, got.Reason, email)
			}
			if email != "" && next.UserID(email) != want.UserID(email) {
				t.Errorf("step %d: UserID(%s) = %q, want %q", i, email, next.UserID(email), want.UserID(email))
			}
		}
		sameDecisions(t, i, p, want, next, reqs)
		sameListings(t, i, want, next, u)
		snap = next
	}
}
