package engine

import (
	"fmt"
	"slices"
	"sync"

	"github.com/gatehouse/gatehouse"
)

// lineage is shared by a compiled snapshot and every snapshot derived from
// it (Derive). Derived snapshots append to their base's pools (the
// permission-set slab, visPool, records, sourcePool, condPool) in place,
// past the end the base reads, which is safe only for the newest snapshot
// of the lineage: tip. A snapshot derived from any other copies the pools
// it appends to. Derive is safe for concurrent use.
type lineage struct {
	mu  sync.Mutex
	tip *Snapshot
	// folded indexes the compiled snapshot's aliases for Derive.
	folded baseFolded
}

// maxDerived bounds how many subject records a lineage derives before
// Derive asks for a full Compile: the records a derivation replaces or
// removes stay in the pools unused, and a Compile drops them.
func maxDerived(subjects int32) int { return 1024 + int(subjects) }

// SubjectDelta is a change of a policy's users and agents: Users and
// Agents are upserted (they replace the entry with the same email or id,
// or are added), RemoveUsers (emails) and RemoveAgents (ids) are deleted.
// A subject is named at most once in a delta.
type SubjectDelta struct {
	Users        []gatehouse.UserEntry
	Agents       []gatehouse.Agent
	RemoveUsers  []string
	RemoveAgents []string
}

// WithSubjects is Derive with users and agents upserted and nothing
// removed.
func (s *Snapshot) WithSubjects(version int64, users []gatehouse.UserEntry, agents []gatehouse.Agent) (snap *Snapshot, ok bool, err error) {
	return s.Derive(version, SubjectDelta{Users: users, Agents: agents})
}

// Derive returns the snapshot at version that Compile would give for the
// policy s was compiled from changed by d, without compiling the rest: it
// builds only the records of the subjects d names, appends those it adds,
// marks those it removes as gone, and shares everything else with s, which
// does not change. Users may change, gain or lose aliases, and an alias
// may move between users, a removed one or an added one.
//
// ok is false, and the caller must Compile, when d is not a change a
// derivation makes (DerivableDelta): a removal of a subject s does not
// hold, a condition s never compiled, or a lineage that derived too many
// records or ids since its Compile. An unknown role, permission, plan or
// tenant, an alias that would name two users or another user's email, and
// a subject both upserted and removed, or removed twice, are errors
// wrapping gatehouse.ErrInvalid. Of a subject upserted twice the last entry
// counts.
func (s *Snapshot) Derive(version int64, d SubjectDelta) (snap *Snapshot, ok bool, err error) {
	if s == nil || s.lineage == nil {
		return nil, false, nil
	}
	defer func() {
		if r := recover(); r != nil {
			snap, ok, err = nil, false, fmt.Errorf("compile policy version %d: internal error: %v", version, r)
		}
	}()
	pl, ok, err := s.planDelta(&d)
	if err != nil {
		return nil, false, fmt.Errorf("compile policy version %d: %w", version, err)
	}
	if !ok {
		return nil, false, nil
	}
	if err := s.checkAliases(&d, pl); err != nil {
		return nil, false, fmt.Errorf("compile policy version %d: %w", version, err)
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
	// The pages of recOff, subjects, email slots and moved places this
	// derivation copied.
	owned := [4]map[int32]bool{{}, {}, {}, {}}
	ids := s.editIDs(&d, pl)
	for _, at := range append(pl.removeUserAt, pl.removeAgentAt...) {
		h, email := s.hotAt(at), ""
		if ref := s.subjects.at(at).ref; ref.Type == gatehouse.SubjectUser {
			email = ref.ID
		}
		h.state = removed
		c.held = append(c.held[:0], h.held...)
		c.setRecord(at, &h, email, &owned)
	}
	for i := range d.Users {
		u, at := &d.Users[i], pl.userAt[i]
		sub := subject{ref: gatehouse.User(pl.emails[i]), attrs: cloneMap(u.Attributes), aliases: int32(len(pl.aliases[i]))}
		if len(u.Aliases) > 0 {
			sub.alias = u.Aliases[0]
		}
		h := subjectHot{superuser: u.Superuser, plan: -1}
		old := subjectHot{}
		if at < s.subjects.len() {
			old = s.hotAt(at)
			if h.state = s.stateAt(at); !pl.sameAliases[i] {
				h.state = renamed
			}
		}
		if u.Plan != "" {
			p, found := c.planIdx[u.Plan]
			if !found {
				return nil, false, fmt.Errorf("compile policy version %d: %w", version, gatehouse.Invalidf("user %q: unknown plan %q", sub.ref.ID, u.Plan))
			}
			h.plan = p
		}
		if err := c.derivedSubject(&sub, &h, old, u.Tenants, u.Roles, u.Grants); err != nil {
			return nil, false, fmt.Errorf("compile policy version %d: user %q: %w", version, sub.ref.ID, err)
		}
		c.setRecord(at, &h, sub.ref.ID, &owned)
		ns.setSubject(at, sub, owned[1])
	}
	for i := range d.Agents {
		a, at := &d.Agents[i], pl.agentAt[i]
		sub := subject{ref: gatehouse.AgentRef(a.ID), attrs: cloneMap(a.Attributes)}
		h := subjectHot{plan: -1}
		old := subjectHot{}
		if at < s.subjects.len() {
			old = s.hotAt(at)
		}
		if err := c.derivedSubject(&sub, &h, old, a.Tenants, a.Roles, a.Grants); err != nil {
			return nil, false, fmt.Errorf("compile policy version %d: agent %q: %w", version, a.ID, err)
		}
		c.setRecord(at, &h, "", &owned)
		ns.setSubject(at, sub, owned[1])
	}
	ns.derived += pl.records
	if ids != nil {
		ns.over = ids
	}
	s.lineage.mu.Lock()
	s.lineage.tip = ns
	s.lineage.mu.Unlock()
	return ns, true, nil
}

// setRecord makes subject at's record in c's snapshot one with h's
// fields, email ("" for an agent) and the entries in c.held, appending the
// subject when at is the next index: the new subjects of a delta come in
// the order planDelta numbered them. A user the email table holds has its
// slot follow the record; the overlay finds the users derivations added.
// The place of a placed record is marked moved (userPlaces).
func (c *compiler) setRecord(at int32, h *subjectHot, email string, owned *[4]map[int32]bool) {
	s := c.s
	off := c.putRecord(at, h, email)
	if at == s.recOff.len() {
		s.recOff.push(off, owned[0])
		return
	}
	s.places.move(*s.recOff.at(at), owned[3])
	s.recOff.put(at, off, owned[0])
	if email == "" {
		return
	}
	if pos, found := s.emails.slot(s, email); found && s.records[s.emails.slots.at(pos).rec-1+recSubject].ref == at {
		s.emails.setSlot(pos, email, off, owned[2])
	}
}

// setSubject sets subject at of s, or appends it when at is the next
// index, as setRecord does its record.
func (s *Snapshot) setSubject(at int32, sub subject, owned map[int32]bool) {
	if at == s.subjects.len() {
		s.subjects.push(sub, owned)
		return
	}
	s.subjects.put(at, sub, owned)
}

// deltaPlan is where the subjects of a delta are in a snapshot.
type deltaPlan struct {
	// emails are the canonical emails of the delta's users; userAt and
	// agentAt their records, numbered from the snapshot's length for
	// subjects it adds; removeUserAt and removeAgentAt those it removes.
	emails                      []string
	userAt, agentAt             []int32
	removeUserAt, removeAgentAt []int32
	// aliases are each user's distinct aliases in order; sameAliases
	// reports those that keep the ones they have.
	aliases     [][]string
	sameAliases []bool
	// records counts the records the delta derives.
	records int
}

// planDelta finds d's subjects in s, keeping only the last entry of a
// subject upserted more than once in d.Users and d.Agents. ok is false
// when Derive declines d; a subject both upserted and removed, or removed
// twice, is an error.
func (s *Snapshot) planDelta(d *SubjectDelta) (pl *deltaPlan, ok bool, err error) {
	pl = &deltaPlan{}
	d.Users = lastOf(d.Users, func(u *gatehouse.UserEntry) string { return gatehouse.NormalizeEmail(u.Email) })
	d.Agents = lastOf(d.Agents, func(a *gatehouse.Agent) string { return a.ID })
	users := make(map[string]bool, len(d.Users)+len(d.RemoveUsers))
	for i := range d.Users {
		email := gatehouse.NormalizeEmail(d.Users[i].Email)
		if email == "" {
			return nil, false, gatehouse.Invalidf("user with an empty email")
		}
		if len(email) > maxEmail {
			return nil, false, gatehouse.Invalidf("user email of %d bytes: longer than %d", len(email), maxEmail)
		}
		users[email] = true
		pl.emails = append(pl.emails, email)
	}
	for _, e := range d.RemoveUsers {
		email := gatehouse.NormalizeEmail(e)
		if users[email] {
			return nil, false, gatehouse.Invalidf("user %q is named twice in the change", email)
		}
		users[email] = true
	}
	agents := make(map[string]bool, len(d.Agents)+len(d.RemoveAgents))
	for i := range d.Agents {
		if err := checkName("agent", d.Agents[i].ID); err != nil {
			return nil, false, err
		}
		agents[d.Agents[i].ID] = true
	}
	for _, id := range d.RemoveAgents {
		if agents[id] {
			return nil, false, gatehouse.Invalidf("agent %q is named twice in the change", id)
		}
		agents[id] = true
	}
	pl.records = len(d.Users) + len(d.Agents) + len(d.RemoveUsers) + len(d.RemoveAgents)
	growth := len(d.Agents)
	for i := range d.Users {
		growth += 2 + 2*len(d.Users[i].Aliases)
	}
	if s.derived+pl.records > maxDerived(s.subjects.len()) || s.overlayLen()+growth > maxOverlay(s.subjects.len()) {
		return nil, false, nil
	}
	for _, e := range d.RemoveUsers {
		at, _, found := s.emailOwner(gatehouse.NormalizeEmail(e))
		if !found {
			return nil, false, nil
		}
		pl.removeUserAt = append(pl.removeUserAt, at)
	}
	for _, id := range d.RemoveAgents {
		at, found := s.lookupAgent(id)
		if !found {
			return nil, false, nil
		}
		pl.removeAgentAt = append(pl.removeAgentAt, at)
	}
	next := s.subjects.len()
	for i := range d.Users {
		u := &d.Users[i]
		if !s.knownConditions(u.Roles, u.Grants) {
			return nil, false, nil
		}
		at, _, found := s.emailOwner(pl.emails[i])
		if !found {
			at = next
			next++
		}
		pl.userAt = append(pl.userAt, at)
		pl.aliases = append(pl.aliases, distinct(u.Aliases))
		pl.sameAliases = append(pl.sameAliases, found && s.sameAliases(at, u))
	}
	for i := range d.Agents {
		a := &d.Agents[i]
		if !s.knownConditions(a.Roles, a.Grants) {
			return nil, false, nil
		}
		at, found := s.lookupAgent(a.ID)
		if !found {
			at = next
			next++
		}
		pl.agentAt = append(pl.agentAt, at)
	}
	return pl, true, nil
}

// lastOf returns list without the entries a later one with the same key
// replaces; list itself when there are none.
func lastOf[T any](list []T, key func(*T) string) []T {
	last := make(map[string]int, len(list))
	for i := range list {
		last[key(&list[i])] = i
	}
	if len(last) == len(list) {
		return list
	}
	out := make([]T, 0, len(last))
	for i := range list {
		if last[key(&list[i])] == i {
			out = append(out, list[i])
		}
	}
	return out
}

// overlayLen is the number of entries of s's overlay.
func (s *Snapshot) overlayLen() int {
	if s.over == nil {
		return 0
	}
	return s.over.n
}

// distinct returns the distinct strings of list in order.
func distinct(list []string) []string {
	var out []string
	for i, a := range list {
		if !slices.Contains(list[:i], a) {
			out = append(out, a)
		}
	}
	return out
}

// sameAliases reports whether u, whose record is at, keeps the aliases it
// has in s: the same first one, and exactly the aliases that name it.
func (s *Snapshot) sameAliases(at int32, u *gatehouse.UserEntry) bool {
	sub := s.subjects.at(at)
	first := ""
	if len(u.Aliases) > 0 {
		first = u.Aliases[0]
	}
	if first != sub.alias {
		return false
	}
	n := int32(0)
	for i, a := range u.Aliases {
		if other, ok := s.aliasOwner(a); !ok || other != at {
			return false
		}
		if !slices.Contains(u.Aliases[:i], a) {
			n++
		}
	}
	return n == sub.aliases
}

// checkAliases reports what Compile's aliases step would find wrong in
// the policy s was compiled from changed by d: an alias that names two
// users, or is another user's email, compared as emails are.
func (s *Snapshot) checkAliases(d *SubjectDelta, pl *deltaPlan) error {
	// touched are the records d names; their ids are what d says.
	touched := make(map[int32]bool, pl.records)
	for _, at := range pl.removeUserAt {
		touched[at] = true
	}
	emails := make(map[string]int, len(d.Users))
	for i, at := range pl.userAt {
		touched[at] = true
		emails[pl.emails[i]] = i
	}
	claims := map[string]int{}
	for i := range d.Users {
		for _, a := range pl.aliases[i] {
			if err := checkName("alias", a); err != nil {
				return fmt.Errorf("user %q: %w", d.Users[i].Email, err)
			}
			if k, dup := claims[a]; dup {
				return gatehouse.Invalidf("alias %q names users %q and %q", a, pl.emails[k], pl.emails[i])
			}
			claims[a] = i
		}
	}
	// other is a user that keeps id as d leaves it, if any but user i.
	other := func(at int32, found bool, i int) (string, bool) {
		if !found || touched[at] || at == pl.userAt[i] {
			return "", false
		}
		return s.subjects.at(at).ref.ID, true
	}
	for i := range d.Users {
		for _, a := range pl.aliases[i] {
			at, found := s.aliasOwner(a)
			if o, clash := other(at, found, i); clash {
				return gatehouse.Invalidf("alias %q names users %q and %q", a, o, pl.emails[i])
			}
			email := gatehouse.NormalizeEmail(a)
			if k, ok := emails[email]; ok && k != i {
				return gatehouse.Invalidf("alias %q names users %q and %q", a, pl.emails[k], pl.emails[i])
			}
			at, _, found = s.emailOwner(email)
			if o, clash := other(at, found, i); clash {
				return gatehouse.Invalidf("alias %q names users %q and %q", a, o, pl.emails[i])
			}
		}
		if pl.userAt[i] < s.subjects.len() {
			continue
		}
		// An added user's email must be no alias of a user d leaves.
		email := pl.emails[i]
		for _, a := range append([]string{email}, s.foldedAliases(email)...) {
			at, found := s.aliasOwner(a)
			if o, clash := other(at, found, i); clash {
				return gatehouse.Invalidf("alias %q names users %q and %q", a, o, email)
			}
		}
	}
	return nil
}

// editIDs returns the overlay of the snapshot s changed by d, or nil when
// d changes no ids.
func (s *Snapshot) editIDs(d *SubjectDelta, pl *deltaPlan) *overlay {
	n := s.subjects.len()
	changes := len(d.RemoveUsers)+len(d.RemoveAgents) > 0
	for i, at := range pl.userAt {
		changes = changes || at >= n || !pl.sameAliases[i]
	}
	for _, at := range pl.agentAt {
		changes = changes || at >= n
	}
	if !changes {
		return nil
	}
	o := &overlay{}
	if s.over != nil {
		*o = *s.over
	}
	emails := mapEdit[string, int32]{m: &o.emails, n: &o.n}
	agents := mapEdit[string, int32]{m: &o.agents, n: &o.n}
	aliases := mapEdit[string, int32]{m: &o.aliases, n: &o.n}
	aliasesOf := mapEdit[int32, []string]{m: &o.aliasesOf, n: &o.n}
	folded := mapEdit[string, []string]{m: &o.folded, n: &o.n}
	// Users removed or renamed drop their aliases first, so that one can
	// move to a user later in d.
	drop := func(at int32) {
		list, _ := o.aliasesOf.get(uint32(at), at)
		for _, a := range list {
			if owner, ok := o.aliases.get(foldShard(a), a); ok && owner == at {
				aliases.del(foldShard(a), a)
			}
			if f := gatehouse.NormalizeEmail(a); f != a {
				old, _ := o.folded.get(foldShard(f), f)
				if rest := slices.DeleteFunc(slices.Clone(old), func(x string) bool { return x == a }); len(rest) > 0 {
					folded.set(foldShard(f), f, rest)
				} else {
					folded.del(foldShard(f), f)
				}
			}
		}
		aliasesOf.del(uint32(at), at)
	}
	for _, at := range pl.removeUserAt {
		drop(at)
		email := s.subjects.at(at).ref.ID
		if owner, ok := o.emails.get(foldShard(email), email); ok && owner == at {
			emails.del(foldShard(email), email)
		}
	}
	for k, at := range pl.removeAgentAt {
		id := d.RemoveAgents[k]
		if owner, ok := o.agents.get(foldShard(id), id); ok && owner == at {
			agents.del(foldShard(id), id)
		}
	}
	for i, at := range pl.userAt {
		if !pl.sameAliases[i] {
			drop(at)
		}
	}
	for i, at := range pl.userAt {
		if at >= n {
			emails.set(foldShard(pl.emails[i]), pl.emails[i], at)
		}
		if pl.sameAliases[i] {
			continue
		}
		for _, a := range pl.aliases[i] {
			aliases.set(foldShard(a), a, at)
			if f := gatehouse.NormalizeEmail(a); f != a {
				old, _ := o.folded.get(foldShard(f), f)
				folded.set(foldShard(f), f, append(slices.Clip(old), a))
			}
		}
		if len(pl.aliases[i]) > 0 {
			aliasesOf.set(uint32(at), at, pl.aliases[i])
		}
	}
	for i, at := range pl.agentAt {
		if at >= n {
			agents.set(foldShard(d.Agents[i].ID), d.Agents[i].ID, at)
		}
	}
	return o
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
	ns.places.moved = s.places.moved.cloneList()
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
