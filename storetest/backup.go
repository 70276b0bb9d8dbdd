package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/backup"
)

var backupTests = []test{
	{"DumpEmpty", testDumpEmpty},
	{"DumpMatchesStore", testDumpMatchesStore},
	{"DumpConsistent", testDumpConsistent},
	{"RestoreRoundTrip", testRestoreRoundTrip},
	{"RestoreRefused", testRestoreRefused},
	{"RestoreRacesCommit", testRestoreRacesCommit},
	{"ArchiveRoundTrip", testArchiveRoundTrip},
}

// backupStore is a store that backs up and restores; every store Gatehouse
// ships is one.
type backupStore interface {
	gatehouse.Store
	gatehouse.Dumper
	gatehouse.Restorer
	SchemaVersion(ctx context.Context) (current, latest int, err error)
}

func backupOf(t *testing.T, s gatehouse.Store) backupStore {
	t.Helper()
	b, ok := s.(backupStore)
	if !ok {
		t.Fatalf("%T does not implement gatehouse.Dumper, gatehouse.Restorer and SchemaVersion", s)
	}
	return b
}

// dumped is a gatehouse.Dump with its rows collected.
type dumped struct {
	SchemaVersion int
	Version       int64
	Objects       []gatehouse.Object
	Head          gatehouse.AuditHead
	Base          gatehouse.AuditBase
	Events        []gatehouse.AuditEvent
	Actions       []gatehouse.ActionRecord
	Customers     []gatehouse.BillingCustomer
	BillingEvents []gatehouse.BillingEvent
	APIKeys       []gatehouse.APIKey
	Threads       []gatehouse.Thread
	Messages      []gatehouse.Message
	Attachments   []gatehouse.Attachment
}

// dump is the gatehouse.Dump that yields d's rows.
func (d dumped) dump() gatehouse.Dump {
	return gatehouse.Dump{SchemaVersion: d.SchemaVersion, Version: d.Version, Objects: d.Objects, Head: d.Head,
		Base: d.Base, EventCount: int64(len(d.Events)), Events: yieldAll(d.Events), Actions: yieldAll(d.Actions), Customers: yieldAll(d.Customers),
		BillingEvents: yieldAll(d.BillingEvents), APIKeys: yieldAll(d.APIKeys),
		Threads: yieldAll(d.Threads), Messages: yieldAll(d.Messages), Attachments: yieldAll(d.Attachments),
		Counts: gatehouse.DumpCounts{Actions: int64(len(d.Actions)), Customers: int64(len(d.Customers)),
			BillingEvents: int64(len(d.BillingEvents)), APIKeys: int64(len(d.APIKeys)),
			Threads: int64(len(d.Threads)), Messages: int64(len(d.Messages)), Attachments: int64(len(d.Attachments))}}
}

// Dump makes dumped a gatehouse.Dumper.
func (d dumped) Dump(_ context.Context, fn func(gatehouse.Dump) error) error { return fn(d.dump()) }

func yieldAll[T any](rows []T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// collect appends what rows yields to dst and checks that it is as many as
// the dump counted.
func collect[T any](dst *[]T, rows iter.Seq2[T, error], count int64) error {
	for r, err := range rows {
		if err != nil {
			return err
		}
		*dst = append(*dst, r)
	}
	if int64(len(*dst)) != count {
		return fmt.Errorf("dump yielded %d rows, counted %d", len(*dst), count)
	}
	return nil
}

// dumpOf dumps s, collecting its rows.
func dumpOf(t *testing.T, s gatehouse.Store) dumped {
	t.Helper()
	var d dumped
	err := backupOf(t, s).Dump(t.Context(), func(gd gatehouse.Dump) error {
		d = dumped{SchemaVersion: gd.SchemaVersion, Version: gd.Version, Objects: gd.Objects, Head: gd.Head, Base: gd.Base}
		return errors.Join(collect(&d.Events, gd.Events, gd.EventCount), collect(&d.Actions, gd.Actions, gd.Counts.Actions),
			collect(&d.Customers, gd.Customers, gd.Counts.Customers),
			collect(&d.BillingEvents, gd.BillingEvents, gd.Counts.BillingEvents),
			collect(&d.APIKeys, gd.APIKeys, gd.Counts.APIKeys),
			collect(&d.Threads, gd.Threads, gd.Counts.Threads),
			collect(&d.Messages, gd.Messages, gd.Counts.Messages),
			collect(&d.Attachments, gd.Attachments, gd.Counts.Attachments))
	})
	if err != nil {
		t.Fatalf("Dump() = %v", err)
	}
	return d
}

// sampleDump is a dump no store wrote: the sample policy at version 3 and
// n sealed events whose raw JSON comes in every shape a store keeps byte
// for byte, at the schema version of s.
func sampleDump(t *testing.T, s gatehouse.Store, n int) dumped {
	t.Helper()
	current, _, err := backupOf(t, s).SchemaVersion(t.Context())
	if err != nil {
		t.Fatalf("SchemaVersion() = %v", err)
	}
	raws := []json.RawMessage{nil, json.RawMessage(`null`), json.RawMessage(" { \"a\" :\n\t1 } "),
		json.RawMessage(`{"html":"<&>","text":"Rückerstattung — 退款","line":"\u2028"}`), json.RawMessage(`[1,2.50,"x"]`)}
	d := dumped{SchemaVersion: current, Version: 3, Objects: objectsOf(t, samplePolicy())}
	for i := range n {
		e := gatehouse.AuditEvent{
			Time:   time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * 1001 * time.Microsecond),
			Actor:  fmt.Sprintf("user:u%d@example.com", i%7),
			Action: []string{"policy.apply", "decision", "user.promote"}[i%3],
			Target: fmt.Sprintf("role/r%d", i%11),
			Before: raws[i%len(raws)],
			After:  raws[(i+1)%len(raws)],
			Detail: raws[(i+2)%len(raws)],
		}
		audit.Seal(d.Head, &e)
		d.Head = gatehouse.AuditHead{Seq: e.Seq, Hash: e.Hash}
		d.Events = append(d.Events, e)
	}
	at := time.Date(2026, 5, 2, 10, 0, 0, 123456000, time.UTC)
	d.Actions = []gatehouse.ActionRecord{
		{ID: "act-1", Seq: 1, Tenant: "acme", Action: "process_refund", Tool: "refund", Subject: "agent:support-bot",
			OnBehalfOf: "user:bo@example.com", IdempotencyKey: "k1", Fingerprint: "f1", Args: json.RawMessage(`{"amount":"12.50"}`),
			Amount: 1250, Currency: "EUR", RequiresConfirmation: true, Reason: gatehouse.ReasonConfirmationRequired,
			PolicyVersion: 3, Status: gatehouse.ActionPending, CreatedAt: at, ExpiresAt: at.Add(time.Hour),
			UpdatedAt: at, UpdatedBy: "agent:support-bot"},
		{ID: "act-2", Seq: 2, Tenant: "acme-berlin", Action: "lookup_order", Tool: "lookup", Subject: "user:bo@example.com",
			Reason: gatehouse.ReasonGranted, PolicyVersion: 3, Status: gatehouse.ActionExecuted, CreatedAt: at,
			ConfirmedAt: at.Add(time.Minute), ConfirmedBy: "user:ana@example.com", ExecutedAt: at.Add(2 * time.Minute),
			UpdatedAt: at.Add(2 * time.Minute), UpdatedBy: "system"},
	}
	d.Customers = []gatehouse.BillingCustomer{
		{ID: "cus_1", Subject: "tenant:acme", Plan: "pro", Status: gatehouse.BillingActive, LastEvent: "evt_1",
			LastCreated: at, UpdatedAt: at, Version: 2},
		{ID: "cus_2", Subject: "user:bo@example.com", Plan: "free", Status: gatehouse.BillingPastDue,
			GraceUntil: at.Add(72 * time.Hour), LastEvent: "evt_2", LastCreated: at, UpdatedAt: at, Version: 1},
	}
	d.BillingEvents = []gatehouse.BillingEvent{
		{ID: "evt_1", Type: "customer.subscription.updated", Customer: "cus_1", Created: at, ProcessedAt: at, Outcome: "applied"},
		{ID: "evt_2", Type: "invoice.payment_failed", Customer: "cus_2", Created: at, ProcessedAt: at, Outcome: "applied"},
	}
	d.APIKeys = []gatehouse.APIKey{
		{ID: "key-1", Name: "support bot", Subject: gatehouse.AgentRef("support-bot"), Scopes: []string{gatehouse.ScopeCheck, gatehouse.ScopeAuthZEN},
			Hash: strings.Repeat("ab", 32), CreatedAt: at, CreatedBy: "user:ana@example.com", ExpiresAt: at.Add(24 * time.Hour)},
		{ID: "key-2", Name: "old", Subject: gatehouse.User("bo@example.com"), Scopes: []string{gatehouse.ScopeCheck},
			Hash: strings.Repeat("cd", 32), CreatedAt: at, CreatedBy: "cli:root", RevokedAt: at.Add(time.Hour)},
	}
	d.Threads = []gatehouse.Thread{
		{ID: "th-1", Tenant: "acme", Owner: "user:bo@example.com", Title: "Refund — 退款", Messages: 3, LastSeq: 3,
			CreatedAt: at, UpdatedAt: at.Add(3 * time.Second)},
		{ID: "th-2", Tenant: "globex", Owner: "agent:support-bot", CreatedAt: at, UpdatedAt: at},
	}
	d.Messages = []gatehouse.Message{
		{ID: "msg-1", ThreadID: "th-1", Seq: 1, Role: gatehouse.RoleUser, Author: "user:bo@example.com",
			Content: "Refund order 42, see the receipt", Attachments: []string{"att-1"}, CreatedAt: at.Add(time.Second)},
		{ID: "msg-2", ThreadID: "th-1", Seq: 2, Role: gatehouse.RoleAssistant, Content: "",
			ToolCalls: []gatehouse.ToolCall{{ID: "call-1", Name: "process_refund", Arguments: raws[2]}, {ID: "call-2", Name: "lookup_order"}},
			CreatedAt: at.Add(2 * time.Second)},
		{ID: "msg-3", ThreadID: "th-1", Seq: 3, Role: gatehouse.RoleTool, Content: "awaiting confirmation", ToolCallID: "call-1",
			ToolName: "process_refund", Status: gatehouse.ToolCallPending, Reason: gatehouse.ReasonConfirmationRequired,
			ActionID: "act-1", CreatedAt: at.Add(3 * time.Second)},
	}
	d.Attachments = []gatehouse.Attachment{
		{ID: "att-1", ThreadID: "th-1", MessageID: "msg-1", Name: "receipt.pdf", MIME: "application/pdf", Size: 5,
			SHA256: strings.Repeat("ef", 32), Data: []byte("%PDF\x00"), CreatedAt: at},
		{ID: "att-2", ThreadID: "th-2", Name: "notes.txt", MIME: "text/plain", Size: 3,
			SHA256: strings.Repeat("01", 32), Data: []byte("\xff\n "), CreatedAt: at},
	}
	return d
}

func restore(t *testing.T, s gatehouse.Store, d dumped) {
	t.Helper()
	if err := backupOf(t, s).Restore(t.Context(), d.dump()); err != nil {
		t.Fatalf("Restore(%d objects, %d events) = %v", len(d.Objects), len(d.Events), err)
	}
}

func testDumpEmpty(t *testing.T, s gatehouse.Store) {
	d := dumpOf(t, s)
	if d.SchemaVersion < 1 || d.Version != 0 || len(d.Objects) != 0 || d.Head != (gatehouse.AuditHead{}) || len(d.Events) != 0 {
		t.Errorf("Dump(empty store) = %+v, want schema version ≥ 1 and nothing else", d)
	}
}

func testDumpMatchesStore(t *testing.T, s gatehouse.Store) {
	objs := objectsOf(t, samplePolicy())
	v := commit(t, s, 0, creates(objs), []gatehouse.AuditEvent{event("system", "policy.apply", "")})
	appendEvents(t, s, gatehouse.AuditEvent{Time: time.Now(), Actor: "system", Action: "decision",
		Detail: json.RawMessage(" {\"b\" : [ 1 ,2 ]}\n")})
	ts := threadsOf(t, s)
	for _, id := range []string{"t2", "t1"} {
		createThread(t, ts, thread(id, "acme", "user:ana@example.com", 0))
	}
	putAttachment(t, ts, attachment("a2", "t1", "linked"))
	putAttachment(t, ts, attachment("a1", "t1", "loose"))
	appendMsgs(t, ts, userMsg("m2", "t2", 1))
	appendMsgs(t, ts, userMsg("m3", "t1", 2), userMsg("m1", "t1", 3, "a2"))
	st := snapshot(t, s)
	current, _, err := backupOf(t, s).SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := dumped{SchemaVersion: current, Version: v, Objects: st.Objects, Head: st.Head, Events: st.Events,
		Threads:     []gatehouse.Thread{getThread(t, ts, "t1"), getThread(t, ts, "t2")},
		Messages:    append(messages(t, ts, "t1", 0, 0), messages(t, ts, "t2", 0, 0)...),
		Attachments: []gatehouse.Attachment{getAttachment(t, ts, "a1"), getAttachment(t, ts, "a2")},
	}
	if diff := cmp.Diff(want, dumpOf(t, s)); diff != "" {
		t.Errorf("Dump() (-store +dump):\n%s", diff)
	}
}

// A dump is one snapshot: what commits while it streams is not in it.
func testDumpConsistent(t *testing.T, s gatehouse.Store) {
	setupTwo(t, s)
	appendEvents(t, s, event("system", "decision", ""))
	want := snapshot(t, s)
	var got dumped
	err := backupOf(t, s).Dump(t.Context(), func(d gatehouse.Dump) error {
		commit(t, s, 1, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "late", After: json.RawMessage(`{"name":"late"}`)}},
			[]gatehouse.AuditEvent{event("system", "policy.apply", "role/late")})
		appendEvents(t, s, event("system", "decision", ""))
		got = dumped{Version: d.Version, Objects: d.Objects, Head: d.Head}
		for e, err := range d.Events {
			if err != nil {
				return err
			}
			got.Events = append(got.Events, e)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Dump() = %v", err)
	}
	if diff := cmp.Diff(dumped{Version: 1, Objects: want.Objects, Head: want.Head, Events: want.Events}, got); diff != "" {
		t.Errorf("Dump() with writes while it ran (-before the writes +dump):\n%s", diff)
	}
	verify(t, s, 4)
}

func testRestoreRoundTrip(t *testing.T, s gatehouse.Store) {
	// More events than one page of ListAudit or audit.Verify.
	d := sampleDump(t, s, 1234)
	restore(t, s, d)
	if diff := cmp.Diff(d, dumpOf(t, s)); diff != "" {
		t.Errorf("Dump() after Restore (-restored +dump):\n%s", diff)
	}
	wantPolicy(t, s, d.Objects, 3)
	if head, err := s.AuditHead(t.Context()); err != nil || head != d.Head {
		t.Errorf("AuditHead() = %+v, %v; want %+v", head, err, d.Head)
	}
	verify(t, s, 1234)
	// The restored store goes on as any other.
	events := []gatehouse.AuditEvent{event("system", "policy.apply", "role/next")}
	if v := commit(t, s, 3, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "next", After: json.RawMessage(`{"name":"next"}`)}}, events); v != 4 {
		t.Errorf("CommitPolicy(base 3) after Restore = version %d, want 4", v)
	}
	if events[0].Seq != 1235 || events[0].PrevHash != d.Head.Hash {
		t.Errorf("event after Restore: seq %d prev %q; want 1235 chained to %q", events[0].Seq, events[0].PrevHash, d.Head.Hash)
	}
	verify(t, s, 1235)
}

// A store holding anything at all is refused, and left as it was.
func testRestoreNotEmpty(t *testing.T, open func() gatehouse.Store) {
	role := json.RawMessage(`{"name":"r"}`)
	only := func(fn func(d *dumped)) func(t *testing.T, s gatehouse.Store) {
		return func(t *testing.T, s gatehouse.Store) {
			d := dumped{}
			fn(&d)
			restore(t, s, d)
		}
	}
	sample := sampleDump(t, open(), 3)
	tests := []struct {
		name string
		fill func(t *testing.T, s gatehouse.Store)
	}{
		{"audit events", func(t *testing.T, s gatehouse.Store) { appendEvents(t, s, event("system", "decision", "")) }},
		{"objects", func(t *testing.T, s gatehouse.Store) {
			commit(t, s, 0, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "r", After: role}}, nil)
		}},
		{"no objects at version 2", func(t *testing.T, s gatehouse.Store) {
			commit(t, s, 0, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "r", After: role}}, nil)
			commit(t, s, 1, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "r", Before: role}}, nil)
		}},
		{"action records", only(func(d *dumped) { d.Actions = sample.Actions[:1] })},
		{"billing customers", only(func(d *dumped) { d.Customers = sample.Customers[:1] })},
		{"billing events", only(func(d *dumped) { d.BillingEvents = sample.BillingEvents[:1] })},
		{"API keys", only(func(d *dumped) { d.APIKeys = sample.APIKeys[:1] })},
		{"chat threads", only(func(d *dumped) { d.Threads = sample.Threads[1:] })},
	}
	for _, tt := range tests {
		s := open()
		tt.fill(t, s)
		before := dumpOf(t, s)
		err := backupOf(t, s).Restore(t.Context(), sample.dump())
		wantErr(t, "Restore(store with "+tt.name+")", err, gatehouse.ErrNotEmpty)
		if diff := cmp.Diff(before, dumpOf(t, s)); diff != "" {
			t.Errorf("Restore(store with %s) changed it (-before +after):\n%s", tt.name, diff)
		}
	}
}

var errSource = errors.New("source failed")

// Whatever is wrong with a dump, or however the restore fails midway,
// nothing is written: the store is still empty and restores afterwards.
func testRestoreRefused(t *testing.T, s gatehouse.Store) {
	good := sampleDump(t, s, 6)
	edit := func(fn func(d *dumped)) dumped {
		d := good
		d.Objects = slices.Clone(good.Objects)
		d.Events = slices.Clone(good.Events)
		fn(&d)
		return d
	}
	failAfter := func(n int, fail func() error) func(d *dumped) gatehouse.Dump {
		return func(d *dumped) gatehouse.Dump {
			gd := d.dump()
			gd.Events = func(yield func(gatehouse.AuditEvent, error) bool) {
				for i, e := range d.Events {
					if i == n {
						yield(gatehouse.AuditEvent{}, fail())
						return
					}
					if !yield(e, nil) {
						return
					}
				}
			}
			return gd
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tests := []struct {
		name string
		d    dumped
		// wrap, if set, turns the dump into what Restore gets.
		wrap   func(d *dumped) gatehouse.Dump
		ctx    context.Context
		want   error
		seq    int64
		reason string
	}{
		{name: "duplicate object", d: edit(func(d *dumped) { d.Objects = append(d.Objects, d.Objects[1]) }), want: gatehouse.ErrInvalid},
		{name: "unknown kind", d: edit(func(d *dumped) { d.Objects[0].Kind = "spell" }), want: gatehouse.ErrInvalid},
		{name: "invalid body", d: edit(func(d *dumped) { d.Objects[2].Body = json.RawMessage(`{"name":`) }), want: gatehouse.ErrInvalid},
		{name: "objects at version 0", d: edit(func(d *dumped) { d.Version = 0 }), want: gatehouse.ErrInvalid},
		{name: "edited event", d: edit(func(d *dumped) { d.Events[3].Actor = "user:mallory@example.com" }),
			want: gatehouse.ErrCorrupt, seq: 4, reason: audit.ReasonHashMismatch},
		{name: "invalid event", d: edit(func(d *dumped) { d.Events[2].Action = "" }),
			want: gatehouse.ErrCorrupt, seq: 3, reason: audit.ReasonHashMismatch},
		{name: "missing event", d: edit(func(d *dumped) { d.Events = slices.Delete(d.Events, 2, 3) }),
			want: gatehouse.ErrCorrupt, seq: 3, reason: audit.ReasonSeqGap},
		{name: "truncated tail", d: edit(func(d *dumped) { d.Events = d.Events[:4] }),
			want: gatehouse.ErrCorrupt, seq: 5, reason: audit.ReasonHeadMismatch},
		{name: "head elsewhere", d: edit(func(d *dumped) { d.Head.Hash = d.Events[0].Hash }),
			want: gatehouse.ErrCorrupt, seq: 6, reason: audit.ReasonHeadMismatch},
		{name: "invalid thread", d: edit(func(d *dumped) {
			d.Threads = slices.Clone(d.Threads)
			d.Threads[1].Owner = ""
		}), want: gatehouse.ErrInvalid},
		{name: "invalid message", d: edit(func(d *dumped) {
			d.Messages = slices.Clone(d.Messages)
			d.Messages[2].Status = "maybe"
		}), want: gatehouse.ErrInvalid},
		{name: "invalid attachment", d: edit(func(d *dumped) {
			d.Attachments = slices.Clone(d.Attachments)
			d.Attachments[1].Size = 9
		}), want: gatehouse.ErrInvalid},
		{name: "message of no thread", d: edit(func(d *dumped) {
			d.Messages = append(slices.Clone(d.Messages), userMsg("msg-9", "th-9", 1))
		}), want: gatehouse.ErrInvalid},
		{name: "attachment of no thread", d: edit(func(d *dumped) {
			d.Attachments = append(slices.Clone(d.Attachments), attachment("att-9", "th-9", "x"))
		}), want: gatehouse.ErrInvalid},
		{name: "source fails midway", d: good, wrap: failAfter(4, func() error { return errSource }), want: errSource},
		{name: "canceled midway", d: good, ctx: ctx, want: context.Canceled,
			wrap: failAfter(4, func() error { cancel(); return ctx.Err() })},
	}
	before := snapshot(t, s)
	for _, tt := range tests {
		gd := tt.d.dump()
		if tt.wrap != nil {
			gd = tt.wrap(&tt.d)
		}
		callCtx := t.Context()
		if tt.ctx != nil {
			callCtx = tt.ctx
		}
		err := backupOf(t, s).Restore(callCtx, gd)
		wantErr(t, "Restore("+tt.name+")", err, tt.want)
		if tt.reason != "" {
			var ce *audit.ChainError
			if !errors.As(err, &ce) || ce.Seq != tt.seq || ce.Reason != tt.reason {
				t.Errorf("Restore(%s) = %v, want a chain error at seq %d: %s", tt.name, err, tt.seq, tt.reason)
			}
		}
		unchanged(t, s, before, "Restore("+tt.name+")")
	}
	restore(t, s, good)
	verify(t, s, 6)
}

// A restore and a first commit race: one wins, the other is refused, and
// the chain is whole.
func testRestoreRacesCommit(t *testing.T, s gatehouse.Store) {
	d := sampleDump(t, s, 5)
	var (
		wg                    sync.WaitGroup
		start                 = make(chan struct{})
		restoreErr, commitErr error
	)
	wg.Go(func() {
		<-start
		restoreErr = backupOf(t, s).Restore(t.Context(), d.dump())
	})
	wg.Go(func() {
		<-start
		_, commitErr = s.CommitPolicy(t.Context(), 0,
			[]gatehouse.Change{{Kind: gatehouse.KindRole, ID: "first", After: json.RawMessage(`{"name":"first"}`)}},
			[]gatehouse.AuditEvent{event("system", "policy.apply", "role/first")})
	})
	close(start)
	wg.Wait()
	switch {
	case restoreErr == nil && commitErr == nil:
		t.Fatalf("Restore and CommitPolicy(base 0) both succeeded")
	case restoreErr == nil:
		wantErr(t, "CommitPolicy(base 0) after Restore", commitErr, gatehouse.ErrConflict)
		if diff := cmp.Diff(d, dumpOf(t, s)); diff != "" {
			t.Errorf("store after Restore won (-restored +dump):\n%s", diff)
		}
		verify(t, s, 5)
	default:
		wantErr(t, "Restore after CommitPolicy", restoreErr, gatehouse.ErrNotEmpty)
		if commitErr != nil {
			t.Fatalf("CommitPolicy(base 0) = %v, Restore = %v: want one to succeed", commitErr, restoreErr)
		}
		verify(t, s, 1)
	}
}

// An archive restored into the store and written back is the same archive,
// byte for byte.
func testArchiveRoundTrip(t *testing.T, s gatehouse.Store) {
	d := sampleDump(t, s, 50)
	created := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var in bytes.Buffer
	h, err := backup.Write(t.Context(), &in, d, created)
	if err != nil {
		t.Fatalf("backup.Write(sample) = %v", err)
	}
	_, rep, err := backup.Restore(t.Context(), bytes.NewReader(in.Bytes()), backupOf(t, s))
	if err != nil {
		t.Fatalf("backup.Restore() = %v", err)
	}
	if rep.Events != 50 || rep.Head != h.AuditHead {
		t.Errorf("backup.Restore() verified %+v, want 50 events ending at %+v", rep, h.AuditHead)
	}
	var out bytes.Buffer
	if _, err := backup.Write(t.Context(), &out, backupOf(t, s), created); err != nil {
		t.Fatalf("backup.Write(restored store) = %v", err)
	}
	if diff := cmp.Diff(in.String(), out.String()); diff != "" {
		t.Errorf("archive of the restored store (-restored +written):\n%s", diff)
	}
}
