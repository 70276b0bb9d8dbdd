package engine

import "github.com/gatehouse/gatehouse"

// SubjectDelta is STUB until the creates branch lands.
type SubjectDelta struct {
	Users        []gatehouse.UserEntry
	Agents       []gatehouse.Agent
	RemoveUsers  []string
	RemoveAgents []string
}

// Derive is STUB.
func (s *Snapshot) Derive(version int64, d SubjectDelta) (*Snapshot, bool, error) {
	if len(d.RemoveUsers)+len(d.RemoveAgents) > 0 || !s.Derivable(d.Users, d.Agents) {
		return nil, false, nil
	}
	return s.WithSubjects(version, d.Users, d.Agents)
}

// DerivableDelta is STUB.
func (s *Snapshot) DerivableDelta(d SubjectDelta) bool {
	if s == nil || s.lineage == nil {
		return false
	}
	for _, u := range d.Users {
		if !s.knownConditions(u.Roles, u.Grants) {
			return false
		}
	}
	for _, a := range d.Agents {
		if !s.knownConditions(a.Roles, a.Grants) {
			return false
		}
	}
	return true
}
