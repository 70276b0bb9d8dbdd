package service

import (
	"context"
	"errors"
	"sync"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

// subscriberBuffer is how many events wait for a subscriber before it is
// considered behind.
const subscriberBuffer = 64

// feed fans events out to subscribers without ever blocking the writer:
// a subscriber whose buffer is full loses events and is sent EventResync
// as soon as it has room again.
type feed struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch     chan gatehouse.Event
	behind bool
}

// Subscribe returns a channel of the changes the gateways and the chat
// push to their clients: EventPolicy whenever a new snapshot decides
// (local writes and changes followed from other instances by Follow), and
// EventAction whenever an agent action record moves through this
// instance. Events are never waited for: a subscriber that does not keep
// up loses events and then receives EventResync, after which it should
// read afresh what it shows. The channel is closed when ctx ends.
func (s *Service) Subscribe(ctx context.Context) <-chan gatehouse.Event {
	sub := &subscriber{ch: make(chan gatehouse.Event, subscriberBuffer)}
	s.feed.mu.Lock()
	if s.feed.subs == nil {
		s.feed.subs = map[*subscriber]struct{}{}
	}
	s.feed.subs[sub] = struct{}{}
	s.feed.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.feed.mu.Lock()
		delete(s.feed.subs, sub)
		close(sub.ch)
		s.feed.mu.Unlock()
	}()
	return sub.ch
}

// Subscribers is how many subscriptions are open.
func (s *Service) Subscribers() int {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	return len(s.feed.subs)
}

// publish sends e to every subscriber that has room.
func (s *Service) publish(e gatehouse.Event) {
	if e.Time.IsZero() {
		e.Time = s.cfg.Clock.Now()
	}
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	for sub := range s.feed.subs {
		if sub.behind {
			select {
			case sub.ch <- gatehouse.Event{Kind: gatehouse.EventResync, Version: e.Version, Time: e.Time}:
				sub.behind = false
			default:
				continue
			}
		}
		select {
		case sub.ch <- e:
		default:
			sub.behind = true
		}
	}
}

// swap makes snap the current snapshot and tells subscribers when the
// version moved.
func (s *Service) swap(snap *engine.Snapshot) {
	old := s.snap.Load()
	s.snap.Store(snap)
	if old == nil || old.Version() != snap.Version() {
		s.publish(gatehouse.Event{Kind: gatehouse.EventPolicy, Version: snap.Version()})
	}
}

// feedStore is the action store the guard writes through: every record a
// reservation stores and every transition is published.
type feedStore struct {
	gatehouse.ActionStore
	s *Service
}

func (f feedStore) ReserveActions(ctx context.Context, rs []gatehouse.Reservation) ([]gatehouse.ReserveResult, error) {
	res, err := f.ActionStore.ReserveActions(ctx, rs)
	if err == nil {
		for i := range res {
			if !res[i].Replayed && res[i].Exceeded == "" {
				f.s.publishAction(res[i].Record)
			}
		}
	}
	return res, err
}

func (f feedStore) TransitionAction(ctx context.Context, t gatehouse.Transition) (gatehouse.ActionRecord, error) {
	rec, err := f.ActionStore.TransitionAction(ctx, t)
	if err == nil || errors.Is(err, gatehouse.ErrActionExpired) {
		f.s.publishAction(rec)
	}
	return rec, err
}

func (s *Service) publishAction(rec gatehouse.ActionRecord) {
	s.publish(gatehouse.Event{Kind: gatehouse.EventAction, Version: s.Version(), Action: &rec})
}
