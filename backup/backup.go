// Package backup writes a whole Gatehouse store — policy objects, policy
// version, the audit trail with its hashes, agent action records, billing
// state, API keys and chat threads with their messages and attachments — to
// a portable archive, and
// restores an archive into an empty store of either kind, so a deployment
// moves between SQLite and PostgreSQL with its audit chain intact.
//
// An archive is JSON lines: a Header, then one line per policy object, per
// audit event in seq order, per action record in seq order, per billing
// customer, per billing event, per API key, per chat thread, per chat
// message by thread and seq and per chat attachment, in that order. It
// streams both ways: neither writing nor restoring holds more than the
// policy in memory. The raw JSON that must stay byte for byte (object
// bodies; the before, after and detail of events, which their hashes
// cover; the arguments of a message's tool calls) is kept as a JSON string
// of its exact bytes, since embedding it would reformat it. An archive
// written before chat threads were backed up has no counts of them, which
// reads as none.
package backup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/internal/threadrows"
)

// Format and FormatVersion identify an archive; a reader refuses another
// format or a newer version.
const (
	Format        = "gatehouse-backup"
	FormatVersion = 1
)

// MaxLine bounds one line of an archive: the largest policy object or audit
// event it can hold.
const MaxLine = 64 << 20

// Header is an archive's first line.
type Header struct {
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	// SchemaVersion is the migration version of the store backed up; a
	// binary that knows fewer migrations refuses the archive.
	SchemaVersion int       `json:"schema_version"`
	PolicyVersion int64     `json:"policy_version"`
	CreatedAt     time.Time `json:"created_at"`
	Counts        Counts    `json:"counts"`
	// AuditHead is the last event's seq and hash: the chain must end there.
	AuditHead gatehouse.AuditHead `json:"audit_head"`
	// AuditBase is where the chain begins when retention pruned it; then
	// Counts.Events is below AuditHead.Seq.
	AuditBase *gatehouse.AuditBase `json:"audit_base,omitempty"`
}

// base returns where the archive's chain begins.
func (h Header) base() gatehouse.AuditBase {
	if h.AuditBase == nil {
		return gatehouse.AuditBase{}
	}
	return *h.AuditBase
}

// Counts says how many lines of each kind follow the header.
type Counts struct {
	Objects int   `json:"objects"`
	Events  int64 `json:"events"`
	gatehouse.DumpCounts
}

// line is one line after the header: exactly one field is set.
type line struct {
	Object       *objectLine                `json:"object,omitempty"`
	Event        *eventLine                 `json:"event,omitempty"`
	Action       *gatehouse.ActionRecord    `json:"action,omitempty"`
	Customer     *gatehouse.BillingCustomer `json:"billing_customer,omitempty"`
	BillingEvent *gatehouse.BillingEvent    `json:"billing_event,omitempty"`
	APIKey       *apiKeyLine                `json:"api_key,omitempty"`
	Thread       *gatehouse.Thread          `json:"chat_thread,omitempty"`
	Message      *messageLine               `json:"chat_message,omitempty"`
	Attachment   *attachmentLine            `json:"chat_attachment,omitempty"`
}

// messageLine is a chat message whose tool calls keep their arguments as
// strings of their exact bytes.
type messageLine struct {
	gatehouse.Message
	ToolCalls []threadrows.ToolCall `json:"tool_calls,omitempty"`
}

// attachmentLine is a chat attachment with its data, which the
// attachment's own JSON leaves out.
type attachmentLine struct {
	gatehouse.Attachment
	Data []byte `json:"data"`
}

// apiKeyLine is an API key with the hash of its secret, which the key's own
// JSON leaves out.
type apiKeyLine struct {
	gatehouse.APIKey
	Hash string `json:"hash"`
}

// fields counts the fields set.
func (l line) fields() int {
	n := 0
	for _, set := range []bool{l.Object != nil, l.Event != nil, l.Action != nil, l.Customer != nil,
		l.BillingEvent != nil, l.APIKey != nil, l.Thread != nil, l.Message != nil, l.Attachment != nil} {
		if set {
			n++
		}
	}
	return n
}

type objectLine struct {
	Kind gatehouse.Kind `json:"kind"`
	ID   string         `json:"id"`
	Pos  int            `json:"pos"`
	Body string         `json:"body"`
}

type eventLine struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	Target   string    `json:"target"`
	Before   *string   `json:"before"`
	After    *string   `json:"after"`
	Detail   *string   `json:"detail"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash"`
}

func rawString(raw json.RawMessage) *string {
	if len(raw) == 0 {
		return nil
	}
	s := string(raw)
	return &s
}

func stringRaw(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

func newEventLine(e gatehouse.AuditEvent) *eventLine {
	return &eventLine{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target,
		Before: rawString(e.Before), After: rawString(e.After), Detail: rawString(e.Detail),
		PrevHash: e.PrevHash, Hash: e.Hash}
}

func (l *eventLine) event() gatehouse.AuditEvent {
	return gatehouse.AuditEvent{Seq: l.Seq, Time: l.Time, Actor: l.Actor, Action: l.Action, Target: l.Target,
		Before: stringRaw(l.Before), After: stringRaw(l.After), Detail: stringRaw(l.Detail),
		PrevHash: l.PrevHash, Hash: l.Hash}
}

// Write writes the whole of src to w as an archive created at createdAt,
// from one consistent snapshot of src, and returns its header. It verifies
// the audit chain as it goes and stops with the *audit.ChainError
// (gatehouse.ErrCorrupt) of the first bad event: a broken chain is not
// backed up, and the incomplete output is refused by Restore.
func Write(ctx context.Context, w io.Writer, src gatehouse.Dumper, createdAt time.Time) (Header, error) {
	var h Header
	err := src.Dump(ctx, func(d gatehouse.Dump) error {
		h = Header{
			Format:        Format,
			FormatVersion: FormatVersion,
			SchemaVersion: d.SchemaVersion,
			PolicyVersion: d.Version,
			CreatedAt:     createdAt.UTC(),
			Counts:        Counts{Objects: len(d.Objects), Events: d.EventCount, DumpCounts: d.Counts},
			AuditHead:     d.Head,
		}
		if d.Base.Seq > 0 {
			h.AuditBase = &d.Base
		}
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(h); err != nil {
			return err
		}
		for _, o := range d.Objects {
			if err := enc.Encode(line{Object: &objectLine{Kind: o.Kind, ID: o.ID, Pos: o.Pos, Body: string(o.Body)}}); err != nil {
				return err
			}
		}
		// In the order the archive holds them; each stops the backup at its
		// first error.
		for _, write := range []func() error{
			func() error {
				return writeRows(enc, "audit events", audit.VerifiedFrom(d.Events, d.Base, d.Head), h.Counts.Events,
					func(e gatehouse.AuditEvent) line { return line{Event: newEventLine(e)} })
			},
			func() error {
				return writeRows(enc, "action records", d.Actions, d.Counts.Actions,
					func(r gatehouse.ActionRecord) line { return line{Action: &r} })
			},
			func() error {
				return writeRows(enc, "billing customers", d.Customers, d.Counts.Customers,
					func(cu gatehouse.BillingCustomer) line { return line{Customer: &cu} })
			},
			func() error {
				return writeRows(enc, "billing events", d.BillingEvents, d.Counts.BillingEvents,
					func(e gatehouse.BillingEvent) line { return line{BillingEvent: &e} })
			},
			func() error {
				return writeRows(enc, "API keys", d.APIKeys, d.Counts.APIKeys,
					func(k gatehouse.APIKey) line { return line{APIKey: &apiKeyLine{APIKey: k, Hash: k.Hash}} })
			},
			func() error {
				return writeRows(enc, "chat threads", d.Threads, d.Counts.Threads,
					func(t gatehouse.Thread) line { return line{Thread: &t} })
			},
			func() error {
				return writeRows(enc, "chat messages", d.Messages, d.Counts.Messages,
					func(m gatehouse.Message) line {
						return line{Message: &messageLine{Message: m, ToolCalls: threadrows.FromToolCalls(m.ToolCalls)}}
					})
			},
			func() error {
				return writeRows(enc, "chat attachments", d.Attachments, d.Counts.Attachments,
					func(a gatehouse.Attachment) line {
						return line{Attachment: &attachmentLine{Attachment: a, Data: a.Data}}
					})
			},
		} {
			if err := write(); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
	if err != nil {
		return Header{}, fmt.Errorf("backup: %w", err)
	}
	return h, nil
}

// writeRows writes a line for each row rows yields and checks that they are
// as many as the header counts. A nil rows yields nothing.
func writeRows[T any](enc *json.Encoder, what string, rows iter.Seq2[T, error], count int64, toLine func(T) line) error {
	var n int64
	if rows != nil {
		for v, err := range rows {
			if err != nil {
				return err
			}
			if err := enc.Encode(toLine(v)); err != nil {
				return err
			}
			n++
		}
	}
	if n != count {
		return fmt.Errorf("the store yielded %d %s, it counted %d", n, what, count)
	}
	return nil
}

// Reasons an archive is refused; stable, like reason codes.
const (
	// ReasonNotArchive: the first line is not a header of this format.
	ReasonNotArchive = "not_archive"
	// ReasonFormatVersion: the archive has a format version this binary
	// does not read.
	ReasonFormatVersion = "format_version"
	// ReasonMalformed: a line that does not decode, or one of another kind
	// than the header's counts put there.
	ReasonMalformed = "malformed"
	// ReasonTruncated: the archive ends before the lines its header
	// counts.
	ReasonTruncated = "truncated"
	// ReasonTrailing: more lines follow those the header counts.
	ReasonTrailing = "trailing"
	// ReasonChain: an event breaks the audit chain; Err is the
	// *audit.ChainError.
	ReasonChain = "chain"
)

// ArchiveError names the first line at which an archive is refused. It
// wraps Err and gatehouse.ErrCorrupt (truncated, trailing, chain) or
// gatehouse.ErrInvalid (the others).
type ArchiveError struct {
	// Line is the 1-based line; for a truncated archive, the line that is
	// missing.
	Line int
	// Reason is one of the Reason constants.
	Reason string
	Err    error
}

// Error names the line, the reason and what was found.
func (e *ArchiveError) Error() string {
	return fmt.Sprintf("archive line %d: %s: %v", e.Line, e.Reason, e.Err)
}

// Unwrap returns Err and the sentinel of the reason.
func (e *ArchiveError) Unwrap() []error {
	sentinel := gatehouse.ErrInvalid
	switch e.Reason {
	case ReasonTruncated, ReasonTrailing, ReasonChain:
		sentinel = gatehouse.ErrCorrupt
	}
	return []error{e.Err, sentinel}
}

// Target is a store an archive is restored into.
type Target interface {
	gatehouse.Restorer
	gatehouse.AuditLog
	// SchemaVersion returns the store's migration version and the latest
	// this binary knows.
	SchemaVersion(ctx context.Context) (current, latest int, err error)
}

// Restore reads an archive from r and restores it into dst in one
// transaction, then verifies dst's audit chain. dst must be empty
// (gatehouse.ErrNotEmpty otherwise). Every event is verified against the
// chain before it is written, and the transaction commits only if the whole
// archive is as its header says, so a tampered, truncated or malformed
// archive (an *ArchiveError naming the first bad line) or a failing store
// leaves dst unchanged. An archive of a newer schema is
// gatehouse.ErrSchemaTooNew. It returns the archive's header and the
// report of verifying dst.
func Restore(ctx context.Context, r io.Reader, dst Target) (Header, audit.Report, error) {
	h, rep, err := restore(ctx, r, dst)
	if err != nil {
		return h, rep, fmt.Errorf("restore: %w", err)
	}
	return h, rep, nil
}

func restore(ctx context.Context, r io.Reader, dst Target) (Header, audit.Report, error) {
	ar := newReader(r)
	h, err := ar.header()
	if err != nil {
		return Header{}, audit.Report{}, err
	}
	_, latest, err := dst.SchemaVersion(ctx)
	if err != nil {
		return h, audit.Report{}, err
	}
	if h.SchemaVersion > latest {
		return h, audit.Report{}, fmt.Errorf("archive of schema version %d, this binary knows up to %d: %w",
			h.SchemaVersion, latest, gatehouse.ErrSchemaTooNew)
	}
	objs := make([]gatehouse.Object, 0, h.Counts.Objects)
	for o, err := range readRows(ar, "object", int64(h.Counts.Objects), func(l line) *objectLine { return l.Object }, nil, nil) {
		if err != nil {
			return h, audit.Report{}, err
		}
		objs = append(objs, gatehouse.Object{Kind: o.Kind, ID: o.ID, Pos: o.Pos, Body: json.RawMessage(o.Body)})
	}
	v := audit.NewVerifierFrom(h.base())
	err = dst.Restore(ctx, gatehouse.Dump{
		SchemaVersion: h.SchemaVersion,
		Version:       h.PolicyVersion,
		Objects:       objs,
		Head:          h.AuditHead,
		Base:          h.base(),
		EventCount:    h.Counts.Events,
		Events: readRows(ar, "event", h.Counts.Events,
			func(l line) *gatehouse.AuditEvent {
				if l.Event == nil {
					return nil
				}
				e := l.Event.event()
				return &e
			},
			func(e gatehouse.AuditEvent) error {
				if err := v.Next(e); err != nil {
					return ar.fail(ReasonChain, err)
				}
				return nil
			},
			func() error {
				if err := v.Finish(h.AuditHead); err != nil {
					return &ArchiveError{Line: 1, Reason: ReasonChain, Err: err}
				}
				return nil
			}),
		Actions: readRows(ar, "action record", h.Counts.Actions,
			func(l line) *gatehouse.ActionRecord { return l.Action }, nil, nil),
		Customers: readRows(ar, "billing customer", h.Counts.Customers,
			func(l line) *gatehouse.BillingCustomer { return l.Customer }, nil, nil),
		BillingEvents: readRows(ar, "billing event", h.Counts.BillingEvents,
			func(l line) *gatehouse.BillingEvent { return l.BillingEvent }, nil, nil),
		APIKeys: readRows(ar, "API key", h.Counts.APIKeys,
			func(l line) *gatehouse.APIKey {
				if l.APIKey == nil {
					return nil
				}
				k := l.APIKey.APIKey
				k.Hash = l.APIKey.Hash
				return &k
			}, nil, nil),
		Threads: readRows(ar, "chat thread", h.Counts.Threads,
			func(l line) *gatehouse.Thread { return l.Thread }, nil, nil),
		Messages: readRows(ar, "chat message", h.Counts.Messages,
			func(l line) *gatehouse.Message {
				if l.Message == nil {
					return nil
				}
				m := l.Message.Message
				m.ToolCalls = threadrows.ToToolCalls(l.Message.ToolCalls)
				return &m
			}, nil, nil),
		Attachments: readRows(ar, "chat attachment", h.Counts.Attachments,
			func(l line) *gatehouse.Attachment {
				if l.Attachment == nil {
					return nil
				}
				a := l.Attachment.Attachment
				a.Data = l.Attachment.Data
				return &a
			}, nil, ar.end),
		Counts: h.Counts.DumpCounts,
	})
	if err != nil {
		return h, audit.Report{}, err
	}
	rep, err := verifyRestored(ctx, dst, h.AuditHead)
	return h, rep, err
}

// verifyRestored verifies dst's whole chain and that the archive's head is
// in it.
func verifyRestored(ctx context.Context, dst gatehouse.AuditLog, head gatehouse.AuditHead) (audit.Report, error) {
	rep, err := audit.Verify(ctx, dst)
	if err != nil {
		return rep, fmt.Errorf("the restored audit chain does not verify: %w", err)
	}
	if head.Seq == 0 {
		return rep, nil
	}
	got, err := dst.ListAudit(ctx, gatehouse.AuditFilter{AfterSeq: head.Seq - 1, Limit: 1})
	if err != nil {
		return rep, err
	}
	if len(got) != 1 || got[0].Seq != head.Seq || got[0].Hash != head.Hash {
		return rep, fmt.Errorf("the restored store lacks the archive's last event %d (%s): %w",
			head.Seq, head.Hash, gatehouse.ErrCorrupt)
	}
	return rep, nil
}

// reader reads an archive line by line.
type reader struct {
	sc   *bufio.Scanner
	line int
}

func newReader(r io.Reader) *reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	return &reader{sc: sc}
}

func (r *reader) fail(reason string, err error) error {
	return &ArchiveError{Line: r.line, Reason: reason, Err: err}
}

// scan reads the next line; false at the end of the archive, with the
// reader's error if it did not end cleanly.
func (r *reader) scan() (bool, error) {
	r.line++
	if r.sc.Scan() {
		return true, nil
	}
	err := r.sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		return false, r.fail(ReasonMalformed, fmt.Errorf("line longer than %d bytes", MaxLine))
	}
	if err != nil {
		return false, fmt.Errorf("read archive line %d: %w", r.line, err)
	}
	return false, nil
}

// decode decodes the current line into v, refusing unknown fields and
// anything after the value.
func (r *reader) decode(v any) error {
	dec := json.NewDecoder(bytes.NewReader(r.sc.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

func (r *reader) header() (Header, error) {
	ok, err := r.scan()
	if err != nil {
		return Header{}, err
	}
	if !ok {
		return Header{}, r.fail(ReasonNotArchive, errors.New("empty input"))
	}
	var h Header
	// Decoded leniently first: a newer format may add header fields.
	if err := json.Unmarshal(r.sc.Bytes(), &h); err != nil || h.Format != Format {
		return Header{}, r.fail(ReasonNotArchive, fmt.Errorf("the first line is not a %s header", Format))
	}
	if h.FormatVersion != FormatVersion {
		return Header{}, r.fail(ReasonFormatVersion, fmt.Errorf("format version %d, this binary reads version %d",
			h.FormatVersion, FormatVersion))
	}
	if err := r.decode(&h); err != nil {
		return Header{}, r.fail(ReasonMalformed, err)
	}
	c := h.Counts
	eventsOK := c.Events == h.AuditHead.Seq
	if b := h.base(); b.Seq > 0 {
		eventsOK = c.Events >= 0 && c.Events <= h.AuditHead.Seq && b.Seq <= h.AuditHead.Seq
	}
	if c.Objects < 0 || !eventsOK || c.Actions < 0 || c.Customers < 0 || c.BillingEvents < 0 || c.APIKeys < 0 ||
		c.Threads < 0 || c.Messages < 0 || c.Attachments < 0 {
		return Header{}, r.fail(ReasonMalformed, fmt.Errorf("counts %+v, audit head at seq %d", c, h.AuditHead.Seq))
	}
	return h, nil
}

// next reads and decodes the next line, which must hold what.
func (r *reader) next(what string) (line, error) {
	ok, err := r.scan()
	if err != nil {
		return line{}, err
	}
	if !ok {
		return line{}, r.fail(ReasonTruncated, fmt.Errorf("the archive ends before %s", what))
	}
	var l line
	if err := r.decode(&l); err != nil {
		return line{}, r.fail(ReasonMalformed, err)
	}
	if l.fields() != 1 {
		return line{}, r.fail(ReasonMalformed, errors.New(`want exactly one of "object", "event", "action", "billing_customer", "billing_event", "api_key", "chat_thread", "chat_message" or "chat_attachment"`))
	}
	return l, nil
}

// readRows yields the count rows of kind that follow, as pick finds them in
// their lines; check, if set, vets each before it is yielded, and done, if
// set, runs after the last.
func readRows[T any](r *reader, kind string, count int64, pick func(line) *T, check func(T) error, done func() error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		for n := int64(1); n <= count; n++ {
			what := fmt.Sprintf("%s %d of %d", kind, n, count)
			l, err := r.next(what)
			var v T
			if err == nil {
				if p := pick(l); p == nil {
					err = r.fail(ReasonMalformed, fmt.Errorf("expected %s", what))
				} else {
					v = *p
				}
			}
			if err == nil && check != nil {
				err = check(v)
			}
			if err != nil {
				yield(zero, err)
				return
			}
			if !yield(v, nil) {
				return
			}
		}
		if done == nil {
			return
		}
		if err := done(); err != nil {
			yield(zero, err)
		}
	}
}

// end checks that nothing follows what the header counts.
func (r *reader) end() error {
	ok, err := r.scan()
	if err == nil && ok {
		err = r.fail(ReasonTrailing, errors.New("more lines than the header counts"))
	}
	return err
}
