package engine

// UserEmail returns the email of the user id names — its email, trimmed
// and case-insensitively, or one of its aliases, exactly, as a request
// names a user — and ok false if no user of s goes by id.
func (s *Snapshot) UserEmail(id string) (email string, ok bool) {
	if s == nil {
		return "", false
	}
	i, ok := s.lookupUser(id)
	if !ok {
		return "", false
	}
	return s.subjects.at(i).ref.ID, true
}
