package service

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// versioned is a policy and the stored version it is. Writers of the
// whole policy change a clone (clonePolicy); a change of users or agents
// alone changes the kept policy in place, under mu (see staged).
type versioned struct {
	// kept is the policy, but for its users while users holds them
	// (kept.Users is then nil): policy returns it whole, userList its
	// users as keptUsers. The caller holds mu for either.
	kept  *gatehouse.Policy
	users *keptUsers
	v     int64
	// valid is true when p passed validation, so a change of it needs to
	// check only what it touches (validateChange).
	valid bool
	// seq is an audit sequence number at or before which every change
	// event of version v or earlier is, and after which none of a later
	// version is: where a follower catching up by change reads on
	// (catchUp).
	seq int64
	// decl is what p declares apart from its users and agents, once
	// declared asked for it.
	decl *policy.Declared
	// aliasSet holds every alias of p's users and its normalized form,
	// once aliases asked for it; it may also hold aliases of users removed
	// since, never miss one.
	aliasSet map[string]bool
}

// policy returns the kept policy whole, its users one slice again.
func (cur *versioned) policy() *gatehouse.Policy {
	if cur.users != nil {
		cur.kept.Users, cur.users = cur.users.flat(), nil
	}
	return cur.kept
}

// userList returns the kept policy's users as keptUsers, for changing
// them in place; the first call after policy moves them there.
func (cur *versioned) userList() *keptUsers {
	if cur.users == nil {
		cur.users, cur.kept.Users = newKeptUsers(cur.kept.Users, usersChunk), nil
	}
	return cur.users
}

// allUsers yields the kept policy's users in email order, in whichever
// form they are; the entries must not be changed.
func (cur *versioned) allUsers() iter.Seq[*gatehouse.UserEntry] {
	if cur.users != nil {
		return cur.users.all()
	}
	return func(yield func(*gatehouse.UserEntry) bool) {
		for i := range cur.kept.Users {
			if !yield(&cur.kept.Users[i]) {
				return
			}
		}
	}
}

// aliases returns cur.aliasSet, computing it on first use. The caller
// holds mu.
func (cur *versioned) aliases() map[string]bool {
	if cur.aliasSet == nil {
		cur.aliasSet = map[string]bool{}
		for u := range cur.allUsers() {
			for _, a := range u.Aliases {
				cur.aliasSet[a], cur.aliasSet[gatehouse.NormalizeEmail(a)] = true, true
			}
		}
	}
	return cur.aliasSet
}

// declared returns what cur's policy, which must be valid, declares apart
// from its users and agents, computing it on first use. The caller holds mu.
func (cur *versioned) declared() *policy.Declared {
	if cur.decl == nil {
		cur.decl = policy.Declare(cur.kept)
	}
	return cur.decl
}

// base returns the stored policy a change starts from: the one the
// service keeps if the store is still at its version, brought up to the
// stored version by change when it can be (catchUp), else the stored one,
// loaded and kept. The caller holds mu and must not mutate the policy.
func (s *Service) base(ctx context.Context) (*versioned, error) {
	v, err := s.store.PolicyVersion(ctx)
	if err != nil {
		return nil, err
	}
	if c := s.current; c != nil && c.v == v {
		return c, nil
	}
	// Another instance committed: follow it by change if it can be.
	if c := s.current; c != nil && c.v < v {
		caught, err := s.catchUp(ctx, v)
		if err != nil {
			s.cfg.Logger.Warn("catching up by change failed; loading the whole policy", "version", v, "err", err)
		}
		if caught {
			return s.current, nil
		}
	}
	p, v, seq, err := s.loadKept(ctx)
	if err != nil {
		return nil, err
	}
	s.keep(p, v, false, seq)
	return s.current, nil
}

// keep makes p, which nothing else may mutate, the policy of version v
// that the next change starts from; valid says whether it passed
// validation, seq is as versioned.seq. The caller holds mu (or is Open).
func (s *Service) keep(p *gatehouse.Policy, v int64, valid bool, seq int64) {
	s.current = &versioned{kept: p, v: v, valid: valid, seq: seq}
}

// keepSubjects is keep for cur's policy changed in place in its users and
// agents alone, at version v: what it declares besides them is still cur's,
// and so are its aliases unless aliased says a change may have added one.
func (s *Service) keepSubjects(cur *versioned, v int64, valid, aliased bool, seq int64) {
	s.current = &versioned{kept: cur.kept, users: cur.users, v: v, valid: valid, seq: seq, decl: cur.decl}
	if !aliased {
		s.current.aliasSet = cur.aliasSet
	}
}

// loadKept loads the stored policy to keep, with the audit head read
// before it as its versioned.seq: events of the loaded version or earlier
// may follow it, events of later versions all do.
func (s *Service) loadKept(ctx context.Context) (*gatehouse.Policy, int64, int64, error) {
	head, err := s.store.AuditHead(ctx)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("audit head: %w", err)
	}
	p, v, err := s.load(ctx)
	return p, v, head.Seq, err
}

// validateChange returns the problems of after, a change of before. When
// before is known valid and the change leaves users, agents and what they
// refer to alone, it checks all but them; when it only creates or changes users and
// agents, which no other object refers to, it checks just those (their
// names and references, and that no email or alias of theirs names another
// user) against what before declares (policy.Declared); otherwise,
// or when an id may collide, it checks all of after (policy.Validate).
func validateChange(before *versioned, after *gatehouse.Policy, changes []gatehouse.Change) []policy.Problem {
	if !before.valid {
		return policy.Validate(after)
	}
	if keepsSubjectRefs(changes) {
		// Users and agents are as before, and so is everything they
		// refer to: check the rest.
		reduced := smallSections(after)
		reduced.Tenants, reduced.Resources = after.Tenants, after.Resources
		return policy.Validate(reduced)
	}
	touched := map[gatehouse.Kind]map[string]bool{gatehouse.KindUser: {}, gatehouse.KindAgent: {}}
	for _, c := range changes {
		ids, ok := touched[c.Kind]
		if !ok {
			return policy.Validate(after)
		}
		if c.After != nil {
			ids[c.ID] = true
		}
	}
	var (
		users           []gatehouse.UserEntry
		agents          []gatehouse.Agent
		userAt, agentAt []int
	)
	names := map[string]bool{}
	for i := range after.Users {
		if u := &after.Users[i]; touched[gatehouse.KindUser][u.Email] {
			users, userAt = append(users, *u), append(userAt, i)
			names[gatehouse.NormalizeEmail(u.Email)] = true
			for _, a := range u.Aliases {
				names[a], names[gatehouse.NormalizeEmail(a)] = true, true
			}
		}
	}
	for i := range after.Users {
		u := &after.Users[i]
		if touched[gatehouse.KindUser][u.Email] {
			continue
		}
		if names[gatehouse.NormalizeEmail(u.Email)] || slices.ContainsFunc(u.Aliases, func(a string) bool {
			return names[a] || names[gatehouse.NormalizeEmail(a)]
		}) {
			return policy.Validate(after)
		}
	}
	for i := range after.Agents {
		if a := &after.Agents[i]; touched[gatehouse.KindAgent][a.ID] {
			agents, agentAt = append(agents, *a), append(agentAt, i)
		}
	}
	// The changes touch nothing else: the rest is as valid as before's.
	problems := before.declared().CheckSubjects(users, agents)
	for i := range problems {
		problems[i].Path = reindex(reindex(problems[i].Path, "users[", userAt), "agents[", agentAt)
	}
	return problems
}

// keepsSubjectRefs reports whether changes leave users and agents, and
// every reference of theirs, valid: none changes a user or agent, nor
// removes a role, tenant, plan or permission, the kinds they refer to.
func keepsSubjectRefs(changes []gatehouse.Change) bool {
	for _, c := range changes {
		switch c.Kind {
		case gatehouse.KindUser, gatehouse.KindAgent:
			return false
		case gatehouse.KindRole, gatehouse.KindTenant, gatehouse.KindPlan, gatehouse.KindPermission:
			if c.After == nil {
				return false
			}
		}
	}
	return true
}

// reindex rewrites a path into a section of the reduced policy
// validateChange checks ("users[1].roles[0]") into the same path in the
// whole policy, at names the reduced index of each object.
func reindex(path, section string, at []int) string {
	rest, ok := strings.CutPrefix(path, section)
	if !ok {
		return path
	}
	digits, tail, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(digits)
	if !ok || err != nil || i < 0 || i >= len(at) {
		return path
	}
	return section + strconv.Itoa(at[i]) + "]" + tail
}

// clonePolicy returns a deep copy of p that shares no memory with it. The
// sections that grow with the customer base (tenants, users, agents,
// resources) are copied field by field, an object with attribute or action
// maps through JSON; the small sections go through Policy.Clone.
func clonePolicy(p *gatehouse.Policy) (*gatehouse.Policy, error) {
	c, err := smallSections(p).Clone()
	if err != nil {
		return nil, err
	}
	if c.Tenants, err = cloneEach(p.Tenants, func(t *gatehouse.Tenant) bool { return t.Attributes == nil && t.Actions == nil }); err != nil {
		return nil, err
	}
	if c.Users, err = cloneEach(p.Users, func(u *gatehouse.UserEntry) bool {
		u.Aliases, u.Tenants, u.Roles, u.Grants = slices.Clone(u.Aliases), slices.Clone(u.Tenants), slices.Clone(u.Roles), slices.Clone(u.Grants)
		return u.Attributes == nil
	}); err != nil {
		return nil, err
	}
	if c.Agents, err = cloneEach(p.Agents, func(a *gatehouse.Agent) bool {
		a.Tenants, a.Roles, a.Grants = slices.Clone(a.Tenants), slices.Clone(a.Roles), slices.Clone(a.Grants)
		return a.Attributes == nil
	}); err != nil {
		return nil, err
	}
	if c.Resources, err = cloneEach(p.Resources, func(r *gatehouse.ResourceEntry) bool { return r.Attributes == nil }); err != nil {
		return nil, err
	}
	return c, nil
}

// smallSections is p without the sections clonePolicy and diffPolicies
// handle object by object; it shares p's memory.
func smallSections(p *gatehouse.Policy) *gatehouse.Policy {
	return &gatehouse.Policy{Settings: p.Settings, Permissions: p.Permissions, Bundles: p.Bundles,
		Categories: p.Categories, Roles: p.Roles, Plans: p.Plans, Tools: p.Tools, Actions: p.Actions}
}

// cloneEach copies src element by element: deep unshares a copied
// element's slices and reports whether that made it a deep copy; one that
// holds maps is copied through JSON instead.
func cloneEach[T any](src []T, deep func(*T) bool) ([]T, error) {
	if src == nil {
		return nil, nil
	}
	dst := make([]T, len(src))
	for i := range src {
		dst[i] = src[i]
		if deep(&dst[i]) {
			continue
		}
		var zero T
		dst[i] = zero
		b, err := json.Marshal(&src[i])
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &dst[i]); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// diffPolicies returns policy.Diff(before, after) without encoding every
// object: in the sections clonePolicy copies object by object, an object
// still at its index and structurally equal to before's is unchanged, and
// only the others are encoded and compared. When a section was reordered
// or shrank, it falls back to policy.Diff.
func diffPolicies(before, after *gatehouse.Policy) ([]gatehouse.Change, error) {
	changes, err := policy.Diff(smallSections(before), smallSections(after))
	if err != nil {
		return nil, err
	}
	sections := []func() ([]gatehouse.Change, bool, error){
		func() ([]gatehouse.Change, bool, error) {
			return diffSection(gatehouse.KindTenant, before.Tenants, after.Tenants, func(t *gatehouse.Tenant) string { return t.ID }, deepEqual)
		},
		func() ([]gatehouse.Change, bool, error) {
			return diffSection(gatehouse.KindUser, before.Users, after.Users, func(u *gatehouse.UserEntry) string { return u.Email }, sameUser)
		},
		func() ([]gatehouse.Change, bool, error) {
			return diffSection(gatehouse.KindAgent, before.Agents, after.Agents, func(a *gatehouse.Agent) string { return a.ID }, deepEqual)
		},
		func() ([]gatehouse.Change, bool, error) {
			return diffSection(gatehouse.KindResource, before.Resources, after.Resources, (*gatehouse.ResourceEntry).Key, deepEqual)
		},
	}
	for _, section := range sections {
		cs, ok, err := section()
		if err != nil {
			return nil, err
		}
		if !ok {
			return policy.Diff(before, after)
		}
		changes = append(changes, cs...)
	}
	gatehouse.SortChanges(changes)
	return changes, nil
}

// diffSection diffs one section whose objects have position 0 (ordered by
// id) when after keeps before's objects at their indexes and appends any
// new ones; ok is false otherwise, or when an appended id is not new. same
// reports objects that encode alike; it may miss some (they are encoded
// and compared), never claim two that differ.
func diffSection[T any](kind gatehouse.Kind, before, after []T, id func(*T) string, same func(a, b *T) bool) (changes []gatehouse.Change, ok bool, err error) {
	if len(after) < len(before) {
		return nil, false, nil
	}
	for i := range before {
		b, a := &before[i], &after[i]
		if id(b) != id(a) {
			return nil, false, nil
		}
		if same(b, a) {
			continue
		}
		bb, err := json.Marshal(b)
		if err != nil {
			return nil, false, err
		}
		ab, err := json.Marshal(a)
		if err != nil {
			return nil, false, err
		}
		if string(bb) != string(ab) {
			changes = append(changes, gatehouse.Change{Kind: kind, ID: id(a), Before: bb, After: ab})
		}
	}
	if len(after) == len(before) {
		return changes, true, nil
	}
	known := make(map[string]bool, len(after))
	for i := range after {
		k := id(&after[i])
		if known[k] {
			return nil, false, nil
		}
		known[k] = true
	}
	for i := len(before); i < len(after); i++ {
		ab, err := json.Marshal(&after[i])
		if err != nil {
			return nil, false, err
		}
		changes = append(changes, gatehouse.Change{Kind: kind, ID: id(&after[i]), After: ab})
	}
	return changes, true, nil
}

// sameUser is reflect.DeepEqual for users, without reflection: a diff
// compares every user of the policy.
func sameUser(a, b *gatehouse.UserEntry) bool {
	return a.Email == b.Email && a.Name == b.Name && a.Superuser == b.Superuser && a.Plan == b.Plan &&
		sameSlice(a.Aliases, b.Aliases) && sameSlice(a.Tenants, b.Tenants) &&
		sameSlice(a.Roles, b.Roles) && sameSlice(a.Grants, b.Grants) &&
		(a.Attributes == nil && b.Attributes == nil || reflect.DeepEqual(a.Attributes, b.Attributes))
}

// sameSlice is slices.Equal that tells nil from empty, as `omitzero`
// encodes them.
func sameSlice[T comparable](a, b []T) bool {
	return (a == nil) == (b == nil) && slices.Equal(a, b)
}

func deepEqual[T any](a, b *T) bool { return reflect.DeepEqual(a, b) }

// sortByID puts the sections clonePolicy copies object by object in the
// order a load from the store gives (by id), so that a policy kept after a
// change that added or reordered objects is the one a fresh load would
// give, problem paths included. A sorted section costs one pass.
func sortByID(p *gatehouse.Policy) {
	sortSection(p.Tenants, func(t *gatehouse.Tenant) string { return t.ID })
	sortSection(p.Users, func(u *gatehouse.UserEntry) string { return u.Email })
	sortSection(p.Agents, func(a *gatehouse.Agent) string { return a.ID })
	sortSection(p.Resources, (*gatehouse.ResourceEntry).Key)
}

func sortSection[T any](s []T, id func(*T) string) {
	cmp := func(a, b T) int { return strings.Compare(id(&a), id(&b)) }
	if !slices.IsSortedFunc(s, cmp) {
		slices.SortStableFunc(s, cmp)
	}
}
