package engine

import "github.com/gatehouse/gatehouse"

// Derivable is DerivableDelta for users and agents upserted.
func (s *Snapshot) Derivable(users []gatehouse.UserEntry, agents []gatehouse.Agent) bool {
	return s.DerivableDelta(SubjectDelta{Users: users, Agents: agents})
}

// DerivableDelta reports whether Derive would derive a snapshot from s for
// d rather than decline it (ok false): every subject d removes is one s
// holds, every condition d refers to is one s compiled, and the lineage
// has not derived too many records or ids since its Compile. It does not
// check what d refers to: a delta Derive refuses as invalid (an unknown
// role, an alias naming two users, a subject named twice) is derivable,
// and Derive reports the error as Compile would.
func (s *Snapshot) DerivableDelta(d SubjectDelta) bool {
	if s == nil || s.lineage == nil {
		return false
	}
	_, ok, err := s.planDelta(&d)
	return ok || err != nil
}
