package chat_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/chat"
)

// noop runs every demo tool instantly.
type noop struct{}

func (noop) Tools() []chat.ToolSpec { return []chat.ToolSpec{{Name: "lookup_order"}} }
func (noop) Execute(context.Context, chat.Call) (string, error) {
	return `{"status":"ok"}`, nil
}

// BenchmarkToolCallTurn is the gateway's own cost of one turn with one tool
// call: the user message stored, the tools the user may call, the model
// (scripted: no time), the call checked through the one door, executed
// (no-op), recorded in the audit trail, three more messages stored and
// every event sent. The store is SQLite in a temp dir, as `demo` runs it.
func BenchmarkToolCallTurn(b *testing.B) {
	w := newWorld(b)
	e, err := chat.New(chat.Config{Decider: w.svc, Threads: w.store, Model: chat.DefaultScripted(), Executor: noop{}, Catalog: w.cat})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	rec := newRecorder()
	s, err := e.Open(context.Background(), actor("user:olga@acme.example", "acme-berlin"), rec.send)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	s.Handle(ctx, chat.Command{Type: "start_thread", Title: "bench"})
	thread := rec.wait(b, chat.EventThreadCreated).Data.(chat.ThreadData).Thread.ID
	b.ResetTimer()
	for b.Loop() {
		s.Handle(ctx, chat.Command{Type: "submit_message", ThreadID: thread, Content: "order 1042"})
		rec.wait(b, chat.EventAgentCompleted)
	}
}
