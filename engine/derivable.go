package engine

import "github.com/gatehouse/gatehouse"

// Derivable reports whether WithSubjects could derive a snapshot from s
// for users and agents, as far as they themselves decide it: each is one
// s holds, with the same ids (email and aliases), and refers only to
// conditions s compiled. WithSubjects may still decline when the lineage
// re-derived too many records; Compile then gives the same snapshot.
func (s *Snapshot) Derivable(users []gatehouse.UserEntry, agents []gatehouse.Agent) bool {
	if s == nil || s.lineage == nil {
		return false
	}
	for i := range users {
		if _, same := s.sameUser(&users[i]); !same || !s.knownConditions(users[i].Roles, users[i].Grants) {
			return false
		}
	}
	for i := range agents {
		if _, found := s.agentIdx[agents[i].ID]; !found || !s.knownConditions(agents[i].Roles, agents[i].Grants) {
			return false
		}
	}
	return true
}
