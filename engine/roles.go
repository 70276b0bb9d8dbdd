package engine

import (
	"fmt"
	"maps"
	"slices"

	"github.com/gatehouse/gatehouse"
)

// DeriveRoles returns the snapshot at version that Compile would give for
// the policy s was compiled from with roles and bundles upserted — each
// replaces the one of its name, or is added after the others — without
// compiling the rest: a role's permission set is a table every record
// refers to by the role's index, so a change of what a role or a bundle
// gives rebuilds the sets of the roles it touches and the records of the
// subjects whose sources are merged into sets (see mergeAbove) holding one
// of them, and shares every other record with s, which does not change.
// ok is false, and the caller must Compile, when a role is new and a
// subject's sources are merged (a merged record names its sets after the
// roles' indices, which a new role would move), or when the lineage
// derived too many records since its Compile. A role or bundle named
// twice, with an invalid name, or naming an unknown permission or bundle,
// is an error wrapping gatehouse.ErrInvalid.
func (s *Snapshot) DeriveRoles(version int64, roles []gatehouse.Role, bundles []gatehouse.Bundle) (snap *Snapshot, ok bool, err error) {
	if s == nil || s.lineage == nil {
		return nil, false, nil
	}
	defer func() {
		if r := recover(); r != nil {
			snap, ok, err = nil, false, fmt.Errorf("compile policy version %d: internal error: %v", version, r)
		}
	}()
	bundleAt, newBundles, err := indexOf(bundles, "bundle", func(b *gatehouse.Bundle) string { return b.Name }, s.bundles, func(b *bundleInfo) string { return b.name })
	if err != nil {
		return nil, false, err
	}
	roleAt, newRoles, err := indexOf(roles, "role", func(r *gatehouse.Role) string { return r.Name }, s.roles, func(r *roleInfo) string { return r.name })
	if err != nil {
		return nil, false, err
	}
	if newRoles > 0 && s.anyMerged() {
		return nil, false, nil
	}
	// The roles whose sets change: those upserted, and those holding a
	// replaced bundle.
	changed := make(map[int32]bool, len(roles))
	for _, at := range roleAt {
		changed[at] = true
	}
	replaced := make(map[int32]bool, len(bundles))
	for _, at := range bundleAt {
		replaced[at] = true
	}
	for i := range s.roles {
		if slices.ContainsFunc(s.roles[i].bundles, func(b int32) bool { return replaced[b] }) {
			changed[int32(i)] = true
		}
	}
	remerge := s.mergedHolding(changed)
	if s.derived+len(remerge) > maxDerived(s.subjects.len()) {
		return nil, false, nil
	}

	c := &compiler{s: s.derivedCopy(version), deriving: true}
	c.bits = make([]uint64, s.sets.words)
	ns := c.s
	ns.bundles = append(slices.Clone(s.bundles), make([]bundleInfo, newBundles)...)
	for i, at := range bundleAt {
		b := &bundles[i]
		if err := checkName("bundle", b.Name); err != nil {
			return nil, false, fmt.Errorf("compile policy version %d: %w", version, err)
		}
		perms, err := c.permList(fmt.Sprintf("bundle %q", b.Name), b.Permissions)
		if err != nil {
			return nil, false, fmt.Errorf("compile policy version %d: %w", version, err)
		}
		ns.bundles[at] = bundleInfo{name: b.Name, perms: perms}
	}
	bundleIdx := make(map[string]int32, len(ns.bundles))
	for i, b := range ns.bundles {
		bundleIdx[b.name] = int32(i)
	}
	ns.roles = append(slices.Clone(s.roles), make([]roleInfo, newRoles)...)
	ns.roleSets = append(slices.Clone(s.roleSets), make([]int32, newRoles)...)
	for i, at := range roleAt {
		r := &roles[i]
		if err := checkName("role", r.Name); err != nil {
			return nil, false, fmt.Errorf("compile policy version %d: %w", version, err)
		}
		owner := fmt.Sprintf("role %q", r.Name)
		perms, err := c.permList(owner, r.Permissions)
		if err != nil {
			return nil, false, fmt.Errorf("compile policy version %d: %w", version, err)
		}
		held := make([]int32, 0, len(r.Bundles))
		for _, name := range r.Bundles {
			b, found := bundleIdx[name]
			if !found {
				return nil, false, fmt.Errorf("compile policy version %d: %w", version, gatehouse.Invalidf("%s: unknown bundle %q", owner, name))
			}
			held = append(held, b)
		}
		ns.roles[at] = roleInfo{name: r.Name, perms: perms, bundles: held}
	}
	for _, at := range slices.Sorted(maps.Keys(changed)) {
		r := &ns.roles[at]
		clearWords(c.bits)
		for _, p := range r.perms {
			setBit(c.bits, p)
		}
		for _, b := range r.bundles {
			for _, p := range ns.bundles[b].perms {
				setBit(c.bits, p)
			}
		}
		r.set = c.intern(c.bits)
		ns.roleSets[at] = r.set
	}
	// The merged sets of the subjects holding a changed role, merged again
	// from their sources.
	owned := [4]map[int32]bool{{}, {}, {}, {}}
	for _, at := range remerge {
		h, sub := s.hotAt(at), s.subjects.at(at)
		h.state = s.stateAt(at)
		c.uncond = append(c.uncond[:0], s.sourcePool[sub.sources.off:sub.sources.off+sub.sources.n]...)
		c.held = c.held[:0]
		c.merge()
		email := ""
		if sub.ref.Type == gatehouse.SubjectUser {
			email = sub.ref.ID
		}
		c.setRecord(at, &h, email, &owned)
	}
	ns.derived += len(remerge)
	s.lineage.mu.Lock()
	s.lineage.tip = ns
	s.lineage.mu.Unlock()
	return ns, true, nil
}

// mergedHolding returns the subjects, not removed, whose sources are
// merged into sets and include an unconditional assignment of a role of
// roles.
func (s *Snapshot) mergedHolding(roles map[int32]bool) []int32 {
	var out []int32
	if len(roles) == 0 {
		return out
	}
	for at := range s.subjects.len() {
		sub := s.subjects.at(at)
		if sub.sources.n == 0 || s.stateAt(at) == removed {
			continue
		}
		src := s.sourcePool[sub.sources.off : sub.sources.off+sub.sources.n]
		if slices.ContainsFunc(src, func(e entry) bool { return !e.isGrant() && roles[e.ref] }) {
			out = append(out, at)
		}
	}
	return out
}

// anyMerged reports whether a subject of s, removed or not, holds its
// sources merged into sets.
func (s *Snapshot) anyMerged() bool {
	for at := range s.subjects.len() {
		if s.subjects.at(at).sources.n > 0 {
			return true
		}
	}
	return false
}

// indexOf returns the index in have of each of changes, matched by name,
// numbering those have lacks after it in their order, and how many those
// are. A name given twice is an error.
func indexOf[C, H any](changes []C, kind string, name func(*C) string, have []H, haveName func(*H) string) (at []int32, added int, err error) {
	idx := make(map[string]int32, len(have))
	for i := range have {
		idx[haveName(&have[i])] = int32(i)
	}
	seen := make(map[string]bool, len(changes))
	for i := range changes {
		n := name(&changes[i])
		if seen[n] {
			return nil, 0, gatehouse.Invalidf("%s %q is named twice in the change", kind, n)
		}
		seen[n] = true
		i, found := idx[n]
		if !found {
			i = int32(len(have) + added)
			added++
		}
		at = append(at, i)
	}
	return at, added, nil
}
