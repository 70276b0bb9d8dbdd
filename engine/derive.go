package engine

import (
	"fmt"
	"slices"
	"sync"

	"github.com/gatehouse/gatehouse"
)

// lineage is shared by a compiled snapshot and every snapshot derived from
// it (WithSubjects). Derived snapshots append to their base's pools (the
// permission-set slab, visPool, records, sourcePool, condPool) in place,
// past the end the base reads, which is safe only for the newest snapshot
// of the lineage: tip. A snapshot derived from any other copies the pools
// it appends to. WithSubjects is safe for concurrent use.
type lineage struct {
	mu  sync.Mutex
	tip *Snapshot
}

// maxDerived bounds how many subject records a lineage re-derives before
// WithSubjects asks for a full Compile: the records a derivation replaces
// stay in the pools unused, and a Compile drops them.
func maxDerived(subjects int32) int { return 1024 + int(subjects) }

// WithSubjects returns the snapshot at version that Compile would give for
// the policy s was compiled from with the users and agents given replacing
// those with the same email or id, without compiling the rest: it rebuilds
// only their records and shares everything else with s, which does not
// change. ok is false, and the caller must Compile, when the change is not
// one a derivation makes: a user or agent s does not hold (a new subject),
// a user whose aliases differ, a condition s never compiled, or a lineage
// that re-derived too many records since its Compile. An unknown role,
// permission, plan or tenant is an error wrapping gatehouse.ErrInvalid, as
// from Compile.
func (s *Snapshot) WithSubjects(version int64, users []gatehouse.UserEntry, agents []gatehouse.Agent) (snap *Snapshot, ok bool, err error) {
	if s == nil || s.lineage == nil {
		return nil, false, nil
	}
	defer func() {
		if r := recover(); r != nil {
			snap, ok, err = nil, false, fmt.Errorf("compile policy version %d: internal error: %v", version, r)
		}
	}()
	if s.derived+len(users)+len(agents) > maxDerived(s.subjects.len()) {
		return nil, false, nil
	}
	at := make([]int32, 0, len(users)+len(agents))
	for i := range users {
		si, same := s.sameUser(&users[i])
		if !same {
			return nil, false, nil
		}
		at = append(at, si)
	}
	for i := range agents {
		si, found := s.agentIdx[agents[i].ID]
		if !found {
			return nil, false, nil
		}
		at = append(at, si)
	}
	c := &compiler{s: s.derivedCopy(version), deriving: true}
	c.bits = make([]uint64, s.sets.words)
	c.roleIdx = make(map[string]int32, len(s.roles))
	for i, r := range s.roles {
		c.roleIdx[r.name] = int32(i)
	}
	c.planIdx = make(map[string]int32, len(s.plans))
	for i, p := range s.plans {
		c.planIdx[p] = int32(i)
	}
	ns := c.s
	// The pages of recOff, subjects and email slots this derivation copied.
	owned := [3]map[int32]bool{{}, {}, {}}
	for i := range users {
		u := &users[i]
		if !s.knownConditions(u.Roles, u.Grants) {
			return nil, false, nil
		}
		old := s.subjects.at(at[i])
		sub := subject{ref: old.ref, attrs: cloneMap(u.Attributes), alias: old.alias, aliases: old.aliases}
		h := subjectHot{superuser: u.Superuser, plan: -1}
		if u.Plan != "" {
			pl, found := c.planIdx[u.Plan]
			if !found {
				return nil, false, fmt.Errorf("compile policy version %d: %w", version, gatehouse.Invalidf("user %q: unknown plan %q", old.ref.ID, u.Plan))
			}
			h.plan = pl
		}
		if err := c.derivedSubject(&sub, &h, s.hotAt(at[i]), u.Tenants, u.Roles, u.Grants); err != nil {
			return nil, false, fmt.Errorf("compile policy version %d: user %q: %w", version, old.ref.ID, err)
		}
		off := c.putRecord(at[i], &h, old.ref.ID)
		ns.recOff.put(at[i], off, owned[0])
		ns.subjects.put(at[i], sub, owned[1])
		pos, _ := ns.emails.slot(ns, old.ref.ID)
		ns.emails.setSlot(pos, old.ref.ID, off, owned[2])
	}
	for i := range agents {
		a, si := &agents[i], at[len(users)+i]
		if !s.knownConditions(a.Roles, a.Grants) {
			return nil, false, nil
		}
		sub := subject{ref: s.subjects.at(si).ref, attrs: cloneMap(a.Attributes)}
		h := subjectHot{plan: -1}
		if err := c.derivedSubject(&sub, &h, s.hotAt(si), a.Tenants, a.Roles, a.Grants); err != nil {
			return nil, false, fmt.Errorf("compile policy version %d: agent %q: %w", version, a.ID, err)
		}
		ns.recOff.put(si, c.putRecord(si, &h, ""), owned[0])
		ns.subjects.put(si, sub, owned[1])
	}
	ns.derived += len(at)
	s.lineage.mu.Lock()
	s.lineage.tip = ns
	s.lineage.mu.Unlock()
	return ns, true, nil
}

// derivedCopy returns a shallow copy of s at version that owns its lists of
// pages and its set table header. Unless s is its lineage's tip, which it
// then claims, the pools are clipped to their length, so that appending to
// them copies. A derivation that fails leaves the lineage without a tip.
func (s *Snapshot) derivedCopy(version int64) *Snapshot {
	ns := *s
	ns.version = version
	ns.recOff, ns.subjects = s.recOff.cloneList(), s.subjects.cloneList()
	ns.emails.slots = s.emails.slots.cloneList()
	sets := *s.sets
	ns.sets = &sets
	// Claimed for this derivation alone: a concurrent one from s copies.
	s.lineage.mu.Lock()
	tip := s.lineage.tip == s
	if tip {
		s.lineage.tip = nil
	}
	s.lineage.mu.Unlock()
	if !tip {
		ns.sets.slab = slices.Clip(ns.sets.slab)
		ns.visPool = slices.Clip(ns.visPool)
		ns.records = slices.Clip(ns.records)
		ns.sourcePool = slices.Clip(ns.sourcePool)
		ns.condPool = slices.Clip(ns.condPool)
	}
	return &ns
}

// sameUser finds u's record and reports whether u keeps the ids it has in
// s: its email and exactly the aliases that name it.
func (s *Snapshot) sameUser(u *gatehouse.UserEntry) (int32, bool) {
	si, _, ok := s.lookupEmail(gatehouse.NormalizeEmail(u.Email))
	if !ok {
		return 0, false
	}
	sub := s.subjects.at(si)
	first := ""
	if len(u.Aliases) > 0 {
		first = u.Aliases[0]
	}
	if first != sub.alias {
		return 0, false
	}
	distinct := int32(0)
	for i, a := range u.Aliases {
		if other, ok := s.aliasIdx[a]; !ok || other != si {
			return 0, false
		}
		if !slices.Contains(u.Aliases[:i], a) {
			distinct++
		}
	}
	return si, distinct == sub.aliases
}

// knownConditions reports whether s compiled every condition of roles and
// grants.
func (s *Snapshot) knownConditions(roles []gatehouse.Assignment, grants []gatehouse.Grant) bool {
	known := func(expr string) bool {
		return expr == "" || slices.ContainsFunc(s.conds, func(c condition) bool { return c.expr == expr })
	}
	for _, a := range roles {
		if !known(a.Condition) {
			return false
		}
	}
	for _, g := range grants {
		if !known(g.Condition) {
			return false
		}
	}
	return true
}

// derivedSubject is subject for a derivation: conditions are those s
// compiled, and a tenant list equal to the one old has keeps its span.
func (c *compiler) derivedSubject(sub *subject, h *subjectHot, old subjectHot, tenants []string, roles []gatehouse.Assignment, grants []gatehouse.Grant) error {
	c.condIdx = make(map[string]int32)
	for _, a := range roles {
		c.knowCondition(a.Condition)
	}
	for _, g := range grants {
		c.knowCondition(g.Condition)
	}
	c.oldVisible = old.visible
	return c.subject(sub, h, tenants, roles, grants)
}

// knowCondition enters the compiled condition expr, if any, in condIdx.
func (c *compiler) knowCondition(expr string) {
	if expr == "" {
		return
	}
	if i := slices.IndexFunc(c.s.conds, func(cd condition) bool { return cd.expr == expr }); i >= 0 {
		c.condIdx[expr] = int32(i)
	}
}
