// Package memstore implements gatehouse.Store, gatehouse.ThreadStore,
// gatehouse.Dumper and gatehouse.Restorer in memory: the store of tests that
// need a store but not a database, and of `gatehouse serve --db :memory:`.
// It passes the storetest conformance suite, so it keeps what a database
// keeps the way the database keeps it: times in UTC microseconds, raw JSON
// byte for byte, the audit chain, optimistic version conflicts.
//
// One mutex guards the whole store; each write holds it from its first
// check to its last change, so every write is one transaction, and a write
// that fails changes nothing. Reads copy what they return, so callers never
// share memory with the store. Nothing survives Close or the process.
package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// SchemaVersion is the migration version of the SQLite and PostgreSQL
// schemas whose contents this store holds: what its dumps record, so that
// an archive of it restores into either database.
const SchemaVersion = 7

// Option configures New.
type Option func(*Store)

// WithClock sets the clock that times audit events appended without a time;
// the default is the wall clock.
func WithClock(c gatehouse.Clock) Option {
	return func(s *Store) { s.clock = c }
}

// Store is a Gatehouse store in memory. It is safe for concurrent use.
type Store struct {
	clock gatehouse.Clock

	mu     sync.RWMutex
	closed bool
	st     *state
}

var (
	_ gatehouse.Store       = (*Store)(nil)
	_ gatehouse.ThreadStore = (*Store)(nil)
	_ gatehouse.Dumper      = (*Store)(nil)
	_ gatehouse.Restorer    = (*Store)(nil)
)

// state is everything the store holds; Restore builds a new one and swaps
// it in whole.
type state struct {
	version int64
	objects map[objectKey]gatehouse.Object

	// events are in Seq order; pruning removes some.
	events []gatehouse.AuditEvent
	head   gatehouse.AuditHead
	base   gatehouse.AuditBase

	// actions are in Seq order; byID and byKey index them.
	actions []gatehouse.ActionRecord
	byID    map[string]int
	byKey   map[subjectKey]int

	customers     map[string]gatehouse.BillingCustomer
	billingEvents map[string]gatehouse.BillingEvent
	apiKeys       map[string]gatehouse.APIKey

	threads     map[string]*thread
	messageIDs  map[string]bool
	attachments map[string]gatehouse.Attachment
}

type objectKey struct {
	kind gatehouse.Kind
	id   string
}

type subjectKey struct{ subject, key string }

// thread is a chat thread with its messages in Seq order.
type thread struct {
	gatehouse.Thread
	messages []gatehouse.Message
}

func newState() *state {
	return &state{
		objects:       map[objectKey]gatehouse.Object{},
		byID:          map[string]int{},
		byKey:         map[subjectKey]int{},
		customers:     map[string]gatehouse.BillingCustomer{},
		billingEvents: map[string]gatehouse.BillingEvent{},
		apiKeys:       map[string]gatehouse.APIKey{},
		threads:       map[string]*thread{},
		messageIDs:    map[string]bool{},
		attachments:   map[string]gatehouse.Attachment{},
	}
}

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{clock: gatehouse.SystemClock{}, st: newState()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Close discards everything the store holds; every later call fails with
// an error wrapping gatehouse.ErrUnavailable. Closing twice is not an error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed, s.st = true, nil
	return nil
}

// CheckWritable returns nil unless the store is closed.
func (s *Store) CheckWritable(ctx context.Context) error {
	return s.read(ctx, "check writable", func(*state) error { return nil })
}

// read runs fn holding the read lock.
func (s *Store) read(ctx context.Context, op string, fn func(st *state) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s: %w", op, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("memstore: %s: the store is closed: %w", op, gatehouse.ErrUnavailable)
	}
	return fn(s.st)
}

// write runs fn holding the write lock: fn must check everything before it
// changes anything, so that an error leaves the store as it was.
func (s *Store) write(ctx context.Context, op string, fn func(st *state) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s: %w", op, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("memstore: %s: the store is closed: %w", op, gatehouse.ErrUnavailable)
	}
	return fn(s.st)
}

// stamp is t as a database keeps it: UTC, truncated to the microsecond;
// the zero time stays zero.
func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// raw is a copy of r as a database keeps it: empty JSON is none (nil).
func raw(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return nil
	}
	return slices.Clone(r)
}

// data is a copy of b; empty is nil, as the databases read it back.
func data(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}
