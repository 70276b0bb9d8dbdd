package backup_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/backup"
	"github.com/gatehouse/gatehouse/sqlite"
)

var created = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func openStore(t testing.TB) (*sqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// source is a store with three objects and five events.
func source(t testing.TB) (*sqlite.DB, string) {
	t.Helper()
	db, path := openStore(t)
	ctx := context.Background()
	var changes []gatehouse.Change
	for _, id := range []string{"admin", "agent", "viewer"} {
		changes = append(changes, gatehouse.Change{Kind: gatehouse.KindRole, ID: id,
			After: json.RawMessage(fmt.Sprintf(`{"name":%q}`, id))})
	}
	event := func(action string) gatehouse.AuditEvent {
		return gatehouse.AuditEvent{Time: created, Actor: "cli:tester", Action: action,
			Detail: json.RawMessage(" { \"html\" : \"<&>\" ,\n \"text\": \"Rückerstattung\" } ")}
	}
	if _, err := db.CommitPolicy(ctx, 0, changes, []gatehouse.AuditEvent{event("policy.apply"), event("policy.apply")}); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendAudit(ctx, []gatehouse.AuditEvent{event("decision"), event("decision"), event("user.promote")}); err != nil {
		t.Fatal(err)
	}
	return db, path
}

func archiveOf(t testing.TB, src gatehouse.Dumper) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := backup.Write(context.Background(), &b, src, created); err != nil {
		t.Fatalf("Write() = %v", err)
	}
	return b.String()
}

func TestWrite(t *testing.T) {
	src, _ := source(t)
	archive := archiveOf(t, src)
	lines := strings.Split(strings.TrimSuffix(archive, "\n"), "\n")
	if len(lines) != 1+3+5 {
		t.Fatalf("Write() = %d lines, want a header, 3 objects and 5 events:\n%s", len(lines), archive)
	}
	var h backup.Header
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil {
		t.Fatal(err)
	}
	head, err := src.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := backup.Header{Format: backup.Format, FormatVersion: backup.FormatVersion, SchemaVersion: 1,
		PolicyVersion: 1, CreatedAt: created, Counts: backup.Counts{Objects: 3, Events: 5}, AuditHead: head}
	if h.SchemaVersion < want.SchemaVersion {
		t.Errorf("header schema version %d, want at least 1", h.SchemaVersion)
	}
	want.SchemaVersion = h.SchemaVersion
	if h != want {
		t.Errorf("header = %+v, want %+v", h, want)
	}
	// Raw JSON is kept as the exact bytes stored, and HTML is not escaped.
	if !strings.Contains(lines[4], `"detail":" { \"html\" : \"<&>\" ,\n \"text\": \"Rückerstattung\" } "`) {
		t.Errorf("first event line does not keep the detail byte for byte: %s", lines[4])
	}
}

// Write refuses a store whose chain is broken, naming the event.
func TestWriteBrokenChain(t *testing.T) {
	src, path := source(t)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE audit_events SET actor = 'cli:mallory' WHERE seq = 4`); err != nil {
		t.Fatal(err)
	}
	_, err = backup.Write(t.Context(), &bytes.Buffer{}, src, created)
	var ce *audit.ChainError
	if !errors.As(err, &ce) || ce.Seq != 4 || ce.Reason != audit.ReasonHashMismatch || !errors.Is(err, gatehouse.ErrCorrupt) {
		t.Errorf("Write(edited event 4) = %v, want a chain error at seq 4", err)
	}
}

func TestRestore(t *testing.T) {
	src, _ := source(t)
	archive := archiveOf(t, src)
	dst, _ := openStore(t)
	h, rep, err := backup.Restore(t.Context(), strings.NewReader(archive), dst)
	if err != nil {
		t.Fatalf("Restore() = %v", err)
	}
	if rep.Events != 5 || rep.Head != h.AuditHead || h.Counts.Objects != 3 {
		t.Errorf("Restore() = %+v, %+v; want 3 objects and 5 verified events", h, rep)
	}
	if got := archiveOf(t, dst); got != archive {
		t.Errorf("archive of the restored store:\n%s\nwant\n%s", got, archive)
	}
}

// Chat threads travel with their messages and attachments: tool call
// arguments byte for byte, attachment data whatever its bytes.
func TestRestoreThreads(t *testing.T) {
	src, _ := source(t)
	ctx := t.Context()
	args := json.RawMessage(" {\"order\" : \"42\",\n \"html\": \"<&>\"} ")
	data := []byte("%PDF-1.7\x00\xff\n")
	if err := src.CreateThread(ctx, gatehouse.Thread{ID: "th-1", Tenant: "acme", Owner: "user:ana@example.com",
		Title: "Refund", CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	if err := src.PutAttachment(ctx, gatehouse.Attachment{ID: "att-1", ThreadID: "th-1", Name: "receipt.pdf",
		MIME: "application/pdf", Size: int64(len(data)), SHA256: "ab", Data: data, CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	msgs := []gatehouse.Message{
		{ID: "m1", ThreadID: "th-1", Role: gatehouse.RoleUser, Author: "user:ana@example.com", Content: "refund 42",
			Attachments: []string{"att-1"}, CreatedAt: created},
		{ID: "m2", ThreadID: "th-1", Role: gatehouse.RoleAssistant, CreatedAt: created.Add(time.Second),
			ToolCalls: []gatehouse.ToolCall{{ID: "call-1", Name: "lookup_order", Arguments: args}}},
	}
	if err := src.AppendMessages(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	archive := archiveOf(t, src)
	dst, _ := openStore(t)
	h, _, err := backup.Restore(ctx, strings.NewReader(archive), dst)
	if err != nil {
		t.Fatalf("Restore() = %v", err)
	}
	if c := h.Counts; c.Threads != 1 || c.Messages != 2 || c.Attachments != 1 {
		t.Errorf("Restore() header counts %+v, want 1 thread, 2 messages, 1 attachment", c)
	}
	got, err := dst.Messages(ctx, "th-1", 0, 0)
	if err != nil || len(got) != 2 || len(got[1].ToolCalls) != 1 {
		t.Fatalf("Messages(th-1) of the restored store = %+v, %v", got, err)
	}
	if a := got[1].ToolCalls[0].Arguments; string(a) != string(args) {
		t.Errorf("restored tool call arguments %q, want %q", a, args)
	}
	a, err := dst.GetAttachment(ctx, "att-1")
	if err != nil || string(a.Data) != string(data) || a.MessageID != "m1" {
		t.Errorf("GetAttachment(att-1) of the restored store = %+v, %v; want its data, linked to m1", a, err)
	}
	if again := archiveOf(t, dst); again != archive {
		t.Errorf("archive of the restored store:\n%s\nwant\n%s", again, archive)
	}
}

// An archive written before chat threads were backed up, whose header
// counts none, still restores.
func TestRestoreOlderArchive(t *testing.T) {
	src, _ := source(t)
	archive := archiveOf(t, src)
	const counts = `,"chat_threads":0,"chat_messages":0,"chat_attachments":0`
	if !strings.Contains(archive, counts) {
		t.Fatalf("archive header has no %s:\n%s", counts, archive)
	}
	older := strings.Replace(archive, counts, "", 1)
	dst, _ := openStore(t)
	h, rep, err := backup.Restore(t.Context(), strings.NewReader(older), dst)
	if err != nil {
		t.Fatalf("Restore(archive without chat counts) = %v", err)
	}
	if rep.Events != 5 || h.Counts.Objects != 3 {
		t.Errorf("Restore(archive without chat counts) = %+v, %+v; want 3 objects and 5 events", h, rep)
	}
	if got := archiveOf(t, dst); got != archive {
		t.Errorf("archive of the restored store:\n%s\nwant\n%s", got, archive)
	}
}

// edit returns archive with fn applied to its lines.
func edit(archive string, fn func(lines []string) []string) string {
	lines := strings.Split(strings.TrimSuffix(archive, "\n"), "\n")
	return strings.Join(fn(lines), "\n") + "\n"
}

func TestRestoreRefused(t *testing.T) {
	src, _ := source(t)
	archive := archiveOf(t, src)
	// Lines: 1 header, 2-4 objects, 5-9 events 1-5.
	replace := func(n int, old, new string) func([]string) []string {
		return func(l []string) []string {
			l[n-1] = strings.Replace(l[n-1], old, new, 1)
			return l
		}
	}
	remove := func(n int) func([]string) []string {
		return func(l []string) []string { return append(l[:n-1], l[n:]...) }
	}
	tests := []struct {
		name    string
		archive string
		want    error
		line    int
		reason  string
		seq     int64 // of the chain error, if any
	}{
		{"empty input", "", gatehouse.ErrInvalid, 1, backup.ReasonNotArchive, 0},
		{"not JSON", "roles: []\n", gatehouse.ErrInvalid, 1, backup.ReasonNotArchive, 0},
		{"other format", edit(archive, replace(1, backup.Format, "tarball")), gatehouse.ErrInvalid, 1, backup.ReasonNotArchive, 0},
		{"newer format", edit(archive, replace(1, `"format_version":1`, `"format_version":2`)), gatehouse.ErrInvalid, 1, backup.ReasonFormatVersion, 0},
		{"unknown header field", edit(archive, replace(1, `{`, `{"extra":1,`)), gatehouse.ErrInvalid, 1, backup.ReasonMalformed, 0},
		{"counts disagree with head", edit(archive, replace(1, `"events":5`, `"events":4`)), gatehouse.ErrInvalid, 1, backup.ReasonMalformed, 0},
		{"broken object line", edit(archive, replace(3, `{`, `[`)), gatehouse.ErrInvalid, 3, backup.ReasonMalformed, 0},
		{"unknown field", edit(archive, replace(3, `"pos":`, `"rank":1,"pos":`)), gatehouse.ErrInvalid, 3, backup.ReasonMalformed, 0},
		{"object and event in one line", edit(archive, replace(6, `{"event":`, `{"object":{},"event":`)), gatehouse.ErrInvalid, 6, backup.ReasonMalformed, 0},
		{"object missing", edit(archive, remove(2)), gatehouse.ErrInvalid, 4, backup.ReasonMalformed, 0},
		{"object among events", edit(archive, func(l []string) []string {
			return append(l[:6], append([]string{l[1]}, l[6:]...)...)
		}), gatehouse.ErrInvalid, 7, backup.ReasonMalformed, 0},
		{"invalid object", edit(archive, replace(2, `"kind":"role"`, `"kind":"spell"`)), gatehouse.ErrInvalid, 0, "", 0},
		{"tampered event", edit(archive, replace(7, `cli:tester`, `cli:mallory`)), gatehouse.ErrCorrupt, 7, backup.ReasonChain, 3},
		{"event missing", edit(archive, remove(6)), gatehouse.ErrCorrupt, 6, backup.ReasonChain, 2},
		{"events swapped", edit(archive, func(l []string) []string {
			l[5], l[6] = l[6], l[5]
			return l
		}), gatehouse.ErrCorrupt, 6, backup.ReasonChain, 2},
		{"head altered", edit(archive, replace(1, `"hash":"`, `"hash":"0`)), gatehouse.ErrCorrupt, 1, backup.ReasonChain, 5},
		{"truncated in objects", edit(archive, func(l []string) []string { return l[:3] }), gatehouse.ErrCorrupt, 4, backup.ReasonTruncated, 0},
		{"truncated in events", edit(archive, func(l []string) []string { return l[:8] }), gatehouse.ErrCorrupt, 9, backup.ReasonTruncated, 0},
		{"truncated mid-line", archive[:len(archive)-20], gatehouse.ErrInvalid, 9, backup.ReasonMalformed, 0},
		{"trailing line", archive + "\n", gatehouse.ErrCorrupt, 10, backup.ReasonTrailing, 0},
		{"newer schema", edit(archive, replace(1, `"schema_version":`, `"schema_version":99`)), gatehouse.ErrSchemaTooNew, 0, "", 0},
	}
	dst, _ := openStore(t)
	for _, tt := range tests {
		_, _, err := backup.Restore(t.Context(), strings.NewReader(tt.archive), dst)
		if !errors.Is(err, tt.want) {
			t.Errorf("Restore(%s) = %v, want %v", tt.name, err, tt.want)
			continue
		}
		var ae *backup.ArchiveError
		if tt.reason != "" && (!errors.As(err, &ae) || ae.Line != tt.line || ae.Reason != tt.reason) {
			t.Errorf("Restore(%s) = %v, want line %d: %s", tt.name, err, tt.line, tt.reason)
		}
		var ce *audit.ChainError
		if tt.seq != 0 && (!errors.As(err, &ce) || ce.Seq != tt.seq) {
			t.Errorf("Restore(%s) = %v, want a chain error at seq %d", tt.name, err, tt.seq)
		}
		if v, err := dst.PolicyVersion(t.Context()); err != nil || v != 0 {
			t.Fatalf("after Restore(%s): PolicyVersion() = %d, %v; want an untouched store", tt.name, v, err)
		}
		if head, err := dst.AuditHead(t.Context()); err != nil || head.Seq != 0 {
			t.Fatalf("after Restore(%s): AuditHead() = %+v, %v; want an untouched store", tt.name, head, err)
		}
	}
	if _, _, err := backup.Restore(t.Context(), strings.NewReader(archive), dst); err != nil {
		t.Errorf("Restore(the archive) after the refusals = %v", err)
	}
	_, _, err := backup.Restore(t.Context(), strings.NewReader(archive), dst)
	if !errors.Is(err, gatehouse.ErrNotEmpty) {
		t.Errorf("Restore(into the restored store) = %v, want ErrNotEmpty", err)
	}
}

// memTarget is an in-memory backup.Target, so that fuzzing is not bound by
// a database.
type memTarget struct {
	events []gatehouse.AuditEvent
	head   gatehouse.AuditHead
	base   gatehouse.AuditBase
}

func (m *memTarget) SchemaVersion(context.Context) (int, int, error) { return 1, 1, nil }

func (m *memTarget) Restore(_ context.Context, d gatehouse.Dump) error {
	if err := d.Validate(); err != nil {
		return err
	}
	var events []gatehouse.AuditEvent
	for e, err := range audit.VerifiedFrom(d.Events, d.Base, d.Head) {
		if err != nil {
			return err
		}
		events = append(events, e)
	}
	for _, err := range d.Actions {
		if err != nil {
			return err
		}
	}
	for _, err := range d.Customers {
		if err != nil {
			return err
		}
	}
	for _, err := range d.BillingEvents {
		if err != nil {
			return err
		}
	}
	for _, err := range d.APIKeys {
		if err != nil {
			return err
		}
	}
	for _, err := range d.Threads {
		if err != nil {
			return err
		}
	}
	for _, err := range d.Messages {
		if err != nil {
			return err
		}
	}
	for _, err := range d.Attachments {
		if err != nil {
			return err
		}
	}
	m.events, m.head, m.base = events, d.Head, d.Base
	return nil
}

func (m *memTarget) AppendAudit(context.Context, []gatehouse.AuditEvent) error {
	return errors.ErrUnsupported
}

func (m *memTarget) ListAudit(_ context.Context, f gatehouse.AuditFilter) ([]gatehouse.AuditEvent, error) {
	var out []gatehouse.AuditEvent
	for _, e := range m.events {
		if e.Seq > f.AfterSeq && len(out) < f.Limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memTarget) AuditHead(context.Context) (gatehouse.AuditHead, error) { return m.head, nil }

func (m *memTarget) AuditBase(context.Context) (gatehouse.AuditBase, error) { return m.base, nil }

func (m *memTarget) PruneAudit(context.Context, string, time.Time) (gatehouse.AuditBase, int64, error) {
	return gatehouse.AuditBase{}, 0, errors.ErrUnsupported
}

// FuzzRestore restores arbitrary input: it never panics, a refused archive
// leaves the target empty, and a restored one verifies as its header says.
func FuzzRestore(f *testing.F) {
	src, _ := source(f)
	archive := archiveOf(f, src)
	f.Add(archive)
	f.Add(archive[:len(archive)/2])
	f.Add(edit(archive, func(l []string) []string { return l[:4] }))
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		dst := &memTarget{}
		h, rep, err := backup.Restore(t.Context(), strings.NewReader(in), dst)
		if err != nil {
			if len(dst.events) != 0 {
				t.Fatalf("refused archive (%v) left %d events", err, len(dst.events))
			}
			return
		}
		if rep.Events != h.Counts.Events || dst.head != h.AuditHead {
			t.Fatalf("restored %+v, head %+v; header says %+v", rep, dst.head, h)
		}
	})
}
