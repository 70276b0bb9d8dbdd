package gatehouse

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Op says what a Change does to one object.
type Op string

// Change operations.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Change is one object's before and after. Before is nil on create, After is
// nil on delete. Pos is the object's position after the change (see Object).
type Change struct {
	Kind   Kind            `json:"kind"`
	ID     string          `json:"id"`
	Pos    int             `json:"pos,omitempty"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// Op returns what the change does.
func (c Change) Op() Op {
	switch {
	case c.Before == nil:
		return OpCreate
	case c.After == nil:
		return OpDelete
	}
	return OpUpdate
}

// Validate reports a change no store may write (ErrInvalid): an unknown
// kind, an id that is empty or not UTF-8 text, neither Before nor After, or
// an After that is not valid UTF-8 JSON.
func (c Change) Validate() error {
	switch {
	case !slices.Contains(Kinds, c.Kind):
		return Invalidf("change %s/%s: unknown kind %q", c.Kind, c.ID, c.Kind)
	case c.ID == "" || !utf8.ValidString(c.ID) || strings.IndexByte(c.ID, 0) >= 0:
		return Invalidf("change %s/%q: id must be non-empty UTF-8 text", c.Kind, c.ID)
	case c.Before == nil && c.After == nil:
		return Invalidf("change %s/%s: neither before nor after", c.Kind, c.ID)
	case c.After != nil && (!json.Valid(c.After) || !utf8.Valid(c.After)):
		return Invalidf("change %s/%s: after is not valid UTF-8 JSON", c.Kind, c.ID)
	}
	return nil
}

// AuditEvent is one decision or one change, hash-chained to its predecessor.
// The store assigns Seq, PrevHash and Hash when it appends the event; the
// caller sets everything else. Times are truncated to microseconds so every
// store keeps them exactly.
type AuditEvent struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is who caused the event: "user:EMAIL", "agent:ID", "cli:USER", "system".
	Actor string `json:"actor"`
	// Action is what happened, e.g. "policy.create", "user.promote", "decision".
	Action string `json:"action"`
	// Target is the object concerned, "KIND/ID".
	Target string          `json:"target,omitempty"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	// Detail holds action-specific data (a decision's request and reason).
	Detail   json.RawMessage `json:"detail,omitempty"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	// AfterSeq returns only events with Seq > AfterSeq (cursor pagination).
	AfterSeq int64
	// BeforeSeq, when positive, returns only events with Seq < BeforeSeq
	// (the cursor of newest-first pagination).
	BeforeSeq int64
	// Newest returns the matching events newest first, in descending Seq
	// order, so that Limit keeps the newest of them.
	Newest bool
	Actor  string
	Action string
	// TargetPrefix matches events whose Target starts with it.
	TargetPrefix string
	// Kind, when set, is AuditKindDecision (the events of action
	// ActionDecision) or AuditKindChange (every other event); anything
	// else is ErrInvalid.
	Kind string
	// Reason matches the decision events whose detail records that reason
	// code (detail.reason); it selects decisions only.
	Reason string
	// Since is inclusive, Until exclusive.
	Since, Until time.Time
	// Limit caps the number of events: 0 means 100, more than 10000 is
	// capped at 10000, negative is ErrInvalid.
	Limit int
}

// ActionDecision is the action of the audit events that record decisions;
// their detail holds the question and the reason code.
const ActionDecision = "decision"

// The kinds of audit event AuditFilter.Kind selects.
const (
	// AuditKindDecision selects the decisions (action ActionDecision).
	AuditKindDecision = "decision"
	// AuditKindChange selects every other event: policy and account
	// changes, action lifecycle, tool calls, billing, checkpoints.
	AuditKindChange = "change"
)

// CheckKind returns ErrInvalid if f.Kind is neither empty nor one of the
// AuditKind constants.
func (f AuditFilter) CheckKind() error {
	switch f.Kind {
	case "", AuditKindDecision, AuditKindChange:
		return nil
	}
	return Invalidf("audit filter: unknown kind %q", f.Kind)
}

// AuditHead is the newest event's sequence number and hash; Seq 0 means the
// log is empty.
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// AuditBase is where an audit chain pruned by retention begins: the events
// of the pruned action up to Seq were deleted, the chain after Seq links to
// Hash (the hash event Seq had), and the events at or before Seq that remain
// hash together to Retained (see audit.RetainedDigest). The zero AuditBase
// means nothing was pruned.
type AuditBase struct {
	Seq      int64  `json:"seq"`
	Hash     string `json:"hash"`
	Retained string `json:"retained"`
}

// PolicyStore persists the policy as objects under a version that every
// commit bumps.
type PolicyStore interface {
	// LoadPolicy returns every stored object and the policy version. An
	// empty store returns no objects at version 0.
	LoadPolicy(ctx context.Context) ([]Object, int64, error)
	// PolicyVersion returns the current policy version.
	PolicyVersion(ctx context.Context) (int64, error)
	// CommitPolicy writes changes and appends events in one transaction and
	// returns the new version: base+1, or base when changes is empty. It
	// returns ErrConflict, changing nothing, if the stored version is not
	// base; ErrInvalid for a change whose Before does not match the stored
	// object, an unknown kind, an empty id, invalid JSON, or an invalid
	// event. After a successful commit it fills Seq, PrevHash, Hash (and a
	// zero Time, from the store's clock) into events, as AppendAudit does.
	CommitPolicy(ctx context.Context, base int64, changes []Change, events []AuditEvent) (int64, error)
}

// PolicyScanner is a PolicyStore that can hand its objects over one at a
// time, so that a loader need not hold every body at once: a million-user
// policy's bodies are most of a loading process's peak memory.
type PolicyScanner interface {
	// ScanPolicy calls fn with every stored object, in any order, from one
	// consistent read, and returns the policy version of that read. fn
	// must not keep the object's Body; an error from fn ends the scan and
	// is returned.
	ScanPolicy(ctx context.Context, fn func(Object) error) (int64, error)
}

// AuditLog is the append-only, hash-chained audit trail.
type AuditLog interface {
	// AppendAudit appends events in order in one transaction, assigning Seq,
	// PrevHash and Hash; it fills those fields in events after the commit.
	// An event without time, actor or action, or with invalid JSON, is
	// ErrInvalid (see audit.Validate).
	AppendAudit(ctx context.Context, events []AuditEvent) error
	// ListAudit returns events matching f in Seq order (descending with
	// f.Newest), using an index for every filter.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// AuditHead returns the newest event's Seq and Hash as the store recorded
	// them when appending; a verifier compares the chain's end against it.
	AuditHead(ctx context.Context) (AuditHead, error)
	// AuditBase returns where the chain begins after pruning; zero if it
	// was never pruned.
	AuditBase(ctx context.Context) (AuditBase, error)
	// PruneAudit deletes, in one transaction, the events of action up to
	// the last event older than before, and records the new base (see
	// AuditBase). Other events stay, so the chain still verifies. It
	// returns the base and how many events it deleted; a before that adds
	// nothing to the recorded base deletes nothing.
	PruneAudit(ctx context.Context, action string, before time.Time) (AuditBase, int64, error)
}

// ActionStore keeps agent action records: the limit reservations and
// confirmation lifecycle of allowed actions. Every write is one transaction
// that also appends the record's audit event (see ActionEvent), so
// concurrent writers, in any number of processes, can never exceed a limit.
type ActionStore interface {
	// ReserveActions stores the records of rs in order, in one
	// transaction, each as if alone after the ones before it: a record is
	// stored unless its subject already used its idempotency key (then the
	// result carries the stored record, Replayed) or a window limit of its
	// reservation would be exceeded (then nothing is stored for it and
	// Exceeded names the limit). Counted are the records of the same tenant
	// and action created after Record.CreatedAt-Window whose status holds
	// capacity at Record.CreatedAt, those stored earlier in rs included.
	// One result per reservation, in order. An error stores nothing;
	// ErrInvalid for a record without id, tenant, action, subject, status
	// or times.
	ReserveActions(ctx context.Context, rs []Reservation) ([]ReserveResult, error)
	// TransitionAction moves a record as ApplyTransition does and records
	// the event; ErrNotFound for an unknown id, ErrIllegalTransition, or
	// ErrActionExpired after recording the expiry of a pending record
	// whose time has passed (the returned record is then expired).
	TransitionAction(ctx context.Context, t Transition) (ActionRecord, error)
	// GetAction returns the record with id, its status as of now (see
	// ActionRecord.StatusAt); ErrNotFound if there is none.
	GetAction(ctx context.Context, id string, now time.Time) (ActionRecord, error)
	// FindAction returns the record subject stored under idempotency key,
	// its status as of now; ErrNotFound if there is none.
	FindAction(ctx context.Context, subject, key string, now time.Time) (ActionRecord, error)
	// ListActions returns the records matching f in Seq order, statuses as
	// of f.Now.
	ListActions(ctx context.Context, f ActionFilter) ([]ActionRecord, error)
	// ActionUsage counts, and sums the amounts of, the records of tenant
	// and action that ReserveActions counts for a reservation created at
	// now with this window: those created after now-window, later than now
	// included (a window has no upper end), whose status as of now (see
	// ActionRecord.StatusAt) holds capacity: confirmed, executed, or pending
	// with an expiry after now. now is truncated to the microsecond, as a
	// stored CreatedAt is, and the bound is exact to the nanosecond: a
	// record created at now-window does not count, one a microsecond later
	// does. It is one indexed read and writes nothing; ErrInvalid for a
	// window that is not positive.
	ActionUsage(ctx context.Context, tenant, action string, window time.Duration, now time.Time) (count, total int64, err error)
}

// Store is everything a Gatehouse deployment persists.
type Store interface {
	PolicyStore
	AuditLog
	ActionStore
	BillingStore
	APIKeyStore
	// CheckWritable returns nil if a write could succeed now, else why not,
	// wrapping ErrUnavailable (a database file deleted or replaced under
	// the store, a read-only file or server, a lost connection). Readiness
	// checks call it; it writes nothing.
	CheckWritable(ctx context.Context) error
	Close() error
}

// Dump is a whole store as one consistent snapshot: what a backup holds and
// a restore writes.
type Dump struct {
	// SchemaVersion is the migration version of the store dumped.
	SchemaVersion int
	// Version is the policy version and Objects the stored objects, sorted
	// as SortObjects sorts them.
	Version int64
	Objects []Object
	// Head is the recorded audit head. Events yields the audit events from
	// seq 1 to Head.Seq in order, byte for byte as stored, and stops after
	// the first error it yields.
	Head   AuditHead
	Events iter.Seq2[AuditEvent, error]
	// Base is where the pruned chain begins, and EventCount how many
	// events Events yields (Head.Seq when nothing was pruned).
	Base       AuditBase
	EventCount int64
	// Actions yields the agent action records in Seq order, Customers and
	// BillingEvents the billing state, APIKeys the API keys (with their
	// hashes) by id, Threads the chat threads by id, Messages their
	// messages by thread and Seq, and Attachments the attachments (with
	// their data) by id; Counts says how many rows each yields. A nil
	// sequence yields nothing.
	Actions       iter.Seq2[ActionRecord, error]
	Customers     iter.Seq2[BillingCustomer, error]
	BillingEvents iter.Seq2[BillingEvent, error]
	APIKeys       iter.Seq2[APIKey, error]
	Threads       iter.Seq2[Thread, error]
	Messages      iter.Seq2[Message, error]
	Attachments   iter.Seq2[Attachment, error]
	Counts        DumpCounts
}

// DumpCounts counts the rows a Dump streams beside the audit trail.
type DumpCounts struct {
	Actions       int64 `json:"actions"`
	Customers     int64 `json:"billing_customers"`
	BillingEvents int64 `json:"billing_events"`
	APIKeys       int64 `json:"api_keys"`
	Threads       int64 `json:"chat_threads"`
	Messages      int64 `json:"chat_messages"`
	Attachments   int64 `json:"chat_attachments"`
}

// Validate reports objects no store may restore (ErrInvalid): an object
// that is not a valid create (see Change.Validate), two objects of the same
// kind and id, a negative version, or objects at version 0, which no commit
// leaves.
func (d Dump) Validate() error {
	if d.Version < 0 || (d.Version == 0 && len(d.Objects) > 0) {
		return Invalidf("dump: %d objects at policy version %d", len(d.Objects), d.Version)
	}
	type key struct {
		kind Kind
		id   string
	}
	seen := make(map[key]bool, len(d.Objects))
	for _, o := range d.Objects {
		if err := (Change{Kind: o.Kind, ID: o.ID, Pos: o.Pos, After: o.Body}).Validate(); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		k := key{o.Kind, o.ID}
		if seen[k] {
			return Invalidf("dump: object %s/%s appears twice", o.Kind, o.ID)
		}
		seen[k] = true
	}
	return nil
}

// Dumper reads a whole store for a backup.
type Dumper interface {
	// Dump calls fn with the whole store as one read transaction sees it;
	// writers are not blocked. The sequences of d stream from that
	// transaction and may be ranged over once each, inside fn only, in the
	// order Events, Actions, Customers, BillingEvents, APIKeys, Threads,
	// Messages, Attachments. Dump returns fn's error.
	Dump(ctx context.Context, fn func(d Dump) error) error
}

// Restorer fills an empty store from a Dump.
type Restorer interface {
	// Restore writes d's objects and policy version, the events d.Events
	// yields, verbatim with their seqs and hashes, and the action records,
	// billing state, API keys and chat threads, messages and attachments
	// the other sequences yield, verbatim, in one transaction, and
	// records d.Head as the audit head. It ranges over the sequences once
	// each, in the order Dumper gives; d.SchemaVersion and d.Counts are the
	// caller's to check. It changes nothing and returns an error wrapping
	// ErrNotEmpty if the store holds an object, an event, an action record,
	// billing state, an API key, a chat thread or a policy version other
	// than 0; ErrInvalid if d fails Validate, an action record, API key,
	// thread, message or attachment fails its Validate, or a message or
	// attachment is of a thread d does not hold; an
	// *audit.ChainError (ErrCorrupt) at the first event that is invalid or
	// does not chain, as audit.Verified checks them, or if the chain does
	// not end at d.Head; and the first error a sequence yields, if any.
	Restore(ctx context.Context, d Dump) error
}
