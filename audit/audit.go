// Package audit seals and verifies the hash chain of the audit trail.
//
// Every event is hashed over its canonical encoding, which includes the hash
// of its predecessor, so editing, deleting or reordering a stored event
// breaks the chain at that event; truncating the tail is caught by comparing
// the chain's end with the head the store recorded. Because whoever can
// write the store can also reseal it, Checkpoints signed with a key kept
// outside the store pin the chain's head at points in time, change events
// carry the hash of the object they stored (ObjectHash) so that VerifyWith
// can name stored objects no event explains, and a chain pruned by
// retention begins at a recorded gatehouse.AuditBase. The package does no
// I/O: stores call Validate and Seal inside their append transaction, and
// Verify reads a log through the gatehouse.AuditLog interface.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// Canonical returns the deterministic encoding of e that its hash covers:
// every field except Hash, as a JSON object with the keys seq, time, actor,
// action, target, before, after, detail and prev_hash in that order. The time
// is UTC RFC 3339 with nanoseconds, truncated to microseconds; raw JSON
// fields are compacted (so insignificant whitespace is not covered), and an
// absent one is null. A raw field that is not valid JSON is encoded as a
// JSON string of its bytes; Validate rejects such events, and Verifier
// reports them as edited.
func Canonical(e gatehouse.AuditEvent) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// HTML characters stay unescaped so the encoding is easy to reproduce
	// outside Go.
	enc.SetEscapeHTML(false)
	str := func(s string) {
		// Encoding a string cannot fail; Encode appends a newline, dropped here.
		_ = enc.Encode(s)
		b.Truncate(b.Len() - 1)
	}
	raw := func(r json.RawMessage) {
		if len(r) == 0 {
			b.WriteString("null")
			return
		}
		n := b.Len()
		if err := json.Compact(&b, r); err != nil {
			b.Truncate(n)
			str(string(r))
		}
	}
	b.WriteString(`{"seq":`)
	b.WriteString(strconv.FormatInt(e.Seq, 10))
	b.WriteString(`,"time":`)
	str(canonicalTime(e.Time).Format(time.RFC3339Nano))
	b.WriteString(`,"actor":`)
	str(e.Actor)
	b.WriteString(`,"action":`)
	str(e.Action)
	b.WriteString(`,"target":`)
	str(e.Target)
	b.WriteString(`,"before":`)
	raw(e.Before)
	b.WriteString(`,"after":`)
	raw(e.After)
	b.WriteString(`,"detail":`)
	raw(e.Detail)
	b.WriteString(`,"prev_hash":`)
	str(e.PrevHash)
	b.WriteByte('}')
	return b.Bytes()
}

// Hash returns the hex-encoded SHA-256 of e's canonical encoding.
func Hash(e gatehouse.AuditEvent) string {
	sum := sha256.Sum256(Canonical(e))
	return hex.EncodeToString(sum[:])
}

// Seal chains e to prev, the head of the log it is appended to: it sets
// e.Seq to prev.Seq+1, e.PrevHash to prev.Hash ("" for the first event),
// truncates e.Time to microseconds in UTC and sets e.Hash.
func Seal(prev gatehouse.AuditHead, e *gatehouse.AuditEvent) {
	e.Seq = prev.Seq + 1
	e.PrevHash = prev.Hash
	e.Time = canonicalTime(e.Time)
	e.Hash = Hash(*e)
}

// Validate reports, wrapping gatehouse.ErrInvalid, an event a store must not
// append: no time, actor or action; a time outside the years 1 to 9999 (what
// RFC 3339 and every store can hold); a string that is not valid UTF-8 or
// holds a NUL byte; or a before, after or detail that is not valid UTF-8 JSON.
// Every store runs it, so every store accepts the same events.
func Validate(e gatehouse.AuditEvent) error {
	switch {
	case e.Time.IsZero():
		return gatehouse.Invalidf("audit event: no time")
	case e.Actor == "":
		return gatehouse.Invalidf("audit event: no actor")
	case e.Action == "":
		return gatehouse.Invalidf("audit event: no action")
	case e.Time.UTC().Year() < 1 || e.Time.UTC().Year() > 9999:
		return gatehouse.Invalidf("audit event: time %v outside the years 1 to 9999", e.Time)
	}
	for _, f := range []struct{ name, s string }{{"actor", e.Actor}, {"action", e.Action}, {"target", e.Target}} {
		if !utf8.ValidString(f.s) || strings.IndexByte(f.s, 0) >= 0 {
			return gatehouse.Invalidf("audit event: %s %q is not valid UTF-8 text", f.name, f.s)
		}
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"before", e.Before}, {"after", e.After}, {"detail", e.Detail}} {
		if len(f.raw) > 0 && (!json.Valid(f.raw) || !utf8.Valid(f.raw)) {
			return gatehouse.Invalidf("audit event: %s is not valid UTF-8 JSON", f.name)
		}
	}
	return nil
}

func canonicalTime(t time.Time) time.Time {
	return t.Truncate(time.Microsecond).UTC()
}

// Chain error reasons; stable, like reason codes.
const (
	// ReasonHashMismatch: the event's stored hash is not the hash of its
	// contents, or its contents are not a valid event — it was edited.
	ReasonHashMismatch = "hash_mismatch"
	// ReasonSeqGap: the event's seq is not its predecessor's plus one — an
	// event was deleted or events were reordered.
	ReasonSeqGap = "seq_gap"
	// ReasonPrevHashMismatch: the event does not chain to its predecessor's
	// hash — the predecessor was replaced or removed.
	ReasonPrevHashMismatch = "prev_hash_mismatch"
	// ReasonHeadMismatch: the chain does not end at the head the store
	// recorded — the tail was truncated, or the head was altered.
	ReasonHeadMismatch = "head_mismatch"
	// ReasonRetainedMismatch: the events kept before a pruned base are not
	// those retention kept — one was edited, added or deleted since.
	ReasonRetainedMismatch = "retained_mismatch"
)

// RetainedDigest hashes the seq and hash of the events a prune keeps at or
// before its base, in Seq order, so that none can be removed, added or
// replaced later without the verifier noticing.
type RetainedDigest struct{ h hash.Hash }

// NewRetainedDigest returns the digest of no events.
func NewRetainedDigest() *RetainedDigest { return &RetainedDigest{h: sha256.New()} }

// Add adds the event seq with hash.
func (d *RetainedDigest) Add(seq int64, hash string) {
	d.h.Write([]byte(strconv.FormatInt(seq, 10) + " " + hash + "\n"))
}

// Sum returns the hex digest of the events added so far.
func (d *RetainedDigest) Sum() string { return hex.EncodeToString(d.h.Sum(nil)) }

// ChainError reports the first event at which the audit chain breaks. It
// wraps gatehouse.ErrCorrupt.
type ChainError struct {
	// Seq is the first bad event's sequence number; for a gap or a
	// truncated tail, the first missing one.
	Seq int64
	// Reason is one of the Reason constants.
	Reason string
	// Detail says what was found, for humans.
	Detail string
}

// Error names the seq and the reason.
func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s: %s", e.Seq, e.Reason, e.Detail)
}

// Unwrap returns gatehouse.ErrCorrupt.
func (e *ChainError) Unwrap() error { return gatehouse.ErrCorrupt }

// Verifier checks a stream of events, in Seq order from the first, one at a
// time, so a log of any size is verified in constant memory. After the
// first error every call returns that error.
type Verifier struct {
	head gatehouse.AuditHead
	err  error
	// base is where a pruned chain begins; events up to base.Seq may have
	// gaps and are checked one by one and by their digest, until crossed.
	base     gatehouse.AuditBase
	retained *RetainedDigest
	crossed  bool
}

// NewVerifier returns a verifier expecting the log's first event.
func NewVerifier() *Verifier { return NewVerifierFrom(gatehouse.AuditBase{}) }

// NewVerifierFrom returns a verifier for a chain pruned to base.
func NewVerifierFrom(base gatehouse.AuditBase) *Verifier {
	return &Verifier{base: base, retained: NewRetainedDigest(), crossed: base.Seq == 0}
}

// Next checks that e is the successor of the events seen so far and returns
// a *ChainError if it is not.
func (v *Verifier) Next(e gatehouse.AuditEvent) error {
	if v.err != nil {
		return v.err
	}
	if !v.crossed && e.Seq <= v.base.Seq {
		return v.nextRetained(e)
	}
	if err := v.cross(); err != nil {
		return err
	}
	if want := v.head.Seq + 1; e.Seq != want {
		v.err = &ChainError{Seq: want, Reason: ReasonSeqGap,
			Detail: fmt.Sprintf("expected event %d, found event %d", want, e.Seq)}
		return v.err
	}
	if err := v.contents(e); err != nil {
		return err
	}
	if e.PrevHash != v.head.Hash {
		v.err = &ChainError{Seq: e.Seq, Reason: ReasonPrevHashMismatch,
			Detail: fmt.Sprintf("prev_hash %s, event %d has hash %s", e.PrevHash, v.head.Seq, v.head.Hash)}
		return v.err
	}
	v.head = gatehouse.AuditHead{Seq: e.Seq, Hash: e.Hash}
	return nil
}

// contents checks that e is valid and hashes to its stored hash.
func (v *Verifier) contents(e gatehouse.AuditEvent) error {
	if err := Validate(e); err != nil {
		v.err = &ChainError{Seq: e.Seq, Reason: ReasonHashMismatch, Detail: err.Error()}
		return v.err
	}
	if h := Hash(e); h != e.Hash {
		v.err = &ChainError{Seq: e.Seq, Reason: ReasonHashMismatch,
			Detail: fmt.Sprintf("stored hash %s, contents hash to %s", e.Hash, h)}
		return v.err
	}
	return nil
}

// nextRetained checks an event kept at or before the base: in order, intact,
// and part of the retained digest.
func (v *Verifier) nextRetained(e gatehouse.AuditEvent) error {
	if e.Seq <= v.head.Seq {
		v.err = &ChainError{Seq: e.Seq, Reason: ReasonSeqGap,
			Detail: fmt.Sprintf("event %d after event %d", e.Seq, v.head.Seq)}
		return v.err
	}
	if err := v.contents(e); err != nil {
		return err
	}
	v.retained.Add(e.Seq, e.Hash)
	v.head = gatehouse.AuditHead{Seq: e.Seq, Hash: e.Hash}
	return nil
}

// cross leaves the pruned part: the events kept there must be exactly those
// the base's digest covers, and the chain goes on from the base's hash.
func (v *Verifier) cross() error {
	if v.crossed {
		return nil
	}
	v.crossed = true
	if got := v.retained.Sum(); got != v.base.Retained {
		v.err = &ChainError{Seq: v.base.Seq, Reason: ReasonRetainedMismatch,
			Detail: fmt.Sprintf("the events kept up to the pruned base %d hash to %s, the base records %s", v.base.Seq, got, v.base.Retained)}
		return v.err
	}
	v.head = gatehouse.AuditHead{Seq: v.base.Seq, Hash: v.base.Hash}
	return nil
}

// Head returns the last event that verified; Seq 0 before the first.
func (v *Verifier) Head() gatehouse.AuditHead { return v.head }

// Finish checks that the chain verified so far ends at recorded, the head
// the store recorded, and returns a *ChainError with ReasonHeadMismatch if
// it does not: fewer events mean a truncated tail, more events or another
// hash an altered head.
func (v *Verifier) Finish(recorded gatehouse.AuditHead) error {
	if v.err != nil {
		return v.err
	}
	if err := v.cross(); err != nil {
		return err
	}
	if recorded == v.head {
		return nil
	}
	seq := v.head.Seq
	switch {
	case recorded.Seq > v.head.Seq:
		seq = v.head.Seq + 1
	case recorded.Seq < v.head.Seq:
		seq = recorded.Seq + 1
	}
	v.err = &ChainError{Seq: seq, Reason: ReasonHeadMismatch,
		Detail: fmt.Sprintf("chain ends at event %d (%s), store recorded event %d (%s)",
			v.head.Seq, v.head.Hash, recorded.Seq, recorded.Hash)}
	return v.err
}

// ListAudit limits every store applies (see gatehouse.AuditFilter).
const (
	DefaultListLimit = 100
	MaxListLimit     = 10000
)

// ListLimit turns an AuditFilter's Limit into the number of events to
// return: DefaultListLimit for 0, at most MaxListLimit, ErrInvalid when
// negative.
func ListLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, gatehouse.Invalidf("list audit: negative limit %d", limit)
	case limit == 0:
		return DefaultListLimit, nil
	case limit > MaxListLimit:
		return MaxListLimit, nil
	}
	return limit, nil
}

// Prepare returns a copy of events ready for a store to seal: a missing time
// becomes now, and every event must pass Validate (ErrInvalid naming the
// event's index otherwise).
func Prepare(events []gatehouse.AuditEvent, now time.Time) ([]gatehouse.AuditEvent, error) {
	out := slices.Clone(events)
	for i := range out {
		if out[i].Time.IsZero() {
			out[i].Time = now
		}
		if err := Validate(out[i]); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
	}
	return out, nil
}

// PrepareCommit is what every store checks before CommitPolicy writes
// anything: each change passes gatehouse.Change.Validate and the events pass
// Prepare. It returns the prepared events.
func PrepareCommit(changes []gatehouse.Change, events []gatehouse.AuditEvent, now time.Time) ([]gatehouse.AuditEvent, error) {
	for _, c := range changes {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("commit policy: %w", err)
		}
	}
	sealed, err := Prepare(events, now)
	if err != nil {
		return nil, fmt.Errorf("commit policy: %w", err)
	}
	return sealed, nil
}
