package mcpgw_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/examples"
	"github.com/gatehouse/gatehouse/mcpgw"
	"github.com/gatehouse/gatehouse/mcpgw/storeserver"
	"github.com/gatehouse/gatehouse/memstore"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

// fixture is the example policy's service, the example store upstream and
// the gateway in front of it on a loopback listener. Callers authenticate
// with the X-Test-Subject header (the real server's authentication is the
// http package's, tested there).
type fixture struct {
	t     *testing.T
	svc   *service.Service
	store *storeserver.Server
	gw    *mcpgw.Gateway
	url   string
	// stopRun stops the gateway's Run and returns once it has: the
	// sessions' lists are not refreshed any more.
	stopRun func()
}

func newFixture(t *testing.T, configure func(*mcpgw.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	db := memstore.New()
	t.Cleanup(func() { db.Close() })
	svc, err := service.Open(ctx, db, service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.Parse(examples.AIAssistantPolicyFile, examples.AIAssistantPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Apply(ctx, "test", doc, false); err != nil {
		t.Fatal(err)
	}
	store := storeserver.New()
	cfg := mcpgw.DefaultConfig()
	cfg.Upstreams = []mcpgw.Upstream{{Name: "store", URL: "http://127.0.0.1:1/in-process"}}
	cfg.CallTimeout = 2 * time.Second
	if configure != nil {
		configure(&cfg)
	}
	gw, err := mcpgw.New(svc, cfg, mcpgw.Options{Transport: store.InProcess("store")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { gw.Run(runCtx); close(ran) }()
	stopRun := func() { stop(); <-ran }
	t.Cleanup(stopRun)
	h := gw.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject, err := gatehouse.ParseSubject(r.Header.Get("X-Test-Subject"))
		if err != nil {
			http.Error(w, "no subject", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r.WithContext(gatehouse.NewContext(r.Context(), gatehouse.Caller{Subject: subject, Credential: gatehouse.CredentialToken})))
	}))
	t.Cleanup(ts.Close)
	return &fixture{t: t, svc: svc, store: store, gw: gw, url: ts.URL, stopRun: stopRun}
}

// headers adds fixed headers to every request.
type headers struct {
	h    map[string]string
	next http.RoundTripper
}

func (t headers) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header.Set(k, v)
	}
	return t.next.RoundTrip(r)
}

// client is an MCP client of the gateway for subject in tenant.
type client struct {
	*mcp.ClientSession
	listChanged, resourcesChanged, promptsChanged atomic.Int32
	elicited                                      atomic.Int32
}

// connect connects subject's client at protocol version ("" is the
// newest); elicit, if not nil, answers elicitations.
func (f *fixture) connect(subject, tenant, version string, elicit func(*mcp.ElicitParams) *mcp.ElicitResult) *client {
	f.t.Helper()
	c := &client{}
	opts := &mcp.ClientOptions{
		ToolListChangedHandler:     func(context.Context, *mcp.ToolListChangedRequest) { c.listChanged.Add(1) },
		ResourceListChangedHandler: func(context.Context, *mcp.ResourceListChangedRequest) { c.resourcesChanged.Add(1) },
		PromptListChangedHandler:   func(context.Context, *mcp.PromptListChangedRequest) { c.promptsChanged.Add(1) },
	}
	if elicit != nil {
		opts.ElicitationHandler = func(_ context.Context, r *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			c.elicited.Add(1)
			return elicit(r.Params), nil
		}
	}
	mc := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, opts)
	tr := &mcp.StreamableClientTransport{Endpoint: f.url, HTTPClient: &http.Client{Transport: headers{
		h: map[string]string{"X-Test-Subject": subject, "X-Tenant-ID": tenant}, next: http.DefaultTransport}}}
	cs, err := mc.Connect(context.Background(), tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		f.t.Fatalf("connect %s: %v", subject, err)
	}
	f.t.Cleanup(func() { cs.Close() })
	want := version
	if want == "" {
		want = "2026-07-28"
	}
	if got := cs.InitializeResult().ProtocolVersion; got != want {
		f.t.Fatalf("connect at %q: negotiated %q", version, got)
	}
	c.ClientSession = cs
	return c
}

func (c *client) tools(t *testing.T) []string {
	t.Helper()
	var names []string
	for tool, err := range c.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

func (c *client) call(t *testing.T, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := c.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", tool, err)
	}
	return res
}

func reason(res *mcp.CallToolResult) string {
	r, _ := res.Meta[mcpgw.MetaReason].(string)
	return r
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

var protocols = []string{"2025-11-25", ""}

var storeTools = []string{"apply_discount", "cancel_order", "initiate_return", "lookup_order", "process_refund", "send_tracking", "update_address"}

// Each caller lists only what it may call in its tenant: Olga the store's
// enabled actions, Carl none of them; an unmapped upstream tool is hidden.
func TestToolsList(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, v := range protocols {
		olga := f.connect("user:olga@acme.example", "acme-berlin", v, nil)
		// update_address and initiate_return are disabled by default.
		want := []string{"apply_discount", "cancel_order", "lookup_order", "process_refund", "send_tracking"}
		if got := olga.tools(t); !slices.Equal(got, want) {
			t.Errorf("protocol %q: olga's tools = %v, want %v", v, got, want)
		}
		carl := f.connect("user:carl@acme.example", "acme-berlin", v, nil)
		if got := carl.tools(t); len(got) != 0 {
			t.Errorf("protocol %q: carl's tools = %v, want none", v, got)
		}
		if _, err := carl.CallTool(context.Background(), &mcp.CallToolParams{Name: "process_refund", Arguments: map[string]any{"amount": "1.00", "currency": "EUR"}}); err == nil {
			t.Errorf("protocol %q: carl called a tool he is not shown", v)
		}
	}
	if n := f.store.Calls("process_refund"); n != 0 {
		t.Errorf("the store got %d refunds, want none", n)
	}
}

// A call is decided at call time with its arguments: within the limits it
// reaches the upstream, over them it is an isError result with the reason
// and the upstream never sees it.
func TestToolsCall(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, v := range protocols {
		olga := f.connect("user:olga@acme.example", "acme-berlin", v, nil)
		before := f.store.Calls("lookup_order")
		res := olga.call(t, "lookup_order", map[string]any{"order_id": "A-1"})
		if res.IsError || !strings.Contains(text(res), "Order A-1") || f.store.Calls("lookup_order") != before+1 {
			t.Errorf("protocol %q: lookup_order = %+v %q", v, res, text(res))
		}
		for _, tc := range []struct {
			tool   string
			args   map[string]any
			reason gatehouse.Reason
		}{
			{"process_refund", map[string]any{"order_id": "A-1", "amount": "5000.00", "currency": "EUR"}, gatehouse.ReasonLimitExceeded},
			{"apply_discount", map[string]any{"order_id": "A-1", "percentage": "90"}, gatehouse.ReasonLimitExceeded},
			{"process_refund", map[string]any{"order_id": "A-1"}, gatehouse.ReasonInvalidRequest},
		} {
			before := f.store.Calls(tc.tool)
			res := olga.call(t, tc.tool, tc.args)
			if !res.IsError || reason(res) != string(tc.reason) || text(res) == "" {
				t.Errorf("protocol %q: %s %v = %+v %q, want isError %s", v, tc.tool, tc.args, res, text(res), tc.reason)
			}
			if f.store.Calls(tc.tool) != before {
				t.Errorf("protocol %q: a denied %s reached the upstream", v, tc.tool)
			}
		}
	}
}

// An action that needs a human's confirmation asks the user through
// elicitation: accepted, it is confirmed, carried out and recorded
// executed; declined, cancelled and never carried out. A client that
// cannot elicit gets a result saying how to confirm, and nothing happens.
func TestConfirmation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	refund := map[string]any{"order_id": "A-2", "amount": "20.00", "currency": "EUR"}
	for _, v := range protocols {
		for _, tc := range []struct {
			name   string
			elicit func(*mcp.ElicitParams) *mcp.ElicitResult
			calls  int
			status gatehouse.ActionStatus
		}{
			{"accept", func(*mcp.ElicitParams) *mcp.ElicitResult {
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}
			}, 1, gatehouse.ActionExecuted},
			{"accept without confirming", func(*mcp.ElicitParams) *mcp.ElicitResult {
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": false}}
			}, 0, gatehouse.ActionCancelled},
			{"decline", func(*mcp.ElicitParams) *mcp.ElicitResult { return &mcp.ElicitResult{Action: "decline"} }, 0, gatehouse.ActionCancelled},
			{"no elicitation", nil, 0, gatehouse.ActionPending},
		} {
			c := f.connect("user:olga@acme.example", "acme-berlin", v, tc.elicit)
			before := f.store.Calls("process_refund")
			res := c.call(t, "process_refund", refund)
			if got := f.store.Calls("process_refund") - before; got != tc.calls {
				t.Errorf("protocol %q, %s: the store got %d refunds, want %d (%q)", v, tc.name, got, tc.calls, text(res))
			}
			if res.IsError != (tc.calls == 0) {
				t.Errorf("protocol %q, %s: isError %v: %q", v, tc.name, res.IsError, text(res))
			}
			if tc.elicit != nil && c.elicited.Load() != 1 {
				t.Errorf("protocol %q, %s: %d elicitations, want 1", v, tc.name, c.elicited.Load())
			}
			recs, err := f.svc.ListActions(context.Background(), gatehouse.Operator, gatehouse.ActionFilter{Action: "process_refund", Limit: 1000})
			if err != nil || len(recs) == 0 {
				t.Fatalf("list actions: %v (%d)", err, len(recs))
			}
			last := recs[len(recs)-1]
			if last.Status != tc.status || last.Subject != "user:olga@acme.example" {
				t.Errorf("protocol %q, %s: the action is %s by %s, want %s", v, tc.name, last.Status, last.Subject, tc.status)
			}
			if tc.elicit == nil {
				if id, _ := res.Meta[mcpgw.MetaActionID].(string); id != last.ID || reason(res) != string(gatehouse.ReasonConfirmationRequired) {
					t.Errorf("protocol %q: without elicitation = %+v, want confirmation_required naming %s", v, res.Meta, last.ID)
				}
				// Confirmed elsewhere, the client carries it out by its id.
				if _, err := f.svc.ConfirmAction(context.Background(), gatehouse.Caller{Subject: gatehouse.User("olga@acme.example")}, last.ID); err != nil {
					t.Fatal(err)
				}
				res, err := c.CallTool(context.Background(), &mcp.CallToolParams{Name: "process_refund", Arguments: refund,
					Meta: mcp.Meta{mcpgw.MetaActionID: last.ID}})
				if err != nil || res.IsError || f.store.Calls("process_refund") != before+1 {
					t.Errorf("protocol %q: carrying out the confirmed action = %v %+v", v, err, res)
				}
				// Its id does not carry out other arguments.
				other := map[string]any{"order_id": "A-2", "amount": "49.00", "currency": "EUR"}
				if res, err := c.CallTool(context.Background(), &mcp.CallToolParams{Name: "process_refund", Arguments: other,
					Meta: mcp.Meta{mcpgw.MetaActionID: last.ID}}); err != nil || !res.IsError {
					t.Errorf("protocol %q: another call under a confirmed action's id = %v %+v, want refused", v, err, res)
				}
			}
		}
	}
}

// Revoking a permission takes effect on the next call, and a client that
// listens is told its list changed: a 2025-11-25 session on its session,
// a 2026-07-28 client on its subscriptions/listen stream.
func TestRevocation(t *testing.T) {
	t.Parallel()
	for _, v := range protocols {
		f := newFixture(t, nil)
		olga := f.connect("user:olga@acme.example", "acme-berlin", v, nil)
		if len(olga.tools(t)) == 0 {
			t.Fatalf("protocol %q: olga sees no tools", v)
		}
		if _, err := f.svc.Unbind(context.Background(), "test", gatehouse.User("olga@acme.example"), "Store Support", "acme"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("protocol %q: notifications/tools/list_changed after the revocation", v),
			func() bool { return olga.listChanged.Load() > 0 })
		if got := olga.tools(t); len(got) != 0 {
			t.Errorf("protocol %q: after the revocation olga sees %v", v, got)
		}
		if _, err := olga.CallTool(context.Background(), &mcp.CallToolParams{Name: "lookup_order", Arguments: map[string]any{"order_id": "A-3"}}); err == nil {
			t.Errorf("protocol %q: a revoked tool was called", v)
		}
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Lists are decided for their caller: an intermediary must not serve
// them to another (2026-07-28 results carry a cache scope).
func TestListsArePrivate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	olga := f.connect("user:olga@acme.example", "acme-berlin", "", nil)
	res, err := olga.ListTools(context.Background(), nil)
	if err != nil || res.CacheScope != "private" {
		t.Errorf("tools/list = %v, cache scope %q, want private", err, res.CacheScope)
	}
}

// An upstream slower than the call timeout, or failing, is an isError
// result, and the action is recorded failed.
func TestUpstreamFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *mcpgw.Config) { c.CallTimeout = 100 * time.Millisecond })
	olga := f.connect("user:olga@acme.example", "acme-berlin", "2025-11-25", nil)
	f.store.SetDelay(time.Second)
	res := olga.call(t, "lookup_order", map[string]any{"order_id": "A-4"})
	if !res.IsError || reason(res) != string(gatehouse.ReasonInternalError) {
		t.Errorf("slow upstream = %+v %q, want isError internal_error", res, text(res))
	}
	f.store.SetDelay(0)
	f.store.SetFail("send_tracking", true)
	if res := olga.call(t, "send_tracking", map[string]any{"order_id": "A-4"}); !res.IsError {
		t.Errorf("failing upstream = %+v, want its isError result", res)
	}
	recs, err := f.svc.ListActions(context.Background(), gatehouse.Operator, gatehouse.ActionFilter{Tenant: "acme-berlin", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, r := range recs {
		if r.Status == gatehouse.ActionFailed {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d failed actions, want 2: %+v", failed, recs)
	}
}

// An upstream whose unmapped tools need a permission, configured from a
// file as serve does (ParseConfig, then New, which validates again), shows
// them to the permission's holders only.
func TestUnmappedPermission(t *testing.T) {
	t.Parallel()
	cfg, err := mcpgw.ParseConfig("mcp.yaml", []byte(`
upstreams:
  - name: store
    url: http://127.0.0.1:1/in-process
    unmapped: permission manage_ai_tools
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil || cfg.Upstreams[0].UnmappedPermission != "manage_ai_tools" {
		t.Fatalf("validating a parsed config again = %v, %+v", err, cfg.Upstreams[0])
	}
	f := newFixture(t, func(c *mcpgw.Config) { c.Upstreams = cfg.Upstreams })
	// Olga holds manage_ai_tools in acme (AI Administrator), Carl nowhere.
	olga := f.connect("user:olga@acme.example", "acme-berlin", "", nil)
	if got := olga.tools(t); !slices.Contains(got, "store_stats") {
		t.Errorf("olga's tools = %v, want store_stats among them", got)
	}
	if res := olga.call(t, "store_stats", nil); res.IsError || text(res) != "42 orders today." {
		t.Errorf("olga's store_stats = %+v %q", res, text(res))
	}
	carl := f.connect("user:carl@acme.example", "acme-berlin", "", nil)
	if got := carl.tools(t); slices.Contains(got, "store_stats") {
		t.Errorf("carl's tools = %v, want no store_stats", got)
	}
	if _, err := carl.CallTool(context.Background(), &mcp.CallToolParams{Name: "store_stats"}); err == nil {
		t.Error("carl called an unmapped tool he does not hold the permission of")
	}
}

// A session's server is built once, not for every request the SDK asks
// it for: the gateway keeps one list per session.
func TestOneServerPerSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	olga := f.connect("user:olga@acme.example", "acme-berlin", "2025-11-25", nil)
	for range 5 {
		olga.tools(t)
	}
	if n := f.gw.Sessions(); n != 1 {
		t.Errorf("the gateway keeps %d sessions' lists after one session's 6 requests, want 1", n)
	}
}
