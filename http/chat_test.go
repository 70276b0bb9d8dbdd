package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
	"github.com/gatehouse/gatehouse/chat/tools"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/service"
)

// faultyDecider is the service with a switch that makes its checks fail,
// as a store or snapshot failure would.
type faultyDecider struct {
	*service.Service
	fail atomic.Bool
}

func (d *faultyDecider) Evaluate(ctx context.Context, c gatehouse.Caller, q gatehouse.Question) (gatehouse.Answer, error) {
	if d.fail.Load() {
		return gatehouse.Answer{}, fmt.Errorf("evaluate: %w", gatehouse.ErrUnavailable)
	}
	return d.Service.Evaluate(ctx, c, q)
}

// chatFixture is the example policy served with the chat: the scripted
// model and the demo tools, on a real listener.
type chatFixture struct {
	*fixture
	decider *faultyDecider
	engine  *chat.Engine
	server  *gatehttp.Server
}

func newChatFixture(t testing.TB, configure func(*gatehttp.Config)) *chatFixture {
	t.Helper()
	svc, store := newService(t, examplePolicy)
	cfg := testConfig(t)
	d := &faultyDecider{Service: svc}
	engine, err := chat.New(chat.Config{Decider: d, Threads: store, Model: chat.DefaultScripted(), Executor: tools.Demo{},
		Catalog: cfg.Catalog, ToolTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(engine.Close)
	cfg.Chat = engine
	cfg.Addr = "127.0.0.1:0"
	if configure != nil {
		configure(&cfg)
	}
	srv := gatehttp.NewServer(svc, cfg)
	if err := srv.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f := &fixture{t: t, url: srv.URL(), cfg: cfg, store: store, svc: svc, cat: cfg.Catalog}
	return &chatFixture{fixture: f, decider: d, engine: engine, server: srv}
}

// wsEvent is an event as a client reads it.
type wsEvent struct {
	Type string          `json:"event_type"`
	Data json.RawMessage `json:"data"`
}

func (e wsEvent) field(name string) string {
	var m map[string]any
	_ = json.Unmarshal(e.Data, &m)
	switch v := m[name].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

type wsClient struct {
	t      testing.TB
	conn   *websocket.Conn
	events chan wsEvent
	// closed receives the close error when the server closes the socket.
	closed chan error
}

// dial opens a socket as subject in tenant, in lang.
func (f *chatFixture) dial(subject, tenant, lang string) *wsClient {
	f.t.Helper()
	c, _, err := f.dialErr(subject, tenant, lang)
	if err != nil {
		f.t.Fatalf("dial as %s: %v", subject, err)
	}
	return c
}

func (f *chatFixture) dialErr(subject, tenant, lang string) (*wsClient, *http.Response, error) {
	q := url.Values{}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	h := http.Header{}
	if subject != "" {
		h.Set("Authorization", "Bearer "+f.token(subject))
	}
	if lang != "" {
		h.Set("Accept-Language", lang)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.url, "http")+"/ws?"+q.Encode(), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	return f.client(conn), resp, nil
}

func (f *chatFixture) client(conn *websocket.Conn) *wsClient {
	conn.SetReadLimit(32 << 20)
	c := &wsClient{t: f.t, conn: conn, events: make(chan wsEvent, 256), closed: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				c.closed <- err
				close(c.events)
				return
			}
			var ev wsEvent
			if err := json.Unmarshal(data, &ev); err != nil {
				c.closed <- fmt.Errorf("a frame that is not an event: %q", data)
				close(c.events)
				return
			}
			c.events <- ev
		}
	}()
	f.t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	return c
}

func (c *wsClient) send(cmd map[string]any) {
	c.t.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

func (c *wsClient) sendRaw(frame string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		c.t.Fatalf("send %s: %v", frame, err)
	}
}

// next returns the next event of one of types, skipping the others; it
// fails the test after 5 s.
func (c *wsClient) next(types ...string) wsEvent {
	c.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("the socket closed waiting for %v: %v", types, <-c.closed)
			}
			for _, t := range types {
				if ev.Type == t {
					return ev
				}
			}
		case <-timeout:
			c.t.Fatalf("no %v event in 5 s", types)
		}
	}
}

// closeStatus waits for the server to close the socket and returns the
// close status and reason.
func (c *wsClient) closeStatus() (websocket.StatusCode, string) {
	c.t.Helper()
	select {
	case err := <-c.closed:
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		return -1, err.Error()
	case <-time.After(5 * time.Second):
		c.t.Fatal("the socket stayed open")
	}
	return 0, ""
}

// capabilities reads a capabilities event's flags.
func capabilities(t *testing.T, ev wsEvent) chat.Capabilities {
	t.Helper()
	var c chat.Capabilities
	if err := json.Unmarshal(ev.Data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// ask starts a thread with content and returns its id.
func (c *wsClient) ask(content string) string {
	c.t.Helper()
	c.send(map[string]any{"type": "start_thread", "content": content})
	created := c.next(chat.EventThreadCreated, chat.EventPermissionError, chat.EventError)
	if created.Type != chat.EventThreadCreated {
		c.t.Fatalf("start_thread: %s %s", created.Type, created.Data)
	}
	var d chat.ThreadData
	if err := json.Unmarshal(created.Data, &d); err != nil {
		c.t.Fatal(err)
	}
	return d.Thread.ID
}

// reply waits for the end of the turn and returns the assistant's last
// message.
func (c *wsClient) reply() string {
	c.t.Helper()
	var last string
	for {
		ev := c.next(chat.EventMessage, chat.EventAgentCompleted, chat.EventAgentFailed)
		switch ev.Type {
		case chat.EventMessage:
			var m chat.MessageData
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				c.t.Fatal(err)
			}
			if m.Message.Role == gatehouse.RoleAssistant {
				last = m.Message.Content
			}
		case chat.EventAgentFailed:
			c.t.Fatalf("agent.failed: %s", ev.Data)
		default:
			return last
		}
	}
}

// Seed 000's "How to Test": a role with Access AI Chat and Use Loan
// Analysis Tool opens the chat, has the loan tool, and is refused the
// fraud tool with chat_tool_error while the conversation goes on.
func TestChatSeed000HowToTest(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	ctx := context.Background()
	role := `{"name": "Loan Tester", "bundles": ["Access AI Chat", "Use Loan Analysis Tool"]}`
	if _, _, err := f.svc.PutObject(ctx, "test", gatehouse.KindRole, "Loan Tester", []byte(role)); err != nil {
		t.Fatal(err)
	}
	tess := gatehouse.User("tess@acme.example")
	for _, r := range []string{"Loan Tester", "user"} {
		if _, err := f.svc.Bind(ctx, "test", tess, gatehouse.Assignment{Role: r}); err != nil {
			t.Fatal(err)
		}
	}
	c := f.dial("user:tess@acme.example", "general", "")
	caps := capabilities(t, c.next(chat.EventCapabilities))
	if !caps.Flags["canAccessChat"] || !caps.Flags["canUseLoanTool"] || caps.Flags["canUseFraudDetection"] || !caps.CanWrite {
		t.Errorf("capabilities flags %v, can_write %v; want chat and loan, no fraud", caps.Flags, caps.CanWrite)
	}
	thread := c.ask("analyze loan L-1001")
	if ev := c.next(chat.EventToolResult, chat.EventToolError); ev.Type != chat.EventToolResult || ev.field("tool_name") != "analyze_loan" {
		t.Fatalf("analyze_loan: %s %s", ev.Type, ev.Data)
	}
	if got := c.reply(); !strings.Contains(got, `"loan_id":"L-1001"`) {
		t.Errorf("reply %q, want the loan analysis", got)
	}
	c.send(map[string]any{"type": "submit_message", "thread_id": thread, "content": "fraud check for customer C-7"})
	ev := c.next(chat.EventToolError, chat.EventToolResult)
	if ev.Type != chat.EventToolError || ev.field("tool_name") != "detect_fraud" || ev.field("reason") != "permission_missing" ||
		ev.field("conversation_id") != thread || ev.field("error") != "Permission denied: use_ai_fraud_detection" {
		t.Fatalf("detect_fraud: %s %s", ev.Type, ev.Data)
	}
	if got := c.reply(); !strings.Contains(got, "Permission denied") {
		t.Errorf("reply %q, want the refusal passed on", got)
	}
	// The audit trail has the executed call, with the thread (without a
	// decision log attached, tool calls are written at once).
	events, err := f.svc.ListAudit(ctx, gatehouse.AuditFilter{Action: "tool.call"})
	if err != nil || len(events) == 0 || !strings.Contains(string(events[0].Detail), thread) {
		t.Errorf("tool.call audit events %v (%v), want one with the conversation %s", events, err, thread)
	}
}

// The tools the model is offered are the ones the user may use: a
// supervisor and a customer service agent are offered different tools, a
// superuser all of them.
func TestChatAdvertisesOnlyPermittedTools(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	tests := []struct {
		subject, tenant string
		want, notWant   []string
	}{
		{"user:sara@acme.example", "acme", []string{"analyze_loan", "detect_fraud", "customer_insights"}, []string{"generate_report", "process_refund"}},
		{"user:carl@acme.example", "acme-berlin", []string{"customer_insights"}, []string{"analyze_loan", "detect_fraud"}},
		{"user:admin@example.com", "acme", []string{"analyze_loan", "detect_fraud", "generate_report", "advanced_data_query", "process_refund"}, nil},
	}
	for _, tt := range tests {
		c := f.dial(tt.subject, tt.tenant, "")
		c.ask("what can you do")
		got := c.reply()
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s is offered %q, want %s among them", tt.subject, got, w)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(got, w) {
				t.Errorf("%s is offered %q, want no %s", tt.subject, got, w)
			}
		}
	}
}

// Without the chat's access permission the socket gets a localized
// permission_error and is closed with 1008; a check that fails closes it
// with "Permission check failed".
func TestChatAccessDenied(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	for _, lang := range []string{"en", "de"} {
		c := f.dial("user:gus@example.org", "general", lang)
		ev := c.next(chat.EventPermissionError)
		if ev.field("reason") != "permission_missing" || ev.field("error") != f.cat.Text(lang, "chat.access_denied", nil) {
			t.Errorf("%s: permission_error %s", lang, ev.Data)
		}
		if code, reason := c.closeStatus(); code != websocket.StatusPolicyViolation || reason != "Permission denied" {
			t.Errorf("%s: closed %d %q, want 1008 Permission denied", lang, code, reason)
		}
	}
	if en, de := f.cat.Text("en", "chat.access_denied", nil), f.cat.Text("de", "chat.access_denied", nil); en == de {
		t.Errorf("the message is not translated: %q", en)
	}
	f.decider.fail.Store(true)
	c := f.dial("user:sara@acme.example", "acme", "")
	if code, reason := c.closeStatus(); code != websocket.StatusPolicyViolation || reason != "Permission check failed" {
		t.Errorf("with the check failing: closed %d %q, want 1008 Permission check failed", code, reason)
	}
	f.decider.fail.Store(false)
	// A wrong token is refused before the handshake.
	h := http.Header{"Authorization": {"Bearer not-a-token"}}
	if _, resp, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(f.url, "http")+"/ws", &websocket.DialOptions{HTTPHeader: h}); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %v %v, want 401", resp, err)
	}
	// Without one, the first frame must carry it.
	anon, _, err := f.dialErr("", "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	anon.send(map[string]any{"type": "ping"})
	if code, reason := anon.closeStatus(); code != websocket.StatusPolicyViolation || reason != "Authentication required" {
		t.Errorf("a first frame without a token: closed %d %q", code, reason)
	}
	browser, _, err := f.dialErr("", "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	browser.send(map[string]any{"type": "auth", "token": f.token("user:sara@acme.example")})
	if caps := capabilities(t, browser.next(chat.EventCapabilities)); !caps.Flags["canAccessChat"] {
		t.Errorf("authenticated by the first frame: %+v", caps.Flags)
	}
}

// A user with chat.view only reads threads but may not write: each write
// is a permission_error and the socket stays open.
func TestChatViewOnly(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	ctx := context.Background()
	sara := f.dial("user:sara@acme.example", "acme", "")
	thread := sara.ask("order 1042")
	sara.reply()
	// Sara loses chat.write: organization gives both; a reader role gives view.
	reader := `{"name": "Chat Reader", "permissions": ["chat.view"]}`
	if _, _, err := f.svc.PutObject(ctx, "test", gatehouse.KindRole, "Chat Reader", []byte(reader)); err != nil {
		t.Fatal(err)
	}
	sub := gatehouse.User("sara@acme.example")
	if _, err := f.svc.Bind(ctx, "test", sub, gatehouse.Assignment{Role: "Chat Reader"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Unbind(ctx, "test", sub, "organization", ""); err != nil {
		t.Fatal(err)
	}
	if caps := capabilities(t, sara.next(chat.EventCapabilities)); caps.CanWrite || !caps.CanView {
		t.Errorf("pushed capabilities can_view %v can_write %v, want view only", caps.CanView, caps.CanWrite)
	}
	sara.send(map[string]any{"type": "open_thread", "thread_id": thread, "request_id": "r1"})
	if ev := sara.next(chat.EventThread, chat.EventPermissionError); ev.Type != chat.EventThread {
		t.Fatalf("open_thread: %s %s", ev.Type, ev.Data)
	}
	for _, cmd := range []map[string]any{
		{"type": "submit_message", "thread_id": thread, "content": "order 7"},
		{"type": "start_thread", "content": "hello"},
		{"type": "rename_thread", "thread_id": thread, "title": "x"},
		{"type": "delete_thread", "thread_id": thread},
	} {
		sara.send(cmd)
		ev := sara.next(chat.EventPermissionError)
		if ev.field("reason") != "permission_missing" || ev.field("permission") != "chat.write" || ev.field("command") != cmd["type"] {
			t.Errorf("%s: %s", cmd["type"], ev.Data)
		}
	}
	sara.send(map[string]any{"type": "ping", "request_id": "p"})
	sara.next(chat.EventPong)
}

// A permission revoked mid-conversation is pushed as new capabilities
// within a second and refuses the next tool call.
func TestChatRevokedMidConversation(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	c := f.dial("user:sara@acme.example", "acme", "")
	if caps := capabilities(t, c.next(chat.EventCapabilities)); !caps.Flags["canUseLoanTool"] {
		t.Fatalf("flags %v", caps.Flags)
	}
	thread := c.ask("analyze loan L-1")
	c.reply()
	start := time.Now()
	if _, err := f.svc.Unbind(context.Background(), "test", gatehouse.User("sara@acme.example"), "Agent Supervisor", "acme"); err != nil {
		t.Fatal(err)
	}
	caps := capabilities(t, c.next(chat.EventCapabilities))
	if took := time.Since(start); took > time.Second || caps.Flags["canUseLoanTool"] {
		t.Errorf("capabilities after %v: flags %v, want canUseLoanTool false within 1 s", took, caps.Flags)
	}
	c.send(map[string]any{"type": "submit_message", "thread_id": thread, "content": "analyze loan L-2"})
	ev := c.next(chat.EventToolError, chat.EventToolResult)
	if ev.Type != chat.EventToolError || ev.field("reason") != "permission_missing" {
		t.Errorf("the call after the revocation: %s %s", ev.Type, ev.Data)
	}
}

// A refund under the limit waits for a confirmation: confirmed, it runs;
// cancelled, the model is told; over the limit, it is refused.
func TestChatConfirmation(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	c := f.dial("user:olga@acme.example", "acme-berlin", "")
	thread := c.ask("refund 20.00 EUR on order 1042")
	ev := c.next(chat.EventConfirmationRequired)
	action := ev.field("action_id")
	if action == "" || !strings.Contains(ev.field("summary"), "20.00 EUR") || !strings.Contains(ev.field("summary"), "1042") ||
		ev.field("conversation_id") != thread {
		t.Fatalf("confirmation_required %s", ev.Data)
	}
	c.next(chat.EventAgentWaiting)
	rec, err := f.svc.GetAction(context.Background(), gatehouse.Operator, action)
	if err != nil || rec.Status != gatehouse.ActionPending {
		t.Fatalf("action %+v %v, want pending", rec, err)
	}
	c.send(map[string]any{"type": "confirm", "action_id": action})
	if ev := c.next(chat.EventToolResult, chat.EventToolError); ev.Type != chat.EventToolResult || ev.field("action_id") != action {
		t.Fatalf("after confirm: %s %s", ev.Type, ev.Data)
	}
	if got := c.reply(); !strings.Contains(got, "refunded") {
		t.Errorf("reply %q", got)
	}
	if rec, _ := f.svc.GetAction(context.Background(), gatehouse.Operator, action); rec.Status != gatehouse.ActionExecuted {
		t.Errorf("action %s is %s, want executed", action, rec.Status)
	}

	c.send(map[string]any{"type": "submit_message", "thread_id": thread, "content": "refund 30.00 EUR on order 1043"})
	second := c.next(chat.EventConfirmationRequired).field("action_id")
	// Confirmed or cancelled elsewhere (the REST API), the turn resumes.
	if _, err := f.svc.CancelAction(context.Background(), gatehouse.Caller{Subject: gatehouse.User("olga@acme.example"), Credential: gatehouse.CredentialToken}, second); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(chat.EventToolError); ev.field("reason") != "confirmation_required" || ev.field("action_id") != second {
		t.Errorf("after cancel: %s", ev.Data)
	}
	c.reply()

	c.send(map[string]any{"type": "submit_message", "thread_id": thread, "content": "refund 500.00 EUR on order 1044"})
	if ev := c.next(chat.EventToolError, chat.EventConfirmationRequired); ev.Type != chat.EventToolError || ev.field("reason") != "limit_exceeded" {
		t.Errorf("over the limit: %s %s", ev.Type, ev.Data)
	}
	c.reply()
}

// Threads are never visible across users or tenants, over the socket or
// REST.
func TestChatThreadIsolation(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	sara := f.dial("user:sara@acme.example", "acme", "")
	thread := sara.ask("order 1042")
	sara.reply()
	for _, other := range []struct{ subject, tenant string }{
		{"user:olga@acme.example", "acme"},
		{"user:sara@acme.example", "acme-berlin"},
	} {
		c := f.dial(other.subject, other.tenant, "")
		c.send(map[string]any{"type": "open_thread", "thread_id": thread})
		if ev := c.next(chat.EventError, chat.EventThread); ev.Type != chat.EventError || ev.field("reason") != "not_found" {
			t.Errorf("%s in %s opens sara's thread: %s %s", other.subject, other.tenant, ev.Type, ev.Data)
		}
		c.send(map[string]any{"type": "list_threads", "request_id": "l"})
		if ev := c.next(chat.EventThreads); strings.Contains(string(ev.Data), thread) {
			t.Errorf("%s in %s lists sara's thread: %s", other.subject, other.tenant, ev.Data)
		}
		r := f.do(call{method: http.MethodGet, path: "/api/v1/threads/" + thread + "?tenant=" + other.tenant, token: f.token(other.subject)})
		if r.status != http.StatusNotFound {
			t.Errorf("%s in %s GETs sara's thread: %d %s", other.subject, other.tenant, r.status, r.body)
		}
	}
	// Listing another user's threads needs a permission the policy does not grant.
	c := f.dial("user:olga@acme.example", "acme", "")
	c.send(map[string]any{"type": "list_threads", "owner": "user:sara@acme.example"})
	if ev := c.next(chat.EventPermissionError); ev.field("reason") != "permission_missing" {
		t.Errorf("list others: %s", ev.Data)
	}
}

// Bad frames get a localized error and the socket survives; an oversized
// frame closes it with 1009.
func TestChatBadFrames(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, func(c *gatehttp.Config) { c.ChatLimits.MaxFrameBytes = 4096 })
	c := f.dial("user:sara@acme.example", "acme", "fr")
	c.next(chat.EventCapabilities)
	for _, frame := range []string{`{not json`, `{"type":"ping","type":"submit_message"}`, `{"type":"ping","extra":1}`, `[1,2]`} {
		c.sendRaw(frame)
		if ev := c.next(chat.EventError); ev.field("reason") != chat.CodeBadFrame {
			t.Errorf("%s: %s", frame, ev.Data)
		}
	}
	c.send(map[string]any{"type": "teleport"})
	if ev := c.next(chat.EventError); ev.field("reason") != chat.CodeUnknownCommand || ev.field("error") != f.cat.Text("fr", "chat.unknown_event", map[string]string{"Type": "teleport"}) {
		t.Errorf("unknown type: %s", ev.Data)
	}
	c.send(map[string]any{"type": "start_thread", "content": strings.Repeat("x", 5000)})
	if code, _ := c.closeStatus(); code != websocket.StatusMessageTooBig {
		t.Errorf("an oversized frame: closed %d, want 1009", code)
	}
}

// The REST routes do what the socket does.
func TestChatREST(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	tok := f.token("user:olga@acme.example")
	h := map[string]string{"X-Tenant-ID": "acme"}
	r := f.do(call{path: "/api/v1/threads", token: tok, header: h, body: `{"title": "Orders"}`})
	if r.status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	thread := decodeInto[gatehouse.Thread](t, r)
	if thread.Title != "Orders" || thread.Tenant != "acme" || thread.Owner != "user:olga@acme.example" {
		t.Errorf("thread %+v", thread)
	}
	up, err := http.NewRequest(http.MethodPost, f.url+"/api/v1/threads/"+thread.ID+"/attachments?name=notes.txt", strings.NewReader("order 1042 arrived broken"))
	if err != nil {
		t.Fatal(err)
	}
	up.Header.Set("Authorization", "Bearer "+tok)
	up.Header.Set("Content-Type", "text/plain")
	up.Header.Set("X-Tenant-ID", "acme")
	resp, err := http.DefaultClient.Do(up)
	if err != nil {
		t.Fatal(err)
	}
	var att gatehouse.Attachment
	if err := json.NewDecoder(resp.Body).Decode(&att); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	r = f.do(call{method: http.MethodGet, path: "/api/v1/attachments/" + att.ID, token: tok, header: h})
	if p := decodeInto[chat.AttachmentData](t, r); r.status != http.StatusOK || p.Text != "order 1042 arrived broken" {
		t.Errorf("preview: %d %s", r.status, r.body)
	}
	r = f.do(call{path: "/api/v1/threads/" + thread.ID + "/messages", token: tok, header: h,
		body: fmt.Sprintf(`{"content": "what does my note say?", "attachments": [%q]}`, att.ID)})
	if r.status != http.StatusAccepted {
		t.Fatalf("message: %d %s", r.status, r.body)
	}
	// The scripted model reads the attachment's text: "order 1042" in it
	// looks the order up.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = f.do(call{method: http.MethodGet, path: "/api/v1/threads/" + thread.ID, token: tok, header: h})
		d := decodeInto[chat.ThreadData](t, r)
		if n := len(d.Messages); n >= 4 && d.Messages[n-1].Role == gatehouse.RoleAssistant {
			if !strings.Contains(d.Messages[n-1].Content, "1042") {
				t.Errorf("the answer %q does not use the attachment", d.Messages[n-1].Content)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer: %s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r = f.do(call{method: http.MethodPatch, path: "/api/v1/threads/" + thread.ID, token: tok, header: h, body: `{"title": "Order 1042"}`})
	if r.status != http.StatusOK {
		t.Errorf("rename: %d %s", r.status, r.body)
	}
	r = f.do(call{method: http.MethodGet, path: "/api/v1/threads", token: tok, header: h})
	if l := decodeInto[chat.ThreadsData](t, r); r.status != http.StatusOK || len(l.Threads) != 1 || l.Threads[0].Title != "Order 1042" {
		t.Errorf("list: %d %s", r.status, r.body)
	}
	for _, bad := range []struct {
		c      call
		status int
	}{
		{call{path: "/api/v1/threads", token: tok, header: h, body: `{"title": "a", "title": "b"}`}, http.StatusBadRequest},
		{call{path: "/api/v1/threads", token: tok, header: h, body: `{"Title": "a"}`}, http.StatusBadRequest},
		{call{path: "/api/v1/threads/" + thread.ID + "/messages", token: tok, header: h, body: `{"content": ""}`}, http.StatusBadRequest},
		{call{path: "/api/v1/threads", token: f.token("user:gus@example.org"), header: map[string]string{"X-Tenant-ID": "general"}, body: `{}`}, http.StatusForbidden},
		{call{path: "/api/v1/threads", token: tok, body: `{}`}, http.StatusBadRequest},
	} {
		if r := f.do(bad.c); r.status != bad.status {
			t.Errorf("%s %s: %d %s, want %d", bad.c.path, bad.c.body, r.status, r.body, bad.status)
		}
	}
	r = f.do(call{method: http.MethodDelete, path: "/api/v1/threads/" + thread.ID, token: tok, header: h})
	if r.status != http.StatusNoContent {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/threads/" + thread.ID, token: tok, header: h}); r.status != http.StatusNotFound {
		t.Errorf("after delete: %d", r.status)
	}
}

// Closing the server closes its sockets with 1001.
func TestChatShutdown(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	c := f.dial("user:sara@acme.example", "acme", "")
	c.next(chat.EventCapabilities)
	if err := f.server.Close(); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.closeStatus(); code != websocket.StatusGoingAway {
		t.Errorf("closed %d, want 1001", code)
	}
}

// BenchmarkChatSocketMemory holds b.N sockets open at once (each through
// authentication, the access check and its capabilities event) and
// reports the server and client heap they take, per socket and as sockets
// per GiB. Both ends are in this process, so the figure is an upper bound
// for the server alone.
func BenchmarkChatSocketMemory(b *testing.B) {
	f := newChatFixture(b, func(c *gatehttp.Config) { c.ChatLimits.MaxSocketsPerUser = 1 << 20 })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]*wsClient, 0, b.N)
	for range b.N {
		c := f.dial("user:sara@acme.example", "acme", "")
		c.next(chat.EventCapabilities)
		conns = append(conns, c)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapInuse-before.HeapInuse) / float64(b.N)
	b.ReportMetric(per, "heap-B/socket")
	b.ReportMetric(float64(1<<30)/per, "sockets/GiB")
	for _, c := range conns {
		c.conn.Close(websocket.StatusNormalClosure, "")
	}
}

// With the chat served, the OpenAPI document has its REST routes.
func TestChatOpenAPI(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	r := f.do(call{method: http.MethodGet, path: "/api/v1/openapi.json"})
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || len(doc.Paths) == 0 {
		t.Fatalf("%v: %.300s", err, r.body)
	}
	for path, method := range map[string]string{"/api/v1/threads": "post", "/api/v1/threads/{id}": "patch",
		"/api/v1/threads/{id}/messages": "post", "/api/v1/threads/{id}/attachments": "post", "/api/v1/attachments/{id}": "get", "/ws": "get"} {
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("the OpenAPI document has no %s %s", method, path)
		}
	}
}
