// Package mcpgw is the MCP gateway: it sits between MCP clients (IDEs,
// agent frameworks, the chat) and upstream MCP servers and applies
// Gatehouse's policy to every tool list and every tool call, through the
// service's one door. A caller sees only the tools it may call in its
// tenant; a call is decided at call time with its arguments (agent actions
// reserve their limits and may need a human's confirmation, asked through
// MCP elicitation); a denial is a tool result with isError and the reason,
// and the upstream is not called. The gateway calls upstreams with its own
// credentials, never the client's token. It is the only package that
// imports the MCP SDK.
package mcpgw

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/service"
)

// Options configures a Gateway beyond its Config.
type Options struct {
	Logger  *slog.Logger
	Catalog *locale.Catalog
	// Transport, when set, connects to the upstreams it returns a transport
	// for instead of their URL or command.
	Transport Transport
}

// Gateway serves MCP clients in front of the configured upstreams.
type Gateway struct {
	svc       *service.Service
	cfg       Config
	opts      Options
	upstreams map[string]*upstream
	names     []string // upstream names in configuration order

	stateful, stateless *mcp.StreamableHTTPHandler
	// probe answers the SDK's question which protocol versions a session's
	// server speaks; it serves nothing.
	probe *mcp.Server

	// refreshing serializes Refresh.
	refreshing sync.Mutex
	mu         sync.Mutex
	// live are the servers of stateful sessions, refreshed when the policy
	// or an upstream's tools change so that their clients get
	// notifications/tools/list_changed.
	live map[*mcp.Server]*view
}

// view is what one MCP session shows: the caller, its tenant and what it
// lists now.
type view struct {
	id     identity
	listed listed
}

// listed is what a session lists: its tools' and prompts' names, its
// resources' URIs and its resource templates' URI templates.
type listed struct {
	tools, resources, templates, prompts []string
}

// identity is who a session or request is for.
type identity struct {
	caller gatehouse.Caller
	tenant string
	lang   string
}

// New returns a gateway for cfg deciding through svc. Upstreams are
// connected on first use.
func New(svc *service.Service, cfg Config, opts Options) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Catalog == nil {
		c, err := locale.New()
		if err != nil {
			return nil, err
		}
		opts.Catalog = c
	}
	g := &Gateway{svc: svc, cfg: cfg, opts: opts, upstreams: map[string]*upstream{}, live: map[*mcp.Server]*view{}}
	for _, u := range cfg.Upstreams {
		g.upstreams[u.Name] = newUpstream(u, opts.Logger, opts.Transport, g.refreshSoon)
		g.names = append(g.names, u.Name)
	}
	g.probe = mcp.NewServer(&mcp.Implementation{Name: "gatehouse", Version: "1"}, &mcp.ServerOptions{Logger: opts.Logger})
	g.stateful = mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server { return g.serverFor(r, true) },
		&mcp.StreamableHTTPOptions{Logger: opts.Logger, SessionTimeout: 30 * time.Minute})
	g.stateless = mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server { return g.serverFor(r, false) },
		&mcp.StreamableHTTPOptions{Logger: opts.Logger, Stateless: true})
	return g, nil
}

// protocolStateless is the first protocol version served statelessly
// (SEP-2575): its requests go to the stateless handler, older ones to the
// stateful one, which keeps sessions for elicitation and list_changed.
const protocolStateless = "2026-07-28"

// Handler serves the Streamable HTTP endpoint. The request's context must
// carry the authenticated caller (gatehouse.NewContext); the tenant is the
// X-Tenant-ID header, else ?tenant=, else the caller's token claim.
func (g *Gateway) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := gatehouse.CallerFromContext(r.Context()); !ok {
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		// The SDK asks for the request's server more than once (first for
		// the protocol versions it supports): it is built once.
		r = r.WithContext(context.WithValue(r.Context(), serverSlot{}, new(*mcp.Server)))
		if r.Header.Get("Mcp-Protocol-Version") >= protocolStateless {
			g.stateless.ServeHTTP(w, r)
			return
		}
		g.stateful.ServeHTTP(w, r)
	})
}

// identityOf is the caller, tenant and language of r.
func (g *Gateway) identityOf(r *http.Request) (identity, bool) {
	caller, ok := gatehouse.CallerFromContext(r.Context())
	if !ok || caller.Subject.IsZero() {
		return identity{}, false
	}
	tenant := strings.TrimSpace(r.Header.Get("X-Tenant-ID"))
	if tenant == "" {
		tenant = strings.TrimSpace(r.URL.Query().Get("tenant"))
	}
	if tenant == "" {
		tenant = caller.Tenant
	}
	return identity{caller: caller, tenant: tenant, lang: g.opts.Catalog.Match(r.Header.Get("Accept-Language"))}, true
}

// serverFor builds the MCP server of one session (stateful) or one request
// (stateless): the tools, resources and prompts its caller may see,
// nothing shared with another caller.
func (g *Gateway) serverFor(r *http.Request, stateful bool) *mcp.Server {
	if stateful && r.Header.Get("Mcp-Session-Id") != "" {
		// A request of a session the SDK holds asks only which protocol
		// versions the server speaks.
		return g.probe
	}
	slot, _ := r.Context().Value(serverSlot{}).(**mcp.Server)
	if slot != nil && *slot != nil {
		return *slot
	}
	id, ok := g.identityOf(r)
	if !ok {
		return nil
	}
	srv, v := g.newServer(r.Context(), id)
	if slot != nil {
		*slot = srv
	}
	if stateful {
		g.track(srv, v)
		return srv
	}
	// A stateless server lives for one request; the one of a
	// subscriptions/listen request lives as long as its stream and is
	// kept current like a session's, so that its client hears of changes.
	srv.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == methodSubscriptionsListen {
				g.track(srv, v)
				defer g.untrack(srv)
			}
			return next(ctx, method, req)
		}
	})
	return srv
}

// serverSlot keys the server built for one HTTP request in its context.
type serverSlot struct{}

// newServer is an MCP server showing what id may see now.
func (g *Gateway) newServer(ctx context.Context, id identity) (*mcp.Server, *view) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "gatehouse", Title: "Gatehouse MCP gateway", Version: "1"},
		&mcp.ServerOptions{Logger: g.opts.Logger, Capabilities: g.capabilities(), SetCacheable: privateResults})
	return srv, &view{id: id, listed: g.install(ctx, srv, id, listed{})}
}

// methodSubscriptionsListen is the 2026-07-28 request that carries a
// stateless client's change notifications (SEP-2575).
const methodSubscriptionsListen = "subscriptions/listen"

// track keeps srv's list current from now on (Refresh); untrack stops.
func (g *Gateway) track(srv *mcp.Server, v *view) {
	g.mu.Lock()
	g.live[srv] = v
	g.mu.Unlock()
}

func (g *Gateway) untrack(srv *mcp.Server) {
	g.mu.Lock()
	delete(g.live, srv)
	g.mu.Unlock()
}

// capabilities are what every gateway server offers: tools, and resources
// and prompts when an upstream's configuration can show some, each with
// list_changed.
func (g *Gateway) capabilities() *mcp.ServerCapabilities {
	caps := &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{ListChanged: true}}
	for _, u := range g.upstreams {
		resources, prompts := u.cfg.passesItems()
		if resources {
			caps.Resources = &mcp.ResourceCapabilities{ListChanged: true}
		}
		if prompts {
			caps.Prompts = &mcp.PromptCapabilities{ListChanged: true}
		}
	}
	return caps
}

// privateResults marks every cacheable result (lists, resources/read)
// private: it is decided for its caller, and an intermediary must not
// serve it to another.
func privateResults(_ context.Context, _ mcp.Request, c *mcp.Cacheable) {
	c.CacheScope = "private"
}

// install adds to srv what id may see that it does not list yet (have),
// removes what it may no longer see, and returns what it lists now.
func (g *Gateway) install(ctx context.Context, srv *mcp.Server, id identity, have listed) listed {
	permits := g.permissions(ctx, id)
	tools, err := g.visible(ctx, id, permits)
	if err != nil {
		g.opts.Logger.Warn("mcp gateway: tools for a session", "subject", id.caller.Subject.String(), "err", err)
		tools = nil
	}
	now := g.installItems(ctx, srv, id, have, permits)
	for _, t := range tools {
		now.tools = append(now.tools, t.name)
		if !slices.Contains(have.tools, t.name) {
			def := *t.def
			def.Name = t.name
			if t.title != "" && def.Title == "" {
				def.Title = t.title
			}
			g.guardAdd("tool", t.name, func() { srv.AddTool(&def, g.handler(id, t)) })
		}
	}
	if gone := missing(have.tools, now.tools); len(gone) > 0 {
		srv.RemoveTools(gone...)
	}
	return now
}

// exposed is a tool the gateway shows: the upstream tool it is, and the
// Gatehouse tool (or, for an unmapped one, the permission) that decides it.
type exposed struct {
	name         string
	title        string
	up           *upstream
	upstreamTool string
	tool         string
	action       string
	permission   string
	def          *mcp.Tool
}

// catalog is every tool the gateway can show: policy tools bound to an
// upstream tool that exists, then the unmapped tools of upstreams that
// allow them, named upstream.tool where the plain name is taken. An
// upstream that cannot be reached shows nothing and is logged.
func (g *Gateway) catalog(ctx context.Context) []exposed {
	_, tools := g.svc.Tools()
	lists := map[string][]*mcp.Tool{}
	for _, name := range g.names {
		list, err := g.upstreams[name].listTools(ctx)
		if err != nil {
			g.opts.Logger.Warn("mcp gateway: upstream unavailable", "upstream", name, "err", err)
			continue
		}
		lists[name] = list
	}
	var out []exposed
	mapped := map[string]bool{}
	taken := map[string]bool{}
	for _, t := range tools {
		up := g.upstreams[t.Upstream]
		if up == nil {
			continue
		}
		mapped[t.Upstream+"\x00"+t.UpstreamTool] = true
		i := slices.IndexFunc(lists[t.Upstream], func(d *mcp.Tool) bool { return d.Name == t.UpstreamTool })
		if i < 0 {
			continue
		}
		out = append(out, exposed{name: t.Name, title: t.Title, up: up, upstreamTool: t.UpstreamTool, tool: t.Name,
			action: t.Action, def: lists[t.Upstream][i]})
		taken[t.Name] = true
	}
	for _, name := range g.names {
		up := g.upstreams[name]
		if up.cfg.UnmappedPermission == "" {
			continue
		}
		for _, d := range lists[name] {
			if mapped[name+"\x00"+d.Name] {
				continue
			}
			shown := d.Name
			if taken[shown] {
				shown = name + "." + d.Name
			}
			taken[shown] = true
			out = append(out, exposed{name: shown, up: up, upstreamTool: d.Name, permission: up.cfg.UnmappedPermission, def: d})
		}
	}
	return out
}

// visible is the catalog's tools id may call at all: decided by the
// service, per caller, never from a cache shared between callers; permits
// answers for unmapped tools.
func (g *Gateway) visible(ctx context.Context, id identity, permits func(string) bool) ([]exposed, error) {
	all := g.catalog(ctx)
	var toolNames []string
	for _, t := range all {
		if t.tool != "" {
			toolNames = append(toolNames, t.tool)
		}
	}
	callable, err := g.svc.CallableTools(ctx, id.caller, id.caller.Subject, gatehouse.SubjectRef{}, id.tenant, toolNames)
	if err != nil {
		return nil, err
	}
	var out []exposed
	for _, t := range all {
		switch {
		case t.tool != "" && slices.Contains(callable, t.tool):
		case t.tool == "" && permits(t.permission):
		default:
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// permissions returns a function that reports whether id holds a
// permission in its tenant, asking the service once per permission: one
// list decides many items by few permissions.
func (g *Gateway) permissions(ctx context.Context, id identity) func(string) bool {
	known := map[string]bool{}
	return func(permission string) bool {
		if ok, seen := known[permission]; seen {
			return ok
		}
		a, err := g.svc.Evaluate(ctx, id.caller, gatehouse.Question{
			Request: gatehouse.Request{Subject: id.caller.Subject, Tenant: id.tenant, Permission: permission}, Surface: "mcp.list"})
		known[permission] = err == nil && a.Allowed
		return known[permission]
	}
}

// Run keeps the live sessions' tool lists current until ctx ends: when a
// new policy snapshot decides (a change here or, followed, on another
// instance; service.Subscribe) each session's list is decided again, and
// its client told if it changed.
func (g *Gateway) Run(ctx context.Context) error {
	events := g.svc.Subscribe(ctx)
	// What changed before the subscription counts too.
	g.Refresh(ctx)
	for e := range events {
		if e.Kind == gatehouse.EventPolicy || e.Kind == gatehouse.EventResync {
			g.Refresh(ctx)
		}
	}
	return ctx.Err()
}

// refreshSoon refreshes the sessions after an upstream said its tools
// changed.
func (g *Gateway) refreshSoon() {
	go g.Refresh(context.Background())
}

// Refresh decides every live session's lists again; a session whose list
// changed gets notifications/tools/list_changed (or the resources' or
// prompts'). Servers without a session left are forgotten.
func (g *Gateway) Refresh(ctx context.Context) {
	g.refreshing.Lock()
	defer g.refreshing.Unlock()
	g.mu.Lock()
	live := make(map[*mcp.Server]*view, len(g.live))
	for srv, v := range g.live {
		live[srv] = v
	}
	g.mu.Unlock()
	for srv, v := range live {
		open := false
		for range srv.Sessions() {
			open = true
			break
		}
		if !open {
			g.mu.Lock()
			delete(g.live, srv)
			g.mu.Unlock()
			continue
		}
		now := g.install(ctx, srv, v.id, v.listed)
		g.mu.Lock()
		v.listed = now
		g.mu.Unlock()
	}
}

// Close ends the upstream sessions.
func (g *Gateway) Close() error {
	for _, u := range g.upstreams {
		u.close()
	}
	return nil
}

// Sessions is how many stateful sessions the gateway keeps lists for.
func (g *Gateway) Sessions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.live)
}

// ToolNames lists the tools caller may call in tenant now, as tools/list
// shows them (`gatehouse mcp tools`).
func (g *Gateway) ToolNames(ctx context.Context, caller gatehouse.Caller, tenant string) ([]string, error) {
	id := identity{caller: caller, tenant: tenant}
	tools, err := g.visible(ctx, id, g.permissions(ctx, id))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(tools))
	for i, t := range tools {
		names[i] = t.name
	}
	return names, nil
}
