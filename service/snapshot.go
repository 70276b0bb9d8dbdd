package service

import "time"

// SnapshotLoadedAt is when the current snapshot was compiled and swapped
// in; zero for a nil Service.
func (s *Service) SnapshotLoadedAt() time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.snap.StoredAt()
}
