package service

import (
	"context"
	"time"
)

// VersionWatcher is a store that announces policy version changes as they
// commit in any process (PostgreSQL's LISTEN/NOTIFY). WatchVersion calls fn
// with each new version until ctx ends.
type VersionWatcher interface {
	WatchVersion(ctx context.Context, fn func(version int64)) error
}

// Follow keeps the snapshot current with changes other processes commit,
// until ctx ends. If the store is a VersionWatcher it reloads on every
// announced version (the watcher polls as a safety net of its own);
// otherwise it checks the stored version every poll interval. onSwap, if
// not nil, is called after each swap; a failed reload is reported to onErr
// and retried on the next announcement or tick, while decisions keep coming
// from the last snapshot.
func (s *Service) Follow(ctx context.Context, poll time.Duration, onSwap func(version int64), onErr func(error)) error {
	changed := make(chan struct{}, 1)
	var tick <-chan time.Time
	if w, ok := s.store.(VersionWatcher); ok {
		watchErr := make(chan error, 1)
		go func() {
			watchErr <- w.WatchVersion(ctx, func(int64) {
				select {
				case changed <- struct{}{}:
				default: // a reload is already pending; it reads the newest version
				}
			})
		}()
		defer func() { <-watchErr }()
	} else {
		ticker := time.NewTicker(poll)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-tick:
		}
		swapped, err := s.Reload(ctx)
		switch {
		case err != nil && ctx.Err() == nil && onErr != nil:
			onErr(err)
		case swapped && onSwap != nil:
			onSwap(s.Snapshot().Version())
		}
	}
}
