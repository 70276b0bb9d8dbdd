package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
	"github.com/gatehouse/gatehouse/chat/tools"
	"github.com/gatehouse/gatehouse/examples"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

// world is the example policy's service over a store in memory, which
// keeps the threads too, and a catalog.
type world struct {
	t     testing.TB
	store *memstore.Store
	svc   *service.Service
	cat   *locale.Catalog
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{t: t, store: memstore.New()}
	t.Cleanup(func() { w.store.Close() })
	w.open()
	doc, err := policy.Parse(examples.AIAssistantPolicyFile, examples.AIAssistantPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Apply(context.Background(), "test", doc, false); err != nil {
		t.Fatal(err)
	}
	if w.cat, err = locale.New(); err != nil {
		t.Fatal(err)
	}
	return w
}

// open opens a service over the store, as a (re)started server does.
func (w *world) open() {
	w.t.Helper()
	ctx := context.Background()
	svc, err := service.Open(ctx, w.store, service.Config{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.svc = svc
}

// recorder collects a session's events.
type recorder struct {
	mu     sync.Mutex
	events []chat.Event
	signal chan struct{}
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (r *recorder) send(e chat.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// wait returns the first event of type typ after the first n events.
func (r *recorder) wait(t testing.TB, typ string) chat.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	seen := 0
	for {
		r.mu.Lock()
		for ; seen < len(r.events); seen++ {
			if r.events[seen].Type == typ {
				e := r.events[seen]
				r.events = r.events[seen+1:]
				r.mu.Unlock()
				return e
			}
		}
		r.mu.Unlock()
		select {
		case <-r.signal:
		case <-deadline:
			t.Fatalf("no %s event in 5 s", typ)
		}
	}
}

func (w *world) engine(model chat.Model, exec chat.Executor, configure func(*chat.Config)) *chat.Engine {
	w.t.Helper()
	cfg := chat.Config{Decider: w.svc, Threads: w.store, Model: model, Executor: exec, Catalog: w.cat,
		ToolTimeout: 500 * time.Millisecond, ModelTimeout: 500 * time.Millisecond}
	if configure != nil {
		configure(&cfg)
	}
	e, err := chat.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(e.Close)
	return e
}

func actor(subject, tenant string) chat.Actor {
	s, err := gatehouse.ParseSubject(subject)
	if err != nil {
		panic(err)
	}
	return chat.Actor{Caller: gatehouse.Caller{Subject: s, Credential: gatehouse.CredentialToken}, Tenant: tenant, Lang: "en"}
}

// start opens a session for a, starts a thread with content and returns
// the thread and the session's recorder.
func start(t *testing.T, e *chat.Engine, a chat.Actor, content string) (string, *recorder) {
	t.Helper()
	rec := newRecorder()
	s, err := e.Open(context.Background(), a, rec.send)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.Handle(context.Background(), chat.Command{Type: "start_thread", Content: content})
	ev := rec.wait(t, chat.EventThreadCreated)
	return ev.Data.(chat.ThreadData).Thread.ID, rec
}

// A confirmation outlives the engine that asked for it: confirmed while
// no engine runs, the next engine carries the action out when the thread
// is opened.
func TestConfirmationSurvivesRestart(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	olga := actor("user:olga@acme.example", "acme-berlin")
	first := w.engine(chat.DefaultScripted(), tools.Demo{}, nil)
	thread, rec := start(t, first, olga, "refund 20.00 EUR on order 1042")
	action := rec.wait(t, chat.EventConfirmationRequired).Data.(chat.ConfirmationData).ActionID
	rec.wait(t, chat.EventAgentWaiting)
	first.Close()

	w.open()
	if _, err := w.svc.ConfirmAction(context.Background(), olga.Caller, action); err != nil {
		t.Fatal(err)
	}
	second := w.engine(chat.DefaultScripted(), tools.Demo{}, nil)
	rec = newRecorder()
	s, err := second.Open(context.Background(), olga, rec.send)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Handle(context.Background(), chat.Command{Type: "open_thread", ThreadID: thread})
	if got := rec.wait(t, chat.EventToolResult).Data.(chat.ToolResultData); got.ActionID != action {
		t.Errorf("tool_result %+v, want action %s", got, action)
	}
	rec.wait(t, chat.EventAgentCompleted)
	got, err := w.svc.GetAction(context.Background(), olga.Caller, action)
	if err != nil || got.Status != gatehouse.ActionExecuted {
		t.Errorf("action %+v %v, want executed", got, err)
	}
}

// model is a Model scripted per test.
type model func(req chat.ModelRequest) (chat.Reply, error)

func (m model) Complete(ctx context.Context, req chat.ModelRequest, onToken func(string)) (chat.Reply, error) {
	r, err := m(req)
	if err == nil && r.Content != "" {
		onToken(r.Content)
	}
	return r, err
}

// badExecutor fails or hangs.
type badExecutor struct{ hang bool }

func (badExecutor) Tools() []chat.ToolSpec { return tools.Demo{}.Tools() }
func (b badExecutor) Execute(ctx context.Context, _ chat.Call) (string, error) {
	if b.hang {
		<-ctx.Done()
		return "", ctx.Err()
	}
	return "", errors.New("the backend is down")
}

// A model that misbehaves gets a refusal for each bad call, nothing is
// executed without a passing check, and the conversation goes on.
func TestModelMisbehaves(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sara := actor("user:sara@acme.example", "acme")
	call := func(name, args string) gatehouse.ToolCall {
		return gatehouse.ToolCall{ID: "c", Name: name, Arguments: json.RawMessage(args)}
	}
	tests := []struct {
		name   string
		calls  []gatehouse.ToolCall
		reason string
	}{
		{"an unknown tool", []gatehouse.ToolCall{call("teleport", `{}`)}, "unknown_permission"},
		{"arguments that are not an object", []gatehouse.ToolCall{call("analyze_loan", `[1]`)}, "invalid_request"},
		{"arguments that are not JSON", []gatehouse.ToolCall{call("analyze_loan", `{"loan_id": `)}, "invalid_request"},
		{"a tool the user may not call", []gatehouse.ToolCall{call("generate_report", `{"topic": "x"}`)}, "permission_missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := false
			e := w.engine(model(func(req chat.ModelRequest) (chat.Reply, error) {
				if last := req.Messages[len(req.Messages)-1]; last.Role == gatehouse.RoleTool {
					done = true
					return chat.Reply{Content: "sorry: " + last.Content}, nil
				}
				return chat.Reply{ToolCalls: tt.calls}, nil
			}), tools.Demo{}, nil)
			_, rec := start(t, e, sara, "go")
			ev := rec.wait(t, chat.EventToolError).Data.(chat.ToolErrorData)
			if ev.Reason != tt.reason {
				t.Errorf("chat_tool_error %+v, want reason %s", ev, tt.reason)
			}
			rec.wait(t, chat.EventAgentCompleted)
			if !done {
				t.Error("the model was not told the refusal")
			}
		})
	}
	t.Run("a model that loops", func(t *testing.T) {
		n := 0
		e := w.engine(model(func(chat.ModelRequest) (chat.Reply, error) {
			n++
			return chat.Reply{ToolCalls: []gatehouse.ToolCall{call("analyze_loan", `{"loan_id": "L"}`)}}, nil
		}), tools.Demo{}, func(c *chat.Config) { c.MaxToolCalls = 3 })
		_, rec := start(t, e, sara, "go")
		ev := rec.wait(t, chat.EventAgentFailed).Data.(chat.StatusData)
		if ev.Reason != "invalid_request" || n != 4 {
			t.Errorf("agent.failed %+v after %d model calls, want invalid_request after 4", ev, n)
		}
	})
	for _, m := range []struct {
		name  string
		model chat.Model
	}{
		{"a model that fails", model(func(chat.ModelRequest) (chat.Reply, error) { return chat.Reply{}, errors.New("500 from the API") })},
		{"a model that times out", hangingModel{}},
		{"an empty reply", model(func(chat.ModelRequest) (chat.Reply, error) { return chat.Reply{}, nil })},
	} {
		t.Run(m.name, func(t *testing.T) {
			e := w.engine(m.model, tools.Demo{}, nil)
			thread, rec := start(t, e, sara, "go")
			ev := rec.wait(t, chat.EventAgentFailed).Data.(chat.StatusData)
			if ev.Reason != "internal_error" || ev.Error != w.cat.Text("en", "chat.model_failed", nil) {
				t.Errorf("agent.failed %+v", ev)
			}
			// The thread is still usable.
			msgs, err := w.store.Messages(context.Background(), thread, 0, 0)
			if err != nil || len(msgs) != 1 {
				t.Errorf("messages %v %v, want the user's one", msgs, err)
			}
		})
	}
	for _, x := range []struct {
		name string
		exec chat.Executor
	}{{"a tool that fails", badExecutor{}}, {"a tool that times out", badExecutor{hang: true}}} {
		t.Run(x.name, func(t *testing.T) {
			e := w.engine(chat.DefaultScripted(), x.exec, nil)
			_, rec := start(t, e, sara, "analyze loan L-1")
			if ev := rec.wait(t, chat.EventToolError).Data.(chat.ToolErrorData); ev.Reason != "internal_error" {
				t.Errorf("chat_tool_error %+v", ev)
			}
			rec.wait(t, chat.EventAgentCompleted)
		})
	}
}

type hangingModel struct{}

func (hangingModel) Complete(ctx context.Context, _ chat.ModelRequest, _ func(string)) (chat.Reply, error) {
	<-ctx.Done()
	return chat.Reply{}, ctx.Err()
}

// The model reads an attachment's name and text, and is offered only the
// tools the user may call.
func TestModelInput(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var got chat.ModelRequest
	e := w.engine(model(func(req chat.ModelRequest) (chat.Reply, error) {
		got = req
		return chat.Reply{Content: "ok"}, nil
	}), tools.Demo{}, nil)
	carl := actor("user:carl@acme.example", "acme-berlin")
	rec := newRecorder()
	s, err := e.Open(context.Background(), carl, rec.send)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	s.Handle(ctx, chat.Command{Type: "start_thread", Title: "Notes"})
	thread := rec.wait(t, chat.EventThreadCreated).Data.(chat.ThreadData).Thread.ID
	s.Handle(ctx, chat.Command{Type: "upload_attachment", ThreadID: thread, Name: "notes.txt", MIME: "text/plain", Data: []byte("customer C-9 called twice")})
	att := rec.wait(t, chat.EventAttachment).Data.(chat.AttachmentData).Attachment
	s.Handle(ctx, chat.Command{Type: "submit_message", ThreadID: thread, Content: "summarize", Attachments: []string{att.ID}})
	rec.wait(t, chat.EventAgentCompleted)
	if c := got.Messages[len(got.Messages)-1].Content; !strings.Contains(c, "notes.txt") || !strings.Contains(c, "customer C-9 called twice") {
		t.Errorf("the model read %q", c)
	}
	var names []string
	for _, tool := range got.Tools {
		names = append(names, tool.Name)
	}
	if strings.Join(names, ",") != "customer_insights" {
		t.Errorf("carl's model is offered %v, want customer_insights alone", names)
	}
	// Uploads are checked.
	for _, c := range []struct {
		cmd    chat.Command
		reason string
	}{
		{chat.Command{Type: "upload_attachment", ThreadID: thread, Name: "x.exe", MIME: "application/x-msdownload", Data: []byte("MZ")}, chat.CodeUnsupported},
		{chat.Command{Type: "upload_attachment", ThreadID: thread, Name: "../x.txt", MIME: "text/plain", Data: []byte("x")}, "invalid_request"},
		{chat.Command{Type: "upload_attachment", ThreadID: thread, Name: "bad.txt", MIME: "text/plain", Data: []byte{0xff, 0xfe}}, chat.CodeUnsupported},
		{chat.Command{Type: "upload_attachment", ThreadID: "th_nope", Name: "a.txt", MIME: "text/plain", Data: []byte("x")}, chat.CodeNotFound},
		{chat.Command{Type: "submit_message", ThreadID: thread, Content: "x", Attachments: []string{att.ID}}, "invalid_request"},
	} {
		s.Handle(ctx, c.cmd)
		if ev := rec.wait(t, chat.EventError).Data.(chat.ErrorData); ev.Reason != c.reason {
			t.Errorf("%s %s: %+v, want %s", c.cmd.Type, c.cmd.Name, ev, c.reason)
		}
	}
}

// A script that cannot work is refused with what is wrong.
func TestParseScript(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"rules: [{match: '(', reply: x}]",
		"rules: [{match: x}]",
		"rules: [{match: x, calls: [{args: {}}]}]",
		"rules: [{match: x, reply: y, colour: red}]",
	} {
		if _, err := chat.ParseScript([]byte(src)); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", src, err)
		}
	}
}

// A holder of the list permission lists another user's threads in the
// tenant but cannot read them; without it, listing them is refused.
func TestListOthers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	e := w.engine(chat.DefaultScripted(), tools.Demo{}, func(c *chat.Config) { c.ListOthersPermission = "manage_ai_tools" })
	sara := actor("user:sara@acme.example", "acme")
	thread, _ := start(t, e, sara, "order 1042")
	olga := actor("user:olga@acme.example", "acme")
	ts, err := e.ListThreads(ctx, olga, "user:sara@acme.example")
	if err != nil || len(ts) != 1 || ts[0].ID != thread {
		t.Errorf("olga lists sara's threads: %v %v", ts, err)
	}
	if _, _, err := e.OpenThread(ctx, olga, thread, 0); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("olga reads sara's thread: %v, want not found", err)
	}
	carl := actor("user:carl@acme.example", "acme-berlin")
	if _, err := e.ListThreads(ctx, carl, "user:sara@acme.example"); !errors.Is(err, gatehouse.ErrForbidden) {
		t.Errorf("carl lists sara's threads: %v, want forbidden", err)
	}
}
