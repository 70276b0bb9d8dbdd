package engine

import (
	"slices"

	"github.com/gatehouse/gatehouse"
)

// The listings below are the candidates of AuthZEN searches: a search
// decides each candidate as an evaluation would and keeps the allowed ones.
// Every listing is sorted, so a search can resume after a given id.

// SubjectIDs returns the ids of every subject of type t, sorted: users'
// emails or agents' ids. An unknown type has none.
func (s *Snapshot) SubjectIDs(t gatehouse.SubjectType) []string {
	if s == nil {
		return nil
	}
	var out []string
	for i := range s.subjects.len() {
		if ref := s.subjects.at(i).ref; ref.Type == t && s.stateAt(i) != removed {
			out = append(out, ref.ID)
		}
	}
	slices.Sort(out)
	return out
}

// UserID returns the id a user is best known by to other systems: its first
// alias, else its email. An unknown user's id is returned as given.
func (s *Snapshot) UserID(id string) string {
	if s == nil {
		return id
	}
	if i, ok := s.lookupUser(id); ok {
		if a := s.subjects.at(i).alias; a != "" {
			return a
		}
		return s.subjects.at(i).ref.ID
	}
	return id
}

// ResourceIDs returns the ids of the resources of type typ, sorted: the
// tenants for "tenant", the tools for "tool", else the policy's resources of
// that type. An unknown type has none.
func (s *Snapshot) ResourceIDs(typ string) []string {
	if s == nil {
		return nil
	}
	var out []string
	switch typ {
	case gatehouse.ResourceTypeTenant:
		return slices.Clone(s.tenantNames)
	case gatehouse.ResourceTypeTool:
		for _, t := range s.tools {
			out = append(out, t.name)
		}
	default:
		for _, r := range s.resourceIdx[typ] {
			out = append(out, s.resources[r].id)
		}
	}
	slices.Sort(out)
	return out
}

// ActionNames returns every permission and tool name, sorted and without
// repeats: what a request's action may name.
func (s *Snapshot) ActionNames() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.perms)+len(s.tools))
	for _, p := range s.perms {
		out = append(out, p.name)
	}
	for _, t := range s.tools {
		out = append(out, t.name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
