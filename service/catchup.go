package service

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/engine"
)

// maxCatchUp bounds the change events a follower applies one by one;
// further behind, it reloads the whole policy.
const maxCatchUp = 10_000

// catchUpPage is how many audit events catchUp reads at a time.
const catchUpPage = 1_000

// lastSeq returns the Seq the store gave the last of events, 0 for none.
func lastSeq(events []gatehouse.AuditEvent) int64 {
	if len(events) == 0 {
		return 0
	}
	return events[len(events)-1].Seq
}

// catchUp brings the kept policy and the snapshot from their version to
// version by change rather than by reload: the change log is the audit
// chain, whose change events name each changed object (Target), its
// version (audit.ChangeDetail) and its body as stored (After). It reads the
// events after the kept policy's seq, checks that every version up to
// version is there, in order, and that each body hashes to the ObjectHash
// its event records, then replaces the changed objects in the kept policy.
// When only users and agents changed, the snapshot is derived from the
// current one (engine.Snapshot.Derive); when a role, tenant or other shared
// object changed too, the kept policy gets new sections of those kinds and
// the snapshot is compiled (catchUpSections) — what a reload does, but
// without loading every object again. It reports false, having changed
// nothing, when catching up does not apply and the caller must reload: no
// kept policy at the snapshot's version, more than maxCatchUp changes, a
// version without change events (a restore), a body or position the
// object hash does not bind, or a derivation the engine declines.
// The caller holds mu.
func (s *Service) catchUp(ctx context.Context, version int64) (bool, error) {
	cur, snap := s.current, s.Snapshot()
	if cur == nil || snap == nil || cur.v != snap.Version() || cur.v >= version {
		return false, nil
	}
	last := map[string]caughtChange{}
	var order []string
	seen, seq, n := cur.v, cur.seq, 0
scan:
	for {
		page, err := s.store.ListAudit(ctx, gatehouse.AuditFilter{AfterSeq: seq, Limit: catchUpPage})
		if err != nil {
			return false, err
		}
		for _, e := range page {
			kind, id, d, ok := changeEvent(e)
			if !ok || d.Version <= cur.v {
				continue
			}
			if d.Version > version {
				break scan
			}
			if d.Version != seen && d.Version != seen+1 {
				return false, nil
			}
			if n++; n > maxCatchUp {
				return false, nil
			}
			pos := 0
			if d.Op != gatehouse.OpDelete {
				if pos, ok = objectPos(kind, id, e.After, d.ObjectHash); !ok {
					return false, nil
				}
			}
			seen, seq = d.Version, e.Seq
			if _, dup := last[e.Target]; !dup {
				order = append(order, e.Target)
			}
			body := e.After
			if d.Op == gatehouse.OpDelete {
				body = nil
			}
			last[e.Target] = caughtChange{kind: kind, id: id, pos: pos, body: body}
		}
		if len(page) < catchUpPage {
			break
		}
		seq = page[len(page)-1].Seq
	}
	if seen != version {
		return false, nil
	}
	var d engine.SubjectDelta
	sections := map[gatehouse.Kind][]caughtChange{}
	for _, target := range order {
		c := last[target]
		switch {
		case c.kind != gatehouse.KindUser && c.kind != gatehouse.KindAgent:
			sections[c.kind] = append(sections[c.kind], c)
		case c.kind == gatehouse.KindUser && c.body == nil:
			d.RemoveUsers = append(d.RemoveUsers, c.id)
		case c.kind == gatehouse.KindAgent && c.body == nil:
			d.RemoveAgents = append(d.RemoveAgents, c.id)
		case c.kind == gatehouse.KindUser:
			var u gatehouse.UserEntry
			if err := json.Unmarshal(c.body, &u); err != nil {
				return false, err
			}
			if u.Email != c.id {
				return false, nil
			}
			d.Users = append(d.Users, u)
		default:
			var a gatehouse.Agent
			if err := json.Unmarshal(c.body, &a); err != nil {
				return false, err
			}
			if a.ID != c.id {
				return false, nil
			}
			d.Agents = append(d.Agents, a)
		}
	}
	// A subject created and removed again since the kept version is no
	// change.
	users := cur.userList()
	d.RemoveUsers = slices.DeleteFunc(d.RemoveUsers, func(email string) bool {
		_, _, found := users.find(email)
		return !found
	})
	d.RemoveAgents = slices.DeleteFunc(d.RemoveAgents, func(id string) bool {
		_, found := findAgent(cur.kept, id)
		return !found
	})
	if len(sections) > 0 {
		return s.catchUpSections(cur, snap, version, seq, d, sections)
	}
	next, ok, err := snap.Derive(version, d)
	if err != nil || !ok {
		return false, err
	}
	applySubjects(cur.kept, users, d)
	s.keepSubjects(cur, version, cur.valid, true, seq)
	s.swap(next)
	return true, nil
}

// caughtChange is the last change of one object that catchUp read: its
// position as the object hash binds it, and its body, nil if deleted.
type caughtChange struct {
	kind gatehouse.Kind
	id   string
	pos  int
	body json.RawMessage
}

// catchUpSections is catchUp's end when objects other than users and
// agents changed: the kept policy's sections of their kinds are replaced
// by new ones holding the changed objects, the users and agents are
// changed in place, and the snapshot is compiled whole — at a million
// users a compile of a second or two where a reload would load every
// object first. A compile the engine refuses leaves no kept policy, so
// that the caller's reload, or the next write, loads the store.
func (s *Service) catchUpSections(cur *versioned, from *engine.Snapshot, version, seq int64, d engine.SubjectDelta, sections map[gatehouse.Kind][]caughtChange) (bool, error) {
	next := *cur.kept
	for kind, changes := range sections {
		objs, err := sectionObjects(&next, kind)
		if err != nil {
			return false, err
		}
		for _, c := range changes {
			i := slices.IndexFunc(objs, func(o gatehouse.Object) bool { return o.ID == c.id })
			o := gatehouse.Object{Kind: kind, ID: c.id, Pos: c.pos, Body: c.body}
			switch {
			case c.body == nil && i >= 0:
				objs = slices.Delete(objs, i, i+1)
			case c.body == nil:
				// Created and removed again since the kept version.
			case i >= 0:
				objs[i] = o
			default:
				objs = append(objs, o)
			}
		}
		if err := replaceSection(&next, kind, objs); err != nil {
			return false, err
		}
	}
	kept := &versioned{kept: &next, users: cur.users, v: version, valid: cur.valid, seq: seq}
	var (
		snap *engine.Snapshot
		err  error
	)
	// Users kept in chunks stay so unless a compile needs them whole.
	if roles, bundles, ok := caughtRoles(sections); ok && len(d.Users)+len(d.Agents)+len(d.RemoveUsers)+len(d.RemoveAgents) == 0 {
		snap, err = s.deriveRoles(from, kept.policy, version, roles, bundles)
	} else {
		applySubjects(&next, kept.userList(), d)
		snap, err = engine.Compile(kept.policy(), version)
	}
	if err != nil {
		s.current = nil
		return false, err
	}
	s.current = kept
	s.swap(snap)
	return true, nil
}

// caughtRoles returns the roles and bundles of sections and whether that
// is all they change, none deleted (see roleChanges).
func caughtRoles(sections map[gatehouse.Kind][]caughtChange) (roles []gatehouse.Role, bundles []gatehouse.Bundle, ok bool) {
	var changes []gatehouse.Change
	for kind, cs := range sections {
		for _, c := range cs {
			changes = append(changes, gatehouse.Change{Kind: kind, ID: c.id, After: c.body})
		}
	}
	return roleChanges(changes)
}

// applySubjects makes the changes of d in the users and the agents of p.
func applySubjects(p *gatehouse.Policy, users *keptUsers, d engine.SubjectDelta) {
	for _, u := range d.Users {
		users.put(u)
	}
	for _, a := range d.Agents {
		at, found := findAgent(p, a.ID)
		p.Agents = replaceAt(p.Agents, at, found, []gatehouse.Agent{a})
	}
	for _, email := range d.RemoveUsers {
		users.remove(email)
	}
	for _, id := range d.RemoveAgents {
		at, _ := findAgent(p, id)
		p.Agents = replaceAt(p.Agents, at, true, nil)
	}
}

// maxPos bounds the positions objectPos tries: the tiers of plans.
const maxPos = 1024

// objectPos returns the position of the object of kind with id and body
// that hash, its audit.ObjectHash, binds: 0 for every kind but plans,
// whose position is their tier, which a change event does not record
// otherwise. ok is false when no position matches.
func objectPos(kind gatehouse.Kind, id string, body json.RawMessage, hash string) (pos int, ok bool) {
	last := 0
	if kind == gatehouse.KindPlan {
		last = maxPos
	}
	for pos := range last + 1 {
		if audit.ObjectHash(gatehouse.Object{Kind: kind, ID: id, Pos: pos, Body: body}) == hash {
			return pos, true
		}
	}
	return 0, false
}

// findAgent returns the index of the agent with id in p's sorted agents,
// or where it would be inserted.
func findAgent(p *gatehouse.Policy, id string) (int, bool) {
	return slices.BinarySearchFunc(p.Agents, id, func(x gatehouse.Agent, id string) int { return strings.Compare(x.ID, id) })
}

// changeEvent parses a change event of a policy object; ok is false for
// any other event.
func changeEvent(e gatehouse.AuditEvent) (kind gatehouse.Kind, id string, d audit.ChangeDetail, ok bool) {
	k, id, found := strings.Cut(e.Target, "/")
	kind = gatehouse.Kind(k)
	if !found || id == "" || !slices.Contains(gatehouse.Kinds, kind) || len(e.Detail) == 0 {
		return "", "", d, false
	}
	if json.Unmarshal(e.Detail, &d) != nil || d.Version == 0 {
		return "", "", d, false
	}
	switch d.Op {
	case gatehouse.OpCreate, gatehouse.OpUpdate, gatehouse.OpDelete:
		return kind, id, d, true
	}
	return "", "", d, false
}
