package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
)

var threadTests = []test{
	{"CreateGetList", testThreadCreateGetList},
	{"ListLimit", testThreadListLimit},
	{"CreateRefused", testThreadCreateRefused},
	{"Rename", testThreadRename},
	{"DeleteCascades", testThreadDeleteCascades},
	{"AppendOrder", testThreadAppendOrder},
	{"AppendRefused", testThreadAppendRefused},
	{"Attachments", testThreadAttachments},
	{"AttachmentLinks", testThreadAttachmentLinks},
	{"MessagesAfterLimit", testThreadMessagesAfterLimit},
	{"ConcurrentAppends", testThreadConcurrentAppends},
}

// chatTime is when the thread tests happen; stores keep microseconds.
var chatTime = time.Date(2026, 11, 23, 9, 0, 0, 123456000, time.UTC)

// threadsOf returns s as a gatehouse.ThreadStore, which every store
// Gatehouse ships is.
func threadsOf(t *testing.T, s gatehouse.Store) gatehouse.ThreadStore {
	t.Helper()
	ts, ok := s.(gatehouse.ThreadStore)
	if !ok {
		t.Fatalf("%T does not implement gatehouse.ThreadStore", s)
	}
	return ts
}

// thread is thread id of owner in tenant, created at chatTime+min minutes.
func thread(id, tenant, owner string, min int) gatehouse.Thread {
	at := chatTime.Add(time.Duration(min) * time.Minute)
	return gatehouse.Thread{ID: id, Tenant: tenant, Owner: owner, Title: "about " + id, CreatedAt: at, UpdatedAt: at}
}

func createThread(t *testing.T, ts gatehouse.ThreadStore, th gatehouse.Thread) {
	t.Helper()
	if err := ts.CreateThread(t.Context(), th); err != nil {
		t.Fatalf("CreateThread(%s) = %v", th.ID, err)
	}
}

func getThread(t *testing.T, ts gatehouse.ThreadStore, id string) gatehouse.Thread {
	t.Helper()
	th, err := ts.GetThread(t.Context(), id)
	if err != nil {
		t.Fatalf("GetThread(%s) = %v", id, err)
	}
	return th
}

// userMsg is a user message of thread at chatTime+sec seconds.
func userMsg(id, thread string, sec int, attachments ...string) gatehouse.Message {
	return gatehouse.Message{ID: id, ThreadID: thread, Role: gatehouse.RoleUser, Author: "user:ana@example.com",
		Content: "question " + id, Attachments: attachments, CreatedAt: chatTime.Add(time.Duration(sec) * time.Second)}
}

func appendMsgs(t *testing.T, ts gatehouse.ThreadStore, msgs ...gatehouse.Message) []gatehouse.Message {
	t.Helper()
	if err := ts.AppendMessages(t.Context(), msgs); err != nil {
		t.Fatalf("AppendMessages(%d messages) = %v", len(msgs), err)
	}
	return msgs
}

func messages(t *testing.T, ts gatehouse.ThreadStore, thread string, after int64, limit int) []gatehouse.Message {
	t.Helper()
	msgs, err := ts.Messages(t.Context(), thread, after, limit)
	if err != nil {
		t.Fatalf("Messages(%s, after %d, limit %d) = %v", thread, after, limit, err)
	}
	return msgs
}

func listThreads(t *testing.T, ts gatehouse.ThreadStore, f gatehouse.ThreadFilter) []string {
	t.Helper()
	threads, err := ts.ListThreads(t.Context(), f)
	if err != nil {
		t.Fatalf("ListThreads(%+v) = %v", f, err)
	}
	var out []string
	for _, th := range threads {
		out = append(out, th.ID)
	}
	return out
}

// attachment is attachment id of thread holding data.
func attachment(id, thread, data string) gatehouse.Attachment {
	sum := sha256.Sum256([]byte(data))
	return gatehouse.Attachment{ID: id, ThreadID: thread, Name: id + ".txt", MIME: "text/plain",
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Data: []byte(data), CreatedAt: chatTime}
}

func putAttachment(t *testing.T, ts gatehouse.ThreadStore, a gatehouse.Attachment) {
	t.Helper()
	if err := ts.PutAttachment(t.Context(), a); err != nil {
		t.Fatalf("PutAttachment(%s) = %v", a.ID, err)
	}
}

func getAttachment(t *testing.T, ts gatehouse.ThreadStore, id string) gatehouse.Attachment {
	t.Helper()
	a, err := ts.GetAttachment(t.Context(), id)
	if err != nil {
		t.Fatalf("GetAttachment(%s) = %v", id, err)
	}
	return a
}

// threadState is a thread with its messages, for checking that a failed
// call changed nothing.
type threadState struct {
	Thread   gatehouse.Thread
	Messages []gatehouse.Message
}

func stateOf(t *testing.T, ts gatehouse.ThreadStore, id string) threadState {
	t.Helper()
	return threadState{getThread(t, ts, id), messages(t, ts, id, 0, 0)}
}

func testThreadCreateGetList(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	created := []gatehouse.Thread{
		thread("t1", "acme", "user:ana@example.com", 1),
		thread("t2", "acme", "user:bo@example.com", 3),
		thread("t3", "acme", "user:ana@example.com", 2),
		thread("t4", "acme", "agent:support-bot", 5),
		// The same owner in another tenant, updated last of all.
		thread("t5", "globex", "user:ana@example.com", 9),
	}
	for _, th := range created {
		createThread(t, ts, th)
	}
	// Messages and LastSeq are ignored; a zero UpdatedAt is the creation.
	odd := thread("t6", "acme", "user:ana@example.com", 4)
	odd.Messages, odd.LastSeq, odd.UpdatedAt, odd.Title = 7, 9, time.Time{}, ""
	createThread(t, ts, odd)
	want := odd
	want.Messages, want.LastSeq, want.UpdatedAt = 0, 0, odd.CreatedAt
	if diff := cmp.Diff(want, getThread(t, ts, "t6")); diff != "" {
		t.Errorf("GetThread(t6) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(created[0], getThread(t, ts, "t1")); diff != "" {
		t.Errorf("GetThread(t1) (-want +got):\n%s", diff)
	}
	_, err := ts.GetThread(t.Context(), "nope")
	wantErr(t, "GetThread(nope)", err, gatehouse.ErrNotFound)

	tests := []struct {
		f    gatehouse.ThreadFilter
		want []string
	}{
		{gatehouse.ThreadFilter{Tenant: "acme"}, []string{"t4", "t6", "t2", "t3", "t1"}},
		{gatehouse.ThreadFilter{Tenant: "acme", Owner: "user:ana@example.com"}, []string{"t6", "t3", "t1"}},
		{gatehouse.ThreadFilter{Tenant: "acme", Owner: "user:ana@example.com", Limit: 2}, []string{"t6", "t3"}},
		{gatehouse.ThreadFilter{Tenant: "acme", Limit: 1}, []string{"t4"}},
		{gatehouse.ThreadFilter{Tenant: "globex"}, []string{"t5"}},
		{gatehouse.ThreadFilter{Tenant: "globex", Owner: "user:bo@example.com"}, nil},
		{gatehouse.ThreadFilter{Tenant: "initech"}, nil},
	}
	for _, tt := range tests {
		if got := listThreads(t, ts, tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("ListThreads(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	full, err := ts.ListThreads(t.Context(), gatehouse.ThreadFilter{Tenant: "globex"})
	if err != nil || len(full) != 1 {
		t.Fatalf("ListThreads(globex) = %v, %v", full, err)
	}
	if diff := cmp.Diff(created[4], full[0]); diff != "" {
		t.Errorf("ListThreads(globex)[0] (-want +got):\n%s", diff)
	}
	for _, f := range []gatehouse.ThreadFilter{{}, {Owner: "user:ana@example.com"}, {Tenant: "acme", Limit: -1}} {
		_, err := ts.ListThreads(t.Context(), f)
		wantErr(t, fmt.Sprintf("ListThreads(%+v)", f), err, gatehouse.ErrInvalid)
	}
}

// Without a limit, ListThreads returns the newest 100.
func testThreadListLimit(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	for i := range 101 {
		createThread(t, ts, thread(fmt.Sprintf("t%03d", i), "acme", "user:ana@example.com", i))
	}
	got := listThreads(t, ts, gatehouse.ThreadFilter{Tenant: "acme"})
	if len(got) != 100 || got[0] != "t100" || got[99] != "t001" {
		t.Errorf("ListThreads(acme) = %d threads from %v, want the 100 newest, t100 to t001", len(got), got[:min(len(got), 3)])
	}
	if got := listThreads(t, ts, gatehouse.ThreadFilter{Tenant: "acme", Limit: 101}); len(got) != 101 {
		t.Errorf("ListThreads(acme, limit 101) = %d threads, want 101", len(got))
	}
}

func testThreadCreateRefused(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	first := thread("t1", "acme", "user:ana@example.com", 0)
	createThread(t, ts, first)
	taken := thread("t1", "globex", "user:bo@example.com", 5)
	wantErr(t, "CreateThread(taken id)", ts.CreateThread(t.Context(), taken), gatehouse.ErrConflict)
	if diff := cmp.Diff(first, getThread(t, ts, "t1")); diff != "" {
		t.Errorf("CreateThread(taken id) changed t1 (-want +got):\n%s", diff)
	}
	invalid := []struct {
		name string
		edit func(th *gatehouse.Thread)
	}{
		{"no id", func(th *gatehouse.Thread) { th.ID = "" }},
		{"no tenant", func(th *gatehouse.Thread) { th.Tenant = "" }},
		{"no owner", func(th *gatehouse.Thread) { th.Owner = "" }},
		{"no creation time", func(th *gatehouse.Thread) { th.CreatedAt = time.Time{} }},
		{"title too long", func(th *gatehouse.Thread) { th.Title = strings.Repeat("x", gatehouse.MaxThreadTitle+1) }},
	}
	for _, tt := range invalid {
		th := thread("t2", "acme", "user:ana@example.com", 1)
		tt.edit(&th)
		wantErr(t, "CreateThread("+tt.name+")", ts.CreateThread(t.Context(), th), gatehouse.ErrInvalid)
	}
	if got := listThreads(t, ts, gatehouse.ThreadFilter{Tenant: "acme"}); !slices.Equal(got, []string{"t1"}) {
		t.Errorf("after the refused creates ListThreads(acme) = %v, want [t1]", got)
	}
	long := thread("t3", "acme", "user:ana@example.com", 1)
	long.Title = strings.Repeat("é", gatehouse.MaxThreadTitle/2)
	createThread(t, ts, long)
	if got := getThread(t, ts, "t3").Title; got != long.Title {
		t.Errorf("GetThread(t3).Title = %q, want the %d-byte title", got, len(long.Title))
	}
}

func testThreadRename(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	createThread(t, ts, thread("t1", "acme", "user:ana@example.com", 0))
	createThread(t, ts, thread("t2", "acme", "user:ana@example.com", 1))
	at := chatTime.Add(time.Hour)
	if err := ts.RenameThread(t.Context(), "t1", "Refund for order 42", at); err != nil {
		t.Fatalf("RenameThread(t1) = %v", err)
	}
	want := thread("t1", "acme", "user:ana@example.com", 0)
	want.Title, want.UpdatedAt = "Refund for order 42", at
	if diff := cmp.Diff(want, getThread(t, ts, "t1")); diff != "" {
		t.Errorf("GetThread(t1) after RenameThread (-want +got):\n%s", diff)
	}
	if got := listThreads(t, ts, gatehouse.ThreadFilter{Tenant: "acme"}); !slices.Equal(got, []string{"t1", "t2"}) {
		t.Errorf("ListThreads(acme) after renaming t1 = %v, want [t1 t2]", got)
	}
	wantErr(t, "RenameThread(nope)", ts.RenameThread(t.Context(), "nope", "x", at), gatehouse.ErrNotFound)
	long := strings.Repeat("x", gatehouse.MaxThreadTitle+1)
	wantErr(t, "RenameThread(title too long)", ts.RenameThread(t.Context(), "t1", long, at.Add(time.Hour)), gatehouse.ErrInvalid)
	if diff := cmp.Diff(want, getThread(t, ts, "t1")); diff != "" {
		t.Errorf("GetThread(t1) after a refused RenameThread (-want +got):\n%s", diff)
	}
}

func testThreadDeleteCascades(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	createThread(t, ts, thread("t1", "acme", "user:ana@example.com", 0))
	createThread(t, ts, thread("t2", "acme", "user:ana@example.com", 1))
	putAttachment(t, ts, attachment("a-linked", "t1", "linked"))
	putAttachment(t, ts, attachment("a-loose", "t1", "loose"))
	putAttachment(t, ts, attachment("a-other", "t2", "other"))
	appendMsgs(t, ts, userMsg("m1", "t1", 1, "a-linked"), userMsg("m2", "t1", 2))
	kept := appendMsgs(t, ts, userMsg("m3", "t2", 3, "a-other"))
	other := stateOf(t, ts, "t2")

	if err := ts.DeleteThread(t.Context(), "t1"); err != nil {
		t.Fatalf("DeleteThread(t1) = %v", err)
	}
	_, err := ts.GetThread(t.Context(), "t1")
	wantErr(t, "GetThread(deleted t1)", err, gatehouse.ErrNotFound)
	_, err = ts.Messages(t.Context(), "t1", 0, 0)
	wantErr(t, "Messages(deleted t1)", err, gatehouse.ErrNotFound)
	for _, id := range []string{"a-linked", "a-loose"} {
		_, err := ts.GetAttachment(t.Context(), id)
		wantErr(t, "GetAttachment("+id+" of deleted t1)", err, gatehouse.ErrNotFound)
	}
	wantErr(t, "DeleteThread(t1 again)", ts.DeleteThread(t.Context(), "t1"), gatehouse.ErrNotFound)
	wantErr(t, "DeleteThread(nope)", ts.DeleteThread(t.Context(), "nope"), gatehouse.ErrNotFound)
	if diff := cmp.Diff(other, stateOf(t, ts, "t2")); diff != "" {
		t.Errorf("DeleteThread(t1) changed t2 (-before +after):\n%s", diff)
	}
	if a := getAttachment(t, ts, "a-other"); a.MessageID != kept[0].ID {
		t.Errorf("GetAttachment(a-other).MessageID = %q after deleting t1, want %q", a.MessageID, kept[0].ID)
	}
	// Nothing of t1 is left: a new t1 starts empty, and its ids are free.
	createThread(t, ts, thread("t1", "acme", "user:ana@example.com", 2))
	if got := messages(t, ts, "t1", 0, 0); len(got) != 0 {
		t.Errorf("Messages(new t1) = %+v, want none", got)
	}
	putAttachment(t, ts, attachment("a-linked", "t1", "again"))
	putAttachment(t, ts, attachment("a-loose", "t1", "again"))
	again := appendMsgs(t, ts, userMsg("m1", "t1", 5, "a-linked"), userMsg("m2", "t1", 6, "a-loose"))
	if again[0].Seq != 1 || again[1].Seq != 2 {
		t.Errorf("AppendMessages(new t1) seqs %d, %d; want 1, 2", again[0].Seq, again[1].Seq)
	}
}

func testThreadAppendOrder(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	createThread(t, ts, thread("t1", "acme", "user:ana@example.com", 0))
	createThread(t, ts, thread("t2", "acme", "user:ana@example.com", 0))
	ask := userMsg("m1", "t1", 10)
	ask.Seq = 99 // the store assigns seqs
	call := gatehouse.Message{ID: "m2", ThreadID: "t1", Role: gatehouse.RoleAssistant, Content: "Let me look.",
		ToolCalls: []gatehouse.ToolCall{
			// Arguments are kept as the model wrote them, byte for byte.
			{ID: "call-1", Name: "lookup_order", Arguments: json.RawMessage(" {\"order\" : \"42\",\n \"html\": \"<&>\"} ")},
			{ID: "call-2", Name: "process_refund", Arguments: json.RawMessage(`{"amount":"12.50","note":"Rückerstattung — 退款"}`)},
			{ID: "call-3", Name: "list_orders"},
		},
		CreatedAt: chatTime.Add(11 * time.Second)}
	first := appendMsgs(t, ts, ask, call)
	if first[0].Seq != 1 || first[1].Seq != 2 {
		t.Errorf("AppendMessages(m1, m2) seqs %d, %d; want 1, 2", first[0].Seq, first[1].Seq)
	}
	second := appendMsgs(t, ts,
		gatehouse.Message{ID: "m3", ThreadID: "t1", Role: gatehouse.RoleTool, Content: `{"status":"shipped"}`,
			ToolCallID: "call-1", ToolName: "lookup_order", Status: gatehouse.ToolCallDone, CreatedAt: chatTime.Add(12 * time.Second)},
		gatehouse.Message{ID: "m4", ThreadID: "t1", Role: gatehouse.RoleTool, Content: "refunds need a confirmation",
			ToolCallID: "call-2", ToolName: "process_refund", Status: gatehouse.ToolCallPending,
			Reason: gatehouse.ReasonConfirmationRequired, ActionID: "act-1", CreatedAt: chatTime.Add(13 * time.Second)},
		gatehouse.Message{ID: "m5", ThreadID: "t1", Role: gatehouse.RoleTool, Content: "not allowed",
			ToolCallID: "call-3", ToolName: "list_orders", Status: gatehouse.ToolCallDenied,
			Reason: gatehouse.ReasonPermissionMissing, CreatedAt: chatTime.Add(14 * time.Second)},
	)
	for i, m := range second {
		if m.Seq != int64(i+3) {
			t.Errorf("AppendMessages(m3, m4, m5): %s has seq %d, want %d", m.ID, m.Seq, i+3)
		}
	}
	// Another thread counts from 1.
	if other := appendMsgs(t, ts, userMsg("m6", "t2", 15)); other[0].Seq != 1 {
		t.Errorf("AppendMessages(t2's first) seq %d, want 1", other[0].Seq)
	}
	want := append(slices.Clone(first), second...)
	if diff := cmp.Diff(want, messages(t, ts, "t1", 0, 0)); diff != "" {
		t.Errorf("Messages(t1) (-appended +stored):\n%s", diff)
	}
	th := getThread(t, ts, "t1")
	if th.Messages != 5 || th.LastSeq != 5 || !th.UpdatedAt.Equal(chatTime.Add(14*time.Second)) {
		t.Errorf("GetThread(t1) = %d messages, last seq %d, updated %v; want 5, 5, the last message's time %v",
			th.Messages, th.LastSeq, th.UpdatedAt, chatTime.Add(14*time.Second))
	}
	if got := listThreads(t, ts, gatehouse.ThreadFilter{Tenant: "acme"}); !slices.Equal(got, []string{"t2", "t1"}) {
		t.Errorf("ListThreads(acme) = %v, want t2, updated last, first", got)
	}
	// Appending nothing changes nothing.
	before := stateOf(t, ts, "t1")
	if err := ts.AppendMessages(t.Context(), nil); err != nil {
		t.Errorf("AppendMessages(none) = %v", err)
	}
	if diff := cmp.Diff(before, stateOf(t, ts, "t1")); diff != "" {
		t.Errorf("AppendMessages(none) changed t1 (-before +after):\n%s", diff)
	}
}

func testThreadAppendRefused(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	createThread(t, ts, thread("t1", "acme", "user:ana@example.com", 0))
	createThread(t, ts, thread("t2", "acme", "user:ana@example.com", 0))
	appendMsgs(t, ts, userMsg("m1", "t1", 1))
	appendMsgs(t, ts, userMsg("m-t2", "t2", 2))
	tool := func(id string, edit func(m *gatehouse.Message)) gatehouse.Message {
		m := gatehouse.Message{ID: id, ThreadID: "t1", Role: gatehouse.RoleTool, Content: "ok", ToolCallID: "c1",
			ToolName: "lookup_order", Status: gatehouse.ToolCallDone, CreatedAt: chatTime.Add(time.Minute)}
		edit(&m)
		return m
	}
	ok := userMsg("m-ok", "t1", 30)
	tests := []struct {
		name string
		msgs []gatehouse.Message
		want error
	}{
		{"unknown thread", []gatehouse.Message{userMsg("m9", "nope", 3)}, gatehouse.ErrNotFound},
		{"no id", []gatehouse.Message{ok, userMsg("", "t1", 3)}, gatehouse.ErrInvalid},
		{"no creation time", []gatehouse.Message{ok, tool("m9", func(m *gatehouse.Message) { m.CreatedAt = time.Time{} })}, gatehouse.ErrInvalid},
		{"unknown role", []gatehouse.Message{ok, tool("m9", func(m *gatehouse.Message) { m.Role = "system" })}, gatehouse.ErrInvalid},
		{"tool message without its call", []gatehouse.Message{ok, tool("m9", func(m *gatehouse.Message) { m.ToolCallID = "" })}, gatehouse.ErrInvalid},
		{"unknown status", []gatehouse.Message{ok, tool("m9", func(m *gatehouse.Message) { m.Status = "maybe" })}, gatehouse.ErrInvalid},
		{"pending without action", []gatehouse.Message{ok, tool("m9", func(m *gatehouse.Message) { m.Status = gatehouse.ToolCallPending })}, gatehouse.ErrInvalid},
		{"user message answering a call", []gatehouse.Message{ok, tool("m9", func(m *gatehouse.Message) { m.Role = gatehouse.RoleUser })}, gatehouse.ErrInvalid},
		{"invalid tool call arguments", []gatehouse.Message{ok, {ID: "m9", ThreadID: "t1", Role: gatehouse.RoleAssistant, CreatedAt: chatTime,
			ToolCalls: []gatehouse.ToolCall{{ID: "c1", Name: "lookup_order", Arguments: json.RawMessage(`{"order":`)}}}}, gatehouse.ErrInvalid},
		{"tool call without name", []gatehouse.Message{ok, {ID: "m9", ThreadID: "t1", Role: gatehouse.RoleAssistant, CreatedAt: chatTime,
			ToolCalls: []gatehouse.ToolCall{{ID: "c1"}}}}, gatehouse.ErrInvalid},
		{"two threads", []gatehouse.Message{ok, userMsg("m9", "t2", 3)}, gatehouse.ErrInvalid},
		{"id taken in the thread", []gatehouse.Message{ok, userMsg("m1", "t1", 3)}, gatehouse.ErrInvalid},
		{"id taken in another thread", []gatehouse.Message{ok, userMsg("m-t2", "t1", 3)}, gatehouse.ErrInvalid},
		{"id twice", []gatehouse.Message{ok, userMsg("m9", "t1", 3), userMsg("m9", "t1", 4)}, gatehouse.ErrInvalid},
	}
	before, beforeT2 := stateOf(t, ts, "t1"), stateOf(t, ts, "t2")
	for _, tt := range tests {
		err := ts.AppendMessages(t.Context(), tt.msgs)
		wantErr(t, "AppendMessages("+tt.name+")", err, tt.want)
		if diff := cmp.Diff(before, stateOf(t, ts, "t1")); diff != "" {
			t.Errorf("AppendMessages(%s) changed t1 (-before +after):\n%s", tt.name, diff)
		}
	}
	if diff := cmp.Diff(beforeT2, stateOf(t, ts, "t2")); diff != "" {
		t.Errorf("the refused appends changed t2 (-before +after):\n%s", diff)
	}
	// The store goes on from where it was.
	if got := appendMsgs(t, ts, ok); got[0].Seq != 2 {
		t.Errorf("AppendMessages(m-ok) after the refusals: seq %d, want 2", got[0].Seq)
	}
}

func testThreadAttachments(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	createThread(t, ts, thread("t1", "acme", "user:ana@example.com", 0))
	doc := attachment("a1", "t1", "%PDF-1.7 \x00\xff binary")
	putAttachment(t, ts, doc)
	if diff := cmp.Diff(doc, getAttachment(t, ts, "a1")); diff != "" {
		t.Errorf("GetAttachment(a1) (-put +got):\n%s", diff)
	}
	if got := getAttachment(t, ts, "a1"); string(got.Data) != string(doc.Data) {
		t.Errorf("GetAttachment(a1).Data = %q, want %q", got.Data, doc.Data)
	}
	_, err := ts.GetAttachment(t.Context(), "nope")
	wantErr(t, "GetAttachment(nope)", err, gatehouse.ErrNotFound)
	taken := attachment("a1", "t1", "other")
	wantErr(t, "PutAttachment(taken id)", ts.PutAttachment(t.Context(), taken), gatehouse.ErrConflict)
	wantErr(t, "PutAttachment(unknown thread)", ts.PutAttachment(t.Context(), attachment("a2", "nope", "x")), gatehouse.ErrNotFound)
	invalid := []struct {
		name string
		edit func(a *gatehouse.Attachment)
	}{
		{"no id", func(a *gatehouse.Attachment) { a.ID = "" }},
		{"no thread", func(a *gatehouse.Attachment) { a.ThreadID = "" }},
		{"no name", func(a *gatehouse.Attachment) { a.Name = "" }},
		{"no MIME type", func(a *gatehouse.Attachment) { a.MIME = "" }},
		{"wrong size", func(a *gatehouse.Attachment) { a.Size++ }},
		{"no creation time", func(a *gatehouse.Attachment) { a.CreatedAt = time.Time{} }},
		{"linked already", func(a *gatehouse.Attachment) { a.MessageID = "m1" }},
	}
	for _, tt := range invalid {
		a := attachment("a3", "t1", "data")
		tt.edit(&a)
		wantErr(t, "PutAttachment("+tt.name+")", ts.PutAttachment(t.Context(), a), gatehouse.ErrInvalid)
	}
	for _, id := range []string{"a2", "a3"} {
		_, err := ts.GetAttachment(t.Context(), id)
		wantErr(t, "GetAttachment("+id+") after the refused puts", err, gatehouse.ErrNotFound)
	}
	if diff := cmp.Diff(doc, getAttachment(t, ts, "a1")); diff != "" {
		t.Errorf("GetAttachment(a1) after the refused puts (-put +got):\n%s", diff)
	}
}

func testThreadAttachmentLinks(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	createThread(t, ts, thread("t1", "acme", "user:ana@example.com", 0))
	createThread(t, ts, thread("t2", "acme", "user:ana@example.com", 0))
	for _, a := range []gatehouse.Attachment{attachment("a1", "t1", "one"), attachment("a2", "t1", "two"),
		attachment("a3", "t1", "three"), attachment("b1", "t2", "other thread")} {
		putAttachment(t, ts, a)
	}
	linked := appendMsgs(t, ts, userMsg("m1", "t1", 1, "a1", "a2"))
	for _, id := range []string{"a1", "a2"} {
		if got := getAttachment(t, ts, id).MessageID; got != "m1" {
			t.Errorf("GetAttachment(%s).MessageID = %q, want m1", id, got)
		}
	}
	if got := messages(t, ts, "t1", 0, 0); len(got) != 1 || !slices.Equal(got[0].Attachments, []string{"a1", "a2"}) {
		t.Errorf("Messages(t1) = %+v, want m1 carrying a1, a2", got)
	}
	answer := gatehouse.Message{ID: "m9", ThreadID: "t1", Role: gatehouse.RoleAssistant, Content: "x",
		Attachments: []string{"a3"}, CreatedAt: chatTime}
	tests := []struct {
		name string
		msgs []gatehouse.Message
	}{
		{"linked already", []gatehouse.Message{userMsg("m2", "t1", 2, "a3", "a1")}},
		{"of another thread", []gatehouse.Message{userMsg("m2", "t1", 2, "b1")}},
		{"unknown", []gatehouse.Message{userMsg("m2", "t1", 2, "nope")}},
		{"twice in a message", []gatehouse.Message{userMsg("m2", "t1", 2, "a3", "a3")}},
		{"twice in a batch", []gatehouse.Message{userMsg("m2", "t1", 2, "a3"), userMsg("m3", "t1", 3, "a3")}},
		{"carried by an assistant message", []gatehouse.Message{answer}},
	}
	before := stateOf(t, ts, "t1")
	for _, tt := range tests {
		wantErr(t, "AppendMessages(attachment "+tt.name+")", ts.AppendMessages(t.Context(), tt.msgs), gatehouse.ErrInvalid)
		if diff := cmp.Diff(before, stateOf(t, ts, "t1")); diff != "" {
			t.Errorf("AppendMessages(attachment %s) changed t1 (-before +after):\n%s", tt.name, diff)
		}
		for id, want := range map[string]string{"a1": "m1", "a2": "m1", "a3": "", "b1": ""} {
			if got := getAttachment(t, ts, id).MessageID; got != want {
				t.Errorf("after AppendMessages(attachment %s): GetAttachment(%s).MessageID = %q, want %q", tt.name, id, got, want)
			}
		}
	}
	later := appendMsgs(t, ts, userMsg("m2", "t1", 2, "a3"))
	if got := getAttachment(t, ts, "a3").MessageID; got != "m2" || later[0].Seq != linked[0].Seq+1 {
		t.Errorf("AppendMessages(m2 carrying a3): seq %d, a3 linked to %q; want %d, m2", later[0].Seq, got, linked[0].Seq+1)
	}
}

func testThreadMessagesAfterLimit(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	createThread(t, ts, thread("t1", "acme", "user:ana@example.com", 0))
	createThread(t, ts, thread("empty", "acme", "user:ana@example.com", 0))
	for i := range 5 {
		appendMsgs(t, ts, userMsg(fmt.Sprintf("m%d", i+1), "t1", i))
	}
	tests := []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 0, []int64{1, 2, 3, 4, 5}},
		{2, 0, []int64{3, 4, 5}},
		{2, 2, []int64{3, 4}},
		{0, 1, []int64{1}},
		{4, 10, []int64{5}},
		{5, 0, nil},
		{-1, 0, []int64{1, 2, 3, 4, 5}},
	}
	for _, tt := range tests {
		var got []int64
		for _, m := range messages(t, ts, "t1", tt.after, tt.limit) {
			got = append(got, m.Seq)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Messages(t1, after %d, limit %d) seqs %v, want %v", tt.after, tt.limit, got, tt.want)
		}
	}
	if got := messages(t, ts, "empty", 0, 0); len(got) != 0 {
		t.Errorf("Messages(empty) = %+v, want none", got)
	}
	_, err := ts.Messages(t.Context(), "nope", 0, 0)
	wantErr(t, "Messages(nope)", err, gatehouse.ErrNotFound)
	_, err = ts.Messages(t.Context(), "t1", 0, -1)
	wantErr(t, "Messages(t1, limit -1)", err, gatehouse.ErrInvalid)
}

// Appends racing on one thread each get their own seqs, consecutive within
// a batch, and together exactly 1 to n.
func testThreadConcurrentAppends(t *testing.T, s gatehouse.Store) {
	ts := threadsOf(t, s)
	createThread(t, ts, thread("t1", "acme", "user:ana@example.com", 0))
	const writers, batches = 8, 5
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		bySeq = map[int64]string{}
		errs  []error
	)
	for w := range writers {
		wg.Go(func() {
			<-start
			for b := range batches {
				msgs := []gatehouse.Message{
					userMsg(fmt.Sprintf("w%d-b%d-1", w, b), "t1", b),
					userMsg(fmt.Sprintf("w%d-b%d-2", w, b), "t1", b),
				}
				err := ts.AppendMessages(t.Context(), msgs)
				mu.Lock()
				errs = append(errs, noteSeqs(bySeq, msgs, err))
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	const n = writers * batches * 2
	stored := messages(t, ts, "t1", 0, 0)
	if len(stored) != n {
		t.Fatalf("Messages(t1) = %d messages, want %d", len(stored), n)
	}
	for i, m := range stored {
		if m.Seq != int64(i+1) || bySeq[m.Seq] != m.ID {
			t.Errorf("stored message %d: %s at seq %d, its append was told %q got that seq", i, m.ID, m.Seq, bySeq[m.Seq])
		}
	}
	if th := getThread(t, ts, "t1"); th.Messages != n || th.LastSeq != n {
		t.Errorf("GetThread(t1) = %d messages, last seq %d; want %d, %d", th.Messages, th.LastSeq, n, n)
	}
}

// noteSeqs notes in bySeq the seqs an append gave msgs, and reports the
// append's failure, seqs not consecutive in the batch, or a seq given twice.
func noteSeqs(bySeq map[int64]string, msgs []gatehouse.Message, err error) error {
	if err != nil {
		return err
	}
	for i, m := range msgs {
		if prev, dup := bySeq[m.Seq]; dup {
			err = errors.Join(err, fmt.Errorf("seq %d given to %s and %s", m.Seq, prev, m.ID))
		}
		if i > 0 && m.Seq != msgs[i-1].Seq+1 {
			err = errors.Join(err, fmt.Errorf("batch of %s: seqs %d, %d", msgs[0].ID, msgs[i-1].Seq, m.Seq))
		}
		bySeq[m.Seq] = m.ID
	}
	return err
}
