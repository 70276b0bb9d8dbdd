package guard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// fakeActions answers reservations with their ids, after the gate opens
// for the first call, and records the batches it was given.
type fakeActions struct {
	gatehouse.ActionStore
	gate    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	batches [][]string
	reserve func(rs []gatehouse.Reservation) ([]gatehouse.ReserveResult, error)
}

func (f *fakeActions) ReserveActions(_ context.Context, rs []gatehouse.Reservation) ([]gatehouse.ReserveResult, error) {
	f.once.Do(func() { <-f.gate })
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.Record.ID
	}
	f.mu.Lock()
	f.batches = append(f.batches, ids)
	f.mu.Unlock()
	if f.reserve != nil {
		return f.reserve(rs)
	}
	return echo(rs), nil
}

func echo(rs []gatehouse.Reservation) []gatehouse.ReserveResult {
	out := make([]gatehouse.ReserveResult, len(rs))
	for i, r := range rs {
		out[i].Record = r.Record
	}
	return out
}

type outcome struct {
	id  string
	err error
}

// queue makes the calls named ids while the store holds the first one,
// each with ctx, and returns their outcomes by id once the gate opened.
func queue(t *testing.T, f *fakeActions, ctx func(id string) context.Context, ids ...string) map[string]outcome {
	t.Helper()
	b := &batcher{actions: f}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out = map[string]outcome{}
	)
	call := func(id string) {
		defer wg.Done()
		res, err := b.reserve(ctx(id), gatehouse.Reservation{Record: gatehouse.ActionRecord{ID: id}})
		mu.Lock()
		out[id] = outcome{res.Record.ID, err}
		mu.Unlock()
	}
	wg.Add(len(ids))
	go call(ids[0])
	// The first call leads and waits at the gate; the others queue.
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.running && len(b.queue) == 0 })
	for _, id := range ids[1:] {
		go call(id)
	}
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == len(ids)-1 })
	close(f.gate)
	wg.Wait()
	return out
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the batcher")
		}
		time.Sleep(time.Millisecond)
	}
}

func background(string) context.Context { return context.Background() }

func TestBatcherGroupsWaitingCalls(t *testing.T) {
	f := &fakeActions{gate: make(chan struct{})}
	ids := []string{"lead", "a", "b", "c", "d"}
	out := queue(t, f, background, ids...)
	for _, id := range ids {
		if out[id] != (outcome{id: id}) {
			t.Errorf("call %s got %+v, want its own record", id, out[id])
		}
	}
	if len(f.batches) != 2 || !slices.Equal(f.batches[0], []string{"lead"}) || len(f.batches[1]) != 4 {
		t.Errorf("batches %v, want [lead] then the four that waited", f.batches)
	}
}

func TestBatcherSkipsCallsThatGaveUp(t *testing.T) {
	f := &fakeActions{gate: make(chan struct{})}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	out := queue(t, f, func(id string) context.Context {
		if id == "gone" {
			return cancelled
		}
		return context.Background()
	}, "lead", "gone", "stays")
	if !errors.Is(out["gone"].err, context.Canceled) || out["stays"].err != nil {
		t.Errorf("outcomes %+v, want gone cancelled and stays reserved", out)
	}
	for _, b := range f.batches {
		if slices.Contains(b, "gone") {
			t.Errorf("the store was given a reservation whose caller gave up: %v", f.batches)
		}
	}
}

// A batch the store refuses as invalid is retried one by one: only the
// bad reservation fails.
func TestBatcherIsolatesInvalidReservations(t *testing.T) {
	f := &fakeActions{gate: make(chan struct{})}
	f.reserve = func(rs []gatehouse.Reservation) ([]gatehouse.ReserveResult, error) {
		for _, r := range rs {
			if r.Record.ID == "bad" {
				return nil, fmt.Errorf("record bad: %w", gatehouse.ErrInvalid)
			}
		}
		return echo(rs), nil
	}
	out := queue(t, f, background, "lead", "good", "bad", "fine")
	for id, o := range out {
		if wantErr := id == "bad"; wantErr != errors.Is(o.err, gatehouse.ErrInvalid) || !wantErr && o.id != id {
			t.Errorf("call %s got %+v", id, o)
		}
	}
}

// A store that panics or miscounts fails every call of the batch; none
// waits forever.
func TestBatcherFailsClosed(t *testing.T) {
	for name, reserve := range map[string]func([]gatehouse.Reservation) ([]gatehouse.ReserveResult, error){
		"panic":     func([]gatehouse.Reservation) ([]gatehouse.ReserveResult, error) { panic("store exploded") },
		"miscounts": func(rs []gatehouse.Reservation) ([]gatehouse.ReserveResult, error) { return echo(rs[1:]), nil },
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeActions{gate: make(chan struct{}), reserve: reserve}
			out := queue(t, f, background, "lead", "a", "b")
			for id, o := range out {
				if o.err == nil {
					t.Errorf("call %s got %+v, want an error", id, o)
				}
			}
		})
	}
}
