package memstore

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// SchemaVersion returns SchemaVersion as both the store's version and the
// latest: a store in memory is never migrated.
func (s *Store) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	err = s.read(ctx, "schema version", func(*state) error { return nil })
	if err != nil {
		return 0, 0, err
	}
	return SchemaVersion, SchemaVersion, nil
}

// Dump calls fn with a copy of the whole store taken at once; writers go on
// while fn runs.
func (s *Store) Dump(ctx context.Context, fn func(d gatehouse.Dump) error) error {
	var (
		d    gatehouse.Dump
		rows dumpRows
	)
	err := s.read(ctx, "dump", func(st *state) error {
		d.SchemaVersion = SchemaVersion
		d.Objects, d.Version = st.policy()
		d.Head, d.Base = st.head, st.base
		rows = st.rows()
		return nil
	})
	if err != nil {
		return err
	}
	d.EventCount = int64(len(rows.events))
	d.Counts = gatehouse.DumpCounts{Actions: int64(len(rows.actions)), Customers: int64(len(rows.customers)),
		BillingEvents: int64(len(rows.billingEvents)), APIKeys: int64(len(rows.apiKeys)),
		Threads: int64(len(rows.threads)), Messages: int64(len(rows.messages)), Attachments: int64(len(rows.attachments))}
	d.Events, d.Actions, d.Customers = yield(rows.events), yield(rows.actions), yield(rows.customers)
	d.BillingEvents, d.APIKeys = yield(rows.billingEvents), yield(rows.apiKeys)
	d.Threads, d.Messages, d.Attachments = yield(rows.threads), yield(rows.messages), yield(rows.attachments)
	return fn(d)
}

// dumpRows are copies of the rows of a state, in the order a Dump yields
// them.
type dumpRows struct {
	events        []gatehouse.AuditEvent
	actions       []gatehouse.ActionRecord
	customers     []gatehouse.BillingCustomer
	billingEvents []gatehouse.BillingEvent
	apiKeys       []gatehouse.APIKey
	threads       []gatehouse.Thread
	messages      []gatehouse.Message
	attachments   []gatehouse.Attachment
}

func (st *state) rows() dumpRows {
	var r dumpRows
	for _, e := range st.events {
		r.events = append(r.events, storedEvent(e))
	}
	for _, a := range st.actions {
		r.actions = append(r.actions, storedAction(a))
	}
	for _, id := range slices.Sorted(maps.Keys(st.customers)) {
		r.customers = append(r.customers, st.customers[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.billingEvents)) {
		r.billingEvents = append(r.billingEvents, st.billingEvents[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.apiKeys)) {
		r.apiKeys = append(r.apiKeys, storedAPIKey(st.apiKeys[id]))
	}
	for _, id := range slices.Sorted(maps.Keys(st.threads)) {
		th := st.threads[id]
		r.threads = append(r.threads, th.Thread)
		for _, m := range th.messages {
			r.messages = append(r.messages, storedMessage(m))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(st.attachments)) {
		r.attachments = append(r.attachments, storedAttachment(st.attachments[id]))
	}
	return r
}

func yield[T any](rows []T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// Restore writes d into the empty store in one transaction; see
// gatehouse.Restorer. It builds the new contents aside and swaps them in
// only when all of d is read and checked.
func (s *Store) Restore(ctx context.Context, d gatehouse.Dump) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("memstore: restore: %w", err)
	}
	return s.write(ctx, "restore", func(st *state) error {
		if err := st.checkEmpty(); err != nil {
			return fmt.Errorf("memstore: restore: %w", err)
		}
		next, err := restored(ctx, d)
		if err != nil {
			return fmt.Errorf("memstore: restore: %w", err)
		}
		*st = *next
		return nil
	})
}

// checkEmpty returns an error wrapping gatehouse.ErrNotEmpty unless st holds
// nothing and policy version 0.
func (st *state) checkEmpty() error {
	n := len(st.objects) + len(st.events) + len(st.actions) + len(st.customers) + len(st.billingEvents) +
		len(st.apiKeys) + len(st.threads) + len(st.attachments)
	if st.version != 0 || st.head.Seq != 0 || n > 0 {
		return fmt.Errorf("policy version %d, audit head %d, %d rows: %w", st.version, st.head.Seq, n, gatehouse.ErrNotEmpty)
	}
	return nil
}

// restored is the state d describes, read and checked in the order Dumper
// gives.
func restored(ctx context.Context, d gatehouse.Dump) (*state, error) {
	st := newState()
	st.version, st.head, st.base = d.Version, d.Head, d.Base
	for _, o := range d.Objects {
		o.Body = raw(o.Body)
		st.objects[objectKey{o.Kind, o.ID}] = o
	}
	err := insertRows(ctx, audit.VerifiedFrom(d.Events, d.Base, d.Head), func(e gatehouse.AuditEvent) error {
		st.events = append(st.events, storedEvent(e))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := insertRows(ctx, d.Actions, func(r gatehouse.ActionRecord) error {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("action record %s: %w", r.ID, err)
		}
		if _, ok := st.byID[r.ID]; ok {
			return gatehouse.Invalidf("action record %s appears twice", r.ID)
		}
		if _, ok := st.byKey[subjectKey{r.Subject, r.IdempotencyKey}]; ok && r.IdempotencyKey != "" {
			return gatehouse.Invalidf("action record %s: idempotency key %q of %s appears twice", r.ID, r.IdempotencyKey, r.Subject)
		}
		st.insertAction(r)
		return nil
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(st.actions, func(a, b gatehouse.ActionRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	for i, r := range st.actions {
		st.byID[r.ID] = i
		if r.IdempotencyKey != "" {
			st.byKey[subjectKey{r.Subject, r.IdempotencyKey}] = i
		}
	}
	if err := insertRows(ctx, d.Customers, func(cu gatehouse.BillingCustomer) error {
		if _, ok := st.customers[cu.ID]; ok {
			return gatehouse.Invalidf("billing customer %s appears twice", cu.ID)
		}
		st.customers[cu.ID] = storedCustomer(cu)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := insertRows(ctx, d.BillingEvents, func(e gatehouse.BillingEvent) error {
		if _, ok := st.billingEvents[e.ID]; ok {
			return gatehouse.Invalidf("billing event %s appears twice", e.ID)
		}
		st.billingEvents[e.ID] = storedBillingEvent(e)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := insertRows(ctx, d.APIKeys, func(k gatehouse.APIKey) error {
		if err := k.Validate(); err != nil {
			return err
		}
		if _, ok := st.apiKeys[k.ID]; ok {
			return gatehouse.Invalidf("api key %s appears twice", k.ID)
		}
		st.apiKeys[k.ID] = storedAPIKey(k)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := st.restoreThreads(ctx, d); err != nil {
		return nil, err
	}
	return st, nil
}

// restoreThreads reads the chat threads, messages and attachments of d
// into st.
func (st *state) restoreThreads(ctx context.Context, d gatehouse.Dump) error {
	if err := insertRows(ctx, d.Threads, func(t gatehouse.Thread) error {
		if err := t.Validate(); err != nil {
			return err
		}
		return st.insertThread(t)
	}); err != nil {
		return err
	}
	if err := insertRows(ctx, d.Messages, func(m gatehouse.Message) error {
		if err := m.Validate(); err != nil {
			return err
		}
		th, ok := st.threads[m.ThreadID]
		if !ok {
			return gatehouse.Invalidf("message %s: no thread %q", m.ID, m.ThreadID)
		}
		if st.messageIDs[m.ID] {
			return gatehouse.Invalidf("message %s appears twice", m.ID)
		}
		st.messageIDs[m.ID] = true
		th.messages = append(th.messages, storedMessage(m))
		return nil
	}); err != nil {
		return err
	}
	for _, th := range st.threads {
		slices.SortFunc(th.messages, func(a, b gatehouse.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	return insertRows(ctx, d.Attachments, func(a gatehouse.Attachment) error {
		if err := a.Validate(); err != nil {
			return err
		}
		if _, ok := st.threads[a.ThreadID]; !ok {
			return gatehouse.Invalidf("attachment %s: no thread %q", a.ID, a.ThreadID)
		}
		return st.insertAttachment(a)
	})
}

// insertRows calls insert with each row rows yields, and stops at the first
// error either gives, or when ctx ends. A nil rows yields nothing.
func insertRows[T any](ctx context.Context, rows iter.Seq2[T, error], insert func(T) error) error {
	if rows == nil {
		return nil
	}
	for v, err := range rows {
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = insert(v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
