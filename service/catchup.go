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
// its event records, then replaces the changed users and agents in the kept
// policy and derives the snapshot from the current one
// (engine.Snapshot.Derive), users and agents changed, created or removed.
// It reports false, having changed nothing, when catching up does not
// apply and the caller must reload: no kept policy at the snapshot's
// version, more than maxCatchUp changes, a version without change events
// (a restore), an object of another kind, or a derivation the engine
// declines.
// The caller holds mu.
func (s *Service) catchUp(ctx context.Context, version int64) (bool, error) {
	cur, snap := s.current, s.Snapshot()
	if cur == nil || snap == nil || cur.v != snap.Version() || cur.v >= version {
		return false, nil
	}
	type change struct {
		kind gatehouse.Kind
		id   string
		body json.RawMessage
	}
	last := map[string]change{}
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
			if n++; n > maxCatchUp || (kind != gatehouse.KindUser && kind != gatehouse.KindAgent) {
				return false, nil
			}
			if d.Op != gatehouse.OpDelete && d.ObjectHash != audit.ObjectHash(gatehouse.Object{Kind: kind, ID: id, Body: e.After}) {
				return false, nil
			}
			seen, seq = d.Version, e.Seq
			if _, dup := last[e.Target]; !dup {
				order = append(order, e.Target)
			}
			body := e.After
			if d.Op == gatehouse.OpDelete {
				body = nil
			}
			last[e.Target] = change{kind: kind, id: id, body: body}
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
	for _, target := range order {
		c := last[target]
		switch {
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
	next, ok, err := snap.Derive(version, d)
	if err != nil || !ok {
		return false, err
	}
	p := cur.kept
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
	s.keepSubjects(cur, version, cur.valid, true, seq)
	s.swap(next)
	return true, nil
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
